//! A call's media session: one [`Link`] per other participant (full mesh),
//! negotiated over the signaling socket, with one encoder per medium whose
//! output goes to every link.
//!
//! Who offers: of each pair of users, the lower user id, so offers never
//! cross. A session starting offers to the joined peers it should offer to
//! and says `hello` to the others; a hello gets a fresh offer unless an
//! answered link exists (so an offer sent before the peer's session existed
//! is not waited on forever). Offers are numbered; a stale answer is ignored.
//! ICE candidates that arrive before their offer are held, not dropped.
//!
//! **Pre-connect**: a callee's device may join while it still rings. Its
//! links gather, connect ICE and finish DTLS, but no media flows either way
//! and nothing is shown: media goes to a peer only when both ends are joined
//! (`active` per link), and our own sources start only once we are. Accepting
//! ([`CallSession::accepted`]) turns it on; declining or a cancel tears it
//! down ([`CallSession::leave`], or the call's end event).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::StreamExt;
use peal_client::{ClientEvent, PealClient};
use peal_proto::wire::{CallInfo, CallType, EventKind, MediaSignal, ParticipantState};
use peal_proto::{DeviceId, SessionId, UserId};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::link::{Link, LinkConfig, LinkEvent, LinkState};
use crate::playout::{AudioPlayout, Playout};
use crate::reconnect::{Action, Reconnect};
use crate::source::{AudioDecoder, Encoded, SourceHandle};
use crate::stats::StatsInner;
pub use crate::stats::{MediaStats, ReceivedStats, SentStats};
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
    /// The ceiling for the video encoder's target; the bandwidth estimate
    /// sets the target below it (see [`crate::rate`]).
    pub video_kbps: u32,
    /// `Sources::Synthetic` sends the detailed, camera-like picture (VP8
    /// spends 1-1.5 Mbit/s on it) instead of the light one (~170 kbit/s).
    pub synthetic_detail: bool,
    pub relay_only: bool,
    pub bind: Vec<String>,
    pub ice_check_interval: Duration,
    /// Which microphone, speaker and camera (`Sources::Devices`).
    pub devices: crate::devices::Chosen,
    /// Silence after which a link counts as disconnected and ICE restarts begin.
    pub ice_disconnected_timeout: Duration,
    /// Times in [`MediaStats`] are measured from here (e.g. when the call was accepted).
    pub t0: Instant,
    /// Decode remote video here (for [`CallSession::video`] and the received
    /// statistics). `false`: remote video only goes out undecoded, on
    /// [`CallSession::vp8`], for a renderer that decodes it itself.
    pub decode_video: bool,
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
            // 640x480@30 of camera detail looks good at 1.5 Mbit/s; libwebrtc
            // caps that resolution at about 1.7.
            video_kbps: 1500,
            synthetic_detail: false,
            relay_only: false,
            bind: vec!["0.0.0.0:0".to_owned()],
            ice_check_interval: Duration::from_millis(20),
            ice_disconnected_timeout: Duration::from_secs(3),
            devices: crate::devices::Chosen::default(),
            t0: Instant::now(),
            decode_video: true,
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
    /// The session is over, and why; a failure ([`EndReason::is_failure`])
    /// is something to tell the user ([`EndReason::message`]).
    Ended {
        reason: EndReason,
    },
}

/// Why a media session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// This device left: hung up, declined, or dropped the session.
    Left,
    /// The call ended, was cancelled or was declined.
    CallEnded,
    /// The signaling connection closed for good.
    SignalingClosed,
    /// A link connected, dropped, and did not come back within 30 s.
    IceTimeout,
    /// A link never connected within 30 s.
    IceFailed,
    /// A peer connection could not be created; the text says why.
    NoPeerConnection(String),
    /// ICE gathering found no local address to offer (no usable network
    /// interface, or, relay-only, no TURN server reachable).
    NoCandidates,
}

