//! Local media: a [`VideoSource`] and an [`AudioSource`] produce raw frames
//! (the synthetic pattern and tone, a camera and microphone, or an app's
//! own), one encoder per medium turns them into VP8/Opus once, and every
//! link gets the same encoded frames.
//!
//! Capture and encoding run on their own thread (they are CPU work with a
//! deadline, not async I/O); the encoded frames go to the links through a
//! broadcast channel, where a link that falls behind skips frames instead of
//! holding the others back.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::broadcast;

use crate::apm::{Apm, EchoReference};
use crate::devices::{Camera, Microphone};
use crate::scale::halve_i420;
use crate::session::{unix_ms, SessionSettings};
use crate::stats::StatsInner;
use crate::synthetic::{Stamp, Tone, VideoPattern, AUDIO_FRAME, SAMPLE_RATE};
use crate::vpx::{EncoderConfig, Vp8Encoder};
use crate::MediaError;

/// One encoded frame for every link.
#[derive(Clone, Debug)]
pub struct Encoded {
    pub video: bool,
    pub data: Bytes,
    pub duration: Duration,
}

/// The running capture threads.
pub struct SourceHandle {
    flags: Arc<Flags>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct Flags {
    stop: AtomicBool,
    keyframe: AtomicBool,
    /// Capture the next video frame now, not at the next tick (a peer just
    /// started receiving: its first frame should not wait up to a frame interval).
    now: AtomicBool,
    audio: AtomicBool,
    video: AtomicBool,
    /// The bandwidth estimate for what we send (bit/s; 0: none yet).
    estimate_bps: AtomicU64,
    /// The audio loss Opus should expect, in percent.
    loss_pct: AtomicI32,
}

pub(crate) fn opus_encoder() -> Result<opus::Encoder, MediaError> {
    let mut enc = opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Voip)
        .map_err(|e| MediaError::Codec(format!("opus encoder: {e}")))?;
    let _ = enc.set_bitrate(opus::Bitrate::Bits(32_000));
    // In-band FEC: each packet carries a coarse copy of the one before, which
    // the receiver decodes when that one was lost; it costs bits only once
    // the expected loss (set from the peer's receiver reports) is above 0.
    let _ = enc.set_inband_fec(true);
    let _ = enc.set_packet_loss_perc(0);
    Ok(enc)
}

/// A peer's Opus decoder (48 kHz mono, 20 ms frames).
pub struct AudioDecoder(opus::Decoder);

impl AudioDecoder {
    pub fn new() -> Result<Self, MediaError> {
        opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono)
            .map(AudioDecoder)
            .map_err(|e| MediaError::Codec(format!("opus decoder: {e}")))
    }

    /// Decodes one packet; `None` for one that is not Opus.
    pub fn decode(&mut self, packet: &[u8]) -> Option<Vec<i16>> {
        let mut out = vec![0i16; AUDIO_FRAME * 6];
        let n = self.0.decode(packet, &mut out, false).ok()?;
        out.truncate(n);
        Some(out)
    }

    /// The 20 ms before `next`, from its in-band FEC (concealed if it has none).
    pub fn recover(&mut self, next: &[u8]) -> Option<Vec<i16>> {
        let mut out = vec![0i16; AUDIO_FRAME];
        let n = self.0.decode(next, &mut out, true).ok()?;
        out.truncate(n);
        Some(out)
    }

    /// 20 ms concealed from what came before (Opus PLC).
    pub fn conceal(&mut self) -> Option<Vec<i16>> {
        let mut out = vec![0i16; AUDIO_FRAME];
        let n = self.0.decode(&[], &mut out, false).ok()?;
        out.truncate(n);
        Some(out)
    }
}

/// The video half: one VP8 encoder whose frames go to every link, at the
/// size and rate the quality ladder ([`crate::rate::Layer`]) asks for.
struct VideoOut {
    enc: Vp8Encoder,
    rate: crate::rate::RateControl,
    /// The source's own size (the ladder's full size).
    full: (u32, u32),
    /// Frames captured (for skipping every other one at a low rate).
    captured: u64,
    out: broadcast::Sender<Encoded>,
    stats: Arc<Mutex<StatsInner>>,
    flags: Arc<Flags>,
    frame_every: Duration,
    last_key: Option<Instant>,
}

/// A keyframe at least this often, so a receiver that lost one (or a
/// renderer that skipped frames) recovers without asking.
const KEYFRAME_EVERY: Duration = Duration::from_secs(3);

