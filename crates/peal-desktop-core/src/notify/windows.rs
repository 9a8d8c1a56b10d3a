//! Notifications on Windows: a WinRT toast made from [`super::toast::xml`],
//! shown under the app's AppUserModelID (the installer's Start-menu entry
//! carries it). A button's or the toast's own activation comes back as its
//! action key; a toast closed by the user or timed out is a dismissal; one
//! we withdraw (the call was answered elsewhere, or is over) is hidden.

use std::sync::{Arc, Mutex};

use windows::core::{IInspectable, Interface, HSTRING};
use windows::Data::Xml::Dom::XmlDocument;
use windows::Foundation::TypedEventHandler;
use windows::UI::Notifications::{
    ToastActivatedEventArgs, ToastDismissedEventArgs, ToastNotification, ToastNotificationManager,
    ToastNotifier,
};

use super::{toast, Action, Kind, NotifyError, OnAction};

/// The AppUserModelID toasts are shown under: the app's identifier.
const APP_ID: &str = "app.peal.desktop";

/// A toast on screen, to withdraw.
pub struct Shown {
    notifier: ToastNotifier,
    toast: ToastNotification,
}

fn err(e: windows::core::Error) -> NotifyError {
    NotifyError(e.message())
}

/// The key a toast's activation carries (`launch` or a button's `arguments`).
fn activated_key(args: &Option<IInspectable>) -> Option<String> {
    let args = args.as_ref()?.cast::<ToastActivatedEventArgs>().ok()?;
    Some(args.Arguments().ok()?.to_string())
}

pub async fn show(
    kind: Kind,
    summary: &str,
    body: &str,
    on_action: OnAction,
) -> Result<Shown, NotifyError> {
    let doc = XmlDocument::new().map_err(err)?;
    doc.LoadXml(&HSTRING::from(toast::xml(kind, summary, body)))
        .map_err(err)?;
    let toast = ToastNotification::CreateToastNotification(&doc).map_err(err)?;
    // Activated and Dismissed share the one callback: whichever comes first.
    let once = Arc::new(Mutex::new(Some(on_action)));
    let fire = move |a: Action| {
        let f = once.lock().ok().and_then(|mut o| o.take());
        if let Some(f) = f {
            f(a);
        }
    };
    let on_activated = fire.clone();
    toast
        .Activated(&TypedEventHandler::<ToastNotification, IInspectable>::new(
            move |_, args| {
                let key = activated_key(&args);
                on_activated(key.as_deref().map_or(Action::Show, Action::from_key));
                Ok(())
            },
        ))
        .map_err(err)?;
    toast
        .Dismissed(&TypedEventHandler::<
            ToastNotification,
            ToastDismissedEventArgs,
        >::new(move |_, _| {
            fire(Action::Dismissed);
            Ok(())
        }))
        .map_err(err)?;
    let notifier =
        ToastNotificationManager::CreateToastNotifierWithId(&HSTRING::from(APP_ID)).map_err(err)?;
    notifier.Show(&toast).map_err(err)?;
    Ok(Shown { notifier, toast })
}

pub async fn close(shown: Shown) {
    if let Err(e) = shown.notifier.Hide(&shown.toast) {
        tracing::debug!(error = %e.message(), "withdrawing a toast");
    }
}
