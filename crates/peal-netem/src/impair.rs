//! The path model, pure: a frame offered at an instant is lost, tail-dropped
//! by a full queue, or delivered at a later instant. Time and the random
//! draw are inputs, so tests replay it exactly.

use std::time::{Duration, Instant};

use crate::Profile;

/// What becomes of one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Lost at random (the profile's loss rate).
    Lost,
    /// The rate limiter's queue would hold it longer than the profile allows.
    QueueFull,
    /// Out of the far end at this instant.
    Deliver(Instant),
}

/// One direction of a path.
#[derive(Debug)]
pub struct Impairment {
    profile: Profile,
    start: Instant,
    /// When the rate limiter finishes sending what it holds.
    busy_until: Instant,
    /// When the last frame came out: none overtakes it.
    last_out: Instant,
    pub lost: u64,
    pub queue_drops: u64,
    pub delivered: u64,
}

impl Impairment {
    pub fn new(profile: Profile, start: Instant) -> Self {
        Impairment {
            profile,
            start,
            busy_until: start,
            last_out: start,
            lost: 0,
            queue_drops: 0,
            delivered: 0,
        }
    }

    /// A frame of `len` bytes arrives at `now`; `draw` and `jitter_draw` are
    /// uniform in 0..1 (the loss draw and the jitter draw).
    pub fn offer(&mut self, len: usize, now: Instant, draw: f64, jitter_draw: f64) -> Verdict {
        if draw < self.profile.loss {
            self.lost += 1;
            return Verdict::Lost;
        }
        let mut out = now;
        if let Some(rate) = self
            .profile
            .rate_at(now.saturating_duration_since(self.start))
        {
            let start = self.busy_until.max(now);
            if start.saturating_duration_since(now) > self.profile.queue {
                self.queue_drops += 1;
                return Verdict::QueueFull;
            }
            // Ethernet framing overhead is ignored: `len` is the whole frame.
            let on_wire = Duration::from_nanos(len as u64 * 8 * 1_000_000_000 / rate);
            self.busy_until = start + on_wire;
            out = self.busy_until;
        }
        let j = self.profile.jitter.as_secs_f64() * (jitter_draw * 2.0 - 1.0);
        let delay = Duration::from_secs_f64((self.profile.delay.as_secs_f64() + j).max(0.0));
        let at = (out + delay).max(self.last_out);
        self.last_out = at;
        self.delivered += 1;
        Verdict::Deliver(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn delay_is_added_and_loss_follows_the_draw() {
        let t0 = Instant::now();
        let mut i = Impairment::new(Profile::parse("loss=3%,delay=40ms").unwrap(), t0);
        assert_eq!(i.offer(100, t0, 0.5, 0.5), Verdict::Deliver(ms(t0, 40)));
        assert_eq!(i.offer(100, t0, 0.01, 0.5), Verdict::Lost);
        assert_eq!((i.lost, i.delivered), (1, 1));
    }

    #[test]
    fn jitter_never_reorders() {
        let t0 = Instant::now();
        let mut i = Impairment::new(Profile::parse("delay=40ms,jitter=10ms").unwrap(), t0);
        let Verdict::Deliver(a) = i.offer(100, t0, 1.0, 1.0) else {
            panic!()
        };
        assert_eq!(a, ms(t0, 50));
        let Verdict::Deliver(b) = i.offer(100, ms(t0, 1), 1.0, 0.0) else {
            panic!()
        };
        assert_eq!(b, a, "held behind the one before, not 31 ms after");
    }

    #[test]
    fn a_narrow_link_paces_frames_and_tail_drops_past_its_queue() {
        let t0 = Instant::now();
        // 800 kbit/s: a 1,000-byte frame takes 10 ms; a 100 ms queue holds 10.
        let mut i = Impairment::new(Profile::parse("rate=800kbit,queue=100ms").unwrap(), t0);
        assert_eq!(i.offer(1000, t0, 1.0, 0.5), Verdict::Deliver(ms(t0, 10)));
        assert_eq!(i.offer(1000, t0, 1.0, 0.5), Verdict::Deliver(ms(t0, 20)));
        for _ in 0..9 {
            assert!(matches!(i.offer(1000, t0, 1.0, 0.5), Verdict::Deliver(_)));
        }
        assert_eq!(i.offer(1000, t0, 1.0, 0.5), Verdict::QueueFull);
        // Once the queue drains, frames pass again.
        assert!(matches!(
            i.offer(1000, ms(t0, 200), 1.0, 0.5),
            Verdict::Deliver(_)
        ));
        assert_eq!(i.queue_drops, 1);
    }
}
