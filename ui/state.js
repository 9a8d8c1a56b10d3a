// The view state of the call screens as a pure function of call events, so
// it can be tested without a window. `view` is one of:
//   {screen: "home"} | {screen: "outgoing", call} | {screen: "incoming", call}
//   | {screen: "call", call} | {screen: "home", message}
export function initial() {
  return { screen: "home" };
}

const REJECTED = {
  busy: "is busy",
  rejected: "declined the call",
  unanswered: "did not answer",
  cancelled: "cancelled",
};

export function peerName(call, me) {
  if (call.receiver_type === "group") return call.receiver.name;
  return call.initiator.uid === me ? call.receiver.name : call.initiator.name;
}

// One call event (the SDK's, as the app forwards it) in, the next view out.
export function reduce(view, event, me) {
  const call = event.call;
  const current = view.call && view.call.session_id;
  switch (event.event) {
    case "incoming_call_received":
      // A second call while in one stays a notification, not a takeover.
      if (view.screen === "call" || view.screen === "outgoing") return view;
      return { screen: "incoming", call };
    case "outgoing_call_accepted":
      return current === call.session_id ? { screen: "call", call } : view;
    case "outgoing_call_rejected":
      if (current !== call.session_id) return view;
      return { screen: "home", message: `${peerName(call, me)} ${REJECTED[call.status] || "could not take the call"}.` };
    case "incoming_call_cancelled":
      if (current !== call.session_id) return view;
      return { screen: "home", message: event.reason === "answered_elsewhere" ? null : `Missed call from ${peerName(call, me)}.` };
    case "call_ended_message_received":
      return current === call.session_id ? { screen: "home", message: "Call ended." } : view;
    default:
      return view;
  }
}