impl VideoOut {
    fn new(
        width: u32,
        height: u32,
        settings: &SessionSettings,
        out: broadcast::Sender<Encoded>,
        stats: Arc<Mutex<StatsInner>>,
        flags: Arc<Flags>,
    ) -> Result<Self, MediaError> {
        let fps = settings.fps.clamp(1, 60);
        let rate = crate::rate::RateControl::new(settings.video_kbps);
        let (w, h) = ladder_size((width, height), rate.target().layer);
        Ok(VideoOut {
            enc: encoder(w, h, fps, rate.target().kbps)?,
            rate,
            full: (width, height),
            captured: 0,
            out,
            stats,
            flags,
            frame_every: Duration::from_secs(1) / fps,
            last_key: None,
        })
    }

    /// The target for the next frame, from the latest estimate.
    fn plan(&mut self) -> crate::rate::VideoTarget {
        let estimate = self.flags.estimate_bps.load(Ordering::Relaxed);
        if estimate > 0 {
            self.rate.update(estimate as f64, Instant::now())
        } else {
            self.rate.target()
        }
    }

    /// The picture size for a target.
    fn size_for(&self, t: crate::rate::VideoTarget) -> (u32, u32) {
        ladder_size(self.full, t.layer)
    }

    /// Encodes and sends one `w`x`h` I420 picture (if video is on),
    /// starting a new encoder (and so a keyframe) when the size changed.
    fn send(&mut self, i420: &[u8], (w, h): (u32, u32), target: crate::rate::VideoTarget) {
        if !self.flags.video.load(Ordering::Relaxed) {
            return;
        }
        let cfg = self.enc.config();
        if (cfg.width, cfg.height) != (w, h) {
            match encoder(w, h, cfg.fps, target.kbps) {
                Ok(enc) => {
                    tracing::info!(width = w, height = h, kbps = target.kbps, layer = ?target.layer, "video size changed");
                    self.enc = enc;
                }
                Err(e) => {
                    tracing::warn!(error = %e, width = w, height = h, "video encoder not resized");
                    return;
                }
            }
        } else if let Err(e) = self.enc.set_bitrate_kbps(target.kbps) {
            tracing::warn!(error = %e, kbps = target.kbps, "video bitrate not changed");
        }
        self.captured += 1;
        let step = target.layer.frame_step();
        let key_asked = self.flags.keyframe.load(Ordering::Relaxed);
        if !self.captured.is_multiple_of(u64::from(step)) && !key_asked {
            return; // a low rate: every other frame
        }
        let due = self.last_key.is_none_or(|t| t.elapsed() >= KEYFRAME_EVERY);
        let key = self.flags.keyframe.swap(false, Ordering::Relaxed) || due;
        let Ok(frames) = self.enc.encode_for(i420, key, step) else {
            return;
        };
        for fr in frames {
            if fr.keyframe {
                self.last_key = Some(Instant::now());
            }
            {
                let mut st = self.stats.lock().unwrap_or_else(|e| e.into_inner());
                st.sent.video_frames += 1;
                st.sent.video_target_kbps = u64::from(target.kbps);
                st.sent.video_width = w;
                st.sent.keyframes += u64::from(fr.keyframe);
                st.sent.bytes += fr.data.len() as u64;
            }
            let _ = self.out.send(Encoded {
                video: true,
                data: Bytes::from(fr.data),
                duration: self.frame_every * step,
            });
        }
    }
}

/// A source's size on a step of the ladder: divided by the layer's
/// divisor where the result is still one the pattern and VP8 handle well
/// (at least 320 wide, sides multiples of 4); else the full size.
fn ladder_size((w, h): (u32, u32), layer: crate::rate::Layer) -> (u32, u32) {
    let d = layer.divisor();
    if d > 1 && w / d >= crate::synthetic::MIN_WIDTH && w % (4 * d) == 0 && h % (4 * d) == 0 {
        (w / d, h / d)
    } else {
        (w, h)
    }
}

fn encoder(width: u32, height: u32, fps: u32, kbps: u32) -> Result<Vp8Encoder, MediaError> {
    Vp8Encoder::new(EncoderConfig {
        width,
        height,
        fps,
        bitrate_kbps: kbps,
    })
    .map_err(|e| MediaError::Codec(e.to_string()))
}

