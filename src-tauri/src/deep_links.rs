//! `peal:` links: opened at launch or handed over by a second launch; what
//! they do is decided by `peal_desktop_core::links` (pure), carried out here.

use crate::*;

/// A `peal:` link opened (at launch, or by a second launch while Peal runs):
/// the window comes forward and the page asks before anything happens.
pub(crate) async fn open_link(app: AppHandle, text: String) {
    shell::show_main(&app);
    let state = app.state::<AppState>();
    let link = match links::parse(&text) {
        Ok(l) => l,
        Err(e) => {
            tracing::info!(link = %text.chars().take(200).collect::<String>(), error = %e, "link refused");
            state.notice(format!("Can't open the link: {e}.")).await;
            return;
        }
    };
    tracing::info!(?link, "link opened");
    let server = state.signed(|s| Some(s.me.server.clone())).await;
    let signing_in_now = {
        let o = start_options_of(&state);
        o.resume || o.this_computer
    };
    if server.is_none() && signing_in_now {
        // Signing in by itself right now: asked about once it has.
        if let Ok(mut p) = state.pending_link.lock() {
            *p = Some(link);
        }
        return;
    }
    follow_link(&state, link, server.as_deref()).await;
}

pub(crate) async fn follow_link(state: &AppState, link: Link, signed_in_to: Option<&str>) {
    let keep = |link: Link| {
        if let Ok(mut p) = state.pending_link.lock() {
            *p = Some(link);
        }
    };
    match links::route(&link, signed_in_to) {
        Route::ConfirmCall { user, video } => {
            state
                .send(UiEvent::ConfirmCall {
                    user: user.to_string(),
                    video,
                })
                .await;
        }
        Route::SignInFirst { server } => match signed_in_to {
            Some(now) => {
                let message = format!("That link is for {server}, and you're signed in to {now}: sign out and sign in to {server} to use it.");
                state.notice(message).await;
            }
            None => {
                let message = format!("Sign in to {server} to follow the link.");
                keep(link);
                let server = Some(server);
                state.send(UiEvent::SignInForLink { server, message }).await;
            }
        },
        Route::SignInAnywhere => {
            keep(link);
            let message = "Sign in to follow the link.".to_owned();
            state
                .send(UiEvent::SignInForLink {
                    server: None,
                    message,
                })
                .await;
        }
        Route::AlreadyMember { server } => {
            state
                .notice(format!(
                    "That invitation is to {server}, where you're signed in already."
                ))
                .await;
        }
        Route::SignOutToJoin {
            server,
            signed_in_to,
        } => {
            state
                .notice(format!("That invitation is to {server}, and you're signed in to {signed_in_to}: sign out first to join {server}."))
                .await;
        }
        Route::Join { server, invite } => {
            // Say now if the invite can't be used, not after the form.
            let config = ClientConfig::new(&server, "", "", &state.device);
            let problem = match PealClient::check_invite(&config, &invite).await {
                Ok(()) => None,
                Err(e) => {
                    tracing::info!(%server, error = %e, "invite not usable");
                    Some(match e {
                        peal_client::ClientError::Refused(b) => b.message,
                        other => format!("Can't reach {server} ({other})."),
                    })
                }
            };
            let join = UiEvent::JoinInvite {
                server,
                invite,
                problem,
            };
            state.send(join).await;
        }
    }
}

/// `peal:` links: the one Peal was launched with, and those a second launch
/// hands over.
pub(crate) fn watch_links(app: &AppHandle) {
    use tauri_plugin_deep_link::DeepLinkExt;
    let h = app.clone();
    app.deep_link().on_open_url(move |ev| {
        for url in ev.urls() {
            tauri::async_runtime::spawn(open_link(h.clone(), url.to_string()));
        }
    });
    match app.deep_link().get_current() {
        Ok(Some(urls)) => {
            for url in urls {
                tauri::async_runtime::spawn(open_link(app.clone(), url.to_string()));
            }
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "launch link not read"),
    }
}
