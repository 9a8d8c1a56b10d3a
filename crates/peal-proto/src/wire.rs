//! What crosses the network, as JSON.
//!
//! REST bodies, the event stream's frames, and the call object that both carry.
//! Field names follow the `peal` CLI contract in ARCHITECTURE.md; add fields,
//! never rename them.

use crate::error::ErrorCode;
use crate::ids::{DeviceId, GroupId, SessionId, UserId};
use crate::time::Millis;
use serde::{Deserialize, Serialize};

/// Version of the event-stream protocol, sent in [`ServerFrame::Hello`].
pub const PROTOCOL_VERSION: u32 = 1;

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallType {
    Audio,
    Video,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiverType {
    User,
    Group,
}

/// The eight statuses of the seed. A call's own status is never `missed`:
/// that is how a callee's history labels a call they did not answer.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Initiated,
    Ongoing,
    Busy,
    Rejected,
    Cancelled,
    Ended,
    Missed,
    Unanswered,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Initiated => "initiated",
            Status::Ongoing => "ongoing",
            Status::Busy => "busy",
            Status::Rejected => "rejected",
            Status::Cancelled => "cancelled",
            Status::Ended => "ended",
            Status::Missed => "missed",
            Status::Unanswered => "unanswered",
        }
    }

    /// Whether the call is still live (ringing or in progress).
    pub fn is_live(self) -> bool {
        match self {
            Status::Initiated | Status::Ongoing => true,
            Status::Busy
            | Status::Rejected
            | Status::Cancelled
            | Status::Ended
            | Status::Missed
            | Status::Unanswered => false,
        }
    }
}

/// The status a rejecting party asks for (`reject_call(session, status)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectStatus {
    /// The callee declines.
    Rejected,
    /// The callee declines as busy; a 1:1 call becomes `busy`.
    Busy,
    /// The caller gives up before an answer (same as `cancel_call`).
    Cancelled,
}

/// A user as the call object shows them.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    pub uid: UserId,
    pub name: String,
}

/// Whom a call was placed to: `{"uid", "name"}` for a user, `{"guid", "name"}` for a group.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Receiver {
    User { uid: UserId, name: String },
    Group { guid: GroupId, name: String },
}

impl Receiver {
    /// The receiver's id, whether a uid or a guid.
    pub fn id(&self) -> &str {
        match self {
            Receiver::User { uid, .. } => uid.as_str(),
            Receiver::Group { guid, .. } => guid.as_str(),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Receiver::User { name, .. } | Receiver::Group { name, .. } => name,
        }
    }
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Caller,
    Callee,
}

/// Where one participant stands in a call.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParticipantState {
    /// A callee whose devices are ringing.
    Ringing,
    /// In the call (the caller from the start; a callee once they accept).
    Joined,
    /// A callee who declined.
    Declined,
    /// A callee who declined as busy.
    DeclinedBusy,
    /// A callee already in another call when this one was placed; never rang.
    Busy,
    /// Was in the call and left (ended, hung up, cancelled).
    Left,
    /// A callee still ringing when the ringing stopped.
    Missed,
}

/// One participant as the call object shows them.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantInfo {
    pub uid: UserId,
    pub name: String,
    pub role: Role,
    pub state: ParticipantState,
}

/// The call object (the seed's `Call`), as events, responses and the CLI show it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallInfo {
    pub session_id: SessionId,
    pub status: Status,
    pub call_type: CallType,
    pub receiver_type: ReceiverType,
    pub initiator: Party,
    pub receiver: Receiver,
    pub initiated_at: Millis,
    pub joined_at: Option<Millis>,
    pub ended_at: Option<Millis>,
    /// When an unanswered ring stops (server time).
    pub ring_deadline: Millis,
    pub participants: Vec<ParticipantInfo>,
}

/// The events of the seed's call listener, plus group extras.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    IncomingCallReceived,
    OutgoingCallAccepted,
    OutgoingCallRejected,
    IncomingCallCancelled,
    CallEndedMessageReceived,
    /// Someone else joined a group call you are in.
    ParticipantJoined,
    /// Someone left a group call that goes on.
    ParticipantLeft,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::IncomingCallReceived => "incoming_call_received",
            EventKind::OutgoingCallAccepted => "outgoing_call_accepted",
            EventKind::OutgoingCallRejected => "outgoing_call_rejected",
            EventKind::IncomingCallCancelled => "incoming_call_cancelled",
            EventKind::CallEndedMessageReceived => "call_ended_message_received",
            EventKind::ParticipantJoined => "participant_joined",
            EventKind::ParticipantLeft => "participant_left",
        }
    }
}

