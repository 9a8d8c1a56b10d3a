//! Drives [`peal_desktop_core::alerts`]: feeds it the SDK's call events and
//! what the user did, in one task and in order, and performs its effects
//! (sound, notifications, the incoming window, the missed count). Call
//! events reach the pages from here too, each just before its effects, so a
//! page never sees "stop ringing" before the event that caused it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use peal_client::RejectStatus;
use peal_desktop_core::alerts::{Alerts, Effect, Input, Sound};
use peal_desktop_core::notify::{Action, Notifier};
use peal_desktop_core::player::{Player, PlayerEvent};
use peal_desktop_core::tones;
use peal_proto::time::Millis;
use peal_proto::wire::{CallInfo, Event, EventKind};
use peal_proto::SessionId;
use tauri::{AppHandle, Manager};
use tokio::sync::mpsc;

use crate::{shell, AppState, Diagnostics, UiEvent};

/// What happened, for the driver.
#[derive(Debug)]
pub enum Msg {
    Event(Box<Event>),
    /// We placed this call (video or not): the pages show it, then the ringback.
    Placed(CallInfo, bool),
    Answered(SessionId),
    /// The server took our accept: the pages show the call.
    Accepted(CallInfo, bool),
    Declined(SessionId),
    HungUp(SessionId),
    DoNotDisturb(bool),
    MissedSeen,
}

#[derive(Clone)]
pub struct Ring {
    tx: mpsc::UnboundedSender<Msg>,
    pub diag: Arc<Mutex<Diagnostics>>,
}

impl Ring {
    pub fn send(&self, m: Msg) {
        let _ = self.tx.send(m);
    }
}

fn now() -> Millis {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    Millis(ms)
}

/// Starts the driver; `do_not_disturb` as the settings say.
pub fn start(app: AppHandle, do_not_disturb: bool) -> Ring {
    let (tx, rx) = mpsc::unbounded_channel();
    let diag = Arc::new(Mutex::new(Diagnostics::default()));
    let d = diag.clone();
    let a = app.clone();
    let player = Player::spawn(move |ev| {
        let Ok(mut diag) = d.lock() else { return };
        match ev {
            PlayerEvent::Started { name, at } => {
                if name == "ringtone" {
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
                    let a = a.clone();
                    tauri::async_runtime::spawn(async move {
                        a.state::<AppState>()
                            .notice(format!(
                                "No sound output ({why}): calls ring silently, in the window and the notification."
                            ))
                            .await;
                    });
                }
            }
        }
    });
    let ring = Ring {
        tx,
        diag: diag.clone(),
    };
    tauri::async_runtime::spawn(run(app, rx, player, Alerts::new(do_not_disturb), diag));
    ring
}

