//! The listener API (the seed SDK's five callbacks) and the event stream.

use futures_util::Stream;
use peal_proto::wire::{CallInfo, Event, EventKind, MediaSignal, Party, Presence};
use peal_proto::{DeviceId, ErrorCode, SessionId, UserId};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// Receives call events. Every method has an empty default; implement the ones
/// you need. Called on the SDK's event task in event order: return quickly.
pub trait CallListener: Send + Sync {
    /// A call is ringing this device.
    fn on_incoming_call_received(&self, _event: &Event) {}
    /// The callee accepted your call: join the media session.
    fn on_outgoing_call_accepted(&self, _event: &Event) {}
    /// Your call was rejected, answered busy, or not answered in time (`event.call.status` says which).
    fn on_outgoing_call_rejected(&self, _event: &Event) {}
    /// A call ringing here stopped: cancelled, answered or declined elsewhere, timed out (`event.reason`).
    fn on_incoming_call_cancelled(&self, _event: &Event) {}
    /// The other side ended the call.
    fn on_call_ended_message_received(&self, _event: &Event) {}
    /// Someone joined a group call you are in.
    fn on_participant_joined(&self, _event: &Event) {}
    /// Someone left a group call that goes on.
    fn on_participant_left(&self, _event: &Event) {}
}

/// Calls the listener method for `event`.
pub(crate) fn dispatch(l: &dyn CallListener, event: &Event) {
    match event.event {
        EventKind::IncomingCallReceived => l.on_incoming_call_received(event),
        EventKind::OutgoingCallAccepted => l.on_outgoing_call_accepted(event),
        EventKind::OutgoingCallRejected => l.on_outgoing_call_rejected(event),
        EventKind::IncomingCallCancelled => l.on_incoming_call_cancelled(event),
        EventKind::CallEndedMessageReceived => l.on_call_ended_message_received(event),
        EventKind::ParticipantJoined => l.on_participant_joined(event),
        EventKind::ParticipantLeft => l.on_participant_left(event),
    }
}

/// The state of the event connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// Connected and caught up.
    Connected,
    /// The connection dropped; the next attempt is in `retry_in_ms`.
    Reconnecting {
        attempt: u32,
        retry_in_ms: u64,
        why: String,
    },
    /// Back, with every missed event replayed (`replayed` of them).
    Resumed { replayed: usize },
    /// Back, too late for a replay: caught up from a snapshot of `live_calls`.
    Snapshot { live_calls: Vec<CallInfo> },
    /// The server no longer accepts our token; no more reconnects.
    SignedOut,
}

/// What [`crate::PealClient::events`] yields.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientEvent {
    Call(Event),
    Connection(ConnectionState),
    /// A watched user's presence (see [`crate::PealClient::watch_presence`]):
    /// sent when watching starts, after every reconnect, and on every change.
    Presence {
        uid: UserId,
        presence: Presence,
    },
    /// Someone new on the server (they joined with an invite): read the
    /// contacts again to show them.
    ContactAdded(Party),
    /// A media-negotiation message from another device of one of our calls
    /// (see [`crate::PealClient::send_media`]).
    Media {
        call: SessionId,
        from: UserId,
        from_device: DeviceId,
        signal: MediaSignal,
    },
    /// The server refused a frame we sent on the event socket (e.g. a media
    /// signal for a call we are not in: `not_found`).
    Refused {
        code: ErrorCode,
        message: String,
    },
}

/// A `Stream` of [`ClientEvent`]s; ends when the client is dropped.
#[derive(Debug)]
pub struct EventStream {
    pub(crate) rx: mpsc::UnboundedReceiver<ClientEvent>,
}

impl Stream for EventStream {
    type Item = ClientEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ClientEvent>> {
        self.rx.poll_recv(cx)
    }
}
