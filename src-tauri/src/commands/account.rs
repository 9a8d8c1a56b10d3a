//! Signing in (this computer, a server, a kept session, an invite), out,
//! and what an account sees: contacts, groups, history, devices.

use crate::*;
use peal_desktop_core::commands::{Join, SignIn};

/// How the page should start: on this computer at once, or the form filled in.
#[tauri::command]
pub(crate) async fn start_options(state: State<'_, AppState>) -> Reply<cmd::start_options> {
    Ok(start_options_of(&state))
}

pub(crate) fn start_options_of(state: &AppState) -> StartOptions {
    let s = state.settings();
    let asked = std::env::args().any(|a| a == "--this-computer");
    let resume = !asked
        && vault::saved_session(&*state.vault)
            .is_some_and(|k| s.server.as_ref() == Some(&k.server));
    StartOptions {
        this_computer: asked || s.this_computer,
        resume,
        server: s.server,
        user: s.user,
    }
}

/// Remembers how the user signed in, for the next start.
pub(crate) fn remember_sign_in(state: &AppState, server: Option<(&str, &str)>) {
    let Ok(mut s) = state.settings.lock() else {
        return;
    };
    s.this_computer = server.is_none();
    if let Some((url, uid)) = server {
        s.server = Some(url.to_owned());
        s.user = Some(uid.to_owned());
    }
    if let Err(e) = s.save(&state.settings_path) {
        tracing::warn!(error = %e, "settings not saved");
    }
}

/// "This computer": starts the embedded server and signs in as the local user.
#[tauri::command]
pub(crate) async fn start_local(app: AppHandle) -> Reply<cmd::start_local> {
    start_here(&app).await
}

pub(crate) async fn start_here(app: &AppHandle) -> Result<Me, UiError> {
    let state = app.state::<AppState>();
    let _one = state.signing.lock().await;
    if let Some(s) = state.signed.lock().await.as_ref() {
        return Ok(s.me.clone());
    }
    let dir = app
        .path()
        .app_data_dir()
        .map_err(UiError::internal)?
        .join("server");
    let (local, client) = local::start(dir, &state.device, &*state.vault).await?;
    let url = local.url.clone();
    // The desktop bench reads this line from stderr.
    eprintln!("peal-desktop: this computer's Peal server is at {url}");
    tracing::info!(%url, "this computer's Peal server is up");
    remember_sign_in(&state, None);
    Ok(signed_in(app.clone(), &state, client, Some(local), url).await)
}

/// Signs in to a Peal server.
#[tauri::command]
pub(crate) async fn sign_in(
    app: AppHandle,
    state: State<'_, AppState>,
    request: Request<cmd::sign_in>,
) -> Reply<cmd::sign_in> {
    let _one = state.signing.lock().await;
    if let Some(s) = state.signed.lock().await.as_ref() {
        return Ok(s.me.clone());
    }
    let SignIn { server, uid, .. } = &request;
    let config = ClientConfig::new(server, uid, &request.password, &state.device);
    let client = PealClient::connect(config).await?;
    Ok(keep_and_show(&app, &state, client, request.server, &request.uid).await)
}

/// Makes an account on `server` with an invite and signs in with it.
#[tauri::command]
pub(crate) async fn join(
    app: AppHandle,
    state: State<'_, AppState>,
    request: Request<cmd::join>,
) -> Reply<cmd::join> {
    let _one = state.signing.lock().await;
    if state.signed.lock().await.is_some() {
        return Err(UiError::new(
            AppErrorCode::SignedIn,
            "you're signed in already: sign out first to join another server",
        ));
    }
    let Join { server, uid, .. } = &request;
    let config = ClientConfig::new(server, uid, &request.password, &state.device);
    let client = PealClient::join(config, &request.invite, &request.name).await?;
    tracing::info!(%server, %uid, "joined with an invite");
    Ok(keep_and_show(&app, &state, client, request.server, &request.uid).await)
}

/// A sign-in with a password (or an invite) is remembered for the next
/// start, its session kept, and the page shown the account.
async fn keep_and_show(
    app: &AppHandle,
    state: &AppState,
    client: PealClient,
    server: String,
    uid: &str,
) -> Me {
    remember_sign_in(state, Some((&server, uid)));
    keep_session(state, &server, &client).await;
    signed_in(app.clone(), state, client, None, server).await
}

/// Keeps the session for the next start (the keyring, or the 0600 file,
/// which the user is told about).
pub(crate) async fn keep_session(state: &AppState, server: &str, client: &PealClient) {
    let saved = vault::SavedSession {
        server: server.to_owned(),
        session: client.session(),
    };
    match vault::save_session(&*state.vault, &saved) {
        Ok(()) if state.vault.is_file() => {
            state
                .notice(format!(
                    "No keyring service here: your sign-in is kept in {} so Peal signs you in again at the next start.",
                    state.vault.describe()
                ))
                .await;
        }
        Ok(()) => {}
        Err(e) => {
            tracing::warn!(error = %e, "session not kept");
            state
                .notice(format!("Your sign-in can't be kept ({e}): Peal will ask for your password at the next start."))
                .await;
        }
    }
}

