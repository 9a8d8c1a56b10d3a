//! The desktop app's Tauri layer: commands that adapt to `peal-client`,
//! `peal-media` and `peal-desktop-core`, and what happens reaches each page
//! over its channel, in order. No call logic lives here: the server decides
//! every call's fate, the SDK reports it, `peal_desktop_core::alerts` decides
//! what rings, this layer passes it on.
//!
//! # Layout
//! - this file: the commands and the app state.
//! - [`local`]: "this computer" — peal-server embedded, with the Echo contact.
//! - [`ring`]: drives the alerts (sound, notifications, incoming window).
//! - [`shell`]: windows, tray, missed count in the title, one instance.

pub mod local;
mod ring;
mod shell;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use peal_client::{
    Call, CallInfo, CallType, ClientConfig, ClientEvent, DeviceId, DeviceInfo, PealClient,
    ReceiverType, RejectStatus,
};
use peal_desktop_core::device::ThisDevice;
use peal_desktop_core::links::{self, Link, Route};
use peal_desktop_core::settings::Settings;
use peal_desktop_core::tones;
pub use peal_desktop_core::ui::{
    AppErrorCode, Diagnostics, Me, MediaUpdate, SettingsView, StartOptions, UiError, UiEvent,
};
use peal_desktop_core::vault::{self, Vault};
use peal_media::{CallSession, MediaError, SessionSettings, Sources};
use peal_proto::wire::{Contact, GroupInfo, HistoryEntry};
use peal_proto::SessionId;
use tauri::ipc::{Channel, InvokeResponseBody};
use tauri::{AppHandle, Manager, State};
use tokio::sync::Mutex;

struct Signed {
    client: PealClient,
    me: Me,
    _local: Option<local::Local>,
    media: Option<Arc<CallSession>>,
    /// The call we are in (for the window's close button).
    current: Option<SessionId>,
}

/// The app's state: one signed-in account, each page's channels, the ringer.
pub struct AppState {
    signed: Mutex<Option<Signed>>,
    channels: std::sync::Mutex<HashMap<String, Channel<UiEvent>>>,
    video: Mutex<Option<Channel<InvokeResponseBody>>>,
    settings: std::sync::Mutex<Settings>,
    settings_path: PathBuf,
    /// The name this install signs in with (peal_desktop_core::device).
    device: String,
    /// The app's log file, when it could be opened.
    log_file: Option<PathBuf>,
    /// Secrets for the next start (peal_desktop_core::vault).
    vault: Box<dyn Vault>,
    /// Held while signing in, so the page's sign-in and the app's own at
    /// start can't both sign in (or start two embedded servers).
    signing: Mutex<()>,
    /// A `peal:` link that waits for a sign-in.
    pending_link: std::sync::Mutex<Option<Link>>,
    /// The ringtone's samples, for the settings' choice (decoded once, not per ring).
    ringtone: std::sync::Mutex<Option<(peal_desktop_core::settings::Ringtone, tones::Tone)>>,
    ring: ring::Ring,
    started: std::time::Instant,
}

impl AppState {
    /// Reads something of the signed-in account (`None` when signed out).
    async fn signed<T>(&self, read: impl FnOnce(&Signed) -> Option<T>) -> Option<T> {
        self.signed.lock().await.as_ref().and_then(read)
    }

    async fn client(&self) -> Result<PealClient, UiError> {
        self.signed(|s| Some(s.client.clone()))
            .await
            .ok_or_else(UiError::not_signed_in)
    }

    /// The media session of the call we are in.
    async fn media(&self) -> Option<Arc<CallSession>> {
        self.signed(|s| s.media.clone()).await
    }

    /// The call we are in.
    async fn current(&self) -> Option<SessionId> {
        self.signed(|s| s.current.clone()).await
    }

    pub(crate) fn settings(&self) -> Settings {
        self.settings.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Sends `ev` to every page; a page that is gone is forgotten.
    pub(crate) async fn send(&self, ev: UiEvent) {
        self.broadcast(ev);
    }

    /// [`AppState::send`], from code that can't wait (it never does).
    pub(crate) fn broadcast(&self, ev: UiEvent) {
        if let Ok(mut chans) = self.channels.lock() {
            chans.retain(|_, ch| ch.send(ev.clone()).is_ok());
        }
    }

    /// The chosen ringtone's samples (kept until the choice changes).
    pub(crate) fn ringtone(&self) -> Result<tones::Tone, tones::ToneError> {
        let choice = self.settings().ringtone;
        if let Ok(cache) = self.ringtone.lock() {
            if let Some((_, t)) = cache.as_ref().filter(|(c, _)| *c == choice) {
                return Ok(t.clone());
            }
        }
        let tone = choice.tone()?;
        if let Ok(mut cache) = self.ringtone.lock() {
            *cache = Some((choice, tone.clone()));
        }
        Ok(tone)
    }

    pub(crate) async fn notice(&self, message: String) {
        self.send(UiEvent::Notice { message }).await;
    }
}

/// Forwards the SDK's events to the ringer (call events) and the pages
/// (the rest), in order, until the client goes.
fn forward_events(app: AppHandle, client: &PealClient) {
    let mut events = client.events();
    tauri::async_runtime::spawn(async move {
        use futures_util::StreamExt;
        while let Some(e) = events.next().await {
            let state = app.state::<AppState>();
            let ev = match e {
                // The ringer passes call events on to the pages itself, just
                // before what it decides about them, so they arrive in order.
                ClientEvent::Call(event) => {
                    state.ring.send(ring::Msg::Event(Box::new(event)));
                    continue;
                }
                ClientEvent::Connection(peal_client::ConnectionState::SignedOut) => {
                    // Signed out from another device (or the session ended):
                    // this device no longer rings, so the page says so.
                    forget_sign_in(&state).await;
                    state
                        .notice("This device was signed out (from another of your devices, or the session ended). Sign in again to receive calls.".to_owned())
                        .await;
                    break;
                }
                ClientEvent::Connection(c) => UiEvent::Connection { state: (&c).into() },
                ClientEvent::Presence { uid, presence } => UiEvent::Presence { uid, presence },
                ClientEvent::ContactAdded(contact) => UiEvent::ContactAdded { contact },
                ClientEvent::Media { .. } | ClientEvent::Refused { .. } => continue,
            };
            state.send(ev).await;
        }
    });
}

async fn signed_in(
    app: AppHandle,
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
        current: None,
    });
    // Every page: a sign-in the app made itself (at start) shows too.
    state.send(UiEvent::SignedIn { me: me.clone() }).await;
    let waiting = state.pending_link.lock().ok().and_then(|mut p| p.take());
    if let Some(link) = waiting {
        follow_link(state, link, Some(&me.server)).await;
    }
    me
}

