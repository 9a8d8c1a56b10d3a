//! `peal-server`: run the signaling server, or administer its data.

use clap::{Args, Parser, Subcommand};
use peal_server::clock::{Clock, SystemClock};
use peal_server::store::SqliteStore;
use peal_server::{Config, Server};
use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "peal-server", version, about = "Peal signaling server")]
struct Cli {
    /// Data directory (default: $XDG_DATA_HOME/peal).
    #[arg(long, global = true, env = "PEAL_DATA")]
    data: Option<PathBuf>,
    #[command(flatten)]
    serve: ServeArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Args, Clone)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, global = true, default_value = "127.0.0.1:7300")]
    listen: SocketAddr,
    /// Ring timeout in seconds for calls that don't set one (1-600).
    #[arg(long, global = true, default_value_t = peal_proto::limits::DEFAULT_RING_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u32).range(1..=600))]
    ring_timeout: u32,
    /// PEM certificate chain: serve HTTPS/WSS (required off loopback).
    #[arg(long, global = true, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, global = true, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve plain HTTP on a non-loopback address anyway (only behind a TLS-terminating proxy).
    #[arg(long, global = true)]
    insecure_plaintext: bool,
    /// A STUN server URL handed to clients (repeatable), e.g. stun:turn.example.com:3478.
    #[arg(long = "stun-url", global = true)]
    stun_urls: Vec<String>,
    /// A TURN server URL handed to clients (repeatable), e.g. turn:turn.example.com:3478?transport=udp.
    #[arg(long = "turn-url", global = true, requires = "turn_secret")]
    turn_urls: Vec<String>,
    /// The TURN server's `static-auth-secret` (coturn `use-auth-secret`).
    #[arg(long, global = true, env = "PEAL_TURN_SECRET", hide_env_values = true)]
    turn_secret: Option<String>,
    /// How long a TURN credential is accepted, in seconds.
    #[arg(long, global = true, default_value_t = 3600)]
    turn_ttl: u64,
    /// Connections open at once from one source address (raise it behind a
    /// proxy, where every client comes from the proxy's address).
    #[arg(long, global = true, default_value_t = peal_server::conns::ConnLimits::default().per_address)]
    max_connections_per_address: usize,
    /// Connections open at once in all (keep it under the open-file limit).
    #[arg(long, global = true, default_value_t = peal_server::conns::ConnLimits::default().total)]
    max_connections: usize,
    /// Sign-in attempts a minute from one source address (raise it behind a proxy).
    #[arg(long, global = true, default_value_t = peal_server::limits::LOGINS_PER_ADDRESS_PER_MINUTE)]
    logins_per_address: u32,
    /// Sign-in attempts a minute for one user (against password guessing).
    #[arg(long, global = true, default_value_t = peal_server::limits::LOGINS_PER_USER_PER_MINUTE)]
    logins_per_user: u32,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage groups.
    Group {
        #[command(subcommand)]
        command: GroupCommand,
    },
    /// Invite people: prints a link that lets whoever opens it make their own
    /// account (or, with a subcommand, lists or revokes invites).
    #[command(args_conflicts_with_subcommands = true)]
    Invite {
        #[command(subcommand)]
        command: Option<InviteCommand>,
        /// How many accounts the link may make.
        #[arg(long, default_value_t = peal_server::invites::DEFAULT_USES)]
        uses: u32,
        /// How long the link works: 30m, 12h, 7d, 2w (at most 365d).
        #[arg(long, default_value = peal_server::invites::DEFAULT_EXPIRES)]
        expires: String,
        /// The server's address as people reach it (default: from --listen).
        #[arg(long, env = "PEAL_PUBLIC_URL")]
        url: Option<String>,
    },
    /// Add the demo users alice, bob, carol and echo (password "peal") and the group "friends", if missing.
    DemoData,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user.
    Add {
        uid: String,
        #[arg(long)]
        name: String,
        #[arg(
            long,
            conflicts_with = "password_stdin",
            required_unless_present = "password_stdin"
        )]
        password: Option<String>,
        /// Read the password from standard input (one line).
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum GroupCommand {
    /// Add a group.
    Add {
        guid: String,
        #[arg(long)]
        name: String,
        /// Comma-separated user ids.
        #[arg(long, value_delimiter = ',', required = true)]
        members: Vec<String>,
    },
}

#[derive(Subcommand)]
enum InviteCommand {
    /// List every invite: id, lifetime, uses, and whether it is still open.
    List,
    /// Withdraw an invite (by the id `list` shows): its link stops working.
    Revoke { id: String },
}

