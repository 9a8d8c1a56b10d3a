//! The event socket task: connect, catch up (replay or snapshot), deliver
//! events in order exactly once, watch the heartbeat, reconnect with backoff.

use crate::backoff;
use crate::client::{send, Inner};
use crate::error::ClientError;
use crate::listener::{ClientEvent, ConnectionState};
use crate::resume::{collapse_replay, end_event, reconcile};
use futures_util::{SinkExt, StreamExt};
use peal_proto::limits::MAX_FRAME_BYTES;
use peal_proto::wire::{CallResponse, ClientFrame, Event, EventKind, ServerFrame};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

type Ready = oneshot::Sender<Result<(), ClientError>>;
type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;
type WsRead = futures_util::stream::SplitStream<Ws>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the last connection left off: the last seq delivered and the server epoch.
#[derive(Default)]
struct Cursor {
    seq: u64,
    epoch: Option<String>,
}

/// Starts the task; the receiver says when the first catch-up is done (or failed).
pub(crate) fn spawn(
    inner: &Arc<Inner>,
) -> (JoinHandle<()>, oneshot::Receiver<Result<(), ClientError>>) {
    let (tx, rx) = oneshot::channel();
    let weak = Arc::downgrade(inner);
    (tokio::spawn(run(weak, tx)), rx)
}

async fn run(weak: Weak<Inner>, ready: Ready) {
    let mut ready = Some(ready);
    let mut cursor = Cursor::default();
    let mut attempt: u32 = 0;
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let result = session(&inner, &mut cursor, &mut ready).await;
        let why = match result {
            Ok(established) => {
                if established {
                    attempt = 0;
                }
                "connection closed".to_owned()
            }
            Err(ClientError::Unauthorized(m)) => {
                if let Some(tx) = ready.take() {
                    let _ = tx.send(Err(ClientError::Unauthorized(m)));
                }
                inner.emit(ClientEvent::Connection(ConnectionState::SignedOut));
                return;
            }
            Err(e) => {
                // The first connection failing is the caller's error, not a retry loop.
                if let Some(tx) = ready.take() {
                    let _ = tx.send(Err(e));
                    return;
                }
                e.to_string()
            }
        };
        let delay = backoff::delay(attempt);
        inner.emit(ClientEvent::Connection(ConnectionState::Reconnecting {
            attempt: attempt + 1,
            retry_in_ms: delay.as_millis() as u64,
            why,
        }));
        drop(inner);
        attempt = attempt.saturating_add(1);
        tokio::time::sleep(delay).await;
    }
}

async fn open(inner: &Inner, cursor: &Cursor) -> Result<Ws, ClientError> {
    let ws_base = if let Some(rest) = inner.base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else {
        format!("ws://{}", inner.base.trim_start_matches("http://"))
    };
    let mut url = format!("{ws_base}/v1/events");
    if let Some(epoch) = &cursor.epoch {
        url.push_str(&format!("?since={}&epoch={epoch}", cursor.seq));
    }
    let mut req = url
        .into_client_request()
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    let auth = HeaderValue::from_str(&format!("Bearer {}", inner.token))
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    req.headers_mut().insert("authorization", auth);
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES));
    match tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio_tungstenite::connect_async_tls_with_config(
            req,
            Some(config),
            true,
            Some(tokio_tungstenite::Connector::Rustls(inner.tls.clone())),
        ),
    )
    .await
    {
        Err(_) => Err(ClientError::Unreachable(
            "event connection timed out".into(),
        )),
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp)))
            if resp.status().as_u16() == 401 =>
        {
            Err(ClientError::Unauthorized(
                "the server refused our token".into(),
            ))
        }
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp))) => Err(
            ClientError::Unreachable(format!("event connection refused: HTTP {}", resp.status())),
        ),
        Ok(Err(e)) => Err(ClientError::Unreachable(e.to_string())),
    }
}

