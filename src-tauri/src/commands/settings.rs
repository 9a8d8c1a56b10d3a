//! Settings and diagnostics.

use crate::*;

/// What sounds now and what was measured (for diagnostics and tests).
#[tauri::command]
pub(crate) async fn diagnostics(state: State<'_, AppState>) -> Reply<cmd::diagnostics> {
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
pub(crate) async fn get_settings(state: State<'_, AppState>) -> Reply<cmd::get_settings> {
    Ok(SettingsView {
        settings: state.settings(),
        ringtones: tones::RINGTONES
            .iter()
            .map(|(id, name)| ((*id).to_owned(), (*name).to_owned()))
            .collect(),
        devices: media::devices_now().await,
    })
}

/// While the settings are open: the device lists kept current and
/// `microphone`'s level (`UiEvent::Devices`, `UiEvent::MicLevel`).
#[tauri::command]
pub(crate) async fn watch_devices(
    app: AppHandle,
    state: State<'_, AppState>,
    request: Request<cmd::watch_devices>,
) -> Reply<cmd::watch_devices> {
    let watch = media::DeviceWatch::start(app, request.microphone);
    if let Ok(mut w) = state.device_watch.lock() {
        *w = Some(watch);
    }
    Ok(())
}

#[tauri::command]
pub(crate) async fn unwatch_devices(state: State<'_, AppState>) -> Reply<cmd::unwatch_devices> {
    if let Ok(mut w) = state.device_watch.lock() {
        w.take();
    }
    Ok(())
}

/// "Choose…" for the ringtone: the system's file dialog, over the settings,
/// for a sound file; `None` when the person closed it. A file that can't be
/// played is refused here, with the reason, before it is saved.
#[tauri::command]
pub(crate) async fn pick_ringtone(
    window: tauri::WebviewWindow,
    request: Request<cmd::pick_ringtone>,
) -> Reply<cmd::pick_ringtone> {
    use tauri_plugin_dialog::DialogExt;
    let mut dialog = window
        .dialog()
        .file()
        .set_parent(&window)
        .set_title("Choose a ringtone")
        .add_filter("Sound files", &["wav", "ogg", "oga", "flac", "mp3"]);
    if let Some(dir) = request
        .current
        .as_deref()
        .map(Path::new)
        .and_then(Path::parent)
    {
        dialog = dialog.set_directory(dir);
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    dialog.pick_file(move |picked| {
        let _ = tx.send(picked);
    });
    let Some(picked) = rx.await.ok().flatten() else {
        return Ok(None);
    };
    let path = picked
        .into_path()
        .map_err(|e| UiError::new(AppErrorCode::BadRingtone, e.to_string()))?;
    tones::from_file(&path).map_err(|e| UiError::new(AppErrorCode::BadRingtone, e.to_string()))?;
    Ok(Some(path.display().to_string()))
}

/// "Test sound": a chime on `output` (`None`: the default) at the ringtone's volume.
#[tauri::command]
pub(crate) async fn test_sound(
    state: State<'_, AppState>,
    request: Request<cmd::test_sound>,
) -> Reply<cmd::test_sound> {
    state.player.play(
        peal_desktop_core::ui::Playing::Test.as_str(),
        tones::test_sound(),
        request.volume,
        request.output.as_deref(),
    );
    Ok(())
}

/// Saves the settings; a ringtone file that can't be played is refused.
#[tauri::command]
pub(crate) async fn set_settings(
    app: AppHandle,
    state: State<'_, AppState>,
    request: Request<cmd::set_settings>,
) -> Reply<cmd::set_settings> {
    let settings = request;
    let tone = settings
        .ringtone
        .tone()
        .map_err(|e| UiError::new(AppErrorCode::BadRingtone, e.to_string()))?;
    if let Ok(mut cache) = state.ringtone.lock() {
        *cache = Some((settings.ringtone.clone(), tone));
    }
    let mut s = settings;
    s.ringtone_volume = s.ringtone_volume.min(100);
    let described = tauri::async_runtime::spawn_blocking(peal_media::devices::descriptions)
        .await
        .unwrap_or_default();
    peal_desktop_core::devices::remember_labels(&mut s, &described);
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
