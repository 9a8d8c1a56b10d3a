//! The ring path and call throughput, through the real server process and
//! SDK clients in generator processes.

use crate::baseline;
use crate::gen::Gens;
use crate::report::{at, summary, write, Goal, Row};
use crate::serve::ServerProc;
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Clients per generator process: well under the 20,000 open files one
/// process may hold here.
pub(crate) const PER_GEN: usize = 5_000;

#[derive(clap::Args, Clone)]
pub struct RingArgs {
    /// Authenticated clients connected while the calls are made.
    #[arg(long, default_value_t = 10_000)]
    pub clients: usize,
    /// Calls between random pairs.
    #[arg(long, default_value_t = 2_000)]
    pub calls: usize,
    /// Calls placed per second (paced; the NATS baseline publishes at the same rate).
    #[arg(long, default_value_t = 200)]
    pub rate: u32,
}

impl RingArgs {
    pub fn sized(&self, tiny: bool) -> RingArgs {
        if tiny {
            RingArgs {
                clients: 200,
                calls: 20,
                rate: 50,
            }
        } else {
            self.clone()
        }
    }
}

#[derive(clap::Args, Clone)]
pub struct ThroughputArgs {
    /// Clients to call between: enough that a pair is not reused while its
    /// last call may still be going (reuse after clients / 2 calls).
    #[arg(long, default_value_t = 8_000)]
    pub clients: usize,
    /// The first rate, calls/s; each step doubles it.
    #[arg(long, default_value_t = 100)]
    pub start_rate: u32,
    /// The last rate tried.
    #[arg(long, default_value_t = 6_400)]
    pub max_rate: u32,
    /// Seconds per step.
    #[arg(long, default_value_t = 4)]
    pub step_secs: u64,
}

impl ThroughputArgs {
    pub fn sized(&self, tiny: bool) -> ThroughputArgs {
        if tiny {
            ThroughputArgs {
                clients: 100,
                start_rate: 10,
                max_rate: 20,
                step_secs: 1,
            }
        } else {
            self.clone()
        }
    }
}

#[derive(Default)]
struct Rec {
    init: Option<u64>,
    inc: Option<u64>,
    accsent: Option<u64>,
    acc: Option<u64>,
    ended: Option<u64>,
    /// The callee heard the call end.
    cend: Option<u64>,
}

impl Rec {
    /// Every event of the cycle arrived: the ring, the answer, the end.
    fn heard_everything(&self) -> bool {
        self.inc.is_some() && self.acc.is_some() && self.cend.is_some()
    }
}

/// What one batch of calls gave.
pub(crate) struct Batch {
    pub ring_us: Vec<f64>,
    accept_us: Vec<f64>,
    pub completed: usize,
    /// Cycles placed whose ring, answer or end never reached its device.
    pub lost: usize,
    pub errors: Vec<String>,
    /// From the first call sent to the last cycle finished.
    secs: f64,
    server_cpu_secs: f64,
}

/// A random pairing that uses each client at most once per `clients / 2` calls,
/// so a pair is never still in its previous call.
pub(crate) struct Pairs {
    order: Vec<usize>,
    next: usize,
    seed: u64,
}

impl Pairs {
    pub fn new(clients: usize) -> Pairs {
        let mut p = Pairs {
            order: (0..clients).collect(),
            next: 0,
            seed: 0x9e37_79b9_7f4a_7c15,
        };
        p.shuffle();
        p
    }

