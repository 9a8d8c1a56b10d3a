// The call screens' view state for every call event and every app event:
// what the page shows, without a window.
import { describe, expect, it, test } from "vitest";
import { apply, avatar, clock, deviceChanges, deviceOptions, deviceRows, historyByDay, historyRow, incomingKey, initial, joinProblem, peerName, plainError, presenceLabel, quality, reduce, ringAnnouncement } from "../src/state.js";

const ME = "bob";

/** A call as the server sends it; `over` replaces fields. */
function call(over = {}) {
  return {
    session_id: "c1",
    status: "initiated",
    call_type: "video",
    receiver_type: "user",
    initiator: { uid: "alice", name: "Alice" },
    receiver: { uid: "bob", name: "Bob" },
    initiated_at: "2026-12-01T10:00:00.000Z",
    joined_at: null,
    ended_at: null,
    ring_deadline: "2026-12-01T10:00:30.000Z",
    participants: [],
    ...over,
  };
}

const ev = (event, over = {}, reason = null) => ({ event, call: call(over), reason });
const ringing = { screen: "incoming", call: call() };
const outgoing = { screen: "outgoing", call: call({ initiator: { uid: "bob", name: "Bob" }, receiver: { uid: "alice", name: "Alice" } }) };
const inCall = { screen: "call", call: call({ status: "ongoing" }), video: true };

describe("ringing (the app decides what rings here)", () => {
  test("an incoming call event alone shows nothing: do not disturb may have declined it", () => {
    expect(reduce(initial(), ev("incoming_call_received"), ME)).toEqual(initial());
  });
  test("the app rings: the incoming screen shows the caller", () => {
    const v = apply(initial(), { type: "ringing", call: call() }, ME);
    expect(v.screen).toBe("incoming");
    expect(peerName(v.call, ME)).toBe("Alice");
  });
  test("the next of two ringing calls replaces the first", () => {
    const v = apply(ringing, { type: "ringing", call: call({ session_id: "c2", initiator: { uid: "carol", name: "Carol" } }) }, ME);
    expect(v.call.session_id).toBe("c2");
  });
  test("during a call or while calling out, a second ring does not take over", () => {
    expect(apply(inCall, { type: "ringing", call: call({ session_id: "c2" }) }, ME)).toBe(inCall);
    expect(apply(outgoing, { type: "ringing", call: call({ session_id: "c2" }) }, ME)).toBe(outgoing);
  });
  test("ringing stops (declined in the window or the notification): home, quietly", () => {
    expect(apply(ringing, { type: "ringing", call: null }, ME)).toEqual({ screen: "home", message: null });
  });
  test("ringing stops after the cancel already took us home: the message stays", () => {
    const home = reduce(ringing, ev("incoming_call_cancelled", {}, "cancelled"), ME);
    expect(apply(home, { type: "ringing", call: null }, ME)).toBe(home);
  });
  test("ringing stops while in a call: nothing changes", () => {
    expect(apply(inCall, { type: "ringing", call: null }, ME)).toBe(inCall);
  });
});

describe("incoming_call_cancelled", () => {
  test("the caller cancelled: home, saying we missed it", () => {
    const v = reduce(ringing, ev("incoming_call_cancelled", {}, "cancelled"), ME);
    expect(v).toEqual({ screen: "home", message: "Missed call from Alice." });
  });
  test("it timed out: missed too", () => {
    expect(reduce(ringing, ev("incoming_call_cancelled", {}, "timeout"), ME).message).toBe("Missed call from Alice.");
  });
  test("answered on another of our devices: home, saying where", () => {
    expect(reduce(ringing, ev("incoming_call_cancelled", {}, "answered_elsewhere"), ME)).toEqual({ screen: "home", message: "Answered on another device." });
  });
  test("declined on another device: home, quietly", () => {
    expect(reduce(ringing, ev("incoming_call_cancelled", {}, "declined_elsewhere"), ME)).toEqual({ screen: "home", message: null });
  });
  test("about another call: nothing changes", () => {
    expect(reduce(ringing, ev("incoming_call_cancelled", { session_id: "zz" }, "cancelled"), ME)).toBe(ringing);
  });
});

