//! Pure rules for catching up after a reconnect, so they are tested without sockets.
//!
//! - A replay (reconnected in time) is delivered in order, except that a ring
//!   whose call ended later in the same replay is dropped together with that
//!   end: a device never rings for a call that is already over.
//! - A snapshot (too late for a replay) lists the live calls: rings we never
//!   delivered are delivered now, and calls we believed live that are gone are
//!   looked up so their end can be reported.

use peal_proto::wire::{CallInfo, Event, EventKind, ParticipantState, Reason, Role, Status};
use peal_proto::{SessionId, UserId};
use std::collections::{HashMap, HashSet};

/// What this device believes about a live call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Known {
    /// This device was told it rings (and not told it stopped).
    pub ringing: bool,
    /// This user placed the call.
    pub outgoing: bool,
    /// The call was answered while this device watched.
    pub answered: bool,
}

/// Whether an event ends the call for the device that receives it.
pub fn is_terminal(kind: EventKind) -> bool {
    match kind {
        EventKind::IncomingCallCancelled
        | EventKind::CallEndedMessageReceived
        | EventKind::OutgoingCallRejected => true,
        EventKind::IncomingCallReceived
        | EventKind::OutgoingCallAccepted
        | EventKind::ParticipantJoined
        | EventKind::ParticipantLeft => false,
    }
}

/// Drops rings that end within the same replay, with their ends.
pub fn collapse_replay(events: Vec<(u64, Event)>) -> Vec<(u64, Event)> {
    let mut rang: HashSet<SessionId> = HashSet::new();
    let mut over: HashSet<SessionId> = HashSet::new();
    for (_, e) in &events {
        let id = &e.call.session_id;
        if e.event == EventKind::IncomingCallReceived {
            rang.insert(id.clone());
        } else if is_terminal(e.event) && rang.contains(id) {
            over.insert(id.clone());
        }
    }
    events
        .into_iter()
        .filter(|(_, e)| {
            let id = &e.call.session_id;
            !(over.contains(id)
                && (e.event == EventKind::IncomingCallReceived || is_terminal(e.event)))
        })
        .collect()
}

/// What a snapshot asks of the SDK.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reconciliation {
    /// Calls ringing for us that we never delivered: deliver a ring.
    pub ring: Vec<CallInfo>,
    /// Calls we believed live that are not: look them up and report their end.
    pub gone: Vec<SessionId>,
}

/// Compares what we know with a snapshot of our live calls.
pub fn reconcile(
    me: &UserId,
    known: &HashMap<SessionId, Known>,
    snapshot: &[CallInfo],
) -> Reconciliation {
    let mut r = Reconciliation::default();
    let live: HashSet<&SessionId> = snapshot.iter().map(|c| &c.session_id).collect();
    for c in snapshot {
        let ringing_for_me = c.participants.iter().any(|p| {
            &p.uid == me && p.role == Role::Callee && p.state == ParticipantState::Ringing
        });
        if ringing_for_me && !known.get(&c.session_id).is_some_and(|k| k.ringing) {
            r.ring.push(c.clone());
        }
    }
    let mut gone: Vec<SessionId> = known
        .keys()
        .filter(|id| !live.contains(id))
        .cloned()
        .collect();
    gone.sort();
    r.gone = gone;
    r
}

