//! One call's state machine: [`step`]`(call, input, now) -> (call, effects)`.
//!
//! Pure: no clock, socket, database or randomness. The server owns one
//! [`crate::exchange::Exchange`] that feeds inputs in arrival order, so the
//! first of two racing inputs wins and the second is refused with a typed
//! [`CallError`] that says why.
//!
//! # Phases and outcomes
//!
//! A call is *live* in one of two phases, then *finished* with exactly one
//! outcome, after which every input is refused and nothing changes:
//!
//! ```text
//!                 start (some callee can ring)
//!                        │
//!                        ▼
//!   ┌──────────────  Initiated ───────────────┐ ring timeout ─▶ Finished(Unanswered)
//!   │ cancel         │ accept          │ reject (1:1, or every member declined)
//!   ▼                ▼                 ▼
//! Finished(Cancelled) Ongoing        Finished(Rejected | Busy)
//!                    │ end (1:1) / fewer than two joined (group)
//!                    ▼
//!               Finished(Ended)
//!
//! start (no callee can ring: all busy) ─▶ Finished(Busy)
//! ```
//!
//! `missed` is not an outcome of the call: it is how a callee's history names
//! a call they never answered ([`CallState::history_status`]).
//!
//! # Inputs
//!
//! From participants: [`Input::Accept`], [`Input::Reject`] (decline, busy, or the
//! caller's cancel), [`Input::End`]. From the server's timers and connection
//! tracking: [`Input::RingTimeout`], [`Input::DeviceLost`].
//!
//! # Effects
//!
//! [`Effect::Persist`] always comes first when anything changed: the server
//! writes the call and every participant's row before it sends any
//! [`Effect::Notify`] or answers the request. [`Effect::ArmTimer`] asks for a
//! [`Input::RingTimeout`] at a time.

#![deny(clippy::wildcard_enum_match_arm)]

use crate::error::{ErrorBody, ErrorCode};
use crate::ids::{DeviceId, SessionId, UserId};
use crate::limits::MAX_JOINED;
use crate::time::Millis;
use crate::wire::{
    CallInfo, CallType, Direction, EventKind, HistoryEntry, ParticipantInfo, ParticipantState,
    Party, Reason, Receiver, ReceiverType, RejectStatus, Role, Status,
};
use serde::{Deserialize, Serialize};

/// Where a call is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "phase", content = "outcome")]
pub enum Phase {
    /// Ringing; nobody has answered yet.
    Initiated,
    /// Answered; media may flow. In a group call, members still ringing may join.
    Ongoing,
    /// Over, with one outcome that never changes.
    Finished(Outcome),
}

/// How a call ended. Exactly one per call, decided once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Busy,
    Rejected,
    Cancelled,
    Ended,
    Unanswered,
}

impl Phase {
    pub fn status(self) -> Status {
        match self {
            Phase::Initiated => Status::Initiated,
            Phase::Ongoing => Status::Ongoing,
            Phase::Finished(Outcome::Busy) => Status::Busy,
            Phase::Finished(Outcome::Rejected) => Status::Rejected,
            Phase::Finished(Outcome::Cancelled) => Status::Cancelled,
            Phase::Finished(Outcome::Ended) => Status::Ended,
            Phase::Finished(Outcome::Unanswered) => Status::Unanswered,
        }
    }

    pub fn is_live(self) -> bool {
        match self {
            Phase::Initiated | Phase::Ongoing => true,
            Phase::Finished(_) => false,
        }
    }

    /// Whether a ringing callee may still accept.
    pub fn can_be_accepted(self) -> bool {
        match self {
            Phase::Initiated => true,
            // Group calls: members still ringing may join until the ring timeout.
            Phase::Ongoing => true,
            Phase::Finished(_) => false,
        }
    }

    /// Whether the caller may still cancel.
    pub fn can_be_cancelled(self) -> bool {
        match self {
            Phase::Initiated => true,
            Phase::Ongoing => false,
            Phase::Finished(_) => false,
        }
    }

