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
    thread: Option<std::thread::JoinHandle<()>>,
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

impl SourceHandle {
    /// The moving pattern and the tone, encoded at the settings' size and rate.
    pub(crate) fn synthetic(
        settings: &SessionSettings,
        tx: broadcast::Sender<Encoded>,
        stats: Arc<Mutex<StatsInner>>,
    ) -> Result<Self, MediaError> {
        let pattern = VideoPattern::new(settings.width, settings.height)
            .map_err(|e| MediaError::Codec(format!("synthetic video: {e}")))?;
        let mut venc = Vp8Encoder::new(EncoderConfig {
            width: settings.width,
            height: settings.height,
            fps: settings.fps.clamp(1, 60),
            bitrate_kbps: settings.video_kbps,
        })
        .map_err(|e| MediaError::Codec(e.to_string()))?;
        let mut aenc = opus_encoder()?;
        let flags = Arc::new(Flags::default());
        flags
            .audio
            .store(!settings.start_audio_muted, Ordering::Relaxed);
        flags
            .video
            .store(!settings.start_video_off, Ordering::Relaxed);
        flags.keyframe.store(true, Ordering::Relaxed);
        let frame_every = Duration::from_secs(1) / settings.fps.clamp(1, 60);
        let (out, f) = (tx.clone(), flags.clone());
        let thread = std::thread::Builder::new()
            .name("peal-media-source".into())
            .spawn(move || {
                let start = Instant::now();
                let (mut next_audio, mut next_video) = (start, start);
                let (mut counter, mut tone, mut i420) = (0u32, Tone::default(), Vec::new());
                let mut pcm = [0i16; AUDIO_FRAME];
                let mut packet = vec![0u8; 1500];
                while !f.stop.load(Ordering::Relaxed) {
                    let now = Instant::now();
                    if now >= next_audio {
                        next_audio += Duration::from_millis(20);
                        tone.next_frame(unix_ms(), &mut pcm);
                        if f.audio.load(Ordering::Relaxed) {
                            if let Ok(n) = aenc.encode(&pcm, &mut packet) {
                                let data = Bytes::copy_from_slice(&packet[..n]);
                                let mut st = stats.lock().unwrap_or_else(|e| e.into_inner());
                                st.sent.audio_frames += 1;
                                st.sent.bytes += n as u64;
                                drop(st);
                                let _ = out.send(Encoded {
                                    video: false,
                                    data,
                                    duration: Duration::from_millis(20),
                                });
                            }
                        }
                    }
                    let early = f.now.swap(false, Ordering::Relaxed) && now < next_video;
                    if now >= next_video || early {
                        // On the tick, keep the cadence; early, restart it from now.
                        next_video = if early { now } else { next_video } + frame_every;
                        if f.video.load(Ordering::Relaxed) {
                            pattern.render(Stamp::new(counter, unix_ms()), &mut i420);
                            counter = counter.wrapping_add(1);
                            let key = f.keyframe.swap(false, Ordering::Relaxed);
                            if let Ok(frames) = venc.encode(&i420, key) {
                                for fr in frames {
                                    let mut st = stats.lock().unwrap_or_else(|e| e.into_inner());
                                    st.sent.video_frames += 1;
                                    st.sent.keyframes += u64::from(fr.keyframe);
                                    st.sent.bytes += fr.data.len() as u64;
                                    drop(st);
                                    let _ = out.send(Encoded {
                                        video: true,
                                        data: Bytes::from(fr.data),
                                        duration: frame_every,
                                    });
                                }
                            }
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
            })
            .map_err(|e| MediaError::Codec(format!("source thread: {e}")))?;
        Ok(SourceHandle {
            flags,
            thread: Some(thread),
        })
    }

    /// Camera and microphone capture. This build has no capture backend
    /// linked (see the README), so it says so instead of sending silence.
    pub fn devices(_settings: &SessionSettings) -> Result<Self, MediaError> {
        Err(MediaError::NoDevice(
            "camera and microphone (this build has no capture backend; use --media synthetic)"
                .into(),
        ))
    }

    /// A keyframe, captured at once.
    pub fn request_keyframe(&self) {
        self.flags.keyframe.store(true, Ordering::Relaxed);
        self.flags.now.store(true, Ordering::Relaxed);
        if let Some(t) = &self.thread {
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
        if let Some(t) = self.thread.take() {
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