/// A `peal:` link opened (at launch, or by a second launch while Peal runs):
/// the window comes forward and the page asks before anything happens.
async fn open_link(app: AppHandle, text: String) {
    shell::show_main(&app);
    let state = app.state::<AppState>();
    let link = match links::parse(&text) {
        Ok(l) => l,
        Err(e) => {
            tracing::info!(link = %text.chars().take(200).collect::<String>(), error = %e, "link refused");
            state.notice(format!("Can't open the link: {e}.")).await;
            return;
        }
    };
    tracing::info!(?link, "link opened");
    let server = state.signed(|s| Some(s.me.server.clone())).await;
    let signing_in_now = {
        let o = start_options_of(&state);
        o.resume || o.this_computer
    };
    if server.is_none() && signing_in_now {
        // Signing in by itself right now: asked about once it has.
        if let Ok(mut p) = state.pending_link.lock() {
            *p = Some(link);
        }
        return;
    }
    follow_link(&state, link, server.as_deref()).await;
}

async fn follow_link(state: &AppState, link: Link, signed_in_to: Option<&str>) {
    let keep = |link: Link| {
        if let Ok(mut p) = state.pending_link.lock() {
            *p = Some(link);
        }
    };
    match links::route(&link, signed_in_to) {
        Route::ConfirmCall { user, video } => {
            state
                .send(UiEvent::ConfirmCall {
                    user: user.to_string(),
                    video,
                })
                .await;
        }
        Route::SignInFirst { server } => match signed_in_to {
            Some(now) => {
                let message = format!("That link is for {server}, and you're signed in to {now}: sign out and sign in to {server} to use it.");
                state.notice(message).await;
            }
            None => {
                let message = format!("Sign in to {server} to follow the link.");
                keep(link);
                let server = Some(server);
                state.send(UiEvent::SignInForLink { server, message }).await;
            }
        },
        Route::SignInAnywhere => {
            keep(link);
            let message = "Sign in to follow the link.".to_owned();
            state
                .send(UiEvent::SignInForLink {
                    server: None,
                    message,
                })
                .await;
        }
        Route::AlreadyMember { server } => {
            state
                .notice(format!(
                    "That invitation is to {server}, where you're signed in already."
                ))
                .await;
        }
        Route::SignOutToJoin {
            server,
            signed_in_to,
        } => {
            state
                .notice(format!("That invitation is to {server}, and you're signed in to {signed_in_to}: sign out first to join {server}."))
                .await;
        }
        Route::Join { server, invite } => {
            // Say now if the invite can't be used, not after the form.
            let config = ClientConfig::new(&server, "", "", &state.device);
            let problem = match PealClient::check_invite(&config, &invite).await {
                Ok(()) => None,
                Err(e) => {
                    tracing::info!(%server, error = %e, "invite not usable");
                    Some(match e {
                        peal_client::ClientError::Refused(b) => b.message,
                        other => format!("Can't reach {server} ({other})."),
                    })
                }
            };
            let join = UiEvent::JoinInvite {
                server,
                invite,
                problem,
            };
            state.send(join).await;
        }
    }
}

/// Subscribes this page (its window) to events.
#[tauri::command]
async fn subscribe(
    window: tauri::Window,
    state: State<'_, AppState>,
    events: Channel<UiEvent>,
) -> Result<(), UiError> {
    if let Ok(mut chans) = state.channels.lock() {
        chans.insert(window.label().to_owned(), events);
    }
    Ok(())
}

/// Subscribes the page to remote video: each message is one VP8 frame,
/// prefixed with 1 byte (1 = keyframe), the width and height (u16 LE each),
/// and the sender's user id (1 byte length, then UTF-8), for the page's
/// WebCodecs decoders (one per participant).
#[tauri::command]
async fn subscribe_video(
    state: State<'_, AppState>,
    video: Channel<InvokeResponseBody>,
) -> Result<(), UiError> {
    *state.video.lock().await = Some(video);
    Ok(())
}