/// Reads one frame within `patience`; `None` when the connection is over.
async fn next_frame(
    ws: &mut WsRead,
    patience: Duration,
) -> Result<Option<ServerFrame>, ClientError> {
    loop {
        let msg = match tokio::time::timeout(patience, ws.next()).await {
            Err(_) => {
                return Err(ClientError::Unreachable(
                    "no heartbeat from the server".into(),
                ))
            }
            Ok(None) | Ok(Some(Err(_))) => return Ok(None),
            Ok(Some(Ok(m))) => m,
        };
        match msg {
            Message::Text(t) => match serde_json::from_str::<ServerFrame>(t.as_str()) {
                Ok(f) => return Ok(Some(f)),
                Err(e) => {
                    tracing::warn!(error = %e, "ignoring a frame this SDK does not understand")
                }
            },
            Message::Close(_) => return Ok(None),
            Message::Ping(_) | Message::Pong(_) | Message::Binary(_) | Message::Frame(_) => {}
        }
    }
}

/// One connection, start to end. `Ok(true)` if it caught up before ending.
async fn session(
    inner: &Arc<Inner>,
    cursor: &mut Cursor,
    ready: &mut Option<Ready>,
) -> Result<bool, ClientError> {
    let (mut sink, mut ws) = open(inner, cursor).await?.split();
    let hello_patience = Duration::from_secs(10);
    let (epoch, heartbeat_ms) = match next_frame(&mut ws, hello_patience).await? {
        Some(ServerFrame::Hello {
            epoch,
            heartbeat_ms,
            ..
        }) => (epoch, heartbeat_ms),
        Some(other) => {
            return Err(ClientError::Protocol(format!(
                "expected hello, got {other:?}"
            )))
        }
        None => {
            return Err(ClientError::Unreachable(
                "connection closed before hello".into(),
            ))
        }
    };
    let patience = Duration::from_millis(heartbeat_ms.clamp(100, 120_000) * 3);
    if cursor.epoch.as_deref() != Some(epoch.as_str()) {
        // Another server life: our seqs mean nothing there.
        cursor.seq = 0;
    }
    cursor.epoch = Some(epoch);

    // The outbox is open before anyone hears we are connected, so a frame
    // sent right after `connect` returns waits in it instead of failing; it
    // goes out once caught up. (Installed after the catch-up, a media signal
    // sent at once was refused "not connected" one run in a few.)
    let (out_tx, mut out_rx) = tokio::sync::mpsc::unbounded_channel::<ClientFrame>();
    let watching = inner.set_outbox(Some(out_tx));

    // Catch up. The connection state is reported first, then what was missed.
    let mut replay: Vec<(u64, Event)> = Vec::new();
    let first = ready.is_some();
    let report = |state: ConnectionState, ready: &mut Option<Ready>| {
        if let Some(tx) = ready.take() {
            let _ = tx.send(Ok(()));
        }
        inner.emit(ClientEvent::Connection(if first {
            ConnectionState::Connected
        } else {
            state
        }));
    };
    loop {
        match next_frame(&mut ws, patience).await? {
            Some(ServerFrame::Event { seq, event }) => replay.push((seq, event)),
            Some(ServerFrame::Resumed { last_seq }) => {
                let replayed = replay.len();
                report(ConnectionState::Resumed { replayed }, ready);
                for (seq, e) in collapse_replay(std::mem::take(&mut replay)) {
                    if seq > cursor.seq {
                        inner.emit(ClientEvent::Call(e));
                    }
                }
                cursor.seq = cursor.seq.max(last_seq);
                break;
            }
            Some(ServerFrame::Snapshot { last_seq, calls }) => {
                cursor.seq = last_seq;
                report(
                    ConnectionState::Snapshot {
                        live_calls: calls.clone(),
                    },
                    ready,
                );
                catch_up_from_snapshot(inner, &calls).await;
                break;
            }
            Some(ServerFrame::Error { code, message }) => {
                tracing::warn!(%code, %message, "server error frame")
            }
            Some(ServerFrame::ContactAdded { contact }) => {
                inner.emit(ClientEvent::ContactAdded(contact))
            }
            // Media signals during catch-up belong to a negotiation that restarts anyway.
            Some(
                ServerFrame::Hello { .. }
                | ServerFrame::Pong { .. }
                | ServerFrame::Presence { .. }
                | ServerFrame::Media { .. },
            ) => {}
            None => {
                return Err(ClientError::Unreachable(
                    "connection closed while catching up".into(),
                ))
            }
        }
    }

    // Live: frames from the server, and frames the application asks us to send.
    if !watching.is_empty() {
        let _ = send_frame(&mut sink, &ClientFrame::WatchPresence { uids: watching }).await;
    }
    let ended = live(inner, cursor, &mut sink, &mut ws, &mut out_rx, patience).await;
    inner.set_outbox(None);
    ended
}

