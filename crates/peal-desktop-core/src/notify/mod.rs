//! Native notifications: an incoming call with **Accept** and **Decline**,
//! and "Missed call from X" with **Call back**. What they say and what a
//! choice means is here, once; showing and withdrawing them is a backend per
//! system, each a module with the same small API (`Shown`, `show`, `close`):
//!
//! - `freedesktop` (Linux and the BSDs): notify-rust over D-Bus, with the
//!   freedesktop `call.incoming` category and actions.
//! - `windows`: a WinRT toast in the `incomingCall` scenario whose buttons
//!   come back as the same action keys; its XML is made by the pure
//!   [`toast`] module, tested on every system.
//! - `unsupported` (macOS for now): every notification is a
//!   [`NotifyError`] the app shows once.
//!
//! No notification service is an error the app shows once; the incoming
//! window and the ringtone still work.

#[cfg(all(unix, not(target_os = "macos")))]
#[path = "freedesktop.rs"]
mod backend;
#[cfg(windows)]
#[path = "windows.rs"]
mod backend;
#[cfg(not(any(windows, all(unix, not(target_os = "macos")))))]
#[path = "unsupported.rs"]
mod backend;
pub mod toast;

use std::collections::HashMap;
use std::sync::Mutex;

use peal_proto::wire::{CallInfo, CallType, ReceiverType};
use peal_proto::SessionId;

/// What the user chose on a notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Accept,
    Decline,
    /// On a missed-call notification.
    CallBack,
    /// Clicked the notification itself: bring the app forward.
    Show,
    /// Closed without choosing (or closed by us).
    Dismissed,
}

impl Action {
    /// The action key a notification service sends back.
    pub fn from_key(key: &str) -> Action {
        match key {
            "accept" => Action::Accept,
            "decline" => Action::Decline,
            "call_back" => Action::CallBack,
            "default" => Action::Show,
            _ => Action::Dismissed,
        }
    }
}

/// The actions of the incoming-call notification: (key, label).
pub const INCOMING_ACTIONS: &[(&str, &str)] = &[
    ("default", "Show"),
    ("accept", "Accept"),
    ("decline", "Decline"),
];
pub const MISSED_ACTIONS: &[(&str, &str)] = &[("default", "Show"), ("call_back", "Call back")];

#[derive(Debug, thiserror::Error)]
#[error("notifications are unavailable ({0})")]
pub struct NotifyError(pub String);

fn kind(call: &CallInfo) -> &'static str {
    match call.call_type {
        CallType::Audio => "audio",
        CallType::Video => "video",
    }
}

/// Summary and body of the incoming-call notification.
pub fn incoming_text(call: &CallInfo) -> (String, String) {
    let who = &call.initiator.name;
    let body = match call.receiver_type {
        ReceiverType::User => format!("{who} is calling you"),
        ReceiverType::Group => format!("{who} is calling {}", call.receiver.name()),
    };
    (format!("Incoming {} call", kind(call)), body)
}

/// Summary and body of the missed-call notification.
pub fn missed_text(call: &CallInfo) -> (String, String) {
    let who = &call.initiator.name;
    let body = match call.receiver_type {
        ReceiverType::User => format!("{} call from {who}", capital(kind(call))),
        ReceiverType::Group => format!("{who} called {}", call.receiver.name()),
    };
    (format!("Missed call from {who}"), body)
}

fn capital(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// Which notification: the backends dress each as their system does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Stays until the call is answered or over; its actions are
    /// [`INCOMING_ACTIONS`].
    Incoming,
    /// Informational; its actions are [`MISSED_ACTIONS`].
    Missed,
}

impl Kind {
    pub fn actions(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Kind::Incoming => INCOMING_ACTIONS,
            Kind::Missed => MISSED_ACTIONS,
        }
    }
}

/// Shows notifications and remembers the incoming ones, to close them.
#[derive(Default)]
pub struct Notifier {
    shown: Mutex<HashMap<SessionId, backend::Shown>>,
}

impl Notifier {
    pub fn new() -> Notifier {
        Notifier::default()
    }

    /// Shows "Incoming call" with Accept / Decline; `on_action` hears the choice.
    pub async fn incoming(
        &self,
        call: &CallInfo,
        on_action: impl FnOnce(Action) + Send + 'static,
    ) -> Result<(), NotifyError> {
        let (summary, body) = incoming_text(call);
        let shown = backend::show(Kind::Incoming, &summary, &body, Box::new(on_action)).await?;
        if let Ok(mut m) = self.shown.lock() {
            m.insert(call.session_id.clone(), shown);
        }
        Ok(())
    }

    /// Closes the incoming notification of `id`, if one shows.
    pub async fn close(&self, id: &SessionId) {
        let shown = self.shown.lock().ok().and_then(|mut m| m.remove(id));
        if let Some(s) = shown {
            backend::close(s).await;
        }
    }

    /// Shows "Missed call from X" with Call back.
    pub async fn missed(
        &self,
        call: &CallInfo,
        on_action: impl FnOnce(Action) + Send + 'static,
    ) -> Result<(), NotifyError> {
        let (summary, body) = missed_text(call);
        backend::show(Kind::Missed, &summary, &body, Box::new(on_action))
            .await
            .map(drop)
    }
}

/// What hears the choice made on one notification (once).
pub type OnAction = Box<dyn FnOnce(Action) + Send + 'static>;

#[cfg(test)]
mod tests {
    use super::*;

    fn call(receiver_type: ReceiverType, call_type: CallType) -> CallInfo {
        let group = receiver_type == ReceiverType::Group;
        crate::fixtures::call("c1", peal_proto::wire::Status::Initiated, call_type, group)
    }

    #[test]
    fn notifications_say_who_calls_how_and_whom() {
        let c = call(ReceiverType::User, CallType::Video);
        assert_eq!(
            incoming_text(&c),
            ("Incoming video call".into(), "Alice is calling you".into())
        );
        assert_eq!(
            missed_text(&c),
            (
                "Missed call from Alice".into(),
                "Video call from Alice".into()
            )
        );
        let g = call(ReceiverType::Group, CallType::Audio);
        assert_eq!(incoming_text(&g).0, "Incoming audio call");
        assert_eq!(incoming_text(&g).1, "Alice is calling Team");
        assert_eq!(missed_text(&g).1, "Alice called Team");
    }

    #[test]
    fn action_keys_map_to_choices_and_anything_else_is_a_dismissal() {
        assert_eq!(Action::from_key("accept"), Action::Accept);
        assert_eq!(Action::from_key("decline"), Action::Decline);
        assert_eq!(Action::from_key("call_back"), Action::CallBack);
        assert_eq!(Action::from_key("default"), Action::Show);
        assert_eq!(Action::from_key("launch_missiles"), Action::Dismissed);
    }

    #[cfg(all(unix, not(target_os = "macos")))]
    #[tokio::test]
    async fn no_notification_service_is_an_error_not_a_panic() {
        // A session bus that isn't there (this process only reads it here).
        std::env::set_var(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent/peal-bus",
        );
        let n = Notifier::new();
        let r = n
            .incoming(&call(ReceiverType::User, CallType::Video), |_| {})
            .await;
        let e = r.expect_err("no bus, no notification");
        assert!(
            e.to_string().starts_with("notifications are unavailable"),
            "{e}"
        );
        n.close(&SessionId("c1".into())).await; // nothing shown: nothing to close
    }
}
