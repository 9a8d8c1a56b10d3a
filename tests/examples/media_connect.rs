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
//! Writes `target/bench/media.json`.
//!
//! `cargo run --release -p peal-tests --example media_connect -- [RUNS] [SECONDS]`

use peal_client::{Call, CallType, PealClient, ReceiverType};
use peal_media::{join_session, MediaStats};
use peal_tests::{media_settings, next_call, sdk_client, TestServer};
use std::time::{Duration, Instant};

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

fn median(mut v: Vec<i64>) -> i64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(-1)
}

/// user+system CPU seconds of a process, from /proc (Linux).
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn cpu_per_side(server: &str, seconds: u64) -> (f64, f64) {
    let bin = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent()?.parent().map(|d| d.join("peal")))
        .expect("target dir");
    let peal = |user: &str| {
        let mut c = std::process::Command::new(&bin);
        c.env("PEAL_MEDIA_BIND", "127.0.0.1:0")
            .args(["--server", server, "--user", user, "--password", "pw"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        c
    };
    let mut bob = peal("bob")
        .args(["answer", "--accept", "--media", "synthetic"])
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
    let _ = bob.wait();
    let pct = |d: f64| 100.0 * d / seconds as f64;
    (pct(a1 - a0), pct(b1 - b0))
}

#[tokio::main]
async fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let runs = args.first().copied().unwrap_or(20) as usize;
    let seconds = args.get(1).copied().unwrap_or(10);
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
    let (caller, callee) = cpu_per_side(&server.base, seconds);
    println!(
        "CPU 640x480@30 synthetic, {seconds} s: caller {caller:.0}% of a core, callee {callee:.0}%"
    );
    report.insert(
        "cpu_percent_640x480_30".into(),
        serde_json::json!({"caller": caller, "callee": callee, "seconds": seconds}),
    );
    let _ = std::fs::create_dir_all("target/bench");
    let _ = std::fs::write(
        "target/bench/media.json",
        serde_json::Value::Object(report).to_string(),
    );
}
