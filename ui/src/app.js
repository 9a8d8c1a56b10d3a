// @ts-check
// Peal's main window: talks to the Rust side only through its commands and
// two channels (events in order, video frames). The call screens follow the
// pure reducer in state.js.
import { initial, apply, peerName, clock, historyRow, quality, deviceRows, deviceOptions, deviceChanges, joinProblem, plainError, incomingKey, ringAnnouncement, avatar, presenceLabel, historyByDay } from "./state.js";
/** @typedef {import("./state.js").View} View */
/** @typedef {import("../bindings/UiEvent").UiEvent} UiEvent */
/** @typedef {import("../bindings/Contact").Contact} Contact */
/** @typedef {import("../bindings/GroupInfo").GroupInfo} GroupInfo */
/** @typedef {import("../bindings/HistoryEntry").HistoryEntry} HistoryEntry */
/** @typedef {import("../bindings/SettingsView").SettingsView} SettingsView */
/** @typedef {import("../bindings/DeviceInfo").DeviceInfo} DeviceInfo */

// @ts-ignore: injected by Tauri (withGlobalTauri)
const tauri = window.__TAURI__;
/** @type {import("../bindings/Commands").Invoke} */
const invoke = tauri.core.invoke;
const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const input = (/** @type {string} */ id) => /** @type {HTMLInputElement} */ (document.getElementById(id));
const errorText = plainError;

/** @type {{uid: string, name: string, server: string, local: boolean} | null} */
let me = null;
/** @type {View} */
let view = initial();
/** @type {number | null} */
let callStarted = null;
/** @type {Contact[]} */
let contacts = [];
/** @type {GroupInfo[]} */
let groups = [];
let mediaState = "connecting";
let muted = false;
let cameraOn = true;

/**
 * Shows `text` among the notices (each once, the newest four, each with its
 * own ×); nothing clears none, `null` clears them all.
 * @param {string | null | undefined} text
 */
function notice(text) {
  const n = $("notice");
  if (text === null) n.replaceChildren();
  else if (text && ![...n.children].some((c) => c.firstChild?.textContent === text)) {
    const item = document.createElement("div");
    item.className = "item";
    const span = document.createElement("span");
    span.textContent = text;
    const close = document.createElement("button");
    close.className = "close";
    close.title = "Dismiss";
    close.textContent = "×";
    close.onclick = () => { item.remove(); n.hidden = n.children.length === 0; };
    item.append(span, close);
    n.append(item);
    while (n.children.length > 4) n.firstElementChild?.remove();
  }
  n.hidden = n.children.length === 0;
}

/** @param {string} screen */
function show(screen) {
  $("signin").hidden = screen !== "signin";
  $("home").hidden = screen === "signin";
  $("outgoing").hidden = screen !== "outgoing";
  $("incoming").hidden = screen !== "incoming";
  $("call").hidden = screen !== "call";
}

/**
 * Draws `id`'s avatar (initials on their own colour) into `el`.
 * @param {HTMLElement} el @param {string} id @param {string} name
 */
function paintAvatar(el, id, name) {
  const a = avatar(id, name);
  el.textContent = a.initials;
  el.style.background = `hsl(${a.hue} 45% 36%)`;
}

/** Whether the history shows only missed calls. */
let missedOnly = false;

/** The session id the incoming screen was last shown for. @type {string | null} */
let announced = null;

