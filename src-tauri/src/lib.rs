//! The desktop app's Tauri layer: commands that adapt to `peal-client` and
//! `peal-media`, and what happens reaches the page over channels, in order.
//! No call logic lives here: the server decides every call's fate, the SDK
//! reports it, this layer passes it on.
//!
//! # Layout
//! - this file: the commands and the app state.
//! - [`local`]: "this computer" — peal-server embedded, with the Echo contact.

pub mod local;

use std::sync::Arc;

use peal_client::{
    Call, CallInfo, CallType, ClientConfig, ClientError, ClientEvent, PealClient, ReceiverType,
    RejectStatus,
};
use peal_media::{CallSession, MediaError, SessionSettings, Sources};
use peal_proto::wire::{Contact, HistoryEntry, Status};
use peal_proto::SessionId;
use serde::Serialize;
use tauri::ipc::{Channel, InvokeResponseBody};
use tauri::{Manager, State};
use tokio::sync::Mutex;

/// An error the page can show: a stable code and a sentence.
#[derive(Debug, Clone, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct UiError {
    pub code: String,
    pub message: String,
}

impl UiError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        UiError {
            code: code.to_owned(),
            message: message.into(),
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        UiError::new("internal", e.to_string())
    }

    fn not_signed_in() -> Self {
        UiError::new("not_signed_in", "sign in first")
    }
}

impl From<ClientError> for UiError {
    fn from(e: ClientError) -> Self {
        let code = e
            .code()
            .map(|c| c.to_string())
            .unwrap_or_else(|| "unreachable".to_owned());
        UiError::new(&code, e.to_string())
    }
}

impl From<MediaError> for UiError {
    fn from(e: MediaError) -> Self {
        UiError::new("media_unavailable", e.to_string())
    }
}

/// Who is signed in, as the page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Me {
    pub uid: String,
    pub name: String,
    pub server: String,
    pub local: bool,
}

/// What reaches the page on the events channel, in the order it happened.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum UiEvent {
    /// A call event (the SDK's, unchanged).
    Call { event: Box<peal_client::Event> },
    /// The signaling connection: `connected`, `reconnecting`, `signed_out`.
    Connection { state: String },
    /// A media event of the current call: `connected`, `reconnecting`, `ended`...
    Media { event: String },
    /// Something the user should know that is not an error (no camera, …).
    Notice { message: String },
}

struct Signed {
    client: PealClient,
    me: Me,
    _local: Option<local::Local>,
    media: Option<Arc<CallSession>>,
}

/// The app's state: one signed-in account, the page's channels.
#[derive(Default)]
pub struct AppState {
    signed: Mutex<Option<Signed>>,
    events: Mutex<Option<Channel<UiEvent>>>,
    video: Mutex<Option<Channel<InvokeResponseBody>>>,
}

impl AppState {
    async fn client(&self) -> Result<PealClient, UiError> {
        self.signed
            .lock()
            .await
            .as_ref()
            .map(|s| s.client.clone())
            .ok_or_else(UiError::not_signed_in)
    }

    async fn notify(&self, ev: UiEvent) {
        if let Some(ch) = self.events.lock().await.as_ref() {
            let _ = ch.send(ev);
        }
    }
}

fn connection_name(c: &peal_client::ConnectionState) -> &'static str {
    match c {
        peal_client::ConnectionState::Connected
        | peal_client::ConnectionState::Resumed { .. }
        | peal_client::ConnectionState::Snapshot { .. } => "connected",
        peal_client::ConnectionState::Reconnecting { .. } => "reconnecting",
        peal_client::ConnectionState::SignedOut => "signed_out",
    }
}

/// Forwards the SDK's events to the page, in order, until the client goes.
fn forward_events(app: tauri::AppHandle, client: &PealClient) {
    let mut events = client.events();
    tauri::async_runtime::spawn(async move {
        use futures_util::StreamExt;
        while let Some(e) = events.next().await {
            let ev = match e {
                ClientEvent::Call(event) => UiEvent::Call {
                    event: Box::new(event),
                },
                ClientEvent::Connection(c) => UiEvent::Connection {
                    state: connection_name(&c).to_owned(),
                },
                ClientEvent::Presence { .. }
                | ClientEvent::Media { .. }
                | ClientEvent::Refused { .. } => continue,
            };
            app.state::<AppState>().notify(ev).await;
        }
    });
}

