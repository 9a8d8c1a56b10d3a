//! The receive side of a VP8 stream: a jitter buffer that orders packets,
//! waits for retransmissions, and hands out only frames the decoder can
//! decode. Pure: packets and the time in, frames out; it never reads a clock.
//!
//! **The rule**: a frame leaves only if it is a keyframe, or if its first
//! packet directly follows the last packet of the frame that left before it.
//! Our encoder (one layer, every frame a reference) makes each delta frame
//! depend on the one before, so a frame after any gap would decode against
//! a picture the decoder never had: smeared, corrupt video. Such frames are
//! held, never shown: the viewer sees the last good picture (a freeze).
//!
//! **Asking again**: a missing packet is asked for (RTCP NACK,
//! [`Vp8Assembler::nacks`]) the moment a later one shows the gap, and again
//! each round trip while it is still missing, at most [`NACKS_PER_PACKET`]
//! times: the way libwebrtc does it, not on a fixed timer.
//!
//! **Waiting**: a gap is waited for while its retransmission is on the way. The wait is
//! bounded by [`wait_for_rtt`] of the measured round trip, counted from the
//! oldest packet held. Past it, the buffer gives up: everything before the
//! next keyframe is dropped and a keyframe is asked for
//! ([`Vp8Assembler::keyframe_request`], sent as RTCP PLI), at most every
//! [`KEYFRAME_RETRY`] until one arrives. A complete keyframe behind a gap
//! ends the wait at once: it needs nothing before it.
//!
//! A frame is emitted on its marker packet, not on the next frame's first
//! packet (which is what a timestamp-change sample builder waits for, a
//! whole frame interval of latency).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

/// One RTP packet's fields the assembler needs.
#[derive(Clone, Debug)]
pub struct RtpIn<'a> {
    pub seq: u16,
    pub timestamp: u32,
    pub marker: bool,
    pub payload: &'a Bytes,
}

/// The longest wait for a missing packet. A keyframe is no quicker than another retransmission: it
/// takes a round trip to ask for plus several frames' worth of packets, any
/// of which may be lost in turn (`peal-bench network`: giving up after two
/// tries froze `loss3` for 1 s per 15 s where libwebrtc, which asks up to 10
/// times and waits up to 3 s, froze for none). Past this the picture has
/// been still long enough that a fresh start is better.
pub const MAX_WAIT: Duration = Duration::from_millis(1000);
/// Until a round trip is measured, assume a continental one.
pub const DEFAULT_RTT: Duration = Duration::from_millis(100);
/// How often a keyframe is asked for again while none has come.
pub const KEYFRAME_RETRY: Duration = Duration::from_millis(300);
/// Packets held at most (about 3 s of 1.5 Mbit/s video); past it the oldest
/// go, and with them the hope of a continuous stream.
pub const MAX_PACKETS: usize = 4096;
/// While waiting for a keyframe, packets older than this are let go.
const KEYFRAME_HOLD: Duration = Duration::from_secs(2);
/// A sequence number this far past the highest seen is a new stream (a
/// restarted sender), not loss.
const SEQ_JUMP: u64 = 3000;
/// Times one missing packet is asked for (its retransmission may be lost
/// too; libwebrtc asks up to 10 times).
pub const NACKS_PER_PACKET: u8 = 10;
/// A gap wider than this is not asked for packet by packet (a keyframe is
/// cheaper than hundreds of retransmissions).
const MAX_NACK_GAP: u64 = 300;
/// Asked again no sooner than this after the last time, however short the round trip.
const MIN_NACK_RETRY: Duration = Duration::from_millis(20);

/// How long to wait for a missing packet, given the round trip: asked for
/// at once and again every [`nack_retry`], three tries (the first two
/// retransmissions lost too: one in 400 at 5% loss) come back within about
/// 3.3 round trips, plus the path's jitter. At most [`MAX_WAIT`].
pub fn wait_for_rtt(rtt: Duration) -> Duration {
    (nack_retry(rtt) * 3 + Duration::from_millis(60)).min(MAX_WAIT)
}

/// How long after asking for a packet it is asked for again: a round trip
/// and a tenth (a retransmission that is merely late is then seldom asked
/// for twice).
pub fn nack_retry(rtt: Duration) -> Duration {
    (rtt + rtt / 10).max(MIN_NACK_RETRY)
}

