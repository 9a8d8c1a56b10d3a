//! [`PealClient`]: sign in, place and answer calls, read history and contacts.

use crate::error::ClientError;
use crate::listener::{dispatch, CallListener, ClientEvent, EventStream};
use crate::resume::Known;
use crate::stream;
use peal_proto::error::ErrorEnvelope;
use peal_proto::wire::{
    CallInfo, CallResponse, CallType, Contact, DeviceInfo, Event, EventKind, GroupInfo,
    HistoryEntry, LoginResponse, Party, ReceiverType, RejectStatus, Role,
};
use peal_proto::{DeviceId, ErrorCode, SessionId, UserId};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Extra attempts for a call action that could not reach the server (200, 400, 800 ms apart).
const ACTION_RETRIES: u32 = 3;

/// How long one HTTP request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Where and who to sign in as.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// `http://host:port` or `https://host:port`.
    pub server: String,
    pub uid: String,
    pub password: String,
    /// This device's name; the same name is the same device.
    pub device: String,
    /// Extra trusted root certificates (PEM), for a server with a private CA
    /// or a self-signed certificate; the public web roots are always trusted.
    pub root_certificates_pem: Option<Vec<u8>>,
}

/// How [`PealClient::open`] gets its session.
enum Entry {
    /// Signs in with the config's password.
    Password,
    /// A session kept from before.
    Session(LoginResponse),
    /// Makes the account with an invite, then signs in.
    Invite { code: String, name: String },
}

/// The server's base URL and an HTTP client for it (with its TLS roots).
fn http_client(
    config: &ClientConfig,
) -> Result<
    (
        String,
        reqwest::Client,
        Arc<tokio_rustls::rustls::ClientConfig>,
    ),
    ClientError,
> {
    let base = config.server.trim_end_matches('/').to_owned();
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(ClientError::Protocol(format!(
            "server must be an http:// or https:// URL, not {base:?}"
        )));
    }
    let tls = crate::tls::client_config(config.root_certificates_pem.as_deref())?;
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        // The server closes a keep-alive connection idle for 10 s; let go
        // of it first, so no request is ever sent on one it is closing.
        .pool_idle_timeout(Duration::from_secs(8))
        .use_preconfigured_tls((*tls).clone())
        .build()
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    Ok((base, http, tls))
}

/// `s` with every byte outside `[A-Za-z0-9_-]` percent-encoded, for a path segment.
fn url_path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl ClientConfig {
    pub fn new(
        server: impl Into<String>,
        uid: impl Into<String>,
        password: impl Into<String>,
        device: impl Into<String>,
    ) -> Self {
        ClientConfig {
            server: server.into(),
            uid: uid.into(),
            password: password.into(),
            device: device.into(),
            root_certificates_pem: None,
        }
    }

    /// Also trusts the root certificates in `pem`.
    pub fn with_root_certificates_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificates_pem = Some(pem.into());
        self
    }
}

/// A call to place (the seed SDK's `Call(receiverID, receiverType, callType)`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub receiver: String,
    pub receiver_type: ReceiverType,
    pub call_type: CallType,
    /// Ring timeout in seconds (5–180); the server's default when `None`.
    pub timeout: Option<u32>,
}

impl Call {
    pub fn new(
        receiver: impl Into<String>,
        receiver_type: ReceiverType,
        call_type: CallType,
    ) -> Self {
        Call {
            receiver: receiver.into(),
            receiver_type,
            call_type,
            timeout: None,
        }
    }

    /// Rings for `secs` seconds at most.
    pub fn timeout(mut self, secs: u32) -> Self {
        self.timeout = Some(secs);
        self
    }
}

/// A signed-in device. Cheap to clone; the event connection lives until the
/// last clone is dropped or [`PealClient::close`] is called.
#[derive(Clone)]
pub struct PealClient {
    pub(crate) inner: Arc<Inner>,
    /// Held only by the application's clones (the event task holds `inner`,
    /// not this), so dropping the last clone stops the task.
    task: Arc<TaskGuard>,
}

