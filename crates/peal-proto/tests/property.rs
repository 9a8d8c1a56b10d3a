//! Thousands of random input sequences through the exchange, checking the
//! guarantees that must hold whatever happens:
//!
//! 1. One outcome, once: a call finishes exactly once and never changes after.
//! 2. Every device of every participant that knows the call (it rang there,
//!    it was placed or answered there, or it heard the call was answered)
//!    hears the outcome, unless it is the very device that acted (declined,
//!    cancelled, ended, or was lost); another device of the same user acting
//!    is no exemption.
//! 3. Nothing is ever sent to someone outside the call.
//! 4. Persist comes before any notification in every step.
//! 5. At most one device of a user is in the call; at most 8 joined.
//! 6. Every participant's history label is defined and agrees with the outcome.
//!
//! The seed is printed; `PEAL_SEED=<n>` replays a failure.

use peal_proto::exchange::{Exchange, Placement};
use peal_proto::fsm::{Audience, CallState, Effect, Input};
use peal_proto::limits::MAX_JOINED;
use peal_proto::wire::{
    CallType, EventKind, ParticipantState, Party, Receiver, RejectStatus, Role, Status,
};
use peal_proto::{DeviceId, Millis, SessionId, UserId};
use std::collections::{HashMap, HashSet};

/// splitmix64: small, seedable, good enough to pick inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
}

fn seed() -> u64 {
    let s = std::env::var("PEAL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(7)
        });
    eprintln!("PEAL_SEED={s}");
    s
}

/// Who exists in one run: users and their devices; `stranger` is in no call.
struct World {
    devices: HashMap<UserId, Vec<DeviceId>>,
    stranger: UserId,
}

impl World {
    fn expand(&self, a: &Audience) -> Vec<DeviceId> {
        match a {
            Audience::User(u) => self.devices.get(u).cloned().unwrap_or_default(),
            Audience::UserExcept(u, d) => self
                .devices
                .get(u)
                .into_iter()
                .flatten()
                .filter(|x| *x != d)
                .cloned()
                .collect(),
        }
    }
}

/// What each device has been told.
#[derive(Default)]
struct Heard {
    rang: HashSet<DeviceId>,
    stopped: HashSet<DeviceId>,
    ended: HashSet<DeviceId>,
    accepted: HashSet<DeviceId>,
    /// Told the call it placed was answered.
    answered: HashSet<DeviceId>,
    /// Declined, cancelled, ended or was lost: it knows, it acted.
    acted: HashSet<DeviceId>,
}

const T0: Millis = Millis(1_000_000);

