// Generated from peal-desktop-core's command table (src/commands.rs). Do not edit.
import type { Answer } from "./Answer";
import type { CallInfo } from "./CallInfo";
import type { CameraOn } from "./CameraOn";
import type { Contact } from "./Contact";
import type { DeviceInfo } from "./DeviceInfo";
import type { Diagnostics } from "./Diagnostics";
import type { GroupInfo } from "./GroupInfo";
import type { HistoryEntry } from "./HistoryEntry";
import type { Join } from "./Join";
import type { Me } from "./Me";
import type { Mute } from "./Mute";
import type { OfCall } from "./OfCall";
import type { OfDevice } from "./OfDevice";
import type { PickRingtone } from "./PickRingtone";
import type { Place } from "./Place";
import type { Settings } from "./Settings";
import type { SettingsView } from "./SettingsView";
import type { Shown } from "./Shown";
import type { SignIn } from "./SignIn";
import type { StartOptions } from "./StartOptions";
import type { TestSound } from "./TestSound";
import type { UiEvent } from "./UiEvent";
import type { WatchDevices } from "./WatchDevices";

/** A channel the page opens for a command to send on (Tauri's `Channel`). */
export type Channel<T> = { onmessage: (message: T) => void };

/** Every command: what it takes and what it answers. */
export type Commands = {
  /** Who is signed in, if anyone (a page that loads late asks). */
  me: { args: undefined, reply: Me | null },
  /** Subscribes the page (its window) to events, in order. */
  subscribe: { args: { events: Channel<UiEvent> }, reply: null },
  /** Subscribes the main window to the call's video frames. */
  subscribe_video: { args: { video: Channel<ArrayBuffer> }, reply: null },
  /** The page has shown something (the launch time goes to diagnostics). */
  shown: { args: { request: Shown }, reply: null },
  /** How the page should start: on this computer at once, or the form filled in. */
  start_options: { args: undefined, reply: StartOptions },
  /** "This computer": starts the embedded server and signs in as the local user. */
  start_local: { args: undefined, reply: Me },
  /** Signs in to a Peal server. */
  sign_in: { args: { request: SignIn }, reply: Me },
  /** Makes an account with an invite and signs in with it. */
  join: { args: { request: Join }, reply: Me },
  /** The contacts; their presence is watched from then on. */
  contacts: { args: undefined, reply: Array<Contact> },
  /** Signs out here; the next start shows the sign-in screen. */
  sign_out: { args: undefined, reply: null },
  /** This user's devices. */
  devices: { args: undefined, reply: Array<DeviceInfo> },
  /** Signs another of this user's devices out; the devices after. */
  sign_out_device: { args: { request: OfDevice }, reply: Array<DeviceInfo> },
  /** The groups this user is in. */
  groups: { args: undefined, reply: Array<GroupInfo> },
  /** The call history, newest first. */
  history: { args: undefined, reply: Array<HistoryEntry> },
  /** The missed calls have been seen (the badge clears). */
  missed_seen: { args: undefined, reply: null },
  /** The calls ringing here (the incoming window asks when it opens). */
  ringing: { args: undefined, reply: Array<CallInfo> },
  /** Calls a user or a group and joins its media. */
  call: { args: { request: Place }, reply: CallInfo },
  /** Accepts a ringing call. */
  accept: { args: { request: Answer }, reply: CallInfo },
  /** Declines a ringing call. */
  decline: { args: { request: OfCall }, reply: CallInfo },
  /** Cancels a call still ringing, or leaves/ends one in progress. */
  hang_up: { args: { request: OfCall }, reply: CallInfo },
  /** The call is over on the page: its media is left. */
  call_over: { args: { request: OfCall }, reply: null },
  set_muted: { args: { request: Mute }, reply: null },
  set_camera: { args: { request: CameraOn }, reply: null },
  /** Leaves the call (if any) and hides the window (Peal stays in the tray). */
  close_window: { args: undefined, reply: null },
  /** What sounds now and what was measured. */
  diagnostics: { args: undefined, reply: Diagnostics },
  get_settings: { args: undefined, reply: SettingsView },
  /** Saves the settings; a ringtone file that can't be played is refused. */
  set_settings: { args: { request: Settings }, reply: Settings },
  /** While the settings are open: device lists and the microphone's level. */
  watch_devices: { args: { request: WatchDevices }, reply: null },
  unwatch_devices: { args: undefined, reply: null },
  /** The system's file dialog for a ringtone; `null` when it was closed. */
  pick_ringtone: { args: { request: PickRingtone }, reply: string | null },
  /** A chime on the chosen output. */
  test_sound: { args: { request: TestSound }, reply: null },
};

/** `invoke`, checked: a known command, its arguments, its answer. */
export type Invoke = <K extends keyof Commands>(
  command: K,
  ...args: Commands[K]["args"] extends undefined ? [] : [Commands[K]["args"]]
) => Promise<Commands[K]["reply"]>;