function render() {
  show(view.screen);
  // In a call the notices take their own row above the video, never over it.
  const n = $("notice");
  const home = view.screen === "call" ? $("call") : document.body;
  if (n.parentElement !== home) home.insertBefore(n, home === document.body ? document.body.firstChild : $("tiles"));
  if (view.screen === "incoming" && view.call.session_id !== announced) {
    // Once per ring: a screen reader says who calls, the keyboard starts on Accept.
    announced = view.call.session_id;
    $("announce").textContent = ringAnnouncement(view.call);
    $("accept").focus();
  }
  if (view.screen !== "incoming") announced = null;
  if ("call" in view) {
    const who = peerName(view.call, me ? me.uid : "");
    for (const el of document.querySelectorAll(".who")) el.textContent = who;
    const peer = view.call.initiator.uid === (me ? me.uid : "") ? ("uid" in view.call.receiver ? view.call.receiver.uid : view.call.receiver.guid) : view.call.initiator.uid;
    for (const el of document.querySelectorAll(".avatar")) paintAvatar(/** @type {HTMLElement} */ (el), peer, who);
    $("accept-audio").hidden = view.call.call_type !== "video";
  }
  if (view.screen === "call") {
    if (!callStarted) {
      callStarted = Date.now();
      muted = false;
      cameraOn = view.video && view.call.call_type === "video";
    }
    const audioOnly = view.call.call_type === "audio";
    $("audio-only").hidden = !audioOnly;
    $("tiles").hidden = audioOnly;
    $("camera").hidden = audioOnly;
    showQuality();
    $("mute").textContent = muted ? "Unmute" : "Mute";
    $("camera").textContent = cameraOn ? "Camera off" : "Camera on";
  } else {
    if (callStarted) resetVideo();
    callStarted = null;
    // Media may connect while still ringing (pre-connect): the state is
    // forgotten only once the call is over, not when its window opens.
    if (view.screen === "home") mediaState = "connecting";
  }
  if (view.screen === "home" && view.message) notice(view.message);
}

function renderContacts() {
  const q = input("search").value.trim().toLowerCase();
  const ul = $("contacts");
  ul.replaceChildren();
  for (const c of contacts) {
    if (q && !c.name.toLowerCase().includes(q) && !c.uid.toLowerCase().includes(q)) continue;
    ul.append(contactRow(c.uid, c.name, c.presence, false));
  }
  const gl = $("groups");
  gl.replaceChildren();
  for (const g of groups) {
    if (q && !g.name.toLowerCase().includes(q)) continue;
    gl.append(contactRow(g.guid, g.name, "group", true, g.members.length));
  }
  $("groups-title").hidden = groups.length === 0;
}

/** @param {string} id @param {string} name @param {string} presence @param {boolean} group @param {number} [members] */
function contactRow(id, name, presence, group, members) {
  const li = document.createElement("li");
  li.className = group ? "contact group" : "contact";
  li.dataset.uid = id;
  li.innerHTML = `<span class="avatar small" aria-hidden="true"></span><span class="who-cell"><span class="name"></span>
    <span class="presence-line"><span class="presence"></span><span class="presence-text"></span></span></span>
    <button class="call-audio">Audio</button><button class="call-video">Video</button>`;
  paintAvatar(/** @type {HTMLElement} */ (li.querySelector(".avatar")), id, name);
  /** @type {HTMLElement} */ (li.querySelector(".presence")).className = `presence ${presence}`;
  /** @type {HTMLElement} */ (li.querySelector(".presence-text")).textContent = group ? `Group of ${members}` : presenceLabel(presence);
  /** @type {HTMLElement} */ (li.querySelector(".name")).textContent = name;
  const audio = /** @type {HTMLElement} */ (li.querySelector(".call-audio"));
  const video = /** @type {HTMLElement} */ (li.querySelector(".call-video"));
  audio.setAttribute("aria-label", `Audio call ${name}`);
  video.setAttribute("aria-label", `Video call ${name}`);
  audio.onclick = () => place(id, group, false);
  video.onclick = () => place(id, group, true);
  return li;
}

async function refresh() {
  try {
    [contacts, groups] = await Promise.all([invoke("contacts"), invoke("groups")]);
    renderContacts();
    /** @type {HistoryEntry[]} */
    history = await invoke("history");
    renderHistory();
  } catch (e) {
    notice(errorText(e));
  }
}

/** @type {HistoryEntry[]} */
let history = [];

