//! The peal-media targets: the VP8 frame assembler on arbitrary RTP, and a
//! real peer connection answering (or accepting) an arbitrary SDP from a peer.

use bytes::Bytes;
use peal_media::assemble::{is_keyframe, keyframe_size, RtpIn, Vp8Assembler};
use peal_media::link::{Link, LinkConfig};
use std::time::{Duration, Instant};
use webrtc::peer_connection::RTCSessionDescription;

fn take<'a>(r: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (head, rest) = r.split_at(n.min(r.len()));
    *r = rest;
    head
}

fn byte(r: &mut &[u8]) -> u8 {
    take(r, 1).first().copied().unwrap_or(0)
}

/// Arbitrary bytes as RTP packets (each: a header byte for the marker bit,
/// how the sequence number and timestamp move, and how far the clock
/// moves; then a length and the payload) through one [`Vp8Assembler`],
/// popped after every packet. No panic; never an empty frame; the first
/// frame, and the first after any frame was given up on, is a keyframe (a
/// delta frame then would decode against a picture never shown); a
/// deadline is always in the future.
pub fn vp8_assembler(data: &[u8]) {
    let _ = (is_keyframe(data), keyframe_size(data));
    let mut a = Vp8Assembler::default();
    let mut r = data;
    let (mut seq, mut ts) = (0u16, 0u32);
    let mut now = Instant::now();
    let mut given_up = (0, 0);
    let mut need_key = true;
    while !r.is_empty() {
        let h = byte(&mut r);
        seq = match (h >> 1) & 3 {
            0 => seq.wrapping_add(1),
            1 => seq,
            2 => u16::from_le_bytes([byte(&mut r), byte(&mut r)]),
            _ => seq.wrapping_add(u16::from(byte(&mut r))),
        };
        ts = match (h >> 3) & 3 {
            0 => ts,
            1 => ts.wrapping_add(3000),
            2 => u32::from_le_bytes([byte(&mut r), byte(&mut r), byte(&mut r), byte(&mut r)]),
            _ => ts.wrapping_sub(1),
        };
        if h & 0x20 != 0 {
            now += Duration::from_millis(u64::from(byte(&mut r)) * 4);
        }
        let len = usize::from(byte(&mut r));
        let payload = Bytes::copy_from_slice(take(&mut r, len));
        a.push(
            RtpIn {
                seq,
                timestamp: ts,
                marker: h & 1 == 1,
                payload: &payload,
            },
            now,
        );
        loop {
            let frame = a.pop(now);
            let g = (a.stats.dropped, a.stats.gave_up);
            assert!(g >= given_up, "a count went down");
            if g != given_up {
                given_up = g;
                need_key = true;
            }
            let Some(f) = frame else { break };
            assert!(!f.is_empty(), "an empty frame");
            if need_key {
                assert!(
                    is_keyframe(&f),
                    "a delta frame with nothing to decode against"
                );
                need_key = false;
            }
            let _ = keyframe_size(&f);
        }
        let _ = a.keyframe_request(now);
        if let Some(t) = a.deadline(now) {
            assert!(t > now, "a deadline in the past would spin its caller");
        }
    }
}

fn config() -> LinkConfig {
    LinkConfig {
        ice_servers: Vec::new(),
        relay_only: false,
        bind: vec!["127.0.0.1:0".to_owned()],
        // No connectivity checks within an input's lifetime: candidates come
        // from the input, and nothing is sent to them.
        ice_check_interval: Duration::from_secs(3600),
        ice_disconnected_timeout: Duration::from_secs(5),
    }
}

/// The first byte is a mode, the rest an SDP from the network. Bit 0 clear:
/// a remote offer, [`Link::answer`]ed; set: a remote answer to our offer,
/// [`Link::accept_answer`]ed. Bit 1: then every `a=candidate:` line of it as
/// trickled ICE ([`Link::add_ice`]). Bit 2: then a second round (the offer
/// again, or an ICE-restart offer of ours and the answer again). Whatever the
/// SDP, no panic, in our code or in webrtc-rs, and the link closes.
pub fn sdp_answer(data: &[u8]) {
    let Some((&mode, text)) = data.split_first() else {
        return;
    };
    let sdp = String::from_utf8_lossy(text).into_owned();
    let offer = mode & 1 == 0;
    // The parse that answer / accept_answer start with: most inputs end here,
    // before a peer connection is worth building.
    let parsed = if offer {
        RTCSessionDescription::offer(sdp.clone())
    } else {
        RTCSessionDescription::answer(sdp.clone())
    };
    if parsed.is_err() {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let link = Link::new(0, &config(), tx)
            .await
            .expect("a peer connection on loopback");
        let applied = if offer {
            link.answer(sdp.clone()).await.is_ok()
        } else {
            link.create_offer(false).await.expect("our own offer");
            link.accept_answer(sdp.clone()).await.is_ok()
        };
        if applied && mode & 2 != 0 {
            let candidates = sdp
                .lines()
                .filter_map(|l| l.strip_prefix("a="))
                .filter(|l| l.starts_with("candidate:"));
            for (i, c) in candidates.enumerate() {
                let i = u16::try_from(i).unwrap_or(u16::MAX);
                let _ = link
                    .add_ice(c.to_owned(), Some(i.to_string()), Some(i))
                    .await;
            }
        }
        if applied && mode & 4 != 0 {
            if offer {
                let _ = link.answer(sdp.clone()).await;
            } else if link.create_offer(true).await.is_ok() {
                let _ = link.accept_answer(sdp.clone()).await;
            }
        }
        link.close().await;
    });
    drop(rt);
    assert_eq!(peal_media::live_links(), 0, "a link outlived its input");
}
