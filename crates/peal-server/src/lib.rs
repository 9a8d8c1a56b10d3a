//! peal-server: accounts, devices, groups, presence and the authoritative call
//! state machine, over HTTP and one WebSocket per device.
//!
//! # Layout
//!
//! - [`Server`] (this file): opens storage, restores live calls, builds the
//!   router, and [`Server::run`]s on a listener until a shutdown future resolves.
//! - [`switchboard`]: the one task that owns every live call and carries out
//!   each step's effects (persist → notify → answer).
//! - [`hub`]: per-device event delivery, sequence numbers, replay buffers.
//! - [`store`]: the storage trait and its SQLite implementation.
//! - [`api`]: REST handlers. [`ws`]: the event WebSocket.
//! - [`conns`]: the accept loop and its limits (connections in total and per
//!   address, header and idle timeouts).
//! - [`auth`]: password hashing, hashed bearer tokens, the `Auth` extractor.
//!   [`passwords`]: Argon2 checks on a bounded pool.
//! - [`limits`]: rate limits. [`memory`]: freed heap back after a mass
//!   disconnect. [`clock`]: time as an input. [`tls`]: the TLS configuration.
//! - [`invites`]: invitations to make an account (codes, lifetimes, links), pure.
//! - [`turn`]: the ICE servers handed to clients, TURN credentials in the TURN REST form.
//! - [`error`]: the one error type, mapped once to public codes.

pub mod api;
pub mod auth;
pub mod clock;
pub mod conns;
pub mod error;
pub mod hub;
pub mod invites;
pub mod limits;
pub mod memory;
pub mod passwords;
pub mod store;
pub mod switchboard;
pub mod tls;
pub mod turn;
pub mod ws;

use crate::clock::SharedClock;
use crate::hub::Hub;
use crate::limits::Limits;
use crate::store::{SqliteStore, Store, StoreError};
use crate::switchboard::Switchboard;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use peal_proto::limits as l;
use peal_proto::{GroupId, UserId};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// Everything the server can be told.
#[derive(Clone, Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    /// Ring timeout for calls that don't set one (1–600 s).
    pub ring_timeout_secs: u32,
    pub heartbeat: Duration,
    /// A socket with nothing received for this long is dead.
    pub dead_after: Duration,
    pub calls_per_minute: u32,
    pub requests_per_second: u32,
    /// Sign-in attempts a minute for one user.
    pub logins_per_user_per_minute: u32,
    /// Sign-in attempts a minute from one source address.
    pub logins_per_address_per_minute: u32,
    /// Most event sockets open at once (each holds a file descriptor).
    pub max_connections: usize,
    /// Connections of any kind: in total, per source address, idle timeouts.
    pub conn_limits: conns::ConnLimits,
    /// How long a sign-in waits for a free password check before `rate_limited`.
    pub login_queue_deadline: Duration,
    /// How long a bearer token is accepted after sign-in.
    pub token_ttl_ms: i64,
    /// STUN/TURN servers for media; none by default (host candidates only).
    pub ice: turn::IceConfig,
}

impl Config {
    pub fn new(data_dir: PathBuf) -> Self {
        Config {
            data_dir,
            ring_timeout_secs: l::DEFAULT_RING_TIMEOUT_SECS,
            heartbeat: Duration::from_millis(l::HEARTBEAT_MS),
            dead_after: Duration::from_millis(l::DEAD_AFTER_MS),
            calls_per_minute: l::CALLS_PER_MINUTE,
            requests_per_second: l::REQUESTS_PER_SECOND,
            logins_per_user_per_minute: limits::LOGINS_PER_USER_PER_MINUTE,
            logins_per_address_per_minute: limits::LOGINS_PER_ADDRESS_PER_MINUTE,
            max_connections: 16_000,
            conn_limits: conns::ConnLimits::default(),
            login_queue_deadline: Duration::from_secs(2),
            token_ttl_ms: auth::TOKEN_TTL_MS,
            ice: turn::IceConfig {
                turn_ttl_secs: 3_600,
                ..turn::IceConfig::default()
            },
        }
    }