/// Who is signed in, if anyone (a page that loads late asks).
#[tauri::command]
async fn me(state: State<'_, AppState>) -> Result<Option<Me>, UiError> {
    Ok(state.signed(|s| Some(s.me.clone())).await)
}

/// The page says what it has put on screen; the first time the contacts
/// show, the time since launch goes to the log (and the diagnostics).
#[tauri::command]
async fn shown(state: State<'_, AppState>, what: String) -> Result<(), UiError> {
    if what == "contacts" {
        let ms = state.started.elapsed().as_secs_f64() * 1e3;
        let first = state
            .ring
            .diag
            .lock()
            .map(|mut d| d.launch_to_contacts_ms.replace(ms).is_none())
            .unwrap_or(false);
        if first {
            eprintln!("peal-desktop: contacts shown {ms:.0} ms after launch");
        }
    }
    Ok(())
}

/// How the page should start: on this computer at once, or the form filled in.
#[tauri::command]
async fn start_options(state: State<'_, AppState>) -> Result<StartOptions, UiError> {
    Ok(start_options_of(&state))
}

fn start_options_of(state: &AppState) -> StartOptions {
    let s = state.settings();
    let asked = std::env::args().any(|a| a == "--this-computer");
    let resume = !asked
        && vault::saved_session(&*state.vault)
            .is_some_and(|k| s.server.as_ref() == Some(&k.server));
    StartOptions {
        this_computer: asked || s.this_computer,
        resume,
        server: s.server,
        user: s.user,
    }
}

/// Remembers how the user signed in, for the next start.
fn remember_sign_in(state: &AppState, server: Option<(&str, &str)>) {
    let Ok(mut s) = state.settings.lock() else {
        return;
    };
    s.this_computer = server.is_none();
    if let Some((url, uid)) = server {
        s.server = Some(url.to_owned());
        s.user = Some(uid.to_owned());
    }
    if let Err(e) = s.save(&state.settings_path) {
        tracing::warn!(error = %e, "settings not saved");
    }
}

/// "This computer": starts the embedded server and signs in as the local user.
#[tauri::command]
async fn start_local(app: AppHandle) -> Result<Me, UiError> {
    start_here(&app).await
}

async fn start_here(app: &AppHandle) -> Result<Me, UiError> {
    let state = app.state::<AppState>();
    let _one = state.signing.lock().await;
    if let Some(s) = state.signed.lock().await.as_ref() {
        return Ok(s.me.clone());
    }
    let dir = app
        .path()
        .app_data_dir()
        .map_err(UiError::internal)?
        .join("server");
    let (local, client) = local::start(dir, &state.device, &*state.vault).await?;
    let url = local.url.clone();
    // The desktop bench reads this line from stderr.
    eprintln!("peal-desktop: this computer's Peal server is at {url}");
    tracing::info!(%url, "this computer's Peal server is up");
    remember_sign_in(&state, None);
    Ok(signed_in(app.clone(), &state, client, Some(local), url).await)
}

/// Signs in to a Peal server.
#[tauri::command]
async fn sign_in(
    app: AppHandle,
    state: State<'_, AppState>,
    server: String,
    uid: String,
    password: String,
) -> Result<Me, UiError> {
    let _one = state.signing.lock().await;
    if let Some(s) = state.signed.lock().await.as_ref() {
        return Ok(s.me.clone());
    }
    let client =
        PealClient::connect(ClientConfig::new(&server, &uid, &password, &state.device)).await?;
    remember_sign_in(&state, Some((&server, &uid)));
    keep_session(&state, &server, &client).await;
    Ok(signed_in(app.clone(), &state, client, None, server).await)
}

/// Makes an account on `server` with an invite and signs in with it.
#[tauri::command]
async fn join(
    app: AppHandle,
    state: State<'_, AppState>,
    server: String,
    invite: String,
    uid: String,
    name: String,
    password: String,
) -> Result<Me, UiError> {
    let _one = state.signing.lock().await;
    if state.signed.lock().await.is_some() {
        return Err(UiError::new(
            AppErrorCode::SignedIn,
            "you're signed in already: sign out first to join another server",
        ));
    }
    let config = ClientConfig::new(&server, &uid, &password, &state.device);
    let client = PealClient::join(config, &invite, &name).await?;
    tracing::info!(%server, %uid, "joined with an invite");
    remember_sign_in(&state, Some((&server, &uid)));
    keep_session(&state, &server, &client).await;
    Ok(signed_in(app.clone(), &state, client, None, server).await)
}

/// Keeps the session for the next start (the keyring, or the 0600 file,
/// which the user is told about).
async fn keep_session(state: &AppState, server: &str, client: &PealClient) {
    let saved = vault::SavedSession {
        server: server.to_owned(),
        session: client.session(),
    };
    match vault::save_session(&*state.vault, &saved) {
        Ok(()) if state.vault.is_file() => {
            state
                .notice(format!(
                    "No keyring service here: your sign-in is kept in {} so Peal signs you in again at the next start.",
                    state.vault.describe()
                ))
                .await;
        }
        Ok(()) => {}
        Err(e) => {
            tracing::warn!(error = %e, "session not kept");
            state
                .notice(format!("Your sign-in can't be kept ({e}): Peal will ask for your password at the next start."))
                .await;
        }
    }
}

