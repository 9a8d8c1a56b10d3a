//! When the desktop rings, what it notifies and what the incoming window
//! shows: a pure function of the call events this device hears, what the user
//! did here, and the time (an input, so tests never sleep).
//!
//! ```text
//!   incoming_call_received ──▶ ringing (ringtone, notification, incoming window)
//!        │  answered here / declined here / answered or declined elsewhere ──▶ quiet
//!        │  cancelled / timed out / call ended / connection lost           ──▶ quiet + missed
//!        └  the ring deadline passed with no word from the server          ──▶ quiet + missed
//!   placed a call ──▶ ringback ──▶ accepted: quiet | rejected, busy, unanswered: busy tone
//! ```
//!
//! Ringing never outlives a call: besides every event that ends it, each ring
//! has a local deadline (the call's own ring time plus a grace period, counted
//! from when this device heard it), so a lost connection cannot leave the
//! desktop ringing for a call that is long gone.

use peal_proto::time::Millis;
use peal_proto::wire::{CallInfo, Event, EventKind, Reason};
use peal_proto::SessionId;

/// How long after a call's own ring time this device gives up on it without
/// word from the server.
pub const RING_GRACE_MS: i64 = 5_000;

/// What should be sounding. One at a time; a ringing call wins over ringback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sound {
    /// Someone is calling us (looping).
    Ringtone,
    /// Our call is ringing the other side (looping).
    Ringback,
}

/// What the app must do now; performed in order by the Tauri layer. A step
/// gives the sound first, then the incoming window, then the rest.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Play this sound (looping) instead of whatever plays now, or stop (`None`).
    Sound(Option<Sound>),
    /// The busy tone, once: our call was rejected, busy or not answered.
    BusyTone,
    /// Show the incoming window for this call (replacing what it showed).
    ShowIncoming(CallInfo),
    HideIncoming,
    /// A native notification with Accept and Decline for this call.
    Notify(CallInfo),
    CloseNotification(SessionId),
    /// "Missed call from X" with Call back.
    NotifyMissed(CallInfo),
    /// Do not disturb: tell the server we are busy.
    DeclineBusy(SessionId),
    /// The number of missed calls not yet seen (title, tray, page).
    MissedCount(u32),
}

