//! The pure call state machine, phase by phase and input by input.
//! No clock, no socket: `now` is a number the test picks.

use peal_proto::fsm::{
    step, Audience, CallError, CallState, Effect, Input, NewCall, Outcome, Phase,
};
use peal_proto::wire::{
    CallType, EventKind, ParticipantState, Party, Reason, Receiver, ReceiverType, RejectStatus,
    Status,
};
use peal_proto::{DeviceId, Millis, SessionId, UserId};

const T0: Millis = Millis(1_000_000);
const RING_MS: i64 = 45_000;

fn party(uid: &str) -> Party {
    Party {
        uid: uid.into(),
        name: uid.to_uppercase(),
    }
}

fn dev(d: &str) -> DeviceId {
    DeviceId::from(d)
}

/// alice calls bob (1:1); `busy`: bob is already in another call.
fn new_call(call_type: CallType, busy: bool) -> NewCall {
    NewCall {
        session_id: SessionId::from("c1"),
        call_type,
        receiver_type: ReceiverType::User,
        receiver: Receiver::User {
            uid: "bob".into(),
            name: "BOB".into(),
        },
        caller: party("alice"),
        caller_device: dev("a1"),
        callees: vec![(party("bob"), busy)],
        ring_timeout_ms: RING_MS,
    }
}

fn one_to_one() -> CallState {
    CallState::start(new_call(CallType::Video, false), T0).call
}

fn accept(u: &str, d: &str) -> Input {
    Input::Accept {
        user: u.into(),
        device: dev(d),
    }
}
fn reject(u: &str, d: &str, s: RejectStatus) -> Input {
    Input::Reject {
        user: u.into(),
        device: dev(d),
        status: s,
    }
}
fn end(u: &str, d: &str) -> Input {
    Input::End {
        user: u.into(),
        device: dev(d),
    }
}

fn ok(call: &CallState, input: Input, now: Millis) -> (CallState, Vec<Effect>) {
    let t = step(call, &input, now).unwrap_or_else(|e| panic!("{input:?} refused: {e:?}"));
    if !t.effects.is_empty() {
        assert_eq!(t.effects[0], Effect::Persist, "persist comes first");
    }
    (t.call, t.effects)
}

fn refused(call: &CallState, input: Input, now: Millis) -> CallError {
    step(call, &input, now).expect_err("should be refused")
}

/// Refused as `invalid_state`, and nothing changed.
#[track_caller]
fn assert_invalid(call: &CallState, input: Input, now: Millis) {
    assert!(matches!(
        refused(call, input, now),
        CallError::InvalidState(_)
    ));
}

fn notifies(effects: &[Effect]) -> Vec<(Audience, EventKind, Option<Reason>)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Notify {
                to, kind, reason, ..
            } => Some((to.clone(), *kind, *reason)),
            Effect::Persist | Effect::ArmTimer { .. } => None,
        })
        .collect()
}

fn user(u: &str) -> Audience {
    Audience::User(UserId::from(u))
}

/// Every device of `u` but `d`: the user's other devices.
fn others(u: &str, d: &str) -> Audience {
    Audience::UserExcept(UserId::from(u), dev(d))
}

#[test]
fn placing_a_call_persists_rings_the_callee_and_arms_the_ring_timer() {
    let t = CallState::start(new_call(CallType::Audio, false), T0);
    assert_eq!(t.call.phase, Phase::Initiated);
    assert_eq!(
        t.effects,
        vec![
            Effect::Persist,
            Effect::Notify {
                to: user("bob"),
                kind: EventKind::IncomingCallReceived,
                reason: None,
                participant: None
            },
            Effect::ArmTimer {
                at: T0.plus(RING_MS)
            },
        ]
    );
}

#[test]
fn calling_someone_already_in_a_call_is_busy_at_once_and_missed_for_them() {
    let t = CallState::start(new_call(CallType::Audio, true), T0);
    assert_eq!(t.call.phase, Phase::Finished(Outcome::Busy));
    assert_eq!(
        notifies(&t.effects),
        vec![(
            user("alice"),
            EventKind::OutgoingCallRejected,
            Some(Reason::Busy)
        )]
    );
    assert_eq!(t.call.history_status(&"bob".into()), Some(Status::Missed));
    assert_eq!(t.call.history_status(&"alice".into()), Some(Status::Busy));
}

