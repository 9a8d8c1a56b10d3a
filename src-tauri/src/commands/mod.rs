//! The page's commands, one file per concern; each adapts to the SDK,
//! peal-media or peal-desktop-core and decides nothing of its own. Here:
//! what wires a page up (its channels, who is signed in, what it shows).

pub(crate) mod account;
pub(crate) mod calls;
pub(crate) mod settings;

use crate::*;
use peal_desktop_core::commands::Screen;

/// Subscribes this page (its window) to events.
#[tauri::command]
pub(crate) async fn subscribe(
    window: tauri::Window,
    state: State<'_, AppState>,
    events: Channel<UiEvent>,
) -> Reply<cmd::subscribe> {
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
pub(crate) async fn subscribe_video(
    state: State<'_, AppState>,
    video: Channel<InvokeResponseBody>,
) -> Reply<cmd::subscribe_video> {
    *state.video.lock().await = Some(video);
    Ok(())
}

/// Who is signed in, if anyone (a page that loads late asks).
#[tauri::command]
pub(crate) async fn me(state: State<'_, AppState>) -> Reply<cmd::me> {
    Ok(state.signed(|s| Some(s.me.clone())).await)
}

/// The page says what it has put on screen; the first time the contacts
/// show, the time since launch goes to the log (and the diagnostics).
#[tauri::command]
pub(crate) async fn shown(
    state: State<'_, AppState>,
    request: Request<cmd::shown>,
) -> Reply<cmd::shown> {
    match request.what {
        Screen::Contacts => {
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
    }
    Ok(())
}
