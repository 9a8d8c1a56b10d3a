//! Group calls: every member rings on every device, first accept makes the
//! call ongoing, others may join until the ring timeout, end means leave.

use peal_proto::wire::{EventKind, ParticipantState, Reason, RejectStatus, Status};
use peal_proto::ErrorCode;
use peal_tests::{assert_code, TestServer};

#[tokio::test]
async fn group_call_rings_every_member_on_every_device_but_not_the_caller() {
    let s = TestServer::start().await;
    let mut alice = s.device("alice", "laptop").await;
    let mut alice_phone = s.device("alice", "phone").await;
    let mut bob = s.device("bob", "laptop").await;
    let mut bob_phone = s.device("bob", "phone").await;
    let mut carol = s.device("carol", "laptop").await;
    let mut dave = s.device("dave", "laptop").await;

    let call = alice.call_group("team").await.unwrap();
    assert_eq!(call.receiver.id(), "team");
    for d in [&mut bob, &mut bob_phone, &mut carol, &mut dave] {
        let e = d.expect(EventKind::IncomingCallReceived).await;
        assert_eq!(e.call.session_id, call.session_id);
    }
    alice.quiet().await;
    alice_phone.quiet().await;
}

#[tokio::test]
async fn one_decline_ends_nothing_first_accept_starts_it_and_latecomers_join_until_the_timeout() {
    let s = TestServer::start().await;
    let mut alice = s.device("alice", "laptop").await;
    let mut bob = s.device("bob", "laptop").await;
    let mut carol = s.device("carol", "laptop").await;
    let mut dave = s.device("dave", "laptop").await;
    let call = alice.call_group("team").await.unwrap();
    let id = call.session_id.to_string();
    for d in [&mut bob, &mut carol, &mut dave] {
        d.expect(EventKind::IncomingCallReceived).await;
    }

    assert_eq!(
        bob.reject(&id, RejectStatus::Rejected)
            .await
            .unwrap()
            .status,
        Status::Initiated
    );
    alice.quiet().await;
    carol.quiet().await;

    assert_eq!(carol.accept(&id).await.unwrap().status, Status::Ongoing);
    alice.expect(EventKind::OutgoingCallAccepted).await;
    let e = alice.expect(EventKind::ParticipantJoined).await;
    assert_eq!(e.participant.as_ref().map(|u| u.as_str()), Some("carol"));

    // Dave is still ringing and may join.
    s.clock.advance(30_000);
    assert_eq!(dave.accept(&id).await.unwrap().status, Status::Ongoing);
    assert_eq!(
        alice
            .expect(EventKind::ParticipantJoined)
            .await
            .participant
            .unwrap()
            .as_str(),
        "dave"
    );
    assert_eq!(
        carol
            .expect(EventKind::ParticipantJoined)
            .await
            .participant
            .unwrap()
            .as_str(),
        "dave"
    );

    // Bob declined: he can't change his mind into the call.
    assert_code(bob.accept(&id).await, ErrorCode::InvalidState);

    // End in a group call means leave: the call goes on while two remain.
    assert_eq!(dave.end(&id).await.unwrap().status, Status::Ongoing);
    assert_eq!(
        alice
            .expect(EventKind::ParticipantLeft)
            .await
            .participant
            .unwrap()
            .as_str(),
        "dave"
    );
    carol.expect(EventKind::ParticipantLeft).await;
    assert_eq!(carol.end(&id).await.unwrap().status, Status::Ended);
    alice.expect(EventKind::CallEndedMessageReceived).await;

    let status_of = |h: Vec<peal_proto::wire::HistoryEntry>| h[0].status;
    assert_eq!(status_of(alice.history().await), Status::Ended);
    assert_eq!(status_of(bob.history().await), Status::Rejected);
    assert_eq!(status_of(carol.history().await), Status::Ended);
    assert_eq!(status_of(dave.history().await), Status::Ended);
}

#[tokio::test]
async fn members_who_never_answer_an_ongoing_group_call_get_missed_at_the_timeout() {
    let s = TestServer::start().await;
    let alice = s.device("alice", "laptop").await;
    let mut bob = s.device("bob", "laptop").await;
    let mut carol = s.device("carol", "laptop").await;
    let id = alice
        .call_group("team")
        .await
        .unwrap()
        .session_id
        .to_string();
    bob.expect(EventKind::IncomingCallReceived).await;
    carol.expect(EventKind::IncomingCallReceived).await;
    bob.accept(&id).await.unwrap();
    s.clock.advance(45_000);
    let e = carol.expect(EventKind::IncomingCallCancelled).await;
    assert_eq!(e.reason, Some(Reason::Timeout));
    assert_eq!(
        e.call.status,
        Status::Ongoing,
        "the call goes on for those in it"
    );
    assert_eq!(carol.history().await[0].status, Status::Missed);
    let dave = s.device("dave", "laptop").await;
    assert_eq!(dave.history().await[0].status, Status::Missed);
    assert_code(carol.accept(&id).await, ErrorCode::InvalidState);
}

