//! `peal-netem forward IF_A IF_B PROFILE [SEED]`: forwards Ethernet frames
//! between two interfaces through the path PROFILE describes (a name such
//! as `loss3`, or `loss=3%,delay=40ms,...`; see `peal_netem::profile`).
//! Prints `ready` once both sockets are bound, then runs until killed,
//! writing what it has done per direction to stderr every 5 s.

use std::process::ExitCode;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (a, b, profile, seed) = match args.as_slice() {
        [cmd, a, b, p, rest @ ..] if cmd == "forward" && rest.len() <= 1 => {
            let seed = match rest.first().map(|s| s.parse::<u64>()) {
                None => rand::random(),
                Some(Ok(s)) => s,
                Some(Err(_)) => return usage("SEED must be a number"),
            };
            match peal_netem::Profile::parse(p) {
                Ok(p) => (a, b, p, seed),
                Err(e) => return usage(&e.to_string()),
            }
        }
        _ => return usage("usage: peal-netem forward IF_A IF_B PROFILE [SEED]"),
    };
    let mut last = Instant::now();
    let result = peal_netem::forward::run(
        a,
        b,
        &profile,
        seed,
        || println!("ready"),
        |counts| {
            if last.elapsed() >= Duration::from_secs(5) {
                last = Instant::now();
                eprintln!(
                    "peal-netem: {a} -> {b}: {:?}; {b} -> {a}: {:?}",
                    counts[0], counts[1]
                );
            }
            false
        },
    );
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("peal-netem: {e}");
            ExitCode::from(1)
        }
    }
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("peal-netem: {msg}");
    ExitCode::from(2)
}