/// Why an event happened, where the event alone doesn't say.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The caller cancelled.
    Cancelled,
    /// Another of your devices answered.
    AnsweredElsewhere,
    /// Another of your devices declined.
    DeclinedElsewhere,
    /// The callee declined.
    Rejected,
    /// The callee was busy.
    Busy,
    /// Nobody answered before the ring timeout.
    Timeout,
    /// The call ended while you were still ringing (a group call that emptied).
    CallEnded,
    /// A participant hung up.
    HungUp,
    /// A device lost its connection for longer than the grace period.
    ConnectionLost,
    /// Another of your devices cancelled the call you placed.
    CancelledElsewhere,
    /// Another of your devices ended (or left) the call.
    EndedElsewhere,
}

/// One event about one call, to one device.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub event: EventKind,
    pub call: CallInfo,
    pub reason: Option<Reason>,
    /// The participant an event is about (who joined or left), when not the receiver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<UserId>,
}

/// Server → client frames on the event WebSocket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// First frame on every connection.
    Hello {
        protocol: u32,
        device_id: DeviceId,
        /// Changes when the server loses the device's event buffer (restart); a resume
        /// across epochs gets a snapshot.
        epoch: String,
        /// The server pings this often; the client treats 3× this of silence as a dead link.
        heartbeat_ms: u64,
    },
    /// An event, numbered per device, gap-free.
    Event {
        seq: u64,
        #[serde(flatten)]
        event: Event,
    },
    /// Sent after the missed events of a resume have been replayed.
    Resumed { last_seq: u64 },
    /// Sent instead of a replay when one is impossible (first connection, too late, new epoch):
    /// every live call of this device's user. Events continue after `last_seq`.
    Snapshot { last_seq: u64, calls: Vec<CallInfo> },
    /// Answer to [`ClientFrame::Ping`].
    Pong { nonce: u64 },
    /// A watched user's presence, sent when watching starts and whenever it
    /// changes. Not numbered: it is state, re-sent after every (re)connect's
    /// `watch_presence`, not replayed.
    Presence { uid: UserId, presence: Presence },
    /// A refusal of a client frame; fatal ones are followed by a close.
    Error { code: ErrorCode, message: String },
    /// Someone joined the server (with an invite): every connected device
    /// hears it, so contact lists show them without a restart. Not numbered:
    /// the contact list is state, read again at every sign-in.
    ContactAdded { contact: Party },
    /// A media-negotiation message from another device in one of this user's
    /// calls. Not numbered and not replayed: a peer that misses one renegotiates.
    Media {
        call: SessionId,
        from: UserId,
        from_device: DeviceId,
        signal: MediaSignal,
    },
}

/// Media negotiation between two devices of one call (offer/answer, trickle
/// ICE, mute state, leaving). The server relays it between participants only,
/// in the order each sender sent it; it never reads the SDP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MediaSignal {
    /// "My media session is up": sent to each joined peer when a session
    /// starts. Of each pair of users, the lower user id offers; it answers a
    /// hello with a fresh offer unless it already has a connected link.
    Hello,
    /// A session description offer; `restart` when it restarts ICE. `gen`
    /// numbers the sender's offers to this peer; the answer echoes it.
    Offer {
        sdp: String,
        #[serde(default)]
        restart: bool,
        #[serde(default)]
        gen: u32,
    },
    Answer {
        sdp: String,
        #[serde(default)]
        gen: u32,
    },
    /// One trickled ICE candidate (`a=candidate:` attribute text).
    Ice {
        candidate: String,
        #[serde(default)]
        sdp_mid: Option<String>,
        #[serde(default)]
        sdp_mline_index: Option<u16>,
    },
    /// The sender's current media state, sent on change and after connecting.
    State {
        audio_muted: bool,
        video_enabled: bool,
    },
    /// The sender lost video from the receiver and can't decode until a keyframe.
    KeyframeRequest,
    /// The sender closed its peer connection with the receiver.
    Bye,
}