    /// The default data directory: `$XDG_DATA_HOME/peal` (or the platform's equivalent).
    pub fn default_data_dir() -> PathBuf {
        dirs::data_dir()
            .unwrap_or_else(|| PathBuf::from("."))
            .join("peal")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("ring timeout {0} s is out of range 1-600 s")]
    RingTimeout(u32),
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub switchboard: Switchboard,
    pub hub: Arc<Hub>,
    pub clock: SharedClock,
    pub limits: Arc<Limits>,
    pub tokens: Arc<auth::TokenCache>,
    pub token_ttl_ms: i64,
    /// Tokens signed out, so the event sockets opened with them close.
    pub signed_out: tokio::sync::broadcast::Sender<Vec<u8>>,
    pub connections: Arc<Semaphore>,
    pub passwords: passwords::Verifier,
    pub ring_timeout_secs: u32,
    pub heartbeat: Duration,
    pub dead_after: Duration,
    pub shutdown: watch::Receiver<bool>,
    pub ice: Arc<turn::IceConfig>,
}

/// An opened server, ready to [`Server::run`].
pub struct Server {
    state: AppState,
    shutdown_tx: watch::Sender<bool>,
    task: switchboard::Task,
    sqlite: SqliteStore,
    gate: Arc<conns::Gate>,
}

impl Server {
    /// Opens the database in `config.data_dir` and restores live calls.
    pub async fn open(config: Config, clock: SharedClock) -> Result<Server, StartError> {
        let (lo, hi) = l::SERVER_RING_TIMEOUT_SECS;
        if !(lo..=hi).contains(&config.ring_timeout_secs) {
            return Err(StartError::RingTimeout(config.ring_timeout_secs));
        }
        let sqlite = SqliteStore::open(&config.data_dir).await?;
        let store: Arc<dyn Store> = Arc::new(sqlite.clone());
        let hub = Arc::new(Hub::new(auth::random_id(8)));
        let (switchboard, task) =
            switchboard::start(store.clone(), hub.clone(), clock.clone()).await?;
        let (shutdown_tx, shutdown) = watch::channel(false);
        let state = AppState {
            store,
            switchboard,
            hub,
            clock,
            limits: Arc::new(Limits::with_logins(
                config.calls_per_minute,
                config.requests_per_second,
                config.logins_per_user_per_minute,
                config.logins_per_address_per_minute,
            )),
            tokens: Arc::new(auth::TokenCache::default()),
            token_ttl_ms: config.token_ttl_ms,
            signed_out: tokio::sync::broadcast::channel(64).0,
            connections: Arc::new(Semaphore::new(config.max_connections)),
            passwords: passwords::Verifier::for_this_machine(config.login_queue_deadline),
            ring_timeout_secs: config.ring_timeout_secs,
            heartbeat: config.heartbeat,
            dead_after: config.dead_after,
            shutdown,
            ice: Arc::new(config.ice),
        };
        Ok(Server {
            state,
            shutdown_tx,
            task,
            sqlite,
            gate: conns::Gate::new(config.conn_limits),
        })
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Connections open now (any kind).
    pub fn gate(&self) -> Arc<conns::Gate> {
        self.gate.clone()
    }

    /// The HTTP surface (testable with `oneshot`, no socket needed).
    pub fn router(&self) -> Router {
        router(self.state.clone())
    }

    /// Serves on `listener` until `shutdown` resolves, then closes every event
    /// socket with a retryable code (1012) and waits for in-flight work.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.serve(listener, None, shutdown).await
    }

    /// [`Server::run`] over TLS.
    pub async fn run_tls(
        self,
        listener: TcpListener,
        tls: Arc<tokio_rustls::rustls::ServerConfig>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        self.serve(listener, Some(acceptor), shutdown).await
    }

    async fn serve(
        self,
        listener: TcpListener,
        tls: Option<tokio_rustls::TlsAcceptor>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(addr = ?listener.local_addr().ok(), tls = tls.is_some(), "serving");
        let Server {
            state,
            shutdown_tx,
            task,
            sqlite,
            gate,
        } = self;
        let board = tokio::spawn(task.run());
        let app = router(state.clone());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            let _ = shutdown_tx.send(true);
            let _ = stop_tx.send(());
        };
        let serve = conns::serve(listener, tls, app, gate, async move {
            let _ = stop_rx.await;
        });
        let (r, ()) = tokio::join!(serve, signal);
        // Let sockets say goodbye, then stop the switchboard.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while state.hub.connected() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(state);
        let _ = tokio::time::timeout(Duration::from_secs(3), board).await;
        sqlite.close().await;
        r
    }

    /// Adds a user (admin).
    pub async fn add_user(&self, uid: &str, name: &str, password: &str) -> Result<(), AdminError> {
        add_user(
            self.state.store.as_ref(),
            self.state.clock.now(),
            uid,
            name,
            password,
        )
        .await
    }

    /// Adds a group (admin).
    pub async fn add_group(
        &self,
        guid: &str,
        name: &str,
        members: &[&str],
    ) -> Result<(), AdminError> {
        add_group(
            self.state.store.as_ref(),
            self.state.clock.now(),
            guid,
            name,
            members,
        )
        .await
    }
}

