//! The receive side of an Opus stream: a jitter buffer that plays one
//! 20 ms frame every 20 ms, holding packets long enough to ride out the
//! path's jitter, and says what to do for a frame that didn't come. Pure:
//! packets and the time in, what to play out; it never reads a clock.
//!
//! **Target delay**: each packet's delay relative to the stream's own
//! cadence (arrival minus `seq x 20 ms`) is kept for the last
//! [`DELAY_WINDOW`] packets; the target is its 95th percentile above the
//! minimum, plus one frame, within [`MIN_TARGET`]..[`MAX_TARGET`]. A steady
//! path plays at 20 ms; a path jittering +-20 ms at about 60.
//!
//! **A frame that didn't come**: if the next packet is here and carries
//! in-band FEC ([`has_lbrr`]), that is a coarse copy of the missing one ([`Playout::Recover`]);
//! otherwise Opus conceals it from what came before ([`Playout::Conceal`]).
//! After [`MAX_CONCEAL`] concealed frames with nothing held, the stream has
//! paused (muted, or a path gone): the buffer stops and starts afresh with
//! the next packet, rather than play comfort noise for ever.
//!
//! **Keeping to the target**: held far beyond it (a burst arrived at once,
//! or the path got better) a frame is dropped, at most one every
//! [`ADJUST_EVERY`]; short of it after a late packet, one frame is
//! concealed to stretch the wait.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// One frame's length.
pub const FRAME: Duration = Duration::from_millis(20);
/// The least the buffer holds: one frame.
pub const MIN_TARGET: Duration = Duration::from_millis(20);
/// The most: past this the voice lags the picture more than lip-sync allows.
pub const MAX_TARGET: Duration = Duration::from_millis(300);
/// Packets the target is measured over (2 s of audio).
pub const DELAY_WINDOW: usize = 100;
/// Concealed frames in a row, nothing held, before the stream counts as paused.
pub const MAX_CONCEAL: u32 = 5;
/// At most one drop or stretch this often.
pub const ADJUST_EVERY: Duration = Duration::from_millis(200);
/// Packets held at most (2 s); past it the oldest go.
const MAX_HELD: usize = 100;
/// A sequence number this far from the next one to play is a new stream.
const SEQ_JUMP: i64 = 1000;

/// What to play for the next 20 ms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Playout {
    /// This packet, decoded.
    Frame(Bytes),
    /// The missing frame, from this (next) packet's in-band FEC.
    Recover(Bytes),
    /// The missing frame, concealed by the decoder.
    Conceal,
}

/// What the buffer has done, for the statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlayoutStats {
    pub played: u64,
    pub recovered: u64,
    pub concealed: u64,
    /// Came after their turn to play had passed.
    pub late: u64,
    /// Dropped to bring the delay back to the target.
    pub dropped: u64,
    /// Repeated arrivals.
    pub duplicates: u64,
    /// Frames concealed to lengthen the wait after a late packet.
    pub stretched: u64,
}

/// The buffer for one peer's audio.
#[derive(Clone, Debug)]
pub struct AudioPlayout {
    /// Held packets by extended sequence number: the payload, when it
    /// came, and whether it carries FEC for the one before.
    held: BTreeMap<i64, (Bytes, Instant, bool)>,
    /// The highest extended sequence number seen (for unwrapping).
    highest: Option<i64>,
    /// The next to play, once playing.
    next: Option<i64>,
    /// When the next frame is due, once playing.
    due: Option<Instant>,
    /// Relative delays (ms) of the last packets, and the reference they are from.
    delays: Vec<f64>,
    origin: Option<(i64, Instant)>,
    conceal_run: u32,
    /// Frames concealed with nothing held: loss if a packet follows, a
    /// pause (not counted) if none does.
    unheld: u64,
    last_adjust: Option<Instant>,
    /// A packet came late: the wait should grow by a frame.
    stretch: bool,
    stats: PlayoutStats,
}

impl Default for AudioPlayout {
    fn default() -> Self {
        Self::new()
    }
}

