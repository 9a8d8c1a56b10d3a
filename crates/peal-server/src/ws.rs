//! The event WebSocket: one per device.
//!
//! Sends `hello`, then the catch-up the hub queued (a replay ending in
//! `resumed`, or a `snapshot`), then live events. Reads client frames (pings),
//! pings the client every heartbeat, and closes a connection that has been
//! silent for too long. Bad input closes only its own connection, with the
//! code RFC 6455 §7.4.1 gives it ([`close_for`]): malformed JSON or invalid
//! UTF-8 1007, binary 1003, oversize 1009, a protocol violation (unmasked
//! frame, reserved bits) 1002, a frame flood 1008.

use crate::auth::Auth;
use crate::error::ApiError;
use crate::hub::Frame;
use crate::AppState;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use peal_proto::ids::is_valid_id;
use peal_proto::limits::TokenBucket;
use peal_proto::limits::MAX_FRAME_BYTES;
use peal_proto::wire::{ClientFrame, ServerFrame, MAX_WATCHED, PROTOCOL_VERSION};
use peal_proto::{ErrorCode, Millis};
use serde::Deserialize;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How long a write to a client may take before the client is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Events queued for one socket before a slow client is dropped (it resumes).
const QUEUE: usize = 1024;

#[derive(Deserialize)]
pub struct EventsQuery {
    since: Option<u64>,
    epoch: Option<String>,
}

pub async fn events(
    State(s): State<AppState>,
    a: Auth,
    q: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|_| ApiError::bad_request("since must be a whole number"))?;
    let permit = s.connections.clone().try_acquire_owned().map_err(|_| {
        ApiError::rate_limited("the server is at its connection limit; retry later", 5)
    })?;
    let since = match (q.since, q.epoch) {
        (Some(seq), Some(epoch)) => Some((seq, epoch)),
        (Some(_), None) | (None, Some(_)) | (None, None) => None,
    };
    Ok(ws
        // tungstenite's defaults (128 KiB read buffer, allocated and zeroed
        // up front) cost 135 KB of RSS per idle socket; frames here are
        // small, and a larger one still grows the buffer as it arrives.
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| async move {
            session(socket, s, a, since).await;
            drop(permit);
        }))
}

/// The socket's read buffer (see `events`).
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// Frames a client may send per [`FRAME_WINDOW_MS`] (a burst of that many, refilled steadily).
const FRAMES_PER_WINDOW: u32 = 60;
const FRAME_WINDOW_MS: i64 = 3_000;

/// Sends within [`WRITE_TIMEOUT`]; `false` when the client is gone or not reading.
async fn send<S>(sink: &mut S, msg: Message) -> bool
where
    S: futures_util::Sink<Message> + Unpin,
{
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, sink.send(msg)).await,
        Ok(Ok(()))
    )
}

