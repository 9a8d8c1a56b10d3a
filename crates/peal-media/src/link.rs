//! One peer connection to one remote device, on webrtc-rs 0.21.1: the only
//! module that names webrtc-rs types, so an upgrade touches this file alone.
//!
//! A [`Link`] sends one Opus and one VP8 track and receives the peer's. What
//! happens on it (local ICE candidates, connection state, decoded media)
//! comes out as [`LinkEvent`]s on the session's channel; the session decides
//! everything else.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceCandidateInit, RTCIceConnectionState, RTCIceServer,
    RTCIceTransportPolicy, RTCPeerConnectionIceEvent, RTCPeerConnectionState,
    RTCSessionDescription, SettingEngineBuilder,
};

use crate::assemble::{RtpIn, Vp8Assembler};
use crate::MediaError;

const VIDEO_PT: u8 = 96;
const AUDIO_PT: u8 = 111;

/// How a link is set up.
#[derive(Clone, Debug)]
pub struct LinkConfig {
    pub ice_servers: Vec<peal_proto::wire::IceServer>,
    /// Gather relay candidates only (everything goes through TURN).
    pub relay_only: bool,
    /// Local UDP addresses to gather on (`0.0.0.0:0` = every interface).
    pub bind: Vec<String>,
    /// ICE connectivity-check interval: webrtc-rs's default is 200 ms, which
    /// alone costs ~180 ms per connect on a direct path.
    pub ice_check_interval: Duration,
    /// No ICE traffic for this long: the link is `disconnected` (webrtc-rs: 5 s).
    pub ice_disconnected_timeout: Duration,
}

/// Connection states the session cares about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    Connecting,
    Connected,
    Disconnected,
    Failed,
    Closed,
}

/// What a link reports to its session; `peer` is the session's key for it.
#[derive(Debug)]
pub enum LinkEvent {
    LocalIce {
        peer: u64,
        candidate: String,
        sdp_mid: Option<String>,
        sdp_mline_index: Option<u16>,
    },
    State {
        peer: u64,
        state: LinkState,
    },
    /// ICE connectivity checks succeeded (DTLS may still be running).
    IceConnected {
        peer: u64,
    },
    /// One encoded VP8 frame from the peer.
    Video {
        peer: u64,
        data: Bytes,
        at: Instant,
    },
    /// Video frames were lost: the peer should send a keyframe.
    VideoLoss {
        peer: u64,
    },
    /// One Opus frame from the peer.
    Audio {
        peer: u64,
        data: Bytes,
        at: Instant,
    },
}

struct Handler {
    peer: u64,
    tx: mpsc::UnboundedSender<LinkEvent>,
    /// Set when the link closes: track readers stop even if webrtc-rs never
    /// ends a track that arrived while the connection was closing.
    closed: tokio::sync::watch::Receiver<bool>,
}

fn map_state(s: RTCPeerConnectionState) -> Option<LinkState> {
    match s {
        RTCPeerConnectionState::New | RTCPeerConnectionState::Connecting => {
            Some(LinkState::Connecting)
        }
        RTCPeerConnectionState::Connected => Some(LinkState::Connected),
        RTCPeerConnectionState::Disconnected => Some(LinkState::Disconnected),
        RTCPeerConnectionState::Failed => Some(LinkState::Failed),
        RTCPeerConnectionState::Closed => Some(LinkState::Closed),
        RTCPeerConnectionState::Unspecified => None,
        // non_exhaustive upstream: a new state is reported as nothing new.
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            let _ = self.tx.send(LinkEvent::LocalIce {
                peer: self.peer,
                candidate: init.candidate,
                sdp_mid: init.sdp_mid,
                sdp_mline_index: init.sdp_mline_index,
            });
        }
    }

    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        if matches!(
            state,
            RTCIceConnectionState::Connected | RTCIceConnectionState::Completed
        ) {
            let _ = self.tx.send(LinkEvent::IceConnected { peer: self.peer });
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        if let Some(state) = map_state(state) {
            let _ = self.tx.send(LinkEvent::State {
                peer: self.peer,
                state,
            });
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let (peer, tx, mut closed) = (self.peer, self.tx.clone(), self.closed.clone());
        crate::spawn(async move {
            tokio::select! {
                () = read_track(peer, track, tx) => {}
                _ = closed.wait_for(|c| *c) => {}
            }
        });
    }
}

