//! Settings and diagnostics.

use crate::*;

/// What sounds now and what was measured (for diagnostics and tests).
#[tauri::command]
pub(crate) async fn diagnostics(state: State<'_, AppState>) -> Result<Diagnostics, UiError> {
    let mut d = state
        .ring
        .diag
        .lock()
        .map(|d| d.clone())
        .unwrap_or_default();
    d.media_stats = state
        .media()
        .await
        .and_then(|m| serde_json::to_value(m.stats()).ok());
    d.frames_to_page = (
        FRAMES_TO_PAGE[0].load(std::sync::atomic::Ordering::Relaxed),
        FRAMES_TO_PAGE[1].load(std::sync::atomic::Ordering::Relaxed),
    );
    d.device = Some(state.device.clone());
    d.version = env!("CARGO_PKG_VERSION").to_owned();
    if let Some(path) = &state.log_file {
        d.log_file = Some(path.display().to_string());
        d.log_tail = peal_desktop_core::logs::tail(path, LOG_LINES_IN_DIAGNOSTICS);
    }
    Ok(d)
}

/// Log lines "Copy diagnostics" attaches.
pub(crate) const LOG_LINES_IN_DIAGNOSTICS: usize = 200;

#[tauri::command]
pub(crate) async fn get_settings(state: State<'_, AppState>) -> Result<SettingsView, UiError> {
    Ok(SettingsView {
        settings: state.settings(),
        ringtones: tones::RINGTONES
            .iter()
            .map(|(id, name)| ((*id).to_owned(), (*name).to_owned()))
            .collect(),
        cameras: peal_media::devices::Camera::count(),
    })
}

/// Saves the settings; a ringtone file that can't be played is refused.
#[tauri::command]
pub(crate) async fn set_settings(
    app: AppHandle,
    state: State<'_, AppState>,
    settings: Settings,
) -> Result<Settings, UiError> {
    let tone = settings
        .ringtone
        .tone()
        .map_err(|e| UiError::new(AppErrorCode::BadRingtone, e.to_string()))?;
    if let Ok(mut cache) = state.ringtone.lock() {
        *cache = Some((settings.ringtone.clone(), tone));
    }
    let mut s = settings;
    s.ringtone_volume = s.ringtone_volume.min(100);
    if s.start_at_login != state.settings().start_at_login {
        shell::start_at_login(&app, s.start_at_login)
            .map_err(|why| UiError::new(AppErrorCode::StartAtLogin, why))?;
    }
    s.save(&state.settings_path)
        .map_err(|e| UiError::new(AppErrorCode::SettingsNotSaved, e.to_string()))?;
    state.ring.send(ring::Msg::DoNotDisturb(s.do_not_disturb));
    if let Ok(mut cur) = state.settings.lock() {
        *cur = s.clone();
    }
    Ok(s)
}