/// The VP8 payload descriptor (RFC 7741 §4.2): where the frame data starts
/// and whether this packet begins partition 0 (a frame's first packet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Descriptor {
    pub frame_start: bool,
    pub header_len: usize,
}

/// Parses a VP8 payload descriptor; `None` if it is truncated.
pub fn descriptor(payload: &[u8]) -> Option<Descriptor> {
    let b0 = *payload.first()?;
    let (x, s, pid) = (b0 & 0x80 != 0, b0 & 0x10 != 0, b0 & 0x07);
    let mut len = 1;
    if x {
        let b1 = *payload.get(1)?;
        len = 2;
        if b1 & 0x80 != 0 {
            // Picture ID: 7 bits, or 15 with the M bit.
            len += if *payload.get(len)? & 0x80 != 0 { 2 } else { 1 };
        }
        if b1 & 0x40 != 0 {
            len += 1; // TL0PICIDX
        }
        if b1 & 0x30 != 0 {
            len += 1; // TID / Y / KEYIDX
        }
    }
    if payload.len() < len {
        return None;
    }
    Some(Descriptor {
        frame_start: s && pid == 0,
        header_len: len,
    })
}

/// A VP8 keyframe has the inverse key-frame bit (bit 0 of the first byte) clear.
pub fn is_keyframe(frame: &[u8]) -> bool {
    frame.first().is_some_and(|b| b & 1 == 0)
}

/// The picture size a VP8 keyframe declares (`None` for a delta frame or
/// anything too short or without the keyframe start code).
pub fn keyframe_size(frame: &[u8]) -> Option<(u16, u16)> {
    if !is_keyframe(frame) || frame.len() < 10 || frame[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let w = u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff;
    let h = u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff;
    Some((w, h))
}

/// What the buffer has done, for statistics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AssemblerStats {
    /// Frames handed to the decoder.
    pub frames: u64,
    /// Frames given up on (a packet never came, or no reference to decode against).
    pub dropped: u64,
    /// Packets that filled a gap (retransmitted or reordered) in time to be used.
    pub recovered: u64,
    /// Times the wait for a missing packet ran out.
    pub gave_up: u64,
    /// Packets refused: malformed, duplicate, too late, or over the bound.
    pub discarded: u64,
    /// Retransmissions asked for (one per packet per NACK).
    pub nacked: u64,
}

/// A packet known to be missing: when it was last asked for, how often.
#[derive(Debug)]
struct Missing {
    asked: Option<Instant>,
    tries: u8,
}

#[derive(Debug)]
struct Held {
    ts: u32,
    marker: bool,
    start: bool,
    key: bool,
    data: Bytes,
    arrived: Instant,
}

/// The jitter buffer for one VP8 stream (see the module docs).
#[derive(Debug)]
pub struct Vp8Assembler {
    held: BTreeMap<u64, Held>,
    /// Sequence numbers known to be missing (behind the highest seen).
    missing: BTreeMap<u64, Missing>,
    rtt: Duration,
    /// Highest extended sequence number seen (for unwrapping).
    highest: Option<u64>,
    /// Synced: the sequence number the next frame must start at.
    next: Option<u64>,
    wait: Duration,
    /// A keyframe is needed (lost sync) and when it was last asked for.
    want_key: bool,
    asked: Option<Instant>,
    /// The RTP timestamp of the frame [`Self::pop`] returned last.
    last_ts: Option<u32>,
    pub stats: AssemblerStats,
}

impl Default for Vp8Assembler {
    fn default() -> Self {
        Vp8Assembler {
            held: BTreeMap::new(),
            missing: BTreeMap::new(),
            rtt: DEFAULT_RTT,
            highest: None,
            next: None,
            wait: wait_for_rtt(DEFAULT_RTT),
            want_key: false,
            asked: None,
            last_ts: None,
            stats: AssemblerStats::default(),
        }
    }
}

/// A frame that could leave: its packets' range and whether it is a keyframe.
struct Whole {
    first: u64,
    last: u64,
    key: bool,
}

impl Vp8Assembler {
    /// The round trip measured on the path: sets how long gaps are waited for.
    pub fn set_rtt(&mut self, rtt: Duration) {
        self.rtt = rtt;
        self.wait = wait_for_rtt(rtt);
    }