    /// Whether a joined participant may end or leave.
    pub fn can_be_ended(self) -> bool {
        match self {
            Phase::Initiated => false,
            Phase::Ongoing => true,
            Phase::Finished(_) => false,
        }
    }
}

/// One participant of a call: the caller, or a callee (a group's members are each one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub uid: UserId,
    pub name: String,
    pub role: Role,
    pub state: ParticipantState,
    /// The device in the call (the caller's initiating device; the callee's accepting one).
    pub device: Option<DeviceId>,
    pub joined_at: Option<Millis>,
    pub left_at: Option<Millis>,
}

/// A call: everything the state machine decides on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallState {
    pub session_id: SessionId,
    pub call_type: CallType,
    pub receiver_type: ReceiverType,
    pub receiver: Receiver,
    /// The caller is always `participants[0]`.
    pub participants: Vec<Participant>,
    pub phase: Phase,
    pub initiated_at: Millis,
    pub ring_deadline: Millis,
    pub joined_at: Option<Millis>,
    pub ended_at: Option<Millis>,
}

/// What a new call needs; the server resolves names and group members first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCall {
    pub session_id: SessionId,
    pub call_type: CallType,
    pub receiver_type: ReceiverType,
    pub receiver: Receiver,
    pub caller: Party,
    pub caller_device: DeviceId,
    /// Callees, each with whether they are already in an ongoing call (they won't ring).
    pub callees: Vec<(Party, bool)>,
    pub ring_timeout_ms: i64,
}

/// An input to one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A callee's device answers.
    Accept { user: UserId, device: DeviceId },
    /// A callee declines (`Rejected`, `Busy`), or the caller cancels (`Cancelled`).
    Reject {
        user: UserId,
        device: DeviceId,
        status: RejectStatus,
    },
    /// A joined participant hangs up (leaves, in a group call).
    End { user: UserId, device: DeviceId },
    /// A ring timer fired; harmless when early or late.
    RingTimeout,
    /// A device's connection is gone for longer than the grace period.
    DeviceLost { device: DeviceId },
}

/// Who receives an event.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Audience {
    /// Every device of the user.
    User(UserId),
    /// Every device of the user but one (the one that acted).
    UserExcept(UserId, DeviceId),
}

/// What the server must do after a step, in this order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Write the call and every participant's row (history) before anything else.
    Persist,
    /// Send an event about this call (as it is after the step).
    Notify {
        to: Audience,
        kind: EventKind,
        reason: Option<Reason>,
        participant: Option<UserId>,
    },
    /// Feed [`Input::RingTimeout`] at `at`.
    ArmTimer { at: Millis },
}

/// A refused input. Nothing changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    /// Not a participant (or no such call): we don't confirm the call exists.
    NotFound,
    /// The call is not in a state that allows this; the message says why.
    InvalidState(String),
    /// Joining would exceed [`MAX_JOINED`].
    CallFull,
}

impl From<CallError> for ErrorBody {
    fn from(e: CallError) -> ErrorBody {
        match e {
            CallError::NotFound => ErrorBody::new(ErrorCode::NotFound, "no such call"),
            CallError::InvalidState(m) => ErrorBody::new(ErrorCode::InvalidState, m),
            CallError::CallFull => ErrorBody::new(
                ErrorCode::CallFull,
                format!("the call already has {MAX_JOINED} participants"),
            ),
        }
    }
}

/// The result of a step: the call after it, and what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub call: CallState,
    pub effects: Vec<Effect>,
}

fn notify(to: Audience, kind: EventKind, reason: Option<Reason>) -> Effect {
    Effect::Notify {
        to,
        kind,
        reason,
        participant: None,
    }
}

fn invalid(msg: impl Into<String>) -> CallError {
    CallError::InvalidState(msg.into())
}

