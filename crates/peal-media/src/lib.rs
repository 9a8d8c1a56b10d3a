//! peal-media: a call's audio and video on webrtc-rs, with real Opus and VP8.
//!
//! # Layout
//!
//! - [`session`]: [`join_session`] → [`CallSession`]: the full mesh of peer
//!   connections for one call, negotiated over peal-server's event socket;
//!   events, stats, decoded remote frames and audio; leave / end call.
//! - [`apm`]: echo cancellation, noise suppression and gain control on the
//!   microphone (sonora), the speaker's output as the reference.
//! - [`assemble`]: the VP8 jitter buffer: packets ordered, gaps waited for
//!   (NACK), only decodable frames out, keyframes asked for (PLI).
//! - [`render`]: when a decodable frame is shown: at its capture pace plus
//!   a delay covering recent lateness (retransmissions), time as an input.
//! - [`playout`]: the Opus jitter buffer: a target delay from the measured
//!   jitter, a lost frame recovered from the next one's FEC or concealed.
//! - [`stats`]: what a session counts, and freezes as libwebrtc counts them.
//! - [`echo`]: the echo bot (answers, sends each caller its own media back).
//! - [`link`]: one peer connection (the only module that names webrtc-rs).
//! - [`source`]: local media: the `VideoSource`/`AudioSource` traits and
//!   their capture loops, one encode per medium shared by every link; Opus decoding.
//! - [`devices`]: camera (V4L2), microphone and speaker (cpal), each
//!   missing one a clear `NoDevice` error.
//! - [`synthetic`]: the moving test pattern and the tone, and their checks.
//! - [`vpx`]: VP8 encode/decode on the system libvpx (the only unsafe code).
//! - [`reconnect`]: when to restart ICE and when to give up, time as an input.
//! - [`bwe`]: the delay-based bandwidth estimate (trendline + AIMD); pure.
//! - [`rate`]: from the bandwidth estimate (GCC, in `link`) to the video
//!   encoder's bitrate and its quality ladder (size, frame rate), and
//!   Opus's expected loss; pure.
//! - [`scale`]: an I420 picture at half size, for the ladder; pure.

pub mod apm;
pub mod assemble;
pub mod bwe;
pub mod devices;
pub mod echo;
pub mod link;
pub mod playout;
pub mod rate;
pub mod reconnect;
pub mod render;
pub mod scale;
pub mod session;
pub mod source;
pub mod stats;
pub mod synthetic;
pub mod vpx;

pub use devices::check_devices;
pub use link::live_links;
pub use session::{
    join_session, CallSession, EndReason, MediaEvent, MediaStats, RemoteAudio, RemoteVideo,
    SessionSettings, Sources,
};

static LIVE_TASKS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Tasks this crate has running (sessions, per-link writers and track
/// readers): zero once every session has ended, which tests check.
pub fn live_tasks() -> usize {
    LIVE_TASKS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Spawns a task that is counted in [`live_tasks`] until it ends or is aborted.
pub(crate) fn spawn<F>(f: F) -> tokio::task::JoinHandle<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    struct Counted;
    impl Drop for Counted {
        fn drop(&mut self) {
            LIVE_TASKS.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
    LIVE_TASKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let counted = Counted;
    tokio::spawn(async move {
        let _counted = counted;
        f.await
    })
}

/// What can go wrong in the media layer.
#[derive(Clone, Debug, thiserror::Error)]
pub enum MediaError {
    /// A capture or playback device is missing; the text names it and why.
    #[error("no usable {0}")]
    NoDevice(String),
    #[error("codec: {0}")]
    Codec(String),
    /// webrtc-rs refused something (bad SDP, closed connection...).
    #[error("webrtc: {0}")]
    Rtc(String),
    #[error("signaling: {0}")]
    Signaling(String),
}

impl MediaError {
    pub(crate) fn rtc(e: impl std::fmt::Display) -> Self {
        MediaError::Rtc(e.to_string())
    }
}
