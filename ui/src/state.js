// @ts-check
// The view state of the call screens as a pure function of what the app
// says (call events and the app's own events), so it can be tested without
// a window. `view` is one of:
//   {screen: "home", message?} | {screen: "outgoing", call}
//   | {screen: "incoming", call} | {screen: "call", call, video}
/** @typedef {import("../bindings/CallInfo").CallInfo} CallInfo */
/** @typedef {import("../bindings/Event").Event} CallEvent */
/** @typedef {import("../bindings/UiEvent").UiEvent} UiEvent */
/** @typedef {import("../bindings/HistoryEntry").HistoryEntry} HistoryEntry */
/** @typedef {import("../bindings/DeviceInfo").DeviceInfo} DeviceInfo */
/**
 * @typedef {{screen: "home", message?: string | null}
 *   | {screen: "outgoing", call: CallInfo}
 *   | {screen: "incoming", call: CallInfo}
 *   | {screen: "call", call: CallInfo, video: boolean}} View
 */

/** @returns {View} */
export function initial() {
  return { screen: "home" };
}

/** @type {Record<string, string>} */
const REJECTED = {
  busy: "is busy",
  rejected: "declined the call",
  unanswered: "did not answer",
  cancelled: "cancelled",
};

/**
 * The other side of a call, as this user sees it.
 * @param {CallInfo} call
 * @param {string} me
 */
export function peerName(call, me) {
  if (call.receiver_type === "group") return call.receiver.name;
  return call.initiator.uid === me ? call.receiver.name : call.initiator.name;
}

/**
 * One call event (the SDK's, as the app forwards it) in, the next view out.
 * @param {View} view
 * @param {CallEvent} event
 * @param {string} me
 * @returns {View}
 */
export function reduce(view, event, me) {
  const call = event.call;
  const current = "call" in view ? view.call.session_id : null;
  switch (event.event) {
    case "incoming_call_received":
      // Whether it rings here (do not disturb, a replay) is the app's to
      // say: the incoming screen follows its `ringing` events.
      return view;
    case "outgoing_call_accepted":
      return current === call.session_id ? { screen: "call", call, video: call.call_type === "video" } : view;
    case "outgoing_call_rejected":
      if (current !== call.session_id) return view;
      return { screen: "home", message: `${peerName(call, me)} ${REJECTED[call.status] || "could not take the call"}.` };
    case "incoming_call_cancelled":
      if (current !== call.session_id) return view;
      if (event.reason === "answered_elsewhere") return { screen: "home", message: "Answered on another device." };
      if (event.reason === "declined_elsewhere") return { screen: "home", message: null };
      return { screen: "home", message: `Missed call from ${peerName(call, me)}.` };
    case "call_ended_message_received":
      if (current !== call.session_id) return view;
      if (event.reason === "cancelled_elsewhere") return { screen: "home", message: "Cancelled on another device." };
      if (event.reason === "ended_elsewhere") return { screen: "home", message: "Ended on another device." };
      return { screen: "home", message: "Call ended." };
    case "participant_joined":
    case "participant_left":
      // A group call goes on; keep the newest call object.
      return current === call.session_id && view.screen === "call" ? { ...view, call } : view;
  }
  return view;
}

/**
 * What the app said (any of its events) in, the next view out.
 * @param {View} view
 * @param {UiEvent} msg
 * @param {string} me
 * @returns {View}
 */
export function apply(view, msg, me) {
  switch (msg.type) {
    case "call":
      return reduce(view, msg.event, me);
    case "joined":
      // Our call now: placed (ringing out, or refused at once) or answered here.
      if (msg.call.status === "initiated") return { screen: "outgoing", call: msg.call };
      if (msg.call.status === "ongoing") return { screen: "call", call: msg.call, video: msg.video };
      return { screen: "home", message: `${peerName(msg.call, me)} ${REJECTED[msg.call.status] || "could not take the call"}.` };
    case "ringing":
      // The call the app rings for (the first, when several ring), or none.
      if (msg.call) {
        // A second call while in one stays a notification, not a takeover.
        if (view.screen === "call" || view.screen === "outgoing") return view;
        return { screen: "incoming", call: msg.call };
      }
      // Declined in the incoming window or the notification, timed out here:
      // the incoming screen goes too.
      return view.screen === "incoming" ? { screen: "home", message: null } : view;
    case "signed_out":
      return initial();
    case "signed_in":
    case "signing_in":
    case "confirm_call":
    case "sign_in_for_link":
    case "presence":
    case "missed":
    case "connection":
    case "media":
    case "confirm_close":
    case "notice":
    case "join_invite":
    case "contact_added":
      return view;
  }
  return view;
}

