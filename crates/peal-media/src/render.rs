//! When a decodable video frame is shown: at its capture pace plus a delay
//! that covers how late frames have recently been, so a frame that waited
//! one round trip for a retransmission is shown on time instead of after a
//! stall (libwebrtc's render timing does the same: its target delay grows
//! by a round trip once frames need NACKs). Pure: time is an input.
//!
//! Each frame's lateness is how much later it became decodable than its
//! RTP timestamp says it should have, relative to the earliest frame seen
//! (a frame earlier than that becomes the new reference). The frame is
//! shown at its expected time plus the [`PERCENTILE`] of the recent
//! lateness, capped at [`MAX_HOLD`]; never before it is ready, never
//! before the frame ahead of it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// Frames whose lateness sets the delay: 10 s at 30 fps.
pub const WINDOW: usize = 300;
/// The share of recent frames the delay covers: the rest (a retransmission
/// lost too, a keyframe after a loss) stall, as they would anyway.
pub const PERCENTILE: f64 = 0.95;
/// The most a frame is held: beyond it the picture lags the voice by more
/// than people accept, and a stall is the lesser harm.
pub const MAX_HOLD: Duration = Duration::from_millis(300);
/// Later (or earlier) than this is not lateness but a new stream (a
/// restarted sender, a camera turned back on): measuring starts over.
const DISCONTINUITY: Duration = Duration::from_secs(2);
/// The RTP clock of video.
const CLOCK_HZ: i64 = 90_000;

/// The render delay of one incoming video stream (see the module docs).
#[derive(Debug, Default)]
pub struct RenderHold {
    /// A frame of minimal lateness: its RTP timestamp and when it was ready.
    base: Option<(u32, Instant)>,
    lateness: VecDeque<Duration>,
    queue: VecDeque<(Instant, Bytes)>,
}

impl RenderHold {
    /// A frame the decoder can take, ready at `ready`, with RTP timestamp `ts`.
    pub fn push(&mut self, ts: u32, data: Bytes, ready: Instant) {
        let expected = match self.base {
            Some((bts, bat)) => {
                // A wrapping difference: frames are in order, within 2^31 ticks.
                let ticks = i64::from(ts.wrapping_sub(bts) as i32);
                let ms = ticks * 1000 / CLOCK_HZ;
                if ms >= 0 {
                    bat.checked_add(Duration::from_millis(ms as u64))
                } else {
                    bat.checked_sub(Duration::from_millis(ms.unsigned_abs()))
                }
            }
            None => None,
        };
        let late = match expected {
            Some(e) if ready >= e && ready - e <= DISCONTINUITY => ready - e,
            Some(e) if ready < e && e - ready <= DISCONTINUITY => {
                // Earlier than the reference: the new reference.
                self.base = Some((ts, ready));
                Duration::ZERO
            }
            _ => {
                self.base = Some((ts, ready));
                self.lateness.clear();
                Duration::ZERO
            }
        };
        self.lateness.push_back(late);
        if self.lateness.len() > WINDOW {
            self.lateness.pop_front();
        }
        let expected = ready - late;
        let due = (expected + self.delay())
            .max(ready)
            .max(self.queue.back().map_or(ready, |(t, _)| *t));
        self.queue.push_back((due, data));
    }

    /// The current render delay (after the frame's expected time).
    pub fn delay(&self) -> Duration {
        if self.lateness.is_empty() {
            return Duration::ZERO;
        }
        let mut v: Vec<_> = self.lateness.iter().copied().collect();
        v.sort_unstable();
        let i = ((v.len() - 1) as f64 * PERCENTILE).round() as usize;
        v[i.min(v.len() - 1)].min(MAX_HOLD)
    }

    /// The next frame due by `now`, if any.
    pub fn pop(&mut self, now: Instant) -> Option<Bytes> {
        if self.queue.front().is_some_and(|(t, _)| *t <= now) {
            return self.queue.pop_front().map(|(_, d)| d);
        }
        None
    }

