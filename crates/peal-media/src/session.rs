//! A call's media session: one [`Link`] per other participant (full mesh),
//! negotiated over the signaling socket, with one encoder per medium whose
//! output goes to every link.
//!
//! Who offers: the participant who joins offers to everyone already joined
//! (a 1:1 callee offers to the caller after accepting). Two offers crossing
//! (glare) are settled by user id: the lower id's offer wins.
//! ICE candidates that arrive before their offer are held, not dropped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::StreamExt;
use peal_client::{ClientEvent, PealClient};
use peal_proto::wire::{CallInfo, CallType, EventKind, MediaSignal, ParticipantState};
use peal_proto::{DeviceId, SessionId, UserId};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::link::{Link, LinkConfig, LinkEvent, LinkState};
use crate::reconnect::{Action, Reconnect};
use crate::source::{AudioDecoder, Encoded, SourceHandle};
use crate::synthetic::{tone_pitch, VideoPattern};
use crate::vpx::{I420Frame, Vp8Decoder};
use crate::MediaError;

/// Where local media comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sources {
    /// The moving test pattern and the tone (every build).
    Synthetic,
    /// Camera and microphone.
    Devices,
    /// Send nothing; receive only.
    None,
    /// Send each peer its own media back, undecoded (the echo bot).
    Echo,
}

/// How to join (the seed's session settings).
#[derive(Clone, Debug)]
pub struct SessionSettings {
    pub call_type: CallType,
    pub start_audio_muted: bool,
    pub start_video_off: bool,
    pub sources: Sources,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub video_kbps: u32,
    pub relay_only: bool,
    pub bind: Vec<String>,
    pub ice_check_interval: Duration,
    /// Times in [`MediaStats`] are measured from here (e.g. when the call was accepted).
    pub t0: Instant,
}

impl SessionSettings {
    pub fn new(call_type: CallType, sources: Sources) -> Self {
        SessionSettings {
            call_type,
            start_audio_muted: false,
            start_video_off: call_type == CallType::Audio,
            sources,
            width: 640,
            height: 480,
            fps: 30,
            video_kbps: 800,
            relay_only: false,
            bind: vec!["0.0.0.0:0".to_owned()],
            ice_check_interval: Duration::from_millis(20),
            t0: Instant::now(),
        }
    }
}

/// What a session reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaEvent {
    /// Media connected with the first peer.
    Connected,
    Reconnecting {
        peer: UserId,
    },
    Reconnected {
        peer: UserId,
    },
    ParticipantJoined {
        peer: UserId,
    },
    ParticipantLeft {
        peer: UserId,
    },
    RemoteState {
        peer: UserId,
        audio_muted: bool,
        video_enabled: bool,
    },
    /// The session is over; `reason` is `left`, `call_ended`, `ice_timeout`, `ice_failed`.
    Ended {
        reason: String,
    },
}

/// A decoded remote video frame (and its bitstream, for renderers that decode themselves).
#[derive(Clone, Debug)]
pub struct RemoteVideo {
    pub from: UserId,
    pub frame: Arc<I420Frame>,
    pub vp8: Bytes,
}

