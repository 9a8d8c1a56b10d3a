//! Idle authenticated connections (heartbeats on) up to the server's
//! open-file limit, from several generator processes; the server's RSS per
//! connection and what one node would hold by that slope; and whether its
//! files and memory come back once they close.

use crate::gen::Gens;
use crate::procfs;
use crate::report::{write, Goal, Row};
use crate::serve::ServerProc;
use serde_json::json;
use std::time::{Duration, Instant};

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Connections to open (default: the open-file limit less what the
    /// server holds besides sockets).
    #[arg(long)]
    pub clients: Option<usize>,
    /// Seconds to hold them, idle (a heartbeat is every 15 s).
    #[arg(long, default_value_t = 20)]
    pub hold_secs: u64,
    /// Seconds after they close before memory is read again: the server
    /// keeps each device's resume session for 30 s after its socket goes.
    #[arg(long, default_value_t = 35)]
    pub after_secs: u64,
}

impl Args {
    pub fn sized(&self, tiny: bool) -> Args {
        if tiny {
            Args {
                clients: Some(300),
                hold_secs: 2,
                after_secs: 1,
            }
        } else {
            self.clone()
        }
    }
}

/// Files the server holds besides event sockets (database, WAL, epoll, …),
/// with room to spare.
const RESERVED_FILES: usize = 150;
const PER_GEN: usize = 7_000;

pub fn run(a: &Args) -> Result<(), String> {
    let limit = procfs::open_file_limit();
    let target = a.clients.unwrap_or(limit.saturating_sub(RESERVED_FILES));
    let tiny = target <= 1_000;
    // The cap sits above the target so the open-file limit, not the cap, is what stops us.
    let server = ServerProc::start(target, limit)?;
    std::thread::sleep(Duration::from_millis(500));
    let (rss0, files0) = (server.rss_kb(), server.open_files());
    let t = Instant::now();
    let gens = Gens::start(&server, target, PER_GEN);
    let ramp_secs = t.elapsed().as_secs_f64();
    let gens = match gens {
        Ok(g) => g,
        Err(e) => {
            return Err(format!(
                "ramp to {target} failed: {e} (server holds {} files)",
                server.open_files()
            ))
        }
    };
    let held_at_ramp = server.open_files().saturating_sub(files0);
    eprintln!(
        "connections: {held_at_ramp} sockets open after {ramp_secs:.1} s; holding {} s",
        a.hold_secs
    );
    std::thread::sleep(Duration::from_secs(a.hold_secs));
    let (rss1, files1) = (server.rss_kb(), server.open_files());
    let held = files1.saturating_sub(files0);
    let dropped = held_at_ramp.saturating_sub(held);
    gens.quit();
    // Wait for the server to notice every close.
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.open_files() > files0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let rss_closed = server.rss_kb();
    std::thread::sleep(Duration::from_secs(a.after_secs));
    let (rss2, files2) = (server.rss_kb(), server.open_files());
    drop(server);
    let per_conn_kb = if held > 0 {
        (rss1 as f64 - rss0 as f64) / held as f64
    } else {
        f64::NAN
    };
    let at = |n: f64| (rss0 as f64 + per_conn_kb * n) / 1024.0;
    eprintln!(
        "connections: held {held} (limit {limit}); RSS {} → {} MB ({per_conn_kb:.1} KB each), after close {} MB, files {files0} → {files1} → {files2}",
        rss0 / 1024, rss1 / 1024, rss2 / 1024
    );
    let rows = [
        Row::new(
            "idle connections held (heartbeats on) vs the open-file limit",
            Some(held as f64),
            Some(limit as f64),
            "conns",
            Goal::None,
        ),
        Row::new(
            "server RSS per idle connection",
            Some(per_conn_kb),
            None,
            "KB",
            Goal::AtMost(8.0),
        ),
        Row::new(
            "server RSS at 100,000 connections (by that slope)",
            Some(at(1e5)),
            None,
            "MB",
            Goal::None,
        ),
        Row::new(
            "server RSS at 1,000,000 connections (by that slope)",
            Some(at(1e6)),
            None,
            "MB",
            Goal::None,
        ),
        Row::new(
            "server RSS once their resume sessions expire vs before",
            Some(rss2 as f64 / 1024.0),
            Some(rss0 as f64 / 1024.0),
            "MB",
            Goal::None,
        ),
        Row::new(
            "server open files after they close vs before",
            Some(files2 as f64),
            Some(files0 as f64),
            "files",
            Goal::RatioAtMost(1.0),
        ),
    ];
    write(
        "connections",
        json!({
            "command": format!("peal-bench connections --clients {target} --hold-secs {} --after-secs {}", a.hold_secs, a.after_secs),
            "open_file_limit": limit, "target": target, "held": held, "dropped_while_held": dropped,
            "ramp_secs": ramp_secs, "hold_secs": a.hold_secs,
            "rss_kb_before": rss0, "rss_kb_held": rss1, "rss_kb_just_closed": rss_closed, "rss_kb_after_close": rss2, "after_secs": a.after_secs, "rss_kb_per_connection": per_conn_kb,
            "files_before": files0, "files_held": files1, "files_after_close": files2,
            "projected_rss_mb_100k": at(1e5), "projected_rss_mb_1m": at(1e6),
        }),
        &rows,
        tiny,
    )
}
