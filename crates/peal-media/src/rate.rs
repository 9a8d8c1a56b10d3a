//! From the path's bandwidth estimate to what the encoders do. Pure: the
//! estimate in, targets out; the estimator itself is webrtc-rs's GCC (delay
//! and loss based, on transport-wide feedback), driven in `link`.
//!
//! The numbers and why:
//! - [`START_BPS`]: 500 kbit/s, below nearly every link people call on
//!   (and a watchable 640x480), so the first seconds don't fill a queue;
//!   GCC ramps up ~8% every 200 ms from there (to 1.5 Mbit/s in ~3 s).
//! - [`MIN_BPS`]: 100 kbit/s: the voice (32 kbit/s) and a small, slow
//!   picture; below it video is worth less than the voice it would crowd.
//! - [`MAX_BPS`]: 2.5 Mbit/s: 640x480 at 30 fps gains nothing visible past
//!   ~2 Mbit/s, and on a wide link a call shouldn't take more than it uses.
//! - [`PACING_FACTOR`]: the pacer may send at 2.5x the target (libwebrtc's
//!   factor), so a keyframe leaves in a short burst instead of 2.5 frame
//!   intervals, yet a burst never runs at the link's full speed for long.

use std::time::{Duration, Instant};

/// Where the estimate starts (see the module docs).
pub const START_BPS: f64 = 500_000.0;
/// The least the estimate goes to.
pub const MIN_BPS: f64 = 100_000.0;
/// The most the estimate goes to.
pub const MAX_BPS: f64 = 2_500_000.0;
/// Pacing rate over the target.
pub const PACING_FACTOR: f64 = 2.5;
/// The voice's share (Opus at 32 kbit/s plus RTP/UDP/IP overhead).
pub const AUDIO_BPS: f64 = 45_000.0;
/// Packet headers, retransmissions and FEC: video gets this share of the rest.
pub const VIDEO_SHARE: f64 = 0.85;
/// The video encoder's floor (libvpx below this makes mush at 640x480).
pub const MIN_VIDEO_KBPS: u32 = 60;

/// How the picture steps down when the estimate is low. VP8 on a
/// 640x480 camera-like picture (measured: `synthetic::tests`' detailed
/// pattern) takes every frame at 400 kbit/s, drops over half of them at
/// 300 and nearly all at 200; at 320x240 it takes every frame from 200 down.
/// So below [`HALF_SIZE_BELOW_KBPS`] the picture halves in each direction,
/// and comes back at [`FULL_SIZE_FROM_KBPS`] (the gap keeps it from
/// flapping); at the bottom, [`HALF_RATE_BELOW_KBPS`], the frame rate halves
/// too, back from [`FULL_RATE_FROM_KBPS`].
///
/// A step up also waits [`STEP_UP_AFTER`] of the rate staying there: each
/// step is a new keyframe, and a picture that flips size with every swing
/// of the estimate costs more than it shows. A step down is at once.
pub const HALF_SIZE_BELOW_KBPS: u32 = 300;
pub const FULL_SIZE_FROM_KBPS: u32 = 420;
pub const HALF_RATE_BELOW_KBPS: u32 = 110;
pub const FULL_RATE_FROM_KBPS: u32 = 150;
pub const STEP_UP_AFTER: Duration = Duration::from_secs(4);

/// A step on the quality ladder.
///
/// ```text
///            < 300 kbit/s           < 110 kbit/s
///   Full ──────────────────▶ Half ──────────────▶ HalfSlow
///   full size, full rate ◀── half size ◀───────── half size, half rate
///            ≥ 420 kbit/s           ≥ 150 kbit/s
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    Full,
    Half,
    HalfSlow,
}

impl Layer {
    /// Width and height are divided by this.
    pub fn divisor(self) -> u32 {
        match self {
            Layer::Full => 1,
            Layer::Half | Layer::HalfSlow => 2,
        }
    }

