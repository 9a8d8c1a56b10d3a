//! Plays one sound at a time with rodio, on the default output device or
//! one by name (the ringtone's own output, the call speaker).
//!
//! The device is opened when a sound starts and closed when it stops, so an
//! idle app holds no audio stream (and costs no CPU for one). No sound card
//! is an [`PlayerEvent::Unavailable`], said once per attempt, never a panic:
//! the call still shows in the window and the notification.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::tones::Tone;

/// A looping sound stops after this much playing, whatever happens
/// (a ring lasts far less; this bounds a stuck one).
pub const MAX_PLAY: Duration = Duration::from_secs(180);

/// What the player reports.
#[derive(Clone, Debug, PartialEq)]
pub enum PlayerEvent {
    /// The output device pulled the first samples of `name` at `at`.
    Started { name: String, at: Instant },
    /// No sound could be played: why (the audio system's words).
    Unavailable(String),
    /// The output `wanted` is not connected: the sound plays on the default.
    NotConnected { wanted: String },
}

/// Finds an output device by name (`peal_media::devices::output_device`
/// in the app), `None` when it is not connected.
pub type FindOutput = fn(&str) -> Option<rodio::Device>;

enum Cmd {
    Play {
        name: String,
        tone: Tone,
        volume: f32,
        output: Option<String>,
    },
    Stop,
}

/// The handle: cheap to clone, commands go to the audio thread.
#[derive(Clone)]
pub struct Player {
    tx: mpsc::Sender<Cmd>,
}

impl Player {
    /// Starts the audio thread; `on_event` is called from audio threads,
    /// `find` looks an output up by name (on the audio thread).
    pub fn spawn(
        on_event: impl Fn(PlayerEvent) + Send + Sync + 'static,
        find: FindOutput,
    ) -> Player {
        let (tx, rx) = mpsc::channel();
        let on_event: Arc<dyn Fn(PlayerEvent) + Send + Sync> = Arc::new(on_event);
        let spawned = std::thread::Builder::new()
            .name("peal-sound".into())
            .spawn(move || run(rx, on_event, find));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "no sound thread");
        }
        Player { tx }
    }

    /// Plays `tone` at `volume` (0..=100) on `output` (`None`: the
    /// default) instead of whatever plays now.
    pub fn play(&self, name: &str, tone: Tone, volume: u8, output: Option<&str>) {
        let _ = self.tx.send(Cmd::Play {
            name: name.to_owned(),
            tone,
            volume: f32::from(volume.min(100)) / 100.0,
            output: output.map(str::to_owned),
        });
    }

    pub fn stop(&self) {
        let _ = self.tx.send(Cmd::Stop);
    }
}

/// What plays now: the stream is dropped (the device closed) with it.
struct Playing {
    _stream: rodio::OutputStream,
    sink: rodio::Sink,
}

fn run(
    rx: mpsc::Receiver<Cmd>,
    on_event: Arc<dyn Fn(PlayerEvent) + Send + Sync>,
    find: FindOutput,
) {
    let mut playing: Option<Playing> = None;
    loop {
        // While something plays, look every 100 ms whether it finished.
        let cmd = if playing.is_some() {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(c) => Some(c),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        } else {
            match rx.recv() {
                Ok(c) => Some(c),
                Err(mpsc::RecvError) => return,
            }
        };
        match cmd {
            None => {
                if playing.as_ref().is_some_and(|p| p.sink.empty()) {
                    playing = None;
                }
            }
            Some(Cmd::Stop) => {
                if let Some(p) = playing.take() {
                    p.sink.stop();
                }
            }
            Some(Cmd::Play {
                name,
                tone,
                volume,
                output,
            }) => {
                if let Some(p) = playing.take() {
                    p.sink.stop();
                }
                let device = output.and_then(|wanted| {
                    let found = find(&wanted);
                    if found.is_none() {
                        on_event(PlayerEvent::NotConnected { wanted });
                    }
                    found
                });
                match open(device.as_ref()) {
                    Ok((stream, sink)) => {
                        sink.set_volume(volume);
                        let ev = on_event.clone();
                        sink.append(Samples::new(tone, move |at| {
                            ev(PlayerEvent::Started {
                                name: name.clone(),
                                at,
                            })
                        }));
                        playing = Some(Playing {
                            _stream: stream,
                            sink,
                        });
                    }
                    Err(why) => on_event(PlayerEvent::Unavailable(why)),
                }
            }
        }
    }
}

fn open(device: Option<&rodio::Device>) -> Result<(rodio::OutputStream, rodio::Sink), String> {
    let (stream, handle) = match device {
        Some(device) => rodio::OutputStream::try_from_device(device),
        None => rodio::OutputStream::try_default(),
    }
    .map_err(|e| e.to_string())?;
    let sink = rodio::Sink::try_new(&handle).map_err(|e| e.to_string())?;
    Ok((stream, sink))
}

/// A [`Tone`] as a rodio source: loops when it should, up to [`MAX_PLAY`],
/// and says when the device first pulled from it.
struct Samples {
    tone: Tone,
    pos: usize,
    left: u64,
    started: Option<Box<dyn FnOnce(Instant) + Send>>,
}

impl Samples {
    fn new(tone: Tone, started: impl FnOnce(Instant) + Send + 'static) -> Samples {
        let per_sec = u64::from(tone.rate) * u64::from(tone.channels);
        let left = if tone.looping {
            MAX_PLAY.as_secs() * per_sec
        } else {
            tone.samples.len() as u64
        };
        Samples {
            tone,
            pos: 0,
            left,
            started: Some(Box::new(started)),
        }
    }
}

impl Iterator for Samples {
    type Item = f32;

    fn next(&mut self) -> Option<f32> {
        if let Some(f) = self.started.take() {
            f(Instant::now());
        }
        if self.left == 0 || self.tone.samples.is_empty() {
            return None;
        }
        if self.pos == self.tone.samples.len() {
            if !self.tone.looping {
                return None;
            }
            self.pos = 0;
        }
        self.left -= 1;
        let v = self.tone.samples[self.pos];
        self.pos += 1;
        Some(v)
    }
}

impl rodio::Source for Samples {
    fn current_frame_len(&self) -> Option<usize> {
        None
    }

    fn channels(&self) -> u16 {
        self.tone.channels
    }

    fn sample_rate(&self) -> u32 {
        self.tone.rate
    }

    fn total_duration(&self) -> Option<Duration> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tones;

    #[test]
    fn a_looping_tone_repeats_and_a_one_shot_ends() {
        let (tx, rx) = mpsc::channel();
        let mut s = Samples::new(tones::busy(), move |at| tx.send(at).unwrap());
        let n = tones::busy().samples.len();
        assert_eq!(s.by_ref().count(), n, "the busy tone plays once");
        assert!(rx.try_recv().is_ok(), "start reported");
        let r = tones::ringtone("pulse").unwrap();
        let len = r.samples.len();
        let looped: Vec<f32> = Samples::new(r.clone(), |_| {}).take(len * 2 + 5).collect();
        assert_eq!(looped.len(), len * 2 + 5);
        assert_eq!(&looped[len..len * 2], &r.samples[..], "second pass = first");
    }

    #[test]
    fn a_looping_tone_stops_by_itself_after_the_cap() {
        let r = tones::ringtone("classic").unwrap();
        let total = Samples::new(r, |_| {}).count() as u64;
        assert_eq!(total, MAX_PLAY.as_secs() * u64::from(tones::RATE));
    }
}
