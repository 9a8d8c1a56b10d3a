//! Real devices: the camera (a backend per system), and the microphone and
//! speaker through cpal.
//!
//! Every constructor answers "no such device" with
//! [`MediaError::NoDevice`] naming the device and why, never a panic, so an
//! app can say "no camera found" and offer an audio call or the test pattern.
//! Capture runs on its own threads; cpal streams live on the thread that
//! made them (they are not `Send` everywhere).

use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};

use crate::apm::EchoReference;
use crate::synthetic::{AUDIO_FRAME, SAMPLE_RATE};
use crate::MediaError;

// The camera, one backend per system with the same small API (`names`,
// `Capture::open`, `Capture::next_i420`): V4L2 on Linux; elsewhere none yet,
// so a call there sends the test pattern and says why (never a build
// failure). Media Foundation and AVFoundation would go beside them.
#[cfg(target_os = "linux")]
mod v4l2;
#[cfg(target_os = "linux")]
use v4l2 as camera;
#[cfg(not(target_os = "linux"))]
mod no_camera;
#[cfg(not(target_os = "linux"))]
use no_camera as camera;

fn no_device(what: &str, why: impl std::fmt::Display) -> MediaError {
    MediaError::NoDevice(format!("{what} ({why})"))
}

/// Whether this machine can have an audio device at all: a sound card, or a
/// PulseAudio/PipeWire server. Asked before ALSA is touched, because ALSA
/// prints its own complaints to stderr when there is nothing to open.
fn audio_possible() -> Result<(), String> {
    let cards = std::fs::read_to_string("/proc/asound/cards").unwrap_or_default();
    let has_card = cards
        .lines()
        .any(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()));
    let runtime = std::env::var_os("XDG_RUNTIME_DIR").map(std::path::PathBuf::from);
    let has_server = std::env::var_os("PULSE_SERVER").is_some()
        || runtime
            .is_some_and(|d| d.join("pulse/native").exists() || d.join("pipewire-0").exists());
    if has_card || has_server || !cfg!(target_os = "linux") {
        Ok(())
    } else {
        Err("no sound card and no PulseAudio/PipeWire server".into())
    }
}

/// Checks, without starting anything, that the devices a call needs can be
/// opened: the chosen (or default) microphone and speaker, and camera when
/// `video`.
pub fn check_devices(video: bool, chosen: &Chosen) -> Result<(), MediaError> {
    check_capture(video, chosen)?;
    drop(Speaker::open(chosen.speaker.as_deref())?);
    Ok(())
}

/// Opens and closes the chosen microphone, and camera when `video`.
pub(crate) fn check_capture(video: bool, chosen: &Chosen) -> Result<(), MediaError> {
    audio_possible().map_err(|why| no_device("microphone", why))?;
    drop(Microphone::open(chosen.microphone.as_deref())?);
    if video {
        // Closed at the end of the statement.
        Camera::open(chosen.camera.as_deref(), 640, 480)?;
    }
    Ok(())
}

/// Which devices a call uses, each by the name the system gives it (what
/// [`microphones`], [`speakers`] and [`cameras`] list); `None` is the
/// system's default (the first camera).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chosen {
    pub microphone: Option<String>,
    pub speaker: Option<String>,
    pub camera: Option<String>,
}

/// The microphones this machine offers now, by name.
///
/// Listing opens each audio device for a moment (that is how ALSA tells
/// what a device can do), so ask when someone looks (the settings) or a
/// call starts, not on a timer.
pub fn microphones() -> Vec<String> {
    audio_names(Direction::Input, |host| {
        host.input_devices().map(|d| d.collect())
    })
}

