//! The ringer: drives [`crate::alerts`] with the SDK's call events and what
//! the user did, in one task and in order, and carries out its effects on a
//! [`Shell`] (the sound device, notifications, the incoming window, the
//! pages). The Tauri app is one shell; the tests below use a simulated one,
//! so every ring scenario runs without a window, a sound card or a bus.
//!
//! Call events reach the pages from here, each just before the effects it
//! causes, so a page never hears "stop ringing" before the event that
//! stopped it. Time is an input (`clock`), and deadlines are slept on with
//! tokio's timer, so a test with paused time runs a 30 s ring in no time.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use peal_proto::time::Millis;
use peal_proto::wire::{CallInfo, Event, EventKind};
use peal_proto::SessionId;
use tokio::sync::mpsc;

use crate::alerts::{Alerts, Effect, Input, Sound};
use crate::tones::{self, Tone, ToneError};
use crate::ui::{Diagnostics, Playing, UiEvent};

/// What happened, for the ringer.
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

/// A notification for the shell to show, close or replace. The shell runs
/// them in order on its own queue, so a slow or absent notification service
/// never holds up the ringtone or the window.
#[derive(Clone, Debug, PartialEq)]
pub enum Note {
    /// Accept / Decline for a call ringing here.
    Incoming(CallInfo),
    Close(SessionId),
    /// "Missed call from X" with Call back.
    Missed(CallInfo),
}

/// Everything the ringer does to the world. Each method returns at once.
pub trait Shell: Send + Sync + 'static {
    /// Tells every open page.
    fn page(&self, event: UiEvent);
    /// The ringtone the settings choose, or why it can't be played.
    fn ringtone(&self) -> Result<Tone, ToneError>;
    /// The ringtone volume the settings choose, 0-100.
    fn volume(&self) -> u8;
    /// Plays `tone` (looping) in place of whatever plays now.
    fn play(&self, what: Playing, tone: Tone, volume: u8);
    fn stop_sound(&self);
    fn show_incoming(&self, call: &CallInfo);
    fn hide_incoming(&self);
    /// The missed calls not yet seen (the title, the tray).
    fn set_missed(&self, count: u32);
    fn notify(&self, note: Note);
    /// Declines `call` as busy on the server (do not disturb), not waiting.
    fn decline_busy(&self, call: SessionId);
}

/// The handle the app keeps: what happened goes in with [`Ring::send`].
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

/// The ringer for `shell`, and the task to spawn (on the app's runtime) that
/// runs it until every [`Ring`] is dropped. `clock` is the wall clock.
pub fn ringer(
    shell: Arc<dyn Shell>,
    do_not_disturb: bool,
    clock: Arc<dyn Fn() -> Millis + Send + Sync>,
    diag: Arc<Mutex<Diagnostics>>,
) -> (Ring, impl Future<Output = ()> + Send + 'static) {
    let (tx, rx) = mpsc::unbounded_channel();
    let ring = Ring {
        tx,
        diag: diag.clone(),
    };
    let task = run(shell, rx, Alerts::new(do_not_disturb), clock, diag);
    (ring, task)
}

async fn run(
    shell: Arc<dyn Shell>,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    mut alerts: Alerts,
    clock: Arc<dyn Fn() -> Millis + Send + Sync>,
    diag: Arc<Mutex<Diagnostics>>,
) {
    loop {
        let wait = alerts
            .next_deadline()
            .map(|d| Duration::from_millis(u64::try_from(d.since(clock())).unwrap_or(0)));
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
            Some(Msg::Event(e)) => shell.page(UiEvent::Call { event: e.clone() }),
            Some(Msg::Placed(call, video) | Msg::Accepted(call, video)) => {
                shell.page(UiEvent::Joined {
                    call: Box::new(call.clone()),
                    video: *video,
                });
            }
            Some(
                Msg::Answered(_)
                | Msg::Declined(_)
                | Msg::HungUp(_)
                | Msg::DoNotDisturb(_)
                | Msg::MissedSeen,
            )
            | None => {}
        }
        let t = clock();
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
            perform(shell.as_ref(), f, &diag);
        }
        if let Ok(mut d) = diag.lock() {
            d.calls_ringing = alerts.ringing().count();
            d.missed = alerts.missed();
        }
    }
}

