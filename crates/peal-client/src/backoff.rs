//! Full-jitter exponential backoff: attempt n waits a random time in
//! `[0, min(cap, base * 2^n)]`, so a server restart doesn't get every client back at once.

use rand::Rng;
use std::time::Duration;

pub const BASE_MS: u64 = 200;
pub const CAP_MS: u64 = 10_000;

/// The ceiling for attempt `n` (0-based).
pub fn ceiling(attempt: u32) -> Duration {
    let ms = BASE_MS.saturating_mul(1u64 << attempt.min(20)).min(CAP_MS);
    Duration::from_millis(ms)
}

/// A random delay for attempt `n`, at least 50 ms.
pub fn delay(attempt: u32) -> Duration {
    let max = ceiling(attempt).as_millis() as u64;
    Duration::from_millis(rand::thread_rng().gen_range(50.min(max)..=max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_200_ms_and_never_exceeds_10_s() {
        assert_eq!(ceiling(0), Duration::from_millis(200));
        assert_eq!(ceiling(1), Duration::from_millis(400));
        assert_eq!(ceiling(5), Duration::from_millis(6_400));
        assert_eq!(ceiling(6), Duration::from_millis(10_000));
        assert_eq!(ceiling(1_000), Duration::from_millis(10_000));
        for n in 0..40 {
            let d = delay(n);
            assert!(
                d <= ceiling(n) && d >= Duration::from_millis(50),
                "attempt {n}: {d:?}"
            );
        }
    }
}
