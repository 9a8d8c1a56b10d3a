//! What the page and the Rust side say to each other: the events on a
//! page's channel, the answers of commands, the errors. The page's
//! TypeScript declarations in `ui/bindings/` are generated from these types
//! (and the wire types they hold); a test fails when the checked-in files
//! are stale, and `PEAL_UPDATE_BINDINGS=1 cargo test -p peal-desktop-core
//! bindings` writes them anew.

use std::time::Instant;

use peal_client::{ClientError, ConnectionState};
use peal_proto::wire::{CallInfo, Event};
use peal_proto::ErrorCode;
use serde::Serialize;
use ts_rs::TS;

use crate::settings::Settings;

/// An error the page can show: a stable code and a sentence.
#[derive(Debug, Clone, Serialize, TS, thiserror::Error)]
#[error("{message}")]
pub struct UiError {
    pub code: UiErrorCode,
    pub message: String,
}

/// What went wrong, for the page to decide on (the message is for people):
/// the server's code, or one of the app's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(untagged)]
pub enum UiErrorCode {
    Server(ErrorCode),
    App(AppErrorCode),
}

/// The app's own error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum AppErrorCode {
    /// The server can't be reached.
    Unreachable,
    /// The server answered something this app does not understand.
    Protocol,
    NotSignedIn,
    /// Signed in already (joining another server needs a sign-out).
    SignedIn,
    NotInCall,
    BadRingtone,
    StartAtLogin,
    SettingsNotSaved,
    Internal,
}

impl From<AppErrorCode> for UiErrorCode {
    fn from(c: AppErrorCode) -> Self {
        UiErrorCode::App(c)
    }
}

impl UiError {
    pub fn new(code: impl Into<UiErrorCode>, message: impl Into<String>) -> Self {
        UiError {
            code: code.into(),
            message: message.into(),
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        UiError::new(AppErrorCode::Internal, e.to_string())
    }

    pub fn not_signed_in() -> Self {
        UiError::new(AppErrorCode::NotSignedIn, "sign in first")
    }
}

impl From<ClientError> for UiError {
    fn from(e: ClientError) -> Self {
        // The person reads the server's sentence, not its code.
        match e {
            ClientError::Refused(b) => UiError::new(UiErrorCode::Server(b.code), b.message),
            ClientError::Unauthorized(_) => {
                UiError::new(UiErrorCode::Server(ErrorCode::Unauthorized), e.to_string())
            }
            ClientError::Unreachable(_) => UiError::new(AppErrorCode::Unreachable, e.to_string()),
            ClientError::Protocol(_) => UiError::new(AppErrorCode::Protocol, e.to_string()),
        }
    }
}

/// The signaling connection, as the page shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Connection {
    Connected,
    Reconnecting,
    SignedOut,
}

impl From<&ConnectionState> for Connection {
    fn from(c: &ConnectionState) -> Self {
        match c {
            ConnectionState::Connected
            | ConnectionState::Resumed { .. }
            | ConnectionState::Snapshot { .. } => Connection::Connected,
            ConnectionState::Reconnecting { .. } => Connection::Reconnecting,
            ConnectionState::SignedOut => Connection::SignedOut,
        }
    }
}

/// What the current call's media did, for the call screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MediaUpdate {
    /// Media flows with everyone.
    Connected,
    /// The link to `peer` is being restored.
    Reconnecting {
        peer: String,
    },
    Reconnected {
        peer: String,
    },
    ParticipantJoined {
        peer: String,
    },
    ParticipantLeft {
        peer: String,
    },
    /// `peer` muted or turned their camera off (or back on).
    RemoteState {
        peer: String,
        audio_muted: bool,
        video_enabled: bool,
    },
    /// The media could not start or was lost for good: why, for the person.
    Failed {
        reason: String,
    },
    /// The call's media ended (the call is over).
    Ended {
        reason: String,
    },
}

/// Who is signed in, as the page shows it.
#[derive(Debug, Clone, Serialize, TS)]
pub struct Me {
    pub uid: String,
    pub name: String,
    pub server: String,
    pub local: bool,
}

/// What reaches the pages on their events channels, in the order it happened.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum UiEvent {
    /// A call event (the SDK's, unchanged).
    Call { event: Box<Event> },
    /// This is our call now: one we placed (from the page or a notification's
    /// Call back; still ringing out, or refused at once) or accepted here
    /// (from the page, the incoming window or the notification).
    Joined { call: Box<CallInfo>, video: bool },
    /// The call the incoming window shows (none: it closes).
    Ringing { call: Option<Box<CallInfo>> },
    /// Missed calls not yet seen.
    Missed { count: u32 },
    /// A contact's presence changed (or is first known).
    Presence {
        uid: peal_proto::UserId,
        presence: peal_proto::wire::Presence,
    },
    /// Signed in (by the page, or by the app at start).
    SignedIn { me: Me },
    /// Signing in at start hit a problem (the sign-in screen says it).
    SigningIn { problem: Option<String> },
    /// Signed out (the page shows the sign-in screen).
    SignedOut,
    /// The signaling connection.
    Connection { state: Connection },
    /// What the current call's media did.
    Media { update: MediaUpdate },
    /// A `peal:call` link: the page asks "Call USER?" and only a click calls.
    ConfirmCall { user: String, video: bool },
    /// A link needs a sign-in first: the sign-in screen, with `server`
    /// filled in when the link names one, says `message`.
    SignInForLink {
        server: Option<String>,
        message: String,
    },
    /// A `peal:join` link: the page offers to make an account on `server`
    /// with the invite (or, with `problem`, says why it can't: expired,
    /// used up, withdrawn, unreachable).
    JoinInvite {
        server: String,
        invite: String,
        problem: Option<String>,
    },
    /// Someone new joined the server: the contacts are read again.
    ContactAdded { contact: peal_proto::wire::Party },
    /// The main window was asked to close during a call: the page asks first.
    ConfirmClose,
    /// Something the user should know that is not an error (no camera, …).
    Notice { message: String },
    /// The devices connected now, while the settings watch them (a device
    /// plugged in or out).
    Devices { devices: DeviceList },
    /// The chosen microphone's level (0..=100) while the settings watch it.
    MicLevel { level: u8 },
}