/// The audio half: one Opus encoder whose packets go to every link.
struct AudioOut {
    enc: opus::Encoder,
    out: broadcast::Sender<Encoded>,
    stats: Arc<Mutex<StatsInner>>,
    flags: Arc<Flags>,
    packet: Vec<u8>,
    loss_pct: i32,
}

impl AudioOut {
    fn new(
        out: broadcast::Sender<Encoded>,
        stats: Arc<Mutex<StatsInner>>,
        flags: Arc<Flags>,
    ) -> Result<Self, MediaError> {
        Ok(AudioOut {
            enc: opus_encoder()?,
            out,
            stats,
            flags,
            packet: vec![0u8; 1500],
            loss_pct: 0,
        })
    }

    /// Encodes and sends 20 ms of mono 48 kHz audio (unless muted).
    fn send(&mut self, pcm: &[i16; AUDIO_FRAME]) {
        if !self.flags.audio.load(Ordering::Relaxed) {
            return;
        }
        let loss = self.flags.loss_pct.load(Ordering::Relaxed);
        if loss != self.loss_pct && self.enc.set_packet_loss_perc(loss).is_ok() {
            self.loss_pct = loss;
        }
        let Ok(n) = self.enc.encode(pcm, &mut self.packet) else {
            return;
        };
        {
            let mut st = self.stats.lock().unwrap_or_else(|e| e.into_inner());
            st.sent.audio_frames += 1;
            st.sent.bytes += n as u64;
        }
        let _ = self.out.send(Encoded {
            video: false,
            data: Bytes::copy_from_slice(&self.packet[..n]),
            duration: Duration::from_millis(20),
        });
    }
}

fn flags_for(settings: &SessionSettings) -> Arc<Flags> {
    let flags = Arc::new(Flags::default());
    flags
        .audio
        .store(!settings.start_audio_muted, Ordering::Relaxed);
    flags
        .video
        .store(!settings.start_video_off, Ordering::Relaxed);
    flags.keyframe.store(true, Ordering::Relaxed);
    flags
}

fn spawn(
    name: &str,
    f: impl FnOnce() + Send + 'static,
) -> Result<std::thread::JoinHandle<()>, MediaError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(|e| MediaError::Codec(format!("{name} thread: {e}")))
}

/// Where raw video comes from: the test pattern, a camera, or anything an
/// app plugs in.
pub trait VideoSource: Send + 'static {
    /// The picture size [`VideoSource::capture`] makes now.
    fn size(&self) -> (u32, u32);
    /// Makes `width`x`height` pictures from now on, if this source can
    /// (the pattern can; a camera keeps its size and the caller scales).
    fn resize(&mut self, _width: u32, _height: u32) -> bool {
        false
    }
    /// `true` when [`VideoSource::capture`] waits for its own frames (a
    /// camera); `false` to be called on the session's frame clock.
    fn self_paced(&self) -> bool;
    /// Writes the next I420 picture into `out`.
    fn capture(&mut self, out: &mut Vec<u8>) -> Result<(), MediaError>;
}

/// Where raw audio comes from: 20 ms of 48 kHz mono at a time.
pub trait AudioSource: Send + 'static {
    /// `true` when [`AudioSource::capture`] waits for its own audio (a
    /// microphone); `false` to be called every 20 ms.
    fn self_paced(&self) -> bool;
    /// Fills `out`; `Ok(false)` when nothing came yet (asked again shortly).
    fn capture(&mut self, out: &mut [i16; AUDIO_FRAME]) -> Result<bool, MediaError>;
}

/// The moving test pattern, its counter and capture time in every frame.
pub struct PatternSource {
    pattern: VideoPattern,
    counter: u32,
}

impl PatternSource {
    /// `detail`: the camera-like picture ([`VideoPattern::with_detail`]).
    pub fn new(width: u32, height: u32, detail: bool) -> Result<Self, MediaError> {
        let pattern = VideoPattern::new(width, height)
            .map_err(|e| MediaError::Codec(format!("synthetic video: {e}")))?
            .with_detail(detail);
        Ok(PatternSource {
            pattern,
            counter: 0,
        })
    }
}

impl VideoSource for PatternSource {
    fn size(&self) -> (u32, u32) {
        (self.pattern.width, self.pattern.height)
    }

    fn resize(&mut self, width: u32, height: u32) -> bool {
        match VideoPattern::new(width, height) {
            Ok(p) => {
                self.pattern = p.with_detail(self.pattern.detail);
                true
            }
            Err(_) => false,
        }
    }

    fn self_paced(&self) -> bool {
        false
    }