/// Why a finished call refuses further inputs, in words.
fn finished_message(o: Outcome) -> String {
    let what = match o {
        Outcome::Busy => "the call was answered as busy",
        Outcome::Rejected => "the call was declined",
        Outcome::Cancelled => "the call was cancelled",
        Outcome::Ended => "the call has ended",
        Outcome::Unanswered => "the call was not answered in time",
    };
    what.to_owned()
}

impl CallState {
    /// Places a call. Callees already in a call don't ring; when none can ring the
    /// call is finished as `busy` at once.
    pub fn start(new: NewCall, now: Millis) -> Transition {
        let mut participants = Vec::with_capacity(new.callees.len() + 1);
        participants.push(Participant {
            uid: new.caller.uid.clone(),
            name: new.caller.name,
            role: Role::Caller,
            state: ParticipantState::Joined,
            device: Some(new.caller_device),
            joined_at: Some(now),
            left_at: None,
        });
        for (p, busy) in new.callees {
            participants.push(Participant {
                uid: p.uid,
                name: p.name,
                role: Role::Callee,
                state: if busy {
                    ParticipantState::Busy
                } else {
                    ParticipantState::Ringing
                },
                device: None,
                joined_at: None,
                left_at: None,
            });
        }
        let mut call = CallState {
            session_id: new.session_id,
            call_type: new.call_type,
            receiver_type: new.receiver_type,
            receiver: new.receiver,
            participants,
            phase: Phase::Initiated,
            initiated_at: now,
            ring_deadline: now.plus(new.ring_timeout_ms),
            joined_at: None,
            ended_at: None,
        };
        let caller = call.participants[0].uid.clone();
        let mut effects = vec![Effect::Persist];
        let ringing: Vec<UserId> = call.ringing().map(|p| p.uid.clone()).collect();
        if ringing.is_empty() {
            call.finish(Outcome::Busy, now);
            effects.push(notify(
                Audience::User(caller),
                EventKind::OutgoingCallRejected,
                Some(Reason::Busy),
            ));
        } else {
            for uid in ringing {
                effects.push(notify(
                    Audience::User(uid),
                    EventKind::IncomingCallReceived,
                    None,
                ));
            }
            effects.push(Effect::ArmTimer {
                at: call.ring_deadline,
            });
        }
        Transition { call, effects }
    }

    pub fn caller(&self) -> &Participant {
        &self.participants[0]
    }

    /// Where a media signal from `from` on `from_device` to `to` goes: the
    /// device named (`to_device`; the caller checks that it is `to`'s), or
    /// the device `to` is in the call with. Both must be participants who are
    /// ringing or joined (a joined one on the device it joined with) of a
    /// live call; anything else is [`CallError::NotFound`], so a stranger
    /// learns nothing about the call.
    pub fn media_route(
        &self,
        from: &UserId,
        from_device: &DeviceId,
        to: &UserId,
        to_device: Option<&DeviceId>,
    ) -> Result<DeviceId, CallError> {
        if !self.is_live() || from == to {
            return Err(CallError::NotFound);
        }
        let sender = self.participant(from).ok_or(CallError::NotFound)?;
        if !Self::may_signal(sender, Some(from_device)) {
            return Err(CallError::NotFound);
        }
        let target = self.participant(to).ok_or(CallError::NotFound)?;
        if !Self::may_signal(target, to_device) {
            return Err(CallError::NotFound);
        }
        match (to_device, &target.device) {
            (Some(d), _) => Ok(d.clone()),
            (None, Some(d)) => Ok(d.clone()),
            (None, None) => Err(CallError::NotFound),
        }
    }

    /// A participant may exchange media signals from/at `device` while ringing
    /// (any of its devices: pre-connect) or joined (only the device in the call).
    fn may_signal(p: &Participant, device: Option<&DeviceId>) -> bool {
        match p.state {
            ParticipantState::Ringing => true,
            ParticipantState::Joined => match (device, &p.device) {
                (Some(d), Some(joined)) => d == joined,
                (None, Some(_)) => true,
                (_, None) => false,
            },
            ParticipantState::Declined
            | ParticipantState::DeclinedBusy
            | ParticipantState::Busy
            | ParticipantState::Left
            | ParticipantState::Missed => false,
        }
    }

