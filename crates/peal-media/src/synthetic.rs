//! The synthetic sources every build has, and the checks a receiver runs on them.
//!
//! **Video**: a moving test pattern. The top rows of blocks carry 80 bits
//! in black and white: the frame counter (32), the capture time in Unix ms
//! (40) and a check byte (8), in blocks of at least 16 px (width/40 at
//! 640 and up) so they survive VP8 even when a starved encoder quantises hard. Below, a bright bar moves 8 px per frame
//! over a dark gradient, so the picture really changes and a receiver can
//! check that what it decoded is the frame the counter names.
//!
//! **Detailed video** ([`VideoPattern::with_detail`], the CLI's
//! `--media synthetic-hd`): the same header and bar over a picture with a
//! camera's detail: a texture that drifts 3 px a frame (what motion
//! search can follow), fresh grain every frame (what it can't) and colour
//! gradients, so VP8 wants 1–1.5 Mbit/s at 640x480@30 the way a camera
//! picture does, and bandwidth adaptation has something to adapt. Its
//! luma stays below the bar's and above black, so the checks still hold.
//!
//! **Audio**: a sine tone whose pitch encodes the capture second,
//! `400 + 100 * (unix_second % 8)` Hz, so a receiver can tell a real tone
//! from silence or noise and roughly when it was made.
//!
//! Pure functions of their inputs (no clock): callers pass the counter and time.

use crate::vpx::I420Frame;

/// Header blocks across a row at 640 px and wider.
const BLOCKS: u32 = 40;
/// Smallest header block side.
const MIN_BLOCK: u32 = 16;
const HEADER_BITS: u32 = 80;
const WHITE: u8 = 235;
const BLACK: u8 = 16;
/// Smallest picture the pattern supports (blocks of 8 px).
pub const MIN_WIDTH: u32 = 320;

/// What a frame's header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub counter: u32,
    /// Capture time in Unix ms, modulo 2^40 (34 years): what the header holds.
    pub capture_ms: u64,
}

const MS_MASK: u64 = 0xff_ffff_ffff;

impl Stamp {
    pub fn new(counter: u32, unix_ms: u64) -> Self {
        Stamp {
            counter,
            capture_ms: unix_ms & MS_MASK,
        }
    }

    /// Milliseconds from capture to `now_unix_ms` (same clock, wraps safely).
    pub fn age_ms(&self, now_unix_ms: u64) -> u64 {
        (now_unix_ms & MS_MASK).wrapping_sub(self.capture_ms) & MS_MASK
    }
}

/// Why a decoded frame is not a good pattern frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("frame too small for the pattern")]
    TooSmall,
    #[error("header check byte does not match")]
    BadCheck,
    #[error("moving bar is not where the counter puts it")]
    BadPicture,
}

fn check_byte(counter: u32, capture_ms: u64) -> u8 {
    // FNV-1a over the 9 payload bytes: any flipped bit changes it.
    let mut h: u32 = 0x811c_9dc5;
    for b in counter
        .to_be_bytes()
        .iter()
        .chain(&capture_ms.to_be_bytes()[3..])
    {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    (h ^ (h >> 8) ^ (h >> 16) ^ (h >> 24)) as u8
}

fn header_bits(s: Stamp) -> u128 {
    let ms = u128::from(s.capture_ms & 0xff_ffff_ffff);
    (u128::from(s.counter) << 48) | (ms << 8) | u128::from(check_byte(s.counter, s.capture_ms))
}

fn bar_x(counter: u32, width: u32) -> u32 {
    (counter.wrapping_mul(8)) % width
}

/// The moving test pattern at a fixed size.
#[derive(Clone, Copy, Debug)]
pub struct VideoPattern {
    pub width: u32,
    pub height: u32,
    /// Camera-like detail under the header (see the module docs).
    pub detail: bool,
}

/// A well-mixed hash of three numbers (the texture's noise).
fn hash3(x: u32, y: u32, t: u32) -> u32 {
    let mut h =
        x.wrapping_mul(0x9e37_79b1) ^ y.wrapping_mul(0x85eb_ca77) ^ t.wrapping_mul(0xc2b2_ae3d);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2c1b_3c6d);
    h ^= h >> 12;
    h
}

