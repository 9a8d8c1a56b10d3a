//! Notifications on Linux (and the BSDs): notify-rust over the freedesktop
//! D-Bus interface, with the `call.incoming` / `call.unanswered` categories
//! and the actions' keys as the daemon sends them back.

use std::sync::Arc;

use super::{Action, Kind, NotifyError, OnAction};

/// A notification on screen, to close.
pub type Shown = Arc<notify_rust::NotificationHandle>;

fn action(r: &notify_rust::NotificationResponse) -> Action {
    match r {
        notify_rust::NotificationResponse::Default => Action::Show,
        notify_rust::NotificationResponse::Action(key) => Action::from_key(key),
        notify_rust::NotificationResponse::Reply(_)
        | notify_rust::NotificationResponse::Closed(_) => Action::Dismissed,
    }
}

pub async fn show(
    kind: Kind,
    summary: &str,
    body: &str,
    on_action: OnAction,
) -> Result<Shown, NotifyError> {
    use notify_rust::{Hint, Notification, Timeout, Urgency};
    let mut n = Notification::new();
    n.appname("Peal")
        .summary(summary)
        .body(body)
        .icon("call-start");
    for (key, label) in kind.actions() {
        n.action(key, label);
    }
    match kind {
        // The freedesktop categories for calls; resident and never timing
        // out, so it stays until the call is answered or over.
        Kind::Incoming => {
            n.hint(Hint::Category("call.incoming".to_owned()))
                .hint(Hint::Resident(true))
                .urgency(Urgency::Critical)
                .timeout(Timeout::Never);
        }
        Kind::Missed => {
            n.hint(Hint::Category("call.unanswered".to_owned()));
        }
    }
    let handle = Arc::new(
        n.show_async()
            .await
            .map_err(|e| NotifyError(e.to_string()))?,
    );
    let waiting = handle.clone();
    tokio::spawn(async move {
        let mut on_action = Some(on_action);
        waiting
            .wait_for_action_async(|r: &notify_rust::NotificationResponse| {
                if let Some(f) = on_action.take() {
                    f(action(r));
                }
            })
            .await;
    });
    Ok(handle)
}

pub async fn close(shown: Shown) {
    shown.close_async().await;
}
