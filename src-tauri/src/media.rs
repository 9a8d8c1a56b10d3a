//! A call's media for the app: joining it (with the chosen devices, and the
//! test pattern and a notice where a device is missing), its events for the
//! call screen, its video frames to the page in the message format the page
//! decodes; and the settings' watch on the devices.

use crate::*;
use peal_media::devices::MeterEnd;

/// Notes a media step in the diagnostics (the newest 50).
pub(crate) fn media_log(state: &AppState, what: String) {
    log_to(&state.ring.diag, state.started, what);
}

pub(crate) fn log_to(
    diag: &std::sync::Mutex<Diagnostics>,
    started: std::time::Instant,
    what: String,
) {
    let ms = started.elapsed().as_millis();
    if let Ok(mut d) = diag.lock() {
        d.media_log.push(format!("{ms} ms: {what}"));
        let n = d.media_log.len();
        if n > 50 {
            d.media_log.drain(..n - 50);
        }
    }
}

/// Video frames sent to the page: remote, self view (for the diagnostics).
pub(crate) static FRAMES_TO_PAGE: [std::sync::atomic::AtomicU64; 2] = [
    std::sync::atomic::AtomicU64::new(0),
    std::sync::atomic::AtomicU64::new(0),
];

/// What the call screen hears of a media event. A failure is logged here
/// and shown to the person with its reason.
pub(crate) fn media_update(e: peal_media::MediaEvent) -> MediaUpdate {
    use peal_media::MediaEvent as M;
    match e {
        M::Connected => MediaUpdate::Connected,
        M::Reconnecting { peer } => MediaUpdate::Reconnecting {
            peer: peer.to_string(),
        },
        M::Reconnected { peer } => MediaUpdate::Reconnected {
            peer: peer.to_string(),
        },
        M::ParticipantJoined { peer } => MediaUpdate::ParticipantJoined {
            peer: peer.to_string(),
        },
        M::ParticipantLeft { peer } => MediaUpdate::ParticipantLeft {
            peer: peer.to_string(),
        },
        M::RemoteState {
            peer,
            audio_muted,
            video_enabled,
        } => MediaUpdate::RemoteState {
            peer: peer.to_string(),
            audio_muted,
            video_enabled,
        },
        M::Ended { reason } if reason.is_failure() => {
            tracing::warn!(reason = %reason, "call media failed");
            MediaUpdate::Failed {
                reason: reason.message(),
            }
        }
        M::Ended { reason } => MediaUpdate::Ended {
            reason: reason.to_string(),
        },
    }
}

/// Joins the media of `call`: camera and microphone, or — on a machine
/// without them — the test pattern and tone, saying so. `video` false
/// starts with the camera off (accept audio only).
pub(crate) async fn join_media(
    state: &AppState,
    client: &PealClient,
    call: &CallInfo,
    video: bool,
) {
    let mut settings = SessionSettings::new(call.call_type, Sources::Devices);
    // The page decodes the video (WebCodecs): no second decode here.
    settings.decode_video = false;
    settings.start_video_off = settings.start_video_off || !video;
    let chosen = state.settings();
    let now = if chosen.microphone.is_some() || chosen.speaker.is_some() || chosen.camera.is_some()
    {
        devices_now().await
    } else {
        DeviceList::default()
    };
    let devices =
        peal_desktop_core::devices::for_call(&chosen, &now, call.call_type == CallType::Video);
    for message in devices.notices {
        state.notice(message).await;
    }
    settings.devices = peal_media::devices::Chosen {
        microphone: devices.microphone,
        speaker: devices.speaker,
        camera: devices.camera,
    };
    if let Ok(bind) = std::env::var("PEAL_MEDIA_BIND") {
        settings.bind = bind.split(',').map(str::to_owned).collect();
    }
    let settings_wh = (settings.width, settings.height);
    media_log(state, format!("joining the media of {}", call.session_id));
    let session = match peal_media::join_session(client, call, settings.clone()).await {
        Ok(s) => Ok(s),
        Err(MediaError::NoDevice(what)) => {
            state
                .notice(format!(
                    "No usable {what}: sending a test pattern and tone instead."
                ))
                .await;
            settings.sources = Sources::Synthetic;
            peal_media::join_session(client, call, settings).await
        }
        Err(e) => Err(e),
    };
    media_log(
        state,
        match &session {
            Ok(_) => "joined".to_owned(),
            Err(e) => format!("not joined: {e}"),
        },
    );
    let session = match session {
        Ok(s) => Arc::new(s),
        Err(e) => {
            state
                .notice(format!("The call's media did not start: {e}"))
                .await;
            return;
        }
    };
    let video = state.video.lock().await.clone();
    if let Some(ch) = video {
        forward_remote_video(session.vp8(), ch.clone());
        if call.call_type == CallType::Video {
            forward_self_view(session.local(), ch, (settings_wh.0, settings_wh.1));
        }
    }
    if let Some(mut ev) = session.events() {
        let app_events: Vec<Channel<UiEvent>> = state
            .channels
            .lock()
            .map(|c| c.values().cloned().collect())
            .unwrap_or_default();
        let (diag, started) = (state.ring.diag.clone(), state.started);
        tauri::async_runtime::spawn(async move {
            while let Some(e) = ev.recv().await {
                let update = media_update(e);
                log_to(&diag, started, format!("media {update:?}"));
                let ev = UiEvent::Media { update };
                for ch in &app_events {
                    let _ = ch.send(ev.clone());
                }
            }
        });
    }
    if let Some(s) = state.signed.lock().await.as_mut() {
        s.media = Some(session);
    }
}