#[tokio::test]
async fn every_member_declining_rejects_the_group_call() {
    let s = TestServer::start().await;
    let mut alice = s.device("alice", "laptop").await;
    let id = alice
        .call_group("team")
        .await
        .unwrap()
        .session_id
        .to_string();
    for uid in ["bob", "carol"] {
        let d = s.device(uid, "laptop").await;
        d.reject(&id, RejectStatus::Rejected).await.unwrap();
        alice.quiet().await;
    }
    let dave = s.device("dave", "laptop").await;
    assert_eq!(
        dave.reject(&id, RejectStatus::Rejected)
            .await
            .unwrap()
            .status,
        Status::Rejected
    );
    let e = alice.expect(EventKind::OutgoingCallRejected).await;
    assert_eq!(e.call.status, Status::Rejected);
}

#[tokio::test]
async fn nobody_answering_leaves_the_group_call_unanswered_and_everyone_missed() {
    let s = TestServer::start().await;
    let mut alice = s.device("alice", "laptop").await;
    let mut bob = s.device("bob", "laptop").await;
    let call = alice.call_group("team").await.unwrap();
    bob.expect(EventKind::IncomingCallReceived).await;
    bob.reject(call.session_id.as_str(), RejectStatus::Rejected)
        .await
        .unwrap();
    s.clock.advance(45_000);
    let e = alice.expect(EventKind::OutgoingCallRejected).await;
    assert_eq!(e.call.status, Status::Unanswered);
    let states: Vec<(String, ParticipantState)> = e
        .call
        .participants
        .iter()
        .map(|p| (p.uid.to_string(), p.state))
        .collect();
    assert_eq!(
        states,
        vec![
            ("alice".to_owned(), ParticipantState::Left),
            ("bob".to_owned(), ParticipantState::Declined),
            ("carol".to_owned(), ParticipantState::Missed),
            ("dave".to_owned(), ParticipantState::Missed),
        ]
    );
}

#[tokio::test]
async fn a_ninth_participant_gets_call_full() {
    let s = TestServer::start_with(|c| c.requests_per_second = 10_000).await;
    let members: Vec<String> = (1..=9).map(|i| format!("m{i}")).collect();
    let refs: Vec<&str> = members.iter().map(String::as_str).collect();
    s.seed(&refs).await;
    let mut all = vec!["alice"];
    all.extend(refs.iter().copied());
    s.add_group("big", &all).await;

    let alice = s.device("alice", "laptop").await;
    let id = alice
        .call_group("big")
        .await
        .unwrap()
        .session_id
        .to_string();
    for m in &refs[..7] {
        let d = s.device(m, "laptop").await;
        d.accept(&id).await.unwrap();
    }
    let eighth = s.device("m8", "laptop").await;
    let err = assert_code(eighth.accept(&id).await, ErrorCode::CallFull);
    assert!(err.message.contains('8'), "{}", err.message);
    // Someone leaving makes room.
    let m1 = s.device("m1", "laptop").await;
    m1.end(&id).await.unwrap();
    assert_eq!(eighth.accept(&id).await.unwrap().status, Status::Ongoing);
}

#[tokio::test]
async fn the_history_file_holds_one_row_per_participant_with_their_own_outcome() {
    use sqlx::Row;
    let s = TestServer::start().await;
    let alice = s.device("alice", "laptop").await;
    let bob = s.device("bob", "laptop").await;
    let carol = s.device("carol", "laptop").await;
    let id = alice
        .call_group("team")
        .await
        .unwrap()
        .session_id
        .to_string();
    bob.reject(&id, RejectStatus::Rejected).await.unwrap();
    carol.accept(&id).await.unwrap();
    s.clock.advance(45_000); // dave never answers
    carol.end(&id).await.unwrap();

    // Read the real SQLite file the server wrote (WAL mode: readers see committed rows).
    let url = format!("sqlite://{}", s.data_dir().join("peal.db").display());
    let pool = sqlx::SqlitePool::connect(&url)
        .await
        .expect("open the server's database");
    let rows =
        sqlx::query("SELECT uid, status FROM call_participants WHERE session_id = ? ORDER BY uid")
            .bind(&id)
            .fetch_all(&pool)
            .await
            .unwrap();
    let got: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let want = [
        ("alice", "ended"),
        ("bob", "rejected"),
        ("carol", "ended"),
        ("dave", "missed"),
    ];
    assert_eq!(got, want.map(|(u, st)| (u.to_owned(), st.to_owned())));
    let status: String = sqlx::query("SELECT status FROM calls WHERE session_id = ?")
        .bind(&id)
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "ended");
}