    fn nack_retry(&self) -> Duration {
        nack_retry(self.rtt)
    }

    /// How long a gap is currently waited for.
    pub fn wait(&self) -> Duration {
        self.wait
    }

    fn extend(&self, seq: u16) -> u64 {
        let Some(h) = self.highest else {
            return (1 << 32) | u64::from(seq);
        };
        let base = (h & !0xffff) | u64::from(seq);
        [base.wrapping_sub(1 << 16), base, base + (1 << 16)]
            .into_iter()
            .min_by_key(|c| c.abs_diff(h))
            .unwrap_or(base)
    }

    /// Takes one packet in. Never panics, whatever the bytes.
    pub fn push(&mut self, p: RtpIn<'_>, now: Instant) {
        let Some(d) = descriptor(p.payload) else {
            self.stats.discarded += 1;
            return;
        };
        let seq = self.extend(p.seq);
        if let Some(h) = self.highest {
            if seq > h + SEQ_JUMP || h > seq + SEQ_JUMP {
                // A restarted sender: start over, from its next keyframe.
                self.stats.dropped += self.held_frames();
                self.held.clear();
                self.missing.clear();
                self.next = None;
                self.want_key = true;
                self.highest = None;
                return self.push(p, now);
            }
        }
        if self.next.is_some_and(|n| seq < n) || self.held.contains_key(&seq) {
            self.stats.discarded += 1; // late or a duplicate
            return;
        }
        if self.highest.is_some_and(|h| seq < h) {
            self.stats.recovered += 1;
        }
        self.missing.remove(&seq);
        if let Some(h) = self.highest.filter(|&h| seq > h + 1) {
            if seq - h - 1 <= MAX_NACK_GAP {
                for m in h + 1..seq {
                    self.missing.insert(
                        m,
                        Missing {
                            asked: None,
                            tries: 0,
                        },
                    );
                }
            }
        }
        self.highest = Some(self.highest.map_or(seq, |h| h.max(seq)));
        let data = p.payload.slice(d.header_len..);
        self.held.insert(
            seq,
            Held {
                ts: p.timestamp,
                marker: p.marker,
                start: d.frame_start,
                key: d.frame_start && is_keyframe(&data),
                data,
                arrived: now,
            },
        );
        while self.held.len() > MAX_PACKETS {
            self.held.pop_first();
            self.stats.discarded += 1;
            self.next = None;
            self.want_key = true;
        }
    }

    fn held_frames(&self) -> u64 {
        let mut n = 0;
        let mut last = None;
        for h in self.held.values() {
            if last != Some(h.ts) {
                n += 1;
                last = Some(h.ts);
            }
        }
        n
    }

    /// The whole frame starting at `first`, if all its packets are here.
    fn whole_at(&self, first: u64) -> Option<Whole> {
        let head = self.held.get(&first)?;
        if !head.start {
            return None;
        }
        let mut seq = first;
        loop {
            let p = self.held.get(&seq)?;
            if p.ts != head.ts || (seq != first && p.start) {
                return None; // a marker went missing: not one frame
            }
            if p.marker {
                return Some(Whole {
                    first,
                    last: seq,
                    key: head.key,
                });
            }
            seq += 1;
        }
    }

    /// The first whole keyframe held.
    fn first_whole_keyframe(&self) -> Option<Whole> {
        self.held
            .iter()
            .filter(|(_, h)| h.key)
            .find_map(|(&s, _)| self.whole_at(s))
    }

    /// Drops every packet before `seq`, counting the frames they were part of.
    fn drop_before(&mut self, seq: u64) {
        self.missing = self.missing.split_off(&seq);
        let keep = self.held.split_off(&seq);
        let gone = std::mem::replace(&mut self.held, keep);
        let mut last = None;
        for h in gone.values() {
            if last != Some(h.ts) {
                self.stats.dropped += 1;
                last = Some(h.ts);
            }
        }
    }

