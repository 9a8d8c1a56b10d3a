//! The Rust SDK against a real server: the seed's listener API, the event
//! stream, and resume across a cut connection (a TCP proxy the test cuts).

use futures_util::StreamExt;
use peal_client::{
    Call, CallListener, CallType, ClientConfig, ClientError, ClientEvent, ConnectionState,
    ErrorCode, Event, EventKind, PealClient, Reason, ReceiverType, Status,
};
use peal_tests::{Proxy, TestServer, PASSWORD};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Recorder(Mutex<Vec<(&'static str, Event)>>);

impl Recorder {
    fn record(&self, name: &'static str, e: &Event) {
        self.0.lock().unwrap().push((name, e.clone()));
    }

    fn names(&self) -> Vec<&'static str> {
        self.0.lock().unwrap().iter().map(|(n, _)| *n).collect()
    }
}

impl CallListener for Recorder {
    fn on_incoming_call_received(&self, e: &Event) {
        self.record("incoming_call_received", e);
    }
    fn on_outgoing_call_accepted(&self, e: &Event) {
        self.record("outgoing_call_accepted", e);
    }
    fn on_outgoing_call_rejected(&self, e: &Event) {
        self.record("outgoing_call_rejected", e);
    }
    fn on_incoming_call_cancelled(&self, e: &Event) {
        self.record("incoming_call_cancelled", e);
    }
    fn on_call_ended_message_received(&self, e: &Event) {
        self.record("call_ended_message_received", e);
    }
}

async fn client(server: &str, uid: &str, device: &str) -> PealClient {
    PealClient::connect(ClientConfig::new(server, uid, PASSWORD, device))
        .await
        .expect("connects")
}

use peal_tests::next_call;

/// Waits for the stream to report it is back after a cut.
async fn back(events: &mut peal_client::EventStream) -> ConnectionState {
    loop {
        match tokio::time::timeout(Duration::from_secs(15), events.next())
            .await
            .expect("reconnect in time")
        {
            Some(ClientEvent::Connection(
                s @ (ConnectionState::Resumed { .. } | ConnectionState::Snapshot { .. }),
            )) => return s,
            Some(_) => {}
            None => panic!("stream ended"),
        }
    }
}

async fn eventually(what: &str, f: impl Fn() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never happened: {what}");
}

#[tokio::test]
async fn listeners_hear_the_five_callbacks_of_the_seed_sdk() {
    let s = TestServer::start().await;
    let alice = client(&s.base, "alice", "laptop").await;
    let bob = client(&s.base, "bob", "laptop").await;
    let (a, b) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
    alice.add_call_listener("rec", a.clone());
    bob.add_call_listener("rec", b.clone());

    // ring → accept → end
    let call = alice
        .initiate_call(Call::new("bob", ReceiverType::User, CallType::Video))
        .await
        .unwrap();
    eventually("bob rings", || b.names() == ["incoming_call_received"]).await;
    bob.accept_call(&call.session_id).await.unwrap();
    eventually("alice hears accepted", || {
        a.names() == ["outgoing_call_accepted"]
    })
    .await;
    alice.end_call(&call.session_id).await.unwrap();
    eventually("bob hears ended", || {
        b.names().last() == Some(&"call_ended_message_received")
    })
    .await;

    // ring → reject
    let call = alice
        .initiate_call(Call::new("bob", ReceiverType::User, CallType::Audio))
        .await
        .unwrap();
    eventually("bob rings again", || b.names().len() == 3).await;
    bob.reject_call(&call.session_id, peal_client::RejectStatus::Rejected)
        .await
        .unwrap();
    eventually("alice hears rejected", || {
        a.names().last() == Some(&"outgoing_call_rejected")
    })
    .await;

    // ring → cancel
    let call = alice
        .initiate_call(Call::new("bob", ReceiverType::User, CallType::Audio).timeout(30))
        .await
        .unwrap();
    eventually("bob rings a third time", || b.names().len() == 4).await;
    alice.cancel_call(&call.session_id).await.unwrap();
    eventually("bob hears cancelled", || {
        b.names().last() == Some(&"incoming_call_cancelled")
    })
    .await;
    let last = b.0.lock().unwrap().last().unwrap().1.clone();
    assert_eq!(last.reason, Some(Reason::Cancelled));

    // A removed listener hears nothing more.
    bob.remove_call_listener("rec");
    alice
        .initiate_call(Call::new("bob", ReceiverType::User, CallType::Audio))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(b.names().len(), 5);
}

#[tokio::test]
async fn sdk_errors_are_typed() {
    let s = TestServer::start().await;
    let e = PealClient::connect(ClientConfig::new(&s.base, "alice", "wrong", "x"))
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Unauthorized(_)), "{e:?}");
    assert_eq!(e.exit_code(), 4);
    let alice = client(&s.base, "alice", "laptop").await;
    let e = alice
        .initiate_call(Call::new("alice", ReceiverType::User, CallType::Audio))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::CallingSelf));
    assert_eq!(e.exit_code(), 5);
    let dead = PealClient::connect(ClientConfig::new(
        "http://127.0.0.1:9",
        "alice",
        PASSWORD,
        "x",
    ))
    .await
    .unwrap_err();
    assert!(matches!(dead, ClientError::Unreachable(_)), "{dead:?}");
    assert_eq!(dead.exit_code(), 3);
}

