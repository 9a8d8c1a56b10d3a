//! The media side of `peal call`, `peal answer`, `peal echo-bot` and `peal
//! devices`, over peal-media (the `media` feature, on by default). Built
//! without it, `no_media.rs` stands in with the same API and a typed
//! refusal, so a signaling-only `peal` builds where the codecs don't.

use crate::{print_final, usage, Failure, MediaMode, MediaOpts};
use peal_client::{CallInfo, PealClient};
use serde_json::json;
use std::time::Duration;

/// Media that can't start: exit 6 with `media_unavailable`.
fn media_failure(e: peal_media::MediaError) -> Failure {
    Failure {
        code: "media_unavailable".into(),
        message: e.to_string(),
        exit: 6,
    }
}

/// The media side of `peal call` / `peal answer`.
pub struct Media {
    opts: MediaOpts,
    session: Option<peal_media::CallSession>,
    /// When the call was accepted: `media_stats` times count from here.
    accepted: Option<std::time::Instant>,
    /// `--stats-every`: when the next periodic `media_stats` line is due.
    ticker: Option<tokio::time::Interval>,
}

impl Media {
    pub fn new(opts: MediaOpts) -> Self {
        let ticker = opts.stats_every.map(|ms| {
            let mut i = tokio::time::interval(Duration::from_millis(ms));
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            i
        });
        Media {
            opts,
            session: None,
            accepted: None,
            ticker,
        }
    }

    /// Resolves when a periodic `media_stats` line is due (never without
    /// `--stats-every`, or before media has started).
    pub async fn tick(&mut self) {
        match (&mut self.ticker, &self.session) {
            (Some(t), Some(_)) => {
                t.tick().await;
            }
            _ => std::future::pending().await,
        }
    }

    /// Device names are for `--media devices`: with other media they are a
    /// usage error (before signing in), not ignored.
    pub fn check(opts: &MediaOpts) -> Result<(), Failure> {
        let named = opts.microphone.is_some() || opts.speaker.is_some() || opts.camera.is_some();
        if named && opts.media != MediaMode::Devices {
            return Err(usage(
                "--microphone, --speaker and --camera choose devices for --media devices",
            ));
        }
        Ok(())
    }

    /// The devices chosen with --microphone, --speaker and --camera.
    fn chosen(&self) -> peal_media::devices::Chosen {
        peal_media::devices::Chosen {
            microphone: self.opts.microphone.clone(),
            speaker: self.opts.speaker.clone(),
            camera: self.opts.camera.clone(),
        }
    }

    /// With `--media devices`: fails now, with the missing device named (and
    /// what is connected, when one was chosen by name), if the microphone,
    /// speaker or (for video) camera can't be opened — before anyone is rung
    /// or a call is taken.
    pub fn probe(&self, video: bool) -> Result<(), Failure> {
        if self.opts.media != MediaMode::Devices {
            return Ok(());
        }
        let chosen = self.chosen();
        peal_media::check_devices(video, &chosen).map_err(|e| {
            type List = fn() -> Vec<String>;
            let named: [(&str, &Option<String>, List); 3] = [
                (
                    "microphone",
                    &chosen.microphone,
                    peal_media::devices::microphones,
                ),
                ("speaker", &chosen.speaker, peal_media::devices::speakers),
                ("camera", &chosen.camera, peal_media::devices::cameras),
            ];
            let connected = match &e {
                peal_media::MediaError::NoDevice(m) => named
                    .into_iter()
                    .find(|(what, name, _)| name.is_some() && m.starts_with(what))
                    .map(|(what, _, list)| (what, list())),
                _ => None,
            };
            let mut f = media_failure(e);
            if let Some((what, now)) = connected {
                let now = if now.is_empty() {
                    "none".to_owned()
                } else {
                    now.join(", ")
                };
                f.message = format!("{}; connected {what}s: {now}", f.message);
            }
            f
        })
    }

    /// While it rings: pre-connect (unless --no-pre-connect).
    pub async fn ringing(&mut self, client: &PealClient, call: &CallInfo) -> Result<(), Failure> {
        if self.opts.no_pre_connect {
            return Ok(());
        }
        self.join(client, call).await
    }

