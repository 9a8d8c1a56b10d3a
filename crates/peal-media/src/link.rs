//! One peer connection to one remote device, on webrtc-rs 0.21.1: the only
//! module that names webrtc-rs types, so an upgrade touches this file alone.
//!
//! A [`Link`] sends one Opus and one VP8 track and receives the peer's. What
//! happens on it (local ICE candidates, connection state, decoded media)
//! comes out as [`LinkEvent`]s on the session's channel; the session decides
//! everything else.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{
    Attribute, BandwidthEstimator, CongestionControlBuilder, EstimatorStats, Interceptor,
    NackResponderBuilder, PacerBuilder, Packet, PacketReport, Registry, Slot, StreamInfo,
    TaggedPacket, TwccReceiverBuilder, TwccSenderBuilder,
};
use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_rtcp_reports, configure_simulcast_extension_headers,
};
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{
    nack_pairs_from_sequence_numbers, TransportLayerNack,
};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use rtc::sansio::Protocol;
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceCandidateInit, RTCIceConnectionState, RTCIceGatheringState,
    RTCIceServer, RTCIceTransportPolicy, RTCPeerConnectionIceEvent, RTCPeerConnectionState,
    RTCSessionDescription, SettingEngineBuilder, StatsSelector,
};

use crate::assemble::{RtpIn, Vp8Assembler};
use crate::bwe::{DelayBased, LossBased, Sent};
use crate::render::RenderHold;
use crate::MediaError;

const VIDEO_PT: u8 = 96;
const AUDIO_PT: u8 = 111;

/// Sent packets kept for retransmission: a power of two covering the jitter
/// buffer's longest wait with room to spare (1.5 Mbit/s of 1,100-byte
/// packets is ~170 a second, so 1,024 is 6 s).
const NACK_HISTORY: u16 = 1024;
/// The sender SSRC our receive-side feedback names (we may send nothing).
const FEEDBACK_SSRC: u32 = 1;
/// How often the path's round trip is read (it sets the jitter buffer's wait).
const RTT_EVERY: Duration = Duration::from_secs(1);
/// How long a candidate pair is checked before it is given up, unanswered.
/// webrtc-rs counts it in checks (7 by default), so at our 20 ms interval a
/// pair was failed after 160 ms. Through a relay the first answer has to
/// wait for the other side to get our candidate and open a permission for
/// us, and across a continent for a 300 ms round trip; a failed pair is
/// never checked again, so the call stayed without media. libwebrtc gives
/// an unanswered connection 5 s before it calls it unwritable.
const PAIR_CHECKED_FOR: Duration = Duration::from_secs(5);

/// [`PAIR_CHECKED_FOR`] in checks `interval` apart.
fn checks_per_pair(interval: Duration) -> u16 {
    let each = interval.as_millis().max(1);
    u16::try_from(PAIR_CHECKED_FOR.as_millis().div_ceil(each)).unwrap_or(u16::MAX)
}

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
    /// Video frames were given up on (`dropped` more since the last such
    /// event); `keyframe`: a keyframe was asked for (RTCP PLI already sent).
    VideoLoss {
        peer: u64,
        dropped: u64,
        keyframe: bool,
    },
    /// The peer asked us for a keyframe (RTCP PLI or FIR).
    KeyframeWanted {
        peer: u64,
    },
    /// Gathering finished without a single local candidate.
    NoCandidates {
        peer: u64,
    },
    /// The bandwidth estimate for what we send to this peer changed (bit/s).
    TargetBitrate {
        peer: u64,
        bps: f64,
    },
    /// The fraction of our audio the peer reports lost (its receiver reports).
    AudioLoss {
        peer: u64,
        fraction: f64,
    },
    /// One Opus frame from the peer.
    Audio {
        peer: u64,
        seq: u16,
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
    /// Our video track, whose RTCP (keyframe requests) is read once it is bound.
    video: Arc<TrackLocalStaticSample>,
    /// Whether a reader of `video`'s RTCP runs.
    reading_feedback: Arc<AtomicBool>,
    /// The path's round trip in microseconds (0 until measured).
    rtt_us: Arc<AtomicU64>,
    /// Our outgoing streams.
    ssrcs: Ssrcs,
    /// The peer's reports on our video, for the estimator.
    video_loss: Arc<ReportedLoss>,
    /// Local candidates of the current gathering.
    gathered: AtomicUsize,
}