impl VideoPattern {
    pub fn new(width: u32, height: u32) -> Result<Self, PatternError> {
        if width < MIN_WIDTH || height < 120 || width % 2 == 1 || height % 2 == 1 {
            return Err(PatternError::TooSmall);
        }
        Ok(VideoPattern {
            width,
            height,
            detail: false,
        })
    }

    /// The same pattern with camera-like detail (or without).
    pub fn with_detail(self, detail: bool) -> Self {
        VideoPattern { detail, ..self }
    }

    fn block(&self) -> u32 {
        (self.width / BLOCKS).max(MIN_BLOCK)
    }

    /// Header blocks per row.
    fn per_row(&self) -> u32 {
        self.width / self.block()
    }

    /// Rows of header blocks.
    fn header_rows(&self) -> u32 {
        HEADER_BITS.div_ceil(self.per_row())
    }

    fn bar_width(&self) -> u32 {
        self.block() * 2
    }

    /// Renders frame `stamp` as I420 into `out` (resized as needed).
    pub fn render(&self, stamp: Stamp, out: &mut Vec<u8>) {
        let (w, h) = (self.width as usize, self.height as usize);
        out.resize(w * h * 3 / 2, 128);
        let (luma, chroma) = out.split_at_mut(w * h);
        let b = self.block() as usize;
        let (per_row, rows) = (self.per_row() as usize, self.header_rows() as usize);
        let bits = header_bits(stamp);
        let bar = bar_x(stamp.counter, self.width) as usize;
        let bar_w = self.bar_width() as usize;
        for y in 0..h {
            let row = &mut luma[y * w..(y + 1) * w];
            if y < rows * b {
                for (x, px) in row.iter_mut().enumerate() {
                    let i = (y / b) * per_row + x / b;
                    let on = x / b < per_row
                        && i < HEADER_BITS as usize
                        && (bits >> (HEADER_BITS as usize - 1 - i)) & 1 == 1;
                    *px = if on { WHITE } else { BLACK };
                }
            } else {
                let base = 40 + (y * 50 / h) as u8;
                row.fill(base);
                if self.detail {
                    let t = stamp.counter;
                    for (x, px) in row.iter_mut().enumerate() {
                        // Drifting texture in 2x2 cells, ±24; grain ±6.
                        let tex = hash3((x as u32 + t * 3) / 2, y as u32 / 2, 0) % 49;
                        let grain = hash3(x as u32, y as u32, t) % 13;
                        *px = (u32::from(base) + tex + grain)
                            .saturating_sub(30)
                            .clamp(20, 125) as u8;
                    }
                }
                for dx in 0..bar_w {
                    row[(bar + dx) % w] = WHITE;
                }
            }
        }
        if self.detail {
            let (cw, ch) = (w / 2, h / 2);
            let (u, v) = chroma.split_at_mut(cw * ch);
            for y in 0..ch {
                for x in 0..cw {
                    u[y * cw + x] = (112 + x * 32 / cw) as u8;
                    v[y * cw + x] = (112 + y * 32 / ch) as u8;
                }
            }
        } else {
            chroma.fill(128);
        }
    }

    /// Reads the header of a decoded frame and checks the picture below it.
    pub fn verify(frame: &I420Frame) -> Result<Stamp, PatternError> {
        let p = VideoPattern::new(frame.width, frame.height)?;
        let b = p.block();
        let mut bits: u128 = 0;
        for i in 0..HEADER_BITS {
            let (bx, by) = (i % p.per_row(), i / p.per_row());
            // The block's middle 4x4 on average: one noisy pixel can't flip a bit.
            let v = mean4(frame, bx * b + b / 2, by * b + b / 2);
            bits = (bits << 1) | u128::from(v > 128);
        }
        let stamp = Stamp {
            counter: (bits >> 48) as u32,
            capture_ms: ((bits >> 8) & 0xff_ffff_ffff) as u64,
        };
        if (bits & 0xff) as u8 != check_byte(stamp.counter, stamp.capture_ms) {
            return Err(PatternError::BadCheck);
        }
        let y = p.height * 3 / 4;
        let on = bar_x(stamp.counter, p.width) + p.bar_width() / 2;
        let off = on + p.width / 2;
        if mean4(frame, on % p.width, y) < 170 || mean4(frame, off % p.width, y) > 130 {
            return Err(PatternError::BadPicture);
        }
        Ok(stamp)
    }
}