/// The speakers (outputs) this machine offers now, by name; see [`microphones`].
pub fn speakers() -> Vec<String> {
    audio_names(Direction::Output, |host| {
        host.output_devices().map(|d| d.collect())
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Input,
    Output,
}

/// Devices that opened once in this process, by direction: such a device
/// stays listed while the system still names it, even when it can't open
/// at this moment (held by a stream of ours, or a sound server slow to
/// answer under load), so it doesn't flicker "not connected". One the
/// system stops naming (unplugged) goes at once.
static SEEN: Mutex<Vec<(Direction, String)>> = Mutex::new(Vec::new());

fn audio_names(
    direction: Direction,
    devices: impl FnOnce(&cpal::Host) -> Result<Vec<cpal::Device>, cpal::DevicesError>,
) -> Vec<String> {
    if audio_possible().is_err() {
        return Vec::new();
    }
    let opened: Vec<String> = match devices(&cpal::default_host()) {
        Ok(list) => list.iter().filter_map(|d| d.name().ok()).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "audio devices can't be listed");
            return Vec::new();
        }
    };
    let named = system_names();
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    for name in &opened {
        if !seen.iter().any(|(d, n)| *d == direction && n == name) {
            seen.push((direction, name.clone()));
        }
    }
    let kept: Vec<String> = seen
        .iter()
        .filter(|(d, n)| *d == direction && !opened.contains(n))
        .filter(|(_, n)| named.as_ref().is_none_or(|names| names.contains(n)))
        .map(|(_, n)| n.clone())
        .collect();
    opened.into_iter().chain(kept).collect()
}

/// The audio devices the system names now, asked without opening any
/// (ALSA's hints); `None` where there is no such list.
fn system_names() -> Option<Vec<String>> {
    hints().map(|h| h.into_iter().map(|(name, _)| name).collect())
}

/// What the system calls each audio device that has a description, for
/// people to read ("USB Headset" for `headset`, "HDA Intel PCH, ALC892
/// Analog — Front output / input" for `front:CARD=PCH,DEV=0`): ALSA's hint
/// descriptions, their lines joined; empty where the system has none.
pub fn descriptions() -> std::collections::BTreeMap<String, String> {
    hints()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(name, desc)| {
            let lines: Vec<&str> = desc.as_deref()?.lines().map(str::trim).collect();
            let text = lines
                .into_iter()
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" — ");
            (!text.is_empty()).then_some((name, text))
        })
        .collect()
}

/// ALSA's PCM hints: each device's name and description.
fn hints() -> Option<Vec<(String, Option<String>)>> {
    #[cfg(target_os = "linux")]
    {
        alsa::device_name::HintIter::new_str(None, "pcm")
            .ok()
            .map(|hints| hints.filter_map(|h| Some((h.name?, h.desc))).collect())
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// The output device called `name`, for a player of its own (the
/// ringtone); `None` when it is not connected.
pub fn output_device(name: &str) -> Option<cpal::Device> {
    find_audio(name, cpal::default_host().output_devices())
}

fn find_audio(
    name: &str,
    devices: Result<impl Iterator<Item = cpal::Device>, cpal::DevicesError>,
) -> Option<cpal::Device> {
    audio_possible().ok()?;
    devices.ok()?.find(|d| d.name().is_ok_and(|n| n == name))
}

/// An input (`input`) or output device: the default one, or the one called `name`.
fn audio_device(what: &str, name: Option<&str>, input: bool) -> Result<cpal::Device, MediaError> {
    audio_possible().map_err(|why| no_device(what, why))?;
    let host = cpal::default_host();
    match name {
        None if input => host.default_input_device(),
        None => host.default_output_device(),
        Some(name) if input => find_audio(name, host.input_devices()),
        Some(name) => find_audio(name, host.output_devices()),
    }
    .ok_or_else(|| match name {
        None => no_device(what, "no default device"),
        Some(name) => no_device(what, format!("\"{name}\" is not connected")),
    })
}

/// The cameras this machine offers now (the backend's, e.g. V4L2's
/// capture-capable nodes), each by the name its driver gives it, numbered
/// when two are alike.
pub fn cameras() -> Vec<String> {
    unique_names(camera::names())
}

/// Names as people tell them apart: the second "HD Webcam" is "HD Webcam (2)".
fn unique_names(names: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        let name = if name.trim().is_empty() {
            "Camera".to_owned()
        } else {
            name
        };
        let mut n = 1;
        let mut candidate = name.clone();
        while out.contains(&candidate) {
            n += 1;
            candidate = format!("{name} ({n})");
        }
        out.push(candidate);
    }
    out
}

/// How loud a 20 ms frame is, 0..=100 for a level meter: its peak on a
/// decibel scale from -60 dBFS (0, silence to the ear) to full scale (100).
pub fn level(frame: &[i16]) -> u8 {
    let peak = frame.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
    if peak == 0 {
        return 0;
    }
    let dbfs = 20.0 * (f64::from(peak) / 32768.0).log10();
    ((dbfs + 60.0) / 60.0 * 100.0).clamp(0.0, 100.0).round() as u8
}

/// Why [`meter`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MeterEnd {
    /// `on_level` said stop.
    Stopped,
    /// No frame came for the time given: the device went away (unplugged,
    /// or its stream failed), since a quiet microphone still sends silence.
    NoFrames,
    /// The microphone was closed.
    Closed,
}