    /// Takes a whole frame out (and everything before it); `None` if it
    /// had no data.
    fn take(&mut self, w: &Whole) -> Option<Bytes> {
        self.drop_before(w.first);
        let mut out = BytesMut::new();
        self.last_ts = self.held.get(&w.first).map(|h| h.ts);
        for seq in w.first..=w.last {
            if let Some(p) = self.held.remove(&seq) {
                out.extend_from_slice(&p.data);
            }
        }
        if out.is_empty() {
            // Descriptors and no data: not a frame, and the stream is broken.
            self.stats.dropped += 1;
            self.give_up();
            return None;
        }
        self.next = Some(w.last + 1);
        self.stats.frames += 1;
        if w.key {
            self.want_key = false;
        }
        Some(out.freeze())
    }

    /// The next frame the decoder can take, if any is ready by `now`. Call
    /// it until it returns `None` after every push and at [`Self::deadline`].
    pub fn pop(&mut self, now: Instant) -> Option<Bytes> {
        loop {
            if let Some(n) = self.next {
                if let Some(w) = self.whole_at(n) {
                    match self.take(&w) {
                        Some(f) => return Some(f),
                        None => continue, // it gave up: look for a keyframe
                    }
                }
                if self.held.get(&n).is_some_and(|h| !h.start) {
                    // The packet that should begin a frame doesn't: the stream is broken.
                    self.give_up();
                } else if let Some(k) = self.first_whole_keyframe() {
                    return self.take(&k); // needs nothing before it
                } else if self.oldest().is_some_and(|t| now >= t + self.wait) {
                    self.give_up();
                } else {
                    return None;
                }
            }
            // Not synced: only a keyframe will do.
            if let Some(k) = self.first_whole_keyframe() {
                return self.take(&k);
            }
            self.discard_undecodable(now);
            return None;
        }
    }

    /// Not synced and no whole keyframe: what precedes the first keyframe
    /// head held can never be decoded; whole delta frames when there is none
    /// (they only tell us a keyframe is needed). A keyframe that is still
    /// missing a packet is waited for like any gap, then asked for again.
    fn discard_undecodable(&mut self, now: Instant) {
        let key_head = self
            .held
            .iter()
            .find(|(_, h)| h.key)
            .map(|(&s, h)| (s, h.arrived));
        match key_head {
            Some((s, arrived)) => {
                self.drop_before(s);
                if now >= arrived + self.wait {
                    self.want_key = true;
                }
            }
            None => {
                let last_delta = self
                    .held
                    .iter()
                    .filter(|(_, h)| h.start)
                    .filter_map(|(&s, _)| self.whole_at(s))
                    .last();
                if let Some(d) = last_delta {
                    self.drop_before(d.last + 1);
                    self.want_key = true;
                }
            }
        }
        if let Some(cut) = now.checked_sub(KEYFRAME_HOLD) {
            let old = self
                .held
                .iter()
                .filter(|(_, h)| h.arrived < cut)
                .map(|(&s, _)| s)
                .last();
            if let Some(last) = old {
                self.drop_before(last + 1);
            }
        }
    }

    fn give_up(&mut self) {
        self.stats.gave_up += 1;
        self.next = None;
        self.want_key = true;
    }

    fn oldest(&self) -> Option<Instant> {
        self.held.values().map(|h| h.arrived).min()
    }

    /// The sequence numbers to ask for again now (RTCP NACK): each missing
    /// packet at once, then every [`nack_retry`], [`NACKS_PER_PACKET`]
    /// times at most. Packets before the next frame needed are not asked
    /// for: nothing would use them.
    pub fn nacks(&mut self, now: Instant) -> Vec<u16> {
        if let Some(n) = self.next {
            self.missing = self.missing.split_off(&n);
        }
        let retry = self.nack_retry();
        let mut out = Vec::new();
        self.missing.retain(|&seq, m| {
            if m.asked.is_none_or(|t| now >= t + retry) {
                if m.tries >= NACKS_PER_PACKET {
                    return false;
                }
                m.tries += 1;
                m.asked = Some(now);
                out.push(seq as u16);
            }
            true
        });
        self.stats.nacked += out.len() as u64;
        out
    }

    /// Whether to ask the sender for a keyframe now (at most every
    /// [`KEYFRAME_RETRY`] while one is needed).
    pub fn keyframe_request(&mut self, now: Instant) -> bool {
        if !self.want_key || self.asked.is_some_and(|t| now < t + KEYFRAME_RETRY) {
            return false;
        }
        self.asked = Some(now);
        true
    }