    /// Joins the call's media (no-op with `--media none`).
    pub async fn join(&mut self, client: &PealClient, call: &CallInfo) -> Result<(), Failure> {
        let sources = match self.opts.media {
            MediaMode::None => return Ok(()),
            MediaMode::Synthetic | MediaMode::SyntheticHd => peal_media::Sources::Synthetic,
            MediaMode::Devices => peal_media::Sources::Devices,
        };
        if let Some(s) = &self.session {
            // Pre-connected while ringing: now it is accepted.
            if let Some(t) = self.accepted {
                s.set_t0(t);
            }
            s.accepted(call);
            return Ok(());
        }
        let mut settings = peal_media::SessionSettings::new(call.call_type, sources);
        settings.synthetic_detail = self.opts.media == MediaMode::SyntheticHd;
        settings.devices = self.chosen();
        if let Some(t) = self.accepted {
            settings.t0 = t;
        }
        if let Ok(bind) = std::env::var("PEAL_MEDIA_BIND") {
            settings.bind = bind.split(',').map(str::to_owned).collect();
        }
        let session = peal_media::join_session(client, call, settings)
            .await
            .map_err(media_failure)?;
        if let Some(mut events) = session.events() {
            tokio::spawn(async move {
                while let Some(e) = events.recv().await {
                    if let peal_media::MediaEvent::Ended { reason } = e {
                        if reason.is_failure() {
                            println!(
                                "{}",
                                json!({
                                    "event": "media_failed",
                                    "reason": reason.code(),
                                    "message": reason.message(),
                                })
                            );
                        }
                        break;
                    }
                }
            });
        }
        self.session = Some(session);
        Ok(())
    }

    pub fn accepted(&mut self) {
        let t = *self.accepted.get_or_insert_with(std::time::Instant::now);
        if let Some(s) = &self.session {
            s.set_t0(t);
        }
    }

    /// The `media_stats` line (times from accept), if asked for.
    pub fn print_stats(&self) {
        let asked = self.opts.stats || self.opts.stats_every.is_some();
        let (Some(s), true) = (&self.session, asked) else {
            return;
        };
        let st = s.stats();
        println!(
            "{}",
            json!({
                "event": "media_stats",
                "at_ms": self.accepted.map(|t| t.elapsed().as_millis() as u64),
                "sent": st.sent,
                "received": st.received,
                "first_remote_video_ms": st.first_remote_video_ms,
                "first_remote_audio_ms": st.first_remote_audio_ms,
                "ice_connected_ms": st.ice_connected_ms,
                "connected_ms": st.connected_ms,
                "capture_to_decode_ms_p50": st.capture_to_decode_ms_p50,
                "capture_to_decode_ms_p95": st.capture_to_decode_ms_p95,
            })
        );
    }

    /// Stats (if asked), then the final line, then leaves the media.
    pub async fn finish(&mut self, call: &CallInfo) {
        self.print_stats();
        print_final(call);
        if let Some(s) = self.session.take() {
            s.leave().await;
        }
    }
}

/// `peal devices`: one line, each list by the names the flags take, and
/// what the system calls the ones it describes.
pub fn devices() -> Result<(), Failure> {
    use peal_media::devices::{cameras, descriptions, microphones, speakers};
    println!(
        "{}",
        json!({
            "microphones": microphones(),
            "speakers": speakers(),
            "cameras": cameras(),
            "labels": descriptions(),
        })
    );
    Ok(())
}

/// Answers every call and echoes each caller's own media back, one call at a
/// time (a second caller meanwhile hears busy from the server).
pub async fn echo_bot(client: &PealClient, answer_after: u64) -> Result<(), Failure> {
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    peal_media::echo::serve_echo(client, Duration::from_millis(answer_after), stop, |r| {
        println!(
            "{}",
            json!({"event": "echo_done", "session_id": r.session_id, "echoed_video_frames": r.video_frames, "echoed_audio_frames": r.audio_frames})
        );
    })
    .await;
    Ok(())
}
