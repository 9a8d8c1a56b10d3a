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

#[cfg(feature = "media")]
mod media;
#[cfg(not(feature = "media"))]
#[path = "no_media.rs"]
mod media;
use media::{devices, echo_bot, Media};

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