/** The history, by day, each call with its time (only missed ones with the filter on). */
function renderHistory() {
  const box = $("history");
  box.replaceChildren();
  const days = historyByDay(history, Date.now(), missedOnly);
  if (days.length === 0) {
    const p = document.createElement("p");
    p.className = "hint";
    p.textContent = missedOnly ? "No missed calls." : "No calls yet.";
    box.append(p);
  }
  for (const { day, calls } of days) {
    const h = document.createElement("h3");
    h.className = "day";
    h.textContent = day;
    const ul = document.createElement("ul");
    ul.setAttribute("aria-label", day);
    for (const { entry, time } of calls) {
      const r = historyRow(entry);
      const li = document.createElement("li");
      li.className = `history ${entry.status}`;
      li.innerHTML = `<span class="time"></span><span class="arrow" aria-hidden="true"></span><span class="name"></span><span class="outcome"></span><span class="duration"></span><button class="call-back">Call back</button>`;
      /** @type {HTMLElement} */ (li.querySelector(".time")).textContent = time;
      /** @type {HTMLElement} */ (li.querySelector(".arrow")).textContent = r.arrow;
      /** @type {HTMLElement} */ (li.querySelector(".name")).textContent = r.who;
      /** @type {HTMLElement} */ (li.querySelector(".outcome")).textContent = r.outcome;
      /** @type {HTMLElement} */ (li.querySelector(".duration")).textContent = r.duration || "";
      const back = /** @type {HTMLElement} */ (li.querySelector(".call-back"));
      back.setAttribute("aria-label", `Call ${r.who} back`);
      back.onclick = () => place(r.callBack.receiver, r.callBack.group, r.callBack.video);
      ul.append(li);
    }
    box.append(h, ul);
  }
}

/** @param {string} receiver @param {boolean} group @param {boolean} video */
async function place(receiver, group, video) {
  try {
    // The screen follows the app's `joined` event for this call.
    await invoke("call", { request: { receiver, group, video } });
  } catch (e) {
    notice(errorText(e));
  }
}

// Remote video: VP8 frames decoded by WebCodecs, one canvas per participant.
/** @type {Map<string, {decoder: any, canvas: HTMLCanvasElement, waitingForKey: boolean, size: string}>} */
const tiles = new Map();
const videoStats = /** @type {any} */ (window).pealVideo = { received: 0, keys: 0, decoded: 0, errors: 0, last: "", fps: 0 };
let decodedAtLastTick = 0;

function resetVideo() {
  for (const t of [...tiles.values(), ...(selfView ? [selfView] : [])]) { try { t.decoder && t.decoder.close(); } catch (_) { /* closed */ } }
  tiles.clear();
  selfView = null;
  $("self").hidden = true;
  $("tiles").replaceChildren();
}

/** @type {{decoder: any, canvas: HTMLCanvasElement, waitingForKey: boolean, size: string} | null} */
let selfView = null;

/** Our own video, small, over the grid. */
function selfTile() {
  if (selfView) return selfView;
  const canvas = /** @type {HTMLCanvasElement} */ ($("self"));
  canvas.hidden = false;
  selfView = { decoder: null, canvas, waitingForKey: true, size: "" };
  return selfView;
}

/** @param {string} from */
function tile(from) {
  let t = tiles.get(from);
  if (t) return t;
  const div = document.createElement("div");
  div.className = "tile";
  div.dataset.uid = from;
  const canvas = document.createElement("canvas");
  canvas.width = 640; canvas.height = 480;
  canvas.className = "remote";
  const label = document.createElement("span");
  label.className = "label";
  const c = contacts.find((x) => x.uid === from);
  label.textContent = c ? c.name : from;
  div.append(canvas, label);
  $("tiles").append(div);
  $("tiles").dataset.count = String(tiles.size + 1);
  t = { decoder: null, canvas, waitingForKey: true, size: "" };
  tiles.set(from, t);
  return t;
}

