//! One-to-one calls over real sockets, a real SQLite file and a manual clock:
//! ring, accept, reject, busy, cancel, end, glare, timeouts, restart.

use peal_proto::wire::{
    CallType, Direction, EventKind, ParticipantState, Reason, ReceiverType, RejectStatus, Status,
};
use peal_proto::ErrorCode;
use peal_tests::{assert_code, Catchup, TestServer};

#[tokio::test]
async fn ring_reaches_every_callee_device_and_accept_silences_the_others() {
    let s = TestServer::start().await;
    let mut alice = s.device("alice", "laptop").await;
    let mut bob_laptop = s.device("bob", "laptop").await;
    let mut bob_phone = s.device("bob", "phone").await;

    let call = alice.call("bob").await.unwrap();
    assert_eq!(call.status, Status::Initiated);
    let id = call.session_id.to_string();
    for bob in [&mut bob_laptop, &mut bob_phone] {
        let e = bob.expect(EventKind::IncomingCallReceived).await;
        assert_eq!(e.call.session_id, call.session_id);
        assert_eq!(e.call.initiator.name, "Alice");
    }

    let accepted = bob_phone.accept(&id).await.unwrap();
    assert_eq!(accepted.status, Status::Ongoing);
    assert!(accepted.joined_at.is_some());
    let e = alice.expect(EventKind::OutgoingCallAccepted).await;
    assert_eq!(e.call.status, Status::Ongoing);
    let e = bob_laptop.expect(EventKind::IncomingCallCancelled).await;
    assert_eq!(e.reason, Some(Reason::AnsweredElsewhere));
    bob_phone.quiet().await;

    // The laptop that stopped ringing can't answer any more.
    assert_code(bob_laptop.accept(&id).await, ErrorCode::InvalidState);
}

#[tokio::test]
async fn reject_tells_the_caller_and_silences_the_callees_other_devices() {
    let s = TestServer::start().await;
    let mut alice = s.device("alice", "laptop").await;
    let mut bob_laptop = s.device("bob", "laptop").await;
    let mut bob_phone = s.device("bob", "phone").await;
    let id = alice.call("bob").await.unwrap().session_id.to_string();
    bob_laptop.expect(EventKind::IncomingCallReceived).await;
    bob_phone.expect(EventKind::IncomingCallReceived).await;

    let r = bob_laptop
        .reject(&id, RejectStatus::Rejected)
        .await
        .unwrap();
    assert_eq!(r.status, Status::Rejected);
    let e = alice.expect(EventKind::OutgoingCallRejected).await;
    assert_eq!(e.call.status, Status::Rejected);
    let e = bob_phone.expect(EventKind::IncomingCallCancelled).await;
    assert_eq!(e.reason, Some(Reason::DeclinedElsewhere));

    assert_eq!(alice.history().await[0].status, Status::Rejected);
    assert_eq!(bob_phone.history().await[0].status, Status::Rejected);
}

#[tokio::test]
async fn reject_as_busy_makes_the_call_busy() {
    let s = TestServer::start().await;
    let mut alice = s.device("alice", "laptop").await;
    let mut bob = s.device("bob", "laptop").await;
    let id = alice.call("bob").await.unwrap().session_id.to_string();
    bob.expect(EventKind::IncomingCallReceived).await;
    assert_eq!(
        bob.reject(&id, RejectStatus::Busy).await.unwrap().status,
        Status::Busy
    );
    let e = alice.expect(EventKind::OutgoingCallRejected).await;
    assert_eq!(e.call.status, Status::Busy);
    assert_eq!(e.reason, Some(Reason::Busy));
}

#[tokio::test]
async fn cancel_before_answer_stops_the_ring_and_callee_history_says_missed() {
    let s = TestServer::start().await;
    let alice = s.device("alice", "laptop").await;
    let mut bob = s.device("bob", "laptop").await;
    let id = alice.call("bob").await.unwrap().session_id.to_string();
    bob.expect(EventKind::IncomingCallReceived).await;

    assert_eq!(alice.cancel(&id).await.unwrap().status, Status::Cancelled);
    let e = bob.expect(EventKind::IncomingCallCancelled).await;
    assert_eq!(e.reason, Some(Reason::Cancelled));
    assert_eq!(e.call.status, Status::Cancelled);

    let h = bob.history().await;
    assert_eq!(
        (h[0].status, h[0].direction, h[0].peer.as_str()),
        (Status::Missed, Direction::Incoming, "alice")
    );
    let h = alice.history().await;
    assert_eq!(
        (h[0].status, h[0].direction, h[0].peer.as_str()),
        (Status::Cancelled, Direction::Outgoing, "bob")
    );

    // Accept after cancel: a typed refusal that names the outcome, nothing changes.
    let err = assert_code(bob.accept(&id).await, ErrorCode::InvalidState);
    assert!(err.message.contains("cancelled"), "{}", err.message);
    assert_eq!(bob.get(&id).await.unwrap().status, Status::Cancelled);
}

