//! The sounds of calling, as samples: built-in ringtones, the ringback and
//! the busy tone, synthesised here (so they are ours, under this crate's
//! licence), and a ringtone file of the user's own, decoded by rodio.

use std::path::Path;
use std::sync::Arc;

/// The sample rate of the synthesised tones.
pub const RATE: u32 = 48_000;

/// A sound ready to play: interleaved f32 samples.
#[derive(Clone, Debug)]
pub struct Tone {
    pub rate: u32,
    pub channels: u16,
    pub samples: Arc<[f32]>,
    /// Plays again from the start until stopped.
    pub looping: bool,
}

impl Tone {
    /// Length of one pass, in seconds.
    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / f64::from(self.rate) / f64::from(self.channels.max(1))
    }
}

/// The built-in ringtones: (id, what the settings call it).
pub const RINGTONES: &[(&str, &str)] = &[
    ("classic", "Classic double ring"),
    ("chime", "Chime"),
    ("pulse", "Soft pulse"),
];

/// One piece of a pattern: `secs` of the given partials (Hz, amplitude), or silence.
#[derive(Clone, Copy)]
struct Seg {
    secs: f64,
    partials: &'static [(f64, f32)],
    /// Exponential decay time constant (s) for struck sounds; 0 for steady tones.
    decay: f64,
}

const fn on(secs: f64, partials: &'static [(f64, f32)]) -> Seg {
    Seg {
        secs,
        partials,
        decay: 0.0,
    }
}

const fn off(secs: f64) -> Seg {
    Seg {
        secs,
        partials: &[],
        decay: 0.0,
    }
}

const fn struck(secs: f64, partials: &'static [(f64, f32)], decay: f64) -> Seg {
    Seg {
        secs,
        partials,
        decay,
    }
}

/// Renders a pattern to mono samples, with 8 ms fades so no burst clicks.
fn render(pattern: &[Seg], looping: bool) -> Tone {
    let fade = (0.008 * f64::from(RATE)) as usize;
    let mut out = Vec::new();
    for seg in pattern {
        let n = (seg.secs * f64::from(RATE)) as usize;
        for i in 0..n {
            if seg.partials.is_empty() {
                out.push(0.0);
                continue;
            }
            let t = i as f64 / f64::from(RATE);
            let mut v = 0.0f64;
            for &(hz, amp) in seg.partials {
                v += f64::from(amp) * (std::f64::consts::TAU * hz * t).sin();
            }
            if seg.decay > 0.0 {
                v *= (-t / seg.decay).exp();
            }
            let edge = i.min(n - 1 - i);
            if edge < fade {
                v *= edge as f64 / fade as f64;
            }
            out.push(v as f32);
        }
    }
    Tone {
        rate: RATE,
        channels: 1,
        samples: out.into(),
        looping,
    }
}

const DOUBLE: &[(f64, f32)] = &[(400.0, 0.35), (450.0, 0.35)];
const E5: &[(f64, f32)] = &[(659.25, 0.5), (1318.5, 0.12)];
const GS5: &[(f64, f32)] = &[(830.61, 0.5), (1661.2, 0.12)];
const B5: &[(f64, f32)] = &[(987.77, 0.5), (1975.5, 0.12)];
const SOFT: &[(f64, f32)] = &[(880.0, 0.4)];
const RINGBACK: &[(f64, f32)] = &[(440.0, 0.2), (480.0, 0.2)];
const BUSY: &[(f64, f32)] = &[(480.0, 0.25), (620.0, 0.25)];

/// A built-in ringtone by id; `None` for an id we don't have.
pub fn ringtone(id: &str) -> Option<Tone> {
    let pattern: &[Seg] = match id {
        // The double ring: 0.4 s on, 0.2 off, 0.4 on, 2 s off.
        "classic" => &[on(0.4, DOUBLE), off(0.2), on(0.4, DOUBLE), off(2.0)],
        "chime" => &[
            struck(0.3, E5, 0.25),
            struck(0.3, GS5, 0.25),
            struck(0.9, B5, 0.35),
            off(1.5),
        ],
        "pulse" => &[
            on(0.15, SOFT),
            off(0.15),
            on(0.15, SOFT),
            off(0.15),
            on(0.15, SOFT),
            off(1.75),
        ],
        _ => return None,
    };
    Some(render(pattern, true))
}

/// What the caller hears while the other side rings: 2 s on, 4 s off.
pub fn ringback() -> Tone {
    render(&[on(2.0, RINGBACK), off(4.0)], true)
}

/// Busy / rejected / unanswered: three short beeps, once.
pub fn busy() -> Tone {
    let beep = [on(0.5, BUSY), off(0.5)];
    let pattern: Vec<Seg> = (0..3).flat_map(|_| beep.iter().copied()).collect();
    render(&pattern, false)
}

/// The settings' "Test sound": the chime's three notes, once.
pub fn test_sound() -> Tone {
    render(
        &[
            struck(0.3, E5, 0.25),
            struck(0.3, GS5, 0.25),
            struck(0.9, B5, 0.35),
        ],
        false,
    )
}

/// Why a ringtone file can't be used.
#[derive(Debug, thiserror::Error)]
pub enum ToneError {
    #[error("can't open {0}: {1}")]
    Open(String, std::io::Error),
    #[error("{0} is not a sound file we can play (WAV, Ogg Vorbis, FLAC or MP3): {1}")]
    Decode(String, String),
    #[error("{0} holds no sound")]
    Empty(String),
}