    fn rand(&mut self) -> u64 {
        // xorshift64*: reproducible runs without a dependency.
        self.seed ^= self.seed >> 12;
        self.seed ^= self.seed << 25;
        self.seed ^= self.seed >> 27;
        self.seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn shuffle(&mut self) {
        for i in (1..self.order.len()).rev() {
            let j = (self.rand() % (i as u64 + 1)) as usize;
            self.order.swap(i, j);
        }
    }

    /// The next `n` calls, each (caller, callee).
    pub fn plan(&mut self, n: usize) -> Vec<(usize, usize)> {
        (0..n).map(|_| self.pair()).collect()
    }

    fn pair(&mut self) -> (usize, usize) {
        if self.next + 2 > self.order.len() {
            self.shuffle();
            self.next = 0;
        }
        let p = (self.order[self.next], self.order[self.next + 1]);
        self.next += 2;
        p
    }
}

/// Places `calls` calls at `rate`/s (open loop: on schedule whatever the
/// answers) and waits until every cycle has ended or failed.
pub(crate) fn batch(
    server: &ServerProc,
    gens: &mut Gens,
    plan: &[(usize, usize)],
    rate: u32,
) -> Result<Batch, String> {
    let calls = plan.len();
    let cpu0 = server.cpu_secs();
    let mut recs: HashMap<String, Rec> = HashMap::new();
    let mut errors = Vec::new();
    let mut ended = 0usize;
    let take = |text: &str,
                recs: &mut HashMap<String, Rec>,
                errors: &mut Vec<String>,
                ended: &mut usize| {
        let mut w = text.split(' ');
        let (kind, a, b) = (
            w.next().unwrap_or(""),
            w.next().unwrap_or(""),
            w.next().unwrap_or(""),
        );
        if kind == "err" {
            errors.push(format!("{a} {b}"));
            return;
        }
        let Ok(t) = b.parse::<u64>() else { return };
        let r = recs.entry(a.to_owned()).or_default();
        match kind {
            "init" => r.init = Some(t),
            "inc" => r.inc = Some(t),
            "accsent" => r.accsent = Some(t),
            "acc" => r.acc = Some(t),
            "cend" => r.cend = Some(t),
            "ended" => {
                r.ended = Some(t);
                *ended += 1;
            }
            _ => {}
        }
    };
    let start = Instant::now();
    let gap = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    for (k, &(a, b)) in plan.iter().enumerate() {
        let due = start + gap * k as u32;
        // Read what has come in while waiting for the next call's time.
        loop {
            let now = Instant::now();
            if now >= due {
                break;
            }
            if let Ok(l) = gens.lines.recv_timeout(due - now) {
                take(&l.text, &mut recs, &mut errors, &mut ended);
            }
        }
        gens.call(a, b)?;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while ended + errors.len() < calls && Instant::now() < deadline {
        if let Ok(l) = gens.lines.recv_timeout(Duration::from_millis(100)) {
            take(&l.text, &mut recs, &mut errors, &mut ended);
        }
    }
    // Late lines of the cycles that did finish.
    while let Ok(l) = gens.lines.recv_timeout(Duration::from_millis(50)) {
        take(&l.text, &mut recs, &mut errors, &mut ended);
    }
    let secs = start.elapsed().as_secs_f64();
    let server_cpu_secs = server.cpu_secs() - cpu0;
    if ended + errors.len() < calls {
        errors.push(format!(
            "{} calls did not finish in 10 s",
            calls - ended - errors.len()
        ));
    }
    eprintln!(
        "  {calls} calls at {rate}/s: {ended} cycles complete in {secs:.1} s, {} errors",
        errors.len()
    );
    let us = |a: Option<u64>, b: Option<u64>| Some((b?.checked_sub(a?)?) as f64 / 1e3);
    let ring_us = recs.values().filter_map(|r| us(r.init, r.inc)).collect();
    let accept_us = recs.values().filter_map(|r| us(r.accsent, r.acc)).collect();
    let lost = calls.saturating_sub(recs.values().filter(|r| r.heard_everything()).count());
    Ok(Batch {
        ring_us,
        accept_us,
        completed: ended,
        lost,
        errors,
        secs,
        server_cpu_secs,
    })
}

fn error_summary(errors: &[String]) -> serde_json::Value {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for e in errors {
        *counts.entry(e.as_str()).or_default() += 1;
    }
    json!(counts)
}

pub fn ring(a: &RingArgs) -> Result<(), String> {
    let tiny = a.clients <= 1_000;
    let server = ServerProc::start(a.clients, a.clients + 1_000)?;
    let mut gens = Gens::start(&server, a.clients, PER_GEN)?;
    let mut pairs = Pairs::new(a.clients);
    // The calls' parties open their HTTP connections first (an app in use
    // has one), then a short warm-up batch, then the measured one.
    let warm = pairs.plan((a.calls / 10).clamp(5, 200));
    let plan = pairs.plan(a.calls);
    let mut parties: Vec<usize> = warm
        .iter()
        .chain(&plan)
        .flat_map(|&(x, y)| [x, y])
        .collect();
    parties.sort_unstable();
    parties.dedup();
    gens.warm(&parties)?;
    batch(&server, &mut gens, &warm, a.rate)?;
    let mut b = batch(&server, &mut gens, &plan, a.rate)?;
    gens.quit();
    drop(server);
    if !b.errors.is_empty() {
        return Err(format!(
            "{} of {} calls failed: {}",
            b.errors.len(),
            a.calls,
            error_summary(&b.errors)
        ));
    }
    let ring = summary(&mut b.ring_us);
    let accept = summary(&mut b.accept_us);
    eprintln!("ring: initiate → incoming {ring}\nring: accept → accepted {accept}");

    let mut nats = baseline::nats(a.calls, a.rate)?;
    let pubsub = summary(&mut nats.pubsub_us);
    let rr = summary(&mut nats.request_reply_us);
    let mut tcp = baseline::tcp_pingpong(a.calls.max(1_000));
    let tcp = summary(&mut tcp);
    eprintln!("nats pub→sub {pubsub}\nnats request-reply {rr}\ntcp ping-pong RTT {tcp}");

    let rows = [
        Row::new(
            "initiate → incoming_call_received p50 vs NATS pub→sub",
            at(&ring, "p50"),
            at(&pubsub, "p50"),
            "µs",
            Goal::RatioAtMost(1.5),
        ),
        Row::new(
            "initiate → incoming_call_received p99 vs NATS pub→sub",
            at(&ring, "p99"),
            at(&pubsub, "p99"),
            "µs",
            Goal::RatioAtMost(1.5),
        ),
        Row::new(
            "initiate → incoming_call_received p99.9",
            at(&ring, "p999"),
            at(&pubsub, "p999"),
            "µs",
            Goal::None,
        ),
        Row::new(
            "initiate → incoming_call_received max",
            at(&ring, "max"),
            at(&pubsub, "max"),
            "µs",
            Goal::None,
        ),
        Row::new(
            "accept → outgoing_call_accepted p50 vs NATS pub→sub",
            at(&accept, "p50"),
            at(&pubsub, "p50"),
            "µs",
            Goal::None,
        ),
        Row::new(
            "accept → outgoing_call_accepted p99 vs NATS pub→sub",
            at(&accept, "p99"),
            at(&pubsub, "p99"),
            "µs",
            Goal::None,
        ),
        Row::new(
            "initiate → incoming p50 vs NATS request-reply",
            at(&ring, "p50"),
            at(&rr, "p50"),
            "µs",
            Goal::None,
        ),
        Row::new(
            "initiate → incoming p50 vs TCP ping-pong RTT (floor)",
            at(&ring, "p50"),
            at(&tcp, "p50"),
            "µs",
            Goal::None,
        ),
    ];
    write(
        "ring",
        json!({
            "command": format!("peal-bench ring --clients {} --calls {} --rate {}", a.clients, a.calls, a.rate),
            "clients": a.clients, "calls": a.calls, "rate_per_s": a.rate,
            "initiate_to_incoming_us": ring, "accept_to_accepted_us": accept,
            "nats_pubsub_us": pubsub, "nats_request_reply_us": rr, "tcp_pingpong_rtt_us": tcp,
            "nats_server": nats.version,
        }),
        &rows,
        tiny,
    )
}

pub fn throughput(a: &ThroughputArgs) -> Result<(), String> {
    let tiny = a.clients <= 1_000;
    let server = ServerProc::start(a.clients, a.clients + 1_000)?;
    let mut gens = Gens::start(&server, a.clients, PER_GEN)?;
    let mut pairs = Pairs::new(a.clients);
    gens.warm(&(0..a.clients).collect::<Vec<_>>())?;
    let warm = pairs.plan((a.clients / 2).min(500));
    batch(&server, &mut gens, &warm, a.start_rate)?;
    let mut steps = Vec::new();
    let mut sustained: Option<(f64, f64)> = None; // (calls/s, server CPU µs per call)
    let mut rate = a.start_rate.max(1);
    let mut stopped = String::from("reached the last rate");
    while rate <= a.max_rate {
        let calls = (rate as u64 * a.step_secs) as usize;
        let plan = pairs.plan(calls);
        let mut b = batch(&server, &mut gens, &plan, rate)?;
        let ring = summary(&mut b.ring_us);
        let p99_ms = at(&ring, "p99").unwrap_or(f64::INFINITY) / 1e3;
        let achieved = b.completed as f64 / b.secs;
        let cpu_us = if b.completed > 0 {
            b.server_cpu_secs * 1e6 / b.completed as f64
        } else {
            f64::NAN
        };
        eprintln!(
            "throughput: {rate}/s offered → {achieved:.0} cycles/s, ring p99 {p99_ms:.1} ms, server CPU {cpu_us:.0} µs/call, {} errors",
            b.errors.len()
        );
        steps.push(json!({
            "offered_per_s": rate, "calls": calls, "completed": b.completed, "achieved_per_s": achieved,
            "ring_us": ring, "server_cpu_us_per_call": cpu_us, "errors": error_summary(&b.errors),
        }));
        if !b.errors.is_empty() || p99_ms > 100.0 {
            stopped = if b.errors.is_empty() {
                format!("ring p99 {p99_ms:.0} ms > 100 ms at {rate}/s")
            } else {
                format!("{} errors at {rate}/s", b.errors.len())
            };
            break;
        }
        sustained = Some((achieved, cpu_us));
        rate *= 2;
    }
    gens.quit();
    drop(server);
    let (rate_ok, cpu_ok) = sustained
        .map(|(r, c)| (Some(r), Some(c)))
        .unwrap_or((None, None));
    eprintln!("throughput: stopped: {stopped}");
    let rows = [
        Row::new(
            "sustained full call cycles/s (p99 ring ≤ 100 ms, no errors)",
            rate_ok,
            None,
            "calls/s",
            Goal::None,
        ),
        Row::new(
            "server CPU per call vs a stateful SIP proxy (OpenSIPS, published)",
            cpu_ok,
            Some(58.0),
            "µs",
            Goal::AtMost(60.0),
        ),
    ];
    write(
        "throughput",
        json!({
            "command": format!("peal-bench throughput --clients {} --start-rate {} --max-rate {} --step-secs {}", a.clients, a.start_rate, a.max_rate, a.step_secs),
            "clients": a.clients, "steps": steps, "stopped": stopped,
            "sustained_per_s": rate_ok, "server_cpu_us_per_call": cpu_ok,
        }),
        &rows,
        tiny,
    )
}

#[cfg(test)]
mod tests {
    use super::Pairs;

    #[test]
    fn no_client_is_paired_twice_within_half_the_clients_calls() {
        let mut p = Pairs::new(100);
        for _ in 0..5 {
            let mut seen = std::collections::HashSet::new();
            for _ in 0..50 {
                let (a, b) = p.pair();
                assert_ne!(a, b);
                assert!(
                    seen.insert(a) && seen.insert(b),
                    "a client reused within 50 calls"
                );
            }
        }
    }
}
