//! The peal-proto targets: the event socket's frames, the REST bodies, and
//! the call state machine driven by arbitrary input sequences.

use peal_proto::error::ErrorEnvelope;
use peal_proto::exchange::{Applied, ApplyError, Exchange, Placement};
use peal_proto::fsm::{Audience, CallState, Effect, Input, Phase};
use peal_proto::ids::is_valid_id;
use peal_proto::limits::{CALL_RING_TIMEOUT_SECS, DEFAULT_RING_TIMEOUT_SECS, MAX_JOINED};
use peal_proto::wire::{
    CallResponse, CallType, ClientFrame, Contact, GroupInfo, HistoryEntry, IceServers,
    InitiateRequest, LoginRequest, LoginResponse, ParticipantState, Party, Receiver, ReceiverType,
    RejectRequest, RejectStatus, Role, ServerFrame, Status, MAX_WATCHED,
};
use peal_proto::{DeviceId, ErrorCode, GroupId, Millis, SessionId, UserId};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

/// Decodes `data` as the receiving side does (from the bytes of an HTTP body,
/// and from the text of a WebSocket text frame) and checks that whatever
/// decodes encodes back to the same value, the same way every time.
fn decode<T>(data: &[u8]) -> Option<T>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let from_bytes = serde_json::from_slice::<T>(data).ok();
    let from_text = serde_json::from_str::<T>(&String::from_utf8_lossy(data)).ok();
    if std::str::from_utf8(data).is_ok() {
        assert_eq!(from_bytes, from_text, "bytes and text decode alike");
    }
    if let Some(v) = &from_bytes {
        round_trip(v);
    }
    if let Some(v) = &from_text {
        round_trip(v);
    }
    from_text
}

fn round_trip<T>(v: &T)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let json = serde_json::to_string(v).expect("what decoded encodes");
    let back: T =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json} does not decode again: {e}"));
    assert_eq!(&back, v, "{json} decodes to something else");
    assert_eq!(
        serde_json::to_string(&back).expect("encodes"),
        json,
        "encoding is not stable"
    );
}

/// One event-socket text frame: what the server makes of a [`ClientFrame`]
/// (ws.rs), and what the SDK makes of a [`ServerFrame`] (stream.rs).
pub fn client_frame(data: &[u8]) {
    match decode::<ClientFrame>(data) {
        Some(frame) => server_handles(frame),
        None => {
            // The refusal the server sends before closing.
            if let Err(e) = serde_json::from_str::<ClientFrame>(&String::from_utf8_lossy(data)) {
                round_trip(&ServerFrame::Error {
                    code: ErrorCode::BadRequest,
                    message: format!("malformed frame: {e}"),
                });
            }
        }
    }
    if let Some(frame) = decode::<ServerFrame>(data) {
        sdk_handles(&frame);
    }
}

fn server_handles(frame: ClientFrame) {
    if let ClientFrame::Ping { nonce } = frame {
        round_trip(&ServerFrame::Pong { nonce });
    } else if let ClientFrame::WatchPresence { uids } = frame {
        if uids.len() <= MAX_WATCHED && uids.iter().all(|u| is_valid_id(u.as_str())) {
            assert!(uids.iter().all(|u| safe_id(u.as_str())));
        }
    } else if let ClientFrame::Media { call, signal, .. } = frame {
        // What the server relays is what the SDK at the other end decodes.
        round_trip(&ServerFrame::Media {
            call,
            from: UserId::from("sender"),
            from_device: DeviceId::from("sender-device"),
            signal,
        });
    }
}

fn sdk_handles(frame: &ServerFrame) {
    let calls: Vec<&peal_proto::wire::CallInfo> = if let ServerFrame::Event { event, .. } = frame {
        let _ = event.event.as_str();
        vec![&event.call]
    } else if let ServerFrame::Snapshot { calls, .. } = frame {
        calls.iter().collect()
    } else {
        Vec::new()
    };
    for c in calls {
        let _ = (c.status.is_live(), c.status.as_str());
        let _ = (c.receiver.id(), c.receiver.name());
    }
}

/// A valid id is safe in a URL path segment, a log line and a file name.
fn safe_id(s: &str) -> bool {
    s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b'\\')
}