/// Reads one remote track until it ends: VP8 is reassembled into frames,
/// Opus packets are frames already.
async fn read_track(peer: u64, track: Arc<dyn TrackRemote>, tx: mpsc::UnboundedSender<LinkEvent>) {
    let video = track.kind().await == RtpCodecKind::Video;
    let mut frames = Vp8Assembler::default();
    while let Some(ev) = track.poll().await {
        let packet = match ev {
            TrackRemoteEvent::OnRtpPacket(p) => p,
            TrackRemoteEvent::OnEnded => break,
            TrackRemoteEvent::OnOpen(_)
            | TrackRemoteEvent::OnError
            | TrackRemoteEvent::OnEnding
            | TrackRemoteEvent::OnMute
            | TrackRemoteEvent::OnUnmute => continue,
            #[allow(unreachable_patterns)] // non_exhaustive upstream
            _ => continue,
        };
        let at = Instant::now();
        let sent = if video {
            let frame = frames.push(RtpIn {
                seq: packet.header.sequence_number,
                timestamp: packet.header.timestamp,
                marker: packet.header.marker,
                payload: &packet.payload,
            });
            let lost = !frames.take_loss() || tx.send(LinkEvent::VideoLoss { peer }).is_ok();
            lost && match frame {
                Some(data) => tx.send(LinkEvent::Video { peer, data, at }).is_ok(),
                None => true,
            }
        } else {
            tx.send(LinkEvent::Audio {
                peer,
                data: packet.payload,
                at,
            })
            .is_ok()
        };
        if !sent {
            break;
        }
    }
}

fn local_track(
    kind: RtpCodecKind,
    codec: RTCRtpCodec,
    ssrc: u32,
) -> Result<Arc<TrackLocalStaticSample>, MediaError> {
    let label = match kind {
        RtpCodecKind::Video => "video",
        RtpCodecKind::Audio => "audio",
        #[allow(unreachable_patterns)]
        _ => "other",
    };
    let track = TrackLocalStaticSample::new(
        Instant::now(),
        MediaStreamTrack::new(
            "peal".to_owned(),
            format!("peal-{label}"),
            format!("peal-{label}"),
            kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec,
                ..Default::default()
            }],
        ),
    )
    .map_err(MediaError::rtc)?;
    Ok(Arc::new(track))
}

fn codecs() -> (RTCRtpCodecParameters, RTCRtpCodecParameters) {
    let video = RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: MIME_TYPE_VP8.to_owned(),
            clock_rate: 90_000,
            channels: 0,
            sdp_fmtp_line: String::new(),
            rtcp_feedback: vec![],
        },
        payload_type: VIDEO_PT,
    };
    let audio = RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: MIME_TYPE_OPUS.to_owned(),
            clock_rate: 48_000,
            channels: 2,
            sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
            rtcp_feedback: vec![],
        },
        payload_type: AUDIO_PT,
    };
    (video, audio)
}

/// One peer connection with our two outgoing tracks.
pub struct Link {
    pc: Arc<dyn PeerConnection>,
    video: Arc<TrackLocalStaticSample>,
    audio: Arc<TrackLocalStaticSample>,
    video_ssrc: u32,
    audio_ssrc: u32,
    /// Negotiated payload types, read once after negotiation.
    pts: Mutex<Option<(u8, u8)>>,
    closed: AtomicBool,
    /// Tells this link's track readers to stop.
    closed_tx: tokio::sync::watch::Sender<bool>,
}

