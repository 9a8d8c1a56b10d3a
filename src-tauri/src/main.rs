//! Peal for the desktop.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    #[cfg(target_os = "linux")]
    peal_desktop::fixed_malloc_threshold();
    peal_desktop::run();
}