/// The application's end of the chain: marks inbound keyframe requests
/// (PLI, FIR) for delivery (the chain ends all inbound RTCP by default, and
/// our encoder has to hear them), passes each new bandwidth estimate the
/// congestion controller attached to a feedback packet to the session, and
/// reads the peer's reception reports on our streams: video's for the
/// estimator's loss half, audio's for Opus's expected loss. (webrtc-rs's
/// own statistics take reception reports only from RR packets, but a peer
/// that sends media too sends them inside its SRs: they read 0 for ever.)
struct AppFeedback {
    peer: u64,
    tx: mpsc::UnboundedSender<LinkEvent>,
    ssrcs: Ssrcs,
    video_loss: Arc<ReportedLoss>,
    video_reports: u64,
    audio_loss: Option<f64>,
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

/// Our two outgoing streams.
#[derive(Clone, Copy, Debug)]
struct Ssrcs {
    video: u32,
    audio: u32,
}

impl AppFeedback {
    /// Takes in the reception reports of an SR or RR.
    fn on_reports(&mut self, p: &dyn rtc::rtcp::Packet) {
        let any = p.as_any();
        let reports = if let Some(sr) = any.downcast_ref::<SenderReport>() {
            &sr.reports
        } else if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
            &rr.reports
        } else {
            return;
        };
        for r in reports {
            let fraction = f64::from(r.fraction_lost) / 256.0;
            if r.ssrc == self.ssrcs.video {
                self.video_reports += 1;
                self.video_loss.set(self.video_reports, fraction);
            } else if r.ssrc == self.ssrcs.audio && self.audio_loss != Some(fraction) {
                self.audio_loss = Some(fraction);
                let _ = self.tx.send(LinkEvent::AudioLoss {
                    peer: self.peer,
                    fraction,
                });
            }
        }
    }
}

fn is_keyframe_request(p: &dyn rtc::rtcp::Packet) -> bool {
    let any = p.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for AppFeedback {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        for a in &msg.message.attributes {
            if let Attribute::TargetBitrateChanged { bits_per_second } = a {
                let _ = self.tx.send(LinkEvent::TargetBitrate {
                    peer: self.peer,
                    bps: bits_per_second / crate::rate::PACING_FACTOR,
                });
            }
        }
        let mut deliver = false;
        if let Packet::Rtcp(ps) = &msg.message.packet {
            deliver = ps.iter().any(|p| is_keyframe_request(p.as_ref()));
            for p in ps {
                self.on_reports(p.as_ref());
            }
        }
        if deliver {
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.read.push_back(msg);
        Ok(())
    }
    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }
    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write.push_back(msg);
        Ok(())
    }
    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }
    fn handle_timeout(&mut self, _now: Instant) -> Result<(), Self::Error> {
        Ok(())
    }
    fn poll_timeout(&mut self) -> Option<Instant> {
        None
    }
}

impl Interceptor for AppFeedback {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

/// The send-side estimate ([`crate::bwe`]): the delay-based half and the
/// loss-based half, the lower of the two; reported to the pacer as the
/// pacing rate ([`crate::rate::PACING_FACTOR`] x the estimate), which
/// [`AppFeedback`] divides back out.
struct Estimator {
    delay: DelayBased,
    loss: LossBased,
    reported: Arc<ReportedLoss>,
    /// Receiver reports taken in so far.
    seen: u64,
    sent: Vec<Sent>,
}

/// The peer's receiver reports on our video, as the stats poller last read
/// them, for the estimator's loss half.
#[derive(Default)]
struct ReportedLoss {
    /// Reports received (a new one since the estimator looked: take it).
    reports: AtomicU64,
    /// Their last `fraction lost`, as `f64` bits.
    fraction: AtomicU64,
}

impl ReportedLoss {
    fn set(&self, reports: u64, fraction: f64) {
        self.fraction.store(fraction.to_bits(), Ordering::Relaxed);
        self.reports.store(reports, Ordering::Release);
    }
}

impl Estimator {
    fn new(reported: Arc<ReportedLoss>) -> Self {
        use crate::rate::{MAX_BPS, MIN_BPS, START_BPS};
        Estimator {
            delay: DelayBased::new(START_BPS, MIN_BPS, MAX_BPS),
            loss: LossBased::new(START_BPS, MIN_BPS, MAX_BPS),
            reported,
            seen: 0,
            sent: Vec::new(),
        }
    }

