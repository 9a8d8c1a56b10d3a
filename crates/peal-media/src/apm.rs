//! The microphone's processing: echo cancellation (AEC3), noise
//! suppression and gain control (AGC2), with the speaker's output as the
//! far-end reference.
//!
//! **sonora**, a pure-Rust port of WebRTC's audio processing module, not
//! webrtc-audio-processing (bindings to the C++ library): it is the same
//! AEC3/NS/AGC2, it builds with cargo alone on every target we ship
//! (Windows and macOS cross-builds need no C++ toolchain or system
//! library; Debian 12 packages only the old 0.3 library, without AEC3),
//! and its API takes the frames we already have (48 kHz mono i16).
//!
//! The flow: the speaker's callback taps what it actually plays, 10 ms at a
//! time, into a bounded queue ([`render_tap`], never blocking the audio
//! callback); the microphone's side drains it into [`Apm::render`] before
//! each [`Apm::capture`], so the processor lives on one thread. AEC3
//! estimates the speaker-to-microphone delay itself (up to ~500 ms); the
//! hint is [`DEVICE_DELAY_MS`].
//!
//! Pure apart from sonora's own state: no clock, no device.

use std::sync::{mpsc, Arc, Mutex};

use sonora::config::{EchoCanceller, GainController2, HighPassFilter, NoiseSuppression};
use sonora::{AudioProcessing, Config, StreamConfig};

use crate::synthetic::SAMPLE_RATE;

/// Samples in one of the processor's 10 ms frames (48 kHz mono).
pub const APM_FRAME: usize = SAMPLE_RATE as usize / 100;

/// The delay hint (ms) from playing a sample to capturing its echo: a
/// desktop's output and input buffers (~20 ms each) and the air. AEC3
/// finds the real delay from there.
pub const DEVICE_DELAY_MS: i32 = 40;

/// 10 ms frames of played audio the tap holds for the processor (1 s):
/// beyond it the microphone side has stopped and the oldest are dropped.
const TAP_FRAMES: usize = 100;

/// What a speaker played, 10 ms at a time, for whichever microphone's
/// processor is running (one at a time; a new one after a camera switch
/// takes over the same queue).
pub type EchoReference = Arc<Mutex<mpsc::Receiver<[i16; APM_FRAME]>>>;

/// The processor for one microphone.
pub struct Apm {
    inner: AudioProcessing,
    reference: Option<EchoReference>,
    scratch: [i16; APM_FRAME],
}

impl Apm {
    /// Echo cancellation, noise suppression (moderate) and AGC2, at 48 kHz
    /// mono; `reference`: the speaker's [`render_tap`], if there is one.
    pub fn new(reference: Option<EchoReference>) -> Self {
        let config = Config {
            high_pass_filter: Some(HighPassFilter::default()),
            echo_canceller: Some(EchoCanceller::default()),
            noise_suppression: Some(NoiseSuppression::default()),
            gain_controller2: Some(GainController2::default()),
            ..Default::default()
        };
        let stream = StreamConfig::new(SAMPLE_RATE, 1);
        let mut inner = AudioProcessing::builder()
            .config(config)
            .capture_config(stream)
            .render_config(stream)
            .build();
        // In range, so never refused.
        let _ = inner.set_stream_delay_ms(DEVICE_DELAY_MS);
        Apm {
            inner,
            reference,
            scratch: [0; APM_FRAME],
        }
    }

    /// Far-end audio as it was played: whole 10 ms frames of `pcm` (a
    /// partial one at the end is ignored).
    pub fn render(&mut self, pcm: &[i16]) {
        for frame in pcm.chunks_exact(APM_FRAME) {
            if let Err(e) = self.inner.process_render_i16(frame, &mut self.scratch) {
                tracing::warn!(error = ?e, "echo reference not taken");
            }
        }
    }

    /// Processes captured audio in place, in whole 10 ms frames (a partial
    /// one at the end passes unprocessed), after taking in what the speaker
    /// played since the last call.
    pub fn capture(&mut self, pcm: &mut [i16]) {
        if let Some(r) = self.reference.clone() {
            let r = r.lock().unwrap_or_else(|e| e.into_inner());
            while let Ok(frame) = r.try_recv() {
                self.render(&frame);
            }
        }
        for frame in pcm.chunks_exact_mut(APM_FRAME) {
            self.scratch.copy_from_slice(frame);
            if let Err(e) = self.inner.process_capture_i16(&self.scratch, frame) {
                tracing::warn!(error = ?e, "microphone audio not processed");
            }
        }
    }

    /// AEC3's echo return loss enhancement now (dB), once it has one.
    pub fn erle_db(&self) -> Option<f64> {
        self.inner.statistics().echo_return_loss_enhancement
    }
}

/// The speaker's side of the echo reference: gathers played 48 kHz
/// samples and hands the processor whole 10 ms frames, never blocking.
pub struct RenderTap {
    tx: mpsc::SyncSender<[i16; APM_FRAME]>,
    frame: [i16; APM_FRAME],
    len: usize,
}

impl RenderTap {
    /// One played sample (48 kHz mono, -1..1).
    pub fn push(&mut self, sample: f32) {
        self.frame[self.len] = (sample.clamp(-1.0, 1.0) * 32767.0) as i16;
        self.len += 1;
        if self.len == APM_FRAME {
            self.len = 0;
            // Full: the microphone side isn't reading; this frame is lost.
            let _ = self.tx.try_send(self.frame);
        }
    }
}

