//! The switchboard: one task that owns every live call.
//!
//! Every call action arrives here as a [`Command`] and is handled to the end
//! before the next one starts: the [`Exchange`] decides, then the effects are
//! carried out in order — persist (history written), notify (hub), answer.
//! That order is what makes "first of two racing actions wins, the loser
//! hears why" and "history is written before the outcome is acknowledged" hold.
//! Ring timers and lost devices are fed in from the same loop, on the
//! [`Clock`](crate::clock::Clock), so tests move time instead of sleeping.

use crate::clock::SharedClock;
use crate::error::ApiError;
use crate::hub::{Catchup, Fanout, Frame, Hub};
use crate::store::{Store, StoreError};
use peal_proto::exchange::{Applied, ApplyError, Exchange, Placement};
use peal_proto::fsm::CallError;
use peal_proto::fsm::{CallState, Effect, Input};
use peal_proto::wire::{
    CallInfo, Event, MediaSignal, ParticipantState, Presence, RejectStatus, Role, ServerFrame,
};
use peal_proto::{DeviceId, ErrorCode, SessionId, UserId};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

type Reply<T> = oneshot::Sender<Result<T, ApiError>>;

/// A participant's action on a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Accept,
    Reject(RejectStatus),
    End,
}

/// What the switchboard is asked to do.
pub enum Command {
    Initiate {
        session_id: SessionId,
        placement: Placement,
        idem: Option<String>,
        reply: Reply<CallInfo>,
    },
    Act {
        user: UserId,
        device: DeviceId,
        session_id: SessionId,
        action: Action,
        idem: Option<String>,
        reply: Reply<CallInfo>,
    },
    /// A call as `user` may see it (live or finished).
    Get {
        user: UserId,
        session_id: SessionId,
        reply: Reply<CallInfo>,
    },
    Attach {
        user: UserId,
        device: DeviceId,
        since: Option<(u64, String)>,
        tx: mpsc::Sender<Frame>,
        reply: oneshot::Sender<(u64, Catchup)>,
    },
    Detach {
        device: DeviceId,
        conn: u64,
    },
    /// `device` now watches the presence of `uids` (replacing what it watched).
    Watch {
        device: DeviceId,
        uids: Vec<UserId>,
    },
    /// Relays a media signal between two devices of one call (or refuses it).
    Relay {
        user: UserId,
        device: DeviceId,
        call: SessionId,
        to: UserId,
        to_device: Option<DeviceId>,
        signal: MediaSignal,
    },
    Presence {
        users: Vec<UserId>,
        reply: oneshot::Sender<Vec<Presence>>,
    },
    /// Number of live calls (for tests and metrics).
    LiveCount {
        reply: oneshot::Sender<usize>,
    },
}

/// A cheap handle for sending commands.
#[derive(Clone)]
pub struct Switchboard {
    tx: mpsc::Sender<Command>,
}

fn gone() -> ApiError {
    ApiError::new(ErrorCode::Internal, "the server is shutting down")
}

impl Switchboard {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).await.ok()?;
        rx.await.ok()
    }

    /// Places a call. With an idempotency key, a retry from the same device
    /// gets the first attempt's answer instead of acting twice.
    pub async fn initiate(
        &self,
        session_id: SessionId,
        placement: Placement,
        idem: Option<String>,
    ) -> Result<CallInfo, ApiError> {
        self.ask(|reply| Command::Initiate {
            session_id,
            placement,
            idem,
            reply,
        })
        .await
        .unwrap_or_else(|| Err(gone()))
    }

    pub async fn act(
        &self,
        user: UserId,
        device: DeviceId,
        session_id: SessionId,
        action: Action,
        idem: Option<String>,
    ) -> Result<CallInfo, ApiError> {
        self.ask(|reply| Command::Act {
            user,
            device,
            session_id,
            action,
            idem,
            reply,
        })
        .await
        .unwrap_or_else(|| Err(gone()))
    }

    pub async fn get(&self, user: UserId, session_id: SessionId) -> Result<CallInfo, ApiError> {
        self.ask(|reply| Command::Get {
            user,
            session_id,
            reply,
        })
        .await
        .unwrap_or_else(|| Err(gone()))
    }

    pub async fn attach(
        &self,
        user: UserId,
        device: DeviceId,
        since: Option<(u64, String)>,
        tx: mpsc::Sender<Frame>,
    ) -> Option<(u64, Catchup)> {
        self.ask(|reply| Command::Attach {
            user,
            device,
            since,
            tx,
            reply,
        })
        .await
    }

    pub async fn detach(&self, device: DeviceId, conn: u64) {
        let _ = self.tx.send(Command::Detach { device, conn }).await;
    }

    pub async fn watch(&self, device: DeviceId, uids: Vec<UserId>) {
        let _ = self.tx.send(Command::Watch { device, uids }).await;
    }

    /// Hands a media signal to the switchboard; a refusal comes back on the sender's socket.
    pub async fn relay(
        &self,
        user: UserId,
        device: DeviceId,
        call: SessionId,
        to: UserId,
        to_device: Option<DeviceId>,
        signal: MediaSignal,
    ) {
        let cmd = Command::Relay {
            user,
            device,
            call,
            to,
            to_device,
            signal,
        };
        let _ = self.tx.send(cmd).await;
    }

    pub async fn presence(&self, users: Vec<UserId>) -> Vec<Presence> {
        let n = users.len();
        self.ask(|reply| Command::Presence { users, reply })
            .await
            .unwrap_or_else(|| vec![Presence::Offline; n])
    }

    pub async fn live_count(&self) -> usize {
        self.ask(|reply| Command::LiveCount { reply })
            .await
            .unwrap_or(0)
    }
}