#[tokio::test]
async fn a_ring_during_a_cut_connection_arrives_once_after_the_sdk_resumes() {
    let s = TestServer::start().await;
    let proxy = Proxy::start(s.addr).await;
    let alice = client(&s.base, "alice", "laptop").await;
    let bob = client(&proxy.url(), "bob", "laptop").await;
    let mut events = bob.events();

    proxy.cut();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let call = alice
        .initiate_call(Call::new("bob", ReceiverType::User, CallType::Video))
        .await
        .unwrap();
    proxy.heal();
    assert_eq!(
        back(&mut events).await,
        ConnectionState::Resumed { replayed: 1 }
    );
    let e = next_call(&mut events).await;
    assert_eq!(
        (e.event, &e.call.session_id),
        (EventKind::IncomingCallReceived, &call.session_id)
    );

    // Exactly once: the next thing bob hears is the cancel.
    alice.cancel_call(&call.session_id).await.unwrap();
    assert_eq!(
        next_call(&mut events).await.event,
        EventKind::IncomingCallCancelled
    );
}

#[tokio::test]
async fn the_sdk_never_rings_for_a_call_that_ended_while_it_was_cut_off() {
    let s = TestServer::start().await;
    let proxy = Proxy::start(s.addr).await;
    let alice = client(&s.base, "alice", "laptop").await;
    let bob = client(&proxy.url(), "bob", "laptop").await;
    let rec = Arc::new(Recorder::default());
    bob.add_call_listener("rec", rec.clone());
    let mut events = bob.events();

    proxy.cut();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let gone = alice
        .initiate_call(Call::new("bob", ReceiverType::User, CallType::Video))
        .await
        .unwrap();
    alice.cancel_call(&gone.session_id).await.unwrap();
    proxy.heal();
    assert_eq!(
        back(&mut events).await,
        ConnectionState::Resumed { replayed: 2 }
    );

    let next = alice
        .initiate_call(Call::new("bob", ReceiverType::User, CallType::Video))
        .await
        .unwrap();
    let e = next_call(&mut events).await;
    assert_eq!(
        e.call.session_id, next.session_id,
        "the cancelled call never rang"
    );
    assert_eq!(rec.names(), ["incoming_call_received"]);
}

#[tokio::test]
async fn after_the_resume_window_a_snapshot_rings_for_live_calls_and_ends_vanished_ones() {
    let s = TestServer::start_with(|c| c.ring_timeout_secs = 120).await;
    let proxy = Proxy::start(s.addr).await;
    let alice = client(&s.base, "alice", "laptop").await;
    let carol = client(&s.base, "carol", "laptop").await;
    let bob = client(&proxy.url(), "bob", "laptop").await;
    let mut events = bob.events();

    // Bob hears carol's call ring, then loses his connection.
    let carols = carol
        .initiate_call(Call::new("bob", ReceiverType::User, CallType::Video))
        .await
        .unwrap();
    assert_eq!(
        next_call(&mut events).await.event,
        EventKind::IncomingCallReceived
    );
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // While he is away: carol gives up, alice calls.
    carol.cancel_call(&carols.session_id).await.unwrap();
    let alices = alice
        .initiate_call(Call::new("bob", ReceiverType::User, CallType::Audio))
        .await
        .unwrap();
    s.clock.advance(31_000); // past the resume window: the server forgets bob's buffer
    tokio::time::sleep(Duration::from_millis(100)).await;
    proxy.heal();
    let ConnectionState::Snapshot { live_calls } = back(&mut events).await else {
        panic!("expected a snapshot")
    };
    assert_eq!(live_calls.len(), 1);

    let mut seen = [next_call(&mut events).await, next_call(&mut events).await];
    seen.sort_by_key(|e| e.event == EventKind::IncomingCallReceived);
    assert_eq!(
        (seen[0].event, &seen[0].call.session_id),
        (EventKind::IncomingCallCancelled, &carols.session_id)
    );
    assert_eq!(seen[0].reason, Some(Reason::Cancelled));
    assert_eq!(seen[0].call.status, Status::Cancelled);
    assert_eq!(
        (seen[1].event, &seen[1].call.session_id),
        (EventKind::IncomingCallReceived, &alices.session_id)
    );
    bob.accept_call(&alices.session_id).await.unwrap();
}

