//! `peal-bench`: Peal's benchmarks, each beside its baseline in the same run.
//!
//! These machines are noisy and absolute times drift, so every scenario
//! measures its anchor in the same run on the same machine and reports the
//! ratio. Each writes `target/bench/<scenario>.json` (its figures and the
//! table rows); `peal-bench all` runs them in turn and prints one table.
//!
//! # Layout
//!
//! - [`signaling`]: **ring** (initiate → `incoming_call_received`, accept →
//!   `outgoing_call_accepted`, with N clients connected) and **throughput**
//!   (full call cycles per second, open loop at rising rates; server CPU per call).
//! - [`connections`]: idle authenticated connections up to the open-file limit;
//!   RSS per connection, and whether memory and files come back.
//! - [`baseline`]: the anchors: NATS pub→sub and request-reply (Debian's
//!   `nats-server`, async-nats), TCP ping-pong on loopback.
//! - [`media`]: accept → ICE / DTLS / first decoded frame, CPU per side,
//!   beside headless Chromium doing the same (`chromium/`, playwright-core).
//! - [`network`]: calls across shaped paths (`peal-netem`: loss, jitter,
//!   narrow and stepped links) beside two Chromiums on the same path.
//! - [`desktop`]: the app under Xvfb beside an empty Tauri 2 window.
//! - [`soak`]: N clients, full calls at a steady rate for minutes, then all
//!   leave: nothing lost, memory flat once warm, and what stays afterwards.
//! - [`flood`]: hostile clients (a sign-in flood, idle and half-sent sockets)
//!   against the real `peal-server`, beside a quiet run.
//! - [`serve`] and [`gen`]: the server process (seeded with N signed-in
//!   devices) and the load-generator processes the scenarios start; one
//!   process may hold at most 20,000 files here, so clients are spread over several.
//! - [`procfs`]: CPU time, RSS, open files of a process. [`report`]: percentiles,
//!   the JSON files, the table.

mod baseline;
mod connections;
mod desktop;
mod flood;
mod gen;
mod media;
mod network;
mod procfs;
mod report;
mod serve;
mod signaling;
mod soak;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "peal-bench", about = "Peal benchmarks beside their baselines")]
struct Cli {
    /// Run every scenario at a tiny size (a few hundred clients, a few calls):
    /// checks that they work; the figures mean nothing.
    #[arg(long, global = true)]
    tiny: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Every scenario in turn, then the table.
    All,
    /// Ring latency with N clients connected, beside NATS and TCP ping-pong.
    Ring(signaling::RingArgs),
    /// Full call cycles per second at rising rates; server CPU per call.
    Throughput(signaling::ThroughputArgs),
    /// Idle connections up to the open-file limit; RSS per connection.
    Connections(connections::Args),
    /// Media setup and CPU, beside headless Chromium.
    Media(media::Args),
    /// Calls across shaped paths, beside Chromium on the same path (root).
    Network(network::Args),
    /// The desktop app beside an empty Tauri window.
    Desktop(desktop::Args),
    /// A sign-in flood and idle sockets against peal-server, beside a quiet run.
    Flood(flood::Args),
    /// 5,000 clients, 200 calls/s for 10 minutes, then all leave.
    Soak(soak::Args),
    /// Print the table from the JSON files already in target/bench.
    Table,
    /// (internal) The server process: seeds N devices and serves until stdin closes.
    #[command(hide = true)]
    Serve {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        users: usize,
        #[arg(long)]
        max_connections: usize,
    },
    /// (internal) A load generator: connects a range of the seeded devices and
    /// follows commands on stdin.
    #[command(hide = true)]
    Gen {
        #[arg(long)]
        server: String,
        #[arg(long)]
        sessions: PathBuf,
        #[arg(long)]
        from: usize,
        #[arg(long)]
        count: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let tiny = cli.tiny;
    let result = match cli.command {
        Command::All => all(tiny),
        Command::Ring(a) => signaling::ring(&a.sized(tiny)),
        Command::Throughput(a) => signaling::throughput(&a.sized(tiny)),
        Command::Connections(a) => connections::run(&a.sized(tiny)),
        Command::Media(a) => media::run(&a.sized(tiny)),
        Command::Network(a) => network::run(&a.sized(tiny)),
        Command::Desktop(a) => desktop::run(&a.sized(tiny)),
        Command::Flood(a) => flood::run(&a.sized(tiny)),
        Command::Soak(a) => soak::run(&a.sized(tiny)),
        Command::Table => report::print_table(),
        Command::Serve {
            data,
            users,
            max_connections,
        } => serve::serve(data, users, max_connections),
        Command::Gen {
            server,
            sessions,
            from,
            count,
        } => gen::gen(server, sessions, from, count),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("peal-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn all(tiny: bool) -> Result<(), String> {
    use clap::Parser as _;
    #[derive(clap::Parser)]
    struct Defaults<T: clap::Args> {
        #[command(flatten)]
        a: T,
    }
    fn defaults<T: clap::Args>() -> T {
        Defaults::<T>::parse_from(["peal-bench"]).a
    }
    let started = std::time::Instant::now();
    let mut failed = Vec::new();
    type Step = Box<dyn Fn() -> Result<(), String>>;
    let steps: [(&str, Step); 8] = [
        (
            "ring",
            Box::new(move || signaling::ring(&defaults::<signaling::RingArgs>().sized(tiny))),
        ),
        (
            "throughput",
            Box::new(move || {
                signaling::throughput(&defaults::<signaling::ThroughputArgs>().sized(tiny))
            }),
        ),
        (
            "connections",
            Box::new(move || connections::run(&defaults::<connections::Args>().sized(tiny))),
        ),
        (
            "media",
            Box::new(move || media::run(&defaults::<media::Args>().sized(tiny))),
        ),
        (
            "network",
            Box::new(move || network::run(&defaults::<network::Args>().sized(tiny))),
        ),
        (
            "desktop",
            Box::new(move || desktop::run(&defaults::<desktop::Args>().sized(tiny))),
        ),
        (
            "flood",
            Box::new(move || flood::run(&defaults::<flood::Args>().sized(tiny))),
        ),
        (
            "soak",
            Box::new(move || soak::run(&defaults::<soak::Args>().sized(tiny))),
        ),
    ];
    for (name, step) in steps.iter() {
        eprintln!("== {name} ({:.0} s in)", started.elapsed().as_secs_f64());
        if let Err(e) = step() {
            eprintln!("peal-bench {name}: {e}");
            failed.push(*name);
        }
    }
    report::print_table()?;
    eprintln!("all scenarios in {:.0} s", started.elapsed().as_secs_f64());
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("failed: {}", failed.join(", ")))
    }
}