/// The task's state.
pub struct Task {
    exchange: Exchange,
    store: Arc<dyn Store>,
    hub: Arc<Hub>,
    clock: SharedClock,
    rx: mpsc::Receiver<Command>,
    /// The presence last told to watchers, per watched user.
    told: HashMap<UserId, Presence>,
    /// Answers given to requests with an idempotency key.
    answered: Answered,
    /// Sessions expired since freed heap was last handed back.
    lost_since_release: usize,
}

/// Sessions expired after which freed heap is handed back (a mass
/// disconnect; the trim walks the whole heap, so not for every device).
const RELEASE_AFTER_LOST: usize = 256;

/// How long an idempotency key is remembered: longer than any ring.
pub const IDEMPOTENCY_MS: i64 = 10 * 60_000;
/// At most this many answers are kept (the oldest go first): the SDK retries
/// within two seconds, and 100,000 call objects held ~100 MB under load.
const IDEMPOTENCY_MAX: usize = 20_000;

type IdemKey = (DeviceId, String);

/// The answers given to requests that carried an idempotency key, so a retry
/// (the response was lost on the way) gets the same answer, not a second action.
#[derive(Default)]
struct Answered {
    by_key: HashMap<IdemKey, Result<CallInfo, ApiError>>,
    order: std::collections::VecDeque<(peal_proto::Millis, IdemKey)>,
}

impl Answered {
    fn get(&self, key: &IdemKey) -> Option<&Result<CallInfo, ApiError>> {
        self.by_key.get(key)
    }

    /// Keeps decided answers; a failure worth retrying (rate limit, server
    /// trouble) is not remembered, so the retry acts.
    fn remember(
        &mut self,
        key: Option<IdemKey>,
        r: &Result<CallInfo, ApiError>,
        now: peal_proto::Millis,
    ) {
        let Some(key) = key else { return };
        if let Err(e) = r {
            if matches!(e.code(), ErrorCode::RateLimited | ErrorCode::Internal) {
                return;
            }
        }
        if self.by_key.len() >= IDEMPOTENCY_MAX {
            self.expire(now);
        }
        self.by_key.insert(key.clone(), r.clone());
        self.order.push_back((now, key));
    }

    fn expire(&mut self, now: peal_proto::Millis) {
        while let Some((at, key)) = self.order.front() {
            if now.since(*at) < IDEMPOTENCY_MS && self.by_key.len() < IDEMPOTENCY_MAX {
                break;
            }
            self.by_key.remove(key);
            self.order.pop_front();
        }
    }
}

/// Restores the live calls from storage (finishing rings that ran out while
/// the server was down) and returns the handle and the task to spawn.
pub async fn start(
    store: Arc<dyn Store>,
    hub: Arc<Hub>,
    clock: SharedClock,
) -> Result<(Switchboard, Task), StoreError> {
    let (tx, rx) = mpsc::channel(4096);
    let mut exchange = Exchange::new();
    let now = clock.now();
    for call in store.live_calls().await? {
        // Devices in a live call must come back within the resume window, or they are lost.
        for p in &call.participants {
            let expected = match (p.role, p.state) {
                (Role::Caller, ParticipantState::Joined)
                | (Role::Callee, ParticipantState::Joined) => p.device.as_ref(),
                (_, ParticipantState::Ringing)
                | (_, ParticipantState::Declined)
                | (_, ParticipantState::DeclinedBusy)
                | (_, ParticipantState::Busy)
                | (_, ParticipantState::Left)
                | (_, ParticipantState::Missed) => None,
            };
            if let Some(d) = expected {
                hub.expect(&p.uid, d, now);
            }
        }
        exchange.restore(call);
    }
    let mut task = Task {
        told: HashMap::new(),
        answered: Answered::default(),
        lost_since_release: 0,
        exchange,
        store,
        hub,
        clock,
        rx,
    };
    task.tick().await;
    Ok((Switchboard { tx }, task))
}

