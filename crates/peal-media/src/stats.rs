//! What a session counts: [`MediaStats`] (sent, received, times, latency,
//! freezes) and the freeze detector, pure with time as an input.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Inter-frame delays averaged when judging a freeze (libwebrtc's window).
const FREEZE_WINDOW: usize = 30;
/// Delays needed before freezes are judged at all.
const FREEZE_MIN_SAMPLES: usize = 5;
/// A freeze is a gap of at least three average frame intervals and at
/// least this much over the average (libwebrtc's `freezeCount` rule).
const FREEZE_MIN_EXTRA: Duration = Duration::from_millis(150);

/// Counts freezes as libwebrtc's `freezeCount` / `totalFreezesDuration` do:
/// an interval between shown frames of at least max(3 × average,
/// average + 150 ms), the average over the last 30 intervals.
#[derive(Clone, Debug, Default)]
pub struct FreezeDetector {
    last: Option<Instant>,
    delays: VecDeque<Duration>,
    pub count: u64,
    pub total: Duration,
}

impl FreezeDetector {
    /// A frame was shown at `now`.
    pub fn frame(&mut self, now: Instant) {
        if let Some(last) = self.last {
            let d = now.saturating_duration_since(last);
            if self.delays.len() >= FREEZE_MIN_SAMPLES {
                let avg = self.delays.iter().sum::<Duration>() / self.delays.len() as u32;
                if d >= (avg * 3).max(avg + FREEZE_MIN_EXTRA) {
                    self.count += 1;
                    self.total += d;
                }
            }
            self.delays.push_back(d);
            if self.delays.len() > FREEZE_WINDOW {
                self.delays.pop_front();
            }
        }
        self.last = Some(now);
    }

    /// No frames are expected (the sender turned its camera off): the gap
    /// until the next one is not a freeze.
    pub fn pause(&mut self) {
        self.last = None;
    }
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct SentStats {
    pub video_frames: u64,
    pub audio_frames: u64,
    pub keyframes: u64,
    pub bytes: u64,
    /// The bandwidth estimate for what we send (the lowest over our links), kbit/s.
    pub estimate_kbps: u64,
    /// The video encoder's current target, kbit/s.
    pub video_target_kbps: u64,
    /// The width of the picture we send now (the quality ladder's step).
    pub video_width: u32,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct ReceivedStats {
    pub video_frames: u64,
    pub audio_frames: u64,
    /// Synthetic frames whose pattern checked out, in order.
    pub verified_frames: u64,
    /// Frames that decoded to something other than the pattern, or failed to decode.
    pub corrupt_frames: u64,
    /// Frames that arrived older than one already shown.
    pub out_of_order: u64,
    /// Audio frames whose pitch is one of the tone's.
    pub verified_audio_frames: u64,
    /// Video frames given up on: a packet never came in time, or nothing
    /// to decode them against (never shown: the picture holds instead).
    pub dropped_frames: u64,
    /// Keyframes asked of the sender (RTCP PLI) after a loss.
    pub keyframe_requests: u64,
    /// Freezes of the remote picture (libwebrtc's `freezeCount`).
    pub freeze_count: u64,
    /// Their total length (libwebrtc's `totalFreezesDuration`), in ms.
    pub total_freezes_duration_ms: u64,
    /// Lost audio frames rebuilt from the next packet's in-band FEC.
    pub audio_recovered_frames: u64,
    /// Lost audio frames concealed by the decoder (libwebrtc's
    /// `concealedSamples`, in frames), and those concealed to lengthen the
    /// wait after a late packet.
    pub audio_concealed_frames: u64,
    /// Audio packets that came after their turn to play.
    pub audio_late_packets: u64,
    /// The audio jitter buffer's target delay now, ms (the worst peer's).
    pub audio_delay_ms: u64,
}

/// Counters for `stats()` and the CLI's `media_stats` line. Times are
/// milliseconds from the session's `t0` (accept), negative when something
/// happened before it (a pre-connected link).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct MediaStats {
    pub sent: SentStats,
    pub received: ReceivedStats,
    /// ICE connectivity established with the first peer.
    pub ice_connected_ms: Option<i64>,
    /// ICE and DTLS done with the first peer (the peer connection is connected).
    pub connected_ms: Option<i64>,
    pub first_remote_video_ms: Option<i64>,
    pub first_remote_audio_ms: Option<i64>,
    pub capture_to_decode_ms_p50: Option<u64>,
    pub capture_to_decode_ms_p95: Option<u64>,
}

/// What the session and the source thread record; [`MediaStats`] is its snapshot.
#[derive(Debug, Default)]
pub(crate) struct StatsInner {
    pub sent: SentStats,
    pub received: ReceivedStats,
    pub ice_connected: Option<Instant>,
    pub connected: Option<Instant>,
    pub first_video: Option<Instant>,
    pub first_audio: Option<Instant>,
    pub latencies: Vec<u64>,
    pub freezes: FreezeDetector,
}

fn ms_from(t0: Instant, t: Option<Instant>) -> Option<i64> {
    t.map(|t| match t.checked_duration_since(t0) {
        Some(d) => d.as_millis() as i64,
        None => -(t0.duration_since(t).as_millis() as i64),
    })
}

impl StatsInner {
    pub(crate) fn snapshot(&self, t0: Instant) -> MediaStats {
        let mut l = self.latencies.clone();
        l.sort_unstable();
        let mut received = self.received.clone();
        received.freeze_count = self.freezes.count;
        received.total_freezes_duration_ms = self.freezes.total.as_millis() as u64;
        MediaStats {
            sent: self.sent.clone(),
            received,
            ice_connected_ms: ms_from(t0, self.ice_connected),
            connected_ms: ms_from(t0, self.connected),
            first_remote_video_ms: ms_from(t0, self.first_video),
            first_remote_audio_ms: ms_from(t0, self.first_audio),
            capture_to_decode_ms_p50: l.get(l.len() / 2).copied(),
            capture_to_decode_ms_p95: l.get(l.len() * 95 / 100).copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn a_steady_picture_has_no_freeze_and_a_long_gap_is_one() {
        let t0 = Instant::now();
        let mut f = FreezeDetector::default();
        for i in 0..30 {
            f.frame(ms(t0, i * 33));
        }
        assert_eq!(f.count, 0);
        // 33 ms frames: a freeze needs max(99, 183) ms.
        f.frame(ms(t0, 29 * 33 + 150));
        assert_eq!(f.count, 0, "150 ms is a hiccup, not a freeze");
        let last = 29 * 33 + 150;
        f.frame(ms(t0, last + 400));
        assert_eq!((f.count, f.total), (1, Duration::from_millis(400)));
    }

    #[test]
    fn a_camera_turned_off_is_not_a_freeze_and_the_start_is_not_judged() {
        let t0 = Instant::now();
        let mut f = FreezeDetector::default();
        f.frame(t0);
        f.frame(ms(t0, 2000)); // too few samples to judge
        for i in 1..10 {
            f.frame(ms(t0, 2000 + i * 33));
        }
        f.pause();
        f.frame(ms(t0, 9000));
        assert_eq!(f.count, 0);
    }
}