/// One REST body: the first byte picks the type. Requests are what the
/// server's handlers deserialize (api.rs), then validate as they do;
/// responses are what the SDK deserializes (client.rs).
pub fn request_bodies(data: &[u8]) {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 11 {
        0 => {
            if let Some(req) = decode::<LoginRequest>(body) {
                login(&req);
            }
        }
        1 => {
            if let Some(req) = decode::<InitiateRequest>(body) {
                initiate(req);
            }
        }
        2 => {
            decode::<RejectRequest>(body);
        }
        3 => {
            decode::<LoginResponse>(body);
        }
        4 => {
            decode::<CallResponse>(body);
        }
        5 => {
            decode::<Vec<Contact>>(body);
        }
        6 => {
            decode::<Vec<GroupInfo>>(body);
        }
        7 => {
            decode::<Vec<HistoryEntry>>(body);
        }
        8 => {
            decode::<IceServers>(body);
        }
        9 => {
            decode::<Party>(body);
        }
        _ => {
            decode::<ErrorEnvelope>(body);
        }
    }
}

/// `POST /v1/login`'s checks before the store is asked.
fn login(req: &LoginRequest) {
    let device = req.device.trim();
    let _device_ok = !device.is_empty() && device.len() <= 128;
    if is_valid_id(req.uid.as_str()) && req.password.len() <= 1024 {
        assert!(safe_id(req.uid.as_str()));
    }
}

/// `POST /v1/calls`: the server's checks, then the placement it makes,
/// through an exchange of its own.
fn initiate(req: InitiateRequest) {
    let secs = match req.timeout {
        None => DEFAULT_RING_TIMEOUT_SECS,
        Some(t) if (CALL_RING_TIMEOUT_SECS.0..=CALL_RING_TIMEOUT_SECS.1).contains(&t) => t,
        Some(_) => return,
    };
    if !is_valid_id(&req.receiver) {
        return;
    }
    assert!(safe_id(&req.receiver));
    let caller = Party {
        uid: UserId::from("caller"),
        name: "Caller".into(),
    };
    let (receiver, members) = match req.receiver_type {
        ReceiverType::User => (
            Receiver::User {
                uid: UserId(req.receiver.clone()),
                name: "Callee".into(),
            },
            vec![Party {
                uid: UserId(req.receiver),
                name: "Callee".into(),
            }],
        ),
        ReceiverType::Group => (
            Receiver::Group {
                guid: GroupId(req.receiver),
                name: "Group".into(),
            },
            vec![
                caller.clone(),
                Party {
                    uid: UserId::from("member"),
                    name: "Member".into(),
                },
            ],
        ),
    };
    let ring_timeout_ms = i64::from(secs) * 1000;
    let now = Millis(1_700_000_000_000);
    let self_call = matches!(&receiver, Receiver::User { uid, .. } if uid == &caller.uid);
    let mut ex = Exchange::new();
    let placed = ex.initiate(
        SessionId::from("s"),
        Placement {
            caller,
            caller_device: DeviceId::from("caller-device"),
            receiver,
            call_type: req.call_type,
            members,
            ring_timeout_ms,
        },
        now,
    );
    match placed {
        Ok(a) => {
            assert!(!self_call);
            assert_eq!(a.call.ring_deadline, now.plus(ring_timeout_ms));
            check_effects(&a.call, &a.effects, true, now);
            round_trip(&CallResponse {
                call: a.call.info(),
            });
        }
        Err(e) => {
            assert!(self_call, "a valid placement was refused: {e}");
            assert_eq!(e.code, ErrorCode::CallingSelf);
        }
    }
}

// ---------------------------------------------------------------------------
// The call state machine.

/// Ten users; `g1` has all of them, so a call can fill up (MAX_JOINED is 8).
const USERS: [&str; 10] = ["u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8", "u9"];
/// Never placed in any call and never calls: nothing may ever reach them.
const STRANGER: &str = "zz";
const GROUPS: [(&str, &[&str]); 3] = [
    ("g0", &["u0", "u1", "u2"]),
    ("g1", &USERS),
    ("g2", &["u3", "u4", "u5", "u6", "u7", "u8", "u9"]),
];
const T0: Millis = Millis(1_700_000_000_000);

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The next byte; zeros once the input is used up.
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }
}

fn party(uid: &str) -> Party {
    Party {
        uid: UserId::from(uid),
        name: uid.to_uppercase(),
    }
}