#[test]
fn accept_makes_it_ongoing_tells_the_caller_and_silences_the_callees_other_devices() {
    let (c, fx) = ok(&one_to_one(), accept("bob", "b2"), T0.plus(3_000));
    assert_eq!(c.phase, Phase::Ongoing);
    assert_eq!(c.joined_at, Some(T0.plus(3_000)));
    assert_eq!(
        notifies(&fx),
        vec![
            (
                Audience::UserExcept("bob".into(), dev("b2")),
                EventKind::IncomingCallCancelled,
                Some(Reason::AnsweredElsewhere)
            ),
            (user("alice"), EventKind::OutgoingCallAccepted, None),
        ]
    );
}

#[test]
fn decline_rejects_and_busy_decline_makes_it_busy() {
    let (c, fx) = ok(
        &one_to_one(),
        reject("bob", "b1", RejectStatus::Rejected),
        T0,
    );
    assert_eq!(c.phase, Phase::Finished(Outcome::Rejected));
    assert_eq!(
        notifies(&fx),
        vec![
            (
                Audience::UserExcept("bob".into(), dev("b1")),
                EventKind::IncomingCallCancelled,
                Some(Reason::DeclinedElsewhere)
            ),
            (
                user("alice"),
                EventKind::OutgoingCallRejected,
                Some(Reason::Rejected)
            ),
        ]
    );
    let (c, _) = ok(&one_to_one(), reject("bob", "b1", RejectStatus::Busy), T0);
    assert_eq!(c.phase, Phase::Finished(Outcome::Busy));
    assert_eq!(c.history_status(&"bob".into()), Some(Status::Busy));
}

#[test]
fn cancel_before_answer_stops_the_ring_and_the_callee_missed_it() {
    let (c, fx) = ok(
        &one_to_one(),
        reject("alice", "a1", RejectStatus::Cancelled),
        T0.plus(1),
    );
    assert_eq!(c.phase, Phase::Finished(Outcome::Cancelled));
    assert_eq!(
        notifies(&fx),
        vec![
            (
                others("alice", "a1"),
                EventKind::CallEndedMessageReceived,
                Some(Reason::CancelledElsewhere)
            ),
            (
                user("bob"),
                EventKind::IncomingCallCancelled,
                Some(Reason::Cancelled)
            )
        ]
    );
    assert_eq!(c.history_status(&"bob".into()), Some(Status::Missed));
    assert_eq!(c.history_status(&"alice".into()), Some(Status::Cancelled));
}