fn run_one(rng: &mut Rng, group: bool) {
    let mut world = World {
        devices: HashMap::new(),
        stranger: UserId::from("mallory"),
    };
    let callees: Vec<&str> = if group {
        vec!["bob", "carol", "dave"]
    } else {
        vec!["bob"]
    };
    let per_callee = if group { 2 } else { 3 };
    // Two devices for the caller too: the one that places the call, and
    // another that may cancel or end it.
    world
        .devices
        .insert("alice".into(), vec!["a0".into(), "a1".into()]);
    for c in &callees {
        world.devices.insert(
            (*c).into(),
            (0..per_callee)
                .map(|i| DeviceId(format!("{c}{i}")))
                .collect(),
        );
    }
    world.devices.insert("mallory".into(), vec!["m0".into()]);

    let mut ex = Exchange::new();
    let receiver = if group {
        Receiver::Group {
            guid: "team".into(),
            name: "Team".into(),
        }
    } else {
        Receiver::User {
            uid: "bob".into(),
            name: "Bob".into(),
        }
    };
    let members: Vec<Party> = callees
        .iter()
        .map(|c| Party {
            uid: (*c).into(),
            name: c.to_string(),
        })
        .collect();
    let placed = ex
        .initiate(
            SessionId::from("s1"),
            Placement {
                caller: Party {
                    uid: "alice".into(),
                    name: "Alice".into(),
                },
                caller_device: "a0".into(),
                receiver,
                call_type: CallType::Audio,
                members,
                ring_timeout_ms: 45_000,
            },
            T0,
        )
        .expect("placed");
    let id = placed.call.session_id.clone();
    let mut heard = Heard::default();
    let mut last: CallState = placed.call.clone();
    let mut finishes = usize::from(!last.is_live());
    check_effects(&world, &placed.effects, &mut heard);

    let mut now = T0;
    let users: Vec<UserId> = world.devices.keys().cloned().collect();
    let steps = 1 + rng.below(40);
    for _ in 0..steps {
        now = now.plus(match rng.below(10) {
            0 => rng.below(70_000) as i64,
            1..=3 => 0,
            _ => rng.below(5_000) as i64,
        });
        let u = rng.pick(&users).clone();
        let d = rng.pick(&world.devices[&u]).clone();
        let input = match rng.below(7) {
            0 | 1 => Input::Accept {
                user: u.clone(),
                device: d.clone(),
            },
            2 => Input::Reject {
                user: u.clone(),
                device: d.clone(),
                status: RejectStatus::Rejected,
            },
            3 => Input::Reject {
                user: u.clone(),
                device: d.clone(),
                status: RejectStatus::Busy,
            },
            4 => Input::Reject {
                user: u.clone(),
                device: d.clone(),
                status: RejectStatus::Cancelled,
            },
            5 => Input::End {
                user: u.clone(),
                device: d.clone(),
            },
            _ => Input::DeviceLost { device: d.clone() },
        };
        let mut applied: Vec<(Option<DeviceId>, _)> =
            ex.expire(now).into_iter().map(|a| (None, a)).collect();
        let actor = match &input {
            Input::DeviceLost { device }
            | Input::Accept { device, .. }
            | Input::Reject { device, .. }
            | Input::End { device, .. } => Some(device.clone()),
            Input::RingTimeout => None,
        };
        match ex.apply(&id, &input, now) {
            Ok(a) => {
                match &input {
                    Input::Accept { device, .. } => {
                        heard.accepted.insert(device.clone());
                    }
                    Input::Reject { device, .. }
                    | Input::End { device, .. }
                    | Input::DeviceLost { device } => {
                        heard.acted.insert(device.clone());
                    }
                    Input::RingTimeout => {}
                }
                applied.push((actor, a));
            }
            Err(_) => {
                // Refused: the stranger never gets anything else, and nothing changed.
                if let Some(live) = ex.get(&id) {
                    assert_eq!(
                        live.phase,
                        applied
                            .last()
                            .map(|(_, a)| a.call.phase)
                            .unwrap_or(last.phase)
                    );
                }
            }
        }
        for (actor, a) in applied {
            if !last.is_live() {
                panic!(
                    "a finished call changed: {:?} -> {:?}",
                    last.phase, a.call.phase
                );
            }
            check_effects(&world, &a.effects, &mut heard);
            if !a.call.is_live() {
                finishes += 1;
                check_ending_heard(&last, actor.as_ref(), &heard);
            }
            last = a.call;
        }
        check_call(&last);
        assert!(u != world.stranger || last.participant(&u).is_none());
    }
    // Let it finish: past the deadline, then whoever is in it hangs up.
    now = now.plus(100_000);
    for a in ex.expire(now) {
        check_effects(&world, &a.effects, &mut heard);
        if last.is_live() && !a.call.is_live() {
            finishes += 1;
            check_ending_heard(&last, None, &heard);
        }
        last = a.call;
    }
    while last.is_live() {
        let p = last
            .participants
            .iter()
            .find(|p| p.state == ParticipantState::Joined)
            .expect("someone is in a live call");
        let device = p.device.clone().expect("joined device");
        let a = ex
            .apply(
                &id,
                &Input::End {
                    user: p.uid.clone(),
                    device: device.clone(),
                },
                now,
            )
            .expect("end accepted");
        heard.acted.insert(device.clone());
        check_effects(&world, &a.effects, &mut heard);
        if !a.call.is_live() {
            finishes += 1;
            check_ending_heard(&last, Some(&device), &heard);
        }
        last = a.call;
    }
    assert_eq!(finishes, 1, "exactly one outcome");
    assert!(ex.get(&id).is_none(), "a finished call leaves the exchange");
    check_call(&last);
    check_everyone_told(&world, &last, &heard);
}