/// Reads a microphone's `frames` until `on_level` says stop, calling it
/// with the loudest [`level`] of every `per` frames: what a settings page
/// shows as the microphone's level. A microphone that sends nothing for
/// `gone_after` has gone away, and the meter says so rather than wait.
pub fn meter(
    frames: &mpsc::Receiver<[i16; AUDIO_FRAME]>,
    per: usize,
    gone_after: std::time::Duration,
    mut on_level: impl FnMut(u8) -> bool,
) -> MeterEnd {
    let mut loudest = 0;
    let mut n = 0;
    loop {
        let frame = match frames.recv_timeout(gone_after) {
            Ok(frame) => frame,
            Err(mpsc::RecvTimeoutError::Timeout) => return MeterEnd::NoFrames,
            Err(mpsc::RecvTimeoutError::Disconnected) => return MeterEnd::Closed,
        };
        loudest = loudest.max(level(&frame));
        n += 1;
        if n >= per.max(1) {
            if !on_level(loudest) {
                return MeterEnd::Stopped;
            }
            (loudest, n) = (0, 0);
        }
    }
}

/// A camera delivering I420 frames.
pub struct Camera {
    capture: camera::Capture,
    pub width: u32,
    pub height: u32,
}

impl Camera {
    /// Opens the camera called `name` (of [`cameras`]; `None`: the first)
    /// at (about) `width`x`height`.
    pub fn open(name: Option<&str>, width: u32, height: u32) -> Result<Camera, MediaError> {
        let names = cameras();
        let index = match name {
            None => 0,
            Some(name) => names
                .iter()
                .position(|n| n == name)
                .ok_or_else(|| no_device("camera", format!("\"{name}\" is not connected")))?,
        };
        let (capture, width, height) = camera::Capture::open(index, width, height)?;
        Ok(Camera {
            capture,
            width,
            height,
        })
    }

    /// Blocks for the next frame and writes it as I420 into `out`.
    pub fn next_i420(&mut self, out: &mut Vec<u8>) -> Result<(), MediaError> {
        let (w, h) = (self.width as usize, self.height as usize);
        self.capture.next_i420(w, h, out)
    }
}

/// Packed YUYV 4:2:2 to planar I420 (chroma from the even rows).
pub fn yuyv_to_i420(yuyv: &[u8], w: usize, h: usize, out: &mut Vec<u8>) {
    out.clear();
    out.resize(w * h * 3 / 2, 128);
    if yuyv.len() < w * h * 2 {
        return;
    }
    let (luma, chroma) = out.split_at_mut(w * h);
    let (u, v) = chroma.split_at_mut(w * h / 4);
    for y in 0..h {
        let row = &yuyv[y * w * 2..(y + 1) * w * 2];
        for x in 0..w {
            luma[y * w + x] = row[x * 2];
        }
        if y % 2 == 0 {
            for cx in 0..w / 2 {
                u[(y / 2) * (w / 2) + cx] = row[cx * 4 + 1];
                v[(y / 2) * (w / 2) + cx] = row[cx * 4 + 3];
            }
        }
    }
}