fn text(f: &ServerFrame) -> Message {
    Message::Text(serde_json::to_string(f).unwrap_or_default().into())
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

/// The close frame for a failed read (RFC 6455 §7.4.1), or `None` when the
/// connection is already gone and there is nobody to tell.
pub fn close_for(e: &tungstenite::Error) -> Option<(u16, &'static str)> {
    use tungstenite::error::ProtocolError as P;
    use tungstenite::Error as E;
    match e {
        E::Utf8(_) => Some((1007, "text frame is not valid UTF-8")),
        E::Capacity(_) => Some((1009, "frame too large")),
        E::Protocol(P::ResetWithoutClosingHandshake) => None,
        E::Protocol(_) => Some((1002, "protocol error")),
        E::ConnectionClosed | E::AlreadyClosed | E::Io(_) => None,
        _ => Some((1011, "unexpected error")),
    }
}

async fn session(socket: WebSocket, s: AppState, a: Auth, since: Option<(u64, String)>) {
    let (mut sink, mut stream) = socket.split();
    let user = a.owner.user.uid;
    let device = a.owner.device_id;
    let hello = ServerFrame::Hello {
        protocol: PROTOCOL_VERSION,
        device_id: device.clone(),
        epoch: s.hub.epoch().to_owned(),
        heartbeat_ms: s.heartbeat.as_millis() as u64,
    };
    if !send(&mut sink, text(&hello)).await {
        return;
    }
    let (tx, mut rx) = mpsc::channel::<Frame>(QUEUE);
    let Some((conn, _catchup)) = s
        .switchboard
        .attach(user.clone(), device.clone(), since, tx)
        .await
    else {
        let _ = send(&mut sink, close(1012, "server restarting")).await;
        return;
    };
    let mut shutdown = s.shutdown.clone();
    let mut signed_out = s.signed_out.subscribe();
    let mut heartbeat = tokio::time::interval(s.heartbeat);
    heartbeat.tick().await;
    let mut last_rx = Instant::now();
    // The frame budget runs on this connection's own elapsed time.
    let opened = Instant::now();
    let mut frames = TokenBucket::new(FRAMES_PER_WINDOW, FRAME_WINDOW_MS, Millis(0));
    let closing: Option<Message> = loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(frame) => {
                    if !send(&mut sink, Message::Text(frame.as_ref().into())).await {
                        break None;
                    }
                }
                // Replaced by a newer connection of this device, or too slow to keep up.
                None => break Some(close(4000, "reconnect")),
            },
            incoming = stream.next() => {
                last_rx = Instant::now();
                let since_start = Millis(i64::try_from(opened.elapsed().as_millis()).unwrap_or(i64::MAX));
                if matches!(incoming, Some(Ok(Message::Text(_) | Message::Binary(_)))) && !frames.try_take(since_start) {
                    let message = format!("more than {FRAMES_PER_WINDOW} frames in {} s", FRAME_WINDOW_MS / 1000);
                    let _ = send(&mut sink, text(&ServerFrame::Error { code: ErrorCode::RateLimited, message })).await;
                    break Some(close(1008, "too many frames"));
                }
                match incoming {
                    Some(Ok(Message::Text(t))) => match serde_json::from_str::<ClientFrame>(t.as_str()) {
                        Ok(ClientFrame::Ping { nonce }) => {
                            if !send(&mut sink, text(&ServerFrame::Pong { nonce })).await {
                                break None;
                            }
                        }
                        Ok(ClientFrame::WatchPresence { uids }) => {
                            if uids.len() > MAX_WATCHED || uids.iter().any(|u| !is_valid_id(u.as_str())) {
                                let message = format!("watch at most {MAX_WATCHED} valid user ids");
                                let refusal = ServerFrame::Error { code: ErrorCode::BadRequest, message };
                                if !send(&mut sink, text(&refusal)).await {
                                    break None;
                                }
                            } else {
                                s.switchboard.watch(device.clone(), uids).await;
                            }
                        }
                        Ok(ClientFrame::Media { call, to, to_device, signal }) => {
                            s.switchboard.relay(user.clone(), device.clone(), call, to, to_device, signal).await;
                        }
                        Err(e) => {
                            let msg = format!("malformed frame: {e}");
                            let _ = send(&mut sink, text(&ServerFrame::Error { code: ErrorCode::BadRequest, message: msg })).await;
                            break Some(close(1007, "malformed frame"));
                        }
                    },
                    Some(Ok(Message::Binary(_))) => break Some(close(1003, "text frames only")),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) | None => break None,
                    // Oversize, bad UTF-8 or protocol errors: this connection only.
                    Some(Err(e)) => {
                        let e = e.into_inner();
                        tracing::debug!(error = %e, "event socket read failed");
                        break e
                            .downcast_ref::<tungstenite::Error>()
                            .and_then(close_for)
                            .map(|(code, reason)| close(code, reason));
                    }
                }
            }
            _ = heartbeat.tick() => {
                if last_rx.elapsed() >= s.dead_after {
                    tracing::debug!(device = %device, "no heartbeat answer; dropping");
                    break None;
                }
                if !send(&mut sink, Message::Ping(Vec::new().into())).await {
                    break None;
                }
            }
            _ = shutdown.changed() => break Some(close(1012, "server restarting")),
            gone = signed_out.recv() => match gone {
                Ok(hash) if hash == a.token_hash => break Some(close(4001, "signed out")),
                Ok(_) => {}
                // Missed some: ask the store whether ours is still good.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    if !matches!(s.store.token_owner(a.token_hash.clone()).await, Ok(Some(_))) {
                        break Some(close(4001, "signed out"));
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {}
            },
        }
    };
    if let Some(msg) = closing {
        let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(msg)).await;
        // The closing handshake: read and drop what the client had already
        // sent until its Close comes back. Closing a socket with unread data
        // resets it, and a reset discards our last frames (the error that
        // says why) before the client has read them.
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while let Some(Ok(m)) = stream.next().await {
                if matches!(m, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
    s.switchboard.detach(device, conn).await;
}
