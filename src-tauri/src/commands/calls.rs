//! Placing, answering, declining and hanging up calls, and the call's
//! controls; the ringer hears of each first, then the server.

use crate::*;

#[tauri::command]
pub(crate) async fn missed_seen(state: State<'_, AppState>) -> Reply<cmd::missed_seen> {
    state.ring.send(ring::Msg::MissedSeen);
    Ok(())
}

/// The calls ringing here (the incoming window asks when it opens).
#[tauri::command]
pub(crate) async fn ringing(state: State<'_, AppState>) -> Reply<cmd::ringing> {
    Ok(state.client().await?.ringing())
}

pub(crate) async fn set_current(state: &AppState, id: &SessionId) {
    if let Some(s) = state.signed.lock().await.as_mut() {
        s.current = Some(id.clone());
    }
}

/// Places a call and joins its media; the ringer plays ringback meanwhile.
pub(crate) async fn place(
    state: &AppState,
    receiver: String,
    group: bool,
    video: bool,
) -> Result<CallInfo, UiError> {
    let client = state.client().await?;
    let rt = if group {
        ReceiverType::Group
    } else {
        ReceiverType::User
    };
    let ct = if video {
        CallType::Video
    } else {
        CallType::Audio
    };
    let info = client.initiate_call(Call::new(receiver, rt, ct)).await?;
    // The pages show the call from the ringer's queue, in order with its events.
    state.ring.send(ring::Msg::Placed(info.clone(), video));
    if info.status.is_live() {
        set_current(state, &info.session_id).await;
        join_media(state, &client, &info, video).await;
    }
    Ok(info)
}

/// Calls a user (or a group), audio or video, and joins its media.
#[tauri::command]
pub(crate) async fn call(
    state: State<'_, AppState>,
    request: Request<cmd::call>,
) -> Reply<cmd::call> {
    place(&state, request.receiver, request.group, request.video).await
}

/// "Call back" from a missed-call notification: the page shows the call.
pub(crate) async fn call_back(app: &AppHandle, missed: &CallInfo) -> Result<(), UiError> {
    let state = app.state::<AppState>();
    let (receiver, group) = match &missed.receiver {
        peal_proto::wire::Receiver::Group { guid, .. } => (guid.to_string(), true),
        peal_proto::wire::Receiver::User { .. } => (missed.initiator.uid.to_string(), false),
    };
    let video = missed.call_type == CallType::Video;
    place(&state, receiver, group, video).await.map(drop)
}

/// Accepts a ringing call (from the page, the incoming window or the
/// notification): ringing stops here at once, the media joins, and the main
/// window comes forward with the call.
pub(crate) async fn answer(
    app: &AppHandle,
    id: SessionId,
    video: bool,
) -> Result<CallInfo, UiError> {
    let state = app.state::<AppState>();
    state.ring.send(ring::Msg::Answered(id.clone()));
    let client = state.client().await?;
    let info = client.accept_call(&id).await?;
    shell::show_main(app);
    set_current(&state, &info.session_id).await;
    state.ring.send(ring::Msg::Accepted(info.clone(), video));
    if info.status.is_live() {
        join_media(&state, &client, &info, video).await;
    }
    Ok(info)
}

pub(crate) async fn decline_call(app: &AppHandle, id: SessionId) -> Result<CallInfo, UiError> {
    let state = app.state::<AppState>();
    state.ring.send(ring::Msg::Declined(id.clone()));
    let client = state.client().await?;
    Ok(client.reject_call(&id, RejectStatus::Rejected).await?)
}

#[tauri::command]
pub(crate) async fn accept(app: AppHandle, request: Request<cmd::accept>) -> Reply<cmd::accept> {
    answer(&app, request.session_id, request.video).await
}

#[tauri::command]
pub(crate) async fn decline(app: AppHandle, request: Request<cmd::decline>) -> Reply<cmd::decline> {
    decline_call(&app, request.session_id).await
}

/// Cancels a call still ringing, or leaves/ends one in progress.
#[tauri::command]
pub(crate) async fn hang_up(
    state: State<'_, AppState>,
    request: Request<cmd::hang_up>,
) -> Reply<cmd::hang_up> {
    end_call(&state, request.session_id).await
}

async fn end_call(state: &AppState, id: SessionId) -> Result<CallInfo, UiError> {
    let client = state.client().await?;
    state.ring.send(ring::Msg::HungUp(id.clone()));
    leave_media(state).await;
    Ok(client.hang_up(&id).await?)
}

/// Leaves the media of `session_id` once that call is over (the page calls
/// this on its end); the media of any other call is left alone.
#[tauri::command]
pub(crate) async fn call_over(
    state: State<'_, AppState>,
    request: Request<cmd::call_over>,
) -> Reply<cmd::call_over> {
    if state
        .media()
        .await
        .is_some_and(|m| *m.call() == request.session_id)
    {
        leave_media(&state).await;
    }
    Ok(())
}

pub(crate) async fn media(state: &AppState) -> Result<Arc<CallSession>, UiError> {
    state
        .media()
        .await
        .ok_or_else(|| UiError::new(AppErrorCode::NotInCall, "not in a call"))
}

#[tauri::command]
pub(crate) async fn set_muted(
    state: State<'_, AppState>,
    request: Request<cmd::set_muted>,
) -> Reply<cmd::set_muted> {
    media(&state).await?.set_audio_muted(request.muted);
    Ok(())
}

#[tauri::command]
pub(crate) async fn set_camera(
    state: State<'_, AppState>,
    request: Request<cmd::set_camera>,
) -> Reply<cmd::set_camera> {
    media(&state).await?.set_video_enabled(request.on);
    Ok(())
}

/// Leaves the call (if any) and hides the window (Peal stays in the tray).
#[tauri::command]
pub(crate) async fn close_window(
    app: AppHandle,
    state: State<'_, AppState>,
) -> Reply<cmd::close_window> {
    if let Some(id) = state.current().await {
        let _ = end_call(&state, id).await;
    }
    shell::hide_main(&app);
    Ok(())
}