impl AudioPlayout {
    pub fn new() -> Self {
        AudioPlayout {
            held: BTreeMap::new(),
            highest: None,
            next: None,
            due: None,
            delays: Vec::with_capacity(DELAY_WINDOW),
            origin: None,
            conceal_run: 0,
            unheld: 0,
            last_adjust: None,
            stretch: false,
            stats: PlayoutStats::default(),
        }
    }

    pub fn stats(&self) -> PlayoutStats {
        self.stats
    }

    /// The delay the buffer aims to hold, from the jitter measured.
    pub fn target(&self) -> Duration {
        if self.delays.len() < 2 {
            return MIN_TARGET;
        }
        let mut d = self.delays.clone();
        d.sort_by(f64::total_cmp);
        let p95 = d[(d.len() - 1) * 95 / 100];
        let spread = Duration::from_secs_f64((p95 - d[0]).max(0.0) / 1000.0);
        (spread + FRAME).clamp(MIN_TARGET, MAX_TARGET)
    }

    /// When [`AudioPlayout::poll`] next has something to say.
    pub fn deadline(&self) -> Option<Instant> {
        match self.due {
            Some(due) => Some(due),
            // Not playing: the first packet starts once it has waited the target.
            None => self
                .held
                .values()
                .map(|(_, at, _)| *at)
                .min()
                .map(|at| at + self.target()),
        }
    }

    fn extend(&self, seq: u16) -> i64 {
        let Some(h) = self.highest else {
            return i64::from(seq);
        };
        let base = h - i64::from((h & 0xffff) as u16);
        let cands = [base - 0x1_0000, base, base + 0x1_0000].map(|b| b + i64::from(seq));
        cands
            .into_iter()
            .min_by_key(|c| (c - h).abs())
            .unwrap_or(i64::from(seq))
    }

    /// A packet arrived at `now`; `fec`: it carries in-band FEC for the
    /// one before ([`has_lbrr`]).
    pub fn push(&mut self, seq: u16, payload: Bytes, fec: bool, now: Instant) {
        let s = self.extend(seq);
        if let Some(next) = self.next {
            if (s - next).abs() > SEQ_JUMP {
                // A restarted sender: start over.
                *self = AudioPlayout {
                    stats: self.stats,
                    ..AudioPlayout::new()
                };
            } else if s < next {
                self.stats.late += 1;
                self.stretch = true;
                self.measure(s, now);
                return;
            }
        }
        self.highest = Some(self.highest.map_or(s, |h| h.max(s)));
        self.measure(s, now);
        if self.held.insert(s, (payload, now, fec)).is_some() {
            self.stats.duplicates += 1;
        }
        while self.held.len() > MAX_HELD {
            self.held.pop_first();
        }
    }

    fn measure(&mut self, s: i64, now: Instant) {
        let (s0, t0) = *self.origin.get_or_insert((s, now));
        let cadence = (s - s0) as f64 * FRAME.as_secs_f64() * 1000.0;
        let arrived = if now >= t0 {
            now.duration_since(t0).as_secs_f64() * 1000.0
        } else {
            -(t0.duration_since(now).as_secs_f64() * 1000.0)
        };
        if self.delays.len() == DELAY_WINDOW {
            self.delays.remove(0);
        }
        self.delays.push(arrived - cadence);
    }

    /// The next frame to play if one is due by `now`; call until `None`.
    pub fn poll(&mut self, now: Instant) -> Option<Playout> {
        let Some(due) = self.due else {
            return self.start(now);
        };
        if now < due {
            return None;
        }
        // Far behind (a stalled caller): skip ahead instead of a burst.
        let due = if now.duration_since(due) > MAX_TARGET {
            now
        } else {
            due
        };
        self.due = Some(due + FRAME);
        let next = self.next.unwrap_or(0);
        if self.adjust(next, now) {
            self.stats.stretched += 1;
            return Some(Playout::Conceal);
        }
        let next = self.next.unwrap_or(next);
        self.next = Some(next + 1);
        if let Some((p, _, _)) = self.held.remove(&next) {
            self.resume();
            self.stats.played += 1;
            return Some(Playout::Frame(p));
        }
        if self.held.is_empty() {
            self.conceal_run += 1;
            if self.conceal_run > MAX_CONCEAL {
                // Paused: stop until the next packet.
                self.due = None;
                self.next = None;
                self.conceal_run = 0;
                self.unheld = 0;
                return None;
            }
            self.unheld += 1;
            return Some(Playout::Conceal);
        }
        self.resume();
        if let Some((p, _, true)) = self.held.get(&(next + 1)) {
            self.stats.recovered += 1;
            return Some(Playout::Recover(p.clone()));
        }
        self.stats.concealed += 1;
        Some(Playout::Conceal)
    }