/// Aborts the event task when the last [`PealClient`] clone goes away.
#[derive(Default)]
struct TaskGuard(Mutex<Option<JoinHandle<()>>>);

impl TaskGuard {
    fn stop(&self) {
        if let Some(t) = lock(&self.0).take() {
            t.abort();
        }
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for PealClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PealClient")
            .field("user", &self.inner.user.uid)
            .field("device", &self.inner.device_id)
            .finish()
    }
}

pub(crate) struct Inner {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) token: String,
    pub(crate) device_id: DeviceId,
    pub(crate) user: Party,
    pub(crate) tls: Arc<tokio_rustls::rustls::ClientConfig>,
    listeners: Mutex<Vec<(String, Arc<dyn CallListener>)>>,
    subscribers: Mutex<Vec<mpsc::UnboundedSender<ClientEvent>>>,
    /// Calls this device believes live, for reconciling a snapshot.
    pub(crate) known: Mutex<HashMap<SessionId, Known>>,
    /// The rings this device is hearing right now, oldest first: a listener or
    /// stream added later hears these first, so no ring is missed for having
    /// subscribed after `connect` returned.
    rings: Mutex<Vec<Event>>,
    /// Held while an event is delivered, so every listener and stream sees
    /// every event once and in order (see [`Inner::delivering`]).
    delivery: Mutex<()>,
    /// Users whose presence we watch; re-sent after every reconnect.
    watching: Mutex<Vec<UserId>>,
    /// Frames for the live event socket, while there is one.
    outbox: Mutex<Option<mpsc::UnboundedSender<peal_proto::wire::ClientFrame>>>,
}

thread_local! {
    /// Set while this thread delivers an event (see `Inner::delivering`).
    static DELIVERING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn unreachable(e: reqwest::Error) -> ClientError {
    // reqwest's own text is "error sending request"; the cause says why.
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    ClientError::Unreachable(msg)
}

/// Sends a request and decodes `T`, or the server's typed error.
pub(crate) async fn send<T: DeserializeOwned>(
    req: reqwest::RequestBuilder,
) -> Result<T, ClientError> {
    let bytes = send_bytes(req).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ClientError::Protocol(format!("unexpected answer: {e}")))
}

/// Sends `req`; the body of a success, or the typed error of a refusal.
async fn send_bytes(req: reqwest::RequestBuilder) -> Result<Vec<u8>, ClientError> {
    let resp = req
        .timeout(REQUEST_TIMEOUT)
        .send()
        .await
        .map_err(unreachable)?;
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(unreachable)?;
    if status.is_success() {
        return Ok(bytes.to_vec());
    }
    match serde_json::from_slice::<ErrorEnvelope>(&bytes) {
        Ok(env) if env.error.code == ErrorCode::Unauthorized => {
            Err(ClientError::Unauthorized(env.error.message))
        }
        Ok(env) => Err(ClientError::Refused(env.error)),
        Err(_) => Err(ClientError::Protocol(format!(
            "HTTP {status} without an error body"
        ))),
    }
}