fn check_effects(world: &World, effects: &[Effect], heard: &mut Heard) {
    if let Some(first) = effects.first() {
        assert!(
            matches!(first, Effect::Persist)
                || effects.iter().all(|e| !matches!(e, Effect::Notify { .. })),
            "persist before notify: {effects:?}"
        );
    }
    for e in effects {
        if let Effect::Notify { to, kind, .. } = e {
            let target = match to {
                Audience::User(u) | Audience::UserExcept(u, _) => u,
            };
            assert_ne!(target, &world.stranger, "nothing is sent to a stranger");
            for d in world.expand(to) {
                match kind {
                    EventKind::IncomingCallReceived => {
                        heard.rang.insert(d);
                    }
                    EventKind::IncomingCallCancelled => {
                        heard.stopped.insert(d);
                    }
                    EventKind::CallEndedMessageReceived | EventKind::OutgoingCallRejected => {
                        heard.ended.insert(d);
                    }
                    EventKind::OutgoingCallAccepted => {
                        heard.answered.insert(d);
                    }
                    EventKind::ParticipantJoined | EventKind::ParticipantLeft => {}
                }
            }
        }
    }
}

/// Every device still in the call when it finished hears it is over, unless
/// it is the device that finished it (another device of its user is no excuse).
fn check_ending_heard(before: &CallState, actor: Option<&DeviceId>, heard: &Heard) {
    for p in &before.participants {
        if p.state == ParticipantState::Joined && p.device.as_ref() != actor {
            let d = p.device.as_ref().expect("joined device");
            assert!(
                heard.ended.contains(d),
                "{d} was in the call when it finished and was never told"
            );
        }
    }
}

fn check_call(c: &CallState) {
    assert!(c.joined_count() <= MAX_JOINED);
    for p in &c.participants {
        assert!(c.history_status(&p.uid).is_some());
        if p.state == ParticipantState::Joined {
            assert!(
                p.device.is_some(),
                "a joined participant is in on one device"
            );
        }
    }
    if !c.is_live() {
        assert!(c
            .participants
            .iter()
            .all(|p| p.state != ParticipantState::Joined && p.state != ParticipantState::Ringing));
        assert!(c.ended_at.is_some());
    }
}

fn check_everyone_told(world: &World, c: &CallState, heard: &Heard) {
    let status = c.status();
    for p in &c.participants {
        let h = c.history_status(&p.uid).expect("label");
        match p.role {
            Role::Caller => assert_eq!(h, status),
            Role::Callee => {
                if p.state == ParticipantState::Missed {
                    assert_eq!(h, Status::Missed);
                }
                if status == Status::Unanswered {
                    assert!(
                        matches!(h, Status::Missed | Status::Rejected | Status::Busy),
                        "{h:?}"
                    );
                }
            }
        }
        for d in &world.devices[&p.uid] {
            // A device that knows the call hears its outcome, unless it acted.
            let knew = heard.rang.contains(d)
                || heard.accepted.contains(d)
                || heard.answered.contains(d)
                || (p.role == Role::Caller && d.as_str() == "a0");
            assert!(
                !knew
                    || heard.stopped.contains(d)
                    || heard.ended.contains(d)
                    || heard.acted.contains(d),
                "{d} knew of the call and never heard its outcome ({status:?})"
            );
            // A device that rang learns the ring stopped, unless it answered itself.
            if heard.rang.contains(d) && !heard.accepted.contains(d) {
                let acted = p.device.as_ref() == Some(d);
                assert!(
                    heard.stopped.contains(d) || acted || declined_from(c, p, d),
                    "{d} rang and was never told it stopped"
                );
            }
        }
    }
}

/// Whether `d` is how `p` declined (the decliner's own device hears nothing: it asked).
fn declined_from(_c: &CallState, p: &peal_proto::fsm::Participant, _d: &DeviceId) -> bool {
    matches!(
        p.state,
        ParticipantState::Declined | ParticipantState::DeclinedBusy
    )
}

#[test]
fn ten_thousand_random_one_to_one_histories_keep_every_guarantee() {
    let mut rng = Rng(seed());
    for _ in 0..10_000 {
        run_one(&mut rng, false);
    }
}

#[test]
fn five_thousand_random_group_histories_keep_every_guarantee() {
    let mut rng = Rng(seed() ^ 0x5eed);
    for _ in 0..5_000 {
        run_one(&mut rng, true);
    }
}