#[test]
fn accept_after_cancel_is_refused_and_names_the_outcome() {
    let (c, _) = ok(
        &one_to_one(),
        reject("alice", "a1", RejectStatus::Cancelled),
        T0,
    );
    match refused(&c, accept("bob", "b1"), T0) {
        CallError::InvalidState(m) => assert!(m.contains("cancelled"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn accept_and_cancel_race_whichever_comes_first_wins_and_the_other_is_refused() {
    let c = one_to_one();
    let (accepted, _) = ok(&c, accept("bob", "b1"), T0);
    assert_invalid(
        &accepted,
        reject("alice", "a1", RejectStatus::Cancelled),
        T0,
    );
    let (cancelled, _) = ok(&c, reject("alice", "a1", RejectStatus::Cancelled), T0);
    assert_invalid(&cancelled, accept("bob", "b1"), T0);
}

#[test]
fn accept_on_two_devices_the_second_answer_is_refused() {
    let (c, _) = ok(&one_to_one(), accept("bob", "b1"), T0);
    assert_invalid(&c, accept("bob", "b2"), T0);
    assert_invalid(&c, accept("bob", "b1"), T0);
}

#[test]
fn end_tells_the_other_side_and_fixes_the_outcome() {
    let (c, _) = ok(&one_to_one(), accept("bob", "b1"), T0);
    let (c, fx) = ok(&c, end("bob", "b1"), T0.plus(60_000));
    assert_eq!(c.phase, Phase::Finished(Outcome::Ended));
    assert_eq!(
        notifies(&fx),
        vec![
            (
                others("bob", "b1"),
                EventKind::CallEndedMessageReceived,
                Some(Reason::EndedElsewhere)
            ),
            (
                user("alice"),
                EventKind::CallEndedMessageReceived,
                Some(Reason::HungUp)
            )
        ]
    );
    let h = c.history_entry(&"alice".into()).unwrap();
    assert_eq!(h.ended_at.unwrap().since(h.joined_at.unwrap()), 60_000);
}

#[test]
fn end_before_answer_is_refused_for_both_sides() {
    let c = one_to_one();
    assert_invalid(&c, end("alice", "a1"), T0);
    assert_invalid(&c, end("bob", "b1"), T0);
}

#[test]
fn the_caller_can_neither_accept_nor_decline_and_the_callee_cannot_cancel() {
    let c = one_to_one();
    assert_invalid(&c, accept("alice", "a1"), T0);
    assert_invalid(&c, reject("alice", "a1", RejectStatus::Rejected), T0);
    assert_invalid(&c, reject("bob", "b1", RejectStatus::Cancelled), T0);
}

#[test]
fn a_stranger_gets_not_found_for_every_input_in_every_phase() {
    let initiated = one_to_one();
    let ongoing = ok(&initiated, accept("bob", "b1"), T0).0;
    let ended = ok(&ongoing, end("alice", "a1"), T0).0;
    for c in [&initiated, &ongoing, &ended] {
        for input in [
            accept("carol", "c1"),
            reject("carol", "c1", RejectStatus::Rejected),
            reject("carol", "c1", RejectStatus::Busy),
            reject("carol", "c1", RejectStatus::Cancelled),
            end("carol", "c1"),
        ] {
            assert_eq!(refused(c, input, T0), CallError::NotFound);
        }
        // A device that isn't in the call vanishing changes nothing.
        assert!(ok(c, Input::DeviceLost { device: dev("c1") }, T0)
            .1
            .is_empty());
    }
}

#[test]
fn ring_timeout_at_deadline_minus_one_ms_does_nothing_at_the_deadline_it_fires() {
    let c = one_to_one();
    let deadline = T0.plus(RING_MS);
    assert!(ok(&c, Input::RingTimeout, deadline.plus(-1)).1.is_empty());
    let (done, fx) = ok(&c, Input::RingTimeout, deadline);
    assert_eq!(done.phase, Phase::Finished(Outcome::Unanswered));
    assert_eq!(
        notifies(&fx),
        vec![
            (
                user("alice"),
                EventKind::OutgoingCallRejected,
                Some(Reason::Timeout)
            ),
            (
                user("bob"),
                EventKind::IncomingCallCancelled,
                Some(Reason::Timeout)
            ),
        ]
    );
    assert_eq!(
        done.history_status(&"alice".into()),
        Some(Status::Unanswered)
    );
    assert_eq!(done.history_status(&"bob".into()), Some(Status::Missed));
    // N+1 and later: a stale timer is harmless.
    assert!(ok(&done, Input::RingTimeout, deadline.plus(1)).1.is_empty());
    assert_eq!(
        ok(&done, Input::RingTimeout, deadline.plus(86_400_000)).0,
        done
    );
}

#[test]
fn accept_at_deadline_minus_one_wins_and_at_the_deadline_is_refused() {
    let c = one_to_one();
    let deadline = T0.plus(RING_MS);
    assert_eq!(
        ok(&c, accept("bob", "b1"), deadline.plus(-1)).0.phase,
        Phase::Ongoing
    );
    assert_invalid(&c, accept("bob", "b1"), deadline);
    assert_invalid(&c, accept("bob", "b1"), deadline.plus(1));
}

#[test]
fn every_input_after_the_outcome_is_refused_and_changes_nothing() {
    let initiated = one_to_one();
    let finished = [
        ok(&initiated, reject("bob", "b1", RejectStatus::Busy), T0).0,
        ok(&initiated, reject("bob", "b1", RejectStatus::Rejected), T0).0,
        ok(
            &initiated,
            reject("alice", "a1", RejectStatus::Cancelled),
            T0,
        )
        .0,
        ok(
            &ok(&initiated, accept("bob", "b1"), T0).0,
            end("bob", "b1"),
            T0,
        )
        .0,
        ok(&initiated, Input::RingTimeout, T0.plus(RING_MS)).0,
    ];
    for c in &finished {
        assert!(!c.is_live());
        for input in [
            accept("bob", "b1"),
            reject("bob", "b1", RejectStatus::Rejected),
            reject("bob", "b1", RejectStatus::Busy),
            reject("alice", "a1", RejectStatus::Cancelled),
            end("alice", "a1"),
            end("bob", "b1"),
        ] {
            assert_invalid(c, input, T0);
        }
        for input in [
            Input::RingTimeout,
            Input::DeviceLost { device: dev("a1") },
            Input::DeviceLost { device: dev("b1") },
        ] {
            let (after, fx) = ok(c, input, T0.plus(RING_MS * 2));
            assert!(fx.is_empty());
            assert_eq!(&after, c);
        }
    }
}

#[test]
fn a_vanished_device_cancels_a_ringing_call_it_placed_and_ends_a_call_it_was_in() {
    let c = one_to_one();
    let (c2, fx) = ok(&c, Input::DeviceLost { device: dev("a1") }, T0);
    assert_eq!(c2.phase, Phase::Finished(Outcome::Cancelled));
    assert_eq!(
        notifies(&fx),
        vec![
            (
                others("alice", "a1"),
                EventKind::CallEndedMessageReceived,
                Some(Reason::CancelledElsewhere)
            ),
            (
                user("bob"),
                EventKind::IncomingCallCancelled,
                Some(Reason::Cancelled)
            )
        ]
    );
    // A ringing callee device vanishing doesn't stop the ring on the others.
    assert!(ok(&c, Input::DeviceLost { device: dev("b1") }, T0)
        .1
        .is_empty());
    let (on, _) = ok(&c, accept("bob", "b2"), T0);
    let (over, fx) = ok(&on, Input::DeviceLost { device: dev("b2") }, T0);
    assert_eq!(over.phase, Phase::Finished(Outcome::Ended));
    assert_eq!(
        notifies(&fx),
        vec![
            (
                others("bob", "b2"),
                EventKind::CallEndedMessageReceived,
                Some(Reason::ConnectionLost)
            ),
            (
                user("alice"),
                EventKind::CallEndedMessageReceived,
                Some(Reason::ConnectionLost)
            )
        ]
    );
}

fn group(members: &[&str]) -> CallState {
    CallState::start(
        NewCall {
            session_id: SessionId::from("g1"),
            call_type: CallType::Video,
            receiver_type: ReceiverType::Group,
            receiver: Receiver::Group {
                guid: "team".into(),
                name: "Team".into(),
            },
            caller: party("alice"),
            caller_device: dev("a1"),
            callees: members.iter().map(|m| (party(m), false)).collect(),
            ring_timeout_ms: RING_MS,
        },
        T0,
    )
    .call
}

#[test]
fn group_one_decline_ends_nothing_and_all_declining_rejects() {
    let c = group(&["bob", "carol"]);
    let (c, fx) = ok(&c, reject("bob", "b1", RejectStatus::Rejected), T0);
    assert_eq!(c.phase, Phase::Initiated);
    assert!(!notifies(&fx).iter().any(|(to, _, _)| to == &user("alice")));
    let (c, fx) = ok(&c, reject("carol", "c1", RejectStatus::Rejected), T0);
    assert_eq!(c.phase, Phase::Finished(Outcome::Rejected));
    assert!(notifies(&fx).contains(&(
        user("alice"),
        EventKind::OutgoingCallRejected,
        Some(Reason::Rejected)
    )));
}

#[test]
fn group_first_accept_starts_it_latecomers_join_until_the_timeout_then_miss_it() {
    let c = group(&["bob", "carol", "dave"]);
    let (c, fx) = ok(&c, accept("bob", "b1"), T0);
    assert_eq!(c.phase, Phase::Ongoing);
    assert!(notifies(&fx).contains(&(user("alice"), EventKind::OutgoingCallAccepted, None)));
    let (c, fx) = ok(&c, accept("carol", "c1"), T0.plus(10_000));
    let joined: Vec<Audience> = notifies(&fx)
        .into_iter()
        .filter(|(_, k, _)| *k == EventKind::ParticipantJoined)
        .map(|(to, _, _)| to)
        .collect();
    assert_eq!(joined, vec![user("alice"), user("bob")]);
    let (c, fx) = ok(&c, Input::RingTimeout, T0.plus(RING_MS));
    assert_eq!(c.phase, Phase::Ongoing);
    assert_eq!(
        notifies(&fx),
        vec![(
            user("dave"),
            EventKind::IncomingCallCancelled,
            Some(Reason::Timeout)
        )]
    );
    assert_eq!(c.history_status(&"dave".into()), Some(Status::Missed));
    assert_invalid(&c, accept("dave", "d1"), T0.plus(RING_MS));
}

#[test]
fn group_end_means_leave_and_the_call_ends_when_fewer_than_two_remain() {
    let c = group(&["bob", "carol", "dave"]);
    let (c, _) = ok(&c, accept("bob", "b1"), T0);
    let (c, _) = ok(&c, accept("carol", "c1"), T0);
    let (c, fx) = ok(&c, end("alice", "a1"), T0);
    assert_eq!(
        c.phase,
        Phase::Ongoing,
        "the caller leaving doesn't end it for the others"
    );
    assert_eq!(
        notifies(&fx)[0],
        (
            others("alice", "a1"),
            EventKind::CallEndedMessageReceived,
            Some(Reason::EndedElsewhere)
        ),
        "the caller's other devices hear it left"
    );
    assert!(notifies(&fx)[1..]
        .iter()
        .all(|(_, k, _)| *k == EventKind::ParticipantLeft));
    let (c, fx) = ok(&c, end("carol", "c1"), T0);
    assert_eq!(c.phase, Phase::Finished(Outcome::Ended));
    let n = notifies(&fx);
    assert!(n.contains(&(
        user("bob"),
        EventKind::CallEndedMessageReceived,
        Some(Reason::HungUp)
    )));
    assert!(n.contains(&(
        user("dave"),
        EventKind::IncomingCallCancelled,
        Some(Reason::CallEnded)
    )));
    assert_eq!(
        c.participant(&"dave".into()).unwrap().state,
        ParticipantState::Missed
    );
}

#[test]
fn group_nobody_accepting_by_the_timeout_is_unanswered() {
    let c = group(&["bob", "carol"]);
    let (c, _) = ok(&c, reject("bob", "b1", RejectStatus::Rejected), T0);
    let (c, _) = ok(&c, Input::RingTimeout, T0.plus(RING_MS));
    assert_eq!(c.phase, Phase::Finished(Outcome::Unanswered));
    assert_eq!(c.history_status(&"bob".into()), Some(Status::Rejected));
    assert_eq!(c.history_status(&"carol".into()), Some(Status::Missed));
}

#[test]
fn group_ninth_joiner_is_call_full_at_eight_joined() {
    let members: Vec<String> = (1..=9).map(|i| format!("m{i}")).collect();
    let refs: Vec<&str> = members.iter().map(String::as_str).collect();
    let mut c = group(&refs);
    for m in &refs[..7] {
        c = ok(&c, accept(m, "d"), T0).0;
    }
    assert_eq!(c.joined_count(), 8);
    assert_eq!(refused(&c, accept("m8", "d"), T0), CallError::CallFull);
    c = ok(&c, end("m1", "d"), T0).0;
    assert_eq!(ok(&c, accept("m8", "d"), T0).0.joined_count(), 8);
}

#[test]
fn answering_a_second_call_while_in_one_is_refused_and_the_second_keeps_ringing() {
    use peal_proto::exchange::{ApplyError, Exchange, Placement};
    let mut ex = Exchange::new();
    let place = |ex: &mut Exchange, id: &str, caller: &str| {
        ex.initiate(
            SessionId::from(id),
            Placement {
                caller: party(caller),
                caller_device: dev(&format!("{caller}1")),
                receiver: Receiver::User {
                    uid: "bob".into(),
                    name: "BOB".into(),
                },
                call_type: CallType::Audio,
                members: vec![party("bob")],
                ring_timeout_ms: RING_MS,
            },
            T0,
        )
        .expect("placed")
    };
    place(&mut ex, "first", "alice");
    place(&mut ex, "second", "carol");
    ex.apply(&SessionId::from("first"), &accept("bob", "b1"), T0)
        .expect("first answered");
    match ex.apply(&SessionId::from("second"), &accept("bob", "b2"), T0) {
        Err(ApplyError::Refused(CallError::InvalidState(m))) => {
            assert!(m.contains("another call"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        ex.get(&SessionId::from("second")).unwrap().phase,
        Phase::Initiated
    );
    // Declining it is still possible.
    let a = ex
        .apply(
            &SessionId::from("second"),
            &reject("bob", "b2", RejectStatus::Busy),
            T0,
        )
        .unwrap();
    assert_eq!(a.call.phase, Phase::Finished(Outcome::Busy));
}

#[test]
fn cancelling_or_ending_from_another_device_is_told_to_the_device_in_the_call() {
    // Alice placed the call on a1 and cancels it from a2: a1 must hear it.
    let (c, fx) = ok(
        &one_to_one(),
        reject("alice", "a2", RejectStatus::Cancelled),
        T0,
    );
    assert_eq!(c.phase, Phase::Finished(Outcome::Cancelled));
    assert!(notifies(&fx).contains(&(
        others("alice", "a2"),
        EventKind::CallEndedMessageReceived,
        Some(Reason::CancelledElsewhere)
    )));
    // Bob answered on b1 and hangs up from b2: b1 and alice both hear it.
    let (c, _) = ok(&one_to_one(), accept("bob", "b1"), T0);
    let (c, fx) = ok(&c, end("bob", "b2"), T0.plus(1));
    assert_eq!(c.phase, Phase::Finished(Outcome::Ended));
    let n = notifies(&fx);
    assert!(n.contains(&(
        others("bob", "b2"),
        EventKind::CallEndedMessageReceived,
        Some(Reason::EndedElsewhere)
    )));
    assert!(n.contains(&(
        user("alice"),
        EventKind::CallEndedMessageReceived,
        Some(Reason::HungUp)
    )));
}