    fn estimate(&self) -> f64 {
        self.delay.target().min(self.loss.target())
    }
}

impl BandwidthEstimator for Estimator {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        self.sent.clear();
        self.sent.extend(reports.iter().map(|r| Sent {
            departure: r.departure,
            arrival: r.arrival.filter(|_| r.arrived),
            size: r.size,
        }));
        let delay = self.delay.on_reports(now, &self.sent);
        let n = self.reported.reports.load(Ordering::Acquire);
        if n != self.seen {
            self.seen = n;
            let fraction = f64::from_bits(self.reported.fraction.load(Ordering::Relaxed));
            self.loss.on_loss(now, fraction, delay);
        }
        tracing::trace!(
            delay_kbps = delay / 1000.0,
            loss_kbps = self.loss.target() / 1000.0,
            loss = self.loss.loss().unwrap_or(0.0),
            usage = ?self.delay.usage(),
            reports = reports.len(),
            "estimate"
        );
    }
    fn target_bitrate(&self) -> f64 {
        self.estimate() * crate::rate::PACING_FACTOR
    }
    fn stats(&self) -> EstimatorStats {
        let mut st = EstimatorStats::default();
        st.delay_based_bitrate = Some(self.delay.target());
        st.loss_based_bitrate = Some(self.loss.target());
        st.packet_loss = self.loss.loss();
        st
    }
}

/// The most the pacer lets go at once: four full packets, ~40 ms at the
/// starting pacing rate. A larger burst lands whole in the bottleneck's
/// queue; a home router's holds ~100 ms (7.5 KB at 600 kbit/s), and a
/// 16 KB burst overflowed it (narrow600: ~10% of packets tail-dropped).
const PACER_BURST_BITS: f64 = 4.0 * 1500.0 * 8.0;

/// The interceptor chain: the NACK responder, send-side congestion control
/// (transport-wide sequence numbers out, TWCC feedback in, GCC, a pacer),
/// the TWCC recorder for the peer's estimator, RTCP reports, and
/// [`AppFeedback`]. Not webrtc-rs's NACK generator: it asks on a fixed
/// 100 ms timer, and our jitter buffer knows better what is missing, when it
/// went missing and whether anything would still use it
/// ([`Vp8Assembler::nacks`]).
fn interceptors(
    media: &mut MediaEngine,
    peer: u64,
    tx: mpsc::UnboundedSender<LinkEvent>,
    ssrcs: Ssrcs,
    reported: Arc<ReportedLoss>,
) -> Result<Registry, MediaError> {
    use rtc::rtp_transceiver::rtp_sender::{RTCPFeedback, RTCRtpHeaderExtensionCapability};
    let feedback = |typ: &str, parameter: &str| RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    };
    for f in [
        feedback("nack", ""),
        feedback("nack", "pli"),
        feedback("ccm", "fir"),
    ] {
        media.register_feedback(f, RtpCodecKind::Video);
    }
    for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
        media.register_feedback(feedback("transport-cc", ""), kind);
        media
            .register_header_extension(
                RTCRtpHeaderExtensionCapability {
                    uri: rtc::sdp::extmap::TRANSPORT_CC_URI.to_owned(),
                },
                kind,
                None,
            )
            .map_err(MediaError::rtc)?;
    }
    let registry = Registry::new()
        .with(
            Slot::NackResponder,
            NackResponderBuilder::new().with_size(NACK_HISTORY).build(),
        )
        .with(
            Slot::CongestionControl,
            CongestionControlBuilder::new(Estimator::new(reported.clone())).build(),
        )
        .with(Slot::TwccSender, TwccSenderBuilder::new().build())
        .with(
            Slot::Pacer,
            PacerBuilder::new()
                .with_target_bitrate(crate::rate::START_BPS * crate::rate::PACING_FACTOR)
                .with_burst_bits(PACER_BURST_BITS)
                .build(),
        )
        .with(Slot::TwccReceiver, TwccReceiverBuilder::new().build())
        // Application-ward of everything: the chain has acted on the packet first.
        .with(
            Slot::from(14_000usize),
            AppFeedback {
                peer,
                tx,
                ssrcs,
                video_loss: reported,
                video_reports: 0,
                audio_loss: None,
                read: VecDeque::new(),
                write: VecDeque::new(),
            },
        );
    configure_simulcast_extension_headers(media).map_err(MediaError::rtc)?;
    Ok(configure_rtcp_reports(registry))
}