async fn signed_in(
    app: tauri::AppHandle,
    state: &AppState,
    client: PealClient,
    local: Option<local::Local>,
    server: String,
) -> Me {
    let user = client.user().clone();
    let me = Me {
        uid: user.uid.to_string(),
        name: user.name.clone(),
        server,
        local: local.is_some(),
    };
    forward_events(app, &client);
    *state.signed.lock().await = Some(Signed {
        client,
        me: me.clone(),
        _local: local,
        media: None,
    });
    me
}

/// Subscribes the page to events (call, connection, media, notices).
#[tauri::command]
async fn subscribe(state: State<'_, AppState>, events: Channel<UiEvent>) -> Result<(), UiError> {
    *state.events.lock().await = Some(events);
    Ok(())
}

/// Subscribes the page to remote video: each message is one VP8 frame,
/// prefixed with 1 byte (1 = keyframe) and the width and height (u16 LE each),
/// for the page's WebCodecs decoder.
#[tauri::command]
async fn subscribe_video(
    state: State<'_, AppState>,
    video: Channel<InvokeResponseBody>,
) -> Result<(), UiError> {
    *state.video.lock().await = Some(video);
    Ok(())
}

/// "This computer": starts the embedded server and signs in as the local user.
#[tauri::command]
async fn start_local(app: tauri::AppHandle, state: State<'_, AppState>) -> Result<Me, UiError> {
    if let Some(s) = state.signed.lock().await.as_ref() {
        return Ok(s.me.clone());
    }
    let dir = app
        .path()
        .app_data_dir()
        .map_err(UiError::internal)?
        .join("server");
    let (local, client) = local::start(dir, "desktop").await?;
    let url = local.url.clone();
    Ok(signed_in(app.clone(), &state, client, Some(local), url).await)
}

/// Signs in to a Peal server.
#[tauri::command]
async fn sign_in(
    app: tauri::AppHandle,
    state: State<'_, AppState>,
    server: String,
    uid: String,
    password: String,
) -> Result<Me, UiError> {
    let client =
        PealClient::connect(ClientConfig::new(&server, &uid, &password, "desktop")).await?;
    Ok(signed_in(app.clone(), &state, client, None, server).await)
}

#[tauri::command]
async fn contacts(state: State<'_, AppState>) -> Result<Vec<Contact>, UiError> {
    Ok(state.client().await?.contacts().await?)
}

#[tauri::command]
async fn history(state: State<'_, AppState>) -> Result<Vec<HistoryEntry>, UiError> {
    Ok(state.client().await?.history(200).await?)
}