    pub fn participant(&self, uid: &UserId) -> Option<&Participant> {
        self.participants.iter().find(|p| &p.uid == uid)
    }

    fn ringing(&self) -> impl Iterator<Item = &Participant> {
        self.participants
            .iter()
            .filter(|p| p.state == ParticipantState::Ringing)
    }

    fn joined(&self) -> impl Iterator<Item = &Participant> {
        self.participants
            .iter()
            .filter(|p| p.state == ParticipantState::Joined)
    }

    pub fn joined_count(&self) -> usize {
        self.joined().count()
    }

    /// The call's own status (never `missed`).
    pub fn status(&self) -> Status {
        self.phase.status()
    }

    pub fn is_live(&self) -> bool {
        self.phase.is_live()
    }

    /// Whether `uid` is in this call right now (joined, and the call answered).
    pub fn is_in_ongoing_call(&self, uid: &UserId) -> bool {
        self.phase == Phase::Ongoing
            && self
                .participant(uid)
                .is_some_and(|p| p.state == ParticipantState::Joined)
    }

    /// Ends every live participant's part and fixes the outcome.
    fn finish(&mut self, outcome: Outcome, now: Millis) {
        self.phase = Phase::Finished(outcome);
        self.ended_at = Some(now);
        for p in &mut self.participants {
            p.state = match p.state {
                ParticipantState::Ringing => ParticipantState::Missed,
                ParticipantState::Joined => {
                    p.left_at = Some(now);
                    ParticipantState::Left
                }
                s @ (ParticipantState::Declined
                | ParticipantState::DeclinedBusy
                | ParticipantState::Busy
                | ParticipantState::Left
                | ParticipantState::Missed) => s,
            };
        }
    }

    /// How this call appears in `uid`'s history, or `None` if they are not part of it.
    pub fn history_status(&self, uid: &UserId) -> Option<Status> {
        let p = self.participant(uid)?;
        let status = self.status();
        Some(match p.role {
            // A caller who left a group call that goes on is done with it.
            Role::Caller if p.state == ParticipantState::Left && self.is_live() => Status::Ended,
            Role::Caller => status,
            Role::Callee => match p.state {
                ParticipantState::Ringing => status,
                ParticipantState::Joined => status,
                ParticipantState::Left => Status::Ended,
                ParticipantState::Declined => Status::Rejected,
                ParticipantState::DeclinedBusy => Status::Busy,
                ParticipantState::Busy => Status::Missed,
                ParticipantState::Missed => Status::Missed,
            },
        })
    }

    /// The call as `uid`'s history shows it.
    pub fn history_entry(&self, uid: &UserId) -> Option<HistoryEntry> {
        let status = self.history_status(uid)?;
        let p = self.participant(uid)?;
        let (direction, peer, peer_name) = match p.role {
            Role::Caller => (
                Direction::Outgoing,
                self.receiver.id().to_owned(),
                self.receiver.name().to_owned(),
            ),
            Role::Callee => (
                Direction::Incoming,
                self.caller().uid.to_string(),
                self.caller().name.clone(),
            ),
        };
        Some(HistoryEntry {
            session_id: self.session_id.clone(),
            status,
            direction,
            peer,
            peer_name,
            receiver_type: self.receiver_type,
            call_type: self.call_type,
            initiated_at: self.initiated_at,
            // When this user's part of the call began: the answer, for the caller.
            joined_at: match p.role {
                Role::Caller => self.joined_at,
                Role::Callee => p.joined_at,
            },
            ended_at: self.ended_at.or(p.left_at),
        })
    }

