// @ts-check
// The always-on-top incoming window: who calls, accept (video or audio
// only), decline. The app closes it when the ringing stops anywhere.
/** @typedef {import("../bindings/CallInfo").CallInfo} CallInfo */
/** @typedef {import("../bindings/UiEvent").UiEvent} UiEvent */
import { avatar, incomingKey, ringAnnouncement } from "./state.js";

// @ts-ignore: injected by Tauri (withGlobalTauri)
const tauri = window.__TAURI__;
const invoke = tauri.core.invoke;
const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** @type {CallInfo | null} */
let call = null;

/** @param {CallInfo | null} c */
function show(c) {
  call = c;
  if (!c) return;
  const group = c.receiver_type === "group";
  $("who").textContent = c.initiator.name;
  $("what").textContent = `Incoming ${c.call_type} call${group ? ` to ${c.receiver.name}` : ""}`;
  const face = /** @type {HTMLElement} */ (document.querySelector(".avatar"));
  const a = avatar(c.initiator.uid, c.initiator.name);
  face.textContent = a.initials;
  face.style.background = `hsl(${a.hue} 45% 36%)`;
  $("accept-audio").hidden = c.call_type !== "video";
  // A screen reader says who calls; the keyboard starts on Accept.
  $("announce").textContent = ringAnnouncement(c);
  $("accept").focus();
}

/** @param {string} cmd @param {Record<string, unknown>} args */
async function act(cmd, args) {
  if (!call) return;
  for (const b of document.querySelectorAll("button")) /** @type {HTMLButtonElement} */ (b).disabled = true;
  try {
    await invoke(cmd, { sessionId: call.session_id, ...args });
  } catch (e) {
    $("error").hidden = false;
    $("error").textContent = /** @type {any} */ (e).message || String(e);
    for (const b of document.querySelectorAll("button")) /** @type {HTMLButtonElement} */ (b).disabled = false;
  }
}

async function start() {
  const events = new tauri.core.Channel();
  events.onmessage = (/** @type {UiEvent} */ msg) => {
    if (msg.type === "ringing") show(msg.call || null);
  };
  await invoke("subscribe", { events });
  $("accept").onclick = () => act("accept", { video: true });
  $("accept-audio").onclick = () => act("accept", { video: false });
  $("decline").onclick = () => act("decline", {});
  document.addEventListener("keydown", (ev) => {
    const what = incomingKey(ev.key, ev.target instanceof HTMLButtonElement);
    if (what === "accept") act("accept", { video: true });
    else if (what === "decline") { ev.preventDefault(); act("decline", {}); }
  });
  /** @type {CallInfo[]} */
  const ringing = await invoke("ringing");
  show(ringing[0] || null);
}

start();
