//! Every live call at once: the one place that decides each call's fate.
//!
//! [`Exchange`] holds the live calls and answers the questions that span calls
//! (is the callee already in a call? is this initiate the other half of a
//! glare?), routes each input to its call's [`fsm::step`], and keeps the ring
//! timers. It is pure like the state machine: the server feeds it inputs in
//! arrival order with the time, and carries out the effects it returns.
//!
//! Races reduce to this table, decided at [`Exchange::initiate`]:
//!
//! | the caller…                                         | outcome                                   |
//! |-----------------------------------------------------|-------------------------------------------|
//! | calls themselves                                    | `calling_self`                            |
//! | is joined to an ongoing call                        | `caller_busy`                             |
//! | is ringing for a call from this receiver (glare)    | that call is accepted; one `ongoing` call |
//! | already has this very call ringing (double click)   | the existing call, nothing rings twice    |
//! | calls someone in an ongoing call                    | that callee doesn't ring (`busy`/`missed`) |
//! | otherwise                                           | a new call rings                          |

#![deny(clippy::wildcard_enum_match_arm)]

use crate::error::{ErrorBody, ErrorCode};
use crate::fsm::{self, CallError, CallState, Effect, Input, NewCall, Phase};
use crate::ids::{DeviceId, SessionId, UserId};
use crate::time::Millis;
use crate::wire::{CallType, ParticipantState, Party, Receiver, ReceiverType};
use std::collections::{BTreeSet, HashMap};

/// A request to place a call, with names and group members already resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub caller: Party,
    pub caller_device: DeviceId,
    pub receiver: Receiver,
    pub call_type: CallType,
    /// Everyone who should ring: the callee, or the group's members (the caller is skipped).
    pub members: Vec<Party>,
    pub ring_timeout_ms: i64,
}

/// A step that happened: the call after it and the effects to carry out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    pub call: CallState,
    pub effects: Vec<Effect>,
}

/// Why [`Exchange::apply`] did nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplyError {
    /// No live call has that id: it is finished (ask the store) or never existed.
    NotLive,
    /// The call refused the input.
    Refused(CallError),
}

/// All live calls, indexed by participant, with their ring timers.
#[derive(Debug, Default)]
pub struct Exchange {
    calls: HashMap<SessionId, CallState>,
    /// Live calls each user takes part in (any role, any state).
    by_user: HashMap<UserId, Vec<SessionId>>,
    /// Ring deadlines; stale entries (finished calls) are skipped when they come due.
    timers: BTreeSet<(Millis, SessionId)>,
}

impl Exchange {
    pub fn new() -> Self {
        Exchange::default()
    }

    /// Places a call (see the module table). `session_id` is the id a new call gets.
    pub fn initiate(
        &mut self,
        session_id: SessionId,
        p: Placement,
        now: Millis,
    ) -> Result<Applied, ErrorBody> {
        let caller = p.caller.uid.clone();
        let receiver_type = match &p.receiver {
            Receiver::User { uid, .. } => {
                if uid == &caller {
                    return Err(ErrorBody::new(
                        ErrorCode::CallingSelf,
                        "you can't call yourself",
                    ));
                }
                ReceiverType::User
            }
            Receiver::Group { .. } => ReceiverType::Group,
        };
        if self.ongoing_call_of(&caller).is_some() {
            return Err(ErrorBody::new(
                ErrorCode::CallerBusy,
                "you are already in a call; end it first",
            ));
        }
        if let Some(existing) = self.collision(&caller, &p.receiver) {
            return match existing {
                Collision::Glare(id) => {
                    let input = Input::Accept {
                        user: caller,
                        device: p.caller_device,
                    };
                    self.apply(&id, &input, now).map_err(|e| match e {
                        ApplyError::NotLive => {
                            ErrorBody::new(ErrorCode::Internal, "glare call vanished")
                        }
                        ApplyError::Refused(e) => e.into(),
                    })
                }
                Collision::Duplicate(id) => match self.calls.get(&id) {
                    Some(call) => Ok(Applied {
                        call: call.clone(),
                        effects: Vec::new(),
                    }),
                    None => Err(ErrorBody::new(
                        ErrorCode::Internal,
                        "duplicate call vanished",
                    )),
                },
            };
        }
        let callees: Vec<(Party, bool)> = p
            .members
            .into_iter()
            .filter(|m| m.uid != caller)
            .map(|m| {
                let busy = self.ongoing_call_of(&m.uid).is_some();
                (m, busy)
            })
            .collect();
        if callees.is_empty() {
            return Err(ErrorBody::new(
                ErrorCode::BadRequest,
                "nobody to call: the group has no other members",
            ));
        }
        let t = CallState::start(
            NewCall {
                session_id,
                call_type: p.call_type,
                receiver_type,
                receiver: p.receiver,
                caller: p.caller,
                caller_device: p.caller_device,
                callees,
                ring_timeout_ms: p.ring_timeout_ms,
            },
            now,
        );
        Ok(self.commit(t.call, t.effects))
    }

    /// Feeds one input to one live call.
    pub fn apply(
        &mut self,
        id: &SessionId,
        input: &Input,
        now: Millis,
    ) -> Result<Applied, ApplyError> {
        let call = self.calls.get(id).ok_or(ApplyError::NotLive)?;
        // One call at a time: answering a second call while in one would put
        // you in two. (Hold and switch are not modelled yet.)
        if let Input::Accept { user, .. } = input {
            if call.participant(user).is_some()
                && self
                    .ongoing_call_of(user)
                    .is_some_and(|c| &c.session_id != id)
            {
                return Err(ApplyError::Refused(CallError::InvalidState(
                    "you are in another call; end it before answering this one".into(),
                )));
            }
        }
        let t = fsm::step(call, input, now).map_err(ApplyError::Refused)?;
        Ok(self.commit(t.call, t.effects))
    }