/// One message on the video channel: `[key][w:u16][h:u16][n][from: n bytes][VP8]`
/// (`from` empty: our own video, for the self view).
pub(crate) fn video_message(
    key: bool,
    w: u32,
    h: u32,
    from: &str,
    vp8: &[u8],
) -> InvokeResponseBody {
    let from = &from.as_bytes()[..from.len().min(255)];
    let mut msg = Vec::with_capacity(vp8.len() + 6 + from.len());
    msg.push(u8::from(key));
    msg.extend_from_slice(&(w.min(65_535) as u16).to_le_bytes());
    msg.extend_from_slice(&(h.min(65_535) as u16).to_le_bytes());
    msg.push(from.len() as u8);
    msg.extend_from_slice(from);
    msg.extend_from_slice(vp8);
    InvokeResponseBody::Raw(msg)
}

/// Sends frames from `rx` to the page; after skipping frames (the page fell
/// behind), waits for a keyframe, the only thing that can be decoded then.
pub(crate) fn forward_frames<T: Clone + Send + 'static>(
    mut rx: tokio::sync::broadcast::Receiver<T>,
    ch: Channel<InvokeResponseBody>,
    count: &'static std::sync::atomic::AtomicU64,
    mut to_message: impl FnMut(&T) -> Option<(bool, InvokeResponseBody)> + Send + 'static,
) {
    tauri::async_runtime::spawn(async move {
        let mut need_key = false;
        loop {
            match rx.recv().await {
                Ok(v) => {
                    let Some((key, msg)) = to_message(&v) else {
                        continue;
                    };
                    if need_key && !key {
                        continue;
                    }
                    need_key = false;
                    if let Err(e) = ch.send(msg) {
                        tracing::warn!(error = %e, "video to the page");
                        break;
                    }
                    count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => need_key = true,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}

pub(crate) fn forward_remote_video(
    rx: tokio::sync::broadcast::Receiver<peal_media::session::RemoteVp8>,
    ch: Channel<InvokeResponseBody>,
) {
    forward_frames(rx, ch, &FRAMES_TO_PAGE[0], |v| {
        let (w, h) = v.size.unwrap_or((0, 0));
        let msg = video_message(v.key, w.into(), h.into(), v.from.as_str(), &v.vp8);
        Some((v.key, msg))
    });
}

/// Our own video as we send it (camera, or the test pattern), for the self view.
pub(crate) fn forward_self_view(
    rx: tokio::sync::broadcast::Receiver<peal_media::source::Encoded>,
    ch: Channel<InvokeResponseBody>,
    (w, h): (u32, u32),
) {
    forward_frames(rx, ch, &FRAMES_TO_PAGE[1], move |e| {
        if !e.video {
            return None;
        }
        let key = peal_media::assemble::is_keyframe(&e.data);
        Some((key, video_message(key, w, h, "", &e.data)))
    });
}

pub(crate) async fn leave_media(state: &AppState) {
    let media = state.signed.lock().await.as_mut().and_then(|s| {
        s.current = None;
        s.media.take()
    });
    if let Some(m) = media {
        m.leave().await;
    }
}

/// The devices connected now (listing opens each audio device for a
/// moment: on a blocking thread).
pub(crate) async fn devices_now() -> DeviceList {
    tauri::async_runtime::spawn_blocking(list_devices)
        .await
        .unwrap_or_default()
}

fn list_devices() -> DeviceList {
    use peal_media::devices;
    DeviceList {
        microphones: devices::microphones(),
        speakers: devices::speakers(),
        cameras: devices::cameras(),
        labels: devices::descriptions(),
    }
}

/// How often the settings look for a device plugged in or out.
const DEVICE_POLL: std::time::Duration = std::time::Duration::from_secs(2);
/// Microphone frames (20 ms each) per level the settings show: 10 a second.
const LEVEL_FRAMES: usize = 5;
/// A microphone that sends no frame for this long is gone: a quiet one
/// still sends silence every 20 ms, and 3 s leaves room for a sound server
/// slow to start its stream on a loaded machine.
const MIC_GONE_AFTER: std::time::Duration = std::time::Duration::from_secs(3);

/// While the settings are open: the lists, sent again when a device comes
/// or goes, and the chosen microphone's level. Dropping it stops both.
pub(crate) struct DeviceWatch {
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for DeviceWatch {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl DeviceWatch {
    pub(crate) fn start(app: AppHandle, microphone: Option<String>) -> DeviceWatch {
        use std::sync::atomic::Ordering;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tell = |app: &AppHandle, ev: UiEvent| {
            if let Some(state) = app.try_state::<AppState>() {
                state.broadcast(ev);
            }
        };
        let (a, s, mic) = (app.clone(), stop.clone(), microphone);
        let level = std::thread::Builder::new()
            .name("peal-mic-level".into())
            .spawn(
                move || match peal_media::devices::Microphone::open(mic.as_deref()) {
                    Ok(m) => {
                        // Said as the system describes it, asked now: once
                        // it is unplugged, the description is gone too.
                        let which = match mic.as_deref() {
                            Some(n) => peal_media::devices::descriptions()
                                .remove(n)
                                .unwrap_or_else(|| n.to_owned()),
                            None => "the default".to_owned(),
                        };
                        let end = peal_media::devices::meter(
                            &m.frames,
                            LEVEL_FRAMES,
                            MIC_GONE_AFTER,
                            |level| {
                                tell(&a, UiEvent::MicLevel { level });
                                !s.load(Ordering::Relaxed)
                            },
                        );
                        match end {
                            MeterEnd::Stopped => {}
                            MeterEnd::NoFrames | MeterEnd::Closed => {
                                tracing::warn!(microphone = %which, ?end, "the microphone stopped");
                                tell(&a, UiEvent::MicLevel { level: 0 });
                                tell(
                                    &a,
                                    UiEvent::Notice {
                                        message: format!(
                                            "The microphone ({which}) stopped sending sound: is it still plugged in? Plug it back in and choose it again, or choose another."
                                        ),
                                    },
                                );
                            }
                        }
                    }
                    Err(e) => tell(
                        &a,
                        UiEvent::Notice {
                            message: format!("The microphone's level can't be shown: {e}"),
                        },
                    ),
                },
            );
        let s = stop.clone();
        let lists = std::thread::Builder::new()
            .name("peal-devices".into())
            .spawn(move || {
                // The page's lists were read a moment ago: a device that
                // came or went since then is said at once.
                let mut last = None;
                while !s.load(Ordering::Relaxed) {
                    let now = list_devices();
                    if last.as_ref() != Some(&now) && !s.load(Ordering::Relaxed) {
                        if last.is_some() {
                            tracing::info!(?now, "devices changed");
                        }
                        tell(
                            &app,
                            UiEvent::Devices {
                                devices: now.clone(),
                            },
                        );
                        last = Some(now);
                    }
                    std::thread::sleep(DEVICE_POLL);
                }
            });
        for (what, r) in [("level", level.err()), ("device list", lists.err())] {
            if let Some(e) = r {
                tracing::warn!(error = %e, "no thread for the settings' {what}");
            }
        }
        DeviceWatch { stop }
    }
}
