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

/// Open sockets of this process (the server's, the clients' and every peer connection's).
fn open_sockets() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .is_ok_and(|t| t.to_string_lossy().starts_with("socket:"))
                })
                .count()
        })
        .unwrap_or(0)
}

/// Counts, per sender, the remote frames whose pattern verifies.
fn count_verified(
    s: &CallSession,
) -> std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, u32>>> {
    let counts = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    let mut rx = s.video();
    let c = counts.clone();
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(v) => {
                    if peal_media::synthetic::VideoPattern::verify(&v.frame).is_ok() {
                        *c.lock().unwrap().entry(v.from.to_string()).or_insert(0) += 1;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
    });
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_way_group_call_is_a_full_mesh_and_leaving_closes_every_socket_and_task() {
    let server = TestServer::start().await;
    let (alice, bob, carol) = (
        client(&server, "alice").await,
        client(&server, "bob").await,
        client(&server, "carol").await,
    );
    let (mut bob_ring, mut carol_ring) = (bob.events(), carol.events());
    let sockets_before = open_sockets();
    let tasks_before = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    let t0 = Instant::now();
    let placed = alice
        .initiate_call(Call::new("team", ReceiverType::Group, CallType::Video))
        .await
        .expect("placed");
    let a = join_session(&alice, &placed, settings(t0))
        .await
        .expect("alice joins");
    assert_eq!(
        next_call(&mut bob_ring).await.event,
        EventKind::IncomingCallReceived
    );
    assert_eq!(
        next_call(&mut carol_ring).await.event,
        EventKind::IncomingCallReceived
    );
    let bob_call = bob
        .accept_call(&placed.session_id)
        .await
        .expect("bob accepts");
    let b = join_session(&bob, &bob_call, settings(t0))
        .await
        .expect("bob joins");
    let carol_call = carol
        .accept_call(&placed.session_id)
        .await
        .expect("carol accepts");
    let c = join_session(&carol, &carol_call, settings(t0))
        .await
        .expect("carol joins");
    let seen = [
        ("alice", count_verified(&a)),
        ("bob", count_verified(&b)),
        ("carol", count_verified(&c)),
    ];
    let start = Instant::now();
    loop {
        let full = seen.iter().all(|(me, counts)| {
            let counts = counts.lock().unwrap();
            ["alice", "bob", "carol"]
                .iter()
                .filter(|o| *o != me)
                .all(|o| counts.get(*o).copied().unwrap_or(0) >= 10)
        });
        if full {
            break;
        }
        let all: Vec<_> = seen
            .iter()
            .map(|(m, c)| (m, c.lock().unwrap().clone()))
            .collect();
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "mesh incomplete: {all:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for s in [&a, &b, &c] {
        assert_eq!(s.stats().received.corrupt_frames, 0, "{:#?}", s.stats());
    }
    // The peer connections hold sockets and tasks now (so their absence later means something).
    assert!(open_sockets() > sockets_before);
    assert!(
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
            > tasks_before
    );
    // Everyone leaves: every peer connection's sockets and tasks are gone.
    for s in [&a, &b, &c] {
        s.leave().await;
    }
    drop((a, b, c));
    let start = Instant::now();
    loop {
        let (sockets, tasks) = (
            open_sockets(),
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks(),
        );
        // The three counting tasks end with their sessions too.
        if sockets <= sockets_before && tasks <= tasks_before {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "left behind: sockets {sockets} (before {sockets_before}), tasks {tasks} (before {tasks_before})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_only_call_through_coturn_with_credentials_from_peal_server_and_expired_ones_refused()
{
    let turn = peal_tests::Coturn::start("a-secret-shared-with-coturn");
    let (url, secret) = (turn.url(), turn.secret.clone());
    let server = TestServer::start_with(|c| {
        c.ice = peal_server::turn::IceConfig {
            stun_urls: vec![],
            turn_urls: vec![url],
            turn_secret: Some(secret),
            turn_ttl_secs: 600,
        };
    })
    .await;
    // TURN checks expiry against the real clock.
    server.clock.set(peal_proto::Millis(unix_now_ms()));
    let (alice, bob) = (client(&server, "alice").await, client(&server, "bob").await);

    let fresh = alice.ice_servers().await.expect("ice servers");
    let turn_entry = &fresh.ice_servers[0];
    let (user, pass) = (
        turn_entry.username.clone().expect("username"),
        turn_entry.credential.clone().expect("credential"),
    );
    assert!(user.ends_with(":alice"), "{user}");
    assert!(
        turn.allocates(&user, &pass),
        "coturn refused a fresh credential"
    );
    assert!(
        !turn.allocates(&user, "not-the-password"),
        "coturn took a wrong password"
    );

    let t0 = Instant::now();
    let (placed, accepted) = accepted_call(&alice, &bob, "bob").await;
    let relay = |t0| {
        let mut s = settings(t0);
        s.relay_only = true;
        s
    };
    let a = join_session(&alice, &placed, relay(t0))
        .await
        .expect("alice joins");
    let b = join_session(&bob, &accepted, relay(t0))
        .await
        .expect("bob joins");
    until(&[&a, &b], "media both ways through the relay", |s| {
        s.received.verified_frames >= 10 && s.received.verified_audio_frames >= 10
    })
    .await;
    a.end_call().await.expect("ended");

    // A credential minted two hours ago (600 s TTL) is refused by coturn.
    server
        .clock
        .set(peal_proto::Millis(unix_now_ms() - 2 * 3_600_000));
    let stale = alice.ice_servers().await.expect("ice servers");
    let e = &stale.ice_servers[0];
    assert!(stale.expires_at.is_some_and(|t| t.0 < unix_now_ms()));
    assert!(!turn.allocates(
        e.username.as_deref().unwrap_or_default(),
        e.credential.as_deref().unwrap_or_default()
    ));
}