/// How long the app waits before trying a kept sign-in again while the
/// server can't be reached (after a reboot, the network often comes up
/// after the desktop does).
const RESUME_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// At start, with no window needed (a start at login is hidden): "this
/// computer" when that is how the user signed in last, or the kept session
/// of a server (no password); while the server can't be reached it tries
/// again, saying so on the sign-in screen. A session the server no longer
/// takes is forgotten and the sign-in screen says why.
async fn sign_in_at_start(app: AppHandle) {
    let state = app.state::<AppState>();
    let opts = start_options_of(&state);
    if opts.this_computer {
        if let Err(e) = start_here(&app).await {
            tracing::warn!(error = %e, "this computer's server did not start");
            let problem = format!("This computer's Peal server did not start: {e}");
            state
                .send(UiEvent::SigningIn {
                    problem: Some(problem),
                })
                .await;
        }
        return;
    }
    if !opts.resume {
        return;
    }
    loop {
        let one = state.signing.lock().await;
        if state.signed.lock().await.is_some() {
            return;
        }
        let Some(saved) = vault::saved_session(&*state.vault) else {
            return;
        };
        let uid = saved.session.user.uid.to_string();
        let config = ClientConfig::new(&saved.server, &uid, "", &state.device);
        match PealClient::connect_with_session(config, saved.session).await {
            Ok(client) => {
                tracing::info!(server = %saved.server, %uid, "signed in again with the kept session");
                signed_in(app.clone(), &state, client, None, saved.server).await;
                return;
            }
            Err(peal_client::ClientError::Unauthorized(_)) => {
                tracing::info!(server = %saved.server, "kept session ended");
                if let Err(e) = vault::forget_session(&*state.vault) {
                    tracing::warn!(error = %e, "ended session not forgotten");
                }
                let problem = format!("Your session on {} has ended; sign in again.", saved.server);
                state
                    .send(UiEvent::SigningIn {
                        problem: Some(problem),
                    })
                    .await;
                return;
            }
            Err(e) => {
                tracing::info!(server = %saved.server, error = %e, "kept session not resumed yet");
                let problem = format!(
                    "Can't reach {} ({e}); trying again in {} s.",
                    saved.server,
                    RESUME_RETRY.as_secs()
                );
                state
                    .send(UiEvent::SigningIn {
                        problem: Some(problem),
                    })
                    .await;
                drop(one);
                tokio::time::sleep(RESUME_RETRY).await;
            }
        }
    }
}

/// The contacts; their presence is watched from then on (presence events).
#[tauri::command]
async fn contacts(state: State<'_, AppState>) -> Result<Vec<Contact>, UiError> {
    let client = state.client().await?;
    let contacts = client.contacts().await?;
    let max = peal_proto::wire::MAX_WATCHED;
    let uids = contacts.iter().take(max).map(|c| c.uid.clone()).collect();
    if let Err(e) = client.watch_presence(uids) {
        tracing::warn!(error = %e, "presence not watched");
    }
    Ok(contacts)
}

/// Signs out: the event socket closes, "this computer"'s server stops, and
/// the next start shows the sign-in screen.
#[tauri::command]
async fn sign_out(state: State<'_, AppState>) -> Result<(), UiError> {
    if let Some(s) = state.signed.lock().await.as_ref() {
        if !s.me.local {
            let _ = s.client.logout().await;
        }
    }
    if let Ok(mut s) = state.settings.lock() {
        s.this_computer = false;
        let _ = s.save(&state.settings_path);
    }
    forget_sign_in(&state).await;
    Ok(())
}

/// Leaves the call, closes the client, forgets the kept session, and shows
/// the sign-in screen.
async fn forget_sign_in(state: &AppState) {
    if let Err(e) = vault::forget_session(&*state.vault) {
        tracing::warn!(error = %e, "kept session not forgotten");
    }
    leave_media(state).await;
    let signed = state.signed.lock().await.take();
    if let Some(s) = signed {
        s.client.close();
    }
    state.send(UiEvent::SignedOut).await;
}

/// This user's devices (settings' "Your devices").
#[tauri::command]
async fn devices(state: State<'_, AppState>) -> Result<Vec<DeviceInfo>, UiError> {
    Ok(state.client().await?.devices().await?)
}

/// Signs another of this user's devices out; the devices after.
#[tauri::command]
async fn sign_out_device(
    state: State<'_, AppState>,
    device_id: String,
) -> Result<Vec<DeviceInfo>, UiError> {
    let client = state.client().await?;
    Ok(client.sign_out_device(&DeviceId(device_id)).await?)
}

#[tauri::command]
async fn groups(state: State<'_, AppState>) -> Result<Vec<GroupInfo>, UiError> {
    Ok(state.client().await?.groups().await?)
}

/// The call history.
#[tauri::command]
async fn history(state: State<'_, AppState>) -> Result<Vec<HistoryEntry>, UiError> {
    Ok(state.client().await?.history(200).await?)
}

#[tauri::command]
async fn missed_seen(state: State<'_, AppState>) -> Result<(), UiError> {
    state.ring.send(ring::Msg::MissedSeen);
    Ok(())
}

/// The calls ringing here (the incoming window asks when it opens).
#[tauri::command]
async fn ringing(state: State<'_, AppState>) -> Result<Vec<CallInfo>, UiError> {
    Ok(state.client().await?.ringing())
}