    /// Packets are coming again: the frames concealed meanwhile were loss.
    fn resume(&mut self) {
        self.conceal_run = 0;
        self.stats.concealed += std::mem::take(&mut self.unheld);
    }

    /// Starts playing once the first packet has waited the target.
    fn start(&mut self, now: Instant) -> Option<Playout> {
        let (&first, &(_, at, _)) = self.held.iter().next()?;
        if now < at + self.target() {
            return None;
        }
        self.next = Some(first);
        self.due = Some(now);
        self.poll(now)
    }

    /// Keeps the held audio near the target: drops one frame when far more
    /// is held; `true` when, short of it after a late packet, this slot
    /// should be concealed instead of playing `next` (the wait grows a frame).
    fn adjust(&mut self, next: i64, now: Instant) -> bool {
        if self
            .last_adjust
            .is_some_and(|t| now.saturating_duration_since(t) < ADJUST_EVERY)
        {
            return false;
        }
        let held = self.held.range(next..).count() as u32;
        let target_frames = (self.target().as_millis() / FRAME.as_millis()) as u32;
        if held > target_frames + 2 && self.held.contains_key(&next) {
            self.held.remove(&next);
            self.next = Some(next + 1);
            self.stats.dropped += 1;
            self.last_adjust = Some(now);
        } else if self.stretch && held < target_frames {
            self.stretch = false;
            self.last_adjust = Some(now);
            return true;
        }
        false
    }
}

/// Whether an Opus packet carries in-band FEC (SILK's LBRR data) for the
/// frame before it: its first frame is SILK or hybrid, and the LBRR flag,
/// the second symbol of the range coder after the voice-activity flag
/// (RFC 6716 section 4.2.3), is set. Only one 10 or 20 ms frame per packet
/// (TOC code 0) is read; anything else says `false`. Debian 12's libopus
/// (1.3) has no `opus_packet_has_lbrr`.
pub fn has_lbrr(packet: &[u8]) -> bool {
    let Some((&toc, data)) = packet.split_first() else {
        return false;
    };
    let config = toc >> 3;
    // CELT-only (16..=31) has no LBRR; one frame per packet only; SILK frames
    // of 40/60 ms (configs 2, 3, 6, 7, 10, 11) carry their flags differently.
    if config >= 16 || toc & 0b11 != 0 || (config < 12 && config % 4 >= 2) || data.is_empty() {
        return false;
    }
    let mut rc = RangeDecoder::new(data);
    let _vad = rc.bit_half();
    rc.bit_half()
}

/// Just enough of Opus's range decoder (RFC 6716 section 4.1) for two
/// equiprobable bits.
struct RangeDecoder<'a> {
    data: &'a [u8],
    pos: usize,
    rng: u32,
    val: u32,
    rem: u32,
}

impl<'a> RangeDecoder<'a> {
    fn new(data: &'a [u8]) -> Self {
        let mut d = RangeDecoder {
            data,
            pos: 0,
            rng: 128,
            val: 0,
            rem: 0,
        };
        d.rem = d.byte();
        d.val = d.rng - 1 - (d.rem >> 1);
        d.normalize();
        d
    }