fn perform(shell: &dyn Shell, f: Effect, diag: &Mutex<Diagnostics>) {
    let set_sound = |s: Option<Playing>| {
        if let Ok(mut d) = diag.lock() {
            d.sound = s;
        }
    };
    match f {
        Effect::Sound(Some(Sound::Ringtone)) => {
            let tone = shell.ringtone().unwrap_or_else(|e| {
                shell.page(UiEvent::Notice {
                    message: format!("Your ringtone can't be played ({e}); using the classic one."),
                });
                tones::ringtone("classic").unwrap_or_else(tones::ringback)
            });
            shell.play(Playing::Ringtone, tone, shell.volume());
            set_sound(Some(Playing::Ringtone));
        }
        Effect::Sound(Some(Sound::Ringback)) => {
            shell.play(Playing::Ringback, tones::ringback(), shell.volume());
            set_sound(Some(Playing::Ringback));
        }
        Effect::Sound(None) => {
            shell.stop_sound();
            set_sound(None);
        }
        Effect::BusyTone => {
            shell.play(Playing::Busy, tones::busy(), shell.volume());
            set_sound(Some(Playing::Busy));
        }
        Effect::ShowIncoming(call) => {
            shell.page(UiEvent::Ringing {
                call: Some(Box::new(call.clone())),
            });
            shell.show_incoming(&call);
        }
        Effect::HideIncoming => {
            shell.page(UiEvent::Ringing { call: None });
            shell.hide_incoming();
        }
        Effect::Notify(call) => shell.notify(Note::Incoming(call)),
        Effect::CloseNotification(id) => shell.notify(Note::Close(id)),
        Effect::NotifyMissed(call) => shell.notify(Note::Missed(call)),
        Effect::DeclineBusy(id) => shell.decline_busy(id),
        Effect::MissedCount(n) => {
            shell.set_missed(n);
            shell.page(UiEvent::Missed { count: n });
        }
    }
}

#[cfg(test)]
mod tests {
    //! Ring scenarios against a simulated shell: what a person would see
    //! and hear, in order, with tokio's clock paused so timeouts take no time.

    use super::*;
    use crate::fixtures;
    use peal_proto::wire::{CallType, Reason, Status};

    /// What the simulated desktop saw, in order.
    #[derive(Clone, Debug, PartialEq)]
    enum Seen {
        Page(String),
        Play(Playing, u8),
        Stop,
        Window(Option<SessionId>),
        Missed(u32),
        Note(Note),
        Busy(SessionId),
    }

    #[derive(Default)]
    struct Sim {
        seen: Mutex<Vec<Seen>>,
        /// The ringtone file is broken.
        bad_ringtone: bool,
    }

    impl Sim {
        fn saw(&self, s: Seen) {
            self.seen.lock().unwrap().push(s);
        }

        fn take(&self) -> Vec<Seen> {
            std::mem::take(&mut *self.seen.lock().unwrap())
        }
    }

