//! Event fan-out to devices: per-device sequence numbers, a replay buffer for
//! resume, and the live socket sender.
//!
//! The switchboard is the only writer (it publishes, attaches and detaches),
//! so a snapshot taken while attaching is consistent with the events after it.
//! [`Fanout`] is the narrow trait the switchboard publishes through; a
//! NATS-backed implementation can carry events between nodes later.

use peal_proto::fsm::Audience;
use peal_proto::limits::{DEAD_AFTER_MS, REPLAY_BUFFER_EVENTS, RESUME_WINDOW_MS};
use peal_proto::wire::{CallInfo, Event, Presence, ServerFrame};
use peal_proto::{DeviceId, Millis, UserId};
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::mpsc;

/// A frame ready for the socket (JSON text).
pub type Frame = Arc<str>;

/// Publishes call events to devices.
pub trait Fanout: Send + Sync + 'static {
    /// Delivers `event` to every device `to` names that has a session here.
    fn publish(&self, to: &Audience, event: &Event, now: Millis);
    /// Whether any device of `user` is connected.
    fn is_online(&self, user: &UserId) -> bool;
}

/// How a (re)connecting device is brought up to date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Catchup {
    /// Every missed event was replayed.
    Replayed { count: usize },
    /// A snapshot was sent.
    Snapshot,
}

struct DeviceSession {
    user: UserId,
    /// The seq the next event gets; seqs start at 1.
    next_seq: u64,
    /// Numbered events kept for a resume: (seq, when, frame).
    buffer: VecDeque<(u64, Millis, Frame)>,
    live: Option<(u64, mpsc::Sender<Frame>)>,
    /// When the last connection went away; `None` while connected.
    disconnected_at: Option<Millis>,
    /// Users whose presence this device watches.
    watching: Vec<UserId>,
}

impl DeviceSession {
    /// Sends a frame that is not part of the numbered stream (not buffered).
    fn send_now(&mut self, frame: Frame) {
        if let Some((_, tx)) = &self.live {
            if tx.try_send(frame).is_err() {
                self.live = None;
            }
        }
    }

    fn push(&mut self, frame_of: impl FnOnce(u64) -> Frame, now: Millis) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let frame = frame_of(seq);
        if self.buffer.len() == REPLAY_BUFFER_EVENTS {
            self.buffer.pop_front();
        }
        // No resume can ask for an event older than the horizon; one that
        // would gets a snapshot, as it would past the count.
        while self
            .buffer
            .front()
            .is_some_and(|(_, at, _)| now.since(*at) > REPLAY_HORIZON_MS)
        {
            self.buffer.pop_front();
        }
        self.buffer.push_back((seq, now, frame.clone()));
        if let Some((_, tx)) = &self.live {
            // A device that can't keep up loses its socket, not its events: it resumes.
            if tx.try_send(frame).is_err() {
                self.live = None;
            }
        }
    }
}

#[derive(Default)]
struct Inner {
    devices: HashMap<DeviceId, DeviceSession>,
    by_user: HashMap<UserId, Vec<DeviceId>>,
    /// Disconnected sessions by when they went away, so expiry never scans every device.
    disconnected: BTreeSet<(Millis, DeviceId)>,
    /// Who watches each user's presence.
    watchers: HashMap<UserId, HashSet<DeviceId>>,
    next_conn: u64,
}

/// How long a numbered event is kept for a resume: a link is declared dead
/// [`DEAD_AFTER_MS`] after its last frame and may resume for
/// [`RESUME_WINDOW_MS`] after that, so no resume asks for anything older.
/// Without it every device kept its last 512 events however old (a soak at
/// 200 calls/s grew the server by ~36 MB a minute).
pub const REPLAY_HORIZON_MS: i64 = RESUME_WINDOW_MS + DEAD_AFTER_MS as i64 + 5_000;

/// The in-process hub.
pub struct Hub {
    epoch: String,
    inner: Mutex<Inner>,
}

