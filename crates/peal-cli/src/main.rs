//! `peal`: scripted calls from the command line. Every output line is JSON;
//! errors are one JSON line on stderr. Exit codes: 0 done (whatever the call's
//! outcome), 2 usage, 3 server unreachable, 4 authentication failed, 5 refused,
//! 6 media unavailable (a missing device, a codec that would not start).
//! Media that fails once a call is up prints a `media_failed` line with its
//! reason. Logs go to stderr only when `PEAL_LOG` is set (e.g. `PEAL_LOG=debug`;
//! `PEAL_LOG=peal_media=debug,warn`), so stderr otherwise holds nothing but
//! the one error line.

use clap::{Args, Parser, Subcommand};
use futures_util::StreamExt;
use peal_client::{
    Call, CallInfo, CallType, ClientConfig, ClientError, ClientEvent, EventKind, PealClient,
    ReceiverType, RejectStatus,
};
use peal_proto::wire::Status;
use peal_proto::SessionId;
use rand::Rng;
use serde_json::json;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "peal", version, about = "Peal calls from the command line")]
struct Cli {
    /// Server URL.
    #[arg(
        long,
        env = "PEAL_SERVER",
        default_value = "http://127.0.0.1:7300",
        global = true
    )]
    server: String,
    /// User id to sign in as.
    #[arg(long, env = "PEAL_USER", global = true)]
    user: Option<String>,
    #[arg(long, env = "PEAL_PASSWORD", global = true, hide_env_values = true)]
    password: Option<String>,
    /// Device name; the same name is the same device. Default: a new device for this process.
    #[arg(long, env = "PEAL_DEVICE", global = true)]
    device: Option<String>,
    /// Also trust this root certificate (PEM) for an https:// server with a private CA.
    #[arg(long, env = "PEAL_CA_CERT", global = true)]
    ca_cert: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print every event, one JSON line each, until killed.
    Listen,
    /// Call a user (or a group with --group) and print the call's events.
    Call {
        uid: String,
        /// UID is a group id.
        #[arg(long)]
        group: bool,
        /// Audio only (default: video).
        #[arg(long)]
        audio: bool,
        /// Ring timeout in seconds (5-180).
        #[arg(long)]
        timeout: Option<u32>,
        /// Cancel if still ringing after this many milliseconds.
        #[arg(long, value_name = "MS")]
        cancel_after: Option<u64>,
        /// Hang up this many milliseconds after the call is answered.
        #[arg(long, value_name = "MS")]
        hangup_after: Option<u64>,
        #[command(flatten)]
        media: MediaOpts,
    },
    /// Wait for the first incoming call and answer it (default: --accept).
    Answer {
        #[command(flatten)]
        how: AnswerHow,
        /// Wait this many milliseconds after it rings before answering.
        #[arg(long, value_name = "MS", default_value_t = 0)]
        after: u64,
        /// Hang up this many milliseconds after accepting.
        #[arg(long, value_name = "MS")]
        hangup_after: Option<u64>,
        #[command(flatten)]
        media: MediaOpts,
    },
    /// Answer every call and send each caller its own audio and video back.
    EchoBot {
        /// Wait this many milliseconds after it rings before answering.
        #[arg(long, value_name = "MS", default_value_t = 0)]
        answer_after: u64,
    },
    /// Accept a ringing call.
    Accept { session_id: String },
    /// Decline a ringing call.
    Reject {
        session_id: String,
        /// Decline as busy.
        #[arg(long)]
        busy: bool,
    },
    /// Cancel your call before it is answered.
    Cancel { session_id: String },
    /// End (or leave) an ongoing call.
    End { session_id: String },
    /// Your calls, newest first.
    History {
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Everyone you can call, with presence.
    Contacts,
    /// The microphones, speakers and cameras this machine has now, by the
    /// names --microphone, --speaker and --camera take (one JSON line; no
    /// sign-in).
    Devices,
    /// Make your account with an invite: --user and --password are the id
    /// and password you pick (8 characters or more). INVITE is the code, or
    /// the whole link (`peal:join?…&invite=CODE` or `https://…/join?invite=CODE`).
    Join {
        invite: String,
        /// Your name as others see it.
        #[arg(long)]
        name: String,
    },
}

