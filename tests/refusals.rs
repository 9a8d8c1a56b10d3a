//! Every error code, and a stranger trying every action on someone else's call:
//! typed refusals that change nothing and tell nobody.

use peal_proto::wire::{CallType, EventKind, ReceiverType, RejectStatus, Status};
use peal_proto::ErrorCode;
use peal_tests::{assert_code, raw, TestServer};

#[tokio::test]
async fn a_stranger_trying_every_action_on_a_call_hears_not_found_and_nothing_changes() {
    let s = TestServer::start().await;
    let mut alice = s.device("alice", "laptop").await;
    let mut bob = s.device("bob", "laptop").await;
    let mut carol = s.device("carol", "laptop").await;
    let call = alice.call("bob").await.unwrap();
    let id = call.session_id.to_string();
    bob.expect(EventKind::IncomingCallReceived).await;

    for round in ["ringing", "ongoing", "ended"] {
        assert_code(carol.accept(&id).await, ErrorCode::NotFound);
        assert_code(
            carol.reject(&id, RejectStatus::Rejected).await,
            ErrorCode::NotFound,
        );
        assert_code(
            carol.reject(&id, RejectStatus::Busy).await,
            ErrorCode::NotFound,
        );
        assert_code(carol.cancel(&id).await, ErrorCode::NotFound);
        assert_code(carol.end(&id).await, ErrorCode::NotFound);
        assert_code(carol.get(&id).await, ErrorCode::NotFound);
        alice.quiet().await;
        bob.quiet().await;
        carol.quiet().await;
        assert!(
            carol.history().await.is_empty(),
            "{round}: nothing in a stranger's history"
        );
        match round {
            "ringing" => {
                assert_eq!(bob.get(&id).await.unwrap().status, Status::Initiated);
                bob.accept(&id).await.unwrap();
                alice.expect(EventKind::OutgoingCallAccepted).await;
            }
            "ongoing" => {
                assert_eq!(bob.get(&id).await.unwrap().status, Status::Ongoing);
                alice.end(&id).await.unwrap();
                bob.expect(EventKind::CallEndedMessageReceived).await;
            }
            _ => assert_eq!(bob.get(&id).await.unwrap().status, Status::Ended),
        }
    }
    // An id that never existed looks the same as one you may not see.
    assert_code(
        carol.accept("0123456789abcdef0123456789abcdef").await,
        ErrorCode::NotFound,
    );
    assert_code(
        carol.accept("..%2F..%2Fetc%2Fpasswd").await,
        ErrorCode::NotFound,
    );
}