/// What sounds now and what was measured (for diagnostics and tests).
#[tauri::command]
async fn diagnostics(state: State<'_, AppState>) -> Result<Diagnostics, UiError> {
    let mut d = state
        .ring
        .diag
        .lock()
        .map(|d| d.clone())
        .unwrap_or_default();
    d.media_stats = state
        .media()
        .await
        .and_then(|m| serde_json::to_value(m.stats()).ok());
    d.frames_to_page = (
        FRAMES_TO_PAGE[0].load(std::sync::atomic::Ordering::Relaxed),
        FRAMES_TO_PAGE[1].load(std::sync::atomic::Ordering::Relaxed),
    );
    d.device = Some(state.device.clone());
    d.version = env!("CARGO_PKG_VERSION").to_owned();
    if let Some(path) = &state.log_file {
        d.log_file = Some(path.display().to_string());
        d.log_tail = peal_desktop_core::logs::tail(path, LOG_LINES_IN_DIAGNOSTICS);
    }
    Ok(d)
}

/// Log lines "Copy diagnostics" attaches.
const LOG_LINES_IN_DIAGNOSTICS: usize = 200;

/// Notes a media step in the diagnostics (the newest 50).
fn media_log(state: &AppState, what: String) {
    log_to(&state.ring.diag, state.started, what);
}

fn log_to(diag: &std::sync::Mutex<Diagnostics>, started: std::time::Instant, what: String) {
    let ms = started.elapsed().as_millis();
    if let Ok(mut d) = diag.lock() {
        d.media_log.push(format!("{ms} ms: {what}"));
        let n = d.media_log.len();
        if n > 50 {
            d.media_log.drain(..n - 50);
        }
    }
}

/// Video frames sent to the page: remote, self view (for the diagnostics).
static FRAMES_TO_PAGE: [std::sync::atomic::AtomicU64; 2] = [
    std::sync::atomic::AtomicU64::new(0),
    std::sync::atomic::AtomicU64::new(0),
];

/// What the call screen hears of a media event. A failure is logged here
/// and shown to the person with its reason.
fn media_update(e: peal_media::MediaEvent) -> MediaUpdate {
    use peal_media::MediaEvent as M;
    match e {
        M::Connected => MediaUpdate::Connected,
        M::Reconnecting { peer } => MediaUpdate::Reconnecting {
            peer: peer.to_string(),
        },
        M::Reconnected { peer } => MediaUpdate::Reconnected {
            peer: peer.to_string(),
        },
        M::ParticipantJoined { peer } => MediaUpdate::ParticipantJoined {
            peer: peer.to_string(),
        },
        M::ParticipantLeft { peer } => MediaUpdate::ParticipantLeft {
            peer: peer.to_string(),
        },
        M::RemoteState {
            peer,
            audio_muted,
            video_enabled,
        } => MediaUpdate::RemoteState {
            peer: peer.to_string(),
            audio_muted,
            video_enabled,
        },
        M::Ended { reason } if reason.is_failure() => {
            tracing::warn!(reason = %reason, "call media failed");
            MediaUpdate::Failed {
                reason: reason.message(),
            }
        }
        M::Ended { reason } => MediaUpdate::Ended {
            reason: reason.to_string(),
        },
    }
}

/// Joins the media of `call`: camera and microphone, or — on a machine
/// without them — the test pattern and tone, saying so. `video` false
/// starts with the camera off (accept audio only).
async fn join_media(state: &AppState, client: &PealClient, call: &CallInfo, video: bool) {
    let mut settings = SessionSettings::new(call.call_type, Sources::Devices);
    // The page decodes the video (WebCodecs): no second decode here.
    settings.decode_video = false;
    settings.start_video_off = settings.start_video_off || !video;
    settings.camera = state.settings().camera;
    if let Ok(bind) = std::env::var("PEAL_MEDIA_BIND") {
        settings.bind = bind.split(',').map(str::to_owned).collect();
    }
    let settings_wh = (settings.width, settings.height);
    media_log(state, format!("joining the media of {}", call.session_id));
    let session = match peal_media::join_session(client, call, settings.clone()).await {
        Ok(s) => Ok(s),
        Err(MediaError::NoDevice(what)) => {
            state
                .notice(format!(
                    "No usable {what}: sending a test pattern and tone instead."
                ))
                .await;
            settings.sources = Sources::Synthetic;
            peal_media::join_session(client, call, settings).await
        }
        Err(e) => Err(e),
    };
    media_log(
        state,
        match &session {
            Ok(_) => "joined".to_owned(),
            Err(e) => format!("not joined: {e}"),
        },
    );
    let session = match session {
        Ok(s) => Arc::new(s),
        Err(e) => {
            state
                .notice(format!("The call's media did not start: {e}"))
                .await;
            return;
        }
    };
    let video = state.video.lock().await.clone();
    if let Some(ch) = video {
        forward_remote_video(session.vp8(), ch.clone());
        if call.call_type == CallType::Video {
            forward_self_view(session.local(), ch, (settings_wh.0, settings_wh.1));
        }
    }
    if let Some(mut ev) = session.events() {
        let app_events: Vec<Channel<UiEvent>> = state
            .channels
            .lock()
            .map(|c| c.values().cloned().collect())
            .unwrap_or_default();
        let (diag, started) = (state.ring.diag.clone(), state.started);
        tauri::async_runtime::spawn(async move {
            while let Some(e) = ev.recv().await {
                let update = media_update(e);
                log_to(&diag, started, format!("media {update:?}"));
                let ev = UiEvent::Media { update };
                for ch in &app_events {
                    let _ = ch.send(ev.clone());
                }
            }
        });
    }
    if let Some(s) = state.signed.lock().await.as_mut() {
        s.media = Some(session);
    }
}

