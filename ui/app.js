// Peal's page: talks to the Rust side only through its commands and two
// channels (events in order, video frames).
import { initial, reduce, peerName } from "./state.js";

const tauri = window.__TAURI__;
const invoke = tauri.core.invoke;
const $ = (id) => document.getElementById(id);

let me = null;
let view = initial();
let callStarted = null;
let contacts = [];

function notice(text) {
  const n = $("notice");
  n.textContent = text || "";
  n.hidden = !text;
}

function show(screen) {
  for (const id of ["signin", "home"]) $(id).hidden = id !== screen && !(id === "home" && screen !== "signin");
  $("outgoing").hidden = screen !== "outgoing";
  $("incoming").hidden = screen !== "incoming";
  $("call").hidden = screen !== "call";
}

function render() {
  show(view.screen);
  if (view.call) {
    for (const el of document.querySelectorAll(".who")) el.textContent = peerName(view.call, me.uid);
  }
  if (view.screen === "call" && !callStarted) callStarted = Date.now();
  if (view.screen !== "call") callStarted = null;
  if (view.screen === "home" && view.message !== undefined) notice(view.message);
}

function renderContacts() {
  const q = $("search").value.trim().toLowerCase();
  const ul = $("contacts");
  ul.replaceChildren();
  for (const c of contacts) {
    if (q && !c.name.toLowerCase().includes(q) && !c.uid.includes(q)) continue;
    const li = document.createElement("li");
    li.className = "contact";
    li.dataset.uid = c.uid;
    li.innerHTML = `<span class="presence ${c.presence}"></span><span class="name"></span>
      <button class="call-audio">Audio</button><button class="call-video">Video</button>`;
    li.querySelector(".name").textContent = c.name;
    li.querySelector(".call-audio").onclick = () => place(c.uid, false);
    li.querySelector(".call-video").onclick = () => place(c.uid, true);
    ul.append(li);
  }
}

async function refresh() {
  try {
    contacts = await invoke("contacts");
    renderContacts();
    const rows = await invoke("history");
    const ul = $("history");
    ul.replaceChildren();
    for (const h of rows) {
      const li = document.createElement("li");
      li.className = `history ${h.status}`;
      const secs = h.joined_at && h.ended_at ? Math.round((Date.parse(h.ended_at) - Date.parse(h.joined_at)) / 1000) : null;
      li.textContent = `${h.direction === "outgoing" ? "→" : "←"} ${h.peer_name} — ${h.status}${secs !== null ? ` (${Math.floor(secs / 60)}:${String(secs % 60).padStart(2, "0")})` : ""}`;
      ul.append(li);
    }
  } catch (e) {
    notice(e.message || String(e));
  }
}

async function place(uid, video) {
  try {
    const call = await invoke("call", { receiver: uid, group: false, video });
    view = call.status === "ongoing" ? { screen: "call", call } : { screen: "outgoing", call };
    render();
  } catch (e) {
    notice(e.message || String(e));
  }
}

// Remote video: VP8 frames decoded by WebCodecs and drawn on the canvas.
let decoder = null;
let waitingForKey = true;
const videoStats = (window.pealVideo = { received: 0, keys: 0, decoded: 0, errors: 0, last: "" });
function onVideo(buf) {
  videoStats.received++;
  const bytes = new Uint8Array(buf);
  if (bytes.length < 6) return;
  const key = bytes[0] === 1;
  const width = bytes[1] | (bytes[2] << 8);
  const height = bytes[3] | (bytes[4] << 8);
  if (!decoder) {
    if (typeof VideoDecoder !== "function") {
      notice("This system can't show video: WebCodecs VP8 is missing (install gstreamer1.0-plugins-good).");
      return;
    }
    let canvas, ctx;
    try {
    canvas = $("remote");
    ctx = canvas.getContext("2d");
    decoder = new VideoDecoder({
      output: (frame) => {
        if (canvas.width !== frame.displayWidth) canvas.width = frame.displayWidth;
        if (canvas.height !== frame.displayHeight) canvas.height = frame.displayHeight;
        ctx.drawImage(frame, 0, 0);
        frame.close();
        videoStats.decoded++;
      },
      error: () => { videoStats.errors++; decoder = null; waitingForKey = true; },
    });
    decoder.configure({ codec: "vp8", codedWidth: width, codedHeight: height });
    } catch (e) {
      videoStats.errors++;
      videoStats.last = `decoder: ${e}`;
      decoder = null;
      return;
    }
    waitingForKey = true;
  }
  if (key) videoStats.keys++;
  if (waitingForKey && !key) return;
  waitingForKey = false;
  try {
    decoder.decode(new EncodedVideoChunk({ type: key ? "key" : "delta", timestamp: Math.round(performance.now() * 1000), data: bytes.slice(5) }));
    videoStats.last = `${decoder.state} q=${decoder.decodeQueueSize}`;
  } catch (e) {
    videoStats.errors++;
    videoStats.last = String(e);
    decoder = null;
    waitingForKey = true;
  }
}

function onEvent(msg) {
  if (msg.type === "call") {
    view = reduce(view, msg.event, me.uid);
    render();
    if (view.screen === "home") {
      invoke("call_over").catch(() => {});
      refresh();
    }
  } else if (msg.type === "connection") {
    $("connection").textContent = msg.state === "connected" ? "" : msg.state;
  } else if (msg.type === "media") {
    const b = $("banner");
    b.hidden = msg.event !== "reconnecting";
    b.textContent = msg.event === "reconnecting" ? "Reconnecting…" : "";
  } else if (msg.type === "notice") {
    notice(msg.message);
  }
}

async function signedIn(who) {
  me = who;
  $("me").textContent = `${who.name}${who.local ? " (this computer)" : ""}`;
  view = initial();
  render();
  await refresh();
}

async function start() {
  const events = new tauri.core.Channel();
  events.onmessage = onEvent;
  await invoke("subscribe", { events });
  const video = new tauri.core.Channel();
  video.onmessage = onVideo;
  await invoke("subscribe_video", { video });

  $("local").onclick = async () => {
    $("local").disabled = true;
    try { await signedIn(await invoke("start_local")); }
    catch (e) { $("signin-error").hidden = false; $("signin-error").textContent = e.message || String(e); }
    finally { $("local").disabled = false; }
  };
  $("server-form").onsubmit = async (ev) => {
    ev.preventDefault();
    try {
      await signedIn(await invoke("sign_in", { server: $("server").value, uid: $("uid").value, password: $("password").value }));
    } catch (e) { $("signin-error").hidden = false; $("signin-error").textContent = e.message || String(e); }
  };
  $("search").oninput = renderContacts;
  $("accept").onclick = async () => {
    try { view = { screen: "call", call: await invoke("accept", { sessionId: view.call.session_id }) }; render(); }
    catch (e) { notice(e.message || String(e)); }
  };
  $("decline").onclick = async () => {
    try { await invoke("decline", { sessionId: view.call.session_id }); } catch (e) { notice(e.message || String(e)); }
    view = initial(); render(); refresh();
  };
  for (const id of ["cancel", "hangup"]) {
    $(id).onclick = async () => {
      const call = view.call;
      view = initial(); render();
      try { await invoke("hang_up", { sessionId: call.session_id }); } catch (e) { notice(e.message || String(e)); }
      decoder = null;
      refresh();
    };
  }
  // Only now, with every button wired, is the sign-in screen shown.
  show("signin");
  setInterval(() => {
    if (!callStarted) return;
    const s = Math.floor((Date.now() - callStarted) / 1000);
    $("duration").textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }, 1000);
}

start();