/// Everything the machine has said about each call, and the exchange itself.
struct Machine {
    ex: Exchange,
    now: Millis,
    next_id: u32,
    /// Every call placed, as its last step left it (live or finished).
    calls: BTreeMap<SessionId, CallState>,
    /// Calls whose creating step was undone: they never existed.
    gone: BTreeSet<SessionId>,
    /// The step just taken (its call, and that call before it), for undo.
    last: Option<(SessionId, Option<CallState>)>,
}

/// Arbitrary bytes as a sequence of inputs to one [`Exchange`]: placing
/// calls, every participant action by any user (strangers too) from any of
/// their devices, ring timers, lost devices (anyone's), undone steps and
/// restarts, with time only moving forward. Whatever happens: no panic, a
/// finished call never changes, nothing is sent to anyone outside the call,
/// persist comes first, at most [`MAX_JOINED`] joined, and the exchange's
/// indexes stay true.
pub fn call_state_machine(data: &[u8]) {
    let mut r = Reader(data);
    let mut m = Machine {
        ex: Exchange::new(),
        now: T0,
        next_id: 0,
        calls: BTreeMap::new(),
        gone: BTreeSet::new(),
        last: None,
    };
    while !r.is_empty() {
        let last = m.last.take();
        match r.byte() % 12 {
            0 => m.initiate(&mut r),
            1 => {
                let (id, user, device) = m.actor(&mut r);
                m.apply(id, Input::Accept { user, device });
            }
            2 => {
                let (id, user, device) = m.actor(&mut r);
                let status = match r.byte() % 3 {
                    0 => RejectStatus::Rejected,
                    1 => RejectStatus::Busy,
                    _ => RejectStatus::Cancelled,
                };
                m.apply(
                    id,
                    Input::Reject {
                        user,
                        device,
                        status,
                    },
                );
            }
            3 => {
                let (id, user, device) = m.actor(&mut r);
                m.apply(id, Input::End { user, device });
            }
            4 => {
                let id = m.session(r.byte());
                m.apply(id, Input::RingTimeout);
            }
            5 => {
                let id = m.session(r.byte());
                let device = m.any_device(r.byte());
                m.apply(id, Input::DeviceLost { device });
            }
            6 => m.device_lost(&mut r),
            7 => m.advance(&mut r),
            8 => m.expire(),
            9 => m.undo(last),
            10 => m.restart(),
            _ => m.media_route(&mut r),
        }
        m.check_exchange();
    }
    // However it went, time running out and everyone hanging up ends every call.
    m.now = m.now.plus(1_000_000);
    m.expire();
    let live: Vec<CallState> = m.calls.values().filter(|c| c.is_live()).cloned().collect();
    for c in live {
        for p in &c.participants {
            if let (ParticipantState::Joined, Some(d)) = (p.state, &p.device) {
                m.apply(
                    c.session_id.clone(),
                    Input::End {
                        user: p.uid.clone(),
                        device: d.clone(),
                    },
                );
            }
        }
        m.check_exchange();
    }
    assert_eq!(m.ex.live_count(), 0, "every call ends");
}

impl Machine {
    fn user(&self, b: u8) -> UserId {
        match USERS.get(usize::from(b) % (USERS.len() + 1)) {
            Some(u) => UserId::from(*u),
            None => UserId::from(STRANGER),
        }
    }

    /// One of `user`'s three devices: the server acts for a user only from
    /// a device of theirs (it authenticates each one).
    fn own_device(user: &UserId, b: u8) -> DeviceId {
        DeviceId(format!("{user}-{}", b % 3))
    }

    /// Any device: anyone's, or nobody's.
    fn any_device(&self, b: u8) -> DeviceId {
        match b % 4 {
            3 => DeviceId::from("nobody's"),
            _ => Self::own_device(&self.user(b >> 2), b),
        }
    }

    /// Mostly the newest call; any call placed so far, or one that never was.
    fn session(&self, b: u8) -> SessionId {
        let ids: Vec<&SessionId> = self.calls.keys().chain(self.gone.iter()).collect();
        if b < 128 && self.next_id > 0 {
            return SessionId(format!("s{}", self.next_id - 1));
        }
        match ids.get(usize::from(b) % (ids.len() + 1)) {
            Some(id) => (*id).clone(),
            None => SessionId::from("unknown"),
        }
    }

    fn actor(&self, r: &mut Reader<'_>) -> (SessionId, UserId, DeviceId) {
        let id = self.session(r.byte());
        let user = self.user(r.byte());
        let device = Self::own_device(&user, r.byte());
        (id, user, device)
    }

