//! Hostile clients beside a quiet run, against the real `peal-server` binary
//! with its default limits: a flood of bad sign-ins from many addresses, then
//! a pile of idle and half-sent sockets. What a normal call's ring time does
//! through each (the quiet run is the baseline), the server's memory during
//! the sign-in flood, and how long the idle sockets live.
//!
//! Other source addresses are other loopback addresses (127.0.0.0/8 is all
//! `lo` on Linux), so nothing leaves the machine.

use crate::procfs;
use crate::report::{median, write, Goal, Row};
use futures_util::StreamExt;
use peal_client::{Call, CallType, ClientConfig, ClientEvent, EventKind, PealClient, ReceiverType};
use serde_json::json;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Bad sign-ins in flight at once, each from its own address.
    #[arg(long, default_value_t = 200)]
    pub logins: usize,
    /// Seconds the sign-in flood lasts.
    #[arg(long, default_value_t = 25)]
    pub flood_secs: u64,
    /// Idle sockets opened at once (half of them with half a request).
    #[arg(long, default_value_t = 1_500)]
    pub sockets: usize,
    /// Calls timed in each phase.
    #[arg(long, default_value_t = 15)]
    pub calls: usize,
}

impl Args {
    pub fn sized(&self, tiny: bool) -> Args {
        if tiny {
            Args {
                logins: 20,
                flood_secs: 3,
                sockets: 150,
                calls: 3,
            }
        } else {
            self.clone()
        }
    }
}

/// Idle sockets must be closed within this (the bound).
const CLOSED_WITHIN_SECS: f64 = 15.0;

/// `peal-server` from the same build as this binary, on a free loopback port.
struct Server {
    child: Child,
    url: String,
    addr: SocketAddr,
    _data: tempfile::TempDir,
}