/// Mixes any number of sample streams down to mono 48 kHz for the encoder
/// (linear resampling; good enough for speech).
fn to_mono_48k(input: &[f32], channels: usize, rate: u32, pos: &mut f64, out: &mut Vec<i16>) {
    let channels = channels.max(1);
    let frames = input.len() / channels;
    let step = f64::from(rate) / f64::from(SAMPLE_RATE);
    while (*pos as usize) < frames {
        let i = *pos as usize;
        let s: f32 = input[i * channels..(i + 1) * channels].iter().sum::<f32>() / channels as f32;
        out.push((s.clamp(-1.0, 1.0) * 32767.0) as i16);
        *pos += step;
    }
    *pos -= frames as f64;
}

/// A microphone; delivers 20 ms mono 48 kHz frames on a channel from its
/// own thread. Dropping it stops capture.
pub struct Microphone {
    pub frames: mpsc::Receiver<[i16; AUDIO_FRAME]>,
    stop: mpsc::Sender<()>,
}

impl Microphone {
    /// The microphone called `name` (of [`microphones`]), or the default.
    pub fn open(name: Option<&str>) -> Result<Microphone, MediaError> {
        let (frames_tx, frames) = mpsc::sync_channel(50);
        let name = name.map(str::to_owned);
        let stop = hold_on_thread("peal-mic", "microphone", move || {
            let dev = audio_device("microphone", name.as_deref(), true)?;
            let cfg = dev
                .default_input_config()
                .map_err(|e| no_device("microphone", e))?;
            let (channels, rate) = (cfg.channels() as usize, cfg.sample_rate().0);
            let mut pending: Vec<i16> = Vec::new();
            let mut pos = 0.0;
            let stream = dev
                .build_input_stream(
                    &cfg.config(),
                    move |data: &[f32], _: &cpal::InputCallbackInfo| {
                        to_mono_48k(data, channels, rate, &mut pos, &mut pending);
                        while pending.len() >= AUDIO_FRAME {
                            let mut f = [0i16; AUDIO_FRAME];
                            f.copy_from_slice(&pending[..AUDIO_FRAME]);
                            pending.drain(..AUDIO_FRAME);
                            // Full: the encoder fell behind; drop, don't block audio.
                            let _ = frames_tx.try_send(f);
                        }
                    },
                    |e| tracing::warn!(error = %e, "microphone stream"),
                    None,
                )
                .map_err(|e| no_device("microphone", e))?;
            stream.play().map_err(|e| no_device("microphone", e))?;
            Ok(stream)
        })?;
        Ok(Microphone { frames, stop })
    }
}

/// Runs `open` on a thread of its own and keeps what it returns (a cpal
/// stream, which may not leave the thread that made it) alive there until
/// the returned sender is dropped. `open`'s error comes back to the caller.
fn hold_on_thread<T: 'static>(
    name: &str,
    what: &'static str,
    open: impl FnOnce() -> Result<T, MediaError> + Send + 'static,
) -> Result<mpsc::Sender<()>, MediaError> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let (stop, stop_rx) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || match open() {
            Ok(held) => {
                let _ = ready_tx.send(Ok(()));
                let _ = stop_rx.recv();
                drop(held);
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
            }
        })
        .map_err(|e| no_device(what, e))?;
    ready_rx
        .recv()
        .map_err(|_| no_device(what, "its thread died"))??;
    Ok(stop)
}

impl Drop for Microphone {
    fn drop(&mut self) {
        let _ = self.stop.send(());
    }
}

/// Per-peer queues of decoded audio, mixed on the way out.
type Mix = Arc<Mutex<Vec<(String, VecDeque<i16>)>>>;

