//! Every command the pages invoke, in one table: its name, the one request
//! it takes and what it answers. `ui/bindings/Commands.ts` is generated from
//! the table, so `tsc` checks each `invoke` in the page (the command's name,
//! its request's fields, what the answer holds), and the Tauri layer's
//! commands are written as `fn name(.., request: Request<cmd::name>) ->
//! Reply<cmd::name>`, so `rustc` checks the other side against the same row.
//!
//! A command takes nothing, one request struct (the argument `request`), or
//! a channel the page opened for it to send on.

use std::marker::PhantomData;

use peal_proto::wire::{CallInfo, Contact, DeviceInfo, GroupInfo, HistoryEntry};
use peal_proto::{DeviceId, SessionId};
use serde::Deserialize;
use ts_rs::TS;

use crate::settings::Settings;
use crate::ui::{Diagnostics, Me, SettingsView, StartOptions, UiError, UiEvent};

/// One command of the table (each is a marker type in [`cmd`]).
pub trait Command {
    /// What the page invokes it by.
    const NAME: &'static str;
    /// Its one argument (`()`: none).
    type Request;
    /// What it answers.
    type Reply;
}

/// What command `C` takes.
pub type Request<C> = <C as Command>::Request;
/// What command `C` answers, or the error the page shows.
pub type Reply<C> = Result<<C as Command>::Reply, UiError>;

/// Sign in to a Peal server with a password.
#[derive(Debug, Clone, Deserialize, TS)]
pub struct SignIn {
    pub server: String,
    pub uid: String,
    pub password: String,
}

/// Make an account on `server` with an invite's code, then sign in with it.
#[derive(Debug, Clone, Deserialize, TS)]
pub struct Join {
    pub server: String,
    pub invite: String,
    pub uid: String,
    pub name: String,
    pub password: String,
}

/// Call a user (by user id) or a group (by group id), audio or video.
#[derive(Debug, Clone, Deserialize, TS)]
pub struct Place {
    pub receiver: String,
    pub group: bool,
    pub video: bool,
}

/// Accept a ringing call, with the camera on or audio only.
#[derive(Debug, Clone, Deserialize, TS)]
pub struct Answer {
    pub session_id: SessionId,
    pub video: bool,
}

/// One call, by its session.
#[derive(Debug, Clone, Deserialize, TS)]
pub struct OfCall {
    pub session_id: SessionId,
}

/// One of this user's devices.
#[derive(Debug, Clone, Deserialize, TS)]
pub struct OfDevice {
    pub device_id: DeviceId,
}

/// Mute or unmute the microphone in the call.
#[derive(Debug, Clone, Copy, Deserialize, TS)]
pub struct Mute {
    pub muted: bool,
}

/// Turn the camera on or off in the call.
#[derive(Debug, Clone, Copy, Deserialize, TS)]
pub struct CameraOn {
    pub on: bool,
}

/// What the page has put on screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Screen {
    /// The contacts, after sign-in (the launch time is measured to this).
    Contacts,
}

/// The page says it has shown `what`.
#[derive(Debug, Clone, Copy, Deserialize, TS)]
pub struct Shown {
    pub what: Screen,
}

/// Keep the device lists current and meter `microphone` (`None`: the
/// default) while the settings are open.
#[derive(Debug, Clone, Deserialize, TS)]
pub struct WatchDevices {
    pub microphone: Option<String>,
}

/// Open the file dialog for a ringtone, in the folder of `current`.
#[derive(Debug, Clone, Deserialize, TS)]
pub struct PickRingtone {
    pub current: Option<String>,
}

/// Play the test sound on `output` (`None`: the default) at `volume` (0–100).
#[derive(Debug, Clone, Deserialize, TS)]
pub struct TestSound {
    pub output: Option<String>,
    pub volume: u8,
}

/// A channel the page opens (Tauri's `Channel`) for a command to send `T`
/// on; the Tauri layer takes `tauri::ipc::Channel` in its place.
pub struct Channel<T>(PhantomData<T>);

impl<T: TS + 'static> TS for Channel<T> {
    type WithoutGenerics = Channel<Frame>;
    type OptionInnerType = Self;

    fn name(cfg: &ts_rs::Config) -> String {
        format!("Channel<{}>", T::name(cfg))
    }

    fn inline(cfg: &ts_rs::Config) -> String {
        Self::name(cfg)
    }

    fn visit_generics(v: &mut impl ts_rs::TypeVisitor) {
        v.visit::<T>();
    }
}

/// One encoded video frame with its header, sent raw (an `ArrayBuffer` in
/// the page).
pub struct Frame;

impl TS for Frame {
    type WithoutGenerics = Self;
    type OptionInnerType = Self;

