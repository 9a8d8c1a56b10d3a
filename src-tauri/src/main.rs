//! Peal for the desktop.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    peal_desktop::run();
}
