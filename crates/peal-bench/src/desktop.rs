//! The desktop app's footprint, beside an empty Tauri 2 window measured the
//! same way in the same run, under Xvfb (software GL: absolute figures are
//! higher than on a desktop with a GPU; the ratio is what compares).
//!
//! `peal-bench desktop [--settle-secs 30] [--call-secs 10]`: for each app, launch → window on screen (empty) or
//! contacts shown (Peal, from its log), then the PSS of the whole process
//! tree (the app and WebKit's processes, from /proc/*/smaps_rollup) after
//! SETTLE_S idle. Then, on Peal ("this computer"): the `peal` CLI rings it,
//! incoming event → ringtone playing (the app's log), accept from the
//! notification, and the CPU of the tree over CALL_S of a 640x480@30 call.
//! Writes target/bench/desktop.json. Needs the release app and the empty
//! window built (`make bench` builds them).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::procfs::cpu_secs;
use crate::report::{write, Goal, Row};
use peal_tests::notifications;

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Seconds each app stays idle before its memory is read.
    #[arg(long, default_value_t = 30)]
    pub settle_secs: u64,
    /// Seconds of the call whose CPU is measured.
    #[arg(long, default_value_t = 10)]
    pub call_secs: u64,
}

impl Args {
    pub fn sized(&self, tiny: bool) -> Args {
        if tiny {
            Args {
                settle_secs: 2,
                call_secs: 2,
            }
        } else {
            self.clone()
        }
    }
}

pub fn run(a: &Args) -> Result<(), String> {
    let a = a.clone();
    crate::media::on_own_runtime("desktop", move || measure(a))
}

fn bin(name: &str) -> PathBuf {
    let mut p = std::env::current_exe().expect("exe");
    p.pop();
    if p.ends_with("examples") {
        p.pop();
    }
    p.join(name)
}

/// Every process below `root` (and `root`), from /proc.
fn tree(root: u32) -> Vec<u32> {
    let mut parent: HashMap<u32, u32> = HashMap::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The name may hold spaces: fields start after the last ')'.
        let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
        if let Some(ppid) = rest.split(' ').nth(1).and_then(|p| p.parse().ok()) {
            parent.insert(pid, ppid);
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(parent.iter().filter(|(_, pp)| **pp == p).map(|(c, _)| *c));
        i += 1;
    }
    out
}

/// Each process's name and PSS (kB), for the breakdown.
fn per_process(pids: &[u32]) -> Vec<(String, u64)> {
    pids.iter()
        .map(|p| {
            let name = std::fs::read_to_string(format!("/proc/{p}/comm"))
                .unwrap_or_default()
                .trim()
                .to_owned();
            (name, pss_kb(&[*p]))
        })
        .collect()
}