    /// The call object the wire carries.
    pub fn info(&self) -> CallInfo {
        let caller = self.caller();
        CallInfo {
            session_id: self.session_id.clone(),
            status: self.status(),
            call_type: self.call_type,
            receiver_type: self.receiver_type,
            initiator: Party {
                uid: caller.uid.clone(),
                name: caller.name.clone(),
            },
            receiver: self.receiver.clone(),
            initiated_at: self.initiated_at,
            joined_at: self.joined_at,
            ended_at: self.ended_at,
            ring_deadline: self.ring_deadline,
            participants: self
                .participants
                .iter()
                .map(|p| ParticipantInfo {
                    uid: p.uid.clone(),
                    name: p.name.clone(),
                    role: p.role,
                    state: p.state,
                })
                .collect(),
        }
    }
}

/// Applies one input. On `Err` nothing changed.
pub fn step(call: &CallState, input: &Input, now: Millis) -> Result<Transition, CallError> {
    let mut next = call.clone();
    let effects = match input {
        Input::Accept { user, device } => accept(&mut next, user, device, now)?,
        Input::Reject {
            user,
            device,
            status,
        } => match status {
            RejectStatus::Cancelled => cancel(&mut next, user, device, now)?,
            RejectStatus::Rejected => decline(&mut next, user, device, false, now)?,
            RejectStatus::Busy => decline(&mut next, user, device, true, now)?,
        },
        Input::End { user, device } => end(&mut next, user, device, Reason::HungUp, now)?,
        Input::RingTimeout => ring_timeout(&mut next, now),
        Input::DeviceLost { device } => device_lost(&mut next, device, now),
    };
    Ok(Transition {
        call: next,
        effects,
    })
}

fn index_of(call: &CallState, user: &UserId) -> Result<usize, CallError> {
    call.participants
        .iter()
        .position(|p| &p.uid == user)
        .ok_or(CallError::NotFound)
}

/// Refuses a finished call with its outcome in words.
fn ensure_live(call: &CallState) -> Result<(), CallError> {
    match call.phase {
        Phase::Initiated | Phase::Ongoing => Ok(()),
        Phase::Finished(o) => Err(invalid(finished_message(o))),
    }
}

/// Why a callee in `state` can't answer (accept or decline) any more.
fn cannot_answer(state: ParticipantState) -> Option<&'static str> {
    match state {
        ParticipantState::Ringing => None,
        ParticipantState::Joined => Some("you already answered this call"),
        ParticipantState::Declined | ParticipantState::DeclinedBusy => {
            Some("you already declined this call")
        }
        ParticipantState::Busy => Some("this call did not ring for you: you were in another call"),
        ParticipantState::Left => Some("you already left this call"),
        ParticipantState::Missed => Some("the call stopped ringing"),
    }
}

fn accept(
    call: &mut CallState,
    user: &UserId,
    device: &DeviceId,
    now: Millis,
) -> Result<Vec<Effect>, CallError> {
    let i = index_of(call, user)?;
    ensure_live(call)?;
    if call.participants[i].role == Role::Caller {
        return Err(invalid("you placed this call; only a callee can accept it"));
    }
    if let Some(why) = cannot_answer(call.participants[i].state) {
        return Err(invalid(why));
    }
    if !call.phase.can_be_accepted() || now >= call.ring_deadline {
        return Err(invalid("the call stopped ringing"));
    }
    if call.joined_count() >= MAX_JOINED {
        return Err(CallError::CallFull);
    }
    let first_answer = call.phase == Phase::Initiated;
    {
        let p = &mut call.participants[i];
        p.state = ParticipantState::Joined;
        p.device = Some(device.clone());
        p.joined_at = Some(now);
    }
    let mut effects = vec![Effect::Persist];
    effects.push(notify(
        Audience::UserExcept(user.clone(), device.clone()),
        EventKind::IncomingCallCancelled,
        Some(Reason::AnsweredElsewhere),
    ));
    if first_answer {
        call.phase = Phase::Ongoing;
        call.joined_at = Some(now);
        effects.push(notify(
            Audience::User(call.caller().uid.clone()),
            EventKind::OutgoingCallAccepted,
            None,
        ));
    }
    if call.receiver_type == ReceiverType::Group {
        for p in call.joined().filter(|p| &p.uid != user) {
            effects.push(Effect::Notify {
                to: Audience::User(p.uid.clone()),
                kind: EventKind::ParticipantJoined,
                reason: None,
                participant: Some(user.clone()),
            });
        }
    }
    Ok(effects)
}