describe("outgoing_call_accepted", () => {
  test("our call answered: the call window", () => {
    const v = reduce(outgoing, ev("outgoing_call_accepted", { ...outgoing.call, status: "ongoing" }), ME);
    expect(v.screen).toBe("call");
    expect(v.video).toBe(true);
  });
  test("an audio call shows as audio", () => {
    const v = reduce(outgoing, ev("outgoing_call_accepted", { ...outgoing.call, status: "ongoing", call_type: "audio" }), ME);
    expect(v.video).toBe(false);
  });
  test("another call's accept changes nothing", () => {
    expect(reduce(outgoing, ev("outgoing_call_accepted", { session_id: "zz" }), ME)).toBe(outgoing);
  });
});

describe("outgoing_call_rejected", () => {
  const rejected = (status) => reduce(outgoing, ev("outgoing_call_rejected", { ...outgoing.call, status }), ME);
  test("busy, declined, unanswered: each says what happened", () => {
    expect(rejected("busy")).toEqual({ screen: "home", message: "Alice is busy." });
    expect(rejected("rejected")).toEqual({ screen: "home", message: "Alice declined the call." });
    expect(rejected("unanswered")).toEqual({ screen: "home", message: "Alice did not answer." });
  });
  test("an unexpected status still says something", () => {
    expect(rejected("ended").message).toBe("Alice could not take the call.");
  });
});

describe("call_ended_message_received", () => {
  test("the other side hung up: home, call ended", () => {
    expect(reduce(inCall, ev("call_ended_message_received", { status: "ended" }), ME)).toEqual({ screen: "home", message: "Call ended." });
  });
  test("placed here, cancelled on another of our devices: Calling… goes, and says where", () => {
    expect(reduce(outgoing, ev("call_ended_message_received", { status: "cancelled" }, "cancelled_elsewhere"), ME)).toEqual({ screen: "home", message: "Cancelled on another device." });
  });
  test("in the call here, hung up on another of our devices: home, and says where", () => {
    expect(reduce(inCall, ev("call_ended_message_received", { status: "ended" }, "ended_elsewhere"), ME)).toEqual({ screen: "home", message: "Ended on another device." });
  });
  test("another call ending changes nothing", () => {
    expect(reduce(inCall, ev("call_ended_message_received", { session_id: "zz" }), ME)).toBe(inCall);
  });
});

describe("participants of a group call", () => {
  const group = { screen: "call", call: call({ status: "ongoing", receiver_type: "group", receiver: { guid: "team", name: "Team" } }), video: true };
  test("someone joins or leaves: still in the call, with the newest call object", () => {
    for (const kind of ["participant_joined", "participant_left"]) {
      const updated = { ...group.call, participants: [{ uid: "carol", name: "Carol", role: "callee", state: "joined" }] };
      const v = reduce(group, { event: kind, call: updated, reason: null, participant: "carol" }, ME);
      expect(v.screen).toBe("call");
      expect(v.call.participants).toHaveLength(1);
    }
  });
  test("a group call is named after the group", () => {
    expect(peerName(group.call, ME)).toBe("Team");
  });
});

