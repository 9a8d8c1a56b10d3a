//! What the Peal desktop app does, with no Tauri in it, so it can be tested
//! without a window: the Tauri layer (`src-tauri/`) only wires these pieces
//! to its windows and commands.
//!
//! # Layout
//!
//! - [`alerts`]: the pure decision of what rings, what is notified and what
//!   the incoming window shows, as `(state, input, now) -> effects`.
//! - [`tones`]: the built-in ringtones, ringback and busy tone, synthesised
//!   (our own, so their licence is this crate's), and a ringtone file's samples.
//! - [`player`]: plays one sound at a time on the default output with rodio;
//!   no sound card is a clear, non-fatal error.
//! - [`notify`]: native notifications with Accept / Decline and Call back
//!   (notify-rust: D-Bus on Linux, the system's own on macOS and Windows).
//! - [`settings`]: the user's choices, kept as one JSON file.
//! - [`ui`]: what the page and the Rust side say to each other; the page's
//!   TypeScript (`ui/bindings/`) is generated from these types.

#![deny(clippy::wildcard_enum_match_arm)]

pub mod alerts;
pub mod notify;
pub mod player;
pub mod settings;
pub mod tones;
pub mod ui;