    fn name(_: &ts_rs::Config) -> String {
        "ArrayBuffer".to_owned()
    }

    fn inline(cfg: &ts_rs::Config) -> String {
        Self::name(cfg)
    }
}

macro_rules! commands {
    ($( $(#[doc = $doc:literal])* $name:ident ( $($arg:ident : $req:ty)? ) -> $reply:ty; )*) => {
        /// The commands, one marker type each, named as the page invokes them.
        #[allow(non_camel_case_types)]
        pub mod cmd {
            use super::*;
            $(
                $(#[doc = $doc])*
                pub enum $name {}
                impl Command for $name {
                    const NAME: &'static str = stringify!($name);
                    type Request = commands!(@request $($req)?);
                    type Reply = $reply;
                }
            )*
        }

        /// Every command's name, in the table's order.
        pub const NAMES: &[&str] = &[$(stringify!($name)),*];

        #[cfg(test)]
        fn rows(cfg: &ts_rs::Config) -> Vec<Row> {
            vec![$(
                Row {
                    name: stringify!($name),
                    docs: vec![$($doc),*],
                    arg: commands!(@arg cfg $($arg : $req)?),
                    reply: <$reply as TS>::name(cfg),
                    imports: {
                        let mut deps = Vec::new();
                        $(deps.extend(imports::<$req>(cfg));)?
                        deps.extend(imports::<$reply>(cfg));
                        deps
                    },
                },
            )*]
        }
    };
    (@request) => { () };
    (@request $req:ty) => { $req };
    (@arg $cfg:ident) => { None };
    (@arg $cfg:ident $arg:ident : $req:ty) => {
        Some((stringify!($arg), <$req as TS>::name($cfg)))
    };
}

commands! {
    /// Who is signed in, if anyone (a page that loads late asks).
    me() -> Option<Me>;
    /// Subscribes the page (its window) to events, in order.
    subscribe(events: Channel<UiEvent>) -> ();
    /// Subscribes the main window to the call's video frames.
    subscribe_video(video: Channel<Frame>) -> ();
    /// The page has shown something (the launch time goes to diagnostics).
    shown(request: Shown) -> ();
    /// How the page should start: on this computer at once, or the form filled in.
    start_options() -> StartOptions;
    /// "This computer": starts the embedded server and signs in as the local user.
    start_local() -> Me;
    /// Signs in to a Peal server.
    sign_in(request: SignIn) -> Me;
    /// Makes an account with an invite and signs in with it.
    join(request: Join) -> Me;
    /// The contacts; their presence is watched from then on.
    contacts() -> Vec<Contact>;
    /// Signs out here; the next start shows the sign-in screen.
    sign_out() -> ();
    /// This user's devices.
    devices() -> Vec<DeviceInfo>;
    /// Signs another of this user's devices out; the devices after.
    sign_out_device(request: OfDevice) -> Vec<DeviceInfo>;
    /// The groups this user is in.
    groups() -> Vec<GroupInfo>;
    /// The call history, newest first.
    history() -> Vec<HistoryEntry>;
    /// The missed calls have been seen (the badge clears).
    missed_seen() -> ();
    /// The calls ringing here (the incoming window asks when it opens).
    ringing() -> Vec<CallInfo>;
    /// Calls a user or a group and joins its media.
    call(request: Place) -> CallInfo;
    /// Accepts a ringing call.
    accept(request: Answer) -> CallInfo;
    /// Declines a ringing call.
    decline(request: OfCall) -> CallInfo;
    /// Cancels a call still ringing, or leaves/ends one in progress.
    hang_up(request: OfCall) -> CallInfo;
    /// The call is over on the page: its media is left.
    call_over(request: OfCall) -> ();
    set_muted(request: Mute) -> ();
    set_camera(request: CameraOn) -> ();
    /// Leaves the call (if any) and hides the window (Peal stays in the tray).
    close_window() -> ();
    /// What sounds now and what was measured.
    diagnostics() -> Diagnostics;
    get_settings() -> SettingsView;
    /// Saves the settings; a ringtone file that can't be played is refused.
    set_settings(request: Settings) -> Settings;
    /// While the settings are open: device lists and the microphone's level.
    watch_devices(request: WatchDevices) -> ();
    unwatch_devices() -> ();
    /// The system's file dialog for a ringtone; `null` when it was closed.
    pick_ringtone(request: PickRingtone) -> Option<String>;
    /// A chime on the chosen output.
    test_sound(request: TestSound) -> ();
}

/// The request types, for `ui/bindings/` (the test there writes them).
#[cfg(test)]
pub(crate) fn declarations(cfg: &ts_rs::Config) -> Vec<(String, String)> {
    let mut out = Vec::new();
    macro_rules! each {
        ($($t:ty),*) => {$(
            out.push((<$t as TS>::name(cfg), <$t as TS>::export_to_string(cfg).expect("exports")));
        )*};
    }
    each!(
        SignIn,
        Join,
        Place,
        Answer,
        OfCall,
        OfDevice,
        Mute,
        CameraOn,
        Screen,
        Shown,
        WatchDevices,
        PickRingtone,
        TestSound
    );
    out.push(("Commands".to_owned(), typescript(cfg)));
    out
}

/// One row of the table, as TypeScript.
#[cfg(test)]
struct Row {
    name: &'static str,
    docs: Vec<&'static str>,
    arg: Option<(&'static str, String)>,
    reply: String,
    imports: Vec<String>,
}

/// The names `T` is written with that live in a file of their own: `T`
/// itself, or what a `Vec`, an `Option` or a `Channel` holds.
#[cfg(test)]
fn imports<T: TS + 'static>(cfg: &ts_rs::Config) -> Vec<String> {
    struct Names<'a>(&'a ts_rs::Config, Vec<String>);
    impl ts_rs::TypeVisitor for Names<'_> {
        fn visit<T: TS + 'static + ?Sized>(&mut self) {
            if T::output_path().is_some() {
                self.1.push(T::ident(self.0));
            } else {
                T::visit_generics(self);
            }
        }
    }
    let mut names = Names(cfg, Vec::new());
    ts_rs::TypeVisitor::visit::<T>(&mut names);
    names.1
}