describe("the app's own events", () => {
  test("joined (accepted here, in the window or the notification): the call window", () => {
    const v = apply(ringing, { type: "joined", call: call({ status: "ongoing" }), video: false }, ME);
    expect(v).toEqual({ screen: "call", call: call({ status: "ongoing" }), video: false });
  });
  test("joined with a call still ringing out (call back): the outgoing screen", () => {
    const v = apply(initial(), { type: "joined", call: call(), video: true }, ME);
    expect(v.screen).toBe("outgoing");
  });
  test("a call we placed that was refused at once (busy): home, saying so", () => {
    const mine = { initiator: { uid: "bob", name: "Bob" }, receiver: { uid: "alice", name: "Alice" } };
    expect(apply(initial(), { type: "joined", call: call({ ...mine, status: "busy" }), video: true }, ME)).toEqual({ screen: "home", message: "Alice is busy." });
  });
  test("call events pass through the reducer", () => {
    expect(apply(ringing, { type: "call", event: ev("incoming_call_cancelled", {}, "cancelled") }, ME).screen).toBe("home");
  });
  test("signed out: back to the start, whatever was showing", () => {
    expect(apply(inCall, { type: "signed_out" }, ME)).toEqual(initial());
  });
  test("presence, missed, connection, media, notices and close requests leave the screen as it is", () => {
    for (const msg of [
      { type: "presence", uid: "alice", presence: "in_call" },
      { type: "missed", count: 2 },
      { type: "connection", state: "reconnecting" },
      { type: "media", update: { kind: "reconnecting", peer: "alice" } },
      { type: "confirm_close" },
      { type: "notice", message: "No sound output" },
    ]) expect(apply(inCall, msg, ME)).toBe(inCall);
  });
});

describe("history rows", () => {
  const row = (over) => historyRow({
    session_id: "c1", status: "ended", direction: "incoming", peer: "alice", peer_name: "Alice",
    receiver_type: "user", call_type: "video", initiated_at: "2026-12-01T10:00:00.000Z",
    joined_at: "2026-12-01T10:00:02.000Z", ended_at: "2026-12-01T10:01:07.400Z", ...over,
  });
  test("an ended call shows its duration and who to call back", () => {
    const r = row({});
    expect(r).toMatchObject({ who: "Alice", outcome: "ended", duration: "1:05", missed: false, arrow: "↙" });
    expect(r.callBack).toEqual({ receiver: "alice", group: false, video: true });
  });
  test("a missed call is marked missed and has no duration", () => {
    expect(row({ status: "missed", joined_at: null, ended_at: "2026-12-01T10:00:30.000Z" })).toMatchObject({ missed: true, duration: null, outcome: "missed" });
  });
  test("outgoing calls to a group call the group back", () => {
    expect(row({ direction: "outgoing", receiver_type: "group", peer: "team", call_type: "audio" }).callBack).toEqual({ receiver: "team", group: true, video: false });
  });
});

test("durations read as m:ss, then h:mm:ss", () => {
  expect(clock(0)).toBe("0:00");
  expect(clock(59.9)).toBe("0:59");
  expect(clock(61)).toBe("1:01");
  expect(clock(3600 + 62)).toBe("1:01:02");
  expect(clock(-5)).toBe("0:00");
});

test("connection quality follows the frames drawn and the media state", () => {
  expect(quality({ fps: 30, video: true, media: "connected" })).toBe("good");
  expect(quality({ fps: 12, video: true, media: "connected" })).toBe("fair");
  expect(quality({ fps: 2, video: true, media: "reconnected" })).toBe("poor");
  expect(quality({ fps: 0, video: false, media: "connected" })).toBe("good");
  expect(quality({ fps: 30, video: true, media: "reconnecting" })).toBe("reconnecting");
  expect(quality({ fps: 0, video: true, media: "connecting" })).toBe("connecting");
});