    impl Shell for Sim {
        fn page(&self, event: UiEvent) {
            let name = match &event {
                UiEvent::Call { event } => format!("call:{}", event.event.as_str()),
                UiEvent::Joined { .. } => "joined".to_owned(),
                UiEvent::Ringing { call } => format!("ringing:{}", call.is_some()),
                UiEvent::Missed { count } => format!("missed:{count}"),
                UiEvent::Notice { message } => format!("notice:{message}"),
                other @ (UiEvent::Presence { .. }
                | UiEvent::SignedIn { .. }
                | UiEvent::SigningIn { .. }
                | UiEvent::SignedOut
                | UiEvent::Connection { .. }
                | UiEvent::Media { .. }
                | UiEvent::ConfirmCall { .. }
                | UiEvent::SignInForLink { .. }
                | UiEvent::JoinInvite { .. }
                | UiEvent::ContactAdded { .. }
                | UiEvent::ConfirmClose
                | UiEvent::Devices { .. }
                | UiEvent::MicLevel { .. }) => format!("{other:?}"),
            };
            self.saw(Seen::Page(name));
        }
        fn ringtone(&self) -> Result<Tone, ToneError> {
            if self.bad_ringtone {
                Err(ToneError::Open(
                    "/gone.ogg".into(),
                    std::io::Error::from(std::io::ErrorKind::NotFound),
                ))
            } else {
                Ok(tones::ringtone("classic").unwrap())
            }
        }
        fn volume(&self) -> u8 {
            70
        }
        fn play(&self, what: Playing, _tone: Tone, volume: u8) {
            self.saw(Seen::Play(what, volume));
        }
        fn stop_sound(&self) {
            self.saw(Seen::Stop);
        }
        fn show_incoming(&self, call: &CallInfo) {
            self.saw(Seen::Window(Some(call.session_id.clone())));
        }
        fn hide_incoming(&self) {
            self.saw(Seen::Window(None));
        }
        fn set_missed(&self, count: u32) {
            self.saw(Seen::Missed(count));
        }
        fn notify(&self, note: Note) {
            self.saw(Seen::Note(note));
        }
        fn decline_busy(&self, call: SessionId) {
            self.saw(Seen::Busy(call));
        }
    }

    /// The ringer on a simulated shell; its clock follows tokio's (paused).
    fn start(sim: Sim, dnd: bool) -> (Ring, Arc<Sim>) {
        let sim = Arc::new(sim);
        let t0 = tokio::time::Instant::now();
        let clock = Arc::new(move || {
            Millis(1_000 + i64::try_from(t0.elapsed().as_millis()).unwrap_or(i64::MAX))
        });
        let (ring, task) = ringer(sim.clone(), dnd, clock, Arc::default());
        tokio::spawn(task);
        (ring, sim)
    }

    fn event(kind: EventKind, id: &str, reason: Option<Reason>) -> Msg {
        Msg::Event(Box::new(Event {
            event: kind,
            call: fixtures::call(id, Status::Initiated, CallType::Video, false),
            reason,
            participant: None,
        }))
    }

    fn sid(id: &str) -> SessionId {
        SessionId(id.to_owned())
    }

