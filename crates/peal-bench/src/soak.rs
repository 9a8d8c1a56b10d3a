//! A long run at a steady rate: N connected clients, full call cycles at R a
//! second for S seconds, then every client leaves. Whether anything was lost
//! (every cycle's ring, answer and end reached its device; every call has an
//! outcome), whether the server's memory stays flat once warm, and what it
//! holds a minute after everyone has gone.

use crate::gen::Gens;
use crate::report::{summary, write, Goal, Row};
use crate::serve::ServerProc;
use crate::signaling::{batch, Pairs, PER_GEN};
use serde_json::json;
use std::time::{Duration, Instant};

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Connected clients.
    #[arg(long, default_value_t = 5_000)]
    pub clients: usize,
    /// Full call cycles per second.
    #[arg(long, default_value_t = 200)]
    pub rate: u32,
    /// Seconds of calls.
    #[arg(long, default_value_t = 600)]
    pub secs: u64,
    /// Seconds of each batch (RSS is read after each).
    #[arg(long, default_value_t = 10)]
    pub step_secs: u64,
    /// Seconds counted as warm-up (not in the growth figure): the replay
    /// buffers fill for 75 s (their horizon) before they hold steady.
    #[arg(long, default_value_t = 120)]
    pub warmup_secs: u64,
    /// Seconds after every client left before memory is read.
    #[arg(long, default_value_t = 60)]
    pub after_secs: u64,
}

impl Args {
    pub fn sized(&self, tiny: bool) -> Args {
        if tiny {
            Args {
                clients: 200,
                rate: 20,
                secs: 6,
                step_secs: 2,
                warmup_secs: 2,
                after_secs: 2,
            }
        } else {
            self.clone()
        }
    }
}

pub fn run(a: &Args) -> Result<(), String> {
    let tiny = a.clients <= 1_000;
    let server = ServerProc::start(a.clients, a.clients + 1_000)?;
    std::thread::sleep(Duration::from_millis(300));
    let (rss_before, files_before) = (server.rss_kb(), server.open_files());
    let mut gens = Gens::start(&server, a.clients, PER_GEN)?;
    gens.warm(&(0..a.clients).collect::<Vec<_>>())?;
    let mut pairs = Pairs::new(a.clients);
    let started = Instant::now();
    // (seconds since the first call, server RSS in KiB) after each batch.
    let mut rss: Vec<(f64, u64)> = vec![(0.0, server.rss_kb())];
    let (mut placed, mut completed, mut lost) = (0usize, 0usize, 0usize);
    let mut errors: Vec<String> = Vec::new();
    let mut ring_us = Vec::new();
    while started.elapsed() < Duration::from_secs(a.secs) {
        let plan = pairs.plan((u64::from(a.rate) * a.step_secs) as usize);
        placed += plan.len();
        let mut b = batch(&server, &mut gens, &plan, a.rate)?;
        completed += b.completed;
        lost += b.lost;
        errors.append(&mut b.errors);
        ring_us.append(&mut b.ring_us);
        rss.push((started.elapsed().as_secs_f64(), server.rss_kb()));
        eprintln!(
            "soak: {:.0} s, {placed} calls, {lost} lost, {} errors, server RSS {} MB",
            started.elapsed().as_secs_f64(),
            errors.len(),
            server.rss_kb() / 1024
        );
    }
    let secs = started.elapsed().as_secs_f64();
    let rss_end = server.rss_kb();
    gens.quit();
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.open_files() > files_before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(a.after_secs));
    let rss_after = server.rss_kb();
    drop(server);

    // Flat once warm: the largest RSS after warm-up against RSS at its end.
    let warm = rss
        .iter()
        .find(|(t, _)| *t >= a.warmup_secs as f64)
        .map(|(_, kb)| *kb);
    let later_max = rss
        .iter()
        .filter(|(t, _)| *t >= a.warmup_secs as f64)
        .map(|(_, kb)| *kb)
        .max();
    let growth_pct = match (warm, later_max) {
        (Some(w), Some(m)) if w > 0 => Some((m as f64 - w as f64) * 100.0 / w as f64),
        _ => None,
    };
    let unfinished = placed.saturating_sub(completed);
    eprintln!(
        "soak: {placed} calls in {secs:.0} s: {completed} complete, {unfinished} without an outcome, {lost} with an event lost; RSS {} → {} MB (growth after warm-up {growth_pct:?} %), {} MB {} s after everyone left",
        rss_before / 1024,
        rss_end / 1024,
        rss_after / 1024,
        a.after_secs
    );
    let what = format!("{} clients, {}/s for {} s", a.clients, a.rate, a.secs);
    let rows = [
        Row::new(
            format!("soak ({what}): calls without an outcome"),
            Some(unfinished as f64),
            None,
            "calls",
            Goal::AtMost(0.0),
        ),
        Row::new(
            "soak: cycles with an event lost (ring, answer or end)",
            Some(lost as f64),
            None,
            "calls",
            Goal::AtMost(0.0),
        ),
        Row::new(
            "soak: server RSS growth after warm-up",
            growth_pct,
            None,
            "%",
            Goal::AtMost(10.0),
        ),
        Row::new(
            format!(
                "soak: server RSS {} s after every client left vs before they came",
                a.after_secs
            ),
            Some(rss_after as f64 / 1024.0),
            Some(rss_before as f64 / 1024.0),
            "MB",
            Goal::None,
        ),
    ];
    write(
        "soak",
        json!({
            "command": format!("peal-bench soak --clients {} --rate {} --secs {} --step-secs {} --warmup-secs {} --after-secs {}", a.clients, a.rate, a.secs, a.step_secs, a.warmup_secs, a.after_secs),
            "placed": placed, "completed": completed, "without_outcome": unfinished, "lost": lost,
            "errors": errors.len(), "first_errors": errors.iter().take(10).collect::<Vec<_>>(),
            "ring_us": summary(&mut ring_us), "secs": secs,
            "rss_kb_before_clients": rss_before, "rss_kb_over_time": rss, "rss_kb_at_end": rss_end,
            "rss_kb_after_everyone_left": rss_after, "growth_after_warmup_pct": growth_pct,
        }),
        &rows,
        tiny,
    )
}