    /// Encode every frame (1) or every other one (2).
    pub fn frame_step(self) -> u32 {
        match self {
            Layer::Full | Layer::Half => 1,
            Layer::HalfSlow => 2,
        }
    }

    /// Whether `self` is a step up from `from`.
    fn is_up_from(self, from: Layer) -> bool {
        self.divisor() < from.divisor() || self.frame_step() < from.frame_step()
    }

    /// One step for a video rate, if it calls for one.
    fn step(self, kbps: u32) -> Option<Layer> {
        match self {
            Layer::Full if kbps < HALF_SIZE_BELOW_KBPS => Some(Layer::Half),
            Layer::Full => None,
            Layer::Half if kbps >= FULL_SIZE_FROM_KBPS => Some(Layer::Full),
            Layer::Half if kbps < HALF_RATE_BELOW_KBPS => Some(Layer::HalfSlow),
            Layer::Half => None,
            Layer::HalfSlow if kbps >= FULL_RATE_FROM_KBPS => Some(Layer::Half),
            Layer::HalfSlow => None,
        }
    }

    /// Where a video rate leads from here (as many steps as it takes).
    fn settle(self, kbps: u32) -> Layer {
        let mut layer = self;
        // At most two steps either way; the bound keeps a bad table from looping.
        for _ in 0..3 {
            match layer.step(kbps) {
                Some(next) => layer = next,
                None => break,
            }
        }
        layer
    }
}

/// What the video encoder should do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VideoTarget {
    pub kbps: u32,
    pub layer: Layer,
}

/// The video target for a bandwidth estimate, with hysteresis on the
/// ladder's steps so it doesn't flap at a threshold.
#[derive(Clone, Debug)]
pub struct RateControl {
    /// The most video may take (the user's or the session's ceiling).
    max_kbps: u32,
    target: VideoTarget,
    /// Since when the rate has called for a step up (and which).
    up_since: Option<(Instant, Layer)>,
}

impl RateControl {
    pub fn new(max_kbps: u32) -> Self {
        let mut r = RateControl {
            max_kbps: max_kbps.max(MIN_VIDEO_KBPS),
            target: VideoTarget {
                kbps: 0,
                layer: Layer::Full,
            },
            up_since: None,
        };
        r.target.kbps = r.video_kbps(START_BPS);
        r
    }

    pub fn target(&self) -> VideoTarget {
        self.target
    }

    /// The video rate for an estimate (bit/s, for everything we send).
    fn video_kbps(&self, estimate_bps: f64) -> u32 {
        let est = if estimate_bps.is_finite() {
            estimate_bps
        } else {
            START_BPS
        };
        let video = ((est.clamp(MIN_BPS, MAX_BPS) - AUDIO_BPS) * VIDEO_SHARE / 1000.0) as u32;
        video.clamp(MIN_VIDEO_KBPS, self.max_kbps)
    }

    /// A new estimate (bit/s, for everything we send) at `now`; the new
    /// target.
    pub fn update(&mut self, estimate_bps: f64, now: Instant) -> VideoTarget {
        let kbps = match estimate_bps.is_finite() {
            true => self.video_kbps(estimate_bps),
            false => self.target.kbps,
        };
        let here = self.target.layer;
        let wanted = here.settle(kbps);
        let layer = if !wanted.is_up_from(here) {
            self.up_since = None;
            wanted
        } else {
            match self.up_since {
                Some((since, to)) if to == wanted && now.duration_since(since) >= STEP_UP_AFTER => {
                    self.up_since = None;
                    wanted
                }
                Some((_, to)) if to == wanted => here,
                _ => {
                    self.up_since = Some((now, wanted));
                    here
                }
            }
        };
        self.target = VideoTarget { kbps, layer };
        self.target
    }
}

