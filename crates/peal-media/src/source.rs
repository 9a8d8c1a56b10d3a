//! Local media: a source produces raw frames, one encoder per medium turns
//! them into VP8/Opus once, and every link gets the same encoded frames.
//!
//! Capture and encoding run on their own thread (they are CPU work with a
//! deadline, not async I/O); the encoded frames go to the links through a
//! broadcast channel, where a link that falls behind skips frames instead of
//! holding the others back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::broadcast;

use crate::devices::{Camera, Microphone};
use crate::session::{unix_ms, SessionSettings, StatsInner};
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

/// The running source thread.
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
}

fn opus_encoder() -> Result<opus::Encoder, MediaError> {
    let mut enc = opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Voip)
        .map_err(|e| MediaError::Codec(format!("opus encoder: {e}")))?;
    let _ = enc.set_bitrate(opus::Bitrate::Bits(32_000));
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
}

/// The video half: one VP8 encoder whose frames go to every link.
struct VideoOut {
    enc: Vp8Encoder,
    out: broadcast::Sender<Encoded>,
    stats: Arc<Mutex<StatsInner>>,
    flags: Arc<Flags>,
    frame_every: Duration,
}

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
        let enc = Vp8Encoder::new(EncoderConfig {
            width,
            height,
            fps,
            bitrate_kbps: settings.video_kbps,
        })
        .map_err(|e| MediaError::Codec(e.to_string()))?;
        Ok(VideoOut {
            enc,
            out,
            stats,
            flags,
            frame_every: Duration::from_secs(1) / fps,
        })
    }

    /// Encodes and sends one I420 picture (if video is on).
    fn send(&mut self, i420: &[u8]) {
        if !self.flags.video.load(Ordering::Relaxed) {
            return;
        }
        let key = self.flags.keyframe.swap(false, Ordering::Relaxed);
        let Ok(frames) = self.enc.encode(i420, key) else {
            return;
        };
        for fr in frames {
            {
                let mut st = self.stats.lock().unwrap_or_else(|e| e.into_inner());
                st.sent.video_frames += 1;
                st.sent.keyframes += u64::from(fr.keyframe);
                st.sent.bytes += fr.data.len() as u64;
            }
            let _ = self.out.send(Encoded {
                video: true,
                data: Bytes::from(fr.data),
                duration: self.frame_every,
            });
        }
    }
}

/// The audio half: one Opus encoder whose packets go to every link.
struct AudioOut {
    enc: opus::Encoder,
    out: broadcast::Sender<Encoded>,
    stats: Arc<Mutex<StatsInner>>,
    flags: Arc<Flags>,
    packet: Vec<u8>,
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
        })
    }

    /// Encodes and sends 20 ms of mono 48 kHz audio (unless muted).
    fn send(&mut self, pcm: &[i16; AUDIO_FRAME]) {
        if !self.flags.audio.load(Ordering::Relaxed) {
            return;
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

impl SourceHandle {
    /// The moving pattern and the tone, encoded at the settings' size and rate.
    pub(crate) fn synthetic(
        settings: &SessionSettings,
        tx: broadcast::Sender<Encoded>,
        stats: Arc<Mutex<StatsInner>>,
    ) -> Result<Self, MediaError> {
        let pattern = VideoPattern::new(settings.width, settings.height)
            .map_err(|e| MediaError::Codec(format!("synthetic video: {e}")))?;
        let flags = flags_for(settings);
        let mut video = VideoOut::new(
            settings.width,
            settings.height,
            settings,
            tx.clone(),
            stats.clone(),
            flags.clone(),
        )?;
        let mut audio = AudioOut::new(tx, stats, flags.clone())?;
        let frame_every = video.frame_every;
        let f = flags.clone();
        let thread = spawn("peal-media-source", move || {
            let start = Instant::now();
            let (mut next_audio, mut next_video) = (start, start);
            let (mut counter, mut tone, mut i420) = (0u32, Tone::default(), Vec::new());
            let mut pcm = [0i16; AUDIO_FRAME];
            while !f.stop.load(Ordering::Relaxed) {
                let now = Instant::now();
                if now >= next_audio {
                    next_audio += Duration::from_millis(20);
                    tone.next_frame(unix_ms(), &mut pcm);
                    audio.send(&pcm);
                }
                let early = f.now.swap(false, Ordering::Relaxed) && now < next_video;
                if now >= next_video || early {
                    // On the tick, keep the cadence; early, restart it from now.
                    next_video = if early { now } else { next_video } + frame_every;
                    if f.video.load(Ordering::Relaxed) {
                        pattern.render(Stamp::new(counter, unix_ms()), &mut i420);
                        counter = counter.wrapping_add(1);
                        video.send(&i420);
                    }
                }
                let wake = next_audio.min(next_video);
                let now = Instant::now();
                if wake > now {
                    // Woken early by `request_keyframe`.
                    std::thread::park_timeout(wake - now);
                } else if now - wake > Duration::from_secs(1) {
                    // Far behind (a suspended machine): skip ahead instead of bursting.
                    next_audio = now;
                    next_video = now;
                }
            }
        })?;
        Ok(SourceHandle {
            flags,
            threads: vec![thread],
        })
    }

    /// The default microphone, and for video calls the first camera: each
    /// missing one is a [`MediaError::NoDevice`] naming it.
    pub(crate) fn devices(
        settings: &SessionSettings,
        tx: broadcast::Sender<Encoded>,
        stats: Arc<Mutex<StatsInner>>,
    ) -> Result<Self, MediaError> {
        let flags = flags_for(settings);
        let mic = Microphone::open()?;
        let mut audio = AudioOut::new(tx.clone(), stats.clone(), flags.clone())?;
        let f = flags.clone();
        let mut threads = vec![spawn("peal-media-mic", move || {
            while !f.stop.load(Ordering::Relaxed) {
                match mic.frames.recv_timeout(Duration::from_millis(100)) {
                    Ok(pcm) => audio.send(&pcm),
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
        })?];
        if settings.call_type == peal_proto::wire::CallType::Video {
            // The camera is opened on its thread (its buffers stay there);
            // the thread reports whether it could.
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let (s, f) = (settings.clone(), flags.clone());
            let camera = spawn("peal-media-camera", move || {
                let opened = Camera::open(s.camera, s.width, s.height).and_then(|cam| {
                    let video = VideoOut::new(cam.width, cam.height, &s, tx, stats, f.clone())?;
                    Ok((cam, video))
                });
                let (mut cam, mut video) = match opened {
                    Ok(v) => {
                        let _ = ready_tx.send(Ok(()));
                        v
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let mut i420 = Vec::new();
                while !f.stop.load(Ordering::Relaxed) {
                    if let Err(e) = cam.next_i420(&mut i420) {
                        tracing::warn!(error = %e, "camera stopped");
                        break;
                    }
                    video.send(&i420);
                }
            })?;
            let opened = ready_rx
                .recv()
                .unwrap_or_else(|_| Err(MediaError::NoDevice("camera (thread died)".into())));
            threads.push(camera);
            if let Err(e) = opened {
                let mut handle = SourceHandle { flags, threads };
                handle.halt();
                return Err(e);
            }
        }
        Ok(SourceHandle { flags, threads })
    }

    pub fn request_keyframe(&self) {
        self.flags.keyframe.store(true, Ordering::Relaxed);
        self.flags.now.store(true, Ordering::Relaxed);
        for t in &self.threads {
            t.thread().unpark();
        }
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