    /// When the next frame is due.
    pub fn deadline(&self) -> Option<Instant> {
        self.queue.front().map(|(t, _)| *t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Clock(Instant);

    impl Clock {
        fn at(&self, ms: u64) -> Instant {
            self.0 + Duration::from_millis(ms)
        }
    }

    /// RTP timestamp of frame `n` at 30 fps.
    fn ts(n: u32) -> u32 {
        n * 3000
    }

    fn frame(n: u32) -> Bytes {
        Bytes::from(n.to_be_bytes().to_vec())
    }

    #[test]
    fn frames_on_time_are_shown_at_once() {
        let c = Clock(Instant::now());
        let mut h = RenderHold::default();
        for n in 0..10 {
            let t = c.at(u64::from(n) * 100 / 3);
            h.push(ts(n), frame(n), t);
            assert_eq!(h.pop(t), Some(frame(n)), "frame {n}");
        }
        assert_eq!(h.delay(), Duration::ZERO);
    }

    /// Feeds `arrivals` (frame, ready ms) in order, showing each frame at
    /// its deadline as a driving loop would; (frame, shown ms).
    fn drive(h: &mut RenderHold, c: &Clock, arrivals: &[(u32, u64)]) -> Vec<(u32, u64)> {
        let mut shown = Vec::new();
        let mut show = |h: &mut RenderHold, until: Option<Instant>| {
            while let Some(d) = h.deadline().filter(|d| until.is_none_or(|u| *d <= u)) {
                let f = h.pop(d).expect("due");
                let n = u32::from_be_bytes(f[..4].try_into().unwrap());
                shown.push((n, (d - c.0).as_millis() as u64));
            }
        };
        for &(n, ready) in arrivals {
            show(h, Some(c.at(ready)));
            h.push(ts(n), frame(n), c.at(ready));
            show(h, Some(c.at(ready)));
        }
        show(h, None);
        shown
    }

    #[test]
    fn once_frames_wait_for_retransmissions_a_late_one_is_shown_on_its_pace() {
        let c = Clock(Instant::now());
        let mut h = RenderHold::default();
        // Every 10th frame waits 150 ms for a retransmission and the ones
        // behind it become ready with it; 30 fps otherwise.
        let arrivals: Vec<(u32, u64)> = (0..300u32)
            .map(|n| {
                let expected = u64::from(n) * 100 / 3;
                let stall = u64::from(n - n % 10) * 100 / 3 + 150;
                (
                    n,
                    if n % 10 < 5 {
                        stall.max(expected)
                    } else {
                        expected
                    },
                )
            })
            .collect();
        let shown = drive(&mut h, &c, &arrivals);
        assert!(h.delay() >= Duration::from_millis(110), "{:?}", h.delay());
        assert_eq!(shown.len(), 300);
        assert!(shown.windows(2).all(|w| w[0].0 < w[1].0), "in order");
        // Once the delay has been learnt the pace is even: no stall shows.
        let worst = shown[150..]
            .windows(2)
            .map(|w| w[1].1 - w[0].1)
            .max()
            .unwrap();
        assert!(worst <= 40, "a gap of {worst} ms between frames shown");
        // Without the hold the same stream stalls for 150 ms every 10 frames.
        let gaps = arrivals[150..].windows(2).map(|w| w[1].1 - w[0].1).max();
        assert!(gaps.unwrap() >= 140);
    }

    #[test]
    fn the_hold_never_passes_its_cap_and_a_new_stream_starts_over() {
        let c = Clock(Instant::now());
        let mut h = RenderHold::default();
        h.push(ts(0), frame(0), c.at(0));
        // Every frame a second late: held at most MAX_HOLD.
        for n in 1..50 {
            h.push(ts(n), frame(n), c.at(u64::from(n) * 33 + 1000));
        }
        assert_eq!(h.delay(), MAX_HOLD);
        // A sender that restarts: timestamps from elsewhere, not lateness.
        h.push(1_234_567_890, frame(99), c.at(5000));
        h.push(1_234_567_890 + 3000, frame(100), c.at(5033));
        assert_eq!(h.delay(), Duration::ZERO);
    }

    #[test]
    fn frames_leave_in_order_even_when_the_delay_shrinks() {
        let c = Clock(Instant::now());
        let mut h = RenderHold::default();
        h.push(ts(0), frame(0), c.at(0));
        h.push(ts(1), frame(1), c.at(233)); // 200 ms late
        h.push(ts(2), frame(2), c.at(240));
        let shown = drive(&mut h, &c, &[]);
        assert_eq!(shown.iter().map(|s| s.0).collect::<Vec<_>>(), [0, 1, 2]);
        assert!(shown.windows(2).all(|w| w[0].1 <= w[1].1));
    }
}