impl Inner {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Runs `f` as the only delivery in progress. A listener that calls back
    /// into the client (adds a listener, opens a stream) from inside a callback
    /// is already inside the delivery, so it proceeds instead of deadlocking.
    fn delivering<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Reset;
        impl Drop for Reset {
            fn drop(&mut self) {
                DELIVERING.with(|d| d.set(false));
            }
        }
        if DELIVERING.with(|d| d.get()) {
            return f();
        }
        let _guard = lock(&self.delivery);
        DELIVERING.with(|d| d.set(true));
        let _reset = Reset;
        f()
    }

    /// Delivers one event: bookkeeping, listeners, streams — in that order.
    pub(crate) fn emit(&self, ev: ClientEvent) {
        self.delivering(|| {
            if let ClientEvent::Call(e) = &ev {
                self.track(e);
                let listeners: Vec<Arc<dyn CallListener>> = lock(&self.listeners)
                    .iter()
                    .map(|(_, l)| l.clone())
                    .collect();
                for l in listeners {
                    dispatch(l.as_ref(), e);
                }
            }
            lock(&self.subscribers).retain(|tx| tx.send(ev.clone()).is_ok());
        })
    }

    /// Keeps `known` and `rings` true to what this device has been told.
    fn track(&self, e: &Event) {
        let mut known = lock(&self.known);
        let id = e.call.session_id.clone();
        let mut rings = lock(&self.rings);
        match e.event {
            EventKind::IncomingCallReceived => {
                let k = Known {
                    ringing: true,
                    outgoing: false,
                    answered: false,
                };
                known.insert(id.clone(), k);
                rings.retain(|r| r.call.session_id != id);
                rings.push(e.clone());
            }
            EventKind::OutgoingCallAccepted => {
                let fresh = Known {
                    ringing: false,
                    outgoing: true,
                    answered: false,
                };
                known.entry(id).or_insert(fresh).answered = true;
            }
            EventKind::ParticipantJoined | EventKind::ParticipantLeft => {}
            EventKind::IncomingCallCancelled
            | EventKind::CallEndedMessageReceived
            | EventKind::OutgoingCallRejected => {
                known.remove(&id);
                rings.retain(|r| r.call.session_id != id);
            }
        }
    }

    /// Installs (or clears) the live socket's outbox; returns what we watch.
    pub(crate) fn set_outbox(
        &self,
        tx: Option<mpsc::UnboundedSender<peal_proto::wire::ClientFrame>>,
    ) -> Vec<UserId> {
        *lock(&self.outbox) = tx;
        lock(&self.watching).clone()
    }

    /// Records what our own action did to a call.
    fn note_own(&self, call: &CallInfo) {
        // Whatever we did (answered, declined, placed), this call no longer rings here.
        self.delivering(|| lock(&self.rings).retain(|r| r.call.session_id != call.session_id));
        let mut known = lock(&self.known);
        if !call.status.is_live() {
            known.remove(&call.session_id);
            return;
        }
        let me = call.participants.iter().find(|p| p.uid == self.user.uid);
        let outgoing = me.is_some_and(|p| p.role == Role::Caller);
        let in_call = me.is_some_and(|p| p.state == peal_proto::wire::ParticipantState::Joined);
        if in_call {
            known.insert(
                call.session_id.clone(),
                Known {
                    ringing: false,
                    outgoing,
                    answered: call.status == peal_proto::wire::Status::Ongoing,
                },
            );
        } else {
            known.remove(&call.session_id);
        }
    }
}

impl PealClient {
    /// Signs in, opens the event connection and returns once it has caught up,
    /// so nothing that happens after this returns can be missed.
    pub async fn connect(config: ClientConfig) -> Result<PealClient, ClientError> {
        let client = PealClient::sign_in(config).await?;
        client.start_events().await?;
        Ok(client)
    }

