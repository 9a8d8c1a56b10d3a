//! The desktop around the page: the main window, the always-on-top incoming
//! window, the tray (the app keeps running there so it can still ring), the
//! missed-call count in the title and the tray, and start at login. One
//! instance only is tauri-plugin-single-instance (set up in `run`).

use peal_proto::wire::CallInfo;
use tauri::{AppHandle, Manager, WebviewUrl, WebviewWindowBuilder};

pub const MAIN: &str = "main";
pub const INCOMING: &str = "incoming";
/// The argument a start at login carries: the window stays hidden.
pub const HIDDEN: &str = "--hidden";

/// Peal starts at login (hidden), or not: the system's own mechanism
/// (an XDG autostart entry on Linux, a launch agent on macOS, the Run key on
/// Windows), through tauri-plugin-autostart. Nothing is written when it is
/// already as asked.
pub fn start_at_login(app: &AppHandle, on: bool) -> Result<(), String> {
    use tauri_plugin_autostart::ManagerExt;
    let auto = app.autolaunch();
    let now = auto.is_enabled().map_err(|e| e.to_string())?;
    match (now, on) {
        (false, true) => auto.enable().map_err(|e| e.to_string()),
        (true, false) => auto.disable().map_err(|e| e.to_string()),
        (true, true) | (false, false) => Ok(()),
    }
}

/// What of the main window is remembered between starts (not whether it
/// shows: a start at login stays hidden).
pub fn remembered() -> tauri_plugin_window_state::StateFlags {
    use tauri_plugin_window_state::StateFlags;
    StateFlags::SIZE | StateFlags::POSITION | StateFlags::MAXIMIZED
}

/// The window-state plugin: the main window's size and place are kept in
/// the app's config directory and restored when it opens; the incoming
/// window is placed afresh for every call.
pub fn window_state() -> tauri::plugin::TauriPlugin<tauri::Wry> {
    tauri_plugin_window_state::Builder::default()
        .with_state_flags(remembered())
        .with_denylist(&[INCOMING])
        .build()
}

/// Hides the main window to the tray, keeping its size and place first (the
/// app may be stopped, at logout, before it exits on its own).
pub fn hide_main(app: &AppHandle) {
    use tauri_plugin_window_state::AppHandleExt;
    if let Err(e) = app.save_window_state(remembered()) {
        tracing::warn!(error = %e, "the window's size and place are not kept");
    }
    if let Some(w) = app.get_webview_window(MAIN) {
        let _ = w.hide();
    }
}

/// Brings the main window forward (from the tray, a notification, a second launch).
pub fn show_main(app: &AppHandle) {
    if let Some(w) = app.get_webview_window(MAIN) {
        let _ = w.show();
        let _ = w.unminimize();
        let _ = w.set_focus();
    }
}

/// Shows the incoming window for `call` (it asks the app which call rings).
pub fn show_incoming(app: &AppHandle, call: &CallInfo) {
    let title = format!("{} is calling", call.initiator.name);
    if let Some(w) = app.get_webview_window(INCOMING) {
        let _ = w.set_title(&title);
        let _ = w.show();
        let _ = w.set_focus();
        return;
    }
    let built = WebviewWindowBuilder::new(app, INCOMING, WebviewUrl::App("incoming.html".into()))
        .title(&title)
        .inner_size(380.0, 240.0)
        .resizable(false)
        .always_on_top(true)
        .center()
        .focused(true)
        .build();
    if let Err(e) = built {
        tracing::warn!(error = %e, "incoming window");
    }
}

pub fn hide_incoming(app: &AppHandle) {
    if let Some(w) = app.get_webview_window(INCOMING) {
        let _ = w.destroy();
    }
}

/// "Peal" or "Peal — 2 missed calls", in the title and on the tray icon.
pub fn set_missed(app: &AppHandle, n: u32) {
    let title = match n {
        0 => "Peal".to_owned(),
        1 => "Peal — 1 missed call".to_owned(),
        n => format!("Peal — {n} missed calls"),
    };
    if let Some(w) = app.get_webview_window(MAIN) {
        let _ = w.set_title(&title);
    }
    if let Some(t) = app.tray_by_id(MAIN) {
        let _ = t.set_tooltip(Some(&title));
        let _ = t.set_title(if n == 0 { None } else { Some(n.to_string()) });
    }
}

/// The tray icon: Show, Quit. A desktop without a tray (or without the
/// indicator library) simply has none; closing the window then still keeps
/// Peal running, and launching it again brings the window back.
pub fn tray(app: &AppHandle) {
    use tauri::menu::{Menu, MenuItem};
    use tauri::tray::TrayIconBuilder;
    let build = || -> tauri::Result<()> {
        let show = MenuItem::with_id(app, "show", "Show Peal", true, None::<&str>)?;
        let quit = MenuItem::with_id(app, "quit", "Quit Peal", true, None::<&str>)?;
        let menu = Menu::with_items(app, &[&show, &quit])?;
        let mut b = TrayIconBuilder::with_id(MAIN)
            .tooltip("Peal")
            .menu(&menu)
            .on_menu_event(|app, ev| match ev.id.as_ref() {
                "show" => show_main(app),
                "quit" => app.exit(0),
                _ => {}
            });
        if let Some(icon) = app.default_window_icon() {
            b = b.icon(icon.clone());
        }
        b.build(app)?;
        Ok(())
    };
    // The Linux tray loads libayatana-appindicator at run time and panics
    // when it is missing: no tray is not a reason to fail.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(build)) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "no tray icon"),
        Err(_) => tracing::warn!("no tray icon (no indicator library)"),
    }
}
