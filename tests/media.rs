//! Call media over real sockets on loopback: real webrtc-rs peer connections,
//! real VP8 and Opus, negotiated through a real peal-server, with the
//! synthetic sources whose frames the receivers verify.

use peal_client::{
    Call, CallType, ClientConfig, ClientEvent, ErrorCode, EventKind, PealClient, ReceiverType,
};
use peal_media::{join_session, CallSession, MediaEvent, MediaStats, SessionSettings, Sources};
use peal_proto::wire::{CallInfo, MediaSignal};
use peal_tests::{next_call, TestServer, PASSWORD};
use std::time::{Duration, Instant};

async fn client(server: &TestServer, uid: &str) -> PealClient {
    PealClient::connect(ClientConfig::new(
        &server.base,
        uid,
        PASSWORD,
        format!("{uid}-laptop"),
    ))
    .await
    .expect("connects")
}

/// Small frames keep two debug-built encoders cheap on a 2-core CI machine.
fn settings(t0: Instant) -> SessionSettings {
    let mut s = SessionSettings::new(CallType::Video, Sources::Synthetic);
    s.width = 320;
    s.height = 240;
    s.fps = 15;
    s.video_kbps = 300;
    s.bind = vec!["127.0.0.1:0".into()];
    s.t0 = t0;
    s
}

/// Waits until `ok(stats)` holds for every session, or panics with their stats.
async fn until(sessions: &[&CallSession], what: &str, ok: impl Fn(&MediaStats) -> bool) {
    let start = Instant::now();
    loop {
        if sessions.iter().all(|s| ok(&s.stats())) {
            return;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let all: Vec<MediaStats> = sessions.iter().map(|s| s.stats()).collect();
            panic!("{what} not reached in 20 s: {all:#?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn verified_both_ways(s: &MediaStats) -> bool {
    s.received.verified_frames >= 20 && s.received.verified_audio_frames >= 20
}

/// Places a call from `from` to `to`, accepted; returns both sides' view.
async fn accepted_call(caller: &PealClient, callee: &PealClient, to: &str) -> (CallInfo, CallInfo) {
    let mut ring = callee.events();
    let placed = caller
        .initiate_call(Call::new(to, ReceiverType::User, CallType::Video))
        .await
        .expect("placed");
    assert_eq!(
        next_call(&mut ring).await.event,
        EventKind::IncomingCallReceived
    );
    let accepted = callee
        .accept_call(&placed.session_id)
        .await
        .expect("accepted");
    (placed, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_to_one_video_call_both_sides_verify_each_others_frames_and_tone() {
    let server = TestServer::start().await;
    let (alice, bob) = (client(&server, "alice").await, client(&server, "bob").await);
    let t0 = Instant::now();
    let (placed, accepted) = accepted_call(&alice, &bob, "bob").await;
    let a = join_session(&alice, &placed, settings(t0))
        .await
        .expect("alice joins");
    let b = join_session(&bob, &accepted, settings(t0))
        .await
        .expect("bob joins");
    let mut a_events = a.events().expect("events");
    until(
        &[&a, &b],
        "20 verified frames and tones each way",
        verified_both_ways,
    )
    .await;
    for s in [&a, &b] {
        let st = s.stats();
        assert_eq!(st.received.corrupt_frames, 0, "{st:#?}");
        assert_eq!(st.received.out_of_order, 0, "{st:#?}");
        assert!(
            st.capture_to_decode_ms_p50.is_some_and(|ms| ms < 500),
            "{st:#?}"
        );
    }
    assert_eq!(
        a_events.recv().await,
        Some(MediaEvent::ParticipantJoined { peer: "bob".into() })
    );
    // Hanging up leaves the media and ends the call for bob.
    let mut b_events = b.events().expect("events");
    a.end_call().await.expect("ended");
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(e) = b_events.recv().await {
            if let MediaEvent::Ended { reason } = e {
                return reason;
            }
        }
        String::new()
    })
    .await
    .expect("bob's session ends");
    assert!(ended == "call_ended" || ended == "left", "{ended}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_s_offer_and_ice_are_refused_and_never_relayed() {
    let server = TestServer::start().await;
    let (alice, bob, carol) = (
        client(&server, "alice").await,
        client(&server, "bob").await,
        client(&server, "carol").await,
    );
    let (placed, _) = accepted_call(&alice, &bob, "bob").await;
    let mut carol_events = carol.events();
    let mut alice_events = alice.events();
    for signal in [
        MediaSignal::Offer {
            sdp: "v=0".into(),
            restart: false,
        },
        MediaSignal::Ice {
            candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host".into(),
            sdp_mid: None,
            sdp_mline_index: Some(0),
        },
    ] {
        carol
            .send_media(&placed.session_id, &"alice".into(), None, signal)
            .expect("sent");
        let refused = loop {
            match tokio::time::timeout(
                Duration::from_secs(5),
                futures_util::StreamExt::next(&mut carol_events),
            )
            .await
            {
                Ok(Some(ClientEvent::Refused { code, .. })) => break code,
                Ok(Some(_)) => {}
                other => panic!("no refusal: {other:?}"),
            }
        };
        assert_eq!(refused, ErrorCode::NotFound);
    }
    // A real participant's signal does arrive, after (so ordering proves carol's never did).
    bob.send_media(&placed.session_id, &"alice".into(), None, MediaSignal::Bye)
        .expect("sent");
    loop {
        match tokio::time::timeout(
            Duration::from_secs(5),
            futures_util::StreamExt::next(&mut alice_events),
        )
        .await
        {
            Ok(Some(ClientEvent::Media { from, signal, .. })) => {
                assert_eq!(
                    (from.as_str(), &signal),
                    ("bob", &MediaSignal::Bye),
                    "carol's signal leaked"
                );
                break;
            }
            Ok(Some(_)) => {}
            other => panic!("bob's signal lost: {other:?}"),
        }
    }
}
