//! What the Peal desktop app does, with no Tauri in it, so it can be tested
//! without a window: the Tauri layer (`src-tauri/`) only wires these pieces
//! to its windows and commands.
//!
//! # Layout
//!
//! - [`alerts`]: the pure decision of what rings, what is notified and what
//!   the incoming window shows, as `(state, input, now) -> effects`.
//! - [`ringer`]: the task that feeds [`alerts`] and carries out its effects
//!   on a [`ringer::Shell`] (sound, notifications, windows, pages), so every
//!   ring scenario is tested against a simulated shell.
//! - [`tones`]: the built-in ringtones, ringback and busy tone, synthesised
//!   (our own, so their licence is this crate's), and a ringtone file's samples.
//! - [`player`]: plays one sound at a time with rodio, on the default output or one by name;
//!   no sound card is a clear, non-fatal error.
//! - [`notify`]: native notifications with Accept / Decline and Call back
//!   (notify-rust: D-Bus on Linux, the system's own on macOS and Windows).
//! - [`settings`]: the user's choices, kept as one JSON file.
//! - [`device`]: this install's device name, made once and kept beside them.
//! - [`devices`]: which remembered microphone, speaker and camera a call can
//!   have now, and the notice for one that is not connected.
//! - [`links`]: `peal:` links read and routed (confirm, sign in first, join).
//! - [`logs`]: the app's log file (rotated by size), crash reports, the tail
//!   that diagnostics attach.
//! - [`vault`]: secrets for the next start (the session token, "this
//!   computer"'s passwords) in the system keyring, or a 0600 file without one.
//! - [`ui`]: what the page and the Rust side say to each other; the page's
//!   TypeScript (`ui/bindings/`) is generated from these types.
//! - [`commands`]: every command the pages invoke, as one table of name,
//!   request and reply, from which the page's checked `invoke` is generated.

#![deny(clippy::wildcard_enum_match_arm)]

pub mod alerts;
pub mod commands;
pub mod device;
pub mod devices;
pub mod links;
pub mod logs;
pub mod notify;
pub mod player;
pub mod ringer;
pub mod settings;
pub mod tones;
pub mod ui;
pub mod vault;

/// Calls as the server sends them, for this crate's tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use peal_proto::time::Millis;
    use peal_proto::wire::{CallInfo, CallType, Party, Receiver, ReceiverType, Status};
    use peal_proto::SessionId;

    /// Alice calls us (`me`), or the group `team`; rings 30 s from t = 1 s.
    pub fn call(id: &str, status: Status, call_type: CallType, group: bool) -> CallInfo {
        CallInfo {
            session_id: SessionId(id.to_owned()),
            status,
            call_type,
            receiver_type: if group {
                ReceiverType::Group
            } else {
                ReceiverType::User
            },
            initiator: Party {
                uid: "alice".into(),
                name: "Alice".into(),
            },
            receiver: if group {
                Receiver::Group {
                    guid: "team".into(),
                    name: "Team".into(),
                }
            } else {
                Receiver::User {
                    uid: "me".into(),
                    name: "Me".into(),
                }
            },
            initiated_at: Millis(1_000),
            joined_at: None,
            ended_at: None,
            ring_deadline: Millis(31_000),
            participants: vec![],
        }
    }
}