    /// Opens the event connection and waits until it has caught up.
    async fn start_events(&self) -> Result<(), ClientError> {
        let (handle, ready) = stream::spawn(&self.inner);
        *lock(&self.task.0) = Some(handle);
        match tokio::time::timeout(REQUEST_TIMEOUT, ready).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(_)) => Err(ClientError::Unreachable(
                "the event connection ended before it was ready".into(),
            )),
            Err(_) => Err(ClientError::Unreachable(
                "the event connection did not open in time".into(),
            )),
        }
    }

    /// Signs in for requests only, without the event connection (no events,
    /// nothing rings): for one-shot actions such as `peal accept ID`.
    pub async fn sign_in(config: ClientConfig) -> Result<PealClient, ClientError> {
        PealClient::open(config, Entry::Password).await
    }

    /// Makes the account an invite allows (`config`'s user id and password,
    /// `name` as others see it), signs this device in and opens the event
    /// connection, like [`PealClient::connect`]. The code is the `invite`
    /// of a `peal:join` link. Refused with `invite_invalid` (unknown,
    /// expired, used up, revoked) or `user_exists`, the message saying which.
    pub async fn join(
        config: ClientConfig,
        invite: &str,
        name: &str,
    ) -> Result<PealClient, ClientError> {
        let entry = Entry::Invite {
            code: invite.to_owned(),
            name: name.to_owned(),
        };
        let client = PealClient::open(config, entry).await?;
        client.start_events().await?;
        Ok(client)
    }

    /// Whether the invite `code` can still make an account on `server`:
    /// `Ok(())`, or the server's `invite_invalid` saying why.
    pub async fn check_invite(config: &ClientConfig, code: &str) -> Result<(), ClientError> {
        let (base, http, _) = http_client(config)?;
        let code = url_path_segment(code);
        send_bytes(http.get(format!("{base}/v1/invites/{code}")))
            .await
            .map(drop)
    }

    /// Like [`PealClient::connect`], but with a session this device already
    /// holds (from [`PealClient::session`]) instead of the password: no
    /// sign-in request, no password check on the server.
    pub async fn connect_with_session(
        config: ClientConfig,
        session: LoginResponse,
    ) -> Result<PealClient, ClientError> {
        let client = PealClient::open(config, Entry::Session(session)).await?;
        client.start_events().await?;
        Ok(client)
    }

    /// This device's session (token, device, user), to resume later with
    /// [`PealClient::connect_with_session`]. The token is a secret.
    pub fn session(&self) -> LoginResponse {
        LoginResponse {
            token: self.inner.token.clone(),
            device_id: self.inner.device_id.clone(),
            user: self.inner.user.clone(),
        }
    }

    async fn open(config: ClientConfig, entry: Entry) -> Result<PealClient, ClientError> {
        let (base, http, tls) = http_client(&config)?;
        let login: LoginResponse =
            match entry {
                Entry::Session(s) => s,
                Entry::Password => send(http.post(format!("{base}/v1/login")).json(
                    &serde_json::json!({
                        "uid": config.uid, "password": config.password, "device": config.device,
                    }),
                ))
                .await?,
                Entry::Invite { code, name } => {
                    send(
                        http.post(format!("{base}/v1/join"))
                            .json(&serde_json::json!({
                                "invite": code, "uid": config.uid, "name": name,
                                "password": config.password, "device": config.device,
                            })),
                    )
                    .await?
                }
            };
        let inner = Arc::new(Inner {
            http,
            base,
            token: login.token,
            device_id: login.device_id,
            user: login.user,
            tls,
            listeners: Mutex::new(Vec::new()),
            subscribers: Mutex::new(Vec::new()),
            known: Mutex::new(HashMap::new()),
            rings: Mutex::new(Vec::new()),
            delivery: Mutex::new(()),
            watching: Mutex::new(Vec::new()),
            outbox: Mutex::new(None),
        });
        Ok(PealClient {
            inner,
            task: Arc::new(TaskGuard::default()),
        })
    }

    /// The signed-in user.
    pub fn user(&self) -> &Party {
        &self.inner.user
    }

    pub fn user_id(&self) -> &UserId {
        &self.inner.user.uid
    }

    pub fn device_id(&self) -> &DeviceId {
        &self.inner.device_id
    }

    /// Registers a listener under `id` (replacing one with the same id).
    /// Registers a listener under `id` (replacing one with the same id). It
    /// first hears every call ringing this device right now, then every event.
    pub fn add_call_listener(&self, id: &str, listener: Arc<dyn CallListener>) {
        self.inner.delivering(|| {
            {
                let mut l = lock(&self.inner.listeners);
                l.retain(|(k, _)| k != id);
                l.push((id.to_owned(), listener.clone()));
            }
            let rings = lock(&self.inner.rings).clone();
            for e in &rings {
                dispatch(listener.as_ref(), e);
            }
        })
    }

    pub fn remove_call_listener(&self, id: &str) {
        lock(&self.inner.listeners).retain(|(k, _)| k != id);
    }

    /// Every call ringing this device right now, then every event from now
    /// on, in order, as a `Stream`.
    pub fn events(&self) -> EventStream {
        let (tx, rx) = mpsc::unbounded_channel();
        self.inner.delivering(|| {
            for e in lock(&self.inner.rings).iter() {
                let _ = tx.send(ClientEvent::Call(e.clone()));
            }
            lock(&self.inner.subscribers).push(tx);
        });
        EventStream { rx }
    }

    /// Hears the presence of `uids` (replacing what was watched) as
    /// [`ClientEvent::Presence`]: their current presence at once, then every
    /// change, and again after every reconnect.
    pub fn watch_presence(&self, uids: Vec<UserId>) -> Result<(), ClientError> {
        if uids.len() > peal_proto::wire::MAX_WATCHED {
            return Err(ClientError::Refused(peal_proto::ErrorBody::new(
                ErrorCode::BadRequest,
                format!("watch at most {} users", peal_proto::wire::MAX_WATCHED),
            )));
        }
        *lock(&self.inner.watching) = uids.clone();
        if let Some(tx) = lock(&self.inner.outbox).as_ref() {
            let _ = tx.send(peal_proto::wire::ClientFrame::WatchPresence { uids });
        }
        Ok(())
    }

    /// Sends a media-negotiation message to `to` in `call` over the event
    /// socket (to `to_device` when given, else to the device `to` is in the
    /// call with). Not retried: if the socket is down the caller hears
    /// `Unreachable` and renegotiates once it is back. A refusal arrives as
    /// [`ClientEvent::Refused`].
    pub fn send_media(
        &self,
        call: &SessionId,
        to: &UserId,
        to_device: Option<&DeviceId>,
        signal: peal_proto::wire::MediaSignal,
    ) -> Result<(), ClientError> {
        let frame = peal_proto::wire::ClientFrame::Media {
            call: call.clone(),
            to: to.clone(),
            to_device: to_device.cloned(),
            signal,
        };
        match lock(&self.inner.outbox).as_ref() {
            Some(tx) if tx.send(frame).is_ok() => Ok(()),
            Some(_) | None => Err(ClientError::Unreachable(
                "the event socket is not connected".into(),
            )),
        }
    }

    /// The STUN/TURN servers to gather with (TURN credentials expire; fetch per call).
    pub async fn ice_servers(&self) -> Result<peal_proto::wire::IceServers, ClientError> {
        send(
            self.inner
                .http
                .get(self.inner.url("/v1/ice-servers"))
                .bearer_auth(&self.inner.token),
        )
        .await
    }

    /// The calls ringing this device right now, oldest first.
    pub fn ringing(&self) -> Vec<CallInfo> {
        self.inner.delivering(|| {
            lock(&self.inner.rings)
                .iter()
                .map(|e| e.call.clone())
                .collect()
        })
    }

    /// Sends a call action with an idempotency key, retrying a few times if
    /// the server could not be reached: the key makes a retry whose first
    /// attempt did arrive get that attempt's answer instead of acting twice.
    async fn call_action(&self, req: reqwest::RequestBuilder) -> Result<CallInfo, ClientError> {
        let key = {
            use rand::Rng;
            format!("{:032x}", rand::thread_rng().gen::<u128>())
        };
        let req = req
            .bearer_auth(&self.inner.token)
            .header("idempotency-key", key);
        let mut attempt = 0u32;
        let r: CallResponse = loop {
            let Some(this) = req.try_clone() else {
                break send(req).await?;
            };
            match send(this).await {
                Err(ClientError::Unreachable(_)) if attempt < ACTION_RETRIES => {
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                    attempt += 1;
                }
                other => break other?,
            }
        };
        self.inner.note_own(&r.call);
        Ok(r.call)
    }

    /// Places a call. Calling someone who is calling you answers their call (glare).
    pub async fn initiate_call(&self, call: Call) -> Result<CallInfo, ClientError> {
        let body = serde_json::json!({
            "receiver": call.receiver, "receiver_type": call.receiver_type, "call_type": call.call_type, "timeout": call.timeout,
        });
        self.call_action(
            self.inner
                .http
                .post(self.inner.url("/v1/calls"))
                .json(&body),
        )
        .await
    }

    pub async fn accept_call(&self, session_id: &SessionId) -> Result<CallInfo, ClientError> {
        self.call_action(
            self.inner
                .http
                .post(self.inner.url(&format!("/v1/calls/{session_id}/accept"))),
        )
        .await
    }

    /// Declines (`Rejected`, `Busy`) or, for the caller, cancels (`Cancelled`).
    pub async fn reject_call(
        &self,
        session_id: &SessionId,
        status: RejectStatus,
    ) -> Result<CallInfo, ClientError> {
        let req = self
            .inner
            .http
            .post(self.inner.url(&format!("/v1/calls/{session_id}/reject")))
            .json(&serde_json::json!({ "status": status }));
        self.call_action(req).await
    }

    /// Hangs up `session_id` as its state needs: cancels it while it still
    /// rings out, ends (leaves) it once ongoing. If it was answered between
    /// the look and the cancel (`invalid_state`), it is ended instead.
    pub async fn hang_up(&self, session_id: &SessionId) -> Result<CallInfo, ClientError> {
        let now = self.get_call(session_id).await?;
        if now.status != peal_proto::wire::Status::Initiated {
            return self.end_call(session_id).await;
        }
        match self.cancel_call(session_id).await {
            Err(e) if e.code() == Some(ErrorCode::InvalidState) => self.end_call(session_id).await,
            other => other,
        }
    }

    /// Cancels your call before it is answered.
    pub async fn cancel_call(&self, session_id: &SessionId) -> Result<CallInfo, ClientError> {
        self.reject_call(session_id, RejectStatus::Cancelled).await
    }

    /// Ends an ongoing call (leaves it, in a group).
    pub async fn end_call(&self, session_id: &SessionId) -> Result<CallInfo, ClientError> {
        self.call_action(
            self.inner
                .http
                .post(self.inner.url(&format!("/v1/calls/{session_id}/end"))),
        )
        .await
    }

    pub async fn get_call(&self, session_id: &SessionId) -> Result<CallInfo, ClientError> {
        let r: CallResponse = send(
            self.inner
                .http
                .get(self.inner.url(&format!("/v1/calls/{session_id}")))
                .bearer_auth(&self.inner.token),
        )
        .await?;
        Ok(r.call)
    }

    /// Your calls, newest first.
    pub async fn history(&self, limit: u32) -> Result<Vec<HistoryEntry>, ClientError> {
        send(
            self.inner
                .http
                .get(self.inner.url(&format!("/v1/history?limit={limit}")))
                .bearer_auth(&self.inner.token),
        )
        .await
    }

    pub async fn contacts(&self) -> Result<Vec<Contact>, ClientError> {
        send(
            self.inner
                .http
                .get(self.inner.url("/v1/contacts"))
                .bearer_auth(&self.inner.token),
        )
        .await
    }

    pub async fn groups(&self) -> Result<Vec<GroupInfo>, ClientError> {
        send(
            self.inner
                .http
                .get(self.inner.url("/v1/groups"))
                .bearer_auth(&self.inner.token),
        )
        .await
    }

    /// This user's devices, newest sign-in first (`current` marks this one).
    pub async fn devices(&self) -> Result<Vec<DeviceInfo>, ClientError> {
        send(
            self.inner
                .http
                .get(self.inner.url("/v1/devices"))
                .bearer_auth(&self.inner.token),
        )
        .await
    }

    /// Signs `device` (one of this user's) out everywhere: its event
    /// connection closes and its token stops working. The devices after.
    pub async fn sign_out_device(&self, device: &DeviceId) -> Result<Vec<DeviceInfo>, ClientError> {
        send(
            self.inner
                .http
                .post(self.inner.url(&format!("/v1/devices/{device}/sign-out")))
                .bearer_auth(&self.inner.token),
        )
        .await
    }

    /// Revokes this device's token and closes the event connection.
    pub async fn logout(&self) -> Result<(), ClientError> {
        let resp = self
            .inner
            .http
            .post(self.inner.url("/v1/logout"))
            .bearer_auth(&self.inner.token)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(unreachable)?;
        self.close();
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(ClientError::Protocol(format!(
                "logout answered HTTP {}",
                resp.status()
            )))
        }
    }

    /// Closes the event connection now.
    pub fn close(&self) {
        self.task.stop();
    }
}