/// What happened.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    /// A call event from the SDK, in order.
    Event(&'a Event),
    /// We placed this call (it rings the other side while `initiated`).
    Placed(&'a CallInfo),
    /// We accepted this call here (window, notification or page).
    Answered(&'a SessionId),
    /// We declined this call here.
    Declined(&'a SessionId),
    /// We cancelled or hung up this call.
    HungUp(&'a SessionId),
    SetDoNotDisturb(bool),
    /// The user looked at the missed calls.
    MissedSeen,
    /// Time passed (see [`Alerts::next_deadline`]).
    Tick,
}

#[derive(Clone, Debug)]
struct Ring {
    call: CallInfo,
    /// Local time after which this ring stops even without an event.
    until: Millis,
}

/// The alert state of one signed-in device.
#[derive(Debug, Default)]
pub struct Alerts {
    /// Calls ringing here, in the order they arrived; the window shows the first.
    ringing: Vec<Ring>,
    /// Our own call while it rings the other side.
    outgoing: Option<SessionId>,
    dnd: bool,
    missed: u32,
    sound: Option<Sound>,
}

/// Whether a ring that stopped for `reason` is a missed call for us.
fn missed_for(reason: Option<Reason>) -> bool {
    match reason {
        // Someone (us, on another device) dealt with it.
        Some(
            Reason::AnsweredElsewhere
            | Reason::DeclinedElsewhere
            | Reason::CancelledElsewhere
            | Reason::EndedElsewhere,
        ) => false,
        Some(
            Reason::Cancelled
            | Reason::Timeout
            | Reason::CallEnded
            | Reason::ConnectionLost
            | Reason::Rejected
            | Reason::Busy
            | Reason::HungUp,
        )
        | None => true,
    }
}

impl Alerts {
    pub fn new(do_not_disturb: bool) -> Alerts {
        Alerts {
            dnd: do_not_disturb,
            ..Alerts::default()
        }
    }

    /// The calls ringing here, oldest first.
    pub fn ringing(&self) -> impl Iterator<Item = &CallInfo> {
        self.ringing.iter().map(|r| &r.call)
    }

    /// What is sounding now.
    pub fn sound(&self) -> Option<Sound> {
        self.sound
    }

    pub fn missed(&self) -> u32 {
        self.missed
    }

    /// When the next [`Input::Tick`] is due (the earliest ring deadline).
    pub fn next_deadline(&self) -> Option<Millis> {
        self.ringing.iter().map(|r| r.until).min()
    }

    /// One input in, the effects to perform out (in order).
    pub fn step(&mut self, input: Input<'_>, now: Millis) -> Vec<Effect> {
        let mut fx = Vec::new();
        let shown = self.ringing.first().map(|r| r.call.session_id.clone());
        match input {
            Input::Event(e) => self.event(e, now, &mut fx),
            Input::Placed(call) => {
                if call.status == peal_proto::wire::Status::Initiated {
                    self.outgoing = Some(call.session_id.clone());
                }
            }
            Input::Answered(id) | Input::Declined(id) => self.stop_ring(id, false, &mut fx),
            Input::HungUp(id) => {
                if self.outgoing.as_ref() == Some(id) {
                    self.outgoing = None;
                }
            }
            Input::SetDoNotDisturb(on) => self.dnd = on,
            Input::MissedSeen => {
                if self.missed != 0 {
                    self.missed = 0;
                    fx.push(Effect::MissedCount(0));
                }
            }
            Input::Tick => {
                let expired: Vec<SessionId> = self
                    .ringing
                    .iter()
                    .filter(|r| r.until <= now)
                    .map(|r| r.call.session_id.clone())
                    .collect();
                for id in expired {
                    self.stop_ring(&id, true, &mut fx);
                }
            }
        }
        // What is heard and seen first (the sound, then the incoming window,
        // which follows the first ringing call), then the rest.
        let mut first = Vec::new();
        let wanted = if !self.ringing.is_empty() && !self.dnd {
            Some(Sound::Ringtone)
        } else if self.outgoing.is_some() {
            Some(Sound::Ringback)
        } else {
            None
        };
        if wanted != self.sound {
            self.sound = wanted;
            first.push(Effect::Sound(wanted));
        }
        // A busy tone comes after the silence of the same step.
        if let Some(i) = fx.iter().position(|f| *f == Effect::BusyTone) {
            first.push(fx.remove(i));
        }
        let ringing = self.ringing.first().map(|r| &r.call);
        if ringing.map(|c| &c.session_id) != shown.as_ref() {
            first.push(match ringing {
                Some(c) => Effect::ShowIncoming(c.clone()),
                None => Effect::HideIncoming,
            });
        }
        first.extend(fx);
        first
    }

    fn event(&mut self, e: &Event, now: Millis, fx: &mut Vec<Effect>) {
        let id = &e.call.session_id;
        match e.event {
            EventKind::IncomingCallReceived => {
                if self.ringing.iter().any(|r| &r.call.session_id == id) {
                    return; // heard twice (a replay): already ringing
                }
                if self.dnd {
                    self.missed += 1;
                    fx.push(Effect::DeclineBusy(id.clone()));
                    fx.push(Effect::MissedCount(self.missed));
                    return;
                }
                let ring_ms = e.call.ring_deadline.since(e.call.initiated_at).max(0);
                self.ringing.push(Ring {
                    call: e.call.clone(),
                    until: now.plus(ring_ms + RING_GRACE_MS),
                });
                fx.push(Effect::Notify(e.call.clone()));
            }
            EventKind::IncomingCallCancelled => {
                let missed = missed_for(e.reason);
                self.stop_ring(id, missed, fx);
            }
            EventKind::CallEndedMessageReceived => {
                self.stop_ring(id, missed_for(e.reason), fx);
                if self.outgoing.as_ref() == Some(id) {
                    self.outgoing = None;
                }
            }
            EventKind::OutgoingCallAccepted => {
                if self.outgoing.as_ref() == Some(id) {
                    self.outgoing = None;
                }
            }
            EventKind::OutgoingCallRejected => {
                if self.outgoing.as_ref() == Some(id) {
                    self.outgoing = None;
                    fx.push(Effect::BusyTone);
                }
            }
            EventKind::ParticipantJoined | EventKind::ParticipantLeft => {}
        }
    }

    /// Stops ringing for `id` if it rings; `missed` counts and notifies it.
    fn stop_ring(&mut self, id: &SessionId, missed: bool, fx: &mut Vec<Effect>) {
        let Some(i) = self.ringing.iter().position(|r| &r.call.session_id == id) else {
            return;
        };
        let ring = self.ringing.remove(i);
        fx.push(Effect::CloseNotification(id.clone()));
        if missed {
            self.missed += 1;
            fx.push(Effect::NotifyMissed(ring.call));
            fx.push(Effect::MissedCount(self.missed));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peal_proto::wire::{CallType, Status};

    fn call(id: &str, status: Status) -> CallInfo {
        crate::fixtures::call(id, status, CallType::Video, false)
    }

    fn ev(kind: EventKind, id: &str, reason: Option<Reason>) -> Event {
        Event {
            event: kind,
            call: call(id, Status::Initiated),
            reason,
            participant: None,
        }
    }

    fn ring(a: &mut Alerts, id: &str, now: i64) -> Vec<Effect> {
        a.step(
            Input::Event(&ev(EventKind::IncomingCallReceived, id, None)),
            Millis(now),
        )
    }

    fn sid(id: &str) -> SessionId {
        SessionId(id.to_owned())
    }

    #[test]
    fn an_incoming_call_rings_notifies_and_shows_the_window() {
        let mut a = Alerts::new(false);
        let fx = ring(&mut a, "c1", 0);
        assert_eq!(
            fx,
            vec![
                Effect::Sound(Some(Sound::Ringtone)),
                Effect::ShowIncoming(call("c1", Status::Initiated)),
                Effect::Notify(call("c1", Status::Initiated)),
            ]
        );
        assert_eq!(
            ring(&mut a, "c1", 10),
            vec![],
            "a replayed ring changes nothing"
        );
    }

    #[test]
    fn answering_here_stops_ringing_everywhere_and_is_not_missed() {
        for input in [Input::Answered(&sid("c1")), Input::Declined(&sid("c1"))] {
            let mut a = Alerts::new(false);
            ring(&mut a, "c1", 0);
            let fx = a.step(input, Millis(5));
            assert_eq!(
                fx,
                vec![
                    Effect::Sound(None),
                    Effect::HideIncoming,
                    Effect::CloseNotification(sid("c1")),
                ]
            );
            assert_eq!(a.missed(), 0);
        }
    }

    #[test]
    fn answered_or_declined_on_another_device_stops_ringing_without_a_missed_call() {
        for reason in [Reason::AnsweredElsewhere, Reason::DeclinedElsewhere] {
            let mut a = Alerts::new(false);
            ring(&mut a, "c1", 0);
            let fx = a.step(
                Input::Event(&ev(EventKind::IncomingCallCancelled, "c1", Some(reason))),
                Millis(5),
            );
            assert!(fx.contains(&Effect::Sound(None)), "{reason:?}: {fx:?}");
            assert!(!fx.iter().any(|f| matches!(f, Effect::NotifyMissed(_))));
            assert_eq!(a.missed(), 0);
        }
    }

    #[test]
    fn caller_cancels_or_the_ring_times_out_and_it_is_a_missed_call() {
        for reason in [
            Reason::Cancelled,
            Reason::Timeout,
            Reason::CallEnded,
            Reason::ConnectionLost,
        ] {
            let mut a = Alerts::new(false);
            ring(&mut a, "c1", 0);
            let fx = a.step(
                Input::Event(&ev(EventKind::IncomingCallCancelled, "c1", Some(reason))),
                Millis(5),
            );
            assert_eq!(
                fx,
                vec![
                    Effect::Sound(None),
                    Effect::HideIncoming,
                    Effect::CloseNotification(sid("c1")),
                    Effect::NotifyMissed(call("c1", Status::Initiated)),
                    Effect::MissedCount(1),
                ],
                "{reason:?}"
            );
        }
    }

    #[test]
    fn ringing_stops_at_the_local_deadline_when_the_server_goes_quiet() {
        let mut a = Alerts::new(false);
        ring(&mut a, "c1", 100);
        // The call rings 30 s (31_000 - 1_000); plus the grace, from when we heard it.
        let deadline = 100 + 30_000 + RING_GRACE_MS;
        assert_eq!(a.next_deadline(), Some(Millis(deadline)));
        assert_eq!(a.step(Input::Tick, Millis(deadline - 1)), vec![]);
        assert_eq!(a.sound(), Some(Sound::Ringtone));
        let fx = a.step(Input::Tick, Millis(deadline));
        assert!(fx.contains(&Effect::Sound(None)), "{fx:?}");
        assert!(fx.contains(&Effect::MissedCount(1)), "{fx:?}");
        assert_eq!(a.next_deadline(), None);
        // The server's late word about it changes nothing more.
        let late = a.step(
            Input::Event(&ev(
                EventKind::IncomingCallCancelled,
                "c1",
                Some(Reason::Timeout),
            )),
            Millis(deadline + 10),
        );
        assert_eq!(late, vec![]);
        assert_eq!(a.missed(), 1);
    }

    #[test]
    fn two_calls_ring_the_window_shows_the_first_then_the_next() {
        let mut a = Alerts::new(false);
        ring(&mut a, "c1", 0);
        let fx = ring(&mut a, "c2", 1);
        assert_eq!(fx, vec![Effect::Notify(call("c2", Status::Initiated))]);
        let fx = a.step(Input::Answered(&sid("c1")), Millis(2));
        assert_eq!(
            fx,
            vec![
                Effect::ShowIncoming(call("c2", Status::Initiated)),
                Effect::CloseNotification(sid("c1")),
            ],
            "still ringing for c2"
        );
        assert_eq!(a.sound(), Some(Sound::Ringtone));
    }

    #[test]
    fn do_not_disturb_declines_as_busy_and_counts_a_missed_call_silently() {
        let mut a = Alerts::new(true);
        let fx = ring(&mut a, "c1", 0);
        assert_eq!(
            fx,
            vec![Effect::DeclineBusy(sid("c1")), Effect::MissedCount(1)]
        );
        assert_eq!(a.sound(), None);
        assert_eq!(a.ringing().count(), 0);
        assert_eq!(
            a.step(Input::MissedSeen, Millis(1)),
            vec![Effect::MissedCount(0)]
        );
        assert_eq!(a.step(Input::MissedSeen, Millis(2)), vec![]);
    }

    #[test]
    fn turning_do_not_disturb_on_while_ringing_silences_but_keeps_the_call() {
        let mut a = Alerts::new(false);
        ring(&mut a, "c1", 0);
        assert_eq!(
            a.step(Input::SetDoNotDisturb(true), Millis(1)),
            vec![Effect::Sound(None)]
        );
        assert_eq!(a.ringing().count(), 1);
    }

    #[test]
    fn our_call_rings_back_until_accepted() {
        let mut a = Alerts::new(false);
        let placed = call("o1", Status::Initiated);
        assert_eq!(
            a.step(Input::Placed(&placed), Millis(0)),
            vec![Effect::Sound(Some(Sound::Ringback))]
        );
        let fx = a.step(
            Input::Event(&ev(EventKind::OutgoingCallAccepted, "o1", None)),
            Millis(1),
        );
        assert_eq!(fx, vec![Effect::Sound(None)]);
    }

    #[test]
    fn our_call_cancelled_on_another_of_our_devices_stops_ringback_quietly() {
        let mut a = Alerts::new(false);
        a.step(Input::Placed(&call("o1", Status::Initiated)), Millis(0));
        let fx = a.step(
            Input::Event(&ev(
                EventKind::CallEndedMessageReceived,
                "o1",
                Some(Reason::CancelledElsewhere),
            )),
            Millis(1),
        );
        assert_eq!(
            fx,
            vec![Effect::Sound(None)],
            "no busy tone, no missed call"
        );
        assert_eq!(a.missed(), 0);
    }

    #[test]
    fn our_call_rejected_stops_ringback_then_plays_the_busy_tone() {
        let mut a = Alerts::new(false);
        a.step(Input::Placed(&call("o1", Status::Initiated)), Millis(0));
        let fx = a.step(
            Input::Event(&ev(
                EventKind::OutgoingCallRejected,
                "o1",
                Some(Reason::Busy),
            )),
            Millis(1),
        );
        assert_eq!(fx, vec![Effect::Sound(None), Effect::BusyTone]);
    }

    #[test]
    fn cancelling_our_call_stops_ringback_and_a_call_already_live_has_none() {
        let mut a = Alerts::new(false);
        a.step(Input::Placed(&call("o1", Status::Initiated)), Millis(0));
        assert_eq!(
            a.step(Input::HungUp(&sid("o1")), Millis(1)),
            vec![Effect::Sound(None)]
        );
        // A call answered at once (glare) never rang back.
        assert_eq!(
            a.step(Input::Placed(&call("o2", Status::Ongoing)), Millis(2)),
            vec![]
        );
    }

    #[test]
    fn an_incoming_ring_wins_over_our_ringback_and_gives_it_back() {
        let mut a = Alerts::new(false);
        a.step(Input::Placed(&call("o1", Status::Initiated)), Millis(0));
        let fx = ring(&mut a, "c1", 1);
        assert!(fx.contains(&Effect::Sound(Some(Sound::Ringtone))));
        let fx = a.step(Input::Declined(&sid("c1")), Millis(2));
        assert!(fx.contains(&Effect::Sound(Some(Sound::Ringback))), "{fx:?}");
    }

    #[test]
    fn events_for_calls_that_do_not_ring_here_change_nothing() {
        let mut a = Alerts::new(false);
        for kind in [
            EventKind::IncomingCallCancelled,
            EventKind::CallEndedMessageReceived,
            EventKind::OutgoingCallAccepted,
            EventKind::OutgoingCallRejected,
            EventKind::ParticipantJoined,
            EventKind::ParticipantLeft,
        ] {
            assert_eq!(
                a.step(Input::Event(&ev(kind, "zz", None)), Millis(0)),
                vec![],
                "{kind:?}"
            );
        }
        assert_eq!(a.step(Input::Answered(&sid("zz")), Millis(0)), vec![]);
    }
}
