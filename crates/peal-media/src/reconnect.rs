//! When to restart ICE on a link that dropped, and when to give up: a pure
//! policy with time as an input (no clock, no sockets), so the 30 s give-up
//! is tested without waiting 30 s.
//!
//! ```text
//!   Connecting ──connected──▶ Up ──disconnected/failed──▶ Down{since, attempt}
//!       │                      ▲                              │  restart at since + backoff(attempt)
//!       │ 30 s                 └──────────connected───────────┘  30 s after `since`: give up
//!       ▼                                                        (ice_timeout: media had flowed)
//!   GaveUp(ice_failed: never connected)
//! ```

/// How long a link may stay down (or never come up) before the call ends.
pub const GIVE_UP_MS: u64 = 30_000;
const FIRST_RETRY_MS: u64 = 250;
const MAX_RETRY_MS: u64 = 4_000;

/// Why a link was given up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GiveUp {
    /// It connected once, dropped, and did not come back within 30 s.
    IceTimeout,
    /// It never connected within 30 s.
    IceFailed,
}

impl GiveUp {
    pub fn reason(self) -> &'static str {
        match self {
            GiveUp::IceTimeout => "ice_timeout",
            GiveUp::IceFailed => "ice_failed",
        }
    }
}

/// What the session should do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Nothing,
    /// Send an ICE-restart offer (attempt `n`, from 1).
    RestartIce(u32),
    GiveUp(GiveUp),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Connecting { since: u64 },
    Up,
    Down { since: u64, attempt: u32, next: u64 },
    GaveUp,
}

/// One link's reconnect state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reconnect {
    phase: Phase,
}

fn backoff(attempt: u32) -> u64 {
    (FIRST_RETRY_MS << attempt.min(5)).min(MAX_RETRY_MS)
}

impl Reconnect {
    pub fn new(now_ms: u64) -> Self {
        Reconnect {
            phase: Phase::Connecting { since: now_ms },
        }
    }

    pub fn connected(&mut self) -> bool {
        let was_down = matches!(self.phase, Phase::Down { .. });
        if !matches!(self.phase, Phase::GaveUp) {
            self.phase = Phase::Up;
        }
        was_down
    }

    /// The link reported disconnected or failed at `now`; `true` if this
    /// starts an outage (the session reports `reconnecting`).
    pub fn dropped(&mut self, now_ms: u64) -> bool {
        match self.phase {
            Phase::Up => {
                self.phase = Phase::Down {
                    since: now_ms,
                    attempt: 0,
                    next: now_ms,
                };
                true
            }
            Phase::Connecting { .. } | Phase::Down { .. } | Phase::GaveUp => false,
        }
    }

    /// When [`Reconnect::poll`] next has something to do.
    pub fn deadline(&self) -> Option<u64> {
        match self.phase {
            Phase::Connecting { since } => Some(since + GIVE_UP_MS),
            Phase::Down { since, next, .. } => Some(next.min(since + GIVE_UP_MS)),
            Phase::Up | Phase::GaveUp => None,
        }
    }

    pub fn poll(&mut self, now_ms: u64) -> Action {
        match self.phase {
            Phase::Connecting { since } if now_ms >= since + GIVE_UP_MS => {
                self.phase = Phase::GaveUp;
                Action::GiveUp(GiveUp::IceFailed)
            }
            Phase::Down { since, .. } if now_ms >= since + GIVE_UP_MS => {
                self.phase = Phase::GaveUp;
                Action::GiveUp(GiveUp::IceTimeout)
            }
            Phase::Down {
                since,
                attempt,
                next,
            } if now_ms >= next => {
                let attempt = attempt + 1;
                self.phase = Phase::Down {
                    since,
                    attempt,
                    next: now_ms + backoff(attempt),
                };
                Action::RestartIce(attempt)
            }
            Phase::Connecting { .. } | Phase::Down { .. } | Phase::Up | Phase::GaveUp => {
                Action::Nothing
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_that_never_connects_gives_up_as_ice_failed_at_30_s_not_before() {
        let mut r = Reconnect::new(1_000);
        assert_eq!(r.poll(30_999), Action::Nothing);
        assert_eq!(r.deadline(), Some(31_000));
        assert_eq!(r.poll(31_000), Action::GiveUp(GiveUp::IceFailed));
        assert_eq!(r.poll(99_000), Action::Nothing);
    }

    #[test]
    fn a_drop_restarts_ice_with_backoff_and_gives_up_as_ice_timeout() {
        let mut r = Reconnect::new(0);
        r.connected();
        assert!(r.dropped(10_000));
        assert!(!r.dropped(10_001), "one outage, reported once");
        assert_eq!(r.poll(10_000), Action::RestartIce(1));
        assert_eq!(r.poll(10_100), Action::Nothing);
        assert_eq!(r.deadline(), Some(10_500));
        assert_eq!(r.poll(10_500), Action::RestartIce(2));
        let mut attempts = 2;
        let mut t = 10_500;
        while let Some(d) = r.deadline() {
            t = d;
            match r.poll(t) {
                Action::RestartIce(n) => attempts = n,
                Action::GiveUp(g) => {
                    assert_eq!(g, GiveUp::IceTimeout);
                    break;
                }
                Action::Nothing => {}
            }
        }
        assert_eq!(t, 40_000);
        assert!(attempts >= 8, "kept retrying until the end: {attempts}");
    }

    #[test]
    fn coming_back_ends_the_outage() {
        let mut r = Reconnect::new(0);
        r.connected();
        r.dropped(5_000);
        assert_eq!(r.poll(5_000), Action::RestartIce(1));
        assert!(r.connected(), "reported as reconnected");
        assert_eq!(r.deadline(), None);
        assert_eq!(r.poll(60_000), Action::Nothing);
    }
}
