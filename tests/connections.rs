//! The event socket: resume with replay, snapshot when too late, heartbeats,
//! lost devices, and bad frames that close only their own connection.

use futures_util::SinkExt;
use peal_proto::wire::{EventKind, Presence, Reason, Status};
use peal_tests::{Catchup, TestServer};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn a_ring_sent_while_the_connection_was_down_is_replayed_on_resume() {
    let s = TestServer::start().await;
    let alice = s.device("alice", "laptop").await;
    let mut bob = s.device("bob", "laptop").await;
    bob.drop_connection();
    tokio::time::sleep(Duration::from_millis(50)).await;

    let call = alice.call("bob").await.unwrap();
    s.clock.advance(29_000); // within the 30 s resume window
    match bob.connect(Some(bob.last_seq)).await {
        Catchup::Replayed(events) => {
            assert_eq!(events.len(), 1);
            assert_eq!(events[0].event, EventKind::IncomingCallReceived);
            assert_eq!(events[0].call.session_id, call.session_id);
        }
        Catchup::Snapshot(c) => panic!("expected a replay, got a snapshot of {c:?}"),
    }
    // Live events continue after the replay with the next seq.
    alice.cancel(call.session_id.as_str()).await.unwrap();
    bob.expect(EventKind::IncomingCallCancelled).await;
}

#[tokio::test]
async fn reconnecting_after_the_resume_window_gets_a_snapshot_of_live_calls() {
    let s = TestServer::start_with(|c| c.ring_timeout_secs = 120).await;
    let alice = s.device("alice", "laptop").await;
    let mut bob = s.device("bob", "laptop").await;
    bob.drop_connection();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let call = alice.call("bob").await.unwrap();
    s.clock.advance(31_000);
    match bob.connect(Some(bob.last_seq)).await {
        Catchup::Snapshot(calls) => {
            assert_eq!(calls.len(), 1);
            assert_eq!(calls[0].session_id, call.session_id);
            assert_eq!(calls[0].status, Status::Initiated);
        }
        Catchup::Replayed(e) => panic!("expected a snapshot, got a replay of {e:?}"),
    }
}

#[tokio::test]
async fn a_call_cancelled_during_the_gap_is_not_in_the_snapshot() {
    let s = TestServer::start().await;
    let alice = s.device("alice", "laptop").await;
    let mut bob = s.device("bob", "laptop").await;
    bob.drop_connection();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let call = alice.call("bob").await.unwrap();
    alice.cancel(call.session_id.as_str()).await.unwrap();
    s.clock.advance(40_000);
    let Catchup::Snapshot(calls) = bob.connect(Some(bob.last_seq)).await else {
        panic!("expected a snapshot")
    };
    assert!(calls.is_empty(), "nothing to ring for: {calls:?}");
    assert_eq!(bob.history().await[0].status, Status::Missed);
}

#[tokio::test]
async fn a_resume_from_another_server_epoch_gets_a_snapshot() {
    let s = TestServer::start().await;
    let mut bob = s.device("bob", "laptop").await;
    bob.drop_connection();
    bob.epoch = "not-this-server".into();
    assert!(matches!(bob.connect(Some(0)).await, Catchup::Snapshot(_)));
}

