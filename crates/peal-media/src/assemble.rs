//! Reassembles VP8 frames from RTP packets, emitting a frame on the packet
//! with the marker bit (its last) instead of waiting for the next frame's
//! first packet, which is what a timestamp-change sample builder does and
//! what costs it a whole frame interval (33 ms at 30 fps) of latency.
//!
//! A frame with a missing packet (sequence gap) or one whose first packet is
//! not a partition start is dropped, never emitted half-built; after a drop,
//! frames are held back until the next keyframe (they would decode against a
//! picture the decoder never had), and [`Vp8Assembler::take_loss`] tells the
//! caller to ask the sender for one. Pure: packets in, frames out.

use bytes::Bytes;
use rtc::rtp::codec::vp8::Vp8Packet;
use rtc::rtp::packetizer::Depacketizer;

/// One RTP packet's fields the assembler needs.
#[derive(Clone, Debug)]
pub struct RtpIn<'a> {
    pub seq: u16,
    pub timestamp: u32,
    pub marker: bool,
    pub payload: &'a Bytes,
}

#[derive(Default)]
pub struct Vp8Assembler {
    depack: Vp8Packet,
    timestamp: Option<u32>,
    next_seq: Option<u16>,
    buf: Vec<u8>,
    broken: bool,
    /// Frames dropped: a packet missing or malformed, or waiting for a keyframe.
    pub dropped: u64,
    /// Set on a drop until [`Vp8Assembler::take_loss`].
    lost: bool,
    /// A keyframe has been seen since the start or the last loss; until
    /// then frames are held back (and the caller hears of a loss).
    synced: bool,
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

impl Vp8Assembler {
    /// Whether frames were lost since the last call (ask for a keyframe).
    pub fn take_loss(&mut self) -> bool {
        std::mem::take(&mut self.lost)
    }

    fn drop_frame(&mut self) {
        self.dropped += 1;
        self.lost = true;
        self.synced = false;
    }

    pub fn push(&mut self, p: RtpIn<'_>) -> Option<Bytes> {
        let in_order = self.next_seq.is_none_or(|n| n == p.seq);
        self.next_seq = Some(p.seq.wrapping_add(1));
        if self.timestamp != Some(p.timestamp) {
            // A new frame; an unfinished previous one lost its tail.
            if self.timestamp.is_some() && !self.buf.is_empty() {
                self.drop_frame();
            }
            self.timestamp = Some(p.timestamp);
            self.buf.clear();
            self.broken = !self.depack.is_partition_head(p.payload);
        } else if !in_order {
            self.broken = true;
        }
        match self.depack.depacketize(p.payload) {
            Ok(part) if !self.broken => {
                if self.buf.is_empty() && self.depack.pid != 0 {
                    self.broken = true;
                } else {
                    self.buf.extend_from_slice(&part);
                }
            }
            Ok(_) | Err(_) => self.broken = true,
        }
        if !p.marker {
            return None;
        }
        let done = std::mem::take(&mut self.buf);
        self.timestamp = None;
        if self.broken || done.is_empty() {
            self.broken = false;
            self.drop_frame();
            return None;
        }
        if !self.synced {
            if !is_keyframe(&done) {
                // Joined mid-stream or after a loss: undecodable until a keyframe.
                self.dropped += 1;
                self.lost = true;
                return None;
            }
            self.synced = true;
        }
        Some(Bytes::from(done))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// VP8 payload descriptor (1 byte, no extensions) + data.
    fn pkt(start: bool, data: &[u8]) -> Bytes {
        let mut v = vec![if start { 0x10 } else { 0x00 }];
        v.extend_from_slice(data);
        Bytes::from(v)
    }

    fn push(
        a: &mut Vp8Assembler,
        seq: u16,
        ts: u32,
        marker: bool,
        payload: &Bytes,
    ) -> Option<Bytes> {
        a.push(RtpIn {
            seq,
            timestamp: ts,
            marker,
            payload,
        })
    }

    #[test]
    fn a_frame_is_emitted_on_its_marker_packet() {
        let mut a = Vp8Assembler::default();
        // Frames start out held until a keyframe (bit 0 clear: 'p' = 0x70).
        let delta = pkt(true, b"abcd");
        assert_eq!(push(&mut a, 9, 0, true, &delta), None);
        assert!(a.take_loss());
        let (p1, p2) = (pkt(true, b"pbcd"), pkt(false, b"efgh"));
        assert_eq!(push(&mut a, 10, 3000, false, &p1), None);
        assert_eq!(
            push(&mut a, 11, 3000, true, &p2).as_deref(),
            Some(&b"pbcdefgh"[..])
        );
        let p3 = pkt(true, b"ijkl");
        assert_eq!(
            push(&mut a, 12, 6000, true, &p3).as_deref(),
            Some(&b"ijkl"[..])
        );
        assert_eq!(a.dropped, 1);
    }

    #[test]
    fn a_frame_missing_a_packet_is_dropped_and_the_next_one_is_whole() {
        let mut a = Vp8Assembler::default();
        let key = pkt(true, b"pppp");
        assert!(push(&mut a, 0, 0, true, &key).is_some());
        let (p1, p3) = (pkt(true, b"abcd"), pkt(false, b"ijkl"));
        push(&mut a, 1, 3000, false, &p1);
        // seq 2 lost
        assert_eq!(push(&mut a, 3, 3000, true, &p3), None);
        assert!(a.take_loss(), "the caller hears of the loss");
        assert!(!a.take_loss());
        // A delta frame can't be shown without what it refers to...
        let delta = pkt(true, b"mnop");
        assert_eq!(push(&mut a, 4, 6000, true, &delta), None);
        // ...a keyframe (bit 0 clear) can.
        let key = pkt(true, b"pqrs");
        assert_eq!(
            push(&mut a, 5, 9000, true, &key).as_deref(),
            Some(&b"pqrs"[..])
        );
        assert_eq!(a.dropped, 2);
    }

    #[test]
    fn a_frame_whose_head_was_lost_or_whose_tail_never_came_is_dropped() {
        let mut a = Vp8Assembler::default();
        let mid = pkt(false, b"efgh");
        assert_eq!(push(&mut a, 7, 3000, true, &mid), None);
        let head = pkt(true, b"abcd");
        push(&mut a, 8, 6000, false, &head); // tail never comes
        let next = pkt(true, b"prst");
        assert_eq!(
            push(&mut a, 9, 9000, true, &next).as_deref(),
            Some(&b"prst"[..])
        );
        assert_eq!(a.dropped, 2);
        // Garbage never panics.
        let junk = Bytes::from_static(&[]);
        assert_eq!(push(&mut a, 10, 12000, true, &junk), None);
    }
}