/**
 * "m:ss" (or "h:mm:ss") for a number of seconds.
 * @param {number} secs
 */
export function clock(secs) {
  const s = Math.max(0, Math.floor(secs));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/**
 * One history row as the list shows it.
 * @param {HistoryEntry} h
 * @returns {{arrow: string, who: string, outcome: string, duration: string | null, missed: boolean, callBack: {receiver: string, group: boolean, video: boolean}}}
 */
export function historyRow(h) {
  const secs = h.joined_at && h.ended_at ? (Date.parse(h.ended_at) - Date.parse(h.joined_at)) / 1000 : null;
  /** @type {Record<string, string>} */
  const words = {
    ended: "ended", missed: "missed", rejected: "declined", busy: "busy",
    cancelled: "cancelled", unanswered: "no answer", ongoing: "in progress", initiated: "ringing",
  };
  return {
    arrow: h.direction === "outgoing" ? "↗" : "↙",
    who: h.peer_name,
    outcome: words[h.status] || h.status,
    duration: secs === null ? null : clock(secs),
    missed: h.status === "missed",
    callBack: { receiver: h.peer, group: h.receiver_type === "group", video: h.call_type === "video" },
  };
}

/**
 * Connection quality from the frames drawn in the last second and the media state.
 * @param {{fps: number, video: boolean, media: string}} s
 * @returns {"good" | "fair" | "poor" | "reconnecting" | "connecting"}
 */
export function quality(s) {
  if (s.media === "reconnecting") return "reconnecting";
  if (s.media !== "connected" && s.media !== "reconnected") return "connecting";
  if (!s.video) return "good";
  if (s.fps >= 20) return "good";
  if (s.fps >= 8) return "fair";
  return "poor";
}

/**
 * "Your devices" as settings lists them: this one first, then the others
 * signed in (newest first), then those signed out; only another device that
 * is still signed in can be signed out from here (this one signs out with
 * Sign out).
 * @param {DeviceInfo[]} devices
 * @returns {{id: string, name: string, status: string, since: string | null, canSignOut: boolean}[]}
 */
export function deviceRows(devices) {
  const rank = (/** @type {DeviceInfo} */ d) => (d.current ? 0 : d.signed_in_at ? 1 : 2);
  return [...devices]
    .sort((a, b) => rank(a) - rank(b) || Date.parse(b.signed_in_at || b.created_at) - Date.parse(a.signed_in_at || a.created_at))
    .map((d) => ({
      id: d.device_id,
      name: d.name,
      status: d.current ? "this device" : d.signed_in_at ? "signed in" : "signed out",
      since: d.signed_in_at,
      canSignOut: !d.current && d.signed_in_at !== null,
    }));
}

/** Shortest password the server takes for an account made with an invite. */
export const MIN_JOIN_PASSWORD = 8;

/**
 * What is wrong with the join form, said for the person filling it in, or
 * null when it can be sent (the server checks again).
 * @param {{uid: string, name: string, password: string, again: string}} f
 * @returns {string | null}
 */
export function joinProblem(f) {
  if (!f.name.trim()) return "Say what name people should see.";
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(f.uid)) return "A user id is 1-64 letters, digits, dots, dashes or underscores.";
  if ([...f.password].length < MIN_JOIN_PASSWORD) return `Pick a password of at least ${MIN_JOIN_PASSWORD} characters.`;
  if (f.password !== f.again) return "The two passwords differ.";
  return null;
}

/**
 * An app error as a person reads it (its message; the code is for the page).
 * @param {unknown} e
 * @returns {string}
 */
export function plainError(e) {
  return /** @type {any} */ (e)?.message || String(e);
}

/**
 * What a key does while a call rings: Enter accepts (on a button it is that
 * button's own click), Esc declines.
 * @param {string} key @param {boolean} onButton
 * @returns {"accept" | "decline" | null}
 */
export function incomingKey(key, onButton) {
  if (key === "Escape") return "decline";
  if (key === "Enter" && !onButton) return "accept";
  return null;
}

/**
 * What a screen reader announces when a call rings.
 * @param {CallInfo} c
 */
export function ringAnnouncement(c) {
  const group = c.receiver_type === "group" ? ` to ${c.receiver.name}` : "";
  return `${c.initiator.name} is calling you: ${c.call_type} call${group}. Enter accepts, Escape declines.`;
}

/**
 * A person's avatar: their initials on a colour of their own (the same
 * user id always gets the same hue).
 * @param {string} id @param {string} name
 * @returns {{initials: string, hue: number}}
 */
