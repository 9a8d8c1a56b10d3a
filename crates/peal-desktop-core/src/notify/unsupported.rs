//! Where Peal has no notification backend yet (macOS: issue 14's
//! UNUserNotificationCenter work): every notification is an error the app
//! shows once, and calls ring in the incoming window with the ringtone.

use super::{Kind, NotifyError, OnAction};

pub struct Shown;

pub async fn show(
    _kind: Kind,
    _summary: &str,
    _body: &str,
    _on_action: OnAction,
) -> Result<Shown, NotifyError> {
    Err(NotifyError(
        "this build of Peal has no notifications for this system yet".to_owned(),
    ))
}

pub async fn close(_shown: Shown) {}