/// Mean luma of the 4x4 pixels around (x, y), kept inside the picture.
fn mean4(frame: &I420Frame, x: u32, y: u32) -> u32 {
    let x0 = x.saturating_sub(2).min(frame.width.saturating_sub(4));
    let y0 = y.saturating_sub(2).min(frame.height.saturating_sub(4));
    (0..16)
        .map(|k| u32::from(frame.y(x0 + k % 4, y0 + k / 4)))
        .sum::<u32>()
        / 16
}

/// Samples per channel in one 20 ms frame at 48 kHz.
pub const AUDIO_FRAME: usize = 960;
pub const SAMPLE_RATE: u32 = 48_000;

/// The pitch that encodes `unix_second`.
pub fn tone_hz(unix_second: u64) -> f32 {
    400.0 + 100.0 * (unix_second % 8) as f32
}

/// A continuous sine whose pitch follows the capture second.
#[derive(Clone, Debug, Default)]
pub struct Tone {
    phase: f32,
}

impl Tone {
    /// The next 20 ms of mono audio captured at `capture_ms`.
    pub fn next_frame(&mut self, capture_ms: u64, out: &mut [i16; AUDIO_FRAME]) {
        let step = tone_hz(capture_ms / 1000) * std::f32::consts::TAU / SAMPLE_RATE as f32;
        for s in out.iter_mut() {
            *s = (self.phase.sin() * 8000.0) as i16;
            self.phase = (self.phase + step) % std::f32::consts::TAU;
        }
    }
}