describe("your devices", () => {
  const dev = (id, over = {}) => ({
    device_id: id, name: `${id}-0000000${id.length}`, created_at: "2026-11-01T09:00:00.000Z",
    signed_in_at: "2026-12-01T09:00:00.000Z", current: false, ...over,
  });
  test("this device first, then the others signed in, newest first, then the signed out", () => {
    const rows = deviceRows([
      dev("old", { signed_in_at: null }),
      dev("desk", { signed_in_at: "2026-11-20T09:00:00.000Z" }),
      dev("me", { current: true, signed_in_at: "2026-11-02T09:00:00.000Z" }),
      dev("phone", { signed_in_at: "2026-12-02T09:00:00.000Z" }),
    ]);
    expect(rows.map((r) => r.id)).toEqual(["me", "phone", "desk", "old"]);
    expect(rows.map((r) => r.status)).toEqual(["this device", "signed in", "signed in", "signed out"]);
  });
  test("only another device still signed in offers Sign out", () => {
    const rows = deviceRows([dev("me", { current: true }), dev("desk"), dev("old", { signed_in_at: null })]);
    expect(rows.map((r) => r.canSignOut)).toEqual([false, true, false]);
  });
});

describe("signing in at start", () => {
  test("a sign-in the app made itself, or a problem with it, leaves the call screens as they are", () => {
    const me = { uid: "bob", name: "Bob", server: "http://s", local: false };
    expect(apply(ringing, { type: "signed_in", me }, ME)).toBe(ringing);
    expect(apply(initial(), { type: "signing_in", problem: "Can't reach http://s" }, ME)).toEqual(initial());
  });
});

describe("joining with an invite", () => {
  const ok = { uid: "dana", name: "Dana Smith", password: "long enough", again: "long enough" };
  it("sends a complete form and says what is missing from one that isn't", () => {
    expect(joinProblem(ok)).toBeNull();
    expect(joinProblem({ ...ok, name: "  " })).toMatch(/name/);
    expect(joinProblem({ ...ok, uid: "dana smith" })).toMatch(/user id/);
    expect(joinProblem({ ...ok, password: "short", again: "short" })).toMatch(/at least 8/);
    expect(joinProblem({ ...ok, again: "long enougH" })).toMatch(/differ/);
  });
  it("shows an error's sentence", () => {
    expect(plainError({ code: "invite_invalid", message: "this invite has expired; ask for a new one" })).toBe("this invite has expired; ask for a new one");
    expect(plainError("boom")).toBe("boom");
  });
  it("leaves the call screens alone", () => {
    const v = initial();
    expect(apply(v, { type: "join_invite", server: "https://s", invite: "ab", problem: null }, "me")).toBe(v);
    expect(apply(v, { type: "contact_added", contact: { uid: "dana", name: "Dana" } }, "me")).toBe(v);
  });
});

describe("the keyboard while a call rings", () => {
  it("accepts with Enter, declines with Esc, and leaves a focused button's Enter to the button", () => {
    expect(incomingKey("Enter", false)).toBe("accept");
    expect(incomingKey("Enter", true)).toBeNull();
    expect(incomingKey("Escape", true)).toBe("decline");
    expect(incomingKey("Escape", false)).toBe("decline");
    expect(incomingKey("a", false)).toBeNull();
  });
  it("announces who calls and how to answer", () => {
    const call = /** @type {any} */ ({ initiator: { uid: "alice", name: "Alice" }, receiver_type: "group", receiver: { guid: "team", name: "Team" }, call_type: "video" });
    expect(ringAnnouncement(call)).toBe("Alice is calling you: video call to Team. Enter accepts, Escape declines.");
  });
});