/// Decoded remote audio: 20 ms of 48 kHz mono.
#[derive(Clone, Debug)]
pub struct RemoteAudio {
    pub from: UserId,
    pub samples: Arc<[i16]>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct SentStats {
    pub video_frames: u64,
    pub audio_frames: u64,
    pub keyframes: u64,
    pub bytes: u64,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct ReceivedStats {
    pub video_frames: u64,
    pub audio_frames: u64,
    /// Synthetic frames whose pattern checked out, in order.
    pub verified_frames: u64,
    /// Frames that decoded to something other than the pattern, or failed to decode.
    pub corrupt_frames: u64,
    /// Frames that arrived older than one already shown.
    pub out_of_order: u64,
    /// Audio frames whose pitch is one of the tone's.
    pub verified_audio_frames: u64,
}

/// Counters for `stats()` and the CLI's `media_stats` line.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct MediaStats {
    pub sent: SentStats,
    pub received: ReceivedStats,
    pub first_connected_ms: Option<u64>,
    pub first_remote_video_ms: Option<u64>,
    pub first_remote_audio_ms: Option<u64>,
    pub capture_to_decode_ms_p50: Option<u64>,
    #[serde(skip)]
    pub(crate) latencies: Vec<u64>,
}

impl MediaStats {
    fn finish(&mut self) {
        if !self.latencies.is_empty() {
            let mut l = self.latencies.clone();
            l.sort_unstable();
            self.capture_to_decode_ms_p50 = Some(l[l.len() / 2]);
        }
    }
}

enum Command {
    Leave(oneshot::Sender<()>),
    AudioMuted(bool),
    VideoEnabled(bool),
}

/// A joined media session. Dropping it leaves.
pub struct CallSession {
    call: SessionId,
    cmd: mpsc::UnboundedSender<Command>,
    events: Mutex<Option<mpsc::UnboundedReceiver<MediaEvent>>>,
    video: broadcast::Sender<RemoteVideo>,
    audio: broadcast::Sender<RemoteAudio>,
    stats: Arc<Mutex<MediaStats>>,
    client: PealClient,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Joins the media of `call` (which this device has accepted or placed).
pub async fn join_session(
    client: &PealClient,
    call: &CallInfo,
    settings: SessionSettings,
) -> Result<CallSession, MediaError> {
    let me = client.user().uid.clone();
    let ice = client
        .ice_servers()
        .await
        .map_err(|e| MediaError::Signaling(e.to_string()))?;
    let stats = Arc::new(Mutex::new(MediaStats::default()));
    let source = match settings.sources {
        Sources::Synthetic => Some(SourceHandle::synthetic(&settings, stats.clone())?),
        Sources::Devices => Some(SourceHandle::devices(&settings)?),
        Sources::None | Sources::Echo => None,
    };
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let (video, _) = broadcast::channel(4);
    let (audio, _) = broadcast::channel(16);
    let (link_tx, link_rx) = mpsc::unbounded_channel();
    let mut s = Session {
        client: client.clone(),
        call: call.session_id.clone(),
        me: me.clone(),
        cfg: LinkConfig {
            ice_servers: ice.ice_servers,
            relay_only: settings.relay_only,
            bind: settings.bind.clone(),
            ice_check_interval: settings.ice_check_interval,
        },
        peers: HashMap::new(),
        by_key: HashMap::new(),
        next_key: 1,
        link_tx,
        events: ev_tx,
        video: video.clone(),
        audio: audio.clone(),
        stats: stats.clone(),
        t0: settings.t0,
        audio_muted: settings.start_audio_muted,
        video_enabled: !settings.start_video_off,
        source,
        echo: settings.sources == Sources::Echo,
        connected_once: false,
    };
    let signals = client.events();
    // Everyone already joined gets our offer.
    for p in &call.participants {
        if p.uid != me && p.state == ParticipantState::Joined {
            s.offer_to(p.uid.clone(), false).await;
        }
    }
    tokio::spawn(s.run(signals, cmd_rx, link_rx));
    Ok(CallSession {
        call: call.session_id.clone(),
        cmd: cmd_tx,
        events: Mutex::new(Some(ev_rx)),
        video,
        audio,
        stats,
        client: client.clone(),
    })
}

impl CallSession {
    pub fn call(&self) -> &SessionId {
        &self.call
    }

    /// The session's events; the first caller gets them (one consumer).
    pub fn events(&self) -> Option<mpsc::UnboundedReceiver<MediaEvent>> {
        lock(&self.events).take()
    }

    /// Decoded remote video; a slow reader skips to the newest frames.
    pub fn video(&self) -> broadcast::Receiver<RemoteVideo> {
        self.video.subscribe()
    }

    pub fn audio(&self) -> broadcast::Receiver<RemoteAudio> {
        self.audio.subscribe()
    }

    pub fn stats(&self) -> MediaStats {
        let mut s = lock(&self.stats).clone();
        s.finish();
        s
    }

    pub fn set_audio_muted(&self, muted: bool) {
        let _ = self.cmd.send(Command::AudioMuted(muted));
    }

    pub fn set_video_enabled(&self, enabled: bool) {
        let _ = self.cmd.send(Command::VideoEnabled(enabled));
    }