impl Task {
    /// Runs until every [`Switchboard`] handle is dropped.
    pub async fn run(mut self) {
        loop {
            let next = match (self.exchange.next_deadline(), self.hub.next_expiry()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let sleep = async {
                match next {
                    Some(at) => self.clock.sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                cmd = self.rx.recv() => match cmd {
                    Some(cmd) => {
                        self.tick().await;
                        self.handle(cmd).await;
                    }
                    None => break,
                },
                () = sleep => self.tick().await,
            }
        }
    }

    /// Fires due ring timers and reports devices gone past the resume window.
    async fn tick(&mut self) {
        let now = self.clock.now();
        self.answered.expire(now);
        for applied in self.exchange.expire(now) {
            if let Err(e) = self.carry_out(&applied).await {
                tracing::error!(error = %e, "could not record a ring timeout; the next start records it");
            }
        }
        let lost = self.hub.expire(now);
        self.lost_since_release += lost.len();
        if self.lost_since_release >= RELEASE_AFTER_LOST {
            let released = crate::memory::release();
            tracing::debug!(
                devices = self.lost_since_release,
                released,
                "sessions expired; freed heap handed back"
            );
            self.lost_since_release = 0;
        }
        for (user, device) in lost {
            self.refresh_presence(std::iter::once(&user));
            for applied in self.exchange.device_lost(&user, &device, now) {
                if let Err(e) = self.carry_out(&applied).await {
                    tracing::error!(error = %e, "could not record a lost device; the next start finishes the call");
                }
            }
        }
    }

    async fn handle(&mut self, cmd: Command) {
        let now = self.clock.now();
        match cmd {
            Command::Initiate {
                session_id,
                placement,
                idem,
                reply,
            } => {
                let key = idem.map(|k| (placement.caller_device.clone(), k));
                if let Some(done) = key.as_ref().and_then(|k| self.answered.get(k)) {
                    let _ = reply.send(done.clone());
                    return;
                }
                let r = match self.exchange.initiate(session_id, placement, now) {
                    Ok(applied) => self.finish_step(None, applied).await,
                    Err(e) => Err(e.into()),
                };
                self.answered.remember(key, &r, now);
                let _ = reply.send(r);
            }
            Command::Act {
                user,
                device,
                session_id,
                action,
                idem,
                reply,
            } => {
                let key = idem.map(|k| (device.clone(), k));
                if let Some(done) = key.as_ref().and_then(|k| self.answered.get(k)) {
                    let _ = reply.send(done.clone());
                    return;
                }
                let input = match action {
                    Action::Accept => Input::Accept {
                        user: user.clone(),
                        device,
                    },
                    Action::Reject(status) => Input::Reject {
                        user: user.clone(),
                        device,
                        status,
                    },
                    Action::End => Input::End {
                        user: user.clone(),
                        device,
                    },
                };
                let before = self.exchange.get(&session_id).cloned();
                let r = match self.exchange.apply(&session_id, &input, now) {
                    Ok(applied) => self.finish_step(before, applied).await,
                    Err(ApplyError::Refused(e)) => Err(peal_proto::ErrorBody::from(e).into()),
                    Err(ApplyError::NotLive) => {
                        Err(self.finished_refusal(&user, &session_id).await)
                    }
                };
                self.answered.remember(key, &r, now);
                let _ = reply.send(r);
            }
            Command::Get {
                user,
                session_id,
                reply,
            } => {
                let r = match self.exchange.get(&session_id) {
                    Some(c) if c.participant(&user).is_some() => Ok(c.info()),
                    Some(_) => Err(ApiError::not_found("call")),
                    None => match self.store.call(session_id).await {
                        Ok(Some(c)) if c.participant(&user).is_some() => Ok(c.info()),
                        Ok(_) => Err(ApiError::not_found("call")),
                        Err(e) => Err(e.into()),
                    },
                };
                let _ = reply.send(r);
            }
            Command::Attach {
                user,
                device,
                since,
                tx,
                reply,
            } => {
                let exchange = &self.exchange;
                let r = self.hub.attach(
                    &user,
                    &device,
                    since.as_ref().map(|(s, e)| (*s, e.as_str())),
                    tx,
                    || exchange.calls_of(&user).map(CallState::info).collect(),
                );
                let _ = reply.send(r);
                self.refresh_presence(std::iter::once(&user));
            }
            Command::Detach { device, conn } => {
                if let Some(user) = self.hub.detach(&device, conn, now) {
                    self.refresh_presence(std::iter::once(&user));
                }
            }
            Command::Watch { device, uids } => {
                if self.hub.watch(&device, uids.clone()) {
                    for u in &uids {
                        let p = self.presence_of(u);
                        self.hub.send_presence(u, p, Some(&device));
                        self.told.insert(u.clone(), p);
                    }
                }
            }
            Command::Relay {
                user,
                device,
                call,
                to,
                to_device,
                signal,
            } => {
                let route = self
                    .exchange
                    .get(&call)
                    .ok_or(CallError::NotFound)
                    .and_then(|c| c.media_route(&user, &device, &to, to_device.as_ref()));
                let relayed = route.is_ok_and(|target| {
                    let f = ServerFrame::Media {
                        call: call.clone(),
                        from: user.clone(),
                        from_device: device.clone(),
                        signal,
                    };
                    self.hub.send_to(&to, &target, &f)
                });
                if !relayed {
                    let refusal = ServerFrame::Error {
                        code: ErrorCode::NotFound,
                        message: format!("media signal for call {call} not relayed: no such call, participant or connected device"),
                    };
                    self.hub.send_to(&user, &device, &refusal);
                }
            }
            Command::Presence { users, reply } => {
                let p = users.iter().map(|u| self.presence_of(u)).collect();
                let _ = reply.send(p);
            }
            Command::LiveCount { reply } => {
                let _ = reply.send(self.exchange.live_count());
            }
        }
    }

    /// Carries out a step's effects and answers with the call; if the history
    /// can't be written, the step is undone and the client hears `internal`.
    async fn finish_step(
        &mut self,
        before: Option<CallState>,
        applied: Applied,
    ) -> Result<CallInfo, ApiError> {
        match self.carry_out(&applied).await {
            Ok(()) => Ok(applied.call.info()),
            Err(e) => {
                self.exchange.undo(&applied.call.session_id, before);
                Err(e.into())
            }
        }
    }

    fn presence_of(&self, u: &UserId) -> Presence {
        if self.exchange.ongoing_call_of(u).is_some() {
            Presence::InCall
        } else if self.hub.is_online(u) {
            Presence::Online
        } else {
            Presence::Offline
        }
    }

    /// Tells the watchers of `users` whose presence changed.
    fn refresh_presence<'a>(&mut self, users: impl Iterator<Item = &'a UserId>) {
        for u in users {
            if !self.hub.is_watched(u) {
                self.told.remove(u);
                continue;
            }
            let p = self.presence_of(u);
            if self.told.get(u) != Some(&p) {
                self.told.insert(u.clone(), p);
                self.hub.send_presence(u, p, None);
            }
        }
    }

    /// Persist first, then notify.
    async fn carry_out(&mut self, applied: &Applied) -> Result<(), StoreError> {
        let mut info: Option<CallInfo> = None;
        let now = self.clock.now();
        for effect in &applied.effects {
            match effect {
                Effect::Persist => self.store.save_call(applied.call.clone()).await?,
                Effect::Notify {
                    to,
                    kind,
                    reason,
                    participant,
                } => {
                    let call = info.get_or_insert_with(|| applied.call.info()).clone();
                    let event = Event {
                        event: *kind,
                        call,
                        reason: *reason,
                        participant: participant.clone(),
                    };
                    self.hub.publish(to, &event, now);
                }
                Effect::ArmTimer { .. } => {}
            }
        }
        let uids: Vec<UserId> = applied
            .call
            .participants
            .iter()
            .map(|p| p.uid.clone())
            .collect();
        self.refresh_presence(uids.iter());
        Ok(())
    }

    /// An action on a call that is not live: `invalid_state` with its outcome
    /// if `user` took part in it, else `not_found`.
    async fn finished_refusal(&self, user: &UserId, id: &SessionId) -> ApiError {
        match self.store.call(id.clone()).await {
            Ok(Some(c)) if c.participant(user).is_some() => ApiError::new(
                ErrorCode::InvalidState,
                format!("the call is already over ({})", c.status().as_str()),
            ),
            Ok(_) => ApiError::not_found("call"),
            Err(e) => e.into(),
        }
    }
}