#[tokio::test]
async fn end_of_an_ongoing_call_reaches_the_other_side_and_history_has_its_duration() {
    let s = TestServer::start().await;
    let mut alice = s.device("alice", "laptop").await;
    let mut bob = s.device("bob", "laptop").await;
    let id = alice.call("bob").await.unwrap().session_id.to_string();
    bob.expect(EventKind::IncomingCallReceived).await;
    s.clock.advance(2_000);
    bob.accept(&id).await.unwrap();
    alice.expect(EventKind::OutgoingCallAccepted).await;
    s.clock.advance(61_000);
    assert_eq!(alice.end(&id).await.unwrap().status, Status::Ended);
    let e = bob.expect(EventKind::CallEndedMessageReceived).await;
    assert_eq!(e.call.status, Status::Ended);

    for h in [alice.history().await, bob.history().await] {
        let h = &h[0];
        assert_eq!(h.status, Status::Ended);
        let duration = h.ended_at.unwrap().since(h.joined_at.unwrap());
        assert_eq!(duration, 61_000);
    }
    assert_code(bob.end(&id).await, ErrorCode::InvalidState);
}

#[tokio::test]
async fn accept_and_cancel_race_exactly_one_wins() {
    // The manual clock stands still, so lift the per-second request limit for 40 rounds.
    let s = TestServer::start_with(|c| c.requests_per_second = 100_000).await;
    let mut alice = s.device("alice", "laptop").await;
    let mut bob = s.device("bob", "laptop").await;
    let (mut accepted, mut cancelled) = (0, 0);
    for round in 0..40 {
        let id = alice.call("bob").await.unwrap().session_id.to_string();
        bob.expect(EventKind::IncomingCallReceived).await;
        let (a, c) = if round % 2 == 0 {
            tokio::join!(bob.accept(&id), alice.cancel(&id))
        } else {
            let (c, a) = tokio::join!(alice.cancel(&id), bob.accept(&id));
            (a, c)
        };
        match (a, c) {
            (Ok(call), Err(e)) => {
                assert_eq!(call.status, Status::Ongoing);
                assert_eq!(e.code, ErrorCode::InvalidState);
                alice.expect(EventKind::OutgoingCallAccepted).await;
                accepted += 1;
                alice.end(&id).await.unwrap();
                bob.expect(EventKind::CallEndedMessageReceived).await;
                assert_eq!(bob.history().await[0].status, Status::Ended);
            }
            (Err(e), Ok(call)) => {
                assert_eq!(call.status, Status::Cancelled);
                assert_eq!(e.code, ErrorCode::InvalidState);
                assert_eq!(
                    bob.expect(EventKind::IncomingCallCancelled).await.reason,
                    Some(Reason::Cancelled)
                );
                cancelled += 1;
                assert_eq!(bob.history().await[0].status, Status::Missed);
            }
            (a, c) => panic!("round {round}: both or neither won: {a:?} / {c:?}"),
        }
        alice.quiet().await;
        bob.quiet().await;
    }
    assert_eq!(accepted + cancelled, 40);
    eprintln!("accept won {accepted}, cancel won {cancelled}");
}

#[tokio::test]
async fn callee_in_an_ongoing_call_is_busy_at_once_and_it_shows_as_missed() {
    let s = TestServer::start().await;
    let mut alice = s.device("alice", "laptop").await;
    let mut bob = s.device("bob", "laptop").await;
    let mut carol = s.device("carol", "laptop").await;
    let id = alice.call("bob").await.unwrap().session_id.to_string();
    bob.expect(EventKind::IncomingCallReceived).await;
    bob.accept(&id).await.unwrap();
    alice.expect(EventKind::OutgoingCallAccepted).await;

    let busy = carol.call("bob").await.unwrap();
    assert_eq!(busy.status, Status::Busy);
    let e = carol.expect(EventKind::OutgoingCallRejected).await;
    assert_eq!(e.call.status, Status::Busy);
    bob.quiet().await;
    let h = bob.history().await;
    assert_eq!((h[0].status, h[0].peer.as_str()), (Status::Missed, "carol"));
    assert_eq!(carol.history().await[0].status, Status::Busy);

    // And the caller side of the rule: alice is in a call, so she can't place another.
    assert_code(alice.call("carol").await, ErrorCode::CallerBusy);
}

#[tokio::test]
async fn glare_two_people_calling_each_other_get_one_ongoing_call() {
    let s = TestServer::start().await;
    let mut alice = s.device("alice", "laptop").await;
    let mut bob = s.device("bob", "laptop").await;
    let first = alice.call("bob").await.unwrap();
    bob.expect(EventKind::IncomingCallReceived).await;

    let second = bob.call("alice").await.unwrap();
    assert_eq!(
        second.session_id, first.session_id,
        "bob's call is alice's call, answered"
    );
    assert_eq!(second.status, Status::Ongoing);
    alice.expect(EventKind::OutgoingCallAccepted).await;
    alice.quiet().await;
    bob.quiet().await;
    assert_eq!(alice.history().await.len(), 1);
}