async fn send_frame(
    sink: &mut futures_util::stream::SplitSink<Ws, Message>,
    frame: &ClientFrame,
) -> Result<(), ClientError> {
    let text = serde_json::to_string(frame).map_err(|e| ClientError::Protocol(e.to_string()))?;
    sink.send(Message::Text(text.into()))
        .await
        .map_err(|e| ClientError::Unreachable(e.to_string()))
}

async fn live(
    inner: &Arc<Inner>,
    cursor: &mut Cursor,
    sink: &mut futures_util::stream::SplitSink<Ws, Message>,
    ws: &mut WsRead,
    out_rx: &mut tokio::sync::mpsc::UnboundedReceiver<ClientFrame>,
    patience: Duration,
) -> Result<bool, ClientError> {
    loop {
        let next = tokio::select! {
            f = next_frame(ws, patience) => f,
            Some(out) = out_rx.recv() => {
                if send_frame(sink, &out).await.is_err() {
                    return Ok(true);
                }
                continue;
            }
        };
        match next {
            Ok(Some(ServerFrame::Presence { uid, presence })) => {
                inner.emit(ClientEvent::Presence { uid, presence })
            }
            Ok(Some(ServerFrame::Event { seq, event })) => {
                if seq > cursor.seq {
                    cursor.seq = seq;
                    inner.emit(ClientEvent::Call(event));
                }
            }
            Ok(Some(ServerFrame::Error { code, message })) => {
                tracing::warn!(%code, %message, "server error frame");
                inner.emit(ClientEvent::Refused { code, message });
            }
            Ok(Some(ServerFrame::ContactAdded { contact })) => {
                inner.emit(ClientEvent::ContactAdded(contact))
            }
            Ok(Some(ServerFrame::Media {
                call,
                from,
                from_device,
                signal,
            })) => inner.emit(ClientEvent::Media {
                call,
                from,
                from_device,
                signal,
            }),
            Ok(Some(
                ServerFrame::Hello { .. }
                | ServerFrame::Resumed { .. }
                | ServerFrame::Snapshot { .. }
                | ServerFrame::Pong { .. },
            )) => {}
            Ok(None) => return Ok(true),
            Err(_) => return Ok(true),
        }
    }
}

/// Rings for calls we never heard ring, and reports the end of calls that vanished.
async fn catch_up_from_snapshot(inner: &Arc<Inner>, calls: &[peal_proto::wire::CallInfo]) {
    let known = inner
        .known
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let r = reconcile(&inner.user.uid, &known, calls);
    for id in r.gone {
        let Some(k) = known.get(&id) else { continue };
        let req = inner
            .http
            .get(inner.url(&format!("/v1/calls/{id}")))
            .bearer_auth(&inner.token);
        match send::<CallResponse>(req).await {
            Ok(resp) => {
                if let Some(e) = end_event(k, resp.call) {
                    inner.emit(ClientEvent::Call(e));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, session = %id, "could not look up a call that ended while disconnected");
                inner
                    .known
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
            }
        }
    }
    for call in r.ring {
        inner.emit(ClientEvent::Call(Event {
            event: EventKind::IncomingCallReceived,
            call,
            reason: None,
            participant: None,
        }));
    }
}