impl EndReason {
    /// The reason's stable name (the CLI's `reason`, the desktop's detail).
    pub fn code(&self) -> &'static str {
        match self {
            EndReason::Left => "left",
            EndReason::CallEnded => "call_ended",
            EndReason::SignalingClosed => "signaling_closed",
            EndReason::IceTimeout => "ice_timeout",
            EndReason::IceFailed => "ice_failed",
            EndReason::NoPeerConnection(_) => "no_peer_connection",
            EndReason::NoCandidates => "no_candidates",
        }
    }

    /// Whether the call's media failed (rather than ending as calls do).
    pub fn is_failure(&self) -> bool {
        match self {
            EndReason::Left | EndReason::CallEnded => false,
            EndReason::SignalingClosed
            | EndReason::IceTimeout
            | EndReason::IceFailed
            | EndReason::NoPeerConnection(_)
            | EndReason::NoCandidates => true,
        }
    }

    /// What to tell the user.
    pub fn message(&self) -> String {
        match self {
            EndReason::Left => "You left the call.".into(),
            EndReason::CallEnded => "The call ended.".into(),
            EndReason::SignalingClosed => "Lost the connection to the server.".into(),
            EndReason::IceTimeout => "The connection to the other side was lost and did not come back within 30 seconds.".into(),
            EndReason::IceFailed => "Could not reach the other side within 30 seconds (a firewall, or no TURN relay).".into(),
            EndReason::NoPeerConnection(e) => format!("Call media could not start: {e}"),
            EndReason::NoCandidates => "No network address to send media from: no usable network interface (or relay server) was found.".into(),
        }
    }

    /// The session's own giving up, from the reconnect timers.
    fn from_give_up(g: crate::reconnect::GiveUp) -> Self {
        match g {
            crate::reconnect::GiveUp::IceTimeout => EndReason::IceTimeout,
            crate::reconnect::GiveUp::IceFailed => EndReason::IceFailed,
        }
    }

    /// Whether peers are told `bye` (we are leaving on purpose, or gave up).
    fn says_bye(&self) -> bool {
        match self {
            EndReason::Left
            | EndReason::IceTimeout
            | EndReason::IceFailed
            | EndReason::NoPeerConnection(_)
            | EndReason::NoCandidates => true,
            EndReason::CallEnded | EndReason::SignalingClosed => false,
        }
    }
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// One remote VP8 frame, undecoded: for a renderer that decodes itself (the
/// desktop's page, with WebCodecs). `size` is what a keyframe declares.
#[derive(Clone, Debug)]
pub struct RemoteVp8 {
    pub from: UserId,
    pub key: bool,
    pub size: Option<(u16, u16)>,
    pub vp8: Bytes,
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

enum Command {
    Leave(oneshot::Sender<()>),
    Accepted(CallInfo),
    AudioMuted(bool),
    VideoEnabled(bool),
    SwitchCamera(oneshot::Sender<Result<(), MediaError>>),
}

/// A joined media session. Dropping it leaves.
pub struct CallSession {
    call: SessionId,
    cmd: mpsc::UnboundedSender<Command>,
    events: Mutex<Option<mpsc::UnboundedReceiver<MediaEvent>>>,
    video: broadcast::Sender<RemoteVideo>,
    audio: broadcast::Sender<RemoteAudio>,
    /// What we send (every link's frames), for a self view.
    local: broadcast::Sender<Encoded>,
    vp8: broadcast::Sender<RemoteVp8>,
    stats: Arc<Mutex<StatsInner>>,
    t0: Arc<Mutex<Instant>>,
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

/// Joins the media of `call`. A device that has accepted or placed the call
/// sends and receives at once; a device still ringing pre-connects (see the
/// module docs) until [`CallSession::accepted`].
pub async fn join_session(
    client: &PealClient,
    call: &CallInfo,
    settings: SessionSettings,
) -> Result<CallSession, MediaError> {
    let me = client.user().uid.clone();
    // A missing speaker, microphone or camera is said now, not when the call is answered.
    let speaker = match settings.sources {
        Sources::Devices => {
            crate::devices::check_capture(
                settings.call_type == CallType::Video,
                &settings.devices,
            )?;
            Some(crate::devices::Speaker::open(
                settings.devices.speaker.as_deref(),
            )?)
        }
        Sources::Synthetic | Sources::None | Sources::Echo => None,
    };
    if settings.sources == Sources::Synthetic {
        crate::synthetic::VideoPattern::new(settings.width, settings.height)
            .map_err(|e| MediaError::Codec(format!("synthetic video: {e}")))?;
    }
    let ice = client
        .ice_servers()
        .await
        .map_err(|e| MediaError::Signaling(e.to_string()))?;
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let (video, _) = broadcast::channel(4);
    let (audio, _) = broadcast::channel(16);
    let (encoded, _) = broadcast::channel(64);
    let (vp8, _) = broadcast::channel(8);
    let stats = Arc::new(Mutex::new(StatsInner::default()));
    let (link_tx, link_rx) = mpsc::unbounded_channel();
    let t0 = Arc::new(Mutex::new(settings.t0));
    let mut s = Session {
        client: client.clone(),
        call: call.session_id.clone(),
        me: me.clone(),
        cfg: LinkConfig {
            ice_servers: ice.ice_servers,
            relay_only: settings.relay_only,
            bind: settings.bind.clone(),
            ice_check_interval: settings.ice_check_interval,
            ice_disconnected_timeout: settings.ice_disconnected_timeout,
        },
        peers: HashMap::new(),
        by_key: HashMap::new(),
        next_key: 1,
        link_tx,
        events: ev_tx,
        video: video.clone(),
        audio: audio.clone(),
        vp8: vp8.clone(),
        encoded: encoded.clone(),
        stats: stats.clone(),
        epoch: Instant::now(),
        audio_muted: settings.start_audio_muted,
        video_enabled: !settings.start_video_off,
        settings,
        source: None,
        speaker,
        joined: false,
        joined_uids: Default::default(),
        connected_once: false,
        fatal: None,
        next_gen: 0,
    };
    // Listen first, then read the call's current state: whatever changes
    // after the read arrives as an event, so a stale `call` can't mislead us.
    let signals = client.events();
    let fresh = client.get_call(&call.session_id).await;
    let call = fresh.as_ref().unwrap_or(call);
    s.update_joined(call);
    s.greet(call).await;
    crate::spawn(s.run(signals, cmd_rx, link_rx));
    Ok(CallSession {
        call: call.session_id.clone(),
        cmd: cmd_tx,
        events: Mutex::new(Some(ev_rx)),
        video,
        audio,
        local: encoded,
        vp8,
        stats,
        t0,
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

    /// Remote video as it arrives, undecoded (every frame, whatever
    /// [`SessionSettings::decode_video`] says).
    pub fn vp8(&self) -> broadcast::Receiver<RemoteVp8> {
        self.vp8.subscribe()
    }

    /// What this device sends, encoded (audio and video frames, as every
    /// link gets them): for a self view. Frames flow once media flows.
    pub fn local(&self) -> broadcast::Receiver<Encoded> {
        self.local.subscribe()
    }

    pub fn audio(&self) -> broadcast::Receiver<RemoteAudio> {
        self.audio.subscribe()
    }

    pub fn stats(&self) -> MediaStats {
        let t0 = *lock(&self.t0);
        lock(&self.stats).snapshot(t0)
    }

    /// Times in [`MediaStats`] count from `t0` (e.g. the moment of accepting).
    pub fn set_t0(&self, t0: Instant) {
        *lock(&self.t0) = t0;
    }

    /// This device accepted the call (`call` as the accept returned it): a
    /// pre-connected session starts its sources and media flows.
    pub fn accepted(&self, call: &CallInfo) {
        let _ = self.cmd.send(Command::Accepted(call.clone()));
    }

    pub fn set_audio_muted(&self, muted: bool) {
        let _ = self.cmd.send(Command::AudioMuted(muted));
    }

    pub fn set_video_enabled(&self, enabled: bool) {
        let _ = self.cmd.send(Command::VideoEnabled(enabled));
    }

    /// Sends from the next camera. A `NoDevice` error when there is no other
    /// camera or the session doesn't use devices; the current one keeps going.
    pub async fn switch_camera(&self) -> Result<(), MediaError> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(Command::SwitchCamera(tx))
            .map_err(|_| MediaError::Signaling("the session has ended".into()))?;
        rx.await
            .unwrap_or_else(|_| Err(MediaError::Signaling("the session has ended".into())))
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
    /// The number of our latest offer to this peer.
    offer_gen: u32,
    link_connected: bool,
    /// When we last asked this peer for a keyframe.
    keyframe_asked: Option<Instant>,
    /// The bandwidth estimate for what we send this peer (bit/s): where
    /// the estimator starts until it says otherwise.
    estimate_bps: f64,
    /// The fraction of our audio this peer reports lost.
    audio_loss: f64,
    /// Candidates that came before the remote description.
    held_ice: Vec<(String, Option<String>, Option<u16>)>,
    reconnect: Reconnect,
    decoder: Option<Vp8Decoder>,
    audio_decoder: Option<AudioDecoder>,
    /// The peer's audio, waiting its turn to play.
    playout: AudioPlayout,
    last_counter: Option<u32>,
    /// Media flows on this link only while both ends are joined.
    active: Arc<AtomicBool>,
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
    vp8: broadcast::Sender<RemoteVp8>,
    encoded: broadcast::Sender<Encoded>,
    stats: Arc<Mutex<StatsInner>>,
    /// Reconnect timers count from here.
    epoch: Instant,
    audio_muted: bool,
    video_enabled: bool,
    settings: SessionSettings,
    source: Option<SourceHandle>,
    /// Where remote audio plays, with `Sources::Devices`.
    speaker: Option<crate::devices::Speaker>,
    /// We are in the call (placed it or accepted it), not just ringing.
    joined: bool,
    joined_uids: std::collections::HashSet<UserId>,
    connected_once: bool,
    /// Set when media can't go on (a peer connection that can't be made):
    /// the run loop ends the session with it.
    fatal: Option<EndReason>,
    next_gen: u32,
}

impl Session {
    fn since_epoch(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Starts our sources (once), when we are in the call.
    fn start_source(&mut self) -> Result<(), MediaError> {
        if self.source.is_some() {
            return Ok(());
        }
        self.source = match self.settings.sources {
            Sources::Synthetic => Some(SourceHandle::synthetic(
                &self.settings,
                self.encoded.clone(),
                self.stats.clone(),
            )?),
            Sources::Devices => Some(SourceHandle::devices(
                &self.settings,
                self.speaker.as_ref().map(|s| s.echo_reference()),
                self.encoded.clone(),
                self.stats.clone(),
            )?),
            Sources::None | Sources::Echo => None,
        };
        // A new source starts from what the links already know of the path.
        self.apply_estimates();
        Ok(())
    }

    fn switch_camera(&mut self) -> Result<(), MediaError> {
        if self.settings.sources != Sources::Devices {
            return Err(MediaError::NoDevice(
                "camera (this session sends no camera)".into(),
            ));
        }
        let cameras = crate::devices::cameras();
        if cameras.len() < 2 {
            return Err(MediaError::NoDevice(format!(
                "second camera ({} found)",
                cameras.len()
            )));
        }
        let now = self.settings.devices.camera.as_ref();
        let at = now
            .and_then(|c| cameras.iter().position(|n| n == c))
            .unwrap_or(0);
        let previous = self.settings.devices.camera.clone();
        self.settings.devices.camera = Some(cameras[(at + 1) % cameras.len()].clone());
        let old = self.source.take();
        if let Some(src) = old {
            src.stop();
            if let Err(e) = self.start_source() {
                self.settings.devices.camera = previous;
                self.start_source()?;
                return Err(e);
            }
            if let Some(src) = &self.source {
                src.set_audio(!self.audio_muted);
                src.set_video(self.video_enabled);
            }
        }
        Ok(())
    }

    /// Learns who is in the call from a call object; turns links on or off.
    fn update_joined(&mut self, call: &CallInfo) {
        self.joined_uids = call
            .participants
            .iter()
            .filter(|p| p.state == ParticipantState::Joined)
            .map(|p| p.uid.clone())
            .collect();
        self.joined = self.joined_uids.contains(&self.me);
        self.refresh_active();
    }

    /// Media flows on a link while both ends are joined; our sources run
    /// from the first such link on (not while we only ring or wait), and a
    /// link that turns on gets a keyframe at once.
    fn refresh_active(&mut self) {
        let mut turned_on = false;
        for p in self.peers.values() {
            let on = self.joined && self.joined_uids.contains(&p.uid);
            turned_on |= on && !p.active.swap(on, Ordering::Relaxed);
            p.active.store(on, Ordering::Relaxed);
        }
        if turned_on {
            if let Err(e) = self.start_source() {
                tracing::warn!(error = %e, "sources did not start");
            }
            if let Some(src) = &self.source {
                src.request_keyframe();
            }
        }
    }

    /// `uid` wants a keyframe of what we send: our source makes one; the
    /// echo bot, which sends each caller's own frames back, asks that caller
    /// (at most once a second: the relay is not free).
    fn keyframe_wanted(&mut self, uid: &UserId) {
        if let Some(src) = &self.source {
            src.request_keyframe();
            return;
        }
        if self.settings.sources != Sources::Echo {
            return;
        }
        let Some(p) = self.peers.get_mut(uid) else {
            return;
        };
        if p.keyframe_asked
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        p.keyframe_asked = Some(Instant::now());
        let device = p.device.clone();
        self.signal(uid, device.as_ref(), MediaSignal::KeyframeRequest);
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
                tracing::error!(error = %e, peer = %uid, "could not create a peer connection");
                // Not silently media-less: the session ends and says why.
                self.fatal
                    .get_or_insert(EndReason::NoPeerConnection(e.to_string()));
                return None;
            }
        };
        let active = Arc::new(AtomicBool::new(false));
        let writer = crate::spawn(write_media(
            self.encoded.subscribe(),
            link.clone(),
            active.clone(),
        ));
        self.by_key.insert(key, uid.clone());
        let peer = Peer {
            key,
            uid: uid.clone(),
            device,
            link,
            offering: false,
            offer_gen: 0,
            link_connected: false,
            keyframe_asked: None,
            estimate_bps: crate::rate::START_BPS,
            audio_loss: 0.0,
            held_ice: Vec::new(),
            reconnect: Reconnect::new(self.since_epoch()),
            decoder: None,
            audio_decoder: None,
            playout: AudioPlayout::new(),
            last_counter: None,
            active,
            writer,
        };
        if let Some(old) = self.peers.insert(uid.clone(), peer) {
            self.drop_peer_links(old).await;
        }
        let _ = self
            .events
            .send(MediaEvent::ParticipantJoined { peer: uid.clone() });
        self.refresh_active();
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

    /// Offers to (or says hello to) each joined peer we have no link with.
    async fn greet(&mut self, call: &CallInfo) {
        for p in &call.participants {
            if p.uid == self.me
                || p.state != ParticipantState::Joined
                || self.peers.contains_key(&p.uid)
            {
                continue;
            }
            if self.me < p.uid {
                self.offer_to(p.uid.clone(), false).await;
            } else {
                self.signal(&p.uid, None, MediaSignal::Hello);
            }
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
                self.next_gen += 1;
                p.offer_gen = self.next_gen;
                let (device, gen) = (p.device.clone(), p.offer_gen);
                self.signal(
                    &uid,
                    device.as_ref(),
                    MediaSignal::Offer { sdp, restart, gen },
                );
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
            MediaSignal::Hello => {
                if self.me >= from {
                    return; // They offer to us.
                }
                let answered = self.peers.get(&from).is_some_and(|p| {
                    !p.offering && p.device.as_ref().is_none_or(|d| d == &from_device)
                });
                if answered && self.peers.get(&from).is_some_and(|p| p.link_connected) {
                    return;
                }
                if self.peers.contains_key(&from) {
                    self.remove_quietly(&from).await;
                }
                if self
                    .add_peer(from.clone(), Some(from_device))
                    .await
                    .is_some()
                {
                    self.offer_to(from, false).await;
                }
            }
            MediaSignal::Offer { sdp, restart, gen } => {
                let fresh = !restart || !self.peers.contains_key(&from);
                if fresh {
                    let held = self
                        .peers
                        .get_mut(&from)
                        .map(|p| std::mem::take(&mut p.held_ice))
                        .unwrap_or_default();
                    if let Some(old) = self.peers.get(&from) {
                        if let Some(d) = old.device.clone().filter(|d| d != &from_device) {
                            self.signal(&from, Some(&d), MediaSignal::Bye);
                        }
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
                            MediaSignal::Answer { sdp: answer, gen },
                        );
                        self.flush_ice(&from).await;
                        self.send_state(&from);
                    }
                    Err(e) => tracing::warn!(error = %e, "could not answer"),
                }
            }
            MediaSignal::Answer { sdp, gen } => {
                let Some(p) = self.peers.get_mut(&from) else {
                    return;
                };
                if !p.offering || gen != p.offer_gen {
                    return; // not an answer to our latest offer
                }
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
                        .add_peer(from.clone(), Some(from_device.clone()))
                        .await
                        .is_none()
                    {
                        return;
                    }
                }
                let Some(p) = self.peers.get_mut(&from) else {
                    return;
                };
                if p.device.as_ref().is_some_and(|d| d != &from_device) {
                    return; // a candidate of a link that was replaced
                }
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
                if !video_enabled {
                    lock(&self.stats).freezes.pause(); // no picture expected
                }
                let _ = self.events.send(MediaEvent::RemoteState {
                    peer: from,
                    audio_muted,
                    video_enabled,
                });
            }
            MediaSignal::KeyframeRequest => self.keyframe_wanted(&from),
            MediaSignal::Bye => {
                // Only from the device we are linked with (another device of
                // theirs that lost the answer race says bye too).
                let current = self
                    .peers
                    .get(&from)
                    .is_some_and(|p| p.device.as_ref().is_none_or(|d| d == &from_device));
                if current {
                    self.remove_peer(&from, false).await;
                }
            }
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

    async fn on_link(&mut self, ev: LinkEvent) -> Option<EndReason> {
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
            LinkEvent::VideoLoss {
                peer,
                dropped,
                keyframe,
            } => {
                let uid = self.by_key.get(&peer)?.clone();
                {
                    let mut st = lock(&self.stats);
                    st.received.dropped_frames += dropped;
                    st.received.keyframe_requests += u64::from(keyframe);
                }
                let p = self.peers.get_mut(&uid)?;
                // The link sent RTCP PLI; a peer on an older Peal hears it over
                // signaling too, at most once a second (the relay is not free).
                if keyframe
                    && p.keyframe_asked
                        .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
                {
                    p.keyframe_asked = Some(Instant::now());
                    let device = p.device.clone();
                    self.signal(&uid, device.as_ref(), MediaSignal::KeyframeRequest);
                }
            }
            LinkEvent::TargetBitrate { peer, bps } => {
                let uid = self.by_key.get(&peer)?.clone();
                self.peers.get_mut(&uid)?.estimate_bps = bps;
                self.apply_estimates();
            }
            LinkEvent::AudioLoss { peer, fraction } => {
                let uid = self.by_key.get(&peer)?.clone();
                self.peers.get_mut(&uid)?.audio_loss = fraction;
                self.apply_estimates();
            }
            LinkEvent::NoCandidates { peer } => {
                let uid = self.by_key.get(&peer)?;
                let p = self.peers.get(uid)?;
                // Fatal only before media ever flowed: a restart that finds
                // nothing (the network is down) is the reconnect timers' to judge.
                if !p.link_connected && !self.connected_once {
                    return Some(EndReason::NoCandidates);
                }
            }
            LinkEvent::KeyframeWanted { peer } => {
                let uid = self.by_key.get(&peer)?.clone();
                self.keyframe_wanted(&uid);
            }
            LinkEvent::IceConnected { peer } => {
                self.by_key.get(&peer)?;
                lock(&self.stats)
                    .ice_connected
                    .get_or_insert_with(Instant::now);
            }
            LinkEvent::State { peer, state } => {
                let uid = self.by_key.get(&peer)?.clone();
                let now = self.since_epoch();
                let p = self.peers.get_mut(&uid)?;
                p.link_connected = state == LinkState::Connected;
                match state {
                    LinkState::Connected => {
                        if p.reconnect.connected() {
                            let _ = self.events.send(MediaEvent::Reconnected { peer: uid });
                        }
                        // A keyframe for the (re)connected peer: it may have missed references.
                        if let Some(src) = &self.source {
                            src.request_keyframe();
                        }
                        if !self.connected_once {
                            self.connected_once = true;
                            lock(&self.stats).connected.get_or_insert_with(Instant::now);
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
                let p = self.peers.get_mut(&uid)?;
                if self.settings.sources == Sources::Echo {
                    let link = p.link.clone();
                    echo_back(&self.stats, &link, true, data, at).await;
                    return None;
                }
                self.show_frame(&uid, data, at);
            }
            LinkEvent::Audio {
                peer,
                seq,
                data,
                at,
            } => {
                let uid = self.by_key.get(&peer)?.clone();
                let p = self.peers.get_mut(&uid)?;
                if self.settings.sources == Sources::Echo {
                    let link = p.link.clone();
                    echo_back(&self.stats, &link, false, data, at).await;
                    return None;
                }
                lock(&self.stats).first_audio.get_or_insert(at);
                let fec = crate::playout::has_lbrr(&data);
                p.playout.push(seq, data, fec, at);
                self.play_audio(&uid, Instant::now());
            }
        }
        None
    }

    /// A decodable frame of `uid`'s, come at `at`: to the page undecoded,
    /// and decoded, checked and counted here.
    fn show_frame(&mut self, uid: &UserId, data: Bytes, at: Instant) -> Option<()> {
        let p = self.peers.get_mut(uid)?;
        if self.vp8.receiver_count() > 0 {
            let _ = self.vp8.send(RemoteVp8 {
                from: uid.clone(),
                key: crate::assemble::is_keyframe(&data),
                size: crate::assemble::keyframe_size(&data),
                vp8: data.clone(),
            });
        }
        if !self.settings.decode_video {
            let mut st = lock(&self.stats);
            st.received.video_frames += 1;
            st.first_video.get_or_insert(at);
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
                    st.first_video.get_or_insert(at);
                    st.freezes.frame(at);
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
        Some(())
    }

    /// Plays every audio frame of `uid`'s that is due by `now`: decoded,
    /// rebuilt from FEC, or concealed ([`AudioPlayout`]).
    fn play_audio(&mut self, uid: &UserId, now: Instant) {
        let Some(p) = self.peers.get_mut(uid) else {
            return;
        };
        while let Some(out) = p.playout.poll(now) {
            let decoder = match &mut p.audio_decoder {
                Some(d) => d,
                None => match AudioDecoder::new() {
                    Ok(d) => p.audio_decoder.insert(d),
                    Err(e) => {
                        tracing::warn!(error = %e, "no audio decoder");
                        return;
                    }
                },
            };
            let decoded = match &out {
                Playout::Frame(data) => decoder.decode(data),
                Playout::Recover(next) => decoder.recover(next),
                Playout::Conceal => decoder.conceal(),
            };
            let Some(samples) = decoded else { continue };
            let mut st = lock(&self.stats);
            if let Playout::Frame(_) = out {
                st.received.audio_frames += 1;
                if tone_pitch(&samples).is_some() {
                    st.received.verified_audio_frames += 1;
                }
            }
            drop(st);
            if let Some(sp) = &self.speaker {
                sp.play(uid.as_str(), &samples);
            }
            let _ = self.audio.send(RemoteAudio {
                from: uid.clone(),
                samples: samples.into(),
            });
        }
        let ps = p.playout.stats();
        let target = p.playout.target().as_millis() as u64;
        let mut st = lock(&self.stats);
        let r = &mut st.received;
        // Per peer in a mesh; the statistics are the session's: the worst peer's.
        r.audio_recovered_frames = r.audio_recovered_frames.max(ps.recovered);
        r.audio_concealed_frames = r.audio_concealed_frames.max(ps.concealed + ps.stretched);
        r.audio_late_packets = r.audio_late_packets.max(ps.late);
        r.audio_delay_ms = r.audio_delay_ms.max(target);
    }

    /// One encode serves every link, so it follows the narrowest: the
    /// lowest estimate and the highest loss among the peers media goes to.
    fn apply_estimates(&mut self) {
        let live = || {
            self.peers
                .values()
                .filter(|p| p.active.load(Ordering::Relaxed))
        };
        let estimate = live().map(|p| p.estimate_bps).reduce(f64::min);
        let loss = live().map(|p| p.audio_loss).fold(0.0, f64::max);
        if let Some(bps) = estimate {
            tracing::debug!(kbps = bps / 1000.0, audio_loss = loss, "path estimate");
            lock(&self.stats).sent.estimate_kbps = (bps / 1000.0) as u64;
        }
        if let Some(src) = &self.source {
            if let Some(bps) = estimate {
                src.set_estimate(bps);
            }
            src.set_audio_loss(loss);
        }
    }

    /// Runs reconnect timers due by now; `Some(reason)` ends the session.
    async fn on_timers(&mut self) -> Option<EndReason> {
        let uids: Vec<UserId> = self.peers.keys().cloned().collect();
        let at = Instant::now();
        for uid in &uids {
            self.play_audio(uid, at);
        }
        let now = self.since_epoch();
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
                Action::GiveUp(g) => return Some(EndReason::from_give_up(g)),
            }
        }
        for uid in restart {
            self.offer_to(uid, true).await;
        }
        None
    }

    fn next_deadline(&self) -> Option<Instant> {
        let reconnect = self
            .peers
            .values()
            .filter_map(|p| p.reconnect.deadline())
            .min()
            .map(|ms| self.epoch + Duration::from_millis(ms));
        let audio = self
            .peers
            .values()
            .filter_map(|p| p.playout.deadline())
            .min();
        reconnect.into_iter().chain(audio).min()
    }

    async fn run(
        mut self,
        mut signals: peal_client::EventStream,
        mut cmds: mpsc::UnboundedReceiver<Command>,
        mut links: mpsc::UnboundedReceiver<LinkEvent>,
    ) {
        let mut done: Option<oneshot::Sender<()>> = None;
        let reason: EndReason = loop {
            if let Some(r) = self.fatal.take() {
                break r;
            }
            let deadline = self.next_deadline();
            let timer = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                c = cmds.recv() => match c {
                    Some(Command::Leave(tx)) => { done = Some(tx); break EndReason::Left; }
                    Some(Command::Accepted(call)) => {
                        self.update_joined(&call);
                        // Peers we are not linked with yet (no pre-connect) hear from us.
                        self.greet(&call).await;
                    }
                    Some(Command::SwitchCamera(reply)) => {
                        let _ = reply.send(self.switch_camera());
                    }
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
                    None => break EndReason::Left,
                },
                ev = signals.next() => match ev {
                    Some(ClientEvent::Media { call, from, from_device, signal }) if call == self.call => {
                        self.on_signal(from, from_device, signal).await;
                    }
                    Some(ClientEvent::Call(e)) if e.call.session_id == self.call => {
                        self.update_joined(&e.call);
                        match e.event {
                        EventKind::ParticipantLeft => {
                            if let Some(u) = e.participant { self.remove_peer(&u, false).await; }
                        }
                        EventKind::CallEndedMessageReceived
                        | EventKind::IncomingCallCancelled
                        | EventKind::OutgoingCallRejected => break EndReason::CallEnded,
                        EventKind::IncomingCallReceived
                        | EventKind::OutgoingCallAccepted
                        | EventKind::ParticipantJoined => {}
                    }},
                    Some(_) => {}
                    None => break EndReason::SignalingClosed,
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
            self.remove_peer(&u, reason.says_bye()).await;
        }
        if let Some(src) = self.source.take() {
            src.stop();
        }
        if reason.is_failure() {
            tracing::warn!(reason = %reason, "call media failed: {}", reason.message());
        } else {
            tracing::debug!(reason = %reason, "media session over");
        }
        let _ = self.events.send(MediaEvent::Ended { reason });
        if let Some(tx) = done {
            let _ = tx.send(());
        }
    }
}

/// The echo bot: counts what came and sends it straight back, undecoded.
async fn echo_back(stats: &Mutex<StatsInner>, link: &Link, video: bool, data: Bytes, at: Instant) {
    {
        let mut st = lock(stats);
        if video {
            st.received.video_frames += 1;
            st.first_video.get_or_insert(at);
        } else {
            st.received.audio_frames += 1;
            st.first_audio.get_or_insert(at);
        }
    }
    let duration = Duration::from_millis(if video { 33 } else { 20 });
    link.send(video, data, duration).await;
}

/// Copies encoded media to one link while the source runs.
async fn write_media(
    mut rx: broadcast::Receiver<Encoded>,
    link: Arc<Link>,
    active: Arc<AtomicBool>,
) {
    loop {
        match rx.recv().await {
            Ok(e) => {
                if active.load(Ordering::Relaxed) {
                    link.send(e.video, e.data, e.duration).await;
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
}