    /// The next byte, 0 past the end (as the reference decoder does).
    fn byte(&mut self) -> u32 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        u32::from(b)
    }

    fn normalize(&mut self) {
        while self.rng <= 1 << 23 {
            self.rng <<= 8;
            let sym = self.rem;
            self.rem = self.byte();
            let sym = ((sym << 8) | self.rem) >> 1;
            self.val = ((self.val << 8) + (255 & !sym)) & ((1 << 31) - 1);
        }
    }

    /// `ec_dec_bit_logp(1)`.
    fn bit_half(&mut self) -> bool {
        let s = self.rng >> 1;
        let one = self.val < s;
        if one {
            self.rng = s;
        } else {
            self.val -= s;
            self.rng -= s;
        }
        self.normalize();
        one
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plays `secs` of a stream whose packet `i` arrives at
    /// `arrive(i)` ms (None: lost), polling every 5 ms; what was played.
    fn play(secs: u64, arrive: impl Fn(u64) -> Option<u64>) -> (Vec<Playout>, AudioPlayout) {
        let t0 = Instant::now();
        let ms = |m: u64| t0 + Duration::from_millis(m);
        let mut arrivals: Vec<(u64, u16)> = (0..secs * 50)
            .filter_map(|i| arrive(i).map(|a| (a, i as u16)))
            .collect();
        arrivals.sort();
        let mut b = AudioPlayout::new();
        let mut out = Vec::new();
        let mut k = 0;
        for now in (0..secs * 1000 + 500).step_by(5) {
            while k < arrivals.len() && arrivals[k].0 <= now {
                let seq = arrivals[k].1;
                b.push(
                    seq,
                    Bytes::from(vec![seq as u8, (seq >> 8) as u8]),
                    true,
                    ms(now),
                );
                k += 1;
            }
            while let Some(p) = b.poll(ms(now)) {
                out.push(p);
            }
        }
        (out, b)
    }

    /// Without the frames concealed after the stream's end.
    fn trimmed(mut out: Vec<Playout>) -> Vec<Playout> {
        while out.last() == Some(&Playout::Conceal) {
            out.pop();
        }
        out
    }

    fn seq_of(p: &Playout) -> Option<u16> {
        match p {
            Playout::Frame(b) => Some(u16::from(b[0]) | (u16::from(b[1]) << 8)),
            Playout::Recover(_) | Playout::Conceal => None,
        }
    }

    #[test]
    fn a_steady_stream_plays_every_frame_in_order_at_one_frame_of_delay() {
        let (out, b) = play(4, |i| Some(i * 20 + 30));
        let seqs: Vec<u16> = out.iter().filter_map(seq_of).collect();
        assert_eq!(seqs, (0..200).collect::<Vec<u16>>());
        assert_eq!(b.target(), MIN_TARGET);
        assert_eq!(b.stats().concealed, 0);
    }

    #[test]
    fn a_lost_packet_is_recovered_from_the_next_one_s_fec_and_two_in_a_row_concealed_then_recovered(
    ) {
        let (out, b) = play(2, |i| (![10, 30, 31].contains(&i)).then_some(i * 20 + 30));
        let out = trimmed(out);
        let at = |seq: u16| out.iter().position(|p| seq_of(p) == Some(seq)).unwrap();
        assert!(
            matches!(out[at(9) + 1], Playout::Recover(_)),
            "10 from 11's FEC"
        );
        assert_eq!(at(11), at(9) + 2);
        assert_eq!(
            out[at(29) + 1],
            Playout::Conceal,
            "30: nothing to recover from"
        );
        assert!(
            matches!(out[at(29) + 2], Playout::Recover(_)),
            "31 from 32's FEC"
        );
        assert_eq!(b.stats().recovered, 2);
        assert_eq!(b.stats().concealed, 1);
        assert_eq!(out.len(), 100);
    }

    #[test]
    fn jitter_raises_the_target_and_the_wait_rides_it_out() {
        // +-20 ms of jitter (a fixed pattern standing in for random).
        let jitter = [0u64, 37, 12, 40, 3, 25, 31, 8, 19, 40];
        let (out, b) = play(6, |i| Some(i * 20 + 30 + jitter[(i % 10) as usize]));
        let out = trimmed(out);
        let t = b.target();
        assert!(
            (Duration::from_millis(50)..=Duration::from_millis(80)).contains(&t),
            "target {t:?}"
        );
        // After the first second the target is known: nothing concealed from there.
        let late_start: Vec<&Playout> = out.iter().skip(50).collect();
        let concealed = late_start
            .iter()
            .filter(|p| matches!(p, Playout::Conceal))
            .count();
        assert!(
            concealed <= 2,
            "{concealed} concealed once the target was known: {:?}",
            b.stats()
        );
    }

    #[test]
    fn a_paused_stream_stops_after_a_few_frames_and_starts_again() {
        let (out, b) = play(4, |i| (!(50..150).contains(&i)).then_some(i * 20 + 30));
        let at = |seq: u16| out.iter().position(|p| seq_of(p) == Some(seq)).unwrap();
        let gap = &out[at(49) + 1..at(150)];
        assert!(gap.iter().all(|p| *p == Playout::Conceal), "{gap:?}");
        assert_eq!(
            gap.len(),
            MAX_CONCEAL as usize,
            "then silence, not comfort noise for ever"
        );
        assert_eq!(b.stats().concealed, 0, "a pause is not loss");
        let seqs: Vec<u16> = out.iter().filter_map(seq_of).collect();
        assert_eq!(seqs.len(), 100, "{:?}", b.stats());
        assert!(seqs.contains(&150) && seqs.contains(&199));
    }

    #[test]
    fn a_burst_is_played_down_to_the_target_and_a_wrapped_sequence_continues() {
        let t0 = Instant::now();
        let mut b = AudioPlayout::new();
        // 25 frames arrive at once after a stall, then a steady stream; seq wraps.
        for i in 0..25u16 {
            b.push(
                65_530u16.wrapping_add(i),
                Bytes::from_static(b"x"),
                false,
                t0,
            );
        }
        let mut played = 0;
        for n in 0..200u64 {
            let now = t0 + Duration::from_millis(n * 20);
            if n >= 1 {
                b.push(
                    65_530u16.wrapping_add(24 + n as u16),
                    Bytes::from_static(b"y"),
                    false,
                    now,
                );
            }
            while let Some(p) = b.poll(now) {
                played += u64::from(matches!(p, Playout::Frame(_)));
            }
        }
        assert!(b.stats().dropped >= 5, "{:?}", b.stats());
        assert_eq!(b.stats().late, 0);
        assert!(played > 150, "{played}");
    }

    #[test]
    fn any_sequence_of_packets_is_taken_without_panic() {
        let t0 = Instant::now();
        let mut b = AudioPlayout::new();
        let mut x = 12345u32;
        for n in 0..5000u64 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let now = t0 + Duration::from_millis(n * (x as u64 % 7));
            b.push((x >> 7) as u16, Bytes::new(), x.is_multiple_of(2), now);
            while b
                .poll(now + Duration::from_millis(x as u64 % 500))
                .is_some()
            {}
            assert!(b.target() <= MAX_TARGET);
        }
    }

    #[test]
    fn fec_is_seen_in_packets_that_carry_it_and_only_those() {
        use crate::synthetic::{Tone, AUDIO_FRAME};
        let mut count = [0usize; 2];
        for (i, loss) in [0, 20].into_iter().enumerate() {
            let mut enc = crate::source::opus_encoder().unwrap();
            enc.set_packet_loss_perc(loss).unwrap();
            let mut tone = Tone::default();
            let (mut pcm, mut out) = ([0i16; AUDIO_FRAME], [0u8; 1500]);
            for n in 0..100u64 {
                tone.next_frame(5_000 + n * 20, &mut pcm);
                let len = enc.encode(&pcm, &mut out).unwrap();
                count[i] += usize::from(has_lbrr(&out[..len]));
            }
        }
        assert_eq!(count[0], 0, "no expected loss: no FEC");
        // SILK sends LBRR for frames its voice detector calls active: about
        // half of the tone's.
        assert!(
            count[1] >= 30,
            "20% expected loss: FEC in only {} of 100",
            count[1]
        );
        for odd in [&[][..], &[0x80], &[0x0b, 1, 2], &[0x00], &[0xff; 3]] {
            let _ = has_lbrr(odd);
        }
        assert!(!has_lbrr(&[0x80, 0xff, 0xff]), "CELT carries no LBRR");
    }
}