/// The loss to tell Opus to expect (its in-band FEC spends bits in
/// proportion), from the fraction the peer reports lost: a little more
/// than measured, since loss comes in bursts; 0 on a clean path.
pub fn opus_expected_loss_pct(fraction_lost: f64) -> i32 {
    if !fraction_lost.is_finite() || fraction_lost <= 0.0 {
        return 0;
    }
    ((fraction_lost * 100.0 * 1.5).ceil() as i32).clamp(1, 30)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_video_target_follows_the_estimate_within_bounds() {
        let mut r = RateControl::new(1500);
        let now = Instant::now();
        assert_eq!(
            r.target().kbps,
            ((START_BPS - AUDIO_BPS) * VIDEO_SHARE / 1000.0) as u32
        );
        assert_eq!(r.update(600_000.0, now).kbps, 471);
        assert_eq!(r.update(10_000_000.0, now).kbps, 1500, "the ceiling");
        assert_eq!(r.update(0.0, now).kbps, MIN_VIDEO_KBPS, "the floor");
        assert_eq!(r.update(f64::NAN, now).kbps, MIN_VIDEO_KBPS, "unchanged");
    }

    #[test]
    fn a_low_estimate_steps_the_picture_down_and_lasting_room_brings_it_back() {
        let mut r = RateControl::new(1500);
        let t0 = Instant::now();
        let s = |n: u64| t0 + Duration::from_secs(n);
        assert_eq!(r.target().layer, Layer::Full, "the start rate is full size");
        let mut at = |bps: f64, t: Instant| {
            let v = r.update(bps, t);
            (v.kbps, v.layer)
        };
        assert_eq!(at(420_000.0, s(0)), (318, Layer::Full));
        assert_eq!(at(380_000.0, s(1)), (284, Layer::Half), "down at once");
        assert_eq!(at(500_000.0, s(2)), (386, Layer::Half), "under the step up");
        assert_eq!(
            at(560_000.0, s(3)),
            (437, Layer::Half),
            "room, but not for long yet"
        );
        assert_eq!(at(560_000.0, s(6)), (437, Layer::Half));
        assert_eq!(at(560_000.0, s(7)), (437, Layer::Full), "4 s of room: up");
        // A collapse goes down both steps at once...
        assert_eq!(at(150_000.0, s(8)), (89, Layer::HalfSlow));
        // ...a swing back that doesn't last changes nothing...
        assert_eq!(at(1_000_000.0, s(9)), (811, Layer::HalfSlow));
        assert_eq!(at(150_000.0, s(10)), (89, Layer::HalfSlow));
        assert_eq!(
            at(1_000_000.0, s(11)),
            (811, Layer::HalfSlow),
            "the wait starts over"
        );
        assert_eq!(at(1_000_000.0, s(14)), (811, Layer::HalfSlow));
        // ...and lasting room comes back all the way.
        assert_eq!(at(1_000_000.0, s(15)), (811, Layer::Full));
    }

    #[test]
    fn every_layer_names_its_size_and_rate() {
        let all = [Layer::Full, Layer::Half, Layer::HalfSlow];
        assert_eq!(all.map(Layer::divisor), [1, 2, 2]);
        assert_eq!(all.map(Layer::frame_step), [1, 1, 2]);
        assert!(Layer::Full.is_up_from(Layer::Half) && Layer::Half.is_up_from(Layer::HalfSlow));
        assert!(!Layer::Half.is_up_from(Layer::Full) && !Layer::Full.is_up_from(Layer::Full));
        // A steady rate settles once and stays: no layer flaps.
        for l in all {
            for kbps in (0..2000).step_by(5) {
                let once = l.settle(kbps);
                assert_eq!(once.settle(kbps), once, "{l:?} at {kbps} kbit/s");
            }
        }
    }

    #[test]
    fn opus_is_told_to_expect_a_little_more_loss_than_measured() {
        assert_eq!(opus_expected_loss_pct(0.0), 0);
        assert_eq!(opus_expected_loss_pct(0.03), 5);
        assert_eq!(opus_expected_loss_pct(0.5), 30);
        assert_eq!(opus_expected_loss_pct(f64::NAN), 0);
    }
}
