//! Call media on loopback: from accept to ICE connected, DTLS connected
//! (peer connection connected) and the first decoded remote frame, measured
//! on the callee, for RUNS calls each in three setups:
//!
//! - `default-ice`: webrtc-rs's default 200 ms ICE check interval, no pre-connect;
//! - `tuned`: 20 ms check interval (what Peal uses), no pre-connect;
//! - `pre-connect`: tuned, and the callee's device connects while it rings (500 ms).
//!
//! Then CPU per side: one 640x480@30 synthetic call for SECONDS s between
//! two `peal` processes (release build), each side's user+system time.
//! The baseline in the same run: headless Chromium (Debian's `chromium`,
//! driven by playwright-core) doing two peer connections in one page with its
//! fake camera at 640x480 (`chromium/`), inside a private network namespace
//! with a veth pair (Chromium ignores 127.0.0.1 for ICE): createOffer → ICE
//! connected, DTLS connected, first decoded frame.
//! Writes `target/bench/media.json`.
//!
//! `peal-bench media [--runs 20] [--cpu-secs 10]`

use crate::report::{median as fmedian, write, Goal, Row};
use peal_client::{Call, CallType, PealClient, ReceiverType};
use peal_media::{join_session, MediaStats};
use peal_tests::{media_settings, next_call, sdk_client, TestServer};
use std::time::{Duration, Instant};

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Calls per setup (and Chromium trials); medians are of these.
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    /// Seconds of the call whose CPU per side is measured.
    #[arg(long, default_value_t = 10)]
    pub cpu_secs: u64,
}

impl Args {
    pub fn sized(&self, tiny: bool) -> Args {
        if tiny {
            Args {
                runs: 2,
                cpu_secs: 2,
            }
        } else {
            self.clone()
        }
    }
}

/// Runs the future `f` makes on a runtime of its own thread, so a panic in
/// the measuring code (which uses the test harness's helpers, which panic on
/// failure) is an error here.
pub fn on_own_runtime<F, Fut>(name: &str, f: F) -> Result<(), String>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?
                .block_on(f())
        })
        .map_err(|e| e.to_string())?
        .join()
        .unwrap_or_else(|_| Err(format!("the {name} scenario failed (see the panic above)")))
}

pub fn run(a: &Args) -> Result<(), String> {
    let a = a.clone();
    on_own_runtime("media", move || measure(a))
}

/// Chromium's figures: `chromium/run.sh TRIALS` prints one JSON line.
fn chromium(trials: usize) -> Result<serde_json::Value, String> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("chromium/run.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg(trials.to_string())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!("the Chromium baseline failed ({}); scripts/ensure-bench-deps.sh installs chromium and playwright-core", out.status));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("the Chromium baseline's output: {e}"))
}

#[derive(Clone, Copy, PartialEq)]
enum Setup {
    DefaultIce,
    Tuned,
    PreConnect,
}

fn settings(setup: Setup) -> peal_media::SessionSettings {
    let mut s = media_settings(Instant::now());
    s.width = 640;
    s.height = 480;
    s.fps = 30;
    s.video_kbps = 800;
    if setup == Setup::DefaultIce {
        s.ice_check_interval = Duration::from_millis(200);
    }
    s
}

async fn one_call(alice: &PealClient, bob: &PealClient, setup: Setup) -> MediaStats {
    let mut ring = bob.events();
    let placed = alice
        .initiate_call(Call::new("bob", ReceiverType::User, CallType::Video))
        .await
        .expect("placed");
    let a = join_session(alice, &placed, settings(setup))
        .await
        .expect("alice");
    let ringing = next_call(&mut ring).await;
    let pre = if setup == Setup::PreConnect {
        let b = join_session(bob, &ringing.call, settings(setup))
            .await
            .expect("bob");
        tokio::time::sleep(Duration::from_millis(500)).await;
        Some(b)
    } else {
        None
    };
    let accepted_at = Instant::now();
    let accepted = bob.accept_call(&placed.session_id).await.expect("accepted");
    let b = match pre {
        Some(b) => {
            b.set_t0(accepted_at);
            b.accepted(&accepted);
            b
        }
        None => {
            let mut s = settings(setup);
            s.t0 = accepted_at;
            join_session(bob, &accepted, s).await.expect("bob")
        }
    };
    let start = Instant::now();
    while b.stats().first_remote_video_ms.is_none() && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let st = b.stats();
    a.end_call().await.expect("ended");
    b.leave().await;
    st
}

fn median(v: Vec<i64>) -> i64 {
    fmedian(v.into_iter().map(|x| x as f64).collect()).map_or(-1, |m| m as i64)
}

use crate::procfs::cpu_secs;