/// A speaker, playing every peer's audio mixed; what it plays
/// is the microphone's echo reference ([`Speaker::echo_reference`]).
pub struct Speaker {
    queues: Mix,
    stop: mpsc::Sender<()>,
    echo: EchoReference,
}

/// Most audio queued per peer (200 ms): beyond it the oldest is dropped so
/// playback never lags far behind the call.
const MAX_QUEUED: usize = SAMPLE_RATE as usize / 5;

impl Speaker {
    /// The speaker called `name` (of [`speakers`]), or the default.
    pub fn open(name: Option<&str>) -> Result<Speaker, MediaError> {
        let queues: Mix = Arc::new(Mutex::new(Vec::new()));
        let q = queues.clone();
        let (mut tap, echo) = crate::apm::render_tap();
        let name = name.map(str::to_owned);
        let stop = hold_on_thread("peal-speaker", "speaker", move || {
            let dev = audio_device("speaker", name.as_deref(), false)?;
            let cfg = dev
                .default_output_config()
                .map_err(|e| no_device("speaker", e))?;
            let (channels, rate) = (cfg.channels() as usize, cfg.sample_rate().0);
            let step = f64::from(SAMPLE_RATE) / f64::from(rate);
            let mut pos = 0.0f64;
            let stream = dev
                .build_output_stream(
                    &cfg.config(),
                    move |out: &mut [f32], _: &cpal::OutputCallbackInfo| {
                        let mut qs = q.lock().unwrap_or_else(|e| e.into_inner());
                        for frame in out.chunks_mut(channels.max(1)) {
                            let mut s = 0f32;
                            for (_, queue) in qs.iter() {
                                s += f32::from(queue.front().copied().unwrap_or(0)) / 32768.0;
                            }
                            pos += step;
                            while pos >= 1.0 {
                                pos -= 1.0;
                                // Each 48 kHz sample as it is played.
                                tap.push(s);
                                for (_, queue) in qs.iter_mut() {
                                    queue.pop_front();
                                }
                            }
                            frame.fill(s.clamp(-1.0, 1.0));
                        }
                    },
                    |e| tracing::warn!(error = %e, "speaker stream"),
                    None,
                )
                .map_err(|e| no_device("speaker", e))?;
            stream.play().map_err(|e| no_device("speaker", e))?;
            Ok(stream)
        })?;
        Ok(Speaker { queues, stop, echo })
    }

    /// What this speaker plays, for the microphone's echo canceller.
    pub fn echo_reference(&self) -> EchoReference {
        self.echo.clone()
    }

    /// Queues 48 kHz mono samples from `from` for playback.
    pub fn play(&self, from: &str, samples: &[i16]) {
        let mut qs = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        let idx = match qs.iter().position(|(p, _)| p == from) {
            Some(i) => i,
            None => {
                qs.push((from.to_owned(), VecDeque::new()));
                qs.len() - 1
            }
        };
        let q = &mut qs[idx].1;
        q.extend(samples.iter().copied());
        while q.len() > MAX_QUEUED {
            q.pop_front();
        }
    }
}