/// The longest stretch of a ringtone file that is kept (it loops).
pub const MAX_FILE_SECS: u32 = 30;

/// A ringtone file of the user's own, decoded (its first 30 s), looping.
pub fn from_file(path: &Path) -> Result<Tone, ToneError> {
    use rodio::Source;
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| ToneError::Open(name.clone(), e))?;
    let dec = rodio::Decoder::new(std::io::BufReader::new(file))
        .map_err(|e| ToneError::Decode(name.clone(), e.to_string()))?;
    let rate = dec.sample_rate();
    let channels = dec.channels();
    let max = (rate * MAX_FILE_SECS) as usize * usize::from(channels);
    let samples: Vec<f32> = dec.convert_samples::<f32>().take(max).collect();
    if samples.is_empty() || rate == 0 || channels == 0 {
        return Err(ToneError::Empty(name));
    }
    Ok(Tone {
        rate,
        channels,
        samples: samples.into(),
        looping: true,
    })
}

/// Energy at `hz` in `x` (the Goertzel filter), normalised by length: how
/// a test tells which pitch was played.
pub fn power_at(x: &[f32], rate: u32, hz: f64) -> f64 {
    let w = std::f64::consts::TAU * hz / f64::from(rate);
    let c = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s = f64::from(v) + c * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    (s1 * s1 + s2 * s2 - c * s1 * s2) / (x.len().max(1) as f64).powi(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_rings_at_400_and_450_hz_with_a_pause() {
        let t = ringtone("classic").unwrap();
        assert!((t.seconds() - 3.0).abs() < 0.01, "{}", t.seconds());
        let burst = &t.samples[..(0.4 * f64::from(RATE)) as usize];
        let p400 = power_at(burst, RATE, 400.0);
        let p450 = power_at(burst, RATE, 450.0);
        let p1000 = power_at(burst, RATE, 1000.0);
        assert!(
            p400 > 100.0 * p1000 && p450 > 100.0 * p1000,
            "{p400} {p450} {p1000}"
        );
        let gap = &t.samples[(1.1 * f64::from(RATE)) as usize..];
        assert!(
            gap.iter().all(|v| *v == 0.0),
            "silent after the second ring"
        );
        assert!(t.looping);
    }

    #[test]
    fn tones_start_and_end_without_a_click() {
        for id in RINGTONES.iter().map(|(id, _)| *id) {
            let t = ringtone(id).unwrap();
            assert!(t.samples[0].abs() < 1e-3, "{id} starts at silence");
            assert!(t.samples.iter().all(|v| v.abs() <= 1.0), "{id} never clips");
            assert!(t.samples.iter().any(|v| v.abs() > 0.2), "{id} is audible");
        }
        assert!(ringtone("kazoo").is_none());
    }

    #[test]
    fn busy_tone_is_three_beeps_once_and_ringback_loops() {
        let b = busy();
        assert!(!b.looping);
        assert!((b.seconds() - 3.0).abs() < 0.01);
        assert!(power_at(&b.samples[..24_000], RATE, 620.0) > 1e-3);
        let r = ringback();
        assert!(r.looping);
        assert!(power_at(&r.samples[..96_000], RATE, 440.0) > 1e-3);
    }

    #[test]
    fn a_file_that_is_not_sound_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("notes.txt");
        std::fs::write(&p, "hello").unwrap();
        let e = from_file(&p).unwrap_err();
        assert!(matches!(e, ToneError::Decode(..)), "{e}");
        let e = from_file(&dir.path().join("missing.wav")).unwrap_err();
        assert!(matches!(e, ToneError::Open(..)), "{e}");
    }

    #[test]
    fn a_wav_file_of_our_own_loops_as_a_ringtone() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ring.wav");
        // 0.5 s of 700 Hz, 16-bit mono 16 kHz, written by hand.
        let rate = 16_000u32;
        let n = rate / 2;
        let mut wav = Vec::new();
        wav.extend_from_slice(b"RIFF");
        wav.extend_from_slice(&(36 + n * 2).to_le_bytes());
        wav.extend_from_slice(b"WAVEfmt ");
        wav.extend_from_slice(&16u32.to_le_bytes());
        wav.extend_from_slice(&1u16.to_le_bytes());
        wav.extend_from_slice(&1u16.to_le_bytes());
        wav.extend_from_slice(&rate.to_le_bytes());
        wav.extend_from_slice(&(rate * 2).to_le_bytes());
        wav.extend_from_slice(&2u16.to_le_bytes());
        wav.extend_from_slice(&16u16.to_le_bytes());
        wav.extend_from_slice(b"data");
        wav.extend_from_slice(&(n * 2).to_le_bytes());
        for i in 0..n {
            let v = (f64::from(i) * std::f64::consts::TAU * 700.0 / f64::from(rate)).sin();
            wav.extend_from_slice(&((v * 12_000.0) as i16).to_le_bytes());
        }
        std::fs::write(&p, wav).unwrap();
        let t = from_file(&p).unwrap();
        assert_eq!((t.rate, t.channels), (rate, 1));
        assert!((t.seconds() - 0.5).abs() < 0.01);
        assert!(power_at(&t.samples, rate, 700.0) > 100.0 * power_at(&t.samples, rate, 300.0));
    }
}