/** @param {ArrayBuffer} buf */
function onVideo(buf) {
  videoStats.received++;
  const bytes = new Uint8Array(buf);
  if (bytes.length < 7) return;
  const key = bytes[0] === 1;
  const width = bytes[1] | (bytes[2] << 8);
  const height = bytes[3] | (bytes[4] << 8);
  const n = bytes[5];
  const from = new TextDecoder().decode(bytes.subarray(6, 6 + n));
  const data = bytes.slice(6 + n);
  if (view.screen !== "call") return;
  // @ts-ignore: WebCodecs
  if (typeof VideoDecoder !== "function") {
    notice("This system can't show video: WebCodecs VP8 is missing (install gstreamer1.0-plugins-good).");
    return;
  }
  const t = from === "" ? selfTile() : tile(from);
  // A decoder starts on a keyframe (only a keyframe says the picture's size).
  if (!t.decoder && !key) return;
  if (!t.decoder) {
    try {
      const ctx = /** @type {CanvasRenderingContext2D} */ (t.canvas.getContext("2d"));
      // @ts-ignore: WebCodecs
      t.decoder = new VideoDecoder({
        output: (/** @type {any} */ frame) => {
          if (t === selfView) {
            // A thumbnail: drawn small, not scaled down afterwards.
            ctx.drawImage(frame, 0, 0, t.canvas.width, t.canvas.height);
            frame.close();
            return;
          }
          if (t.canvas.width !== frame.displayWidth) t.canvas.width = frame.displayWidth;
          if (t.canvas.height !== frame.displayHeight) t.canvas.height = frame.displayHeight;
          ctx.drawImage(frame, 0, 0);
          frame.close();
          videoStats.decoded++;
        },
        error: () => { videoStats.errors++; t.decoder = null; t.waitingForKey = true; },
      });
      t.decoder.configure({ codec: "vp8", codedWidth: width, codedHeight: height });
      t.size = `${width}x${height}`;
    } catch (e) {
      videoStats.errors++;
      videoStats.last = `decoder: ${e}`;
      t.decoder = null;
      return;
    }
    t.waitingForKey = true;
  }
  if (key) videoStats.keys++;
  // The sender steps its picture size with the bandwidth (at a keyframe).
  if (key && t.size !== `${width}x${height}`) {
    try {
      t.decoder.configure({ codec: "vp8", codedWidth: width, codedHeight: height });
      t.size = `${width}x${height}`;
    } catch (e) {
      videoStats.errors++;
      videoStats.last = `decoder: ${e}`;
    }
  }
  if (t.waitingForKey && !key) return;
  t.waitingForKey = false;
  try {
    // @ts-ignore: WebCodecs
    t.decoder.decode(new EncodedVideoChunk({ type: key ? "key" : "delta", timestamp: Math.round(performance.now() * 1000), data }));
  } catch (e) {
    videoStats.errors++;
    videoStats.last = String(e);
    t.decoder = null;
    t.waitingForKey = true;
  }
}

/** The quality badge, from the frames drawn in the last second and the media state. */
function showQuality() {
  if (view.screen !== "call") return;
  const q = quality({ fps: videoStats.fps, video: view.call.call_type === "video" && tiles.size > 0, media: mediaState });
  $("quality").className = `quality ${q}`;
  $("quality").textContent = q;
}

/** @param {UiEvent} msg */
function onEvent(msg) {
  const before = view;
  view = apply(view, msg, me ? me.uid : "");
  if (view !== before) {
    render();
    // A call we were in (or calling out) is over: leave its media. Leaving
    // the incoming screen is not that: an accept may be joining right now.
    if (view.screen === "home" && (before.screen === "call" || before.screen === "outgoing")) {
      invoke("call_over", { request: { session_id: before.call.session_id } }).catch(() => {});
    }
    if (view.screen === "home" && before.screen !== "home") refresh();
  }
  if (msg.type === "connection") {
    $("connection").textContent = msg.state === "connected" ? "" : msg.state.replace("_", " ");
    if (msg.state === "connected") refresh();
  } else if (msg.type === "media") {
    const u = msg.update;
    if (u.kind === "connected" || u.kind === "reconnecting" || u.kind === "reconnected") mediaState = u.kind;
    showQuality();
    if (u.kind === "failed") {
      // Media could not start or was lost for good: say why, on the call screen.
      $("banner").textContent = u.reason || "Call media failed.";
      $("banner").hidden = false;
    } else {
      $("banner").textContent = "Reconnecting…";
      $("banner").hidden = u.kind !== "reconnecting";
    }
    if (u.kind === "participant_left") {
      const t = tiles.get(u.peer);
      if (t) { try { t.decoder && t.decoder.close(); } catch (_) { /* closed */ } t.canvas.parentElement?.remove(); tiles.delete(u.peer); }
    }
    if (u.kind === "remote_state") {
      const el = document.querySelector(`.tile[data-uid="${CSS.escape(u.peer)}"]`);
      if (el) el.classList.toggle("camera-off", !u.video_enabled);
    }
  } else if (msg.type === "presence") {
    const c = contacts.find((x) => x.uid === msg.uid);
    if (c) c.presence = msg.presence;
    const dot = document.querySelector(`li.contact[data-uid="${CSS.escape(msg.uid)}"] .presence`);
    if (dot) { dot.className = `presence ${msg.presence}`; /** @type {HTMLElement} */ (dot).title = msg.presence.replace("_", " "); }
  } else if (msg.type === "signed_in") {
    if (!me) signedIn(msg.me);
  } else if (msg.type === "signing_in") {
    if (!me && msg.problem) {
      $("signin-error").hidden = false;
      $("signin-error").textContent = msg.problem;
    }
  } else if (msg.type === "signed_out") {
    me = null;
    closeSettings();
    show("signin");
  } else if (msg.type === "devices") {
    // A device was plugged in or taken out while the settings are open:
    // what changed since they opened.
    const chosen = chosenHardware();
    hardware = msg.devices;
    renderHardware(chosen);
    $("hardware-status").textContent = deviceChanges(hardwareAtOpen, hardware);
  } else if (msg.type === "mic_level") {
    /** @type {HTMLMeterElement} */ ($("mic-level")).value = msg.level;
  } else if (msg.type === "missed") {
    const b = $("missed-badge");
    b.hidden = msg.count === 0;
    b.textContent = `${msg.count} missed`;
    if (msg.count > 0) refresh();
  } else if (msg.type === "confirm_call") {
    // A peal:call link: nothing rings until the user says so here.
    const c = contacts.find((x) => x.uid === msg.user);
    const who = c ? c.name : msg.user;
    $("confirm-call-text").textContent = `${msg.video ? "Video call" : "Call"} ${who}?`;
    const box = /** @type {any} */ ($("confirm-call"));
    box.link = { user: msg.user, video: msg.video };
    box.hidden = false;
    $("confirm-call-yes").focus();
  } else if (msg.type === "sign_in_for_link") {
    if (msg.server) input("server").value = msg.server;
    $("signin-error").hidden = false;
    $("signin-error").textContent = msg.message;
    show("signin");
  } else if (msg.type === "join_invite") {
    openJoin(msg.server, msg.invite, msg.problem);
  } else if (msg.type === "contact_added") {
    if (me) refresh();
  } else if (msg.type === "confirm_close") {
    $("confirm").hidden = false;
  } else if (msg.type === "notice") {
    notice(msg.message);
  }
}

