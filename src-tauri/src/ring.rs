//! The app as [`peal_desktop_core::ringer`]'s [`Shell`]: the ringer decides
//! (and is tested against a simulated shell); this carries its effects out
//! with rodio, the notification service, the incoming window, the tray and
//! the pages' channels, and runs the notification queue whose Accept,
//! Decline and Call back come back into the app's commands.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use peal_client::RejectStatus;
use peal_desktop_core::notify::{Action, Notifier};
use peal_desktop_core::player::{Player, PlayerEvent};
use peal_desktop_core::ringer::{self, Note, Shell};
use peal_desktop_core::tones::{Tone, ToneError};
use peal_desktop_core::ui::Playing;
use peal_proto::time::Millis;
use peal_proto::wire::CallInfo;
use peal_proto::SessionId;
use tauri::{AppHandle, Manager};
use tokio::sync::mpsc;

use crate::{shell, AppState, Diagnostics, UiEvent};

pub use peal_desktop_core::ringer::{Msg, Ring};

fn now() -> Millis {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    Millis(ms)
}

/// The app as the ringer's shell: rodio for sound, the notification queue,
/// the incoming window, the tray and title, and the pages' channels.
struct TauriShell {
    app: AppHandle,
    player: Player,
    notes: Notes,
}

impl TauriShell {
    fn state(&self) -> Option<tauri::State<'_, AppState>> {
        self.app.try_state::<AppState>()
    }
}

impl Shell for TauriShell {
    fn page(&self, event: UiEvent) {
        if let Some(state) = self.state() {
            state.broadcast(event);
        }
    }

    fn ringtone(&self) -> Result<Tone, ToneError> {
        match self.state() {
            Some(state) => state.ringtone(),
            None => Err(ToneError::Empty("the settings, not loaded yet,".into())),
        }
    }

    fn volume(&self) -> u8 {
        self.state()
            .map(|s| s.settings().ringtone_volume)
            .unwrap_or_default()
    }

    fn play(&self, what: Playing, tone: Tone, volume: u8) {
        let output = self
            .state()
            .and_then(|s| s.settings().output_for(what).map(str::to_owned));
        self.player
            .play(what.as_str(), tone, volume, output.as_deref());
    }

    fn stop_sound(&self) {
        self.player.stop();
    }

    fn show_incoming(&self, call: &CallInfo) {
        shell::show_incoming(&self.app, call);
    }

    fn hide_incoming(&self) {
        shell::hide_incoming(&self.app);
    }

    fn set_missed(&self, count: u32) {
        shell::set_missed(&self.app, count);
    }

    fn notify(&self, note: Note) {
        self.notes.send(note);
    }

    fn decline_busy(&self, call: SessionId) {
        let app = self.app.clone();
        tauri::async_runtime::spawn(async move {
            let state = app.state::<AppState>();
            if let Ok(client) = state.client().await {
                if let Err(e) = client.reject_call(&call, RejectStatus::Busy).await {
                    tracing::warn!(error = %e, "do-not-disturb decline");
                }
            }
        });
    }
}