    fn capture(&mut self, out: &mut Vec<u8>) -> Result<(), MediaError> {
        self.pattern
            .render(Stamp::new(self.counter, unix_ms()), out);
        self.counter = self.counter.wrapping_add(1);
        Ok(())
    }
}

impl AudioSource for Tone {
    fn self_paced(&self) -> bool {
        false
    }

    fn capture(&mut self, out: &mut [i16; AUDIO_FRAME]) -> Result<bool, MediaError> {
        self.next_frame(unix_ms(), out);
        Ok(true)
    }
}

impl VideoSource for Camera {
    fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn self_paced(&self) -> bool {
        true
    }

    fn capture(&mut self, out: &mut Vec<u8>) -> Result<(), MediaError> {
        self.next_i420(out)
    }
}

/// The microphone through echo cancellation, noise suppression and gain
/// control ([`Apm`]), the speaker's output as the echo reference.
pub struct ProcessedMicrophone {
    mic: Microphone,
    apm: Apm,
}

impl ProcessedMicrophone {
    pub fn new(mic: Microphone, echo: Option<EchoReference>) -> Self {
        if echo.is_none() {
            tracing::info!(
                "no speaker to cancel the echo of: noise suppression and gain control only"
            );
        }
        ProcessedMicrophone {
            mic,
            apm: Apm::new(echo),
        }
    }
}

impl AudioSource for ProcessedMicrophone {
    fn self_paced(&self) -> bool {
        true
    }

    fn capture(&mut self, out: &mut [i16; AUDIO_FRAME]) -> Result<bool, MediaError> {
        let got = self.mic.capture(out)?;
        if got {
            self.apm.capture(out);
        }
        Ok(got)
    }
}

impl AudioSource for Microphone {
    fn self_paced(&self) -> bool {
        true
    }

    fn capture(&mut self, out: &mut [i16; AUDIO_FRAME]) -> Result<bool, MediaError> {
        match self.frames.recv_timeout(Duration::from_millis(100)) {
            Ok(f) => {
                *out = f;
                Ok(true)
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Ok(false),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                Err(MediaError::NoDevice("microphone (capture stopped)".into()))
            }
        }
    }
}

/// Sleeps until `at`, or until woken for an early capture; `true` if woken early.
fn wait_until(at: Instant, flags: &Flags) -> bool {
    loop {
        if flags.stop.load(Ordering::Relaxed) {
            return false;
        }
        if flags.now.swap(false, Ordering::Relaxed) {
            return true;
        }
        let now = Instant::now();
        if now >= at {
            return false;
        }
        std::thread::park_timeout(at - now);
    }
}

/// Captures, encodes and sends video until stopped; on the session's frame
/// clock (with an early frame when a peer needs a keyframe now) unless the
/// source paces itself.
fn video_loop(mut src: Box<dyn VideoSource>, mut out: VideoOut, flags: Arc<Flags>) {
    let mut i420 = Vec::new();
    let mut half = Vec::new();
    let mut next = Instant::now();
    while !flags.stop.load(Ordering::Relaxed) {
        if !src.self_paced() {
            let early = wait_until(next, &flags);
            let now = Instant::now();
            // On the tick, keep the cadence; early, restart it from now. Far
            // behind (a suspended machine): skip ahead instead of bursting.
            next = if early || now > next + Duration::from_secs(1) {
                now
            } else {
                next
            } + out.frame_every;
            if flags.stop.load(Ordering::Relaxed) {
                break;
            }
        }
        if !flags.video.load(Ordering::Relaxed) {
            if src.self_paced() {
                // Keep draining the device so its frames stay fresh.
                let _ = src.capture(&mut i420);
            }
            continue;
        }
        let target = out.plan();
        let want = out.size_for(target);
        // A source that can make the smaller picture itself does; for the
        // rest (a camera) it is halved here.
        if src.size() != want {
            src.resize(want.0, want.1);
        }
        if let Err(e) = src.capture(&mut i420) {
            tracing::warn!(error = %e, "video source stopped");
            break;
        }
        let got = src.size();
        if got == want {
            out.send(&i420, want, target);
        } else if halve_i420(&i420, got.0, got.1, &mut half) {
            out.send(&half, (got.0 / 2, got.1 / 2), target);
        } else {
            out.send(&i420, got, target);
        }
    }
}