#[tokio::test]
async fn every_refusal_has_its_stable_code() {
    let s = TestServer::start().await;
    let alice = s.device("alice", "laptop").await;
    let mut bob = s.device("bob", "laptop").await;

    // unauthorized: wrong password, unknown user, bad token
    let login_url = format!("{}/v1/login", s.base);
    let login = |uid: &str, pw: &str| {
        raw(
            "POST",
            &login_url,
            None,
            Some(format!(
                r#"{{"uid":"{uid}","password":"{pw}","device":"x"}}"#
            )),
        )
    };
    assert_eq!(
        login("alice", "wrong").await,
        (401, "unauthorized".to_owned())
    );
    assert_eq!(
        login("nobody", "pw").await,
        (401, "unauthorized".to_owned())
    );
    let mut stranger = s.device("bob", "other").await;
    stranger.token = "f".repeat(64);
    assert_code(stranger.call("alice").await, ErrorCode::Unauthorized);

    // not_found: unknown user, unknown group, a group you're not in
    assert_code(alice.call("nobody").await, ErrorCode::NotFound);
    assert_code(alice.call_group("nogroup").await, ErrorCode::NotFound);
    s.seed(&["erin", "frank"]).await;
    s.add_group("others", &["erin", "frank"]).await;
    assert_code(alice.call_group("others").await, ErrorCode::NotFound);

    // calling_self
    assert_code(alice.call("alice").await, ErrorCode::CallingSelf);

    // bad_request: timeout out of range (5-180), malformed and oversized bodies
    assert_code(
        alice
            .call_with("bob", ReceiverType::User, CallType::Audio, Some(4))
            .await,
        ErrorCode::BadRequest,
    );
    assert_code(
        alice
            .call_with("bob", ReceiverType::User, CallType::Audio, Some(181))
            .await,
        ErrorCode::BadRequest,
    );
    let calls_url = format!("{}/v1/calls", s.base);
    let post_raw = |body: String| raw("POST", &calls_url, Some(&alice.token), Some(body));
    assert_eq!(
        post_raw(r#"{"receiver": 7}"#.into()).await,
        (400, "bad_request".to_owned())
    );
    assert_eq!(post_raw("{".into()).await, (400, "bad_request".to_owned()));
    let big = "x".repeat(100 * 1024);
    assert_eq!(
        post_raw(format!(r#"{{"receiver": "{big}"}}"#)).await,
        (400, "bad_request".to_owned())
    );

    // invalid_state: end before answer, the caller answering, a callee cancelling, a second answer
    let id = alice
        .call_with("bob", ReceiverType::User, CallType::Audio, Some(5))
        .await
        .unwrap()
        .session_id
        .to_string();
    bob.expect(EventKind::IncomingCallReceived).await;
    assert_code(alice.end(&id).await, ErrorCode::InvalidState);
    assert_code(alice.accept(&id).await, ErrorCode::InvalidState);
    assert_code(bob.cancel(&id).await, ErrorCode::InvalidState);
    bob.accept(&id).await.unwrap();
    assert_code(bob.accept(&id).await, ErrorCode::InvalidState);
    assert_code(alice.cancel(&id).await, ErrorCode::InvalidState);

    // caller_busy
    assert_code(alice.call("carol").await, ErrorCode::CallerBusy);
}

#[tokio::test]
async fn calls_beyond_the_per_minute_limit_are_rate_limited_until_tokens_return() {
    let s = TestServer::start_with(|c| {
        c.calls_per_minute = 3;
        c.requests_per_second = 10_000;
    })
    .await;
    let alice = s.device("alice", "laptop").await;
    for callee in ["bob", "carol", "dave"] {
        let id = alice.call(callee).await.unwrap().session_id.to_string();
        alice.cancel(&id).await.unwrap();
    }
    assert_code(alice.call("bob").await, ErrorCode::RateLimited);
    s.clock.advance(20_000); // a third of a minute buys one call back
    assert!(alice.call("bob").await.is_ok());
}

#[tokio::test]
async fn a_device_flooding_requests_is_rate_limited() {
    let s = TestServer::start_with(|c| c.requests_per_second = 5).await;
    let alice = s.device("alice", "laptop").await;
    // The event socket's upgrade was one request.
    for _ in 0..4 {
        alice.history().await;
    }
    let url = format!("{}/v1/history", s.base);
    assert_eq!(
        raw("GET", &url, Some(&alice.token), None).await,
        (429, "rate_limited".to_owned())
    );
    s.clock.advance(1_000);
    alice.history().await;
}

#[tokio::test]
async fn a_retried_request_with_the_same_idempotency_key_gets_the_first_answer_and_acts_once() {
    let s = TestServer::start().await;
    let mut alice = s.device("alice", "laptop").await;
    let mut bob = s.device("bob", "laptop").await;
    let body =
        serde_json::json!({"receiver": "bob", "receiver_type": "user", "call_type": "video"});

    let first = alice
        .post_keyed("/v1/calls", body.clone(), Some("k-1"))
        .await
        .unwrap();
    bob.expect(EventKind::IncomingCallReceived).await;
    let id = first.session_id.to_string();
    let accept = format!("/v1/calls/{id}/accept");
    let a1 = bob
        .post_keyed(&accept, serde_json::json!({}), Some("k-2"))
        .await
        .unwrap();
    // The response was "lost": the same accept again gets the same answer, not "already answered".
    let a2 = bob
        .post_keyed(&accept, serde_json::json!({}), Some("k-2"))
        .await
        .unwrap();
    assert_eq!(a1, a2);
    alice.expect(EventKind::OutgoingCallAccepted).await;
    // Without the key it is a second accept, and refused.
    assert_code(bob.accept(&id).await, ErrorCode::InvalidState);
    alice.end(&id).await.unwrap();
    bob.expect(EventKind::CallEndedMessageReceived).await;

    // Re-sending the old initiate after the call is over places no new call.
    let again = alice
        .post_keyed("/v1/calls", body.clone(), Some("k-1"))
        .await
        .unwrap();
    assert_eq!(again.session_id, first.session_id);
    bob.quiet().await;
    assert_eq!(alice.history().await.len(), 1);

    // No key is fine; a malformed key is refused.
    let url = format!("{}/v1/calls", s.base);
    let bad = raw("POST", &url, Some(&alice.token), Some(body.to_string())).await;
    assert_eq!(bad.0, 200, "no key is fine");
    let mut req = reqwest::Client::new()
        .post(&url)
        .bearer_auth(&alice.token)
        .json(&body);
    req = req.header("idempotency-key", "has space");
    assert_eq!(req.send().await.unwrap().status().as_u16(), 400);
}

/// splitmix64, seeded and printed so a failure replays with PEAL_SEED.
fn rng() -> impl FnMut() -> u64 {
    let mut x: u64 = std::env::var("PEAL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("PEAL_SEED={x}");
    move || {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Random text that looks a little like our JSON.
fn garbage(next: &mut impl FnMut() -> u64) -> String {
    const PIECES: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"",
        "type",
        "ping",
        "watch_presence",
        "uids",
        "nonce",
        "receiver",
        "receiver_type",
        "call_type",
        "user",
        "group",
        "video",
        "status",
        "null",
        "true",
        "-1",
        "1e999",
        "18446744073709551616",
        "\\u0000",
        "é",
        "😀",
        " ",
        "bob",
        "timeout",
    ];
    let n = next() % 40;
    (0..n)
        .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
        .collect()
}

#[tokio::test]
async fn garbage_on_every_surface_gets_typed_refusals_and_the_server_keeps_ringing() {
    let s = TestServer::start_with(|c| c.requests_per_second = 100_000).await;
    let mut next = rng();
    let alice = s.device("alice", "laptop").await;
    let calls_url = format!("{}/v1/calls", s.base);
    let login_url = format!("{}/v1/login", s.base);
    for _ in 0..200 {
        let body = garbage(&mut next);
        let (status, code) = raw("POST", &calls_url, Some(&alice.token), Some(body.clone())).await;
        assert!(status < 500, "{body:?} -> {status} {code}");
        assert!(
            status == 200 || !code.is_empty(),
            "{body:?}: a refusal carries a code"
        );
        let (status, _) = raw("POST", &login_url, None, Some(body.clone())).await;
        assert!(status < 500, "login {body:?} -> {status}");
        let accept = format!(
            "{}/v1/calls/{}/accept",
            s.base,
            garbage(&mut next).replace('/', "")
        );
        let (status, _) = raw("POST", &accept, Some(&alice.token), None).await;
        assert!(status < 500, "{accept:?} -> {status}");
    }
    let mut d = s.device("carol", "fuzz").await;
    for _ in 0..50 {
        let text = garbage(&mut next);
        d.send_text(&text).await;
        // Either it parsed (a pong, presence) or it is refused and the socket closed; never a crash.
        let _ = tokio::time::timeout(std::time::Duration::from_millis(200), d.closed()).await;
        d.connect(None).await;
    }
    // Whatever happened above, calls still ring.
    let mut bob = s.device("bob", "laptop").await;
    let alice = s.device("alice", "laptop2").await;
    let _ = alice.call("bob").await;
    loop {
        let e = bob.event().await;
        if e.event == EventKind::IncomingCallReceived && e.call.initiator.uid.as_str() == "alice" {
            break;
        }
    }
}

#[tokio::test]
async fn a_user_added_after_a_failed_call_can_be_called() {
    let s = TestServer::start().await;
    let alice = s.device("alice", "laptop").await;
    assert_code(alice.call("zed").await, ErrorCode::NotFound);
    s.seed(&["zed"]).await; // the admin adds zed while the server runs
    let call = alice.call("zed").await.unwrap();
    assert_eq!(call.receiver.name(), "Zed");
}

/// Who tries an action on a call between alice (laptop) and bob (laptop).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    /// carol, in no part of the call.
    Stranger,
    /// bob's tablet, while bob's laptop is the device in the call.
    OtherDevice,
    /// bob, once the call has ended.
    AfterEnded,
    /// bob, with a token past its lifetime.
    ExpiredToken,
    /// bob, with a token he signed out.
    SignedOut,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Act {
    Accept,
    Decline,
    Busy,
    Cancel,
    End,
    Get,
    /// A media signal to alice on the event socket.
    Media,
}

const ACTS: [Act; 7] = [
    Act::Accept,
    Act::Decline,
    Act::Busy,
    Act::Cancel,
    Act::End,
    Act::Get,
    Act::Media,
];

/// The documented answer (ARCHITECTURE.md, "Who may do what"): the code a
/// refusal carries, or `None` where the action is allowed.
fn documented(who: Who, act: Act) -> Option<ErrorCode> {
    use Act::*;
    match (who, act) {
        (Who::Stranger, _) => Some(ErrorCode::NotFound),
        (Who::OtherDevice, Accept | Decline | Busy | Cancel) => Some(ErrorCode::InvalidState),
        (Who::OtherDevice, Media) => Some(ErrorCode::NotFound),
        // A user may look at, and hang up, their call from any of their
        // devices; the one in the call hears `ended_elsewhere` (calls.rs).
        (Who::OtherDevice, Get | End) => None,
        (Who::AfterEnded, Get) => None,
        (Who::AfterEnded, Media) => Some(ErrorCode::NotFound),
        (Who::AfterEnded, Accept | Decline | Busy | Cancel | End) => Some(ErrorCode::InvalidState),
        (Who::ExpiredToken | Who::SignedOut, _) => Some(ErrorCode::Unauthorized),
    }
}

async fn act(d: &peal_tests::Device, act: Act, id: &str) -> Result<(), peal_proto::ErrorBody> {
    match act {
        Act::Accept => d.accept(id).await.map(|_| ()),
        Act::Decline => d.reject(id, RejectStatus::Rejected).await.map(|_| ()),
        Act::Busy => d.reject(id, RejectStatus::Busy).await.map(|_| ()),
        Act::Cancel => d.cancel(id).await.map(|_| ()),
        Act::End => d.end(id).await.map(|_| ()),
        Act::Get => d.get(id).await.map(|_| ()),
        Act::Media => unreachable!("media signals go over the event socket"),
    }
}

/// The status an event socket opened with `token` is refused with.
async fn event_socket_refusal(addr: std::net::SocketAddr, token: &str) -> u16 {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{addr}/v1/events")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn the_authorization_matrix_every_action_and_media_signal_by_everyone_who_may_not() {
    for who in [
        Who::Stranger,
        Who::OtherDevice,
        Who::AfterEnded,
        Who::ExpiredToken,
        Who::SignedOut,
    ] {
        // Tokens live a minute here, so one can expire while the others are fresh.
        let s = TestServer::start_with(|c| c.token_ttl_ms = 60_000).await;
        let mut actor = match who {
            Who::ExpiredToken => {
                let old = s.login("bob", "old-phone").await.unwrap();
                s.clock.advance(61_000);
                Some(old.token)
            }
            Who::SignedOut => {
                let old = s.login("bob", "old-phone").await.unwrap();
                let (status, _) = raw(
                    "POST",
                    &format!("{}/v1/logout", s.base),
                    Some(&old.token),
                    None,
                )
                .await;
                assert_eq!(status, 204);
                Some(old.token)
            }
            Who::Stranger | Who::OtherDevice | Who::AfterEnded => None,
        }
        .map(|token| peal_tests::Device {
            base: s.base.clone(),
            addr: s.addr,
            token,
            uid: "bob".into(),
            ws: None,
            last_seq: 0,
            epoch: String::new(),
            http: reqwest::Client::new(),
        });
        let mut alice = s.device("alice", "laptop").await;
        let mut bob = s.device("bob", "laptop").await;
        let id = alice.call("bob").await.unwrap().session_id.to_string();
        bob.expect(EventKind::IncomingCallReceived).await;
        bob.accept(&id).await.unwrap();
        alice.expect(EventKind::OutgoingCallAccepted).await;
        let mut actor = match who {
            Who::Stranger => s.device("carol", "laptop").await,
            Who::OtherDevice => s.device("bob", "tablet").await,
            Who::AfterEnded => {
                alice.end(&id).await.unwrap();
                bob.expect(EventKind::CallEndedMessageReceived).await;
                // The laptop acts; another of bob's devices listens.
                let listener = s.device("bob", "desk").await;
                std::mem::replace(&mut bob, listener)
            }
            Who::ExpiredToken | Who::SignedOut => actor.take().unwrap(),
        };
        let status = alice.get(&id).await.unwrap().status;
        for a in ACTS {
            let want = documented(who, a);
            let Some(code) = want else {
                if a == Act::Get {
                    assert!(act(&actor, a, &id).await.is_ok(), "{who:?} {a:?}");
                }
                continue;
            };
            if a == Act::Media {
                if code == ErrorCode::Unauthorized {
                    assert_eq!(event_socket_refusal(s.addr, &actor.token).await, 401);
                } else {
                    actor
                        .send_text(&format!(
                            r#"{{"type":"media","call":"{id}","to":"alice","signal":{{"kind":"hello"}}}}"#
                        ))
                        .await;
                    match actor.frame().await {
                        peal_proto::wire::ServerFrame::Error { code: got, .. } => {
                            assert_eq!(got, code, "{who:?} {a:?}")
                        }
                        other => panic!("{who:?} {a:?}: expected a refusal, got {other:?}"),
                    }
                }
            } else {
                let got = act(&actor, a, &id).await;
                assert_eq!(
                    got.map_err(|e| e.code),
                    Err(code),
                    "{who:?} {a:?} is refused with its documented code"
                );
            }
            // Nothing relayed, nobody told, nothing changed.
            alice.quiet().await;
            bob.quiet().await;
            assert_eq!(
                alice.get(&id).await.unwrap().status,
                status,
                "{who:?} {a:?}"
            );
        }
    }
}