#[tokio::test]
async fn a_device_that_signs_in_while_a_call_rings_hears_the_ring_in_listeners_and_streams() {
    let s = TestServer::start().await;
    let alice = client(&s.base, "alice", "laptop").await;
    let call = alice
        .initiate_call(Call::new("bob", ReceiverType::User, CallType::Video))
        .await
        .unwrap();

    // Bob signs in after the call started, and subscribes after connect returned.
    let bob = client(&s.base, "bob", "desk").await;
    assert_eq!(
        bob.ringing()
            .iter()
            .map(|c| c.session_id.clone())
            .collect::<Vec<_>>(),
        vec![call.session_id.clone()]
    );
    let rec = Arc::new(Recorder::default());
    bob.add_call_listener("late", rec.clone());
    assert_eq!(rec.names(), ["incoming_call_received"]);
    let mut events = bob.events();
    assert_eq!(
        next_call(&mut events).await.call.session_id,
        call.session_id
    );

    // Then the ring stops for both, once.
    alice.cancel_call(&call.session_id).await.unwrap();
    assert_eq!(
        next_call(&mut events).await.event,
        EventKind::IncomingCallCancelled
    );
    eventually("listener hears the cancel", || {
        rec.names() == ["incoming_call_received", "incoming_call_cancelled"]
    })
    .await;
    assert!(bob.ringing().is_empty());
    // A stream opened now hears nothing about the finished call.
    let mut later = bob.events();
    let next = alice
        .initiate_call(Call::new("bob", ReceiverType::User, CallType::Audio))
        .await
        .unwrap();
    assert_eq!(next_call(&mut later).await.call.session_id, next.session_id);
}

/// The next presence event on a stream, within 10 s.
async fn presence(events: &mut peal_client::EventStream) -> (String, peal_proto::wire::Presence) {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("presence in time")
        {
            Some(ClientEvent::Presence { uid, presence }) => return (uid.to_string(), presence),
            Some(_) => {}
            None => panic!("stream ended"),
        }
    }
}

#[tokio::test]
async fn the_sdk_hears_watched_presence_and_watches_again_after_a_reconnect() {
    use peal_proto::wire::Presence;
    let s = TestServer::start().await;
    let proxy = Proxy::start(s.addr).await;
    let alice = client(&proxy.url(), "alice", "laptop").await;
    let mut events = alice.events();
    alice.watch_presence(vec!["bob".into()]).unwrap();
    assert_eq!(
        presence(&mut events).await,
        ("bob".into(), Presence::Offline)
    );
    let bob = client(&s.base, "bob", "laptop").await;
    assert_eq!(
        presence(&mut events).await,
        ("bob".into(), Presence::Online)
    );

    // Cut alice off; bob leaves meanwhile; after the reconnect she hears the truth.
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(100)).await;
    bob.close();
    tokio::time::sleep(Duration::from_millis(100)).await;
    proxy.heal();
    // After the reconnect she is told bob's presence again; on a slow machine the
    // server may not have seen bob go yet, so an "online" may come first.
    loop {
        let (uid, p) = presence(&mut events).await;
        assert_eq!(uid, "bob");
        if p == Presence::Offline {
            break;
        }
    }
}