/** @param {{uid: string, name: string, server: string, local: boolean}} who */
async function signedIn(who) {
  me = who;
  $("signin-error").hidden = true;
  $("me").textContent = `${who.name}${who.local ? " (this computer)" : ""}`;
  $("server-now").textContent = who.local ? "this computer" : who.server;
  view = initial();
  render();
  await refresh();
  // After the contacts are painted, the app logs the time since launch.
  requestAnimationFrame(() => invoke("shown", { request: { what: "contacts" } }).catch(() => {}));
}

/** The invite the join form is for. @type {{server: string, invite: string} | null} */
let joining = null;

/**
 * A `peal:join` link: the form to make an account, or why the invite can't.
 * @param {string} server @param {string} invite @param {string | null} problem
 */
function openJoin(server, invite, problem) {
  joining = problem ? null : { server, invite };
  $("join-title").textContent = `Join ${server}`;
  for (const id of ["join-name", "join-uid", "join-password", "join-password2", "join-button"]) {
    /** @type {HTMLInputElement} */ ($(id)).disabled = !!problem;
  }
  $("join-error").hidden = !problem;
  $("join-error").textContent = problem || "";
  $("join").hidden = false;
  (problem ? $("join-cancel") : $("join-name")).focus();
}

async function submitJoin() {
  if (!joining) return;
  const form = { uid: input("join-uid").value.trim(), name: input("join-name").value, password: input("join-password").value, again: input("join-password2").value };
  const problem = joinProblem(form);
  $("join-error").hidden = !problem;
  $("join-error").textContent = problem || "";
  if (problem) return;
  const button = /** @type {HTMLButtonElement} */ ($("join-button"));
  button.disabled = true;
  button.textContent = "Creating your account…";
  try {
    const who = await invoke("join", { request: { ...joining, uid: form.uid, name: form.name.trim(), password: form.password } });
    $("join").hidden = true;
    joining = null;
    await signedIn(who);
  } catch (e) {
    $("join-error").hidden = false;
    $("join-error").textContent = errorText(e);
  } finally {
    button.disabled = false;
    button.textContent = "Create account";
  }
}