    /// When to call [`Self::pop`] and [`Self::keyframe_request`] again if
    /// nothing arrives (always after `now`): the end of the current wait, or
    /// the next keyframe retry.
    pub fn deadline(&self, now: Instant) -> Option<Instant> {
        let wait = self.oldest().map(|t| t + self.wait);
        let retry = self
            .want_key
            .then(|| self.asked.map_or(now, |t| t + KEYFRAME_RETRY));
        let nack = self
            .missing
            .values()
            .filter(|m| m.tries < NACKS_PER_PACKET)
            .filter_map(|m| m.asked)
            .min()
            .map(|t| t + self.nack_retry());
        [wait, retry, nack]
            .into_iter()
            .flatten()
            .filter(|&t| t > now)
            .min()
    }

    /// The RTP timestamp of the frame [`Self::pop`] returned last (its
    /// capture time on the sender's clock, for [`crate::render`]).
    pub fn last_timestamp(&self) -> Option<u32> {
        self.last_ts
    }

    /// Whether frames are flowing (a keyframe was taken and nothing lost since).
    pub fn synced(&self) -> bool {
        self.next.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A VP8 payload: a 1-byte descriptor (S set on a frame's first packet) + data.
    /// Data starting with `P` (bit 0 clear) is a keyframe, `e` (bit 0 set) a delta.
    fn pkt(start: bool, data: &[u8]) -> Bytes {
        let mut v = vec![if start { 0x10 } else { 0x00 }];
        v.extend_from_slice(data);
        Bytes::from(v)
    }

    struct Feed {
        a: Vp8Assembler,
        t0: Instant,
    }

    impl Feed {
        fn new() -> Self {
            Feed {
                a: Vp8Assembler::default(),
                t0: Instant::now(),
            }
        }
        fn at(&self, ms: u64) -> Instant {
            self.t0 + Duration::from_millis(ms)
        }
        /// Pushes one packet at `ms` and returns every frame that leaves.
        fn push(&mut self, ms: u64, seq: u16, ts: u32, marker: bool, p: Bytes) -> Vec<Bytes> {
            let now = self.at(ms);
            self.a.push(
                RtpIn {
                    seq,
                    timestamp: ts,
                    marker,
                    payload: &p,
                },
                now,
            );
            self.pop(ms)
        }
        fn pop(&mut self, ms: u64) -> Vec<Bytes> {
            let now = self.at(ms);
            std::iter::from_fn(|| self.a.pop(now)).collect()
        }
        /// A one-packet frame.
        fn frame(&mut self, ms: u64, seq: u16, data: &[u8]) -> Vec<Bytes> {
            self.push(ms, seq, u32::from(seq) * 3000, true, pkt(true, data))
        }
    }

    fn names(frames: &[Bytes]) -> Vec<&[u8]> {
        frames.iter().map(|f| &f[..]).collect()
    }

    #[test]
    fn frames_in_order_leave_on_their_marker_packet() {
        let mut f = Feed::new();
        assert!(f.push(0, 10, 3000, false, pkt(true, b"Pab")).is_empty());
        let out = f.push(1, 11, 3000, true, pkt(false, b"cd"));
        assert_eq!(names(&out), [&b"Pabcd"[..]]);
        assert_eq!(names(&f.frame(33, 12, b"e1")), [&b"e1"[..]]);
        assert_eq!(f.a.stats.frames, 2);
        assert!(!f.a.keyframe_request(f.at(33)));
    }

    #[test]
    fn reordered_packets_make_a_whole_frame() {
        let mut f = Feed::new();
        f.frame(0, 1, b"P0");
        assert!(f.push(33, 3, 6000, true, pkt(false, b"yz")).is_empty());
        let out = f.push(34, 2, 6000, false, pkt(true, b"ex"));
        assert_eq!(names(&out), [&b"exyz"[..]]);
        assert_eq!(f.a.stats.dropped, 0);
        assert_eq!(f.a.stats.recovered, 1);
    }

    #[test]
    fn a_retransmission_inside_the_wait_is_used_and_nothing_is_lost() {
        let mut f = Feed::new();
        f.a.set_rtt(Duration::from_millis(80));
        f.frame(0, 1, b"P0");
        // Frame 2 (a single packet) is lost; 3 and 4 arrive and wait behind it.
        assert!(f.frame(66, 3, b"e3").is_empty());
        assert!(f.frame(100, 4, b"e4").is_empty());
        assert!(f.pop(150).is_empty(), "still inside the wait");
        // The retransmission comes a round trip later.
        let out = f.frame(160, 2, b"e2");
        assert_eq!(names(&out), [&b"e2"[..], b"e3", b"e4"]);
        assert!(!f.a.keyframe_request(f.at(160)), "no keyframe needed");
        assert_eq!((f.a.stats.dropped, f.a.stats.gave_up), (0, 0));
    }

    #[test]
    fn a_frame_lost_whole_is_never_decoded_past_it_freezes_until_a_keyframe() {
        let mut f = Feed::new();
        f.frame(0, 1, b"P0");
        // Frame 2 is lost and never comes again: 3 and 4 depend on it.
        assert!(f.frame(66, 3, b"e3").is_empty());
        assert!(f.frame(100, 4, b"e4").is_empty());
        let deadline = f.a.deadline(f.at(100)).expect("a wake-up for the wait");
        assert_eq!(deadline, f.at(66) + f.a.wait());
        let give_up = (deadline - f.t0).as_millis() as u64;
        assert!(f.pop(give_up).is_empty(), "never handed over: a freeze");
        assert_eq!(f.a.stats.gave_up, 1);
        assert!(
            f.a.keyframe_request(f.at(give_up)),
            "a keyframe is asked for"
        );
        assert!(
            !f.a.keyframe_request(f.at(give_up + 10)),
            "not again at once"
        );
        // Delta frames after the loss stay undecodable...
        assert!(f.frame(give_up + 20, 5, b"e5").is_empty());
        // ...and the request is repeated while no keyframe comes.
        let retry = give_up + KEYFRAME_RETRY.as_millis() as u64;
        assert!(f.a.keyframe_request(f.at(retry)));
        let out = f.frame(retry + 40, 6, b"P6");
        assert_eq!(names(&out), [&b"P6"[..]]);
        assert_eq!(names(&f.frame(retry + 70, 7, b"e7")), [&b"e7"[..]]);
        assert_eq!(f.a.stats.dropped, 3, "d3, d4, d5");
        assert!(!f.a.keyframe_request(f.at(retry + 1000)));
    }

    #[test]
    fn a_whole_keyframe_behind_a_gap_ends_the_wait_at_once() {
        let mut f = Feed::new();
        f.frame(0, 1, b"P0");
        assert!(f.frame(33, 3, b"e3").is_empty());
        let out = f.frame(40, 4, b"P4");
        assert_eq!(names(&out), [&b"P4"[..]]);
        assert_eq!(f.a.stats.dropped, 1);
        // The late packet is now worthless and refused.
        assert!(f.frame(60, 2, b"e2").is_empty());
        assert_eq!(f.a.stats.discarded, 1);
    }

    #[test]
    fn joining_mid_stream_drops_delta_frames_and_asks_for_a_keyframe() {
        let mut f = Feed::new();
        assert!(f.frame(0, 100, b"e100").is_empty());
        assert!(f.a.keyframe_request(f.at(0)));
        assert_eq!(f.a.stats.dropped, 1);
        assert_eq!(names(&f.frame(30, 101, b"P101")), [&b"P101"[..]]);
    }

    #[test]
    fn a_keyframe_missing_a_packet_is_waited_for_with_the_deltas_behind_it() {
        let mut f = Feed::new();
        // Keyframe in three packets, the middle one late; a delta follows.
        f.push(0, 1, 3000, false, pkt(true, b"Pa"));
        f.push(1, 3, 3000, true, pkt(false, b"c"));
        assert!(f.frame(33, 4, b"e4").is_empty());
        assert!(
            !f.a.keyframe_request(f.at(33)),
            "the keyframe is on its way"
        );
        let out = f.push(90, 2, 3000, false, pkt(false, b"b"));
        assert_eq!(names(&out), [&b"Pabc"[..], b"e4"]);
    }

    #[test]
    fn sequence_numbers_wrap_around() {
        let mut f = Feed::new();
        f.frame(0, 65534, b"P");
        assert_eq!(names(&f.frame(33, 65535, b"e1")), [&b"e1"[..]]);
        assert_eq!(names(&f.frame(66, 0, b"e2")), [&b"e2"[..]]);
        assert_eq!(names(&f.frame(99, 1, b"e3")), [&b"e3"[..]]);
    }

    #[test]
    fn a_missing_marker_is_not_glued_into_the_next_frame() {
        let mut f = Feed::new();
        f.frame(0, 1, b"P0");
        // Seq 2 starts frame 6000 but its marker never comes; seq 3 starts frame 9000.
        f.push(33, 2, 6000, false, pkt(true, b"eA"));
        assert!(f.push(66, 3, 9000, true, pkt(true, b"eB")).is_empty());
        assert!(f.pop(1000).is_empty());
        assert_eq!(f.a.stats.gave_up, 1);
    }

    #[test]
    fn a_missing_packet_is_asked_for_at_once_then_each_round_trip_up_to_ten_times() {
        let mut f = Feed::new();
        f.a.set_rtt(Duration::from_millis(80));
        f.frame(0, 1, b"P0");
        assert!(f.a.nacks(f.at(0)).is_empty());
        // 2 and 3 lost: 4 shows the gap.
        f.frame(100, 4, b"e4");
        assert_eq!(f.a.nacks(f.at(100)), [2, 3]);
        assert!(
            f.a.nacks(f.at(150)).is_empty(),
            "not again within a round trip"
        );
        assert_eq!(
            f.a.deadline(f.at(150)),
            Some(f.at(188)),
            "the next NACK (a round trip and a tenth later) is a wake-up"
        );
        f.frame(190, 2, b"e2");
        assert_eq!(
            f.a.nacks(f.at(200)),
            [3],
            "what came is not asked for again"
        );
        for t in (3..=10).map(|k| k * 100) {
            assert_eq!(f.a.nacks(f.at(t)), [3], "try at {t} ms");
        }
        assert!(
            f.a.nacks(f.at(1100)).is_empty(),
            "{NACKS_PER_PACKET} times at most"
        );
        assert_eq!(f.a.stats.nacked, 11);
    }

    #[test]
    fn packets_nobody_will_use_are_not_asked_for() {
        let mut f = Feed::new();
        f.frame(0, 1, b"P0");
        f.frame(33, 3, b"e3");
        // A keyframe behind the gap: 2 is worthless now.
        f.frame(40, 4, b"P4");
        assert!(f.a.nacks(f.at(40)).is_empty());
        // A gap of thousands is a keyframe's job, not a NACK's.
        f.frame(60, 1004, b"e");
        assert!(f.a.nacks(f.at(60)).is_empty());
    }

    #[test]
    fn the_wait_follows_the_round_trip_within_bounds() {
        // Three tries at least 20 ms apart, and the jitter allowance.
        assert_eq!(wait_for_rtt(Duration::ZERO), Duration::from_millis(120));
        assert_eq!(
            wait_for_rtt(Duration::from_millis(80)),
            Duration::from_millis(324)
        );
        assert_eq!(wait_for_rtt(Duration::from_secs(2)), MAX_WAIT);
    }

    #[test]
    fn descriptors_with_extensions_are_read_and_truncated_ones_refused() {
        // X, S, PID 0; I with a 15-bit picture id; L; T.
        let d = descriptor(&[0x90, 0xe0, 0x81, 0x23, 0x05, 0x40, 0xaa]).unwrap();
        assert_eq!(
            d,
            Descriptor {
                frame_start: true,
                header_len: 6
            }
        );
        assert!(!descriptor(&[0x11]).unwrap().frame_start, "PID 1");
        assert_eq!(descriptor(&[0x90, 0x80]), None);
        assert_eq!(descriptor(&[]), None);
    }

    #[test]
    fn garbage_never_panics_and_never_leaves_as_a_frame() {
        let mut f = Feed::new();
        for (i, junk) in [&[][..], &[0x80], &[0xff; 3], &[0x10]].iter().enumerate() {
            let out = f.push(i as u64, i as u16, 0, true, Bytes::copy_from_slice(junk));
            assert!(out.is_empty());
        }
        // A jump far ahead is a restarted stream, not a loss of thousands.
        assert!(f.frame(10, 40_000, b"e").is_empty());
        assert_eq!(names(&f.frame(20, 40_001, b"P")), [&b"P"[..]]);
    }
}