fn cancel(
    call: &mut CallState,
    user: &UserId,
    device: &DeviceId,
    now: Millis,
) -> Result<Vec<Effect>, CallError> {
    let i = index_of(call, user)?;
    ensure_live(call)?;
    if call.participants[i].role != Role::Caller {
        return Err(invalid("only the caller can cancel; decline instead"));
    }
    if !call.phase.can_be_cancelled() {
        return Err(invalid("the call was already answered; end it instead"));
    }
    let ringing: Vec<UserId> = call.ringing().map(|p| p.uid.clone()).collect();
    call.finish(Outcome::Cancelled, now);
    let mut effects = vec![Effect::Persist];
    // The caller's other devices: the one that placed the call when another
    // cancelled it, and any that heard of it.
    effects.push(notify(
        Audience::UserExcept(user.clone(), device.clone()),
        EventKind::CallEndedMessageReceived,
        Some(Reason::CancelledElsewhere),
    ));
    for uid in ringing {
        effects.push(notify(
            Audience::User(uid),
            EventKind::IncomingCallCancelled,
            Some(Reason::Cancelled),
        ));
    }
    Ok(effects)
}

fn decline(
    call: &mut CallState,
    user: &UserId,
    device: &DeviceId,
    busy: bool,
    now: Millis,
) -> Result<Vec<Effect>, CallError> {
    let i = index_of(call, user)?;
    ensure_live(call)?;
    if call.participants[i].role == Role::Caller {
        return Err(invalid("you placed this call; cancel it instead"));
    }
    if let Some(why) = cannot_answer(call.participants[i].state) {
        return Err(invalid(why));
    }
    if now >= call.ring_deadline {
        return Err(invalid("the call stopped ringing"));
    }
    call.participants[i].state = if busy {
        ParticipantState::DeclinedBusy
    } else {
        ParticipantState::Declined
    };
    let mut effects = vec![Effect::Persist];
    effects.push(notify(
        Audience::UserExcept(user.clone(), device.clone()),
        EventKind::IncomingCallCancelled,
        Some(Reason::DeclinedElsewhere),
    ));
    let caller = call.caller().uid.clone();
    match call.phase {
        Phase::Initiated => {
            let anyone_left = call.ringing().next().is_some();
            let outcome = match call.receiver_type {
                ReceiverType::User if busy => Some(Outcome::Busy),
                ReceiverType::User => Some(Outcome::Rejected),
                // One member's decline ends nothing for the others.
                ReceiverType::Group if anyone_left => None,
                ReceiverType::Group => Some(Outcome::Rejected),
            };
            if let Some(outcome) = outcome {
                call.finish(outcome, now);
                let reason = if outcome == Outcome::Busy {
                    Reason::Busy
                } else {
                    Reason::Rejected
                };
                effects.push(notify(
                    Audience::User(caller),
                    EventKind::OutgoingCallRejected,
                    Some(reason),
                ));
            }
        }
        // A group member declining a call that is already going on.
        Phase::Ongoing => {}
        Phase::Finished(_) => {}
    }
    Ok(effects)
}