impl Link {
    pub async fn new(
        peer: u64,
        cfg: &LinkConfig,
        tx: mpsc::UnboundedSender<LinkEvent>,
    ) -> Result<Link, MediaError> {
        let (video_codec, audio_codec) = codecs();
        let mut media = MediaEngine::default();
        media
            .register_codec(video_codec.clone(), RtpCodecKind::Video)
            .map_err(MediaError::rtc)?;
        media
            .register_codec(audio_codec.clone(), RtpCodecKind::Audio)
            .map_err(MediaError::rtc)?;
        let (closed_tx, closed_rx) = tokio::sync::watch::channel(false);
        let registry = webrtc::peer_connection::register_default_interceptors(
            rtc::interceptor::Registry::new(),
            &mut media,
        )
        .map_err(MediaError::rtc)?;
        let settings = SettingEngineBuilder::new()
            .with_ice_connection_attempts(Some(cfg.ice_check_interval), None)
            // ICE `failed` only after our own 30 s give-up: until then an ICE
            // restart may still bring the link back.
            .with_ice_timeouts(
                Some(cfg.ice_disconnected_timeout),
                Some(Duration::from_millis(crate::reconnect::GIVE_UP_MS + 5_000)),
                Some(Duration::from_secs(1)),
            )
            // A restart gathers anew: a relay allocation on a TURN server that
            // went away is worth nothing.
            .with_discard_local_candidates_during_ice_restart(true)
            .with_include_loopback_candidate(cfg.bind.iter().any(|b| b.starts_with("127.")))
            .build();
        let servers = cfg
            .ice_servers
            .iter()
            .map(|s| RTCIceServer {
                urls: s.urls.clone(),
                username: s.username.clone().unwrap_or_default(),
                credential: s.credential.clone().unwrap_or_default(),
            })
            .collect();
        let mut config = RTCConfigurationBuilder::new().with_ice_servers(servers);
        if cfg.relay_only {
            config = config.with_ice_transport_policy(RTCIceTransportPolicy::Relay);
        }
        let pc = PeerConnectionBuilder::new()
            .with_configuration(config.build())
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_setting_engine(settings)
            .with_handler(Arc::new(Handler {
                peer,
                tx,
                closed: closed_rx,
            }))
            .with_udp_addrs(cfg.bind.clone())
            .build()
            .await
            .map_err(MediaError::rtc)?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);
        let (video_ssrc, audio_ssrc) = (rand::random::<u32>(), rand::random::<u32>());
        let tracks = (
            local_track(RtpCodecKind::Video, video_codec.rtp_codec, video_ssrc),
            local_track(RtpCodecKind::Audio, audio_codec.rtp_codec, audio_ssrc),
        );
        let (video, audio) = match tracks {
            (Ok(v), Ok(a)) => (v, a),
            (Err(e), _) | (_, Err(e)) => {
                let _ = pc.close().await;
                return Err(e);
            }
        };
        LIVE_LINKS.fetch_add(1, Ordering::Relaxed);
        // From here on an error still closes the connection: Link's Drop.
        let link = Link {
            pc,
            video,
            audio,
            video_ssrc,
            audio_ssrc,
            pts: Mutex::new(None),
            closed: AtomicBool::new(false),
            closed_tx,
        };
        for track in [&link.video, &link.audio] {
            link.pc
                .add_track(Arc::clone(track) as Arc<dyn TrackLocal>)
                .await
                .map_err(MediaError::rtc)?;
        }
        Ok(link)
    }

    pub async fn create_offer(&self, restart: bool) -> Result<String, MediaError> {
        if restart {
            self.pc.restart_ice().await.map_err(MediaError::rtc)?;
        }
        let offer = self.pc.create_offer(None).await.map_err(MediaError::rtc)?;
        let sdp = offer.sdp.clone();
        self.pc
            .set_local_description(offer)
            .await
            .map_err(MediaError::rtc)?;
        Ok(sdp)
    }

    /// Applies a remote offer and returns our answer.
    pub async fn answer(&self, offer_sdp: String) -> Result<String, MediaError> {
        let offer = RTCSessionDescription::offer(offer_sdp).map_err(MediaError::rtc)?;
        self.pc
            .set_remote_description(offer)
            .await
            .map_err(MediaError::rtc)?;
        let answer = self.pc.create_answer(None).await.map_err(MediaError::rtc)?;
        let sdp = answer.sdp.clone();
        self.pc
            .set_local_description(answer)
            .await
            .map_err(MediaError::rtc)?;
        Ok(sdp)
    }

    pub async fn accept_answer(&self, answer_sdp: String) -> Result<(), MediaError> {
        let answer = RTCSessionDescription::answer(answer_sdp).map_err(MediaError::rtc)?;
        self.pc
            .set_remote_description(answer)
            .await
            .map_err(MediaError::rtc)
    }

    pub async fn has_remote_description(&self) -> bool {
        self.pc.remote_description().await.is_some()
    }

    pub async fn add_ice(
        &self,
        candidate: String,
        sdp_mid: Option<String>,
        sdp_mline_index: Option<u16>,
    ) -> Result<(), MediaError> {
        self.pc
            .add_ice_candidate(RTCIceCandidateInit {
                candidate,
                sdp_mid,
                sdp_mline_index,
                ..Default::default()
            })
            .await
            .map_err(MediaError::rtc)
    }

    async fn payload_types(&self) -> Option<(u8, u8)> {
        if let Some(p) = *self.pts.lock().unwrap_or_else(|e| e.into_inner()) {
            return Some(p);
        }
        let mut video = None;
        let mut audio = None;
        for sender in self.pc.get_senders().await {
            let Ok(params) = sender.get_parameters().await else {
                continue;
            };
            let Some(codec) = params.rtp_parameters.codecs.first() else {
                continue;
            };
            let mime = codec.rtp_codec.mime_type.to_ascii_lowercase();
            if mime == MIME_TYPE_VP8.to_ascii_lowercase() {
                video = Some(codec.payload_type);
            } else if mime == MIME_TYPE_OPUS.to_ascii_lowercase() {
                audio = Some(codec.payload_type);
            }
        }
        let p = (video?, audio?);
        *self.pts.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
        Some(p)
    }

    /// Sends one encoded frame; `false` if it could not be sent.
    pub async fn send(&self, video: bool, data: Bytes, duration: Duration) -> bool {
        if self.closed.load(Ordering::Relaxed) {
            return false;
        }
        let Some((vpt, apt)) = self.payload_types().await else {
            return false;
        };
        let (track, ssrc, pt) = if video {
            (&self.video, self.video_ssrc, vpt)
        } else {
            (&self.audio, self.audio_ssrc, apt)
        };
        let sample = Sample {
            data,
            duration,
            ..Sample::new(Instant::now())
        };
        track
            .sample_writer(ssrc, pt)
            .write_sample(&sample)
            .await
            .is_ok()
    }

    pub async fn close(&self) {
        if !self.closed.swap(true, Ordering::Relaxed) {
            let _ = self.closed_tx.send(true);
            let _ = self.pc.close().await;
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        LIVE_LINKS.fetch_sub(1, Ordering::Relaxed);
        // Never left open: a link dropped without `close` (an error while
        // setting it up, a task cancelled) closes on the runtime.
        let _ = self.closed_tx.send(true);
        if !self.closed.swap(true, Ordering::Relaxed) {
            let pc = self.pc.clone();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = pc.close().await;
                });
            }
        }
    }
}

static LIVE_LINKS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Links alive in this process (for leak checks and diagnostics).
pub fn live_links() -> usize {
    LIVE_LINKS.load(Ordering::Relaxed)
}