/// `GET /v1/ice-servers`: the STUN/TURN servers to gather with, TURN ones with
/// short-lived credentials in the TURN REST form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServers {
    pub ice_servers: Vec<IceServer>,
    /// When the TURN credentials stop being accepted (absent without TURN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Millis>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Client → server frames on the event WebSocket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Application-level liveness probe; answered by [`ServerFrame::Pong`].
    Ping { nonce: u64 },
    /// Replaces the set of users whose presence this connection hears
    /// ([`MAX_WATCHED`] at most); their current presence follows at once.
    WatchPresence { uids: Vec<UserId> },
    /// Relays `signal` to `to` in `call`: to `to_device` when given (a device
    /// still ringing, for pre-connect, or the one a signal came from), else to
    /// the device `to` is in the call with. Refused with `not_found` unless
    /// both sides are participants of that live call.
    Media {
        call: SessionId,
        to: UserId,
        #[serde(default)]
        to_device: Option<DeviceId>,
        signal: MediaSignal,
    },
}

/// Most users one connection may watch.
pub const MAX_WATCHED: usize = 1000;

/// `POST /v1/login`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRequest {
    pub uid: UserId,
    pub password: String,
    /// The device's name; the same name is the same device.
    pub device: String,
}

/// `POST /v1/join`: creates an account with an invite code and signs its
/// first device in (answered with a [`LoginResponse`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    /// The code from the `peal:join?...&invite=CODE` link.
    pub invite: String,
    /// The user id the invited person picks.
    pub uid: UserId,
    /// Their name as others see it.
    pub name: String,
    pub password: String,
    /// The device's name, as in [`LoginRequest`].
    pub device: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginResponse {
    pub token: String,
    pub device_id: DeviceId,
    pub user: Party,
}

/// `POST /v1/calls`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitiateRequest {
    pub receiver: String,
    pub receiver_type: ReceiverType,
    pub call_type: CallType,
    /// Ring timeout for this call in seconds (5–180); the server default when absent.
    #[serde(default)]
    pub timeout: Option<u32>,
}

/// `POST /v1/calls/{id}/reject`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectRequest {
    pub status: RejectStatus,
}

/// `{"call": ...}`, the answer to every call action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallResponse {
    pub call: CallInfo,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Incoming,
    Outgoing,
}

/// One row of `GET /v1/history`: a call from one user's point of view.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub session_id: SessionId,
    /// This user's view: a callee who never answered sees `missed`.
    pub status: Status,
    pub direction: Direction,
    /// The other side: the caller for incoming calls, the receiver (uid or guid) for outgoing ones.
    pub peer: String,
    pub peer_name: String,
    pub receiver_type: ReceiverType,
    pub call_type: CallType,
    pub initiated_at: Millis,
    pub joined_at: Option<Millis>,
    pub ended_at: Option<Millis>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    Online,
    InCall,
    Offline,
}

/// One row of `GET /v1/contacts`.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub uid: UserId,
    pub name: String,
    pub presence: Presence,
}

/// One row of `GET /v1/devices` (and the answer of `POST
/// /v1/devices/{id}/sign-out`): a device this user has signed in on, newest
/// sign-in first.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub device_id: DeviceId,
    /// The name it signs in with (the desktop app: its host name and a
    /// suffix of its own; the CLI: `--device`).
    pub name: String,
    /// Its first sign-in.
    pub created_at: Millis,
    /// Its newest sign-in that is still valid; none: signed out.
    pub signed_in_at: Option<Millis>,
    /// The device asking.
    pub current: bool,
}

/// Most devices `GET /v1/devices` lists.
pub const MAX_DEVICES_LISTED: u32 = 200;

/// One row of `GET /v1/groups`: a group you belong to.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInfo {
    pub guid: GroupId,
    pub name: String,
    pub members: Vec<Party>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receiver_serializes_as_uid_or_guid() {
        let u = Receiver::User {
            uid: "bob".into(),
            name: "Bob".into(),
        };
        assert_eq!(
            serde_json::to_string(&u).unwrap(),
            r#"{"uid":"bob","name":"Bob"}"#
        );
        let g = Receiver::Group {
            guid: "team".into(),
            name: "Team".into(),
        };
        assert_eq!(
            serde_json::to_string(&g).unwrap(),
            r#"{"guid":"team","name":"Team"}"#
        );
        assert_eq!(
            serde_json::from_str::<Receiver>(r#"{"guid":"team","name":"Team"}"#).unwrap(),
            g
        );
    }

    #[test]
    fn unknown_client_frame_is_an_error_not_a_panic() {
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"launch_missiles"}"#).is_err());
        assert!(serde_json::from_str::<ClientFrame>("{").is_err());
        assert_eq!(
            serde_json::from_str::<ClientFrame>(r#"{"type":"ping","nonce":7}"#).unwrap(),
            ClientFrame::Ping { nonce: 7 }
        );
    }
}