fn end(
    call: &mut CallState,
    user: &UserId,
    device: &DeviceId,
    reason: Reason,
    now: Millis,
) -> Result<Vec<Effect>, CallError> {
    let i = index_of(call, user)?;
    ensure_live(call)?;
    if !call.phase.can_be_ended() {
        return Err(invalid(match call.participants[i].role {
            Role::Caller => "the call was not answered yet; cancel it instead",
            Role::Callee => "the call was not answered yet; accept or decline it",
        }));
    }
    match call.participants[i].state {
        ParticipantState::Joined => {}
        ParticipantState::Ringing => {
            return Err(invalid(
                "you have not joined this call; accept or decline it",
            ))
        }
        ParticipantState::Declined
        | ParticipantState::DeclinedBusy
        | ParticipantState::Busy
        | ParticipantState::Left
        | ParticipantState::Missed => return Err(invalid("you are not in this call")),
    }
    {
        let p = &mut call.participants[i];
        p.state = ParticipantState::Left;
        p.left_at = Some(now);
    }
    let mut effects = vec![Effect::Persist];
    // This user's other devices: the one in the call when another ended it,
    // and any that heard of it (the caller's, told it was answered).
    effects.push(notify(
        Audience::UserExcept(user.clone(), device.clone()),
        EventKind::CallEndedMessageReceived,
        Some(if reason == Reason::ConnectionLost {
            reason
        } else {
            Reason::EndedElsewhere
        }),
    ));
    let remaining: Vec<UserId> = call.joined().map(|p| p.uid.clone()).collect();
    let over = match call.receiver_type {
        ReceiverType::User => true,
        ReceiverType::Group => remaining.len() < 2,
    };
    if over {
        let ringing: Vec<UserId> = call.ringing().map(|p| p.uid.clone()).collect();
        call.finish(Outcome::Ended, now);
        for uid in remaining {
            effects.push(notify(
                Audience::User(uid),
                EventKind::CallEndedMessageReceived,
                Some(reason),
            ));
        }
        for uid in ringing {
            effects.push(notify(
                Audience::User(uid),
                EventKind::IncomingCallCancelled,
                Some(Reason::CallEnded),
            ));
        }
    } else {
        for uid in remaining {
            effects.push(Effect::Notify {
                to: Audience::User(uid),
                kind: EventKind::ParticipantLeft,
                reason: Some(reason),
                participant: Some(user.clone()),
            });
        }
    }
    Ok(effects)
}

fn ring_timeout(call: &mut CallState, now: Millis) -> Vec<Effect> {
    if now < call.ring_deadline {
        return Vec::new();
    }
    let ringing: Vec<UserId> = call.ringing().map(|p| p.uid.clone()).collect();
    let mut effects = Vec::new();
    match call.phase {
        Phase::Initiated => {
            call.finish(Outcome::Unanswered, now);
            effects.push(Effect::Persist);
            effects.push(notify(
                Audience::User(call.caller().uid.clone()),
                EventKind::OutgoingCallRejected,
                Some(Reason::Timeout),
            ));
        }
        Phase::Ongoing => {
            if ringing.is_empty() {
                return effects;
            }
            for p in &mut call.participants {
                if p.state == ParticipantState::Ringing {
                    p.state = ParticipantState::Missed;
                }
            }
            effects.push(Effect::Persist);
        }
        Phase::Finished(_) => return effects,
    }
    for uid in ringing {
        effects.push(notify(
            Audience::User(uid),
            EventKind::IncomingCallCancelled,
            Some(Reason::Timeout),
        ));
    }
    effects
}

fn device_lost(call: &mut CallState, device: &DeviceId, now: Millis) -> Vec<Effect> {
    let Some(i) = call
        .participants
        .iter()
        .position(|p| p.state == ParticipantState::Joined && p.device.as_ref() == Some(device))
    else {
        return Vec::new();
    };
    let user = call.participants[i].uid.clone();
    match call.phase {
        // The caller's device vanished while ringing: nobody is there to answer to.
        Phase::Initiated => cancel(call, &user, device, now).unwrap_or_default(),
        Phase::Ongoing => end(call, &user, device, Reason::ConnectionLost, now).unwrap_or_default(),
        Phase::Finished(_) => Vec::new(),
    }
}