fn fail(msg: impl std::fmt::Display, code: u8) -> ExitCode {
    eprintln!(
        "{}",
        serde_json::json!({"error": {"code": "bad_request", "message": msg.to_string()}})
    );
    ExitCode::from(code)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let data = cli.data.unwrap_or_else(Config::default_data_dir);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(data, cli.serve).await,
        Command::User {
            command:
                UserCommand::Add {
                    uid,
                    name,
                    password,
                    password_stdin,
                },
        } => {
            let password = match (password, password_stdin) {
                (Some(p), _) => p,
                (None, _) => {
                    let mut s = String::new();
                    if let Err(e) = std::io::stdin().read_to_string(&mut s) {
                        return fail(format!("cannot read the password: {e}"), 2);
                    }
                    s.lines().next().unwrap_or_default().to_owned()
                }
            };
            admin(&data, |store, now| async move {
                peal_server::add_user(&store, now, &uid, &name, &password)
                    .await
                    .map(|()| format!("added user {uid}"))
            })
            .await
        }
        Command::Group {
            command:
                GroupCommand::Add {
                    guid,
                    name,
                    members,
                },
        } => {
            admin(&data, |store, now| async move {
                let m: Vec<&str> = members.iter().map(String::as_str).collect();
                peal_server::add_group(&store, now, &guid, &name, &m)
                    .await
                    .map(|()| format!("added group {guid}"))
            })
            .await
        }
        Command::Invite {
            command: Some(InviteCommand::List),
            ..
        } => {
            admin(&data, |store, now| async move {
                let all = peal_server::store::Store::invites(&store).await?;
                for i in &all {
                    println!("{}", i.describe(now));
                }
                Ok(format!("{} invite(s)", all.len()))
            })
            .await
        }
        Command::Invite {
            command: Some(InviteCommand::Revoke { id }),
            ..
        } => {
            admin(&data, |store, now| async move {
                peal_server::store::Store::revoke_invite(&store, id.clone(), now).await?;
                Ok(format!("revoked invite {id}: its link no longer works"))
            })
            .await
        }
        Command::Invite {
            command: None,
            uses,
            expires,
            url,
        } => {
            let lifetime = match peal_server::invites::parse_lifetime(&expires) {
                Ok(ms) => ms,
                Err(e) => return fail(e, 2),
            };
            let scheme = if cli.serve.tls_cert.is_some() {
                "https"
            } else {
                "http"
            };
            let server = url.unwrap_or_else(|| format!("{scheme}://{}", cli.serve.listen));
            admin(&data, |store, now| async move {
                let (invite, code) = peal_server::add_invite(&store, now, uses, lifetime).await?;
                let (app, web) = peal_server::invites::links(&server, &code);
                // The links on stdout (for scripts), one per line.
                println!("{app}");
                println!("{web}");
                Ok(format!(
                    "invite {} for {uses} account(s), until {}: send either link (the first opens Peal, the second is a web page for people without it yet)",
                    invite.id,
                    peal_server::invites::utc(invite.expires_at)
                ))
            })
            .await
        }
        Command::DemoData => {
            admin(&data, |store, now| async move {
                // `echo` is answered by `peal echo-bot` (make run starts it).
                for (uid, name) in [
                    ("alice", "Alice"),
                    ("bob", "Bob"),
                    ("carol", "Carol"),
                    ("echo", "Echo (test call)"),
                ] {
                    match peal_server::add_user(&store, now, uid, name, "peal").await {
                        Ok(())
                        | Err(peal_server::AdminError::Store(
                            peal_server::store::StoreError::Exists(_),
                        )) => {}
                        Err(e) => return Err(e),
                    }
                }
                match peal_server::add_group(
                    &store,
                    now,
                    "friends",
                    "Friends",
                    &["alice", "bob", "carol"],
                )
                .await
                {
                    Ok(())
                    | Err(peal_server::AdminError::Store(
                        peal_server::store::StoreError::Exists(_),
                    )) => {}
                    Err(e) => return Err(e),
                }
                Ok(
                    "demo data ready: alice, bob, carol, echo (password \"peal\"), group friends"
                        .to_owned(),
                )
            })
            .await
        }
    }
}

async fn admin<F, Fut>(data: &std::path::Path, f: F) -> ExitCode
where
    F: FnOnce(SqliteStore, peal_proto::Millis) -> Fut,
    Fut: std::future::Future<Output = Result<String, peal_server::AdminError>>,
{
    let store = match SqliteStore::open(data).await {
        Ok(s) => s,
        Err(e) => return fail(format!("cannot open {}: {e}", data.display()), 1),
    };
    let r = f(store.clone(), SystemClock.now()).await;
    store.close().await;
    match r {
        Ok(msg) => {
            eprintln!("{msg}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e, 1),
    }
}

async fn serve(data: PathBuf, args: ServeArgs) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PEAL_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => match peal_server::tls::server_config(cert, key) {
            Ok(c) => Some(c),
            Err(e) => return fail(e, 1),
        },
        _ => None,
    };
    if tls.is_none() && !args.listen.ip().is_loopback() && !args.insecure_plaintext {
        return fail(
            format!(
                "refusing plain HTTP on {}: calls would leave this machine unencrypted; \
                 pass --tls-cert and --tls-key (or --insecure-plaintext behind a TLS proxy)",
                args.listen
            ),
            2,
        );
    }
    let mut config = Config::new(data.clone());
    config.ring_timeout_secs = args.ring_timeout;
    config.conn_limits.per_address = args.max_connections_per_address.max(1);
    config.conn_limits.total = args.max_connections.max(1);
    config.logins_per_address_per_minute = args.logins_per_address.max(1);
    config.logins_per_user_per_minute = args.logins_per_user.max(1);
    config.ice = peal_server::turn::IceConfig {
        stun_urls: args.stun_urls.clone(),
        turn_urls: args.turn_urls.clone(),
        turn_secret: args.turn_secret.clone(),
        turn_ttl_secs: args.turn_ttl,
    };
    let server = match Server::open(config, Arc::new(SystemClock)).await {
        Ok(s) => s,
        Err(e) => return fail(e, 1),
    };
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => return fail(format!("cannot listen on {}: {e}", args.listen), 1),
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(url = %format!("{scheme}://{addr}"), data = %data.display(), "peal-server listening");
    let shutdown = async {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(t) => t,
                    Err(_) => {
                        let _ = ctrl_c.await;
                        return;
                    }
                };
            tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
        tracing::info!("shutting down");
    };
    let served = match tls {
        Some(tls) => server.run_tls(listener, tls, shutdown).await,
        None => server.run(listener, shutdown).await,
    };
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(format!("server failed: {e}"), 1),
    }
}
