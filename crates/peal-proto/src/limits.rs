//! Named limits, and a token bucket that takes time as an input.

use crate::time::Millis;

/// Default ring timeout.
pub const DEFAULT_RING_TIMEOUT_SECS: u32 = 45;
/// Bounds of the server-wide `--ring-timeout`.
pub const SERVER_RING_TIMEOUT_SECS: (u32, u32) = (1, 600);
/// Bounds of a call's own `timeout`.
pub const CALL_RING_TIMEOUT_SECS: (u32, u32) = (5, 180);
/// Most participants joined to one call at once.
pub const MAX_JOINED: usize = 8;
/// Largest WebSocket message or frame either side accepts.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Largest HTTP request body the server reads.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// A device that reconnects within this long after losing its connection gets a replay.
pub const RESUME_WINDOW_MS: i64 = 30_000;
/// Events kept per device for replay (the newest ones; older ones force a snapshot).
pub const REPLAY_BUFFER_EVENTS: usize = 512;
/// Server heartbeat (WebSocket ping) interval.
pub const HEARTBEAT_MS: u64 = 15_000;
/// A connection with nothing received for this long is dead (≤ 45 s after the link dies).
pub const DEAD_AFTER_MS: u64 = 40_000;
/// New calls a user may place per minute.
pub const CALLS_PER_MINUTE: u32 = 60;
/// Requests a device may make per second.
pub const REQUESTS_PER_SECOND: u32 = 100;

/// A token bucket: `capacity` tokens, refilled at `capacity` per `period_ms`.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    capacity: f64,
    per_ms: f64,
    tokens: f64,
    last: Millis,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn new(capacity: u32, period_ms: i64, now: Millis) -> Self {
        let capacity = f64::from(capacity.max(1));
        TokenBucket {
            capacity,
            per_ms: capacity / period_ms.max(1) as f64,
            tokens: capacity,
            last: now,
        }
    }

    /// Takes one token if there is one at `now`.
    pub fn try_take(&mut self, now: Millis) -> bool {
        let elapsed = now.since(self.last).max(0) as f64;
        self.tokens = (self.tokens + elapsed * self.per_ms).min(self.capacity);
        self.last = if now > self.last { now } else { self.last };
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether the bucket is full at `now` (an idle key that can be forgotten).
    pub fn is_full_at(&self, now: Millis) -> bool {
        self.tokens + now.since(self.last).max(0) as f64 * self.per_ms >= self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixty_calls_a_minute_pass_and_the_sixty_first_is_refused() {
        let t0 = Millis(1_000_000);
        let mut b = TokenBucket::new(CALLS_PER_MINUTE, 60_000, t0);
        for _ in 0..CALLS_PER_MINUTE {
            assert!(b.try_take(t0));
        }
        assert!(!b.try_take(t0));
        // One token back after 1/60 of a minute.
        assert!(!b.try_take(t0.plus(999)));
        assert!(b.try_take(t0.plus(1_000)));
    }

    #[test]
    fn clock_going_backwards_neither_panics_nor_mints_tokens() {
        let t0 = Millis(1_000_000);
        let mut b = TokenBucket::new(1, 1_000, t0);
        assert!(b.try_take(t0));
        assert!(!b.try_take(Millis(0)));
        assert!(!b.try_take(t0.plus(500)));
        assert!(b.try_take(t0.plus(1_000)));
    }
}