    fn initiate(&mut self, r: &mut Reader<'_>) {
        let caller = UserId::from(USERS[usize::from(r.byte()) % USERS.len()]);
        let caller_device = Self::own_device(&caller, r.byte());
        let kind = r.byte();
        let call_type = if kind & 1 == 0 {
            CallType::Audio
        } else {
            CallType::Video
        };
        let (receiver, members) = if kind & 2 == 0 {
            let callee = USERS[usize::from(kind >> 2) % USERS.len()];
            (
                Receiver::User {
                    uid: UserId::from(callee),
                    name: callee.to_uppercase(),
                },
                vec![party(callee)],
            )
        } else {
            let (guid, members) = GROUPS[usize::from(kind >> 2) % GROUPS.len()];
            if !members.contains(&caller.as_str()) {
                return; // The server refuses a group you are not in.
            }
            (
                Receiver::Group {
                    guid: GroupId::from(guid),
                    name: guid.to_uppercase(),
                },
                members.iter().map(|u| party(u)).collect(),
            )
        };
        let ring_timeout_ms = (i64::from(r.u16() % 600) + 1) * 1000;
        let id = SessionId(format!("s{}", self.next_id));
        self.next_id += 1;
        let self_call = matches!(&receiver, Receiver::User { uid, .. } if uid == &caller);
        let expected: Vec<UserId> = members
            .iter()
            .map(|p| p.uid.clone())
            .filter(|u| u != &caller)
            .collect();
        let placement = Placement {
            caller: party(caller.as_str()),
            caller_device,
            receiver,
            call_type,
            members,
            ring_timeout_ms,
        };
        match self.ex.initiate(id.clone(), placement, self.now) {
            Ok(a) => {
                assert!(!self_call, "calling yourself was placed");
                if a.call.session_id == id {
                    let uids: Vec<UserId> =
                        a.call.participants.iter().map(|p| p.uid.clone()).collect();
                    assert_eq!(uids[0], caller);
                    assert_eq!(uids[1..], expected[..], "the callees are the members");
                    assert_eq!(a.call.ring_deadline, self.now.plus(ring_timeout_ms));
                    self.last = Some((id, None));
                } else {
                    // Glare or a double click: an existing live call.
                    let existing = self.calls.get(&a.call.session_id);
                    assert!(
                        existing.is_some_and(CallState::is_live),
                        "initiate answered with a call that is not live"
                    );
                    if a.effects.is_empty() {
                        assert_eq!(existing, Some(&a.call), "a duplicate changed the call");
                    }
                    self.last = Some((a.call.session_id.clone(), existing.cloned()));
                }
                self.took(a);
            }
            Err(e) => {
                if self_call {
                    assert_eq!(e.code, ErrorCode::CallingSelf);
                }
            }
        }
    }

    fn apply(&mut self, id: SessionId, input: Input) {
        let before = self.ex.get(&id).cloned();
        match self.ex.apply(&id, &input, self.now) {
            Ok(a) => {
                let b = before.as_ref().expect("a step on a call that was not live");
                assert_eq!(a.call.session_id, id);
                if let Some(user) = actor_of(&input) {
                    let p = b
                        .participant(user)
                        .unwrap_or_else(|| panic!("{user} is not in {id} and acted on it"));
                    let now_p = a.call.participant(user).expect("still a participant");
                    if matches!(input, Input::Accept { .. }) {
                        assert_eq!(p.role, Role::Callee, "only a callee accepts");
                        assert_eq!(now_p.state, ParticipantState::Joined);
                        assert!(
                            self.now < b.ring_deadline,
                            "accepted after the ring ran out"
                        );
                    }
                    if matches!(input, Input::End { .. }) {
                        assert_eq!(p.state, ParticipantState::Joined, "only the joined hang up");
                    }
                }
                self.last = Some((id, before));
                self.took(a);
            }
            Err(e) => {
                if matches!(e, ApplyError::NotLive) {
                    assert!(before.is_none(), "a live call said it was not live");
                }
                assert_eq!(
                    self.ex.get(&id),
                    before.as_ref(),
                    "a refusal changed the call"
                );
            }
        }
    }