/// Estimates a decoded frame's pitch by counting zero crossings; `Some(hz)`
/// when it is one of the tone's pitches (±40 Hz), `None` for silence or noise.
pub fn tone_pitch(samples: &[i16]) -> Option<f32> {
    if samples.len() < 480 {
        return None;
    }
    let loud = samples
        .iter()
        .map(|s| i32::from(*s).abs())
        .max()
        .unwrap_or(0);
    if loud < 1000 {
        return None;
    }
    let crossings = samples
        .windows(2)
        .filter(|w| (w[0] < 0) != (w[1] < 0))
        .count();
    let hz = crossings as f32 * SAMPLE_RATE as f32 / (2.0 * samples.len() as f32);
    (0..8)
        .map(|k| 400.0 + 100.0 * k as f32)
        .find(|p| (hz - p).abs() <= 40.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_of(p: VideoPattern, stamp: Stamp) -> I420Frame {
        let mut data = Vec::new();
        p.render(stamp, &mut data);
        I420Frame {
            width: p.width,
            height: p.height,
            data,
        }
    }

    #[test]
    fn a_rendered_frame_reads_back_its_stamp() {
        let p = VideoPattern::new(640, 480).unwrap();
        for counter in [0, 1, 79, 80, 4_000_000_000] {
            let stamp = Stamp::new(counter, 1_795_000_000_123);
            let read = VideoPattern::verify(&frame_of(p, stamp)).unwrap();
            assert_eq!(read, stamp);
            assert_eq!(read.age_ms(1_795_000_000_150), 27);
        }
    }

    #[test]
    fn a_flipped_header_block_or_a_misplaced_bar_is_caught() {
        let p = VideoPattern::new(320, 240).unwrap();
        let stamp = Stamp {
            counter: 7,
            capture_ms: 99,
        };
        let mut f = frame_of(p, stamp);
        let b = MIN_BLOCK as usize; // 320 px: 20 blocks of 16 a row
                                    // Invert the block holding the lowest counter bit (bit 31: row 1, column 11).
        for y in b..2 * b {
            for x in 11 * b..12 * b {
                f.data[y * 320 + x] = 255 - f.data[y * 320 + x];
            }
        }
        assert_eq!(VideoPattern::verify(&f), Err(PatternError::BadCheck));
        let mut g = frame_of(p, stamp);
        let mut other = Vec::new();
        p.render(
            Stamp {
                counter: 20,
                capture_ms: 99,
            },
            &mut other,
        );
        // The header of frame 7 over the picture of frame 20.
        g.data[4 * b * 320..320 * 240].copy_from_slice(&other[4 * b * 320..320 * 240]);
        assert_eq!(VideoPattern::verify(&g), Err(PatternError::BadPicture));
    }

    #[test]
    fn the_pattern_survives_vp8() {
        use crate::vpx::{EncoderConfig, Vp8Decoder, Vp8Encoder};
        let p = VideoPattern::new(640, 480).unwrap();
        let mut enc = Vp8Encoder::new(EncoderConfig {
            width: 640,
            height: 480,
            fps: 30,
            bitrate_kbps: 800,
        })
        .unwrap();
        let mut dec = Vp8Decoder::new().unwrap();
        let mut buf = Vec::new();
        let mut verified = 0;
        for counter in 0..30 {
            let stamp = Stamp {
                counter,
                capture_ms: 1_000 + u64::from(counter) * 33,
            };
            p.render(stamp, &mut buf);
            for f in enc.encode(&buf, counter == 0).unwrap() {
                for d in dec.decode(&f.data).unwrap() {
                    assert_eq!(VideoPattern::verify(&d), Ok(stamp));
                    verified += 1;
                }
            }
        }
        assert_eq!(verified, 30);
    }

    #[test]
    fn the_detailed_pattern_verifies_and_costs_vp8_far_more_than_the_plain_one() {
        use crate::vpx::{EncoderConfig, Vp8Decoder, Vp8Encoder};
        let mut bytes = [0usize; 2];
        for (i, detail) in [false, true].into_iter().enumerate() {
            let p = VideoPattern::new(640, 480).unwrap().with_detail(detail);
            // A generous target, so each takes what its picture needs.
            let mut enc = Vp8Encoder::new(EncoderConfig {
                width: 640,
                height: 480,
                fps: 30,
                bitrate_kbps: 4000,
            })
            .unwrap();
            let mut dec = Vp8Decoder::new().unwrap();
            let mut buf = Vec::new();
            for counter in 0..30 {
                let stamp = Stamp::new(counter, 5_000 + u64::from(counter) * 33);
                p.render(stamp, &mut buf);
                for f in enc.encode(&buf, counter == 0).unwrap() {
                    if counter > 0 {
                        bytes[i] += f.data.len();
                    }
                    for d in dec.decode(&f.data).unwrap() {
                        assert_eq!(VideoPattern::verify(&d), Ok(stamp), "detail {detail}");
                    }
                }
            }
        }
        // 29 delta frames: kbit/s = bytes * 8 / 1000 * 30 / 29.
        let kbps = bytes.map(|b| b * 8 * 30 / 29 / 1000);
        assert!(
            kbps[1] >= 5 * kbps[0],
            "plain {} kbit/s, detailed {} kbit/s",
            kbps[0],
            kbps[1]
        );
        assert!(kbps[1] >= 1000, "detailed only {} kbit/s", kbps[1]);
    }

    #[test]
    fn tone_pitch_names_the_second_and_rejects_silence() {
        let mut t = Tone::default();
        let mut buf = [0i16; AUDIO_FRAME];
        for sec in 0..8u64 {
            t.next_frame(sec * 1000 + 500, &mut buf);
            assert_eq!(tone_pitch(&buf), Some(tone_hz(sec)));
        }
        assert_eq!(tone_pitch(&[0; AUDIO_FRAME]), None);
        assert_eq!(
            VideoPattern::new(100, 100).err(),
            Some(PatternError::TooSmall)
        );
    }
}