async function openSettings() {
  /** @type {SettingsView} */
  const v = await invoke("get_settings");
  const sel = /** @type {HTMLSelectElement} */ ($("ringtone"));
  sel.replaceChildren();
  for (const [id, name] of v.ringtones) sel.append(new Option(name, id));
  sel.append(new Option("A file of my own…", "file"));
  const r = v.settings.ringtone;
  sel.value = r.kind === "file" ? "file" : r.id;
  input("ringtone-file").value = r.kind === "file" ? r.path : "";
  $("ringtone-file-row").hidden = sel.value !== "file";
  input("volume").value = String(v.settings.ringtone_volume);
  input("dnd").checked = v.settings.do_not_disturb;
  input("start-at-login").checked = v.settings.start_at_login;
  hardware = v.devices;
  hardwareAtOpen = v.devices;
  renderHardware(v.settings);
  $("hardware-status").textContent = "";
  $("settings-error").hidden = true;
  $("settings").hidden = false;
  /** @type {any} */ ($("settings-form")).current = v.settings;
  watchHardware();
  await loadDevices();
}

/** The microphones, speakers and cameras connected now (kept current while the settings are open). */
/** @type {import("../bindings/DeviceList").DeviceList} */
let hardware = { microphones: [], speakers: [], cameras: [], labels: {} };
/** The devices connected when the settings opened (what changes are told against). */
/** @type {import("../bindings/DeviceList").DeviceList} */
let hardwareAtOpen = hardware;

/** @param {string} id */
function select(id) {
  return /** @type {HTMLSelectElement} */ ($(id));
}

/**
 * Fills the device choices from `hardware`, each set to `chosen`'s device
 * (or, when the lists change, to what the person has selected so far).
 * @param {{microphone: string | null, speaker: string | null, ringtone_output: string | null, camera: string | null}} chosen
 */
function renderHardware(chosen) {
  const fill = (/** @type {string} */ id, /** @type {string[]} */ names, /** @type {string | null} */ value, /** @type {string} */ label) => {
    const sel = select(id);
    // What the system called a device stays known once it is unplugged.
    const labels = { ...hardwareAtOpen.labels, ...hardware.labels };
    sel.replaceChildren(...deviceOptions(names, value, label, labels).map((o) => new Option(o.label, o.value)));
    sel.value = value || "";
  };
  fill("mic-choice", hardware.microphones, chosen.microphone, "System default");
  fill("speaker-choice", hardware.speakers, chosen.speaker, "System default");
  fill("ringtone-output", hardware.speakers, chosen.ringtone_output, "System default");
  fill("camera-choice", hardware.cameras, chosen.camera, hardware.cameras.length ? "First camera" : "No camera found (a test pattern is sent)");
}

/** What the device choices say now ("" is the default: null). */
function chosenHardware() {
  const v = (/** @type {string} */ id) => select(id).value || null;
  return { microphone: v("mic-choice"), speaker: v("speaker-choice"), ringtone_output: v("ringtone-output"), camera: v("camera-choice") };
}

/** Starts (or restarts, for another microphone) the settings' watch: device lists and the level. */
function watchHardware() {
  /** @type {HTMLMeterElement} */ ($("mic-level")).value = 0;
  invoke("watch_devices", { request: { microphone: select("mic-choice").value || null } }).catch((/** @type {unknown} */ e) => { $("hardware-status").textContent = errorText(e); });
}

function closeSettings() {
  $("settings").hidden = true;
  invoke("unwatch_devices").catch(() => {});
}

/** @param {string} selectId */
async function testSound(selectId) {
  try {
    await invoke("test_sound", { request: { output: select(selectId).value || null, volume: Number(input("volume").value) } });
  } catch (e) {
    $("hardware-status").textContent = errorText(e);
  }
}

async function pickRingtone() {
  try {
    const path = await invoke("pick_ringtone", { request: { current: input("ringtone-file").value.trim() || null } });
    if (path) input("ringtone-file").value = path;
  } catch (e) {
    $("settings-error").hidden = false;
    $("settings-error").textContent = errorText(e);
  }
}

/**
 * "Your devices": each with where it stands, and Sign out for the others.
 * @param {DeviceInfo[]} devices
 */