    fn device_lost(&mut self, r: &mut Reader<'_>) {
        let user = self.user(r.byte());
        let device = Self::own_device(&user, r.byte());
        for a in self.ex.device_lost(&user, &device, self.now) {
            self.took(a);
        }
        for c in self.calls.values().filter(|c| c.is_live()) {
            assert!(
                !c.participants.iter().any(|p| p.uid == user
                    && p.state == ParticipantState::Joined
                    && p.device.as_ref() == Some(&device)),
                "{device} is lost and still in {}",
                c.session_id
            );
        }
    }

    fn advance(&mut self, r: &mut Reader<'_>) {
        let b = r.byte();
        let ms = match b % 4 {
            0 => i64::from(b >> 2),
            1 => i64::from(r.u16()),
            2 => i64::from(r.u16()) * 100,
            _ => i64::from(r.u16()) * 10_000,
        };
        self.now = self.now.plus(ms);
    }

    fn expire(&mut self) {
        for a in self.ex.expire(self.now) {
            assert!(!a.effects.is_empty(), "expire reports only what changed");
            self.took(a);
        }
        for c in self.calls.values().filter(|c| c.is_live()) {
            assert!(
                c.ring_deadline > self.now || !ringing(c),
                "{} still rings after its deadline",
                c.session_id
            );
        }
    }

    /// The server's answer to a step whose history could not be written.
    fn undo(&mut self, last: Option<(SessionId, Option<CallState>)>) {
        let Some((id, before)) = last else {
            return;
        };
        self.ex.undo(&id, before.clone());
        match before {
            Some(b) => {
                self.calls.insert(id, b);
            }
            None => {
                self.calls.remove(&id);
                self.gone.insert(id);
            }
        }
    }

    /// A server restart: the live calls come back from storage.
    fn restart(&mut self) {
        let mut ex = Exchange::new();
        for c in self.calls.values().filter(|c| c.is_live()) {
            ex.restore(c.clone());
        }
        self.ex = ex;
    }

    fn media_route(&mut self, r: &mut Reader<'_>) {
        let (id, from, from_device) = self.actor(r);
        let to = self.user(r.byte());
        let b = r.byte();
        let to_device = (b & 1 == 1).then(|| self.any_device(b >> 1));
        let Some(c) = self.ex.get(&id) else {
            return;
        };
        if c.media_route(&from, &from_device, &to, to_device.as_ref())
            .is_ok()
        {
            assert_ne!(from, to);
            for u in [&from, &to] {
                let p = c.participant(u).expect("a route between participants");
                assert!(matches!(
                    p.state,
                    ParticipantState::Ringing | ParticipantState::Joined
                ));
            }
        }
    }

    /// Takes in one step that happened, checking it against what came before.
    fn took(&mut self, a: Applied) {
        let id = a.call.session_id.clone();
        assert!(!self.gone.contains(&id), "an undone call came back: {id}");
        let changed = match self.calls.get(&id) {
            Some(b) => {
                assert!(
                    b.is_live(),
                    "finished call {id} changed: {:?} -> {:?}",
                    b.phase,
                    a.call.phase
                );
                assert!(
                    !(b.phase == Phase::Ongoing && a.call.phase == Phase::Initiated),
                    "an answered call rings again"
                );
                let uids = |c: &CallState| -> Vec<(UserId, Role)> {
                    c.participants
                        .iter()
                        .map(|p| (p.uid.clone(), p.role))
                        .collect()
                };
                assert_eq!(uids(b), uids(&a.call), "the participants changed");
                b != &a.call
            }
            None => true,
        };
        check_effects(&a.call, &a.effects, changed, self.now);
        check_call(&a.call);
        self.calls.insert(id, a.call);
    }

    /// The exchange says what the machine has seen, nothing more or less.
    fn check_exchange(&self) {
        let mut live = 0;
        for (id, c) in &self.calls {
            if c.is_live() {
                live += 1;
                assert_eq!(self.ex.get(id), Some(c), "the exchange lost track of {id}");
                if ringing(c) {
                    assert!(
                        self.ex
                            .next_deadline()
                            .is_some_and(|t| t <= c.ring_deadline),
                        "{id} rings with no timer"
                    );
                }
            } else {
                assert!(
                    self.ex.get(id).is_none(),
                    "finished call {id} is still live"
                );
            }
        }
        for id in &self.gone {
            assert!(self.ex.get(id).is_none(), "undone call {id} is live");
        }
        assert_eq!(self.ex.live_count(), live);
        for u in USERS.iter().chain([&STRANGER]) {
            let uid = UserId::from(*u);
            let mine: BTreeSet<&SessionId> =
                self.ex.calls_of(&uid).map(|c| &c.session_id).collect();
            let expected: BTreeSet<&SessionId> = self
                .calls
                .values()
                .filter(|c| c.is_live() && c.participant(&uid).is_some())
                .map(|c| &c.session_id)
                .collect();
            assert_eq!(mine, expected, "calls of {uid}");
            if let Some(c) = self.ex.ongoing_call_of(&uid) {
                assert!(c.is_in_ongoing_call(&uid));
            }
        }
    }
}

