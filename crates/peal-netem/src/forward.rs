//! The forwarder: frames in on one interface go out of the other after the
//! path model ([`Impairment`]) has had its say, each direction on its own.

use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use crate::sys::{self, RawSocket};
use crate::{Impairment, Profile, Verdict};

/// Frames the forwarder holds per direction at most (a bound on memory
/// whatever the profile; the profile's queue bound is far below it).
const MAX_HELD: usize = 100_000;

/// Counters, one per direction (a → b, b → a).
#[derive(Clone, Debug, Default)]
pub struct Counts {
    pub forwarded: u64,
    pub lost: u64,
    pub queue_drops: u64,
    pub send_errors: u64,
}

/// Forwards between interfaces `a` and `b` until `stop` (given the counts
/// so far, at least every 100 ms) says so. `seed` makes the losses repeatable.
pub fn run(
    a: &str,
    b: &str,
    profile: &Profile,
    seed: u64,
    ready: impl FnOnce(),
    mut stop: impl FnMut(&[Counts; 2]) -> bool,
) -> io::Result<[Counts; 2]> {
    let sockets = [RawSocket::bind(a)?, RawSocket::bind(b)?];
    let t0 = Instant::now();
    let mut paths = [
        Impairment::new(profile.clone(), t0),
        Impairment::new(profile.clone(), t0),
    ];
    let mut held: [VecDeque<(Instant, Vec<u8>)>; 2] = [VecDeque::new(), VecDeque::new()];
    let mut counts = [Counts::default(), Counts::default()];
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut buf = vec![0u8; 65_536];
    ready();
    while !stop(&counts) {
        let now = Instant::now();
        for dir in 0..2 {
            while held[dir].front().is_some_and(|(at, _)| *at <= now) {
                let Some((_, frame)) = held[dir].pop_front() else {
                    break;
                };
                match sockets[1 - dir].send(&frame) {
                    Ok(()) => counts[dir].forwarded += 1,
                    Err(_) => counts[dir].send_errors += 1,
                }
            }
        }
        let next = held
            .iter()
            .filter_map(|q| q.front().map(|(at, _)| *at))
            .min();
        let timeout = next
            .map_or(Duration::from_millis(100), |t| {
                t.saturating_duration_since(now)
            })
            .min(Duration::from_millis(100));
        sys::wait([&sockets[0], &sockets[1]], timeout)?;
        for dir in 0..2 {
            while let Some((n, outgoing)) = sockets[dir].recv(&mut buf)? {
                if outgoing || held[dir].len() >= MAX_HELD {
                    continue;
                }
                let now = Instant::now();
                match paths[dir].offer(n, now, rng.gen(), rng.gen()) {
                    Verdict::Deliver(at) => held[dir].push_back((at, buf[..n].to_vec())),
                    Verdict::Lost => counts[dir].lost += 1,
                    Verdict::QueueFull => counts[dir].queue_drops += 1,
                }
            }
        }
    }
    Ok(counts)
}