/// Joins the media of `call`: camera and microphone, or — on a machine
/// without them — the test pattern and tone, saying so.
async fn join_media(state: &AppState, client: &PealClient, call: &CallInfo) {
    let mut settings = SessionSettings::new(call.call_type, Sources::Devices);
    if let Ok(bind) = std::env::var("PEAL_MEDIA_BIND") {
        settings.bind = bind.split(',').map(str::to_owned).collect();
    }
    let session = match peal_media::join_session(client, call, settings.clone()).await {
        Ok(s) => Ok(s),
        Err(MediaError::NoDevice(what)) => {
            state
                .notify(UiEvent::Notice {
                    message: format!("No usable {what}: sending a test pattern and tone instead."),
                })
                .await;
            settings.sources = Sources::Synthetic;
            peal_media::join_session(client, call, settings).await
        }
        Err(e) => Err(e),
    };
    let session = match session {
        Ok(s) => Arc::new(s),
        Err(e) => {
            state
                .notify(UiEvent::Notice {
                    message: format!("The call's media did not start: {e}"),
                })
                .await;
            return;
        }
    };
    let video = state.video.lock().await.clone();
    let mut frames = session.video();
    tauri::async_runtime::spawn(async move {
        // After skipping frames (the page fell behind), only a keyframe can be decoded.
        let mut need_key = false;
        loop {
            match frames.recv().await {
                Ok(v) => {
                    let Some(ch) = &video else { continue };
                    let key = peal_media::assemble::is_keyframe(&v.vp8);
                    if need_key && !key {
                        continue;
                    }
                    need_key = false;
                    let mut msg = Vec::with_capacity(v.vp8.len() + 5);
                    msg.push(u8::from(key));
                    msg.extend_from_slice(&(v.frame.width as u16).to_le_bytes());
                    msg.extend_from_slice(&(v.frame.height as u16).to_le_bytes());
                    msg.extend_from_slice(&v.vp8);
                    if ch.send(InvokeResponseBody::Raw(msg)).is_err() {
                        break;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => need_key = true,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    if let Some(mut ev) = session.events() {
        let events = state.events.lock().await.clone();
        tauri::async_runtime::spawn(async move {
            while let Some(e) = ev.recv().await {
                let name = match e {
                    peal_media::MediaEvent::Connected => "connected".to_owned(),
                    peal_media::MediaEvent::Reconnecting { .. } => "reconnecting".to_owned(),
                    peal_media::MediaEvent::Reconnected { .. } => "reconnected".to_owned(),
                    peal_media::MediaEvent::Ended { reason } => format!("ended:{reason}"),
                    peal_media::MediaEvent::ParticipantJoined { .. }
                    | peal_media::MediaEvent::ParticipantLeft { .. }
                    | peal_media::MediaEvent::RemoteState { .. } => continue,
                };
                if let Some(ch) = &events {
                    let _ = ch.send(UiEvent::Media { event: name });
                }
            }
        });
    }
    if let Some(s) = state.signed.lock().await.as_mut() {
        s.media = Some(session);
    }
}

async fn leave_media(state: &AppState) {
    let media = state
        .signed
        .lock()
        .await
        .as_mut()
        .and_then(|s| s.media.take());
    if let Some(m) = media {
        m.leave().await;
    }
}

/// Calls a user (or a group), audio or video, and joins its media.
#[tauri::command]
async fn call(
    state: State<'_, AppState>,
    receiver: String,
    group: bool,
    video: bool,
) -> Result<CallInfo, UiError> {
    let client = state.client().await?;
    let rt = if group {
        ReceiverType::Group
    } else {
        ReceiverType::User
    };
    let ct = if video {
        CallType::Video
    } else {
        CallType::Audio
    };
    let info = client.initiate_call(Call::new(receiver, rt, ct)).await?;
    if info.status.is_live() {
        join_media(&state, &client, &info).await;
    }
    Ok(info)
}

#[tauri::command]
async fn accept(state: State<'_, AppState>, session_id: String) -> Result<CallInfo, UiError> {
    let client = state.client().await?;
    let info = client.accept_call(&SessionId(session_id)).await?;
    if info.status.is_live() {
        join_media(&state, &client, &info).await;
    }
    Ok(info)
}

#[tauri::command]
async fn decline(state: State<'_, AppState>, session_id: String) -> Result<CallInfo, UiError> {
    let client = state.client().await?;
    Ok(client
        .reject_call(&SessionId(session_id), RejectStatus::Rejected)
        .await?)
}

/// Cancels a call still ringing, or leaves/ends one in progress.
#[tauri::command]
async fn hang_up(state: State<'_, AppState>, session_id: String) -> Result<CallInfo, UiError> {
    let client = state.client().await?;
    let id = SessionId(session_id);
    leave_media(&state).await;
    let current = client.get_call(&id).await?;
    let r = if current.status == Status::Initiated {
        client.cancel_call(&id).await
    } else {
        client.end_call(&id).await
    };
    Ok(r?)
}

/// Leaves the media once the call is over (the page calls this on the end event).
#[tauri::command]
async fn call_over(state: State<'_, AppState>) -> Result<(), UiError> {
    leave_media(&state).await;
    Ok(())
}

/// Builds and runs the app.
pub fn run() {
    tauri::Builder::default()
        .manage(AppState::default())
        .invoke_handler(tauri::generate_handler![
            subscribe,
            subscribe_video,
            start_local,
            sign_in,
            contacts,
            history,
            call,
            accept,
            decline,
            hang_up,
            call_over
        ])
        .run(tauri::generate_context!())
        .unwrap_or_else(|e| {
            eprintln!("peal-desktop: {e}");
            std::process::exit(1);
        });
}