/// The routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/login", post(api::login))
        .route("/v1/join", post(api::join))
        .route("/v1/invites/{code}", get(api::check_invite))
        .route("/join", get(api::join_page))
        .route("/v1/logout", post(api::logout))
        .route("/v1/me", get(api::me))
        .route("/v1/devices", get(api::devices))
        .route("/v1/devices/{id}/sign-out", post(api::sign_out_device))
        .route("/v1/contacts", get(api::contacts))
        .route("/v1/groups", get(api::groups))
        .route("/v1/calls", post(api::initiate))
        .route("/v1/calls/{id}", get(api::get_call))
        .route("/v1/calls/{id}/accept", post(api::accept))
        .route("/v1/calls/{id}/reject", post(api::reject))
        .route("/v1/calls/{id}/end", post(api::end))
        .route("/v1/history", get(api::history))
        .route("/v1/ice-servers", get(api::ice_servers))
        .route("/v1/events", get(ws::events))
        .layer(DefaultBodyLimit::max(l::MAX_BODY_BYTES))
        .with_state(state)
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// What every new account must be, however it is made (an admin, an
/// invite): the problem, said for the person choosing.
pub fn check_account(uid: &str, name: &str, password: &str) -> Result<(), String> {
    if !peal_proto::ids::is_valid_id(uid) {
        return Err(format!(
            "invalid user id {uid:?}: use 1-64 of A-Z a-z 0-9 _ . -"
        ));
    }
    if name.trim().is_empty() || name.len() > 128 {
        return Err("name must be 1-128 characters".into());
    }
    if password.is_empty() || password.len() > 1024 {
        return Err("password must be 1-1024 bytes".into());
    }
    Ok(())
}

/// Makes an invite that allows `uses` accounts for `lifetime_ms` from `now`;
/// the invite and its code (shown once, stored only hashed).
pub async fn add_invite(
    store: &dyn Store,
    now: peal_proto::Millis,
    uses: u32,
    lifetime_ms: i64,
) -> Result<(invites::Invite, String), AdminError> {
    if !(1..=invites::MAX_USES).contains(&uses) {
        return Err(AdminError::Invalid(format!(
            "an invite allows 1-{} uses",
            invites::MAX_USES
        )));
    }
    if !(1..=invites::MAX_EXPIRES_MS).contains(&lifetime_ms) {
        return Err(AdminError::Invalid(
            "an invite lasts at most 365 days".into(),
        ));
    }
    let code = auth::random_id(invites::CODE_BYTES);
    let invite = invites::Invite {
        id: auth::random_id(invites::ID_BYTES),
        created_at: now,
        expires_at: now.plus(lifetime_ms),
        uses,
        used: 0,
        revoked_at: None,
    };
    store
        .add_invite(invite.clone(), auth::token_hash(&code))
        .await?;
    Ok((invite, code))
}

/// Adds a user with an Argon2id-hashed password.
pub async fn add_user(
    store: &dyn Store,
    now: peal_proto::Millis,
    uid: &str,
    name: &str,
    password: &str,
) -> Result<(), AdminError> {
    check_account(uid, name, password).map_err(AdminError::Invalid)?;
    let hash = auth::hash_password(password).map_err(|e| AdminError::Invalid(e.body.message))?;
    store
        .add_user(UserId::from(uid), name.trim().to_owned(), hash, now)
        .await?;
    Ok(())
}

/// Adds a group of existing users.
pub async fn add_group(
    store: &dyn Store,
    now: peal_proto::Millis,
    guid: &str,
    name: &str,
    members: &[&str],
) -> Result<(), AdminError> {
    if !peal_proto::ids::is_valid_id(guid) {
        return Err(AdminError::Invalid(format!(
            "invalid group id {guid:?}: use 1-64 of A-Z a-z 0-9 _ . -"
        )));
    }
    if name.trim().is_empty() || name.len() > 128 {
        return Err(AdminError::Invalid("name must be 1-128 characters".into()));
    }
    if members.len() < 2 {
        return Err(AdminError::Invalid(
            "a group needs at least two members".into(),
        ));
    }
    let members = members.iter().map(|m| UserId::from(*m)).collect();
    store
        .add_group(GroupId::from(guid), name.trim().to_owned(), members, now)
        .await?;
    Ok(())
}