impl Server {
    fn start() -> Result<Server, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let bin = exe.with_file_name("peal-server");
        if !bin.exists() {
            return Err(format!(
                "{} is missing: build the workspace's binaries first",
                bin.display()
            ));
        }
        let data = tempfile::tempdir().map_err(|e| e.to_string())?;
        for (uid, name) in [("alice", "Alice"), ("bob", "Bob")] {
            let out = Command::new(&bin)
                .arg("--data")
                .arg(data.path())
                .args(["user", "add", uid, "--name", name, "--password", "pw"])
                .output()
                .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
            if !out.status.success() {
                return Err(format!(
                    "user add {uid}: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        let port = peal_tests::free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}")
            .parse()
            .map_err(|e| format!("{e}"))?;
        let log =
            std::fs::File::create(data.path().join("server.log")).map_err(|e| e.to_string())?;
        let child = Command::new(&bin)
            .arg("--data")
            .arg(data.path())
            .args(["serve", "--listen", &addr.to_string()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let server = Server {
            child,
            url: format!("http://{addr}"),
            addr,
            _data: data,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(addr).is_err() {
            if Instant::now() > deadline {
                return Err("peal-server did not start listening".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Alice calls Bob `n` times, `gap` apart: initiate → Bob's SDK hears the
/// ring, in ms; each call is cancelled and its cancel heard before the next.
async fn ring_times(
    alice: &PealClient,
    bob: &mut peal_client::EventStream,
    n: usize,
    gap: Duration,
) -> Result<Vec<f64>, String> {
    async fn heard(
        bob: &mut peal_client::EventStream,
        kind: EventKind,
        id: &peal_client::SessionId,
    ) -> Result<(), String> {
        let wait = async {
            while let Some(e) = bob.next().await {
                if let ClientEvent::Call(e) = e {
                    if e.event == kind && &e.call.session_id == id {
                        return Ok(());
                    }
                }
            }
            Err("bob's event stream ended".to_owned())
        };
        tokio::time::timeout(Duration::from_secs(30), wait)
            .await
            .map_err(|_| format!("bob never heard {kind:?} within 30 s"))?
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let call = alice
            .initiate_call(Call::new("bob", ReceiverType::User, CallType::Audio))
            .await
            .map_err(|e| format!("a normal call failed: {e}"))?;
        heard(bob, EventKind::IncomingCallReceived, &call.session_id).await?;
        out.push(t.elapsed().as_secs_f64() * 1e3);
        alice
            .cancel_call(&call.session_id)
            .await
            .map_err(|e| format!("cancel failed: {e}"))?;
        heard(bob, EventKind::IncomingCallCancelled, &call.session_id).await?;
        tokio::time::sleep(gap).await;
    }
    Ok(out)
}

/// The highest RSS of `pid` until stopped, sampled every 50 ms.
struct PeakRss {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PeakRss {
    fn watch(pid: u32) -> PeakRss {
        let peak = Arc::new(AtomicU64::new(procfs::rss_kb(pid)));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(procfs::rss_kb(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        PeakRss {
            peak,
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

/// The `i`-th flooding address: 127.0.X.Y, away from 127.0.0.1.
fn address(block: u8, i: usize) -> IpAddr {
    IpAddr::from([127, block, (i / 250) as u8, 2 + (i % 250) as u8])
}

/// Bad sign-ins: `n` loops, each from its own address, until `until`.
/// Returns how many answers of each status came back.
async fn sign_in_flood(url: String, n: usize, until: Instant) -> BTreeMap<u16, u64> {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let url = url.clone();
        tasks.spawn(async move {
            let mut seen: BTreeMap<u16, u64> = BTreeMap::new();
            let Ok(client) = reqwest::Client::builder()
                .local_address(address(1, i))
                .build()
            else {
                return seen;
            };
            let mut k = 0u64;
            while Instant::now() < until {
                k += 1;
                let r = client
                    .post(format!("{url}/v1/login"))
                    .json(&json!({"uid": format!("nobody{i}x{k}"), "password": "guess", "device": "x"}))
                    .send()
                    .await;
                let status = r.map(|r| r.status().as_u16()).unwrap_or(0);
                *seen.entry(status).or_default() += 1;
            }
            seen
        });
    }
    let mut all = BTreeMap::new();
    while let Some(Ok(seen)) = tasks.join_next().await {
        for (s, c) in seen {
            *all.entry(s).or_default() += c;
        }
    }
    all
}

/// Opens `n` sockets (100 an address; every other one sends half a request)
/// and returns, for each, the seconds until the server closed it (`Ok(None)`:
/// still open after `give_up`; `Err`: it never connected).
async fn idle_sockets(
    addr: SocketAddr,
    n: usize,
    give_up: Duration,
) -> Vec<Result<Option<f64>, String>> {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        tasks.spawn(async move {
            // 100 every 50 ms: all at once would overflow the listen backlog,
            // and the kernel (not the server) would hold the rest half-open.
            tokio::time::sleep(Duration::from_millis(50 * (i / 100) as u64)).await;
            let from = IpAddr::from([127, 2, (i / 100 / 250) as u8, 2 + ((i / 100) % 250) as u8]);
            let sock = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
            sock.bind(SocketAddr::new(from, 0))
                .map_err(|e| format!("bind {from}: {e}"))?;
            let mut tcp = sock
                .connect(addr)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let opened = Instant::now();
            if i % 2 == 0 {
                let _ = tcp.write_all(b"GET /v1/me HTTP/1.1\r\nHost: x\r\n").await;
            }
            let mut buf = [0u8; 256];
            let closed = tokio::time::timeout(give_up, async {
                loop {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
            })
            .await;
            Ok(closed.ok().map(|()| opened.elapsed().as_secs_f64()))
        });
    }
    let mut out = Vec::with_capacity(n);
    while let Some(r) = tasks.join_next().await {
        out.push(r.map_err(|e| e.to_string()).and_then(|r| r));
    }
    out
}

pub fn run(a: &Args) -> Result<(), String> {
    let tiny = a.flood_secs < 10;
    let server = Server::start()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let sign_in = |uid: &str| ClientConfig::new(server.url.clone(), uid, "pw", "bench");
        let alice = PealClient::connect(sign_in("alice"))
            .await
            .map_err(|e| format!("alice signs in: {e}"))?;
        let bob = PealClient::connect(sign_in("bob"))
            .await
            .map_err(|e| format!("bob signs in: {e}"))?;
        let mut bob_events = bob.events();
        let gap = Duration::from_millis(200);

        // Quiet: the baseline, after a few calls that open connections and warm caches.
        ring_times(&alice, &mut bob_events, 3, gap).await?;
        let quiet = ring_times(&alice, &mut bob_events, a.calls, gap).await?;
        let rss_quiet = procfs::rss_kb(server.pid());

        // A sign-in flood, and normal calls through it.
        let until = Instant::now() + Duration::from_secs(a.flood_secs);
        let flood = tokio::spawn(sign_in_flood(server.url.clone(), a.logins, until));
        let peak = PeakRss::watch(server.pid());
        // Let the flood build up before timing calls through it.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let spread = Duration::from_secs(a.flood_secs).saturating_sub(Duration::from_secs(1))
            / (a.calls.max(1) as u32);
        let during = ring_times(&alice, &mut bob_events, a.calls, spread).await?;
        let answers = flood.await.map_err(|e| e.to_string())?;
        let rss_peak = peak.finish();
        let rss_after_flood = procfs::rss_kb(server.pid());
        eprintln!(
            "flood: {} sign-ins answered in {} s {:?}; RSS {} → peak {} MB; ring p50 {:.2} → {:.2} ms",
            answers.values().sum::<u64>(),
            a.flood_secs,
            answers,
            rss_quiet / 1024,
            rss_peak / 1024,
            median(quiet.clone()).unwrap_or(f64::NAN),
            median(during.clone()).unwrap_or(f64::NAN),
        );

        // Idle and half-sent sockets, and normal calls while they hang on.
        let give_up = Duration::from_secs(30);
        let idle = tokio::spawn(idle_sockets(server.addr, a.sockets, give_up));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let while_idle = ring_times(&alice, &mut bob_events, a.calls, gap).await?;
        let closes = idle.await.map_err(|e| e.to_string())?;
        let failed: Vec<&String> = closes.iter().filter_map(|r| r.as_ref().err()).collect();
        if let Some(e) = failed.first() {
            eprintln!("flood: {} idle sockets never connected, e.g. {e}", failed.len());
        }
        let opened: Vec<Option<f64>> = closes.iter().filter_map(|r| r.as_ref().ok().copied()).collect();
        let closed: Vec<f64> = opened.iter().flatten().copied().collect();
        let slowest = closed.iter().copied().fold(f64::NAN, f64::max);
        let within = closed.iter().filter(|s| **s <= CLOSED_WITHIN_SECS).count();
        eprintln!(
            "flood: {} of {} idle sockets closed by the server, {within} within {CLOSED_WITHIN_SECS} s, slowest {slowest:.1} s; ring p50 {:.2} ms",
            closed.len(),
            opened.len(),
            median(while_idle.clone()).unwrap_or(f64::NAN),
        );
        let still_open = opened.len() - closed.len();
        let (q, d, w) = (median(quiet.clone()), median(during.clone()), median(while_idle.clone()));
        let rows = [
            Row::new(
                format!("sign-in flood ({} at once, {} s): server RSS peak vs before", a.logins, a.flood_secs),
                Some(rss_peak as f64 / 1024.0),
                Some(rss_quiet as f64 / 1024.0),
                "MB",
                Goal::AtMost(300.0),
            ),
            Row::new(
                "sign-in flood: a normal call's ring time, p50, vs quiet",
                d,
                q,
                "ms",
                Goal::RatioAtMost(2.0),
            ),
            Row::new(
                format!("{} idle / half-sent sockets: the slowest closed by the server", a.sockets),
                (still_open == 0).then_some(slowest),
                None,
                "s",
                Goal::AtMost(CLOSED_WITHIN_SECS),
            ),
            Row::new(
                "idle sockets: a normal call's ring time, p50, vs quiet",
                w,
                q,
                "ms",
                Goal::RatioAtMost(2.0),
            ),
        ];
        write(
            "flood",
            json!({
                "command": format!("peal-bench flood --logins {} --flood-secs {} --sockets {} --calls {}", a.logins, a.flood_secs, a.sockets, a.calls),
                "ring_ms_quiet": quiet, "ring_ms_during_sign_in_flood": during, "ring_ms_while_idle_sockets": while_idle,
                "sign_in_answers_by_status": answers, "rss_kb_quiet": rss_quiet, "rss_kb_peak_during_flood": rss_peak,
                "rss_kb_after_flood": rss_after_flood, "idle_sockets": a.sockets, "idle_connected": opened.len(), "idle_never_connected": failed.len(), "idle_closed": closed.len(),
                "idle_closed_within_15s": within, "idle_still_open_after_30s": still_open, "idle_slowest_close_s": slowest,
            }),
            &rows,
            tiny,
        )
    })
}