#[tokio::test]
async fn a_call_placed_while_the_server_is_briefly_unreachable_goes_through_once() {
    let s = TestServer::start().await;
    let proxy = Proxy::start(s.addr).await;
    let alice = client(&proxy.url(), "alice", "laptop").await;
    let bob = client(&s.base, "bob", "laptop").await;
    let mut events = bob.events();
    proxy.cut();
    let healer = {
        let p = proxy.clone_handle();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            p.heal();
        })
    };
    let call = alice
        .initiate_call(Call::new("bob", ReceiverType::User, CallType::Audio))
        .await
        .expect("placed after retrying");
    healer.await.unwrap();
    let e = next_call(&mut events).await;
    assert_eq!(
        (e.event, &e.call.session_id),
        (EventKind::IncomingCallReceived, &call.session_id)
    );
    assert_eq!(alice.history(10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn dropping_the_last_clone_of_a_client_closes_its_connection() {
    use peal_proto::wire::Presence;
    let s = TestServer::start().await;
    let alice = client(&s.base, "alice", "laptop").await;
    let mut events = alice.events();
    alice.watch_presence(vec!["bob".into()]).unwrap();
    assert_eq!(
        presence(&mut events).await,
        ("bob".into(), Presence::Offline)
    );
    let bob = client(&s.base, "bob", "laptop").await;
    let bob_clone = bob.clone();
    assert_eq!(
        presence(&mut events).await,
        ("bob".into(), Presence::Online)
    );
    drop(bob);
    let quiet = tokio::time::timeout(Duration::from_millis(300), events.next()).await;
    assert!(
        quiet.is_err(),
        "a live clone keeps the connection: {quiet:?}"
    );
    drop(bob_clone);
    assert_eq!(
        presence(&mut events).await,
        ("bob".into(), Presence::Offline)
    );
}

/// Waits for the stream to say the server no longer takes our token.
async fn signed_out(events: &mut peal_client::EventStream) {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("signed out in time")
        {
            Some(ClientEvent::Connection(ConnectionState::SignedOut)) => return,
            Some(_) => {}
            None => panic!("stream ended before saying signed out"),
        }
    }
}

#[tokio::test]
async fn a_user_sees_their_devices_and_signing_one_out_stops_it_while_the_others_still_ring() {
    let s = TestServer::start().await;
    let laptop = client(&s.base, "alice", "laptop-3f2a9c01").await;
    let desk = client(&s.base, "alice", "desk-77aa0b12").await;
    let bob = client(&s.base, "bob", "phone").await;

    let list = laptop.devices().await.unwrap();
    let mut names: Vec<_> = list.iter().map(|d| d.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["desk-77aa0b12", "laptop-3f2a9c01"]);
    assert!(list.iter().all(|d| d.signed_in_at.is_some()));
    let mine: Vec<_> = list.iter().filter(|d| d.current).collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(&mine[0].device_id, laptop.device_id());
    // Bob sees only his own.
    let bobs = bob.devices().await.unwrap();
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0].name, "phone");

    // Another user's device, or one that doesn't exist: not found, nothing changes.
    let e = bob.sign_out_device(desk.device_id()).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NotFound), "{e:?}");
    let e = laptop
        .sign_out_device(&peal_client::DeviceId("nope".into()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NotFound), "{e:?}");
    assert!(desk.contacts().await.is_ok(), "desk still signed in");

    // The laptop signs the desk out: its connection says so, its token is dead.
    let mut desk_events = desk.events();
    let after = laptop.sign_out_device(desk.device_id()).await.unwrap();
    let d = after
        .iter()
        .find(|d| &d.device_id == desk.device_id())
        .expect("still listed");
    assert_eq!(d.signed_in_at, None, "listed as signed out: {after:?}");
    signed_out(&mut desk_events).await;
    let e = desk.contacts().await.unwrap_err();
    assert!(matches!(e, ClientError::Unauthorized(_)), "{e:?}");

    // The laptop still rings.
    let mut events = laptop.events();
    let call = bob
        .initiate_call(Call::new("alice", ReceiverType::User, CallType::Audio))
        .await
        .unwrap();
    assert_eq!(
        next_call(&mut events).await.call.session_id,
        call.session_id
    );
}

#[tokio::test]
async fn hanging_up_cancels_a_call_still_ringing_and_ends_an_answered_one() {
    let s = TestServer::start().await;
    let alice = client(&s.base, "alice", "laptop").await;
    let bob = client(&s.base, "bob", "desk").await;
    let ringing = alice
        .initiate_call(Call::new("bob", ReceiverType::User, CallType::Audio))
        .await
        .unwrap();
    let gone = alice.hang_up(&ringing.session_id).await.unwrap();
    assert_eq!(gone.status, Status::Cancelled);

    let answered = alice
        .initiate_call(Call::new("bob", ReceiverType::User, CallType::Audio))
        .await
        .unwrap();
    bob.accept_call(&answered.session_id).await.unwrap();
    let over = alice.hang_up(&answered.session_id).await.unwrap();
    assert_eq!(over.status, Status::Ended);
    // Nothing left to hang up: a typed refusal, nothing changes.
    let e = alice.hang_up(&answered.session_id).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::InvalidState), "{e:?}");
}
