//! The desktop app's Tauri layer: commands that adapt to `peal-client`,
//! `peal-media` and `peal-desktop-core`, and what happens reaches each page
//! over its channel, in order. No call logic lives here: the server decides
//! every call's fate, the SDK reports it, `peal_desktop_core::alerts` decides
//! what rings, this layer passes it on.
//!
//! # Layout
//! - this file: the app state, what happens once signed in, and [`run`].
//! - `commands/`: the page's commands, by concern (`account`, `calls`,
//!   `settings`, and the page's own wiring in `commands/mod.rs`).
//! - `media`: a call's media for the app, and video frames to the page.
//! - `deep_links`: `peal:` links.
//! - [`local`]: "this computer" — peal-server embedded, with the Echo contact.
//! - `ring`: the app as the ringer's shell (sound, notifications, windows).
//! - `shell`: windows, tray, missed count in the title, window state.

mod commands;
mod deep_links;
pub mod local;
mod media;
mod ring;
mod shell;

use commands::account::*;
use commands::calls::*;
use deep_links::*;
use media::*;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use peal_client::{
    Call, CallInfo, CallType, ClientConfig, ClientEvent, PealClient, ReceiverType, RejectStatus,
};
use peal_desktop_core::commands::{cmd, Reply, Request};
use peal_desktop_core::device::ThisDevice;
use peal_desktop_core::links::{self, Link, Route};
use peal_desktop_core::settings::Settings;
use peal_desktop_core::tones;
pub use peal_desktop_core::ui::{
    AppErrorCode, DeviceList, Diagnostics, Me, MediaUpdate, SettingsView, StartOptions, UiError,
    UiEvent,
};
use peal_desktop_core::vault::{self, Vault};
use peal_media::{CallSession, MediaError, SessionSettings, Sources};
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
    /// The sound player (the ringer's; the settings' "Test sound" too).
    player: peal_desktop_core::player::Player,
    /// While the settings are open: the device lists and the microphone level.
    device_watch: std::sync::Mutex<Option<media::DeviceWatch>>,
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
        .plugin(tauri_plugin_dialog::init())
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
            let (ring, player) = ring::start(handle.clone(), settings.do_not_disturb);
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
                player,
                device_watch: std::sync::Mutex::new(None),
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
            commands::subscribe,
            commands::subscribe_video,
            commands::me,
            commands::shown,
            commands::account::start_options,
            commands::account::start_local,
            commands::account::sign_in,
            commands::account::join,
            commands::account::contacts,
            commands::account::sign_out,
            commands::account::devices,
            commands::account::sign_out_device,
            commands::account::groups,
            commands::account::history,
            commands::calls::missed_seen,
            commands::calls::ringing,
            commands::settings::diagnostics,
            commands::calls::call,
            commands::calls::accept,
            commands::calls::decline,
            commands::calls::hang_up,
            commands::calls::call_over,
            commands::calls::set_muted,
            commands::calls::set_camera,
            commands::settings::get_settings,
            commands::settings::set_settings,
            commands::settings::watch_devices,
            commands::settings::unwatch_devices,
            commands::settings::test_sound,
            commands::settings::pick_ringtone,
            commands::calls::close_window
        ])
        .run(tauri::generate_context!())
        .unwrap_or_else(|e| {
            eprintln!("peal-desktop: {e}");
            std::process::exit(1);
        });
}

#[cfg(test)]
mod tests {
    /// The page's `invoke` is checked against the command table; a command
    /// in the table that `generate_handler!` misses would still fail at run
    /// time ("command not found"), so the list is checked here.
    #[test]
    fn every_command_in_the_table_is_registered_and_no_other() {
        let src = include_str!("lib.rs");
        let start = src.find("generate_handler![").expect("the handler list") + 18;
        let end = start + src[start..].find(']').expect("its end");
        let mut registered: Vec<&str> = src[start..end]
            .split(',')
            .filter_map(|p| p.trim().rsplit("::").next())
            .filter(|n| !n.is_empty())
            .collect();
        let mut table = peal_desktop_core::commands::NAMES.to_vec();
        registered.sort_unstable();
        table.sort_unstable();
        assert_eq!(registered, table);
    }
}