    /// Switching cameras needs camera capture, which this build lacks.
    pub fn switch_camera(&self) -> Result<(), MediaError> {
        Err(MediaError::NoDevice("camera".into()))
    }

    /// Leaves: says bye to every peer, closes every connection and stops the
    /// sources; returns when all of it is done.
    pub async fn leave(&self) {
        let (tx, rx) = oneshot::channel();
        if self.cmd.send(Command::Leave(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// The seed's `endCall`: leaves the media session, then ends the call
    /// for everyone through the signaling server.
    pub async fn end_call(&self) -> Result<CallInfo, peal_client::ClientError> {
        self.leave().await;
        self.client.end_call(&self.call).await
    }
}

impl Drop for CallSession {
    fn drop(&mut self) {
        let (tx, _) = oneshot::channel();
        let _ = self.cmd.send(Command::Leave(tx));
    }
}

struct Peer {
    key: u64,
    uid: UserId,
    device: Option<DeviceId>,
    link: Arc<Link>,
    /// We sent an offer that has not been answered.
    offering: bool,
    /// Candidates that came before the remote description.
    held_ice: Vec<(String, Option<String>, Option<u16>)>,
    reconnect: Reconnect,
    decoder: Option<Vp8Decoder>,
    audio_decoder: Option<AudioDecoder>,
    last_counter: Option<u32>,
    writer: tokio::task::JoinHandle<()>,
}

struct Session {
    client: PealClient,
    call: SessionId,
    me: UserId,
    cfg: LinkConfig,
    peers: HashMap<UserId, Peer>,
    by_key: HashMap<u64, UserId>,
    next_key: u64,
    link_tx: mpsc::UnboundedSender<LinkEvent>,
    events: mpsc::UnboundedSender<MediaEvent>,
    video: broadcast::Sender<RemoteVideo>,
    audio: broadcast::Sender<RemoteAudio>,
    stats: Arc<Mutex<MediaStats>>,
    t0: Instant,
    audio_muted: bool,
    video_enabled: bool,
    source: Option<SourceHandle>,
    echo: bool,
    connected_once: bool,
}

impl Session {
    fn since_t0(&self) -> u64 {
        self.t0.elapsed().as_millis() as u64
    }

    fn signal(&self, to: &UserId, device: Option<&DeviceId>, signal: MediaSignal) {
        if let Err(e) = self.client.send_media(&self.call, to, device, signal) {
            tracing::debug!(error = %e, "media signal not sent");
        }
    }

    async fn add_peer(&mut self, uid: UserId, device: Option<DeviceId>) -> Option<&mut Peer> {
        let key = self.next_key;
        self.next_key += 1;
        let link = match Link::new(key, &self.cfg, self.link_tx.clone()).await {
            Ok(l) => Arc::new(l),
            Err(e) => {
                tracing::warn!(error = %e, peer = %uid, "could not create a peer connection");
                return None;
            }
        };
        let writer = match &self.source {
            Some(src) => tokio::spawn(write_media(
                src.subscribe(),
                link.clone(),
                src.sending.clone(),
            )),
            None => tokio::spawn(async {}),
        };
        self.by_key.insert(key, uid.clone());
        let peer = Peer {
            key,
            uid: uid.clone(),
            device,
            link,
            offering: false,
            held_ice: Vec::new(),
            reconnect: Reconnect::new(self.since_t0()),
            decoder: None,
            audio_decoder: None,
            last_counter: None,
            writer,
        };
        if let Some(old) = self.peers.insert(uid.clone(), peer) {
            self.drop_peer_links(old).await;
        }
        let _ = self
            .events
            .send(MediaEvent::ParticipantJoined { peer: uid.clone() });
        self.peers.get_mut(&uid)
    }

    async fn drop_peer_links(&mut self, p: Peer) {
        self.by_key.remove(&p.key);
        p.writer.abort();
        p.link.close().await;
    }

    async fn remove_peer(&mut self, uid: &UserId, say_bye: bool) {
        if let Some(p) = self.peers.remove(uid) {
            if say_bye {
                self.signal(uid, p.device.as_ref(), MediaSignal::Bye);
            }
            self.drop_peer_links(p).await;
            let _ = self
                .events
                .send(MediaEvent::ParticipantLeft { peer: uid.clone() });
        }
    }

    async fn offer_to(&mut self, uid: UserId, restart: bool) {
        if !self.peers.contains_key(&uid) && self.add_peer(uid.clone(), None).await.is_none() {
            return;
        }
        let Some(p) = self.peers.get_mut(&uid) else {
            return;
        };
        match p.link.create_offer(restart).await {
            Ok(sdp) => {
                p.offering = true;
                let device = p.device.clone();
                self.signal(&uid, device.as_ref(), MediaSignal::Offer { sdp, restart });
            }
            Err(e) => tracing::warn!(error = %e, "offer failed"),
        }
    }

    async fn flush_ice(&mut self, uid: &UserId) {
        if let Some(p) = self.peers.get_mut(uid) {
            for (c, mid, idx) in std::mem::take(&mut p.held_ice) {
                if let Err(e) = p.link.add_ice(c, mid, idx).await {
                    tracing::debug!(error = %e, "remote candidate refused");
                }
            }
        }
    }

    async fn on_signal(&mut self, from: UserId, from_device: DeviceId, signal: MediaSignal) {
        match signal {
            MediaSignal::Offer { sdp, restart } => {
                let glare = self
                    .peers
                    .get(&from)
                    .is_some_and(|p| p.offering && !restart);
                if glare && self.me < from {
                    return; // Our offer wins; theirs is dropped on their side too.
                }
                let fresh = !restart || !self.peers.contains_key(&from);
                if fresh {
                    let held = self
                        .peers
                        .get_mut(&from)
                        .map(|p| std::mem::take(&mut p.held_ice))
                        .unwrap_or_default();
                    if self.peers.contains_key(&from) {
                        self.remove_quietly(&from).await;
                    }
                    if let Some(p) = self.add_peer(from.clone(), Some(from_device.clone())).await {
                        p.held_ice = held;
                    }
                }
                let Some(p) = self.peers.get_mut(&from) else {
                    return;
                };
                p.device = Some(from_device.clone());
                p.offering = false;
                match p.link.answer(sdp).await {
                    Ok(answer) => {
                        self.signal(
                            &from,
                            Some(&from_device),
                            MediaSignal::Answer { sdp: answer },
                        );
                        self.flush_ice(&from).await;
                        self.send_state(&from);
                    }
                    Err(e) => tracing::warn!(error = %e, "could not answer"),
                }
            }
            MediaSignal::Answer { sdp } => {
                let Some(p) = self.peers.get_mut(&from) else {
                    return;
                };
                p.device = Some(from_device);
                p.offering = false;
                if let Err(e) = p.link.accept_answer(sdp).await {
                    tracing::warn!(error = %e, "bad answer");
                    return;
                }
                self.flush_ice(&from).await;
                self.send_state(&from);
            }
            MediaSignal::Ice {
                candidate,
                sdp_mid,
                sdp_mline_index,
            } => {
                if !self.peers.contains_key(&from) {
                    // Before its offer: a placeholder peer holds it until the offer comes.
                    if self
                        .add_peer(from.clone(), Some(from_device))
                        .await
                        .is_none()
                    {
                        return;
                    }
                }
                let Some(p) = self.peers.get_mut(&from) else {
                    return;
                };
                if p.link.has_remote_description().await {
                    if let Err(e) = p.link.add_ice(candidate, sdp_mid, sdp_mline_index).await {
                        tracing::debug!(error = %e, "remote candidate refused");
                    }
                } else {
                    p.held_ice.push((candidate, sdp_mid, sdp_mline_index));
                }
            }
            MediaSignal::State {
                audio_muted,
                video_enabled,
            } => {
                let _ = self.events.send(MediaEvent::RemoteState {
                    peer: from,
                    audio_muted,
                    video_enabled,
                });
            }
            MediaSignal::Bye => self.remove_peer(&from, false).await,
        }
    }

    /// Replaces a peer's link without reporting it left.
    async fn remove_quietly(&mut self, uid: &UserId) {
        if let Some(p) = self.peers.remove(uid) {
            self.drop_peer_links(p).await;
        }
    }

    fn send_state(&self, to: &UserId) {
        let device = self.peers.get(to).and_then(|p| p.device.clone());
        self.signal(
            to,
            device.as_ref(),
            MediaSignal::State {
                audio_muted: self.audio_muted,
                video_enabled: self.video_enabled,
            },
        );
    }

    fn broadcast_state(&self) {
        for uid in self.peers.keys() {
            self.send_state(uid);
        }
    }

    async fn on_link(&mut self, ev: LinkEvent) -> Option<String> {
        match ev {
            LinkEvent::LocalIce {
                peer,
                candidate,
                sdp_mid,
                sdp_mline_index,
            } => {
                let uid = self.by_key.get(&peer)?.clone();
                let device = self.peers.get(&uid).and_then(|p| p.device.clone());
                self.signal(
                    &uid,
                    device.as_ref(),
                    MediaSignal::Ice {
                        candidate,
                        sdp_mid,
                        sdp_mline_index,
                    },
                );
            }
            LinkEvent::State { peer, state } => {
                let uid = self.by_key.get(&peer)?.clone();
                let now = self.since_t0();
                let p = self.peers.get_mut(&uid)?;
                match state {
                    LinkState::Connected => {
                        if p.reconnect.connected() {
                            let _ = self.events.send(MediaEvent::Reconnected { peer: uid });
                        }
                        if let Some(src) = &self.source {
                            src.request_keyframe();
                        }
                        if !self.connected_once {
                            self.connected_once = true;
                            lock(&self.stats).first_connected_ms.get_or_insert(now);
                            let _ = self.events.send(MediaEvent::Connected);
                        }
                    }
                    LinkState::Disconnected | LinkState::Failed => {
                        if p.reconnect.dropped(now) {
                            let _ = self.events.send(MediaEvent::Reconnecting { peer: uid });
                        }
                    }
                    LinkState::Connecting | LinkState::Closed => {}
                }
            }
            LinkEvent::Video { peer, data, at } => {
                let uid = self.by_key.get(&peer)?.clone();
                let elapsed = at.saturating_duration_since(self.t0).as_millis() as u64;
                let p = self.peers.get_mut(&uid)?;
                if self.echo {
                    {
                        let mut st = lock(&self.stats);
                        st.received.video_frames += 1;
                        st.first_remote_video_ms.get_or_insert(elapsed);
                    }
                    p.link.send(true, data, Duration::from_millis(33)).await;
                    return None;
                }
                let decoder = match &mut p.decoder {
                    Some(d) => d,
                    None => p.decoder.insert(Vp8Decoder::new().ok()?),
                };
                let mut st = lock(&self.stats);
                match decoder.decode(&data) {
                    Ok(frames) => {
                        for f in frames {
                            st.received.video_frames += 1;
                            st.first_remote_video_ms.get_or_insert(elapsed);
                            if let Ok(stamp) = VideoPattern::verify(&f) {
                                if p.last_counter.is_some_and(|c| stamp.counter <= c) {
                                    st.received.out_of_order += 1;
                                } else {
                                    st.received.verified_frames += 1;
                                    st.latencies.push(stamp.age_ms(unix_ms()));
                                    p.last_counter = Some(stamp.counter);
                                }
                            } else {
                                st.received.corrupt_frames += 1;
                            }
                            let _ = self.video.send(RemoteVideo {
                                from: uid.clone(),
                                frame: Arc::new(f),
                                vp8: data.clone(),
                            });
                        }
                    }
                    Err(_) => st.received.corrupt_frames += 1,
                }
            }
            LinkEvent::Audio { peer, data, at } => {
                let uid = self.by_key.get(&peer)?.clone();
                let elapsed = at.saturating_duration_since(self.t0).as_millis() as u64;
                let p = self.peers.get_mut(&uid)?;
                if self.echo {
                    {
                        let mut st = lock(&self.stats);
                        st.received.audio_frames += 1;
                        st.first_remote_audio_ms.get_or_insert(elapsed);
                    }
                    p.link.send(false, data, Duration::from_millis(20)).await;
                    return None;
                }
                let decoder = match &mut p.audio_decoder {
                    Some(d) => d,
                    None => p.audio_decoder.insert(AudioDecoder::new().ok()?),
                };
                let samples = decoder.decode(&data)?;
                let mut st = lock(&self.stats);
                st.received.audio_frames += 1;
                st.first_remote_audio_ms.get_or_insert(elapsed);
                if tone_pitch(&samples).is_some() {
                    st.received.verified_audio_frames += 1;
                }
                let _ = self.audio.send(RemoteAudio {
                    from: uid,
                    samples: samples.into(),
                });
            }
        }
        None
    }

    /// Runs reconnect timers due by now; `Some(reason)` ends the session.
    async fn on_timers(&mut self) -> Option<String> {
        let now = self.since_t0();
        let mut restart = Vec::new();
        for p in self.peers.values_mut() {
            match p.reconnect.poll(now) {
                Action::Nothing => {}
                Action::RestartIce(_) => {
                    // The lower user id drives restarts, so both sides don't.
                    if self.me < p.uid {
                        restart.push(p.uid.clone());
                    }
                }
                Action::GiveUp(g) => return Some(g.reason().to_owned()),
            }
        }
        for uid in restart {
            self.offer_to(uid, true).await;
        }
        None
    }

    fn next_deadline(&self) -> Option<Instant> {
        let ms = self
            .peers
            .values()
            .filter_map(|p| p.reconnect.deadline())
            .min()?;
        Some(self.t0 + Duration::from_millis(ms))
    }

    async fn run(
        mut self,
        mut signals: peal_client::EventStream,
        mut cmds: mpsc::UnboundedReceiver<Command>,
        mut links: mpsc::UnboundedReceiver<LinkEvent>,
    ) {
        let mut done: Option<oneshot::Sender<()>> = None;
        let reason: String = loop {
            let deadline = self.next_deadline();
            let timer = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                c = cmds.recv() => match c {
                    Some(Command::Leave(tx)) => { done = Some(tx); break "left".into(); }
                    Some(Command::AudioMuted(m)) => {
                        self.audio_muted = m;
                        if let Some(s) = &self.source { s.set_audio(!m); }
                        self.broadcast_state();
                    }
                    Some(Command::VideoEnabled(v)) => {
                        self.video_enabled = v;
                        if let Some(s) = &self.source { s.set_video(v); }
                        self.broadcast_state();
                    }
                    None => break "left".into(),
                },
                ev = signals.next() => match ev {
                    Some(ClientEvent::Media { call, from, from_device, signal }) if call == self.call => {
                        self.on_signal(from, from_device, signal).await;
                    }
                    Some(ClientEvent::Call(e)) if e.call.session_id == self.call => match e.event {
                        EventKind::ParticipantLeft => {
                            if let Some(u) = e.participant { self.remove_peer(&u, false).await; }
                        }
                        EventKind::CallEndedMessageReceived
                        | EventKind::IncomingCallCancelled
                        | EventKind::OutgoingCallRejected => break "call_ended".into(),
                        EventKind::IncomingCallReceived
                        | EventKind::OutgoingCallAccepted
                        | EventKind::ParticipantJoined => {}
                    },
                    Some(_) => {}
                    None => break "signaling_closed".into(),
                },
                Some(ev) = links.recv() => {
                    if let Some(r) = self.on_link(ev).await { break r; }
                }
                _ = timer => {
                    if let Some(r) = self.on_timers().await { break r; }
                }
            }
        };
        let uids: Vec<UserId> = self.peers.keys().cloned().collect();
        for u in uids {
            self.remove_peer(&u, reason == "left" || reason.starts_with("ice_"))
                .await;
        }
        if let Some(src) = self.source.take() {
            src.stop();
        }
        let _ = self.events.send(MediaEvent::Ended { reason });
        if let Some(tx) = done {
            let _ = tx.send(());
        }
    }
}

/// Copies encoded media to one link while the source runs.
async fn write_media(
    mut rx: broadcast::Receiver<Encoded>,
    link: Arc<Link>,
    sending: Arc<AtomicBool>,
) {
    loop {
        match rx.recv().await {
            Ok(e) => {
                if sending.load(Ordering::Relaxed) {
                    link.send(e.video, e.data, e.duration).await;
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
}