function renderDevices(devices) {
  const list = $("devices");
  list.replaceChildren();
  for (const d of deviceRows(devices)) {
    const li = document.createElement("li");
    li.className = "device";
    li.dataset.device = d.id;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = d.name;
    const status = document.createElement("span");
    status.className = "status";
    status.textContent = d.since && d.status !== "signed out" ? `${d.status} · ${new Date(d.since).toLocaleString()}` : d.status;
    li.append(name, status);
    if (d.canSignOut) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "sign-out-device";
      b.textContent = "Sign out";
      b.setAttribute("aria-label", `Sign out ${d.name}`);
      b.onclick = async () => {
        b.disabled = true;
        try {
          renderDevices(await invoke("sign_out_device", { request: { device_id: d.id } }));
        } catch (e) {
          b.disabled = false;
          $("settings-error").hidden = false;
          $("settings-error").textContent = `${d.name} was not signed out: ${errorText(e)}`;
        }
      };
      li.append(b);
    }
    list.append(li);
  }
}

async function loadDevices() {
  try {
    renderDevices(await invoke("devices"));
  } catch (e) {
    const li = document.createElement("li");
    li.className = "error";
    li.textContent = `Your devices can't be listed: ${errorText(e)}`;
    $("devices").replaceChildren(li);
  }
}

/** "Copy diagnostics": what the app measured and its last log lines, for a bug report. */
async function copyDiagnostics() {
  const status = $("diagnostics-status");
  const box = /** @type {HTMLTextAreaElement} */ ($("diagnostics-text"));
  try {
    const text = JSON.stringify(await invoke("diagnostics"), null, 2);
    box.value = text;
    try {
      await navigator.clipboard.writeText(text);
      status.textContent = "Copied to the clipboard.";
      box.hidden = true;
    } catch {
      // No clipboard access here: the text, selected, to copy by hand.
      status.textContent = "Select and copy the text below.";
      box.hidden = false;
      box.select();
    }
  } catch (e) {
    status.textContent = `Diagnostics unavailable: ${errorText(e)}`;
  }
}

async function saveSettings() {
  const sel = /** @type {HTMLSelectElement} */ ($("ringtone"));
  const current = /** @type {any} */ ($("settings-form")).current;
  const ringtone = sel.value === "file" ? { kind: "file", path: input("ringtone-file").value.trim() } : { kind: "builtin", id: sel.value };
  const settings = {
    ...current,
    ringtone,
    ringtone_volume: Number(input("volume").value),
    do_not_disturb: input("dnd").checked,
    start_at_login: input("start-at-login").checked,
    ...chosenHardware(),
  };
  try {
    await invoke("set_settings", { request: settings });
    closeSettings();
  } catch (e) {
    $("settings-error").hidden = false;
    $("settings-error").textContent = errorText(e);
  }
}