/// `Commands.ts`: the table, and `Invoke`, the type of a checked `invoke`.
#[cfg(test)]
fn typescript(cfg: &ts_rs::Config) -> String {
    let rows = rows(cfg);
    let mut names: Vec<&str> = rows
        .iter()
        .flat_map(|r| r.imports.iter().map(String::as_str))
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut ts = String::from(
        "// Generated from peal-desktop-core's command table (src/commands.rs). Do not edit.\n",
    );
    for n in names {
        ts.push_str(&format!("import type {{ {n} }} from \"./{n}\";\n"));
    }
    ts.push_str(
        "\n/** A channel the page opens for a command to send on (Tauri's `Channel`). */\n\
         export type Channel<T> = { onmessage: (message: T) => void };\n\n\
         /** Every command: what it takes and what it answers. */\n\
         export type Commands = {\n",
    );
    for r in &rows {
        if !r.docs.is_empty() {
            let text: Vec<&str> = r.docs.iter().map(|d| d.trim()).collect();
            ts.push_str(&format!("  /** {} */\n", text.join(" ")));
        }
        let args = match &r.arg {
            None => "undefined".to_owned(),
            Some((arg, ty)) => format!("{{ {arg}: {ty} }}"),
        };
        ts.push_str(&format!(
            "  {}: {{ args: {args}, reply: {} }},\n",
            r.name, r.reply
        ));
    }
    ts.push_str(
        "};\n\n\
         /** `invoke`, checked: a known command, its arguments, its answer. */\n\
         export type Invoke = <K extends keyof Commands>(\n  \
         command: K,\n  \
         ...args: Commands[K][\"args\"] extends undefined ? [] : [Commands[K][\"args\"]]\n\
         ) => Promise<Commands[K][\"reply\"]>;\n",
    );
    ts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_one_name() {
        let mut names = NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), NAMES.len());
        assert_eq!(<cmd::sign_in as Command>::NAME, "sign_in");
    }

    #[test]
    fn a_request_the_page_gets_wrong_is_refused_not_guessed() {
        let bad: Result<Answer, _> = serde_json::from_str(r#"{"session_id":"s1"}"#);
        assert!(bad.is_err(), "video is required");
        let bad: Result<Shown, _> = serde_json::from_str(r#"{"what":"contact"}"#);
        assert!(bad.is_err(), "an unknown screen");
        let ok: Shown = serde_json::from_str(r#"{"what":"contacts"}"#).unwrap();
        assert_eq!(ok.what, Screen::Contacts);
    }

    #[test]
    fn the_table_names_what_each_command_takes_and_answers() {
        let ts = typescript(&ts_rs::Config::new());
        assert!(
            ts.contains("  sign_in: { args: { request: SignIn }, reply: Me },"),
            "{ts}"
        );
        assert!(ts.contains("  contacts: { args: undefined, reply: Array<Contact> },"));
        assert!(ts.contains("  subscribe: { args: { events: Channel<UiEvent> }, reply: null },"));
        assert!(ts.contains("import type { UiEvent } from \"./UiEvent\";"));
        assert!(ts.contains("import type { HistoryEntry } from \"./HistoryEntry\";"));
    }
}