/// Reads our video track's RTCP until it is unbound: each keyframe request
/// becomes a [`LinkEvent::KeyframeWanted`].
async fn read_feedback(
    peer: u64,
    video: Arc<TrackLocalStaticSample>,
    tx: mpsc::UnboundedSender<LinkEvent>,
) {
    while let Some(ev) = video.poll().await {
        #[allow(irrefutable_let_patterns)] // non_exhaustive upstream
        let TrackLocalEvent::OnRtcpPacket(ps) = ev
        else {
            continue;
        };
        if ps.iter().any(|p| is_keyframe_request(p.as_ref()))
            && tx.send(LinkEvent::KeyframeWanted { peer }).is_err()
        {
            break;
        }
    }
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
        self.gathered.fetch_add(1, Ordering::Relaxed);
        if let Ok(init) = event.candidate.to_json() {
            let _ = self.tx.send(LinkEvent::LocalIce {
                peer: self.peer,
                candidate: init.candidate,
                sdp_mid: init.sdp_mid,
                sdp_mline_index: init.sdp_mline_index,
            });
        }
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        match state {
            RTCIceGatheringState::Gathering => self.gathered.store(0, Ordering::Relaxed),
            RTCIceGatheringState::Complete if self.gathered.load(Ordering::Relaxed) == 0 => {
                tracing::warn!(peer = self.peer, "ICE gathering found no local candidate");
                let _ = self.tx.send(LinkEvent::NoCandidates { peer: self.peer });
            }
            _ => {}
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
        if state == RTCPeerConnectionState::Connected
            && !self.reading_feedback.swap(true, Ordering::Relaxed)
        {
            // Bound by now (negotiated): its RTCP can be read. A renegotiation
            // unbinds it, ending the reader; the next connect starts another.
            let (peer, video, tx) = (self.peer, self.video.clone(), self.tx.clone());
            let (reading, mut closed) = (self.reading_feedback.clone(), self.closed.clone());
            crate::spawn(async move {
                tokio::select! {
                    () = read_feedback(peer, video, tx) => {}
                    _ = closed.wait_for(|c| *c) => {}
                }
                reading.store(false, Ordering::Relaxed);
            });
        }
        if let Some(state) = map_state(state) {
            let _ = self.tx.send(LinkEvent::State {
                peer: self.peer,
                state,
            });
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let (peer, tx, mut closed) = (self.peer, self.tx.clone(), self.closed.clone());
        let rtt = self.rtt_us.clone();
        crate::spawn(async move {
            tokio::select! {
                () = read_track(peer, track, tx, rtt) => {}
                _ = closed.wait_for(|c| *c) => {}
            }
        });
    }
}

/// Reads one remote track until it ends: VP8 goes through the jitter
/// buffer ([`Vp8Assembler`]), then waits for its time to be shown
/// ([`RenderHold`]), each polled again at its deadline; Opus packets are
/// frames already.
async fn read_track(
    peer: u64,
    track: Arc<dyn TrackRemote>,
    tx: mpsc::UnboundedSender<LinkEvent>,
    rtt_us: Arc<AtomicU64>,
) {
    let video = track.kind().await == RtpCodecKind::Video;
    let mut frames = Vp8Assembler::default();
    let mut hold = RenderHold::default();
    let mut media_ssrc = None;
    let mut dropped = 0;
    loop {
        let now = Instant::now();
        let wake = [frames.deadline(now), hold.deadline()]
            .into_iter()
            .flatten()
            .min();
        let ev = tokio::select! {
            ev = track.poll() => match ev {
                Some(ev) => Some(ev),
                None => break,
            },
            () = async {
                match wake {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            } => None,
        };
        let packet = match ev {
            None => None,
            Some(TrackRemoteEvent::OnRtpPacket(p)) => Some(p),
            Some(TrackRemoteEvent::OnEnded) => break,
            Some(
                TrackRemoteEvent::OnOpen(_)
                | TrackRemoteEvent::OnError
                | TrackRemoteEvent::OnEnding
                | TrackRemoteEvent::OnMute
                | TrackRemoteEvent::OnUnmute
                | TrackRemoteEvent::OnRtcpPacket(_),
            ) => continue,
            #[allow(unreachable_patterns)] // non_exhaustive upstream
            Some(_) => continue,
        };
        let at = Instant::now();
        if !video {
            if let Some(p) = packet {
                let sent = tx.send(LinkEvent::Audio {
                    peer,
                    seq: p.header.sequence_number,
                    data: p.payload,
                    at,
                });
                if sent.is_err() {
                    break;
                }
            }
            continue;
        }
        if let Some(p) = &packet {
            media_ssrc = Some(p.header.ssrc);
            let rtt = rtt_us.load(Ordering::Relaxed);
            if rtt > 0 {
                frames.set_rtt(Duration::from_micros(rtt));
            }
            frames.push(
                RtpIn {
                    seq: p.header.sequence_number,
                    timestamp: p.header.timestamp,
                    marker: p.header.marker,
                    payload: &p.payload,
                },
                at,
            );
        }
        let mut ok = true;
        while let Some(data) = frames.pop(at) {
            let ts = frames.last_timestamp().unwrap_or_default();
            hold.push(ts, data, at);
        }
        while let Some(data) = hold.pop(at) {
            ok &= tx.send(LinkEvent::Video { peer, data, at }).is_ok();
        }
        let keyframe = frames.keyframe_request(at);
        let nacks = frames.nacks(at);
        if let Some(media_ssrc) = media_ssrc {
            let mut rtcp: Vec<Box<dyn rtc::rtcp::Packet>> = Vec::new();
            if !nacks.is_empty() {
                rtcp.push(Box::new(TransportLayerNack {
                    sender_ssrc: FEEDBACK_SSRC,
                    media_ssrc,
                    nacks: nack_pairs_from_sequence_numbers(&nacks),
                }));
            }
            if keyframe {
                rtcp.push(Box::new(PictureLossIndication {
                    sender_ssrc: FEEDBACK_SSRC,
                    media_ssrc,
                }));
            }
            if !rtcp.is_empty() {
                if let Err(e) = track.write_rtcp(rtcp).await {
                    tracing::debug!(error = %e, "video feedback (NACK, PLI) not sent");
                }
            }
        }
        let newly = frames.stats.dropped - dropped;
        if newly > 0 || keyframe {
            dropped = frames.stats.dropped;
            ok &= tx
                .send(LinkEvent::VideoLoss {
                    peer,
                    dropped: newly,
                    keyframe,
                })
                .is_ok();
        }
        if !ok {
            break;
        }
    }
}

/// The round trip of the pair ICE nominated, if measured.
async fn measure_rtt(pc: &dyn PeerConnection) -> Option<Duration> {
    let report = pc.get_stats(Instant::now(), StatsSelector::None).await;
    let rtt = report
        .candidate_pairs()
        .filter(|p| p.nominated && p.current_round_trip_time > 0.0)
        .map(|p| p.current_round_trip_time)
        .fold(0.0f64, f64::max);
    (rtt > 0.0).then(|| Duration::from_secs_f64(rtt.min(10.0)))
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

/// Set once mDNS failed in this process: later links don't try it again.
static MDNS_UNUSABLE: AtomicBool = AtomicBool::new(false);

/// A peer connection as `cfg` says, with our codecs and interceptors;
/// `mdns`: resolve a peer's `.local` candidates (webrtc-rs's default, which
/// needs a multicast socket), or not.
async fn peer_connection(
    cfg: &LinkConfig,
    handler: Arc<Handler>,
    mdns: bool,
) -> Result<Arc<dyn PeerConnection>, MediaError> {
    let (peer, tx) = (handler.peer, handler.tx.clone());
    let (video_codec, audio_codec) = codecs();
    let mut media = MediaEngine::default();
    media
        .register_codec(video_codec, RtpCodecKind::Video)
        .map_err(MediaError::rtc)?;
    media
        .register_codec(audio_codec, RtpCodecKind::Audio)
        .map_err(MediaError::rtc)?;
    let registry = interceptors(
        &mut media,
        peer,
        tx,
        handler.ssrcs,
        handler.video_loss.clone(),
    )?;
    let mut settings = SettingEngineBuilder::new()
        .with_ice_connection_attempts(
            Some(cfg.ice_check_interval),
            Some(checks_per_pair(cfg.ice_check_interval)),
        )
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
        .with_include_loopback_candidate(cfg.bind.iter().any(|b| b.starts_with("127.")));
    if !mdns {
        settings = settings.with_multicast_dns_mode(MulticastDnsMode::Disabled);
    }
    if cfg.relay_only {
        // webrtc-rs waits 2 s before it nominates a relay pair, in case a
        // direct one answers; relay-only, none ever will.
        settings = settings.with_relay_acceptance_min_wait(Some(Duration::ZERO));
    }
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
        .with_setting_engine(settings.build())
        .with_handler(handler)
        .with_udp_addrs(cfg.bind.clone())
        .build()
        .await
        .map_err(MediaError::rtc)?;
    Ok(Arc::new(pc))
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
        let (closed_tx, closed_rx) = tokio::sync::watch::channel(false);
        let (video_ssrc, audio_ssrc) = (rand::random::<u32>(), rand::random::<u32>());
        let video = local_track(RtpCodecKind::Video, video_codec.rtp_codec, video_ssrc)?;
        let audio = local_track(RtpCodecKind::Audio, audio_codec.rtp_codec, audio_ssrc)?;
        let rtt_us = Arc::new(AtomicU64::new(0));
        let handler = Arc::new(Handler {
            peer,
            tx: tx.clone(),
            closed: closed_rx.clone(),
            video: video.clone(),
            reading_feedback: Arc::new(AtomicBool::new(false)),
            rtt_us: rtt_us.clone(),
            ssrcs: Ssrcs {
                video: video_ssrc,
                audio: audio_ssrc,
            },
            video_loss: Arc::new(ReportedLoss::default()),
            gathered: AtomicUsize::new(0),
        });
        let pc = if MDNS_UNUSABLE.load(Ordering::Relaxed) {
            peer_connection(cfg, handler, false).await?
        } else {
            match peer_connection(cfg, handler.clone(), true).await {
                Ok(pc) => pc,
                Err(first) => {
                    // Most often: no route for multicast (an offline LAN, a VPN,
                    // a container), so the mDNS socket can't join its group.
                    let pc = peer_connection(cfg, handler, false)
                        .await
                        .map_err(|_| first.clone())?;
                    MDNS_UNUSABLE.store(true, Ordering::Relaxed);
                    tracing::warn!(
                        error = %first,
                        "mDNS is unusable on this host: calls use plain host candidates, \
                         and a peer's .local candidates can't be resolved"
                    );
                    pc
                }
            }
        };
        // The round trip, read every second while the link lives.
        let (weak, mut closed) = (Arc::downgrade(&pc), closed_rx);
        crate::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(RTT_EVERY) => {}
                    _ = closed.wait_for(|c| *c) => break,
                }
                let Some(pc) = weak.upgrade() else { break };
                if let Some(rtt) = measure_rtt(pc.as_ref()).await {
                    rtt_us.store(rtt.as_micros() as u64, Ordering::Relaxed);
                }
            }
        });
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
