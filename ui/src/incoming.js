// @ts-check
// The always-on-top incoming window: who calls, accept (video or audio
// only), decline. The app closes it when the ringing stops anywhere.
/** @typedef {import("../bindings/CallInfo").CallInfo} CallInfo */
/** @typedef {import("../bindings/UiEvent").UiEvent} UiEvent */
import { avatar, incomingKey, ringAnnouncement } from "./state.js";

// @ts-ignore: injected by Tauri (withGlobalTauri)
const tauri = window.__TAURI__;
/** @type {import("../bindings/Commands").Invoke} */
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

/** Accepts (with the camera on or audio only) or declines the call shown.
 * @param {"accept-video" | "accept-audio" | "decline"} what */
async function act(what) {
  if (!call) return;
  const session_id = call.session_id;
  for (const b of document.querySelectorAll("button")) /** @type {HTMLButtonElement} */ (b).disabled = true;
  try {
    if (what === "decline") await invoke("decline", { request: { session_id } });
    else await invoke("accept", { request: { session_id, video: what === "accept-video" } });
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
  $("accept").onclick = () => act("accept-video");
  $("accept-audio").onclick = () => act("accept-audio");
  $("decline").onclick = () => act("decline");
  document.addEventListener("keydown", (ev) => {
    const what = incomingKey(ev.key, ev.target instanceof HTMLButtonElement);
    if (what === "accept") act("accept-video");
    else if (what === "decline") { ev.preventDefault(); act("decline"); }
  });
  /** @type {CallInfo[]} */
  const ringing = await invoke("ringing");
  show(ringing[0] || null);
}

start();