impl Drop for Speaker {
    fn drop(&mut self) {
        let _ = self.stop.send(());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The settings' level: loud frames show high, quiet ones low; a
    /// microphone unplugged mid-way (its frames stop) ends the meter with
    /// `NoFrames` instead of a level stuck on screen and a thread blocked
    /// for ever.
    #[test]
    fn the_meter_shows_the_level_and_notices_a_microphone_that_went_away() {
        let (tx, rx) = mpsc::sync_channel(100);
        for amplitude in [16_000i16, 16_000, 30, 30] {
            tx.send([amplitude; AUDIO_FRAME]).unwrap();
        }
        let mut shown = Vec::new();
        let end = meter(&rx, 2, std::time::Duration::from_millis(50), |l| {
            shown.push(l);
            true
        });
        assert_eq!(end, MeterEnd::NoFrames);
        assert_eq!(shown.len(), 2);
        assert!(shown[0] >= 85 && shown[1] < 20, "{shown:?}");

        tx.send([0; AUDIO_FRAME]).unwrap();
        let end = meter(&rx, 1, std::time::Duration::from_secs(5), |_| false);
        assert_eq!(end, MeterEnd::Stopped);
        drop(tx);
        let end = meter(&rx, 1, std::time::Duration::from_secs(5), |_| true);
        assert_eq!(end, MeterEnd::Closed);
    }

    #[test]
    fn yuyv_converts_to_i420_luma_and_subsampled_chroma() {
        // 4x2: Y = 10,20,30,40 / 50,60,70,80; U/V per pair on row 0: (1,2), (3,4).
        let yuyv = [
            10, 1, 20, 2, 30, 3, 40, 4, //
            50, 9, 60, 9, 70, 9, 80, 9,
        ];
        let mut out = Vec::new();
        yuyv_to_i420(&yuyv, 4, 2, &mut out);
        assert_eq!(out, [10, 20, 30, 40, 50, 60, 70, 80, 1, 3, 2, 4]);
    }

    #[test]
    fn resampling_to_48k_mono_keeps_the_duration() {
        let (mut pos, mut out) = (0.0, Vec::new());
        // 10 ms of 44.1 kHz stereo.
        let input = vec![0.5f32; 441 * 2];
        to_mono_48k(&input, 2, 44_100, &mut pos, &mut out);
        assert!((479..=481).contains(&out.len()), "{}", out.len());
        assert!(out.iter().all(|s| (16_000..=16_400).contains(s)));
    }

    #[test]
    fn two_alike_cameras_get_names_people_tell_apart() {
        let names = |v: &[&str]| unique_names(v.iter().map(|s| (*s).to_owned()).collect());
        assert_eq!(
            names(&["HD Webcam", "Integrated", "HD Webcam", ""]),
            ["HD Webcam", "Integrated", "HD Webcam (2)", "Camera"]
        );
        assert_eq!(names(&["A", "A (2)", "A"]), ["A", "A (2)", "A (3)"]);
    }

    #[test]
    fn the_level_meter_reads_silence_as_zero_and_full_scale_as_a_hundred() {
        assert_eq!(level(&[0; AUDIO_FRAME]), 0);
        assert_eq!(level(&[]), 0);
        assert_eq!(level(&[i16::MIN, 0]), 100);
        assert_eq!(level(&[i16::MAX]), 100);
        // -20 dBFS (a tenth of full scale) is two thirds up the meter.
        assert_eq!(level(&[3277, -100]), 67);
        // -60 dBFS and below read as silence.
        assert_eq!(level(&[32]), 0);
    }

    /// Without a sound card or sound server, the microphone and speaker say
    /// so by name, before ALSA is asked (and prints to stderr).
    #[test]
    fn no_sound_device_is_a_clear_no_device_error() {
        if audio_possible().is_ok() {
            return; // this machine has sound
        }
        for (what, r) in [
            ("microphone", Microphone::open(None).err()),
            ("speaker", Speaker::open(None).err()),
            ("microphone", Microphone::open(Some("USB Headset")).err()),
        ] {
            match r {
                Some(MediaError::NoDevice(m)) => assert!(m.starts_with(what), "{m}"),
                other => panic!("{what}: {other:?}"),
            }
        }
        assert!(matches!(
            check_devices(false, &Chosen::default()),
            Err(MediaError::NoDevice(_))
        ));
    }

    /// This machine has no camera: the error says so, by name, and nothing panics.
    #[test]
    fn a_missing_camera_is_a_clear_no_device_error() {
        if !camera::names().is_empty() {
            return; // a real camera: nothing to check here
        }
        assert!(cameras().is_empty());
        match Camera::open(None, 640, 480) {
            Err(MediaError::NoDevice(m)) => assert!(m.starts_with("camera"), "{m}"),
            Err(e) => panic!("wrong error: {e}"),
            Ok(_) => panic!("opened a camera that is not there"),
        }
    }
}