    /// Fires every ring timer due at `now`.
    pub fn expire(&mut self, now: Millis) -> Vec<Applied> {
        let mut out = Vec::new();
        while let Some((at, id)) = self.timers.first().cloned() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, id.clone()));
            if let Ok(a) = self.apply(&id, &Input::RingTimeout, now) {
                if !a.effects.is_empty() {
                    out.push(a);
                }
            }
        }
        out
    }

    /// A device is gone for good: leave or cancel every call it was in.
    pub fn device_lost(&mut self, user: &UserId, device: &DeviceId, now: Millis) -> Vec<Applied> {
        let ids = self.by_user.get(user).cloned().unwrap_or_default();
        ids.iter()
            .filter_map(|id| {
                self.apply(
                    id,
                    &Input::DeviceLost {
                        device: device.clone(),
                    },
                    now,
                )
                .ok()
            })
            .filter(|a| !a.effects.is_empty())
            .collect()
    }

    /// Takes back a live call read from storage after a restart; [`Exchange::expire`]
    /// then finishes the ones whose ring ran out while the server was down.
    pub fn restore(&mut self, call: CallState) {
        if call.is_live() {
            let deadline = call.ring_deadline;
            let ringing = call
                .participants
                .iter()
                .any(|p| p.state == ParticipantState::Ringing);
            if ringing {
                self.timers.insert((deadline, call.session_id.clone()));
            }
            self.commit(call, Vec::new());
        }
    }

    /// The earliest pending ring deadline.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.timers.first().map(|(at, _)| *at)
    }

    pub fn get(&self, id: &SessionId) -> Option<&CallState> {
        self.calls.get(id)
    }

    /// The ongoing call `uid` is joined to, if any.
    pub fn ongoing_call_of(&self, uid: &UserId) -> Option<&CallState> {
        self.calls_of(uid).find(|c| c.is_in_ongoing_call(uid))
    }

    /// Every live call `uid` takes part in.
    pub fn calls_of<'a>(&'a self, uid: &UserId) -> impl Iterator<Item = &'a CallState> + 'a {
        self.by_user
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|id| self.calls.get(id))
    }

    /// How many calls are live.
    pub fn live_count(&self) -> usize {
        self.calls.len()
    }

    /// Puts a call back as it was before a step whose effects could not be
    /// carried out (its history could not be written): `before` is the call
    /// before the step, `None` for a call the step created.
    pub fn undo(&mut self, id: &SessionId, before: Option<CallState>) {
        if let Some(current) = self.calls.get(id).cloned() {
            let mut finished = current;
            finished.phase = Phase::Finished(fsm::Outcome::Cancelled);
            self.commit(finished, Vec::new());
        }
        if let Some(call) = before {
            self.restore(call);
        }
    }

    fn collision(&self, caller: &UserId, receiver: &Receiver) -> Option<Collision> {
        for c in self.calls_of(caller) {
            let me = c.participant(caller)?;
            let same_receiver = match (receiver, &c.receiver) {
                (Receiver::User { uid, .. }, Receiver::User { uid: theirs, .. }) => {
                    // Glare: they called me while I call them.
                    if &c.caller().uid == uid && theirs == caller {
                        if me.state == ParticipantState::Ringing && c.phase == Phase::Initiated {
                            return Some(Collision::Glare(c.session_id.clone()));
                        }
                        false
                    } else {
                        theirs == uid
                    }
                }
                (Receiver::Group { guid, .. }, Receiver::Group { guid: theirs, .. }) => {
                    if theirs == guid && me.state == ParticipantState::Ringing {
                        // Someone else rang the group first: joining it is what we meant.
                        return Some(Collision::Glare(c.session_id.clone()));
                    }
                    theirs == guid
                }
                (Receiver::User { .. }, Receiver::Group { .. })
                | (Receiver::Group { .. }, Receiver::User { .. }) => false,
            };
            if same_receiver && &c.caller().uid == caller && c.phase == Phase::Initiated {
                return Some(Collision::Duplicate(c.session_id.clone()));
            }
        }
        None
    }

    /// Stores the call after a step and keeps the indexes and timers true.
    fn commit(&mut self, call: CallState, effects: Vec<Effect>) -> Applied {
        let id = call.session_id.clone();
        for e in &effects {
            match e {
                Effect::ArmTimer { at } => {
                    self.timers.insert((*at, id.clone()));
                }
                Effect::Persist | Effect::Notify { .. } => {}
            }
        }
        if call.is_live() {
            if !self.calls.contains_key(&id) {
                for p in &call.participants {
                    self.by_user
                        .entry(p.uid.clone())
                        .or_default()
                        .push(id.clone());
                }
            }
            self.calls.insert(id, call.clone());
        } else {
            self.calls.remove(&id);
            self.timers.remove(&(call.ring_deadline, id.clone()));
            for p in &call.participants {
                if let Some(v) = self.by_user.get_mut(&p.uid) {
                    v.retain(|s| s != &id);
                    if v.is_empty() {
                        self.by_user.remove(&p.uid);
                    }
                }
            }
        }
        Applied { call, effects }
    }
}

enum Collision {
    Glare(SessionId),
    Duplicate(SessionId),
}