/// One message on the video channel: `[key][w:u16][h:u16][n][from: n bytes][VP8]`
/// (`from` empty: our own video, for the self view).
fn video_message(key: bool, w: u32, h: u32, from: &str, vp8: &[u8]) -> InvokeResponseBody {
    let from = &from.as_bytes()[..from.len().min(255)];
    let mut msg = Vec::with_capacity(vp8.len() + 6 + from.len());
    msg.push(u8::from(key));
    msg.extend_from_slice(&(w.min(65_535) as u16).to_le_bytes());
    msg.extend_from_slice(&(h.min(65_535) as u16).to_le_bytes());
    msg.push(from.len() as u8);
    msg.extend_from_slice(from);
    msg.extend_from_slice(vp8);
    InvokeResponseBody::Raw(msg)
}

/// Sends frames from `rx` to the page; after skipping frames (the page fell
/// behind), waits for a keyframe, the only thing that can be decoded then.
fn forward_frames<T: Clone + Send + 'static>(
    mut rx: tokio::sync::broadcast::Receiver<T>,
    ch: Channel<InvokeResponseBody>,
    count: &'static std::sync::atomic::AtomicU64,
    mut to_message: impl FnMut(&T) -> Option<(bool, InvokeResponseBody)> + Send + 'static,
) {
    tauri::async_runtime::spawn(async move {
        let mut need_key = false;
        loop {
            match rx.recv().await {
                Ok(v) => {
                    let Some((key, msg)) = to_message(&v) else {
                        continue;
                    };
                    if need_key && !key {
                        continue;
                    }
                    need_key = false;
                    if let Err(e) = ch.send(msg) {
                        tracing::warn!(error = %e, "video to the page");
                        break;
                    }
                    count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => need_key = true,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}

fn forward_remote_video(
    rx: tokio::sync::broadcast::Receiver<peal_media::session::RemoteVp8>,
    ch: Channel<InvokeResponseBody>,
) {
    forward_frames(rx, ch, &FRAMES_TO_PAGE[0], |v| {
        let (w, h) = v.size.unwrap_or((0, 0));
        let msg = video_message(v.key, w.into(), h.into(), v.from.as_str(), &v.vp8);
        Some((v.key, msg))
    });
}

/// Our own video as we send it (camera, or the test pattern), for the self view.
fn forward_self_view(
    rx: tokio::sync::broadcast::Receiver<peal_media::source::Encoded>,
    ch: Channel<InvokeResponseBody>,
    (w, h): (u32, u32),
) {
    forward_frames(rx, ch, &FRAMES_TO_PAGE[1], move |e| {
        if !e.video {
            return None;
        }
        let key = peal_media::assemble::is_keyframe(&e.data);
        Some((key, video_message(key, w, h, "", &e.data)))
    });
}

async fn leave_media(state: &AppState) {
    let media = state.signed.lock().await.as_mut().and_then(|s| {
        s.current = None;
        s.media.take()
    });
    if let Some(m) = media {
        m.leave().await;
    }
}

async fn set_current(state: &AppState, id: &SessionId) {
    if let Some(s) = state.signed.lock().await.as_mut() {
        s.current = Some(id.clone());
    }
}

/// Places a call and joins its media; the ringer plays ringback meanwhile.
async fn place(
    state: &AppState,
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
    // The pages show the call from the ringer's queue, in order with its events.
    state.ring.send(ring::Msg::Placed(info.clone(), video));
    if info.status.is_live() {
        set_current(state, &info.session_id).await;
        join_media(state, &client, &info, video).await;
    }
    Ok(info)
}

/// Calls a user (or a group), audio or video, and joins its media.
#[tauri::command]
async fn call(
    state: State<'_, AppState>,
    receiver: String,
    group: bool,
    video: bool,
) -> Result<CallInfo, UiError> {
    place(&state, receiver, group, video).await
}

/// "Call back" from a missed-call notification: the page shows the call.
pub(crate) async fn call_back(app: &AppHandle, missed: &CallInfo) -> Result<(), UiError> {
    let state = app.state::<AppState>();
    let (receiver, group) = match &missed.receiver {
        peal_proto::wire::Receiver::Group { guid, .. } => (guid.to_string(), true),
        peal_proto::wire::Receiver::User { .. } => (missed.initiator.uid.to_string(), false),
    };
    let video = missed.call_type == CallType::Video;
    place(&state, receiver, group, video).await.map(drop)
}

/// Accepts a ringing call (from the page, the incoming window or the
/// notification): ringing stops here at once, the media joins, and the main
/// window comes forward with the call.
pub(crate) async fn answer(
    app: &AppHandle,
    id: SessionId,
    video: bool,
) -> Result<CallInfo, UiError> {
    let state = app.state::<AppState>();
    state.ring.send(ring::Msg::Answered(id.clone()));
    let client = state.client().await?;
    let info = client.accept_call(&id).await?;
    shell::show_main(app);
    set_current(&state, &info.session_id).await;
    state.ring.send(ring::Msg::Accepted(info.clone(), video));
    if info.status.is_live() {
        join_media(&state, &client, &info, video).await;
    }
    Ok(info)
}

pub(crate) async fn decline_call(app: &AppHandle, id: SessionId) -> Result<CallInfo, UiError> {
    let state = app.state::<AppState>();
    state.ring.send(ring::Msg::Declined(id.clone()));
    let client = state.client().await?;
    Ok(client.reject_call(&id, RejectStatus::Rejected).await?)
}

#[tauri::command]
async fn accept(
    app: AppHandle,
    session_id: String,
    video: Option<bool>,
) -> Result<CallInfo, UiError> {
    answer(&app, SessionId(session_id), video.unwrap_or(true)).await
}

#[tauri::command]
async fn decline(app: AppHandle, session_id: String) -> Result<CallInfo, UiError> {
    decline_call(&app, SessionId(session_id)).await
}

/// Cancels a call still ringing, or leaves/ends one in progress.
#[tauri::command]
async fn hang_up(state: State<'_, AppState>, session_id: String) -> Result<CallInfo, UiError> {
    let client = state.client().await?;
    let id = SessionId(session_id);
    state.ring.send(ring::Msg::HungUp(id.clone()));
    leave_media(&state).await;
    Ok(client.hang_up(&id).await?)
}

/// Leaves the media of `session_id` once that call is over (the page calls
/// this on its end); the media of any other call is left alone.
#[tauri::command]
async fn call_over(state: State<'_, AppState>, session_id: String) -> Result<(), UiError> {
    if state
        .media()
        .await
        .is_some_and(|m| m.call().0 == session_id)
    {
        leave_media(&state).await;
    }
    Ok(())
}

async fn media(state: &AppState) -> Result<Arc<CallSession>, UiError> {
    state
        .media()
        .await
        .ok_or_else(|| UiError::new(AppErrorCode::NotInCall, "not in a call"))
}

#[tauri::command]
async fn set_muted(state: State<'_, AppState>, muted: bool) -> Result<(), UiError> {
    media(&state).await?.set_audio_muted(muted);
    Ok(())
}

#[tauri::command]
async fn set_camera(state: State<'_, AppState>, on: bool) -> Result<(), UiError> {
    media(&state).await?.set_video_enabled(on);
    Ok(())
}

#[tauri::command]
async fn get_settings(state: State<'_, AppState>) -> Result<SettingsView, UiError> {
    Ok(SettingsView {
        settings: state.settings(),
        ringtones: tones::RINGTONES
            .iter()
            .map(|(id, name)| ((*id).to_owned(), (*name).to_owned()))
            .collect(),
        cameras: peal_media::devices::Camera::count(),
    })
}

/// Saves the settings; a ringtone file that can't be played is refused.
#[tauri::command]
async fn set_settings(
    app: AppHandle,
    state: State<'_, AppState>,
    settings: Settings,
) -> Result<Settings, UiError> {
    let tone = settings
        .ringtone
        .tone()
        .map_err(|e| UiError::new(AppErrorCode::BadRingtone, e.to_string()))?;
    if let Ok(mut cache) = state.ringtone.lock() {
        *cache = Some((settings.ringtone.clone(), tone));
    }
    let mut s = settings;
    s.ringtone_volume = s.ringtone_volume.min(100);
    if s.start_at_login != state.settings().start_at_login {
        shell::start_at_login(&app, s.start_at_login)
            .map_err(|why| UiError::new(AppErrorCode::StartAtLogin, why))?;
    }
    s.save(&state.settings_path)
        .map_err(|e| UiError::new(AppErrorCode::SettingsNotSaved, e.to_string()))?;
    state.ring.send(ring::Msg::DoNotDisturb(s.do_not_disturb));
    if let Ok(mut cur) = state.settings.lock() {
        *cur = s.clone();
    }
    Ok(s)
}

/// Leaves the call (if any) and hides the window (Peal stays in the tray).
#[tauri::command]
async fn close_window(app: AppHandle, state: State<'_, AppState>) -> Result<(), UiError> {
    if let Some(id) = state.current().await {
        let _ = hang_up(state.clone(), id.0).await;
    }
    shell::hide_main(&app);
    Ok(())
}

/// glibc's malloc raises its mmap threshold to the size of the largest
/// mmapped block freed, after which blocks that size come from per-thread
/// arenas and stay there once freed. Each Argon2 hash ("this computer"'s
/// server signs in its two local accounts) takes 19 MiB, so an idle app kept
/// ~60 MB it no longer used (measured: 152 → 95 MB PSS for the Rust
/// process). Restarting once with the threshold fixed at glibc's default
/// (128 KiB) keeps big blocks mmapped, returned when freed. A user's own
/// `GLIBC_TUNABLES` is left alone.
#[cfg(target_os = "linux")]
pub fn fixed_malloc_threshold() {
    use std::os::unix::process::CommandExt;
    const TUNABLE: &str = "glibc.malloc.mmap_threshold=131072";
    if std::env::var_os("GLIBC_TUNABLES").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("GLIBC_TUNABLES", TUNABLE)
        .exec();
    // Only reached when the restart failed: carry on as we are.
    eprintln!("peal-desktop: could not restart with {TUNABLE}: {err}");
}

/// `peal:` links: the one Peal was launched with, and those a second launch
/// hands over.
fn watch_links(app: &AppHandle) {
    use tauri_plugin_deep_link::DeepLinkExt;
    let h = app.clone();
    app.deep_link().on_open_url(move |ev| {
        for url in ev.urls() {
            tauri::async_runtime::spawn(open_link(h.clone(), url.to_string()));
        }
    });
    match app.deep_link().get_current() {
        Ok(Some(urls)) => {
            for url in urls {
                tauri::async_runtime::spawn(open_link(app.clone(), url.to_string()));
            }
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "launch link not read"),
    }
}

/// The log file in the app's log directory (and stderr from a terminal);
/// without one, stderr says why and the app carries on.
fn start_logging(app: &AppHandle) -> Option<PathBuf> {
    use std::io::IsTerminal;
    let dir = match app.path().app_log_dir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("peal-desktop: no log directory: {e}");
            return None;
        }
    };
    let terminal = std::io::stderr().is_terminal();
    match peal_desktop_core::logs::install(&dir, terminal, env!("CARGO_PKG_VERSION")) {
        Ok(path) => {
            tracing::info!(version = env!("CARGO_PKG_VERSION"), log = %path.display(), "Peal starts");
            Some(path)
        }
        Err(e) => {
            eprintln!("peal-desktop: {e}");
            None
        }
    }
}

/// Builds and runs the app.
pub fn run() {
    let started = std::time::Instant::now();
    tauri::Builder::default()
        // First: a second launch hands its arguments (a `peal:` link) to
        // the running Peal, which comes forward, and exits.
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            shell::show_main(app);
        }))
        .plugin(tauri_plugin_deep_link::init())
        .plugin(shell::window_state())
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            Some(vec![shell::HIDDEN]),
        ))
        .setup(move |app| {
            let handle = app.handle().clone();
            // First, so what setup and the embedded server say is kept.
            let log_file = start_logging(&handle);
            let settings_path = app
                .path()
                .app_config_dir()
                .map(|d| d.join("settings.json"))
                .unwrap_or_else(|_| PathBuf::from("peal-settings.json"));
            let settings = Settings::load(&settings_path);
            let start_at_login = settings.start_at_login;
            let config_dir = settings_path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            let (vault, why_file) = vault::open(&config_dir);
            if let Some(why) = why_file {
                tracing::warn!(%why, "secrets kept in a file");
            }
            let device_path = settings_path.with_file_name("device.json");
            let host = peal_desktop_core::device::host_name();
            let (device, device_trouble) =
                match ThisDevice::load_or_create(&device_path, &host, rand::random) {
                    Ok(d) => (d.name, None),
                    Err((e, d)) => {
                        tracing::warn!(error = %e, "this computer's device name is not kept");
                        (d.name, Some(e.to_string()))
                    }
                };
            let ring = ring::start(handle.clone(), settings.do_not_disturb);
            app.manage(AppState {
                signed: Mutex::new(None),
                channels: std::sync::Mutex::new(HashMap::new()),
                video: Mutex::new(None),
                settings: std::sync::Mutex::new(settings),
                settings_path,
                device,
                log_file,
                vault,
                signing: Mutex::new(()),
                pending_link: std::sync::Mutex::new(None),
                ringtone: std::sync::Mutex::new(None),
                ring,
                started,
            });
            shell::tray(&handle);
            // Started at login: hidden in the tray (it still rings);
            // otherwise the window shows now.
            if !std::env::args().any(|a| a == shell::HIDDEN) {
                shell::show_main(&handle);
            }
            if let Err(why) = shell::start_at_login(&handle, start_at_login) {
                tracing::warn!(%why, "start at login not set");
            }
            tauri::async_runtime::spawn(sign_in_at_start(handle.clone()));
            watch_links(&handle);
            if let Some(why) = device_trouble {
                let app = handle.clone();
                tauri::async_runtime::spawn(async move {
                    let state = app.state::<AppState>();
                    state
                        .notice(format!(
                            "{why}: this computer may show up as a new device next time"
                        ))
                        .await;
                });
            }
            Ok(())
        })
        .on_window_event(|window, event| {
            if let tauri::WindowEvent::Focused(true) = event {
                if window.label() == shell::MAIN {
                    // Back at the window: the missed calls are seen.
                    if let Some(state) = window.app_handle().try_state::<AppState>() {
                        state.ring.send(ring::Msg::MissedSeen);
                    }
                }
            }
            if let tauri::WindowEvent::CloseRequested { api, .. } = event {
                if window.label() != shell::MAIN {
                    return;
                }
                // Peal keeps running (in the tray) so it can still ring;
                // during a call the page asks before hanging up.
                api.prevent_close();
                let app = window.app_handle().clone();
                tauri::async_runtime::spawn(async move {
                    let state = app.state::<AppState>();
                    if state.current().await.is_some() {
                        state.send(UiEvent::ConfirmClose).await;
                    } else {
                        shell::hide_main(&app);
                    }
                });
            }
        })
        .invoke_handler(tauri::generate_handler![
            subscribe,
            subscribe_video,
            me,
            shown,
            start_options,
            start_local,
            sign_in,
            join,
            contacts,
            sign_out,
            devices,
            sign_out_device,
            groups,
            history,
            missed_seen,
            ringing,
            diagnostics,
            call,
            accept,
            decline,
            hang_up,
            call_over,
            set_muted,
            set_camera,
            get_settings,
            set_settings,
            close_window
        ])
        .run(tauri::generate_context!())
        .unwrap_or_else(|e| {
            eprintln!("peal-desktop: {e}");
            std::process::exit(1);
        });
}