describe("contacts and history for every day", () => {
  it("gives everyone initials on a colour of their own", () => {
    expect(avatar("alice", "Alice Liddell")).toEqual({ initials: "AL", hue: avatar("alice", "x").hue });
    expect(avatar("bob", "bob").initials).toBe("B");
    expect(avatar("carol", "").initials).toBe("C");
    expect(avatar("team", "Team (3)").initials).toBe("T");
    expect(avatar("x", "émile zola").initials).toBe("ÉZ");
    expect(avatar("alice", "A").hue).not.toBe(avatar("alicf", "A").hue);
    expect(avatar("bob", "Bob").hue).toBeGreaterThanOrEqual(0);
    expect(avatar("bob", "Bob").hue).toBeLessThan(360);
  });
  it("says presence in words", () => {
    expect(presenceLabel("online")).toBe("Available");
    expect(presenceLabel("in_call")).toBe("In a call");
    expect(presenceLabel("offline")).toBe("Offline");
  });
  it("groups the history by day with times, and filters the missed calls", () => {
    const at = (/** @type {number[]} */ [y, m, d, h, min]) => new Date(y, m, d, h, min).toISOString();
    const entry = (/** @type {string} */ status, /** @type {number[]} */ when) => /** @type {any} */ ({ status, initiated_at: at(when), peer: "alice", peer_name: "Alice" });
    const now = new Date(2026, 11, 4, 20, 0).getTime();
    const rows = [
      entry("ended", [2026, 11, 4, 14, 5]),
      entry("missed", [2026, 11, 4, 9, 30]),
      entry("missed", [2026, 11, 3, 23, 59]),
      entry("ended", [2026, 10, 30, 8, 0]),
      entry("ended", [2025, 11, 31, 12, 0]),
    ];
    const days = historyByDay(rows, now, false);
    expect(days.map((d) => d.day)).toEqual(["Today", "Yesterday", "Mon 30 Nov", "Wed 31 Dec 2025"]);
    expect(days[0].calls.map((c) => c.time)).toEqual(["14:05", "09:30"]);
    const missed = historyByDay(rows, now, true);
    expect(missed.map((d) => [d.day, d.calls.length])).toEqual([["Today", 1], ["Yesterday", 1]]);
    expect(historyByDay([], now, false)).toEqual([]);
  });
});

describe("device choice", () => {
  const list = (mics, speakers = [], cameras = [], labels = {}) => ({ microphones: mics, speakers, cameras, labels });

  it("offers the system default, then each connected device, without ALSA's own default twice", () => {
    expect(deviceOptions(["default", "USB Headset"], null, "System default")).toEqual([
      { value: "", label: "System default" },
      { value: "USB Headset", label: "USB Headset" },
    ]);
  });

  it("keeps a remembered headset that is unplugged, marked, so opening the settings does not forget it", () => {
    const opts = deviceOptions(["default"], "Jabra", "System default");
    expect(opts.map((o) => o.value)).toEqual(["", "Jabra"]);
    expect(opts[1].label).toBe("Jabra (not connected)");
    expect(deviceOptions(["Jabra"], "Jabra", "x").filter((o) => o.value === "Jabra")).toHaveLength(1);
  });

  it("shows each device as the system describes it, telling apart two described alike, and keeps the description of one unplugged", () => {
    const labels = { headset: "USB Headset", "front:CARD=PCH,DEV=0": "HDA Intel PCH — Front", "surround40:CARD=PCH,DEV=0": "HDA Intel PCH — Front" };
    const opts = deviceOptions(["default", "headset", "front:CARD=PCH,DEV=0", "surround40:CARD=PCH,DEV=0", "pulse"], null, "System default", labels);
    expect(opts.map((o) => o.label)).toEqual(["System default", "USB Headset", "HDA Intel PCH — Front (front:CARD=PCH,DEV=0)", "HDA Intel PCH — Front (surround40:CARD=PCH,DEV=0)", "pulse"]);
    expect(opts[1].value).toBe("headset");
    expect(deviceOptions([], "headset", "x", labels)[1].label).toBe("USB Headset (not connected)");
    expect(deviceChanges(list(["headset"], [], [], labels), list([]))).toBe("Disconnected: USB Headset.");
  });

  it("says which devices were plugged in and which were taken out", () => {
    expect(deviceChanges(list(["default"]), list(["default", "USB Headset"], ["USB Headset"]))).toBe("Connected: USB Headset.");
    expect(deviceChanges(list([], [], ["HD Webcam"]), list(["Mic"]))).toBe("Connected: Mic. Disconnected: HD Webcam.");
    expect(deviceChanges(list(["a"]), list(["a"]))).toBe("");
  });
});