async function start() {
  const events = new tauri.core.Channel();
  events.onmessage = onEvent;
  await invoke("subscribe", { events });
  const video = new tauri.core.Channel();
  video.onmessage = onVideo;
  await invoke("subscribe_video", { video });

  $("local").onclick = async () => {
    /** @type {HTMLButtonElement} */ ($("local")).disabled = true;
    try { await signedIn(await invoke("start_local")); }
    catch (e) { $("signin-error").hidden = false; $("signin-error").textContent = errorText(e); }
    finally { /** @type {HTMLButtonElement} */ ($("local")).disabled = false; }
  };
  $("server-form").onsubmit = async (ev) => {
    ev.preventDefault();
    try {
      await signedIn(await invoke("sign_in", { request: { server: input("server").value.trim(), uid: input("uid").value.trim(), password: input("password").value } }));
    } catch (e) { $("signin-error").hidden = false; $("signin-error").textContent = errorText(e); }
  };
  $("search").oninput = renderContacts;
  for (const [id, only] of [["history-all", false], ["history-missed", true]]) {
    $(/** @type {string} */ (id)).onclick = () => {
      missedOnly = /** @type {boolean} */ (only);
      $("history-all").setAttribute("aria-pressed", String(!missedOnly));
      $("history-missed").setAttribute("aria-pressed", String(missedOnly));
      renderHistory();
    };
  }
  /** @param {boolean} video */
  const accept = async (video) => {
    if (!("call" in view)) return;
    try { await invoke("accept", { request: { session_id: view.call.session_id, video } }); }
    catch (e) { notice(errorText(e)); view = initial(); render(); refresh(); }
  };
  $("accept").onclick = () => accept(true);
  $("accept-audio").onclick = () => accept(false);
  $("decline").onclick = async () => {
    if (!("call" in view)) return;
    try { await invoke("decline", { request: { session_id: view.call.session_id } }); } catch (e) { notice(errorText(e)); }
    view = initial(); render(); refresh();
  };
  for (const id of ["cancel", "hangup"]) {
    $(id).onclick = async () => {
      if (!("call" in view)) return;
      const call = view.call;
      view = initial(); render();
      try { await invoke("hang_up", { request: { session_id: call.session_id } }); } catch (e) { notice(errorText(e)); }
      refresh();
    };
  }
  $("mute").onclick = async () => {
    try { await invoke("set_muted", { request: { muted: !muted } }); muted = !muted; render(); } catch (e) { notice(errorText(e)); }
  };
  $("camera").onclick = async () => {
    try { await invoke("set_camera", { request: { on: !cameraOn } }); cameraOn = !cameraOn; $("self").classList.toggle("off", !cameraOn); render(); } catch (e) { notice(errorText(e)); }
  };
  $("open-settings").onclick = () => openSettings().catch((e) => notice(errorText(e)));
  $("settings-cancel").onclick = closeSettings;
  $("mic-choice").onchange = watchHardware;
  $("speaker-test").onclick = () => testSound("speaker-choice");
  $("ringtone-output-test").onclick = () => testSound("ringtone-output");
  $("ringtone-pick").onclick = pickRingtone;
  $("copy-diagnostics").onclick = () => copyDiagnostics();
  $("sign-out").onclick = () => invoke("sign_out").catch((/** @type {unknown} */ e) => notice(errorText(e)));
  $("settings-form").onsubmit = (ev) => { ev.preventDefault(); saveSettings(); };
  $("ringtone").onchange = () => { $("ringtone-file-row").hidden = /** @type {HTMLSelectElement} */ ($("ringtone")).value !== "file"; };
  $("confirm-yes").onclick = async () => {
    $("confirm").hidden = true;
    view = initial(); render();
    await invoke("close_window").catch((/** @type {unknown} */ e) => notice(errorText(e)));
    refresh();
  };
  $("confirm-no").onclick = () => { $("confirm").hidden = true; };
  $("join-form").onsubmit = (ev) => { ev.preventDefault(); submitJoin(); };
  // While a call rings here: Enter accepts, Esc declines (as in the incoming window).
  document.addEventListener("keydown", (ev) => {
    if (view.screen !== "incoming" || !$("settings").hidden || !$("join").hidden) return;
    const what = incomingKey(ev.key, ev.target instanceof HTMLButtonElement);
    if (what === "accept") accept(true);
    else if (what === "decline") { ev.preventDefault(); $("decline").click(); }
  });
  $("join-cancel").onclick = () => { $("join").hidden = true; joining = null; };
  // A problem shown goes once the person starts fixing it.
  $("join-form").oninput = () => { if (joining) $("join-error").hidden = true; };
  $("confirm-call-yes").onclick = () => {
    const box = /** @type {any} */ ($("confirm-call"));
    box.hidden = true;
    if (box.link) place(box.link.user, false, box.link.video);
    box.link = null;
  };
  $("confirm-call-no").onclick = () => { const box = /** @type {any} */ ($("confirm-call")); box.hidden = true; box.link = null; };
  // Missed calls count until you come back to the window (the app sees it
  // focused) or click the count.
  $("missed-badge").onclick = () => invoke("missed_seen").catch(() => {});

  // Already signed in (the page reloaded)? Otherwise the sign-in screen,
  // shown only now, with every button wired.
  const who = await invoke("me");
  /** @type {import("../bindings/StartOptions").StartOptions} */
  const opts = await invoke("start_options");
  if (who) await signedIn(who);
  else if (!me) {
    if (opts.server) input("server").value = opts.server;
    if (opts.user) input("uid").value = opts.user;
    show("signin");
    // The app signs in by itself (this computer, or the kept session); its
    // `signed_in` or `signing_in` event follows.
    if (opts.this_computer || opts.resume) {
      $("signin-error").hidden = false;
      $("signin-error").textContent = opts.this_computer ? "Starting this computer's Peal server…" : `Signing you in to ${opts.server}…`;
    }
  }
  setInterval(() => {
    videoStats.fps = videoStats.decoded - decodedAtLastTick;
    decodedAtLastTick = videoStats.decoded;
    if (!callStarted || view.screen !== "call") return;
    $("duration").textContent = clock((Date.now() - callStarted) / 1000);
    showQuality();
  }, 1000);
}

start();