/// `{"type":"event","seq":N, ...event fields}` without serializing the event once per device.
fn event_frame(seq: u64, event_json: &str) -> Frame {
    let body = event_json.strip_prefix('{').unwrap_or(event_json);
    Arc::from(format!(r#"{{"type":"event","seq":{seq},{body}"#))
}

fn frame(f: &ServerFrame) -> Frame {
    Arc::from(serde_json::to_string(f).unwrap_or_else(|_| {
        String::from(r#"{"type":"error","code":"internal","message":"unserializable frame"}"#)
    }))
}

impl Inner {
    /// Creates the session of `device` if it has none; `true` if it was created.
    fn ensure_session(
        &mut self,
        user: &UserId,
        device: &DeviceId,
        disconnected_at: Option<Millis>,
    ) -> bool {
        if self.devices.contains_key(device) {
            return false;
        }
        self.by_user
            .entry(user.clone())
            .or_default()
            .push(device.clone());
        let session = DeviceSession {
            user: user.clone(),
            next_seq: 1,
            buffer: VecDeque::new(),
            live: None,
            disconnected_at,
            watching: Vec::new(),
        };
        self.devices.insert(device.clone(), session);
        if let Some(t) = disconnected_at {
            self.disconnected.insert((t, device.clone()));
        }
        true
    }
}

impl Hub {
    pub fn new(epoch: String) -> Self {
        Hub {
            epoch,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Changes whenever the server loses the buffers (each start).
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Connects a device's socket. Queues the catch-up on `tx` (a replay ending
    /// in `resumed`, or a `snapshot` of `live_calls()`), then live events.
    /// Returns the connection id for [`Hub::detach`].
    pub fn attach(
        &self,
        user: &UserId,
        device: &DeviceId,
        since: Option<(u64, &str)>,
        tx: mpsc::Sender<Frame>,
        live_calls: impl FnOnce() -> Vec<CallInfo>,
    ) -> (u64, Catchup) {
        let mut inner = self.lock();
        inner.next_conn += 1;
        let conn = inner.next_conn;
        let fresh = inner.ensure_session(user, device, None);
        let epoch = self.epoch.clone();
        let Some(s) = inner.devices.get_mut(device) else {
            return (conn, Catchup::Snapshot);
        };
        let last = s.next_seq - 1;
        let replay = match since {
            // A fresh session holds nothing that was published before it existed.
            Some((seq, e)) if !fresh && e == epoch && seq <= last => {
                let first_buffered = s.buffer.front().map(|(q, _, _)| *q).unwrap_or(s.next_seq);
                (seq + 1 >= first_buffered).then_some(seq)
            }
            Some(_) | None => None,
        };
        let catchup = match replay {
            Some(seq) => {
                let frames: Vec<Frame> = s
                    .buffer
                    .iter()
                    .filter(|(q, _, _)| *q > seq)
                    .map(|(_, _, f)| f.clone())
                    .collect();
                let count = frames.len();
                for f in frames {
                    let _ = tx.try_send(f);
                }
                let _ = tx.try_send(frame(&ServerFrame::Resumed { last_seq: last }));
                Catchup::Replayed { count }
            }
            None => {
                let _ = tx.try_send(frame(&ServerFrame::Snapshot {
                    last_seq: last,
                    calls: live_calls(),
                }));
                Catchup::Snapshot
            }
        };
        // A newer connection of the same device replaces the old one (its channel closes).
        s.live = Some((conn, tx));
        if let Some(t) = s.disconnected_at.take() {
            inner.disconnected.remove(&(t, device.clone()));
        }
        (conn, catchup)
    }

    /// The socket `conn` of `device` went away; its session is kept for the resume window.
    /// Returns the device's user if this was its live connection.
    pub fn detach(&self, device: &DeviceId, conn: u64, now: Millis) -> Option<UserId> {
        let mut inner = self.lock();
        let Inner {
            devices,
            disconnected,
            ..
        } = &mut *inner;
        let s = devices.get_mut(device)?;
        if s.live.as_ref().is_none_or(|(c, _)| *c != conn) {
            return None;
        }
        s.live = None;
        s.disconnected_at = Some(now);
        disconnected.insert((now, device.clone()));
        Some(s.user.clone())
    }

    /// Replaces what `device` watches; `false` if it has no session.
    pub fn watch(&self, device: &DeviceId, uids: Vec<UserId>) -> bool {
        let mut inner = self.lock();
        let Inner {
            devices, watchers, ..
        } = &mut *inner;
        let Some(s) = devices.get_mut(device) else {
            return false;
        };
        for u in s.watching.drain(..) {
            if let Some(w) = watchers.get_mut(&u) {
                w.remove(device);
                if w.is_empty() {
                    watchers.remove(&u);
                }
            }
        }
        for u in &uids {
            watchers
                .entry(u.clone())
                .or_default()
                .insert(device.clone());
        }
        s.watching = uids;
        true
    }

    /// Whether anyone watches `user`'s presence.
    pub fn is_watched(&self, user: &UserId) -> bool {
        self.lock().watchers.contains_key(user)
    }

    /// Tells `uid`'s watchers (all of them, or just `only`) its presence.
    pub fn send_presence(&self, uid: &UserId, presence: Presence, only: Option<&DeviceId>) {
        let f = frame(&ServerFrame::Presence {
            uid: uid.clone(),
            presence,
        });
        let mut inner = self.lock();
        let Inner {
            devices, watchers, ..
        } = &mut *inner;
        for d in watchers.get(uid).into_iter().flatten() {
            if only.is_some_and(|o| o != d) {
                continue;
            }
            if let Some(s) = devices.get_mut(d) {
                s.send_now(f.clone());
            }
        }
    }

    /// Sends an unnumbered frame to `device` if it is `user`'s and connected.
    pub fn send_to(&self, user: &UserId, device: &DeviceId, f: &ServerFrame) -> bool {
        let mut inner = self.lock();
        match inner.devices.get_mut(device) {
            Some(s) if &s.user == user && s.live.is_some() => {
                s.send_now(frame(f));
                s.live.is_some()
            }
            Some(_) | None => false,
        }
    }

    /// Sends an unnumbered frame to every connected device (rare news for
    /// everyone, such as a new contact).
    pub fn send_all(&self, f: &ServerFrame) {
        let f = frame(f);
        for s in self.lock().devices.values_mut() {
            s.send_now(f.clone());
        }
    }

    /// Expects `device` back (after a restart it was in a live call): if it
    /// does not connect within the resume window it is reported lost.
    pub fn expect(&self, user: &UserId, device: &DeviceId, now: Millis) {
        self.lock().ensure_session(user, device, Some(now));
    }

    /// When the next disconnected session runs out of its resume window.
    pub fn next_expiry(&self) -> Option<Millis> {
        self.lock()
            .disconnected
            .first()
            .map(|(t, _)| t.plus(RESUME_WINDOW_MS))
    }

    /// Forgets sessions disconnected for longer than the resume window and
    /// returns them: those devices are lost.
    pub fn expire(&self, now: Millis) -> Vec<(UserId, DeviceId)> {
        let mut inner = self.lock();
        let mut out = Vec::new();
        while let Some((t, d)) = inner.disconnected.first().cloned() {
            if now.since(t) < RESUME_WINDOW_MS {
                break;
            }
            inner.disconnected.remove(&(t, d.clone()));
            if let Some(s) = inner.devices.remove(&d) {
                for u in &s.watching {
                    if let Some(w) = inner.watchers.get_mut(u) {
                        w.remove(&d);
                        if w.is_empty() {
                            inner.watchers.remove(u);
                        }
                    }
                }
                if let Some(v) = inner.by_user.get_mut(&s.user) {
                    v.retain(|x| x != &d);
                    if v.is_empty() {
                        inner.by_user.remove(&s.user);
                    }
                }
                out.push((s.user, d));
            }
        }
        if !out.is_empty() {
            // After a mass disconnect the maps would keep their size for good.
            let Inner {
                devices,
                by_user,
                watchers,
                ..
            } = &mut *inner;
            shrink(devices);
            shrink(by_user);
            shrink(watchers);
        }
        out
    }

    /// Connected sockets right now.
    pub fn connected(&self) -> usize {
        self.lock()
            .devices
            .values()
            .filter(|s| s.live.is_some())
            .count()
    }

    /// Closes every live socket (their channels end), for shutdown.
    pub fn close_all(&self) {
        for s in self.lock().devices.values_mut() {
            s.live = None;
        }
    }
}

impl Fanout for Hub {
    fn publish(&self, to: &Audience, event: &Event, now: Millis) {
        let (user, except) = match to {
            Audience::User(u) => (u, None),
            Audience::UserExcept(u, d) => (u, Some(d)),
        };
        let json = match serde_json::to_string(event) {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(error = %e, "event not serializable");
                return;
            }
        };
        let mut inner = self.lock();
        let Inner {
            devices, by_user, ..
        } = &mut *inner;
        for d in by_user.get(user).into_iter().flatten() {
            if Some(d) == except {
                continue;
            }
            if let Some(s) = devices.get_mut(d) {
                s.push(|seq| event_frame(seq, &json), now);
            }
        }
    }

    fn is_online(&self, user: &UserId) -> bool {
        let inner = self.lock();
        inner
            .by_user
            .get(user)
            .into_iter()
            .flatten()
            .any(|d| inner.devices.get(d).is_some_and(|s| s.live.is_some()))
    }
}

/// Gives back a map's room once it is mostly empty.
fn shrink<K: std::hash::Hash + Eq, V>(m: &mut HashMap<K, V>) {
    if m.capacity() > 64 && m.len() < m.capacity() / 4 {
        m.shrink_to_fit();
    }
}