#[tokio::test]
async fn calling_the_same_person_twice_while_ringing_rings_once() {
    let s = TestServer::start().await;
    let alice = s.device("alice", "laptop").await;
    let mut bob = s.device("bob", "laptop").await;
    let a = alice.call("bob").await.unwrap();
    let b = alice.call("bob").await.unwrap();
    assert_eq!(a.session_id, b.session_id);
    bob.expect(EventKind::IncomingCallReceived).await;
    bob.quiet().await;
}

#[tokio::test]
async fn ring_timeout_fires_at_exactly_the_deadline() {
    let s = TestServer::start().await;
    let mut alice = s.device("alice", "laptop").await;
    let mut bob = s.device("bob", "laptop").await;
    let call = alice
        .call_with("bob", ReceiverType::User, CallType::Audio, Some(5))
        .await
        .unwrap();
    assert_eq!(call.ring_deadline.since(call.initiated_at), 5_000);
    bob.expect(EventKind::IncomingCallReceived).await;

    s.clock.advance(4_999); // N-1: still ringing
    bob.quiet().await;
    alice.quiet().await;
    assert_eq!(
        alice.get(call.session_id.as_str()).await.unwrap().status,
        Status::Initiated
    );

    s.clock.advance(1); // N: the ring stops
    let e = alice.expect(EventKind::OutgoingCallRejected).await;
    assert_eq!(
        (e.call.status, e.reason),
        (Status::Unanswered, Some(Reason::Timeout))
    );
    let e = bob.expect(EventKind::IncomingCallCancelled).await;
    assert_eq!(e.reason, Some(Reason::Timeout));

    s.clock.advance(1); // N+1: nothing more happens
    alice.quiet().await;
    bob.quiet().await;
    assert_eq!(alice.history().await[0].status, Status::Unanswered);
    assert_eq!(bob.history().await[0].status, Status::Missed);
    assert_code(
        bob.accept(call.session_id.as_str()).await,
        ErrorCode::InvalidState,
    );
}

#[tokio::test]
async fn accept_one_millisecond_before_the_ring_timeout_wins() {
    let s = TestServer::start_with(|c| c.ring_timeout_secs = 45).await;
    let mut alice = s.device("alice", "laptop").await;
    let mut bob = s.device("bob", "laptop").await;
    let call = alice.call("bob").await.unwrap();
    assert_eq!(
        call.ring_deadline.since(call.initiated_at),
        45_000,
        "server default applies"
    );
    bob.expect(EventKind::IncomingCallReceived).await;
    s.clock.advance(44_999);
    bob.quiet().await;
    assert_eq!(
        bob.accept(call.session_id.as_str()).await.unwrap().status,
        Status::Ongoing
    );
    alice.expect(EventKind::OutgoingCallAccepted).await;
    s.clock.advance(10_000);
    alice.quiet().await;
    assert_eq!(
        alice.get(call.session_id.as_str()).await.unwrap().status,
        Status::Ongoing
    );
}

#[tokio::test]
async fn restart_finishes_rings_that_ran_out_and_keeps_the_others_ringing() {
    let s = TestServer::start().await;
    let alice = s.device("alice", "laptop").await;
    let mut bob = s.device("bob", "laptop").await;
    let carol = s.device("carol", "laptop").await;
    let short = alice
        .call_with("bob", ReceiverType::User, CallType::Video, Some(10))
        .await
        .unwrap();
    let long = carol
        .call_with("dave", ReceiverType::User, CallType::Video, Some(60))
        .await
        .unwrap();
    bob.expect(EventKind::IncomingCallReceived).await;
    drop((alice, bob, carol));
    let (dir, clock) = s.stop().await;

    clock.advance(20_000); // down for 20 s: the 10 s ring ran out, the 60 s one did not
    let s = TestServer::open(dir, clock, |_| {}).await;
    let mut alice = s.device("alice", "laptop").await;
    let mut dave = s.device("dave", "desk").await;

    assert_eq!(
        alice.get(short.session_id.as_str()).await.unwrap().status,
        Status::Unanswered
    );
    assert_eq!(alice.history().await[0].status, Status::Unanswered);
    assert_eq!(dave.history().await[0].status, Status::Initiated);

    // Dave's new device rings for the call still ringing (snapshot), and can answer it.
    let Catchup::Snapshot(calls) = dave.connect(None).await else {
        panic!("expected a snapshot")
    };
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].session_id, long.session_id);
    assert_eq!(calls[0].participants[1].state, ParticipantState::Ringing);
    assert_eq!(
        calls[0].ring_deadline, long.ring_deadline,
        "the original deadline survives the restart"
    );
    assert_eq!(
        dave.accept(long.session_id.as_str()).await.unwrap().status,
        Status::Ongoing
    );
    alice.quiet().await;
}