fn pss_kb(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/smaps_rollup")).ok())
        .filter_map(|t| {
            t.lines()
                .find(|l| l.starts_with("Pss:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .sum()
}

/// utime + stime of `pids`, in clock ticks.
struct Env {
    display: String,
    bus: String,
    home: tempfile::TempDir,
}

fn spawn(env: &Env, app: &Path, args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(app)
        .args(args)
        .env("DISPLAY", &env.display)
        .env("HOME", env.home.path())
        .env("DBUS_SESSION_BUS_ADDRESS", &env.bus)
        .env("XDG_DATA_HOME", env.home.path().join("data"))
        .env("XDG_CONFIG_HOME", env.home.path().join("config"))
        .env("XDG_RUNTIME_DIR", env.home.path())
        .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
        .env("PEAL_MEDIA_BIND", "127.0.0.1:0")
        // Never the machine's own keyring: the bench reads the file.
        .env("PEAL_NO_KEYRING", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{} starts: {e}", app.display()));
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

/// The first log line containing `what`, within `secs`.
fn line(rx: &mpsc::Receiver<String>, what: &str, secs: u64) -> String {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.contains(what) => return l,
            Ok(_) => {}
            Err(_) => panic!("no log line with {what:?} within {secs} s"),
        }
    }
}

fn number_before(l: &str, unit: &str) -> f64 {
    l.split(unit)
        .next()
        .and_then(|s| s.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

fn stop(mut c: Child) {
    let _ = c.kill();
    let _ = c.wait();
}

async fn measure(a: Args) -> Result<(), String> {
    let tiny = a.settle_secs < 10;
    let settle = Duration::from_secs(a.settle_secs);
    let call_secs = a.call_secs;
    let (xvfb, display) = peal_tests::xvfb();
    let home = tempfile::tempdir().expect("home");
    let (dbus, bus) = peal_tests::session_bus(home.path());
    let daemon = notifications::Daemon::start(&bus).await;
    let _capture = peal_tests::alsa_to_file(home.path());
    let env = Env { display, bus, home };

    // The baseline: an empty Tauri 2 window.
    let t0 = Instant::now();
    let (empty, _log) = spawn(&env, &bin("peal-empty-window"), &[]);
    peal_tests::wait_for("the empty window", 30, || {
        peal_tests::window_titles(&env.display).contains("Empty Tauri window")
    });
    let empty_window_ms = t0.elapsed().as_secs_f64() * 1e3;
    std::thread::sleep(settle);
    let empty_pids = tree(empty.id());
    let empty_pss = pss_kb(&empty_pids);
    let empty_each = per_process(&empty_pids);
    stop(empty);

    // Peal on this computer.
    let (peal, log) = spawn(&env, &bin("peal-desktop"), &["--this-computer"]);
    let url = line(&log, "Peal server is at", 30)
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_owned();
    let launch_to_contacts_ms = number_before(&line(&log, "contacts shown", 30), " ms");
    std::thread::sleep(settle);
    let pids = tree(peal.id());
    let peal_pss = pss_kb(&pids);
    let peal_each = per_process(&pids);
    let processes = pids.len();

    // The CLI (as the local Echo account) rings us; we accept from the notification.
    // "This computer"'s passwords are in the app's vault: here (no keyring
    // service, and PEAL_NO_KEYRING=1) its 0600 file.
    let secrets: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(env.home.path().join("config/app.peal.desktop/secrets.json"))
            .expect("the app's secrets file"),
    )
    .expect("json");
    let creds: serde_json::Value =
        serde_json::from_str(secrets["local-accounts"].as_str().unwrap_or("{}"))
            .expect("the local accounts");
    let hangup = ((call_secs + 6) * 1000).to_string();
    let mut cli = Command::new(bin("peal"))
        .args(["--server", &url, "--user", "echo", "--device", "bench"])
        .args(["--password", creds["echo"].as_str().unwrap_or_default()])
        .args([
            "call",
            "me",
            "--media",
            "synthetic",
            "--hangup-after",
            &hangup,
        ])
        .env("PEAL_MEDIA_BIND", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("peal CLI");
    let event_to_ringtone_ms = number_before(&line(&log, "ringtone playing", 20), " ms");
    peal_tests::wait_for("the notification", 10, || !daemon.all().is_empty());
    tokio::time::sleep(Duration::from_millis(300)).await;
    daemon.invoke(daemon.all()[0].id, "accept").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pids = tree(peal.id());
    let before: Vec<f64> = pids.iter().map(|p| cpu_secs(*p)).collect();
    let w0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(call_secs)).await;
    let secs = w0.elapsed().as_secs_f64();
    let cpu_each: Vec<(String, f64)> = pids
        .iter()
        .zip(&before)
        .map(|(p, b)| {
            let name = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            (name.trim().to_owned(), (cpu_secs(*p) - b).max(0.0) / secs)
        })
        .collect();
    let cpu: f64 = cpu_each.iter().map(|(_, c)| c).sum();
    let pids = tree(peal.id());
    let call_pss = pss_kb(&pids);
    let _ = cli.wait();
    stop(peal);
    stop(dbus);
    stop(xvfb);

    let ratio = peal_pss as f64 / empty_pss.max(1) as f64;
    println!(
        "desktop footprint (Xvfb, llvmpipe; idle after {} s)",
        settle.as_secs()
    );
    println!("| figure | Peal | empty Tauri window | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| idle PSS of the process tree | {:.0} MB ({processes} processes) | {:.0} MB ({} processes) | {ratio:.2}x |",
        peal_pss as f64 / 1024.0,
        empty_pss as f64 / 1024.0,
        empty_pids.len()
    );
    let each = |v: &[(String, u64)]| {
        v.iter()
            .map(|(n, k)| format!("{n} {:.0} MB", *k as f64 / 1024.0))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "| idle PSS per process | {} | {} | |",
        each(&peal_each),
        each(&empty_each)
    );
    println!("| launch → contacts shown (Peal) / window on screen (empty) | {launch_to_contacts_ms:.0} ms | {empty_window_ms:.0} ms | |");
    println!("| incoming event → ringtone playing | {event_to_ringtone_ms:.1} ms | | |");
    println!(
        "| CPU of the tree in a 640x480@30 call ({call_secs} s) | {:.0}% of a core | | |",
        cpu * 100.0
    );
    println!(
        "| CPU per process in the call | {} | | |",
        cpu_each
            .iter()
            .map(|(n, c)| format!("{n} {:.0}%", c * 100.0))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "| PSS of the tree in the call | {:.0} MB | | |",
        call_pss as f64 / 1024.0
    );
    let json = serde_json::json!({
        "command": format!("peal-bench desktop --settle-secs {} --call-secs {call_secs}", settle.as_secs()),
        "settle_s": settle.as_secs(), "call_s": call_secs,
        "peal_idle_pss_kb": peal_pss, "empty_idle_pss_kb": empty_pss, "pss_ratio": ratio,
        "peal_processes": processes, "empty_processes": empty_pids.len(),
        "peal_idle_pss_per_process_kb": peal_each, "empty_idle_pss_per_process_kb": empty_each,
        "launch_to_contacts_ms": launch_to_contacts_ms, "empty_launch_to_window_ms": empty_window_ms,
        "event_to_ringtone_ms": event_to_ringtone_ms,
        "call_cpu_core_fraction": cpu, "call_cpu_per_process": cpu_each, "call_pss_kb": call_pss,
    });
    let rows = [
        Row::new(
            "idle PSS of the process tree vs an empty Tauri 2 window",
            Some(peal_pss as f64 / 1024.0),
            Some(empty_pss as f64 / 1024.0),
            "MB",
            Goal::RatioAtMost(1.0),
        ),
        Row::new(
            "launch → contacts shown vs empty window on screen",
            Some(launch_to_contacts_ms),
            Some(empty_window_ms),
            "ms",
            Goal::AtMost(500.0),
        ),
        Row::new(
            "incoming event → ringtone playing",
            Some(event_to_ringtone_ms),
            None,
            "ms",
            Goal::AtMost(50.0),
        ),
        Row::new(
            "CPU of the tree in a 640x480@30 call (Xvfb, software GL)",
            Some(cpu * 100.0),
            None,
            "% of a core",
            Goal::None,
        ),
    ];
    write("desktop", json, &rows, tiny)
}