export function avatar(id, name) {
  const words = (name || id || "?").trim().split(/\s+/).filter((w) => /^[\p{L}\p{N}]/u.test(w));
  const first = (/** @type {string | undefined} */ w) => (w ? [...w][0] : "");
  const initials = (words.length > 1 ? first(words[0]) + first(words[words.length - 1]) : first(words[0]) || "?").toUpperCase();
  let h = 0;
  for (const ch of id) h = (h * 31 + (ch.codePointAt(0) || 0)) % 360;
  return { initials, hue: h };
}

/** @param {string} presence */
export function presenceLabel(presence) {
  /** @type {Record<string, string>} */
  const words = { online: "Available", in_call: "In a call", offline: "Offline", group: "Group" };
  return words[presence] || presence;
}

/**
 * The history as people read it: grouped by day (Today, Yesterday, then the
 * date), each call with its time of day; `missedOnly` keeps the missed ones.
 * Local time; `now` is an input (ms since the epoch).
 * @param {HistoryEntry[]} rows newest first
 * @param {number} now
 * @param {boolean} missedOnly
 * @returns {{day: string, calls: {entry: HistoryEntry, time: string}[]}[]}
 */
export function historyByDay(rows, now, missedOnly) {
  const dayOf = (/** @type {number} */ ms) => { const d = new Date(ms); return new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime(); };
  const today = dayOf(now);
  const yesterday = dayOf(today - 12 * 3600 * 1000);
  /** @type {{day: string, calls: {entry: HistoryEntry, time: string}[]}[]} */
  const out = [];
  let last = NaN;
  for (const entry of rows) {
    if (missedOnly && entry.status !== "missed") continue;
    const at = Date.parse(entry.initiated_at);
    const day = dayOf(at);
    if (day !== last) {
      const d = new Date(day);
      const label = day === today ? "Today" : day === yesterday ? "Yesterday"
        : `${DAYS[d.getDay()]} ${d.getDate()} ${MONTHS[d.getMonth()]}${d.getFullYear() === new Date(now).getFullYear() ? "" : ` ${d.getFullYear()}`}`;
      out.push({ day: label, calls: [] });
      last = day;
    }
    const t = new Date(at);
    out[out.length - 1].calls.push({ entry, time: `${String(t.getHours()).padStart(2, "0")}:${String(t.getMinutes()).padStart(2, "0")}` });
  }
  return out;
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/**
 * One device choice in the settings: the system's default first, then each
 * device connected now (ALSA's own "default" is the first choice already),
 * and a remembered device that is unplugged kept and marked, so opening the
 * settings without the headset never forgets it. Each shows as the system
 * describes it ("USB Headset"), by its name where it has no description or
 * two share one. Value "" is the default.
 * @param {string[]} connected
 * @param {string | null} chosen
 * @param {string} defaultLabel
 * @param {Record<string, string | undefined>} [labels] what people read for a name (the system's description)
 * @returns {{value: string, label: string}[]}
 */
export function deviceOptions(connected, chosen, defaultLabel, labels = {}) {
  const out = [{ value: "", label: defaultLabel }];
  const named = (/** @type {string} */ name) => labels[name] ?? name;
  const shown = connected.filter((n) => n !== "default");
  for (const name of shown) {
    // Two devices the system describes alike are told apart by their names.
    const twin = shown.some((other) => other !== name && named(other) === named(name));
    out.push({ value: name, label: twin ? `${named(name)} (${name})` : named(name) });
  }
  if (chosen && chosen !== "default" && !connected.includes(chosen)) out.push({ value: chosen, label: `${named(chosen)} (not connected)` });
  return out;
}

/**
 * What changed between two device lists, said for the person: "Connected:
 * USB Headset. Disconnected: HD Webcam." ("" when nothing did).
 * @param {import("../bindings/DeviceList").DeviceList} before
 * @param {import("../bindings/DeviceList").DeviceList} after
 * @returns {string}
 */
export function deviceChanges(before, after) {
  const all = (/** @type {import("../bindings/DeviceList").DeviceList} */ l) =>
    new Set([...l.microphones, ...l.speakers, ...l.cameras].filter((n) => n !== "default"));
  const [was, now] = [all(before), all(after)];
  const labels = { ...before.labels, ...after.labels };
  const said = (/** @type {string[]} */ names) => names.map((n) => labels[n] ?? n).join(", ");
  const came = [...now].filter((n) => !was.has(n));
  const went = [...was].filter((n) => !now.has(n));
  return [came.length ? `Connected: ${said(came)}.` : "", went.length ? `Disconnected: ${said(went)}.` : ""].filter(Boolean).join(" ");
}