/// A tap for the speaker and the receiver for the microphone's [`Apm`].
pub fn render_tap() -> (RenderTap, EchoReference) {
    let (tx, rx) = mpsc::sync_channel(TAP_FRAMES);
    (
        RenderTap {
            tx,
            frame: [0; APM_FRAME],
            len: 0,
        },
        Arc::new(Mutex::new(rx)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A voice-like signal: harmonics of a wavering pitch, spoken in
    /// syllables (on 120-300 ms, off 40-200 ms), from a seed.
    fn voice(f0: f32, seed: u32, secs: f32, level: f32) -> Vec<f32> {
        let n = (secs * SAMPLE_RATE as f32) as usize;
        let mut out = Vec::with_capacity(n);
        let mut rng = seed;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            rng
        };
        let (mut phase, mut left, mut on) = (0.0f32, 0usize, false);
        let rate = SAMPLE_RATE as f32;
        for i in 0..n {
            if left == 0 {
                on = !on;
                let ms = if on {
                    120 + next() % 180
                } else {
                    40 + next() % 160
                };
                left = ms as usize * 48;
            }
            left -= 1;
            let t = i as f32 / rate;
            let pitch = f0 * (1.0 + 0.06 * (2.0 * std::f32::consts::PI * 3.0 * t).sin());
            phase += pitch / rate;
            let mut s = 0.0;
            for k in 1..=24 {
                let k = k as f32;
                // A falling spectrum with a formant bump near 700 Hz.
                let f = k * pitch;
                let formant = 1.0 + 2.0 * (-((f - 700.0) / 300.0).powi(2)).exp();
                s += (2.0 * std::f32::consts::PI * k * phase).sin() * formant / k;
            }
            out.push(if on { s * level } else { 0.0 });
        }
        out
    }

    fn to_i16(x: &[f32]) -> Vec<i16> {
        x.iter()
            .map(|v| (v.clamp(-1.0, 1.0) * 32767.0) as i16)
            .collect()
    }

    fn energy(x: &[i16]) -> f64 {
        x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / x.len().max(1) as f64
    }

    fn db(a: f64, b: f64) -> f64 {
        10.0 * (a.max(1e-9) / b.max(1e-9)).log10()
    }

    /// The room: the far end's voice from the speaker reaches the
    /// microphone `delay_ms` later, attenuated, with a weaker reflection.
    fn echo_of(far: &[f32], delay_ms: usize) -> Vec<f32> {
        let d = delay_ms * 48;
        let r = d + 15 * 48;
        (0..far.len())
            .map(|i| {
                let direct = if i >= d { 0.35 * far[i - d] } else { 0.0 };
                let reflection = if i >= r { 0.12 * far[i - r] } else { 0.0 };
                direct + reflection
            })
            .collect()
    }

    /// Runs the processor over `secs`: the far end talks for the first
    /// 6 s only, the near end from 6 s on; the output.
    fn call(delay_ms: usize, reference: bool) -> (Vec<i16>, Vec<i16>, Vec<i16>) {
        let secs = 9.0;
        let mut far = voice(210.0, 7, secs, 0.08);
        let mut near = voice(125.0, 99, secs, 0.06);
        let split = 6 * SAMPLE_RATE as usize;
        far[split..].fill(0.0);
        near[..split].fill(0.0);
        let echo = echo_of(&far, delay_ms);
        let mic: Vec<f32> = near.iter().zip(&echo).map(|(n, e)| n + e).collect();
        let (far, mic, near) = (to_i16(&far), to_i16(&mic), to_i16(&near));
        let (mut tap, rx) = render_tap();
        let mut apm = Apm::new(reference.then_some(rx));
        let mut out = mic.clone();
        // As a call runs: 20 ms played, then 20 ms captured.
        for (played, captured) in far.chunks(960).zip(out.chunks_mut(960)) {
            for &s in played {
                tap.push(f32::from(s) / 32767.0);
            }
            apm.capture(captured);
        }
        (mic, out, near)
    }

    #[test]
    fn the_far_end_s_echo_is_cancelled_by_20_db_and_the_near_end_talker_is_kept() {
        for delay_ms in [40, 120] {
            let (mic, out, near) = call(delay_ms, true);
            let s = |a: f32, b: f32| (a * 48_000.0) as usize..(b * 48_000.0) as usize;
            // Once converged (from 3 s), while only the far end talks.
            let erle = db(energy(&mic[s(3.0, 6.0)]), energy(&out[s(3.0, 6.0)]));
            assert!(erle >= 20.0, "{delay_ms} ms echo path: ERLE {erle:.1} dB");
            // The near end alone (after AGC has settled on it): still heard,
            // within 6 dB of how it spoke.
            let kept = db(energy(&out[s(7.0, 9.0)]), energy(&near[s(7.0, 9.0)]));
            assert!(
                kept.abs() <= 6.0,
                "{delay_ms} ms: the near end came out at {kept:+.1} dB"
            );
            // And it is the reference that does it: without it the echo
            // comes through (noise suppression doesn't take a voice out).
            let (mic, out, _) = call(delay_ms, false);
            let passed = db(energy(&mic[s(3.0, 6.0)]), energy(&out[s(3.0, 6.0)]));
            assert!(
                passed < 10.0,
                "{delay_ms} ms, no reference: the echo fell {passed:.1} dB"
            );
        }
    }

    #[test]
    fn without_a_reference_the_microphone_still_passes_and_nothing_panics() {
        let mut apm = Apm::new(None);
        let mut odd = vec![1000i16; 700];
        apm.capture(&mut odd);
        assert_eq!(odd.len(), 700);
        assert!(
            odd[APM_FRAME..].iter().all(|&v| v == 1000),
            "the partial frame passes as is"
        );
        apm.render(&[i16::MAX; 123]);
        let (mut tap, rx) = render_tap();
        drop(rx);
        for _ in 0..APM_FRAME * 3 {
            tap.push(f32::NAN);
        }
    }
}