fn cpu_per_side(server: &str, seconds: u64) -> (f64, f64, Option<f64>) {
    let bin = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("peal")))
        .expect("target dir");
    let peal = |user: &str| {
        let mut c = std::process::Command::new(&bin);
        c.env("PEAL_MEDIA_BIND", "127.0.0.1:0")
            .args(["--server", server, "--user", user, "--password", "pw"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        c
    };
    let bob = peal("bob")
        .args(["answer", "--accept", "--media", "synthetic", "--stats"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("peal (build it with --release first)");
    std::thread::sleep(Duration::from_millis(800));
    let mut alice = peal("alice")
        .args(["call", "bob", "--media", "synthetic"])
        .args(["--hangup-after", &(seconds * 1000 + 1000).to_string()])
        .spawn()
        .expect("peal");
    // Skip the first second (setup), then measure `seconds` of the call.
    std::thread::sleep(Duration::from_millis(1500));
    let (a0, b0) = (cpu_secs(alice.id()), cpu_secs(bob.id()));
    std::thread::sleep(Duration::from_secs(seconds));
    let (a1, b1) = (cpu_secs(alice.id()), cpu_secs(bob.id()));
    let _ = alice.wait();
    let out = bob.wait_with_output().map(|o| o.stdout).unwrap_or_default();
    // The callee's `--stats` line: capture → decoded latency over the call.
    let latency = String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| find(&v, "capture_to_decode_ms_p50"));
    let pct = |d: f64| 100.0 * d / seconds as f64;
    (pct(a1 - a0), pct(b1 - b0), latency)
}

/// The first number under `key` anywhere in `v`.
fn find(v: &serde_json::Value, key: &str) -> Option<f64> {
    match v {
        serde_json::Value::Object(m) => m
            .get(key)
            .and_then(serde_json::Value::as_f64)
            .or_else(|| m.values().find_map(|v| find(v, key))),
        serde_json::Value::Array(a) => a.iter().find_map(|v| find(v, key)),
        _ => None,
    }
}

async fn measure(a: Args) -> Result<(), String> {
    let (runs, seconds) = (a.runs, a.cpu_secs);
    // Many calls in a row from one device: lift the per-user/device rate limits.
    let server = TestServer::start_with(|c| {
        c.calls_per_minute = 100_000;
        c.requests_per_second = 100_000;
    })
    .await;
    let (alice, bob) = (
        sdk_client(&server, "alice").await,
        sdk_client(&server, "bob").await,
    );
    let mut report = serde_json::Map::new();
    for (name, setup) in [
        ("default-ice", Setup::DefaultIce),
        ("tuned", Setup::Tuned),
        ("pre-connect", Setup::PreConnect),
    ] {
        let (mut ice, mut dtls, mut frame) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let st = one_call(&alice, &bob, setup).await;
            ice.push(st.ice_connected_ms.unwrap_or(-1));
            dtls.push(st.connected_ms.unwrap_or(-1));
            frame.push(st.first_remote_video_ms.unwrap_or(-1));
        }
        let (i, d, f) = (median(ice), median(dtls), median(frame));
        println!("{name:12} accept → ICE connected p50 {i} ms, DTLS connected p50 {d} ms, first decoded frame p50 {f} ms ({runs} calls)");
        report.insert(
            name.into(),
            serde_json::json!({"ice_connected_ms_p50": i, "dtls_connected_ms_p50": d, "first_frame_ms_p50": f, "runs": runs}),
        );
    }
    let (caller, callee, capture_to_decode) = cpu_per_side(&server.base, seconds);
    println!(
        "CPU 640x480@30 synthetic, {seconds} s: caller {caller:.0}% of a core, callee {callee:.0}%"
    );
    report.insert(
        "cpu_percent_640x480_30".into(),
        serde_json::json!({"caller": caller, "callee": callee, "seconds": seconds, "capture_to_decode_ms_p50": capture_to_decode}),
    );
    let chrome = chromium(runs)?;
    println!(
        "chromium     offer → ICE connected p50 {} ms, DTLS connected p50 {} ms, first frame p50 {} ms ({runs} trials)",
        chrome["offer_to_ice_connected_ms"]["p50"], chrome["offer_to_dtls_connected_ms"]["p50"], chrome["offer_to_first_frame_ms"]["p50"]
    );
    let ours = |setup: &str, k: &str| report.get(setup).and_then(|v| v[k].as_f64());
    let theirs = |k: &str| chrome[k]["p50"].as_f64();
    let rows = [
        Row::new(
            "accept → first decoded frame vs Chromium offer → first frame (p50)",
            ours("tuned", "first_frame_ms_p50"),
            theirs("offer_to_first_frame_ms"),
            "ms",
            Goal::RatioAtMost(1.0),
        ),
        Row::new(
            "accept → ICE connected vs Chromium offer → ICE connected (p50)",
            ours("tuned", "ice_connected_ms_p50"),
            theirs("offer_to_ice_connected_ms"),
            "ms",
            Goal::None,
        ),
        Row::new(
            "accept → DTLS connected vs Chromium offer → DTLS connected (p50)",
            ours("tuned", "dtls_connected_ms_p50"),
            theirs("offer_to_dtls_connected_ms"),
            "ms",
            Goal::None,
        ),
        Row::new(
            "pre-connected: accept → first frame vs Chromium (p50)",
            ours("pre-connect", "first_frame_ms_p50"),
            theirs("offer_to_first_frame_ms"),
            "ms",
            Goal::RatioAtMost(1.0),
        ),
        Row::new(
            "capture → decoded remote frame, callee (p50, loopback)",
            capture_to_decode,
            None,
            "ms",
            Goal::None,
        ),
        Row::new(
            "CPU, caller side, 640x480@30 synthetic",
            Some(caller),
            None,
            "% of a core",
            Goal::AtMost(25.0),
        ),
        Row::new(
            "CPU, callee side, 640x480@30 synthetic",
            Some(callee),
            None,
            "% of a core",
            Goal::AtMost(25.0),
        ),
    ];
    report.insert("chromium".into(), chrome);
    report.insert(
        "command".into(),
        format!("peal-bench media --runs {runs} --cpu-secs {seconds}").into(),
    );
    write("media", serde_json::Value::Object(report), &rows, runs < 5)
}
