//! The echo bot: answers every call to its user after a delay and sends each
//! caller its own audio and video back, undecoded. Behind the `echo` demo
//! contact (`peal echo-bot`, `make run`, the desktop app's "this computer").

use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt;
use peal_client::{ClientEvent, EventKind, PealClient};
use peal_proto::SessionId;

use crate::{join_session, MediaEvent, SessionSettings, Sources};

/// One echoed call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EchoReport {
    pub session_id: SessionId,
    pub video_frames: u64,
    pub audio_frames: u64,
}

/// Serves calls one at a time (the server tells a second caller `busy`)
/// until `stop` resolves or the client's event stream ends; on stop, a call
/// in progress is ended for the caller.
pub async fn serve_echo(
    client: &PealClient,
    answer_after: Duration,
    stop: impl Future<Output = ()>,
    mut on_call: impl FnMut(EchoReport),
) {
    let mut events = client.events();
    tokio::pin!(stop);
    loop {
        let call = loop {
            tokio::select! {
                e = events.next() => match e {
                    Some(ClientEvent::Call(e)) if e.event == EventKind::IncomingCallReceived => break e.call,
                    Some(_) => {}
                    None => return,
                },
                () = &mut stop => return,
            }
        };
        tokio::select! {
            () = tokio::time::sleep(answer_after) => {}
            () = &mut stop => return,
        }
        let accepted = match client.accept_call(&call.session_id).await {
            Ok(c) if c.status.is_live() => c,
            Ok(_) | Err(_) => continue,
        };
        let settings = SessionSettings::new(accepted.call_type, Sources::Echo);
        let session = match join_session(client, &accepted, settings).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "echo: media did not start; hanging up");
                let _ = client.end_call(&call.session_id).await;
                continue;
            }
        };
        let Some(mut media_events) = session.events() else {
            continue;
        };
        loop {
            tokio::select! {
                ev = media_events.recv() => match ev {
                    Some(MediaEvent::Ended { .. }) | None => break,
                    Some(_) => {}
                },
                () = &mut stop => {
                    let _ = session.end_call().await;
                    return;
                }
            }
        }
        let st = session.stats();
        on_call(EchoReport {
            session_id: call.session_id.clone(),
            video_frames: st.received.video_frames,
            audio_frames: st.received.audio_frames,
        });
    }
}