    /// Lets the ringer take everything sent so far.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_rings_with_sound_window_and_notification_and_the_page_hears_the_event_first() {
        let (ring, sim) = start(Sim::default(), false);
        ring.send(event(EventKind::IncomingCallReceived, "c1", None));
        settle().await;
        let c1 = fixtures::call("c1", Status::Initiated, CallType::Video, false);
        assert_eq!(
            sim.take(),
            vec![
                Seen::Page("call:incoming_call_received".into()),
                Seen::Play(Playing::Ringtone, 70),
                Seen::Page("ringing:true".into()),
                Seen::Window(Some(sid("c1"))),
                Seen::Note(Note::Incoming(c1)),
            ]
        );
        assert_eq!(ring.diag.lock().unwrap().sound, Some(Playing::Ringtone));
        assert_eq!(ring.diag.lock().unwrap().calls_ringing, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_caller_cancels_ringing_stops_everywhere_and_it_counts_as_missed() {
        let (ring, sim) = start(Sim::default(), false);
        ring.send(event(EventKind::IncomingCallReceived, "c1", None));
        settle().await;
        sim.take();
        ring.send(event(
            EventKind::IncomingCallCancelled,
            "c1",
            Some(Reason::Cancelled),
        ));
        settle().await;
        let seen = sim.take();
        assert_eq!(seen[0], Seen::Page("call:incoming_call_cancelled".into()));
        for s in [
            Seen::Stop,
            Seen::Window(None),
            Seen::Note(Note::Close(sid("c1"))),
            Seen::Missed(1),
            Seen::Page("missed:1".into()),
        ] {
            assert!(seen.contains(&s), "{s:?} in {seen:?}");
        }
        assert!(seen
            .iter()
            .any(|s| matches!(s, Seen::Note(Note::Missed(c)) if c.session_id == sid("c1"))));
        assert_eq!(ring.diag.lock().unwrap().sound, None);
        // Looking at the window counts them seen.
        ring.send(Msg::MissedSeen);
        settle().await;
        assert!(sim.take().contains(&Seen::Missed(0)));
    }

    #[tokio::test(start_paused = true)]
    async fn answered_here_it_stops_ringing_and_is_not_missed() {
        let (ring, sim) = start(Sim::default(), false);
        ring.send(event(EventKind::IncomingCallReceived, "c1", None));
        settle().await;
        sim.take();
        ring.send(Msg::Answered(sid("c1")));
        settle().await;
        let seen = sim.take();
        assert!(seen.contains(&Seen::Stop) && seen.contains(&Seen::Window(None)));
        assert!(
            !seen.iter().any(|s| matches!(s, Seen::Missed(_))),
            "{seen:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn with_no_word_from_the_server_a_ring_stops_by_itself_after_its_time() {
        let (ring, sim) = start(Sim::default(), false);
        ring.send(event(EventKind::IncomingCallReceived, "c1", None));
        settle().await;
        sim.take();
        // The ring deadline is 30 s after it started, plus the grace.
        tokio::time::sleep(Duration::from_millis(
            30_000 + u64::try_from(crate::alerts::RING_GRACE_MS).unwrap() - 100,
        ))
        .await;
        settle().await;
        assert_eq!(sim.take(), vec![], "still ringing just before");
        tokio::time::sleep(Duration::from_millis(200)).await;
        settle().await;
        let seen = sim.take();
        assert!(
            seen.contains(&Seen::Stop) && seen.contains(&Seen::Missed(1)),
            "{seen:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn in_do_not_disturb_nothing_sounds_the_server_hears_busy_and_it_is_missed() {
        let (ring, sim) = start(Sim::default(), true);
        ring.send(event(EventKind::IncomingCallReceived, "c1", None));
        settle().await;
        let seen = sim.take();
        assert!(seen.contains(&Seen::Busy(sid("c1"))), "{seen:?}");
        assert!(
            !seen
                .iter()
                .any(|s| matches!(s, Seen::Play(..) | Seen::Window(Some(_)))),
            "{seen:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn our_call_plays_ringback_until_answered_and_the_busy_tone_when_refused() {
        let (ring, sim) = start(Sim::default(), false);
        let out = fixtures::call("c2", Status::Initiated, CallType::Audio, false);
        ring.send(Msg::Placed(out.clone(), false));
        settle().await;
        assert_eq!(
            sim.take(),
            vec![
                Seen::Page("joined".into()),
                Seen::Play(Playing::Ringback, 70)
            ]
        );
        ring.send(Msg::Event(Box::new(Event {
            event: EventKind::OutgoingCallRejected,
            call: out,
            reason: Some(Reason::Busy),
            participant: None,
        })));
        settle().await;
        let seen = sim.take();
        assert!(seen.contains(&Seen::Play(Playing::Busy, 70)), "{seen:?}");
        assert_eq!(ring.diag.lock().unwrap().sound, Some(Playing::Busy));
    }

    #[tokio::test(start_paused = true)]
    async fn a_broken_ringtone_file_rings_the_classic_tone_and_says_why() {
        let sim = Sim {
            bad_ringtone: true,
            ..Sim::default()
        };
        let (ring, sim) = start(sim, false);
        ring.send(event(EventKind::IncomingCallReceived, "c1", None));
        settle().await;
        let seen = sim.take();
        assert!(
            seen.contains(&Seen::Play(Playing::Ringtone, 70)),
            "{seen:?}"
        );
        assert!(
            seen.iter().any(
                |s| matches!(s, Seen::Page(p) if p.starts_with("notice:Your ringtone can't be played"))
            ),
            "{seen:?}"
        );
    }
}