/// The invite code in `text`: the `invite=` of a link, or `text` itself.
fn invite_code(text: &str) -> &str {
    match text.split_once("invite=") {
        Some((_, rest)) => rest.split(['&', '#']).next().unwrap_or_default(),
        None => text.trim(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum MediaMode {
    /// The moving test pattern and tone, verified by the other side.
    Synthetic,
    /// The same with a camera-like picture (noise and gradients) that VP8
    /// spends 1-1.5 Mbit/s on, for bandwidth adaptation.
    SyntheticHd,
    /// Camera and microphone.
    Devices,
    /// Signaling only.
    None,
}

#[derive(Args, Clone)]
struct MediaOpts {
    /// Send and receive call media once the call is accepted.
    #[arg(long, value_enum, default_value_t = MediaMode::None)]
    media: MediaMode,
    /// (--media devices) The microphone, by a name `peal devices` lists
    /// (default: the system's).
    #[arg(long, value_name = "NAME")]
    microphone: Option<String>,
    /// (--media devices) The speaker, by a name `peal devices` lists.
    #[arg(long, value_name = "NAME")]
    speaker: Option<String>,
    /// (--media devices) The camera, by a name `peal devices` lists
    /// (default: the first).
    #[arg(long, value_name = "NAME")]
    camera: Option<String>,
    /// Print a `media_stats` line before the final line.
    #[arg(long)]
    stats: bool,
    /// Also print a `media_stats` line every MS milliseconds while media
    /// runs (counters are totals so far; implies --stats).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(100..))]
    stats_every: Option<u64>,
    /// (answer) Don't connect media while it rings; only after accepting.
    #[arg(long)]
    no_pre_connect: bool,
}

#[derive(Args, Clone, Copy)]
#[group(multiple = false)]
struct AnswerHow {
    #[arg(long)]
    accept: bool,
    #[arg(long)]
    reject: bool,
    #[arg(long)]
    busy: bool,
    /// Let it ring; report how it ends.
    #[arg(long)]
    ignore: bool,
}

/// A failure, as the contract prints it.
struct Failure {
    code: String,
    message: String,
    exit: u8,
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        let (code, message) = e.body();
        Failure {
            code,
            message,
            exit: e.exit_code() as u8,
        }
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: "bad_request".into(),
        message: message.into(),
        exit: 2,
    }
}

/// JSON in the field order of the type (the order the contract lists).
fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v)
        .unwrap_or_else(|e| format!(r#"{{"error":{{"code":"internal","message":"{e}"}}}}"#))
}

fn print_event(e: &peal_client::Event) {
    println!("{}", to_json(e));
}

fn print_final(call: &CallInfo) {
    println!(r#"{{"event":"final","call":{}}}"#, to_json(call));
}

/// Media that can't start: exit 6 with `media_unavailable`.
fn media_failure(e: peal_media::MediaError) -> Failure {
    Failure {
        code: "media_unavailable".into(),
        message: e.to_string(),
        exit: 6,
    }
}

/// The media side of `peal call` / `peal answer`.
struct Media {
    opts: MediaOpts,
    session: Option<peal_media::CallSession>,
    /// When the call was accepted: `media_stats` times count from here.
    accepted: Option<std::time::Instant>,
    /// `--stats-every`: when the next periodic `media_stats` line is due.
    ticker: Option<tokio::time::Interval>,
}

impl Media {
    fn new(opts: MediaOpts) -> Self {
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
    async fn tick(&mut self) {
        match (&mut self.ticker, &self.session) {
            (Some(t), Some(_)) => {
                t.tick().await;
            }
            _ => std::future::pending().await,
        }
    }

    /// Device names are for `--media devices`: with other media they are a
    /// usage error (before signing in), not ignored.
    fn check(opts: &MediaOpts) -> Result<(), Failure> {
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
    fn probe(&self, video: bool) -> Result<(), Failure> {
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
    async fn ringing(&mut self, client: &PealClient, call: &CallInfo) -> Result<(), Failure> {
        if self.opts.no_pre_connect {
            return Ok(());
        }
        self.join(client, call).await
    }

    /// Joins the call's media (no-op with `--media none`).
    async fn join(&mut self, client: &PealClient, call: &CallInfo) -> Result<(), Failure> {
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

    fn accepted(&mut self) {
        let t = *self.accepted.get_or_insert_with(std::time::Instant::now);
        if let Some(s) = &self.session {
            s.set_t0(t);
        }
    }

    /// The `media_stats` line (times from accept), if asked for.
    fn print_stats(&self) {
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
    async fn finish(&mut self, call: &CallInfo) {
        self.print_stats();
        print_final(call);
        if let Some(s) = self.session.take() {
            s.leave().await;
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    if let Ok(filter) = std::env::var("PEAL_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .init();
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            let msg = e.to_string();
            let first = msg
                .lines()
                .next()
                .unwrap_or("usage error")
                .trim_start_matches("error: ")
                .to_owned();
            eprintln!(
                "{}",
                json!({"error": {"code": "bad_request", "message": first}})
            );
            return ExitCode::from(2);
        }
    };
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!(
                "{}",
                json!({"error": {"code": f.code, "message": f.message}})
            );
            ExitCode::from(f.exit)
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    match &cli.command {
        Command::Devices => return devices(),
        Command::Call { media, .. } | Command::Answer { media, .. } => Media::check(media)?,
        _ => {}
    }
    let user = cli
        .user
        .ok_or_else(|| usage("--user (or PEAL_USER) is required"))?;
    let password = cli
        .password
        .ok_or_else(|| usage("--password (or PEAL_PASSWORD) is required"))?;
    let generated = cli.device.is_none();
    let device = cli
        .device
        .unwrap_or_else(|| format!("cli-{:08x}", rand::thread_rng().gen::<u32>()));
    let mut config = ClientConfig::new(cli.server, user, password, device);
    if let Some(path) = &cli.ca_cert {
        let pem = std::fs::read(path)
            .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
        config = config.with_root_certificates_pem(pem);
    }
    let needs_events = matches!(
        cli.command,
        Command::Listen | Command::Call { .. } | Command::Answer { .. } | Command::EchoBot { .. }
    );
    let client = match &cli.command {
        Command::Join { invite, name } => {
            let client = PealClient::join(config, invite_code(invite), name).await?;
            println!(r#"{{"joined":{}}}"#, to_json(client.user()));
            client
        }
        _ if needs_events => PealClient::connect(config).await?,
        _ => PealClient::sign_in(config).await?,
    };
    let result = command(&client, cli.command).await;
    if generated {
        // A device made up for this process goes away with it.
        let _ = client.logout().await;
    }
    result
}

fn sid(s: &str) -> SessionId {
    SessionId(s.to_owned())
}

async fn command(client: &PealClient, cmd: Command) -> Result<(), Failure> {
    match cmd {
        Command::Listen => {
            let mut events = client.events();
            loop {
                tokio::select! {
                    e = events.next() => match e {
                        Some(ClientEvent::Call(e)) => print_event(&e),
                        Some(ClientEvent::Connection(_) | ClientEvent::Presence { .. } | ClientEvent::Media { .. } | ClientEvent::Refused { .. } | ClientEvent::ContactAdded(_)) => {}
                        None => return Ok(()),
                    },
                    _ = tokio::signal::ctrl_c() => return Ok(()),
                }
            }
        }
        Command::Call {
            uid,
            group,
            audio,
            timeout,
            cancel_after,
            hangup_after,
            media,
        } => {
            let rt = if group {
                ReceiverType::Group
            } else {
                ReceiverType::User
            };
            let ct = if audio {
                CallType::Audio
            } else {
                CallType::Video
            };
            let mut call = Call::new(uid, rt, ct);
            call.timeout = timeout;
            place(client, call, cancel_after, hangup_after, Media::new(media)).await
        }
        Command::Answer {
            how,
            after,
            hangup_after,
            media,
        } => answer(client, how, after, hangup_after, Media::new(media)).await,
        Command::EchoBot { answer_after } => echo_bot(client, answer_after).await,
        Command::Accept { session_id } => one(client.accept_call(&sid(&session_id)).await),
        Command::Reject { session_id, busy } => {
            let status = if busy {
                RejectStatus::Busy
            } else {
                RejectStatus::Rejected
            };
            one(client.reject_call(&sid(&session_id), status).await)
        }
        Command::Cancel { session_id } => one(client.cancel_call(&sid(&session_id)).await),
        Command::End { session_id } => one(client.end_call(&sid(&session_id)).await),
        Command::History { limit } => {
            for h in client.history(limit.clamp(1, 1000)).await? {
                println!("{}", to_json(&h));
            }
            Ok(())
        }
        Command::Contacts => {
            for c in client.contacts().await? {
                println!("{}", to_json(&c));
            }
            Ok(())
        }
        // Done in `run`: the account is made as the client signs in, and
        // the devices are listed without one.
        Command::Join { .. } | Command::Devices => Ok(()),
    }
}

/// `peal devices`: one line, each list by the names the flags take, and
/// what the system calls the ones it describes.
fn devices() -> Result<(), Failure> {
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

fn one(r: Result<CallInfo, ClientError>) -> Result<(), Failure> {
    println!(r#"{{"call":{}}}"#, to_json(&r?));
    Ok(())
}

/// Sleeps until `at` if set, forever otherwise.
async fn until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn after_ms(ms: Option<u64>) -> Option<tokio::time::Instant> {
    ms.map(|ms| tokio::time::Instant::now() + Duration::from_millis(ms))
}

/// Prints an event of the call we follow; `true` when it ends the call for us
/// (the caller then prints the final line).
fn follow(e: &peal_client::Event, current: &mut CallInfo) -> bool {
    print_event(e);
    *current = e.call.clone();
    peal_client::resume::is_terminal(e.event)
}

/// The call after our own action ended it; `Ok(None)` when the action lost
/// a race (cancelled vs answered…): the event saying so follows.
fn concluded(r: Result<CallInfo, ClientError>) -> Result<Option<CallInfo>, Failure> {
    match r {
        Ok(c) => Ok(Some(c)),
        Err(e) if e.code() == Some(peal_client::ErrorCode::InvalidState) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn place(
    client: &PealClient,
    call: Call,
    cancel_after: Option<u64>,
    hangup_after: Option<u64>,
    mut media: Media,
) -> Result<(), Failure> {
    media.probe(call.call_type == CallType::Video)?;
    let mut events = client.events();
    let mut current = client.initiate_call(call).await?;
    let id = current.session_id.clone();
    println!(r#"{{"event":"initiated","call":{}}}"#, to_json(&current));
    // The caller's media is ready before the callee's offer can arrive.
    if current.status.is_live() {
        media.join(client, &current).await?;
    }
    if current.status == Status::Ongoing {
        media.accepted();
    }
    let mut cancel_at = if current.status == Status::Initiated {
        after_ms(cancel_after)
    } else {
        None
    };
    // Glare: our call answered theirs, so we are in a call already.
    let mut hangup_at = if current.status == Status::Ongoing {
        after_ms(hangup_after)
    } else {
        None
    };
    // Busy at once: the rejection event is on its way; wait briefly for it.
    let finished_at = if current.status.is_live() {
        None
    } else {
        after_ms(Some(2_000))
    };
    loop {
        tokio::select! {
            e = events.next() => match e {
                Some(ClientEvent::Call(e)) if e.call.session_id == id => {
                    if follow(&e, &mut current) {
                        media.finish(&current).await;
                        return Ok(());
                    }
                    if e.event == EventKind::OutgoingCallAccepted {
                        media.accepted();
                        cancel_at = None;
                        hangup_at = after_ms(hangup_after);
                    }
                }
                Some(_) => {}
                None => return Err(ClientError::Unreachable("event stream ended".into()).into()),
            },
            () = until(cancel_at) => {
                cancel_at = None;
                // If the answer won the race, carry on as an answered call.
                if let Some(c) = concluded(client.cancel_call(&id).await)? {
                    media.finish(&c).await;
                    return Ok(());
                }
            }
            () = until(hangup_at) => {
                hangup_at = None;
                if let Some(c) = concluded(client.end_call(&id).await)? {
                    media.finish(&c).await;
                    return Ok(());
                }
            }
            () = until(finished_at) => {
                media.finish(&current).await;
                return Ok(());
            }
            () = media.tick() => media.print_stats(),
            _ = tokio::signal::ctrl_c() => {
                if let Ok(c) = client.hang_up(&id).await { media.finish(&c).await; }
                return Ok(());
            }
        }
    }
}

/// Waits for the next incoming call and prints its ring; `None` on Ctrl-C.
async fn next_ring(events: &mut peal_client::EventStream) -> Result<Option<CallInfo>, Failure> {
    loop {
        tokio::select! {
            e = events.next() => match e {
                Some(ClientEvent::Call(e)) if e.event == EventKind::IncomingCallReceived => {
                    print_event(&e);
                    return Ok(Some(e.call));
                }
                Some(_) => {}
                None => return Err(ClientError::Unreachable("event stream ended".into()).into()),
            },
            _ = tokio::signal::ctrl_c() => return Ok(None),
        }
    }
}

async fn answer(
    client: &PealClient,
    how: AnswerHow,
    after: u64,
    hangup_after: Option<u64>,
    mut media: Media,
) -> Result<(), Failure> {
    // Audio devices now; the camera once we know it is a video call.
    media.probe(false)?;
    let mut events = client.events();
    // The first incoming call is the one we act on.
    let Some(mut current) = next_ring(&mut events).await? else {
        return Ok(());
    };
    let id = current.session_id.clone();
    if how.accept || !(how.reject || how.busy || how.ignore) {
        media.probe(current.call_type == CallType::Video)?;
        media.ringing(client, &current).await?;
    }
    let mut act_at = if how.ignore {
        None
    } else {
        after_ms(Some(after))
    };
    let mut hangup_at = None;
    loop {
        tokio::select! {
            e = events.next() => match e {
                Some(ClientEvent::Call(e)) if e.call.session_id == id => {
                    if follow(&e, &mut current) {
                        media.finish(&current).await;
                        return Ok(());
                    }
                }
                Some(_) => {}
                None => return Err(ClientError::Unreachable("event stream ended".into()).into()),
            },
            () = until(act_at) => {
                act_at = None;
                let decline = if how.reject {
                    Some(RejectStatus::Rejected)
                } else if how.busy {
                    Some(RejectStatus::Busy)
                } else {
                    None
                };
                match decline {
                    // Declining ends the call for this device, even if a group call goes on.
                    Some(status) => {
                        if let Some(c) = concluded(client.reject_call(&id, status).await)? {
                            media.finish(&c).await;
                            return Ok(());
                        }
                    }
                    None => {
                        media.accepted();
                        match client.accept_call(&id).await {
                            Ok(c) if c.status.is_live() => {
                                current = c;
                                media.join(client, &current).await?;
                                hangup_at = after_ms(hangup_after);
                            }
                            // Too late (cancelled, answered elsewhere): the event saying so follows.
                            r => if let Some(c) = concluded(r)? { media.finish(&c).await; return Ok(()); },
                        }
                    }
                }
            }
            () = until(hangup_at) => {
                hangup_at = None;
                if let Some(c) = concluded(client.end_call(&id).await)? {
                    media.finish(&c).await;
                    return Ok(());
                }
            }
            () = media.tick() => media.print_stats(),
            _ = tokio::signal::ctrl_c() => {
                if current.status == Status::Ongoing {
                    if let Ok(c) = client.end_call(&id).await { media.finish(&c).await; }
                }
                return Ok(());
            }
        }
    }
}

/// Answers every call and echoes each caller's own media back, one call at a
/// time (a second caller meanwhile hears busy from the server).
async fn echo_bot(client: &PealClient, answer_after: u64) -> Result<(), Failure> {
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