async fn run(
    app: AppHandle,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    player: Player,
    mut alerts: Alerts,
    diag: Arc<Mutex<Diagnostics>>,
) {
    let notes = Notes::start(app.clone(), diag.clone());
    loop {
        let wait = alerts
            .next_deadline()
            .map(|d| Duration::from_millis(u64::try_from(d.since(now())).unwrap_or(0)));
        let msg = match wait {
            Some(w) => tokio::select! {
                m = rx.recv() => m.map(Some),
                () = tokio::time::sleep(w) => Some(None),
            },
            None => rx.recv().await.map(Some),
        };
        let Some(msg) = msg else { return };
        if let Some(Msg::Event(e)) = &msg {
            if e.event == EventKind::IncomingCallReceived {
                if let Ok(mut d) = diag.lock() {
                    d.ring_heard_at = Some(Instant::now());
                }
            }
        }
        // The pages hear the call event (or of the call we placed) first,
        // then what it changes here.
        match &msg {
            Some(Msg::Event(e)) => {
                app.state::<AppState>()
                    .send(UiEvent::Call { event: e.clone() })
                    .await;
            }
            Some(Msg::Placed(call, video) | Msg::Accepted(call, video)) => {
                app.state::<AppState>()
                    .send(UiEvent::Joined {
                        call: Box::new(call.clone()),
                        video: *video,
                    })
                    .await;
            }
            _ => {}
        }
        let t = now();
        let fx = match &msg {
            None => alerts.step(Input::Tick, t),
            Some(Msg::Event(e)) => alerts.step(Input::Event(e), t),
            Some(Msg::Placed(c, _)) => alerts.step(Input::Placed(c), t),
            Some(Msg::Answered(id)) => alerts.step(Input::Answered(id), t),
            Some(Msg::Accepted(..)) => Vec::new(),
            Some(Msg::Declined(id)) => alerts.step(Input::Declined(id), t),
            Some(Msg::HungUp(id)) => alerts.step(Input::HungUp(id), t),
            Some(Msg::DoNotDisturb(on)) => alerts.step(Input::SetDoNotDisturb(*on), t),
            Some(Msg::MissedSeen) => alerts.step(Input::MissedSeen, t),
        };
        for f in fx {
            perform(&app, f, &player, &notes, &diag).await;
        }
        if let Ok(mut d) = diag.lock() {
            d.calls_ringing = alerts.ringing().count();
            d.missed = alerts.missed();
        }
    }
}

async fn perform(
    app: &AppHandle,
    f: Effect,
    player: &Player,
    notes: &Notes,
    diag: &Arc<Mutex<Diagnostics>>,
) {
    let state = app.state::<AppState>();
    let set_sound = |s: Option<&str>| {
        if let Ok(mut d) = diag.lock() {
            d.sound = s.map(str::to_owned);
        }
    };
    match f {
        Effect::Sound(Some(Sound::Ringtone)) => {
            let settings = state.settings();
            let tone = match state.ringtone() {
                Ok(t) => t,
                Err(e) => {
                    state
                        .notice(format!(
                            "Your ringtone can't be played ({e}); using the classic one."
                        ))
                        .await;
                    tones::ringtone("classic").unwrap_or_else(tones::ringback)
                }
            };
            player.play("ringtone", tone, settings.ringtone_volume);
            set_sound(Some("ringtone"));
        }
        Effect::Sound(Some(Sound::Ringback)) => {
            player.play(
                "ringback",
                tones::ringback(),
                state.settings().ringtone_volume,
            );
            set_sound(Some("ringback"));
        }
        Effect::Sound(None) => {
            player.stop();
            set_sound(None);
        }
        Effect::BusyTone => {
            player.play("busy", tones::busy(), state.settings().ringtone_volume);
            set_sound(Some("busy"));
        }
        Effect::ShowIncoming(call) => {
            state
                .send(UiEvent::Ringing {
                    call: Some(Box::new(call.clone())),
                })
                .await;
            shell::show_incoming(app, &call);
        }
        Effect::HideIncoming => {
            state.send(UiEvent::Ringing { call: None }).await;
            shell::hide_incoming(app);
        }
        // Notifications go through their own task, in order: a slow or
        // absent notification service never holds up the ringtone or the window.
        Effect::Notify(call) => notes.send(Note::Incoming(call)),
        Effect::CloseNotification(id) => notes.send(Note::Close(id)),
        Effect::NotifyMissed(call) => notes.send(Note::Missed(call)),
        // The server's answer is not waited for here: the ringer goes on.
        Effect::DeclineBusy(id) => {
            if let Ok(client) = state.client().await {
                tauri::async_runtime::spawn(async move {
                    if let Err(e) = client.reject_call(&id, RejectStatus::Busy).await {
                        tracing::warn!(error = %e, "do-not-disturb decline");
                    }
                });
            }
        }
        Effect::MissedCount(n) => {
            shell::set_missed(app, n);
            state.send(UiEvent::Missed { count: n }).await;
        }
    }
}

enum Note {
    Incoming(CallInfo),
    Close(SessionId),
    Missed(CallInfo),
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