/// The microphones, speakers and cameras connected now, each by the name
/// the system gives it (what the settings remember).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, TS)]
pub struct DeviceList {
    pub microphones: Vec<String>,
    pub speakers: Vec<String>,
    pub cameras: Vec<String>,
    /// What people read for a name, where the system describes it ("USB
    /// Headset" for `headset`); a name without one is shown as it is.
    pub labels: std::collections::BTreeMap<String, String>,
}

/// What the page needs at start: sign in on this computer at once (`make
/// run`, `--this-computer`, or how the user signed in last time), or the
/// sign-in form filled in.
#[derive(Debug, Clone, Serialize, TS)]
pub struct StartOptions {
    pub this_computer: bool,
    /// A sign-in to `server` is kept: the app is signing in with it (no
    /// password), and says so with `signed_in` or `signing_in`.
    pub resume: bool,
    pub server: Option<String>,
    pub user: Option<String>,
}

/// The settings page's data: the settings and the choices it offers.
#[derive(Debug, Clone, Serialize, TS)]
pub struct SettingsView {
    pub settings: Settings,
    /// Built-in ringtones: (id, name).
    pub ringtones: Vec<(String, String)>,
    pub devices: DeviceList,
}

/// A sound the app plays (one at a time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Playing {
    /// Someone is calling us (looping).
    Ringtone,
    /// Our call rings the other side (looping).
    Ringback,
    /// Our call was refused or not answered (once).
    Busy,
    /// The settings' "Test sound" (once).
    Test,
}

impl Playing {
    pub fn as_str(self) -> &'static str {
        match self {
            Playing::Ringtone => "ringtone",
            Playing::Ringback => "ringback",
            Playing::Busy => "busy",
            Playing::Test => "test",
        }
    }
}

/// What sounds now and what was measured (diagnostics, and the end-to-end tests).
#[derive(Debug, Default, Clone, Serialize, TS)]
pub struct Diagnostics {
    /// The sound playing now, if any.
    pub sound: Option<Playing>,
    /// Each ring: from the incoming event reaching the app to the sound
    /// device pulling the ringtone's first samples.
    pub event_to_ringtone_ms: Vec<f64>,
    /// From the app's start to the page showing the contacts (first time).
    pub launch_to_contacts_ms: Option<f64>,
    /// Calls ringing this device now.
    #[ts(type = "number")]
    pub calls_ringing: usize,
    pub missed: u32,
    pub sound_unavailable: Option<String>,
    /// The current call's media statistics (peal-media's `MediaStats`).
    #[ts(type = "unknown")]
    pub media_stats: Option<serde_json::Value>,
    /// What the media of the calls did, newest last (joined, failed,
    /// connected, reconnecting, ended…), with the ms since launch.
    pub media_log: Vec<String>,
    /// Video frames handed to the page since launch (remote, self view).
    pub frames_to_page: (u64, u64),
    pub notifications_unavailable: Option<String>,
    /// This install's device name (what "Your devices" lists).
    pub device: Option<String>,
    /// The app's version.
    pub version: String,
    /// Where the log is kept, and its last lines (for a bug report).
    pub log_file: Option<String>,
    pub log_tail: Vec<String>,
    #[serde(skip)]
    #[ts(skip)]
    pub ring_heard_at: Option<Instant>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// Every type the page imports, with its dependencies.
    fn declarations() -> Vec<(String, String)> {
        use peal_proto::wire::*;
        let cfg = ts_rs::Config::new();
        let mut out = Vec::new();
        macro_rules! each {
            ($($t:ty),*) => {$(
                let name = <$t as TS>::name(&cfg);
                let text = <$t as TS>::export_to_string(&cfg).expect("exports");
                out.push((name, text));
            )*};
        }
        each!(
            UiEvent,
            UiError,
            Me,
            StartOptions,
            SettingsView,
            DeviceList,
            Settings,
            crate::settings::Ringtone,
            Diagnostics,
            Playing,
            UiErrorCode,
            AppErrorCode,
            peal_proto::ErrorCode,
            Connection,
            MediaUpdate,
            Event,
            EventKind,
            Reason,
            CallInfo,
            CallType,
            ReceiverType,
            Status,
            Party,
            Receiver,
            ParticipantInfo,
            Role,
            ParticipantState,
            HistoryEntry,
            Direction,
            Contact,
            DeviceInfo,
            Presence,
            GroupInfo,
            peal_proto::UserId,
            peal_proto::GroupId,
            peal_proto::DeviceId,
            peal_proto::SessionId,
            peal_proto::Millis
        );
        out.extend(crate::commands::declarations(&cfg));
        out
    }

    #[test]
    fn bindings_checked_in_for_the_page_match_the_rust_types() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../ui/bindings");
        let update = std::env::var_os("PEAL_UPDATE_BINDINGS").is_some();
        let mut stale = Vec::new();
        for (name, text) in declarations() {
            let path = dir.join(format!("{name}.ts"));
            if update {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &text).unwrap();
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                stale.push(name);
            }
        }
        assert!(
            stale.is_empty(),
            "ui/bindings is stale for {stale:?}: run PEAL_UPDATE_BINDINGS=1 cargo test -p peal-desktop-core bindings"
        );
    }
}