#[tokio::test]
async fn a_silent_connection_is_dropped_and_the_user_shows_offline() {
    let s = TestServer::start_with(|c| {
        c.heartbeat = Duration::from_millis(100);
        c.dead_after = Duration::from_millis(400);
    })
    .await;
    let alice = s.device("alice", "laptop").await;
    // Bob's socket is open but never read: pings go unanswered.
    let _bob = s.device("bob", "laptop").await;
    let presence = |c: Vec<peal_proto::wire::Contact>| {
        c.into_iter()
            .find(|c| c.uid.as_str() == "bob")
            .unwrap()
            .presence
    };
    assert_eq!(presence(alice.contacts().await), Presence::Online);
    let started = std::time::Instant::now();
    loop {
        if presence(alice.contacts().await) == Presence::Offline {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "bob still online after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn presence_shows_in_call_while_a_call_is_ongoing() {
    let s = TestServer::start().await;
    let alice = s.device("alice", "laptop").await;
    let mut bob = s.device("bob", "laptop").await;
    let id = alice.call("bob").await.unwrap().session_id.to_string();
    bob.expect(EventKind::IncomingCallReceived).await;
    bob.accept(&id).await.unwrap();
    let carol = s.device("carol", "laptop").await;
    let c = carol.contacts().await;
    let p = |uid: &str| c.iter().find(|c| c.uid.as_str() == uid).unwrap().presence;
    assert_eq!(
        (p("alice"), p("bob"), p("dave")),
        (Presence::InCall, Presence::InCall, Presence::Offline)
    );
}

#[tokio::test]
async fn a_caller_whose_device_vanishes_has_the_ring_cancelled_after_the_resume_window() {
    let s = TestServer::start_with(|c| c.ring_timeout_secs = 120).await;
    let mut alice = s.device("alice", "laptop").await;
    let mut bob = s.device("bob", "laptop").await;
    let id = alice.call("bob").await.unwrap().session_id.to_string();
    bob.expect(EventKind::IncomingCallReceived).await;
    alice.drop_connection();
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.clock.advance(29_999);
    bob.quiet().await;
    s.clock.advance(1);
    let e = bob.expect(EventKind::IncomingCallCancelled).await;
    assert_eq!(e.reason, Some(Reason::Cancelled));
    assert_eq!(bob.get(&id).await.unwrap().status, Status::Cancelled);
}

#[tokio::test]
async fn a_participant_whose_device_vanishes_mid_call_is_hung_up_for() {
    let s = TestServer::start().await;
    let mut alice = s.device("alice", "laptop").await;
    let mut bob = s.device("bob", "laptop").await;
    let id = alice.call("bob").await.unwrap().session_id.to_string();
    bob.expect(EventKind::IncomingCallReceived).await;
    bob.accept(&id).await.unwrap();
    alice.expect(EventKind::OutgoingCallAccepted).await;
    bob.drop_connection();
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.clock.advance(30_000);
    let e = alice.expect(EventKind::CallEndedMessageReceived).await;
    assert_eq!(e.reason, Some(Reason::ConnectionLost));
}

#[tokio::test]
async fn malformed_json_closes_only_that_connection() {
    let s = TestServer::start().await;
    let alice = s.device("alice", "laptop").await;
    let mut bob = s.device("bob", "laptop").await;
    bob.send_text("{this is not json").await;
    match bob.frame().await {
        peal_proto::wire::ServerFrame::Error { code, .. } => {
            assert_eq!(code, peal_proto::ErrorCode::BadRequest)
        }
        other => panic!("expected an error frame, got {other:?}"),
    }
    assert_eq!(bob.closed().await, Some(1007));

    // The server is fine: bob reconnects and still rings.
    bob.connect(Some(bob.last_seq)).await;
    alice.call("bob").await.unwrap();
    bob.expect(EventKind::IncomingCallReceived).await;
}

#[tokio::test]
async fn an_oversized_frame_closes_only_that_connection() {
    let s = TestServer::start().await;
    let alice = s.device("alice", "laptop").await;
    let mut bob = s.device("bob", "laptop").await;
    let mut carol = s.device("carol", "laptop").await;
    let huge = format!(
        r#"{{"type":"ping","nonce":1,"pad":"{}"}}"#,
        "x".repeat(70 * 1024)
    );
    let _ = bob
        .ws
        .as_mut()
        .unwrap()
        .send(Message::Text(huge.into()))
        .await;
    let code = bob.closed().await;
    assert!(matches!(code, Some(1009) | None), "closed with {code:?}");

    alice.call("carol").await.unwrap();
    carol.expect(EventKind::IncomingCallReceived).await;
    // A frame just under the limit is fine.
    let fits = format!(
        r#"{{"type":"ping","nonce":2,"pad":"{}"}}"#,
        "x".repeat(60 * 1024)
    );
    carol.send_text(&fits).await;
    assert!(matches!(
        carol.frame().await,
        peal_proto::wire::ServerFrame::Pong { nonce: 2 }
    ));
}

#[tokio::test]
async fn a_second_connection_of_the_same_device_replaces_the_first() {
    let s = TestServer::start().await;
    let alice = s.device("alice", "laptop").await;
    let mut old = s.device("bob", "laptop").await;
    let mut new = s.device("bob", "laptop").await;
    assert_eq!(old.closed().await, Some(4000));
    alice.call("bob").await.unwrap();
    new.expect(EventKind::IncomingCallReceived).await;
}

#[tokio::test]
async fn shutdown_closes_sockets_with_a_retryable_code() {
    let s = TestServer::start().await;
    let mut bob = s.device("bob", "laptop").await;
    let stop = tokio::spawn(s.stop());
    assert_eq!(bob.closed().await, Some(1012));
    stop.await.unwrap();
}

#[tokio::test]
async fn beyond_the_connection_cap_a_socket_is_refused_with_a_typed_error() {
    let s = TestServer::start_with(|c| c.max_connections = 1).await;
    let _alice = s.device("alice", "laptop").await;
    let bob = s.login("bob", "laptop").await.unwrap();
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{}/v1/events", s.addr),
    )
    .unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", bob.token).parse().unwrap(),
    );
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 429)
        }
        other => panic!("expected 429, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn watchers_hear_presence_as_people_come_online_call_and_drop() {
    use Presence::{InCall, Offline, Online};
    let s = TestServer::start().await;
    let mut alice = s.device("alice", "laptop").await;
    alice
        .send_text(r#"{"type":"watch_presence","uids":["bob","carol"]}"#)
        .await;
    assert_eq!(alice.presence().await, ("bob".into(), Offline));
    assert_eq!(alice.presence().await, ("carol".into(), Offline));

    let mut bob = s.device("bob", "laptop").await;
    assert_eq!(alice.presence().await, ("bob".into(), Online));
    let carol = s.device("carol", "laptop").await;
    assert_eq!(alice.presence().await, ("carol".into(), Online));
    // A second device of bob's changes nothing anyone sees.
    let bob_phone = s.device("bob", "phone").await;

    let id = carol.call("bob").await.unwrap().session_id.to_string();
    bob.expect(EventKind::IncomingCallReceived).await;
    alice.quiet().await; // ringing is not "in a call"
    bob.accept(&id).await.unwrap();
    assert_eq!(alice.presence().await, ("carol".into(), InCall));
    assert_eq!(alice.presence().await, ("bob".into(), InCall));
    carol.end(&id).await.unwrap();
    assert_eq!(alice.presence().await, ("carol".into(), Online));
    assert_eq!(alice.presence().await, ("bob".into(), Online));

    bob.drop_connection();
    drop(bob_phone);
    assert_eq!(alice.presence().await, ("bob".into(), Offline));
    alice.quiet().await;
}

#[tokio::test]
async fn watching_too_many_or_bad_ids_is_refused_and_the_connection_stays() {
    let s = TestServer::start().await;
    let mut alice = s.device("alice", "laptop").await;
    let many: Vec<String> = (0..1001).map(|i| format!("\"u{i}\"")).collect();
    alice
        .send_text(&format!(
            r#"{{"type":"watch_presence","uids":[{}]}}"#,
            many.join(",")
        ))
        .await;
    assert!(matches!(
        alice.frame().await,
        peal_proto::wire::ServerFrame::Error {
            code: peal_proto::ErrorCode::BadRequest,
            ..
        }
    ));
    alice
        .send_text(r#"{"type":"watch_presence","uids":["no spaces allowed"]}"#)
        .await;
    assert!(matches!(
        alice.frame().await,
        peal_proto::wire::ServerFrame::Error { .. }
    ));
    alice.quiet().await;
}

#[tokio::test]
async fn a_socket_flooding_frames_is_told_and_closed_and_others_are_fine() {
    let s = TestServer::start().await;
    let alice = s.device("alice", "laptop").await;
    let mut bob = s.device("bob", "laptop").await;
    let mut carol = s.device("carol", "laptop").await;
    for i in 0..200 {
        if bob
            .ws
            .as_mut()
            .unwrap()
            .send(Message::Text(
                format!(r#"{{"type":"ping","nonce":{i}}}"#).into(),
            ))
            .await
            .is_err()
        {
            break;
        }
    }
    let mut refused = false;
    loop {
        match tokio::time::timeout(
            Duration::from_secs(10),
            futures_util::StreamExt::next(bob.ws.as_mut().unwrap()),
        )
        .await
        {
            Ok(Some(Ok(Message::Text(t)))) => refused |= t.as_str().contains("rate_limited"),
            Ok(Some(Ok(Message::Close(c)))) => {
                assert_eq!(c.map(|c| u16::from(c.code)), Some(1008));
                break;
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) => break,
            Err(_) => panic!("the flood was never stopped"),
        }
    }
    assert!(refused, "the flooder is told why");
    alice.call("carol").await.unwrap();
    carol.expect(EventKind::IncomingCallReceived).await;
}

#[tokio::test]
async fn bad_frames_are_closed_with_the_code_rfc_6455_gives_them() {
    use peal_tests::{client_frame, raw_event_socket, read_close_code};
    use tokio::io::AsyncWriteExt;
    let s = TestServer::start().await;
    let alice = s.device("alice", "laptop").await;
    let bob = s.login("bob", "laptop").await.unwrap();
    let cases: [(&str, Vec<u8>, u16); 4] = [
        // A text frame whose payload is not UTF-8: invalid payload data.
        (
            "invalid UTF-8",
            client_frame(0x81, &[0xff, 0xfe, 0xfd], true),
            1007,
        ),
        // Clients must mask every frame: a protocol error.
        (
            "unmasked",
            client_frame(0x81, br#"{"type":"ping","nonce":1}"#, false),
            1002,
        ),
        // RSV1 set with no extension negotiated: a protocol error.
        (
            "reserved bit",
            client_frame(0xc1, br#"{"type":"ping","nonce":1}"#, true),
            1002,
        ),
        // Binary frames: this endpoint takes text only.
        ("binary", client_frame(0x82, &[1, 2, 3], true), 1003),
    ];
    for (what, frame, code) in cases {
        let mut tcp = raw_event_socket(s.addr, &bob.token).await;
        tcp.write_all(&frame).await.expect("send");
        assert_eq!(read_close_code(&mut tcp).await, Some(code), "{what}");
    }
    // Only those connections: bob connects properly and still rings.
    let mut bob = s.device("bob", "laptop").await;
    alice.call("bob").await.unwrap();
    bob.expect(EventKind::IncomingCallReceived).await;
}

#[tokio::test]
async fn signing_out_closes_the_event_socket_opened_with_that_token() {
    let s = TestServer::start().await;
    let mut bob = s.device("bob", "laptop").await;
    let (status, _) = peal_tests::raw(
        "POST",
        &format!("{}/v1/logout", s.base),
        Some(&bob.token),
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(bob.closed().await, Some(4001));
    // And the token opens nothing any more.
    let (status, code) =
        peal_tests::raw("GET", &format!("{}/v1/me", s.base), Some(&bob.token), None).await;
    assert_eq!((status, code.as_str()), (401, "unauthorized"));
}

#[tokio::test]
async fn an_event_older_than_any_resume_can_ask_for_is_not_kept_a_resume_gets_a_snapshot() {
    let s = TestServer::start().await;
    let mut alice = s.device("alice", "laptop").await;
    let mut bob = s.device("bob", "laptop").await;
    let before = bob.last_seq;
    // Bob's socket stays open but he reads nothing: the ring, then (the ring
    // timing out well past the replay horizon) its cancel.
    alice.call("bob").await.unwrap();
    s.clock.advance(peal_server::hub::REPLAY_HORIZON_MS + 1_000);
    let e = alice.expect(EventKind::OutgoingCallRejected).await;
    assert_eq!(e.reason, Some(Reason::Timeout));
    // Resuming from before the ring: the ring is gone from the buffer, so
    // the device is brought up to date with a snapshot, not half a replay.
    match bob.connect(Some(before)).await {
        Catchup::Snapshot(calls) => assert!(calls.is_empty(), "{calls:?}"),
        Catchup::Replayed(events) => panic!("replayed {events:?}"),
    }
}