/// Captures, encodes and sends audio until stopped (every 20 ms unless the
/// source paces itself).
fn audio_loop(mut src: Box<dyn AudioSource>, mut out: AudioOut, flags: Arc<Flags>) {
    let mut pcm = [0i16; AUDIO_FRAME];
    let mut next = Instant::now();
    while !flags.stop.load(Ordering::Relaxed) {
        if !src.self_paced() {
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
            next = if now > next + Duration::from_secs(1) {
                now
            } else {
                next
            } + Duration::from_millis(20);
        }
        match src.capture(&mut pcm) {
            Ok(true) => out.send(&pcm),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "audio source stopped");
                break;
            }
        }
    }
}

impl SourceHandle {
    /// Starts a capture thread per source, each with its own encoder.
    pub(crate) fn start(
        video: Option<Box<dyn VideoSource>>,
        audio: Option<Box<dyn AudioSource>>,
        settings: &SessionSettings,
        tx: broadcast::Sender<Encoded>,
        stats: Arc<Mutex<StatsInner>>,
    ) -> Result<Self, MediaError> {
        let flags = flags_for(settings);
        let mut handle = SourceHandle {
            flags: flags.clone(),
            threads: Vec::new(),
        };
        if let Some(src) = video {
            let (w, h) = src.size();
            let out = VideoOut::new(w, h, settings, tx.clone(), stats.clone(), flags.clone())?;
            let f = flags.clone();
            handle
                .threads
                .push(spawn("peal-media-video", move || video_loop(src, out, f))?);
        }
        if let Some(src) = audio {
            let out = AudioOut::new(tx, stats, flags.clone())?;
            let f = flags.clone();
            handle
                .threads
                .push(spawn("peal-media-audio", move || audio_loop(src, out, f))?);
        }
        Ok(handle)
    }

    /// The moving pattern and the tone.
    pub(crate) fn synthetic(
        settings: &SessionSettings,
        tx: broadcast::Sender<Encoded>,
        stats: Arc<Mutex<StatsInner>>,
    ) -> Result<Self, MediaError> {
        let video = PatternSource::new(settings.width, settings.height, settings.synthetic_detail)?;
        let audio = Tone::default();
        SourceHandle::start(
            Some(Box::new(video)),
            Some(Box::new(audio)),
            settings,
            tx,
            stats,
        )
    }

    /// The chosen microphone (through [`ProcessedMicrophone`], `echo`
    /// being what the speaker plays), and for video calls the chosen
    /// camera: each missing one is a [`MediaError::NoDevice`] naming it.
    pub(crate) fn devices(
        settings: &SessionSettings,
        echo: Option<EchoReference>,
        tx: broadcast::Sender<Encoded>,
        stats: Arc<Mutex<StatsInner>>,
    ) -> Result<Self, MediaError> {
        let chosen = &settings.devices;
        let mic = ProcessedMicrophone::new(Microphone::open(chosen.microphone.as_deref())?, echo);
        let camera: Option<Box<dyn VideoSource>> =
            if settings.call_type == peal_proto::wire::CallType::Video {
                Some(Box::new(Camera::open(
                    chosen.camera.as_deref(),
                    settings.width,
                    settings.height,
                )?))
            } else {
                None
            };
        SourceHandle::start(camera, Some(Box::new(mic)), settings, tx, stats)
    }

    pub fn request_keyframe(&self) {
        self.flags.keyframe.store(true, Ordering::Relaxed);
        self.flags.now.store(true, Ordering::Relaxed);
        for t in &self.threads {
            t.thread().unpark();
        }
    }

    /// The bandwidth estimate for what we send (bit/s): the video encoder's
    /// bitrate and frame rate follow it ([`crate::rate`]).
    pub fn set_estimate(&self, bps: f64) {
        self.flags
            .estimate_bps
            .store(bps.max(0.0) as u64, Ordering::Relaxed);
    }

    /// The fraction of our audio the peers report lost: Opus's FEC follows it.
    pub fn set_audio_loss(&self, fraction: f64) {
        self.flags.loss_pct.store(
            crate::rate::opus_expected_loss_pct(fraction),
            Ordering::Relaxed,
        );
    }

    pub fn set_audio(&self, on: bool) {
        self.flags.audio.store(on, Ordering::Relaxed);
    }

    pub fn set_video(&self, on: bool) {
        self.flags.video.store(on, Ordering::Relaxed);
        if on {
            self.request_keyframe();
        }
    }

    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.flags.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

impl Drop for SourceHandle {
    fn drop(&mut self) {
        self.halt();
    }
}