/// Starts the ringer on this app; `do_not_disturb` as the settings say.
/// The player is the ringer's, for other sounds (the settings' test) too.
pub fn start(app: AppHandle, do_not_disturb: bool) -> (Ring, Player) {
    let diag = Arc::new(Mutex::new(Diagnostics::default()));
    let d = diag.clone();
    let a = app.clone();
    let player = Player::spawn(
        move |ev| {
            let Ok(mut diag) = d.lock() else { return };
            match ev {
                PlayerEvent::Started { name, at } => {
                    if name == Playing::Ringtone.as_str() {
                        if let Some(heard) = diag.ring_heard_at.take() {
                            let ms = at.saturating_duration_since(heard).as_secs_f64() * 1e3;
                            diag.event_to_ringtone_ms.push(ms);
                            eprintln!(
                            "peal-desktop: ringtone playing {ms:.1} ms after the incoming event"
                        );
                        }
                    }
                }
                PlayerEvent::Unavailable(why) => {
                    let first = diag.sound_unavailable.is_none();
                    diag.sound_unavailable = Some(why.clone());
                    if first {
                        if let Some(state) = a.try_state::<AppState>() {
                            state.broadcast(UiEvent::Notice {
                            message: format!(
                                "No sound output ({why}): calls ring silently, in the window and the notification."
                            ),
                        });
                        }
                    }
                }
                PlayerEvent::NotConnected { wanted } => {
                    tracing::warn!(output = %wanted, "sound output not connected; playing on the default");
                    if let Some(state) = a.try_state::<AppState>() {
                        state.broadcast(UiEvent::Notice {
                            message: format!(
                                "{wanted} is not connected: sounds play on the default output."
                            ),
                        });
                    }
                }
            }
        },
        peal_media::devices::output_device,
    );
    let notes = Notes::start(app.clone(), diag.clone());
    let shell = Arc::new(TauriShell {
        app,
        player: player.clone(),
        notes,
    });
    let (ring, task) = ringer::ringer(shell, do_not_disturb, Arc::new(now), diag);
    tauri::async_runtime::spawn(task);
    (ring, player)
}

/// The notification task's queue.
struct Notes {
    tx: mpsc::UnboundedSender<Note>,
}

impl Notes {
    fn start(app: AppHandle, diag: Arc<Mutex<Diagnostics>>) -> Notes {
        let (tx, mut rx) = mpsc::unbounded_channel::<Note>();
        tauri::async_runtime::spawn(async move {
            let notifier = Notifier::new();
            while let Some(note) = rx.recv().await {
                let r = match note {
                    Note::Incoming(call) => {
                        let a = app.clone();
                        let id = call.session_id.clone();
                        let video = call.call_type == peal_client::CallType::Video;
                        notifier
                            .incoming(&call, move |action| {
                                tauri::async_runtime::spawn(on_incoming_action(
                                    a, id, video, action,
                                ));
                            })
                            .await
                    }
                    Note::Close(id) => {
                        notifier.close(&id).await;
                        Ok(())
                    }
                    Note::Missed(call) => {
                        let a = app.clone();
                        let back = call.clone();
                        notifier
                            .missed(&call, move |action| {
                                tauri::async_runtime::spawn(on_missed_action(a, back, action));
                            })
                            .await
                    }
                };
                notifications_failed(&app.state::<AppState>(), &diag, r).await;
            }
        });
        Notes { tx }
    }

    fn send(&self, n: Note) {
        let _ = self.tx.send(n);
    }
}

/// Accept or Decline on the incoming-call notification.
async fn on_incoming_action(app: AppHandle, id: SessionId, video: bool, action: Action) {
    let r = match action {
        Action::Accept => crate::answer(&app, id, video).await.map(drop),
        Action::Decline => crate::decline_call(&app, id).await.map(drop),
        Action::Show => {
            shell::show_main(&app);
            Ok(())
        }
        Action::CallBack | Action::Dismissed => Ok(()),
    };
    if let Err(e) = r {
        app.state::<AppState>().notice(e.message).await;
    }
}

/// Call back on the missed-call notification.
async fn on_missed_action(app: AppHandle, missed: CallInfo, action: Action) {
    match action {
        Action::CallBack => {
            shell::show_main(&app);
            if let Err(e) = crate::call_back(&app, &missed).await {
                app.state::<AppState>().notice(e.message).await;
            }
        }
        Action::Show => shell::show_main(&app),
        Action::Accept | Action::Decline | Action::Dismissed => {}
    }
}

/// Says once that notifications can't be shown (the window still rings).
async fn notifications_failed(
    state: &AppState,
    diag: &Arc<Mutex<Diagnostics>>,
    r: Result<(), peal_desktop_core::notify::NotifyError>,
) {
    let Err(e) = r else { return };
    let first = diag
        .lock()
        .map(|mut d| d.notifications_unavailable.replace(e.to_string()).is_none())
        .unwrap_or(false);
    if first {
        state
            .notice(format!(
                "No desktop notifications ({}): incoming calls show in Peal's own window.",
                e.0
            ))
            .await;
    }
}
