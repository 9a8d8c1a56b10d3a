//! An empty Tauri 2 window: what the desktop app's footprint is measured against.
fn main() {
    if let Err(e) = tauri::Builder::default().run(tauri::generate_context!()) {
        eprintln!("peal-empty-window: {e}");
        std::process::exit(1);
    }
}