/// The event that tells this device a call it knew is over, from the call as it ended.
pub fn end_event(known: &Known, call: CallInfo) -> Option<Event> {
    if call.status.is_live() {
        return None;
    }
    let (event, reason) = if known.ringing {
        let reason = match call.status {
            Status::Cancelled => Reason::Cancelled,
            Status::Unanswered | Status::Missed => Reason::Timeout,
            Status::Rejected | Status::Busy => Reason::DeclinedElsewhere,
            Status::Ongoing | Status::Ended | Status::Initiated => Reason::AnsweredElsewhere,
        };
        (EventKind::IncomingCallCancelled, Some(reason))
    } else if known.outgoing && !known.answered && call.joined_at.is_none() {
        (EventKind::OutgoingCallRejected, None)
    } else {
        (EventKind::CallEndedMessageReceived, None)
    };
    Some(Event {
        event,
        call,
        reason,
        participant: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use peal_proto::wire::{CallType, ParticipantInfo, Party, Receiver, ReceiverType};
    use peal_proto::Millis;

    fn call(id: &str, status: Status, bob: ParticipantState) -> CallInfo {
        CallInfo {
            session_id: SessionId::from(id),
            status,
            call_type: CallType::Video,
            receiver_type: ReceiverType::User,
            initiator: Party {
                uid: "alice".into(),
                name: "Alice".into(),
            },
            receiver: Receiver::User {
                uid: "bob".into(),
                name: "Bob".into(),
            },
            initiated_at: Millis(0),
            joined_at: None,
            ended_at: None,
            ring_deadline: Millis(45_000),
            participants: vec![
                ParticipantInfo {
                    uid: "alice".into(),
                    name: "Alice".into(),
                    role: Role::Caller,
                    state: ParticipantState::Joined,
                },
                ParticipantInfo {
                    uid: "bob".into(),
                    name: "Bob".into(),
                    role: Role::Callee,
                    state: bob,
                },
            ],
        }
    }

    fn ev(kind: EventKind, id: &str) -> Event {
        Event {
            event: kind,
            call: call(id, Status::Initiated, ParticipantState::Ringing),
            reason: None,
            participant: None,
        }
    }

    #[test]
    fn a_ring_and_its_cancel_in_one_replay_are_both_dropped() {
        let replay = vec![
            (1, ev(EventKind::IncomingCallReceived, "a")),
            (2, ev(EventKind::IncomingCallReceived, "b")),
            (3, ev(EventKind::IncomingCallCancelled, "a")),
        ];
        let kept: Vec<u64> = collapse_replay(replay)
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(kept, vec![2]);
    }

    #[test]
    fn a_cancel_for_a_ring_delivered_before_the_drop_is_kept() {
        let replay = vec![
            (7, ev(EventKind::IncomingCallCancelled, "a")),
            (8, ev(EventKind::OutgoingCallAccepted, "c")),
        ];
        assert_eq!(collapse_replay(replay).len(), 2);
    }

    #[test]
    fn a_snapshot_rings_for_undelivered_rings_and_reports_vanished_calls() {
        let me = UserId::from("bob");
        let mut known = HashMap::new();
        known.insert(
            SessionId::from("old"),
            Known {
                ringing: true,
                outgoing: false,
                answered: false,
            },
        );
        known.insert(
            SessionId::from("seen"),
            Known {
                ringing: true,
                outgoing: false,
                answered: false,
            },
        );
        let snap = vec![
            call("seen", Status::Initiated, ParticipantState::Ringing),
            call("new", Status::Initiated, ParticipantState::Ringing),
            call("declined", Status::Ongoing, ParticipantState::Declined),
        ];
        let r = reconcile(&me, &known, &snap);
        assert_eq!(
            r.ring
                .iter()
                .map(|c| c.session_id.as_str())
                .collect::<Vec<_>>(),
            vec!["new"]
        );
        assert_eq!(r.gone, vec![SessionId::from("old")]);
    }

    #[test]
    fn the_end_of_a_vanished_call_is_told_the_way_this_device_saw_it() {
        let ringing = Known {
            ringing: true,
            outgoing: false,
            answered: false,
        };
        let e = end_event(
            &ringing,
            call("x", Status::Cancelled, ParticipantState::Missed),
        )
        .unwrap();
        assert_eq!(
            (e.event, e.reason),
            (EventKind::IncomingCallCancelled, Some(Reason::Cancelled))
        );
        let calling = Known {
            ringing: false,
            outgoing: true,
            answered: false,
        };
        let e = end_event(
            &calling,
            call("x", Status::Unanswered, ParticipantState::Missed),
        )
        .unwrap();
        assert_eq!(e.event, EventKind::OutgoingCallRejected);
        let talking = Known {
            ringing: false,
            outgoing: true,
            answered: true,
        };
        let mut ended = call("x", Status::Ended, ParticipantState::Left);
        ended.joined_at = Some(Millis(1));
        assert_eq!(
            end_event(&talking, ended).unwrap().event,
            EventKind::CallEndedMessageReceived
        );
        assert!(end_event(
            &talking,
            call("x", Status::Ongoing, ParticipantState::Joined)
        )
        .is_none());
    }
}