/// How long the app waits before trying a kept sign-in again while the
/// server can't be reached (after a reboot, the network often comes up
/// after the desktop does).
pub(crate) const RESUME_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// At start, with no window needed (a start at login is hidden): "this
/// computer" when that is how the user signed in last, or the kept session
/// of a server (no password); while the server can't be reached it tries
/// again, saying so on the sign-in screen. A session the server no longer
/// takes is forgotten and the sign-in screen says why.
pub(crate) async fn sign_in_at_start(app: AppHandle) {
    let state = app.state::<AppState>();
    let opts = start_options_of(&state);
    if opts.this_computer {
        if let Err(e) = start_here(&app).await {
            tracing::warn!(error = %e, "this computer's server did not start");
            let problem = format!("This computer's Peal server did not start: {e}");
            state
                .send(UiEvent::SigningIn {
                    problem: Some(problem),
                })
                .await;
        }
        return;
    }
    if !opts.resume {
        return;
    }
    loop {
        let one = state.signing.lock().await;
        if state.signed.lock().await.is_some() {
            return;
        }
        let Some(saved) = vault::saved_session(&*state.vault) else {
            return;
        };
        let uid = saved.session.user.uid.to_string();
        let config = ClientConfig::new(&saved.server, &uid, "", &state.device);
        match PealClient::connect_with_session(config, saved.session).await {
            Ok(client) => {
                tracing::info!(server = %saved.server, %uid, "signed in again with the kept session");
                signed_in(app.clone(), &state, client, None, saved.server).await;
                return;
            }
            Err(peal_client::ClientError::Unauthorized(_)) => {
                tracing::info!(server = %saved.server, "kept session ended");
                if let Err(e) = vault::forget_session(&*state.vault) {
                    tracing::warn!(error = %e, "ended session not forgotten");
                }
                let problem = format!("Your session on {} has ended; sign in again.", saved.server);
                state
                    .send(UiEvent::SigningIn {
                        problem: Some(problem),
                    })
                    .await;
                return;
            }
            Err(e) => {
                tracing::info!(server = %saved.server, error = %e, "kept session not resumed yet");
                let problem = format!(
                    "Can't reach {} ({e}); trying again in {} s.",
                    saved.server,
                    RESUME_RETRY.as_secs()
                );
                state
                    .send(UiEvent::SigningIn {
                        problem: Some(problem),
                    })
                    .await;
                drop(one);
                tokio::time::sleep(RESUME_RETRY).await;
            }
        }
    }
}

/// The contacts; their presence is watched from then on (presence events).
#[tauri::command]
pub(crate) async fn contacts(state: State<'_, AppState>) -> Reply<cmd::contacts> {
    let client = state.client().await?;
    let contacts = client.contacts().await?;
    let max = peal_proto::wire::MAX_WATCHED;
    let uids = contacts.iter().take(max).map(|c| c.uid.clone()).collect();
    if let Err(e) = client.watch_presence(uids) {
        tracing::warn!(error = %e, "presence not watched");
    }
    Ok(contacts)
}

/// Signs out: the event socket closes, "this computer"'s server stops, and
/// the next start shows the sign-in screen.
#[tauri::command]
pub(crate) async fn sign_out(state: State<'_, AppState>) -> Reply<cmd::sign_out> {
    if let Some(s) = state.signed.lock().await.as_ref() {
        if !s.me.local {
            let _ = s.client.logout().await;
        }
    }
    if let Ok(mut s) = state.settings.lock() {
        s.this_computer = false;
        let _ = s.save(&state.settings_path);
    }
    forget_sign_in(&state).await;
    Ok(())
}

/// Leaves the call, closes the client, forgets the kept session, and shows
/// the sign-in screen.
pub(crate) async fn forget_sign_in(state: &AppState) {
    if let Err(e) = vault::forget_session(&*state.vault) {
        tracing::warn!(error = %e, "kept session not forgotten");
    }
    leave_media(state).await;
    let signed = state.signed.lock().await.take();
    if let Some(s) = signed {
        s.client.close();
    }
    state.send(UiEvent::SignedOut).await;
}

/// This user's devices (settings' "Your devices").
#[tauri::command]
pub(crate) async fn devices(state: State<'_, AppState>) -> Reply<cmd::devices> {
    Ok(state.client().await?.devices().await?)
}

/// Signs another of this user's devices out; the devices after.
#[tauri::command]
pub(crate) async fn sign_out_device(
    state: State<'_, AppState>,
    request: Request<cmd::sign_out_device>,
) -> Reply<cmd::sign_out_device> {
    let client = state.client().await?;
    Ok(client.sign_out_device(&request.device_id).await?)
}

#[tauri::command]
pub(crate) async fn groups(state: State<'_, AppState>) -> Reply<cmd::groups> {
    Ok(state.client().await?.groups().await?)
}

/// The call history.
#[tauri::command]
pub(crate) async fn history(state: State<'_, AppState>) -> Reply<cmd::history> {
    Ok(state.client().await?.history(200).await?)
}