fn actor_of(input: &Input) -> Option<&UserId> {
    match input {
        Input::Accept { user, .. } | Input::Reject { user, .. } | Input::End { user, .. } => {
            Some(user)
        }
        _ => None,
    }
}

fn ringing(c: &CallState) -> bool {
    c.participants
        .iter()
        .any(|p| p.state == ParticipantState::Ringing)
}

/// The user an audience is made of; `None` for a kind this checker doesn't know.
#[allow(unreachable_patterns, clippy::match_wildcard_for_single_variants)]
fn audience_user(a: &Audience) -> Option<&UserId> {
    match a {
        Audience::User(u) | Audience::UserExcept(u, _) => Some(u),
        _ => None,
    }
}

/// Persist first when anything changed and before any notification; every
/// notification to someone in the call.
fn check_effects(call: &CallState, effects: &[Effect], changed: bool, now: Millis) {
    let persist = effects.iter().position(|e| matches!(e, Effect::Persist));
    let notify = effects
        .iter()
        .position(|e| matches!(e, Effect::Notify { .. }));
    if changed {
        assert_eq!(
            persist,
            Some(0),
            "a change not persisted first: {effects:?}"
        );
    }
    if let Some(n) = notify {
        assert!(
            persist.is_some_and(|p| p < n),
            "a notification before persist: {effects:?}"
        );
    }
    for e in effects {
        if let Effect::Notify {
            to, participant, ..
        } = e
        {
            if let Some(u) = audience_user(to) {
                assert_ne!(u.as_str(), STRANGER, "sent to a stranger: {effects:?}");
                assert!(
                    call.participant(u).is_some(),
                    "{u} is not in the call and was sent {e:?}"
                );
            }
            if let Some(p) = participant {
                assert!(call.participant(p).is_some(), "about {p}, not in the call");
            }
        }
        if let Effect::ArmTimer { at } = e {
            assert!(*at >= now, "a timer in the past: {at:?}");
        }
    }
}

/// What holds of every call after every step.
fn check_call(c: &CallState) {
    let caller = c.participants.first().expect("a call has a caller");
    assert_eq!(caller.role, Role::Caller);
    assert!(c.participants[1..].iter().all(|p| p.role == Role::Callee));
    let uids: BTreeSet<&UserId> = c.participants.iter().map(|p| &p.uid).collect();
    assert_eq!(uids.len(), c.participants.len(), "someone is in twice");
    assert!(c.participant(&UserId::from(STRANGER)).is_none());
    let joined = c.joined_count();
    assert!(joined <= MAX_JOINED, "{joined} joined");
    for p in &c.participants {
        if p.state == ParticipantState::Joined {
            assert!(p.device.is_some(), "joined on no device");
        }
        assert!(c
            .history_status(&p.uid)
            .is_some_and(|s| s != Status::Initiated || c.is_live()));
        assert!(c.history_entry(&p.uid).is_some());
    }
    assert!(c.history_status(&UserId::from(STRANGER)).is_none());
    assert_ne!(c.status(), Status::Missed, "missed is not a call's status");
    if c.phase == Phase::Initiated {
        assert_eq!(caller.state, ParticipantState::Joined);
        assert_eq!(joined, 1, "only the caller is in a call that rings");
        assert!(ringing(c), "a call rings for nobody");
    }
    if c.phase == Phase::Ongoing {
        assert!(joined >= 2, "an ongoing call with {joined} in it");
        assert!(c.joined_at.is_some());
    }
    if !c.is_live() {
        assert!(c.participants.iter().all(|p| !matches!(
            p.state,
            ParticipantState::Joined | ParticipantState::Ringing
        )));
        assert!(c.ended_at.is_some());
    }
    let info = c.info();
    assert_eq!(info.status, c.status());
    assert_eq!(info.participants.len(), c.participants.len());
    round_trip(&info);
}
