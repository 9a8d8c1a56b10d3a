//! Test support: a real `peal-server` on a loopback port with a real SQLite
//! file in a temporary directory and a manual clock, and raw protocol devices
//! (reqwest for requests, tokio-tungstenite for the event socket).
//!
//! Scenario tests read like the spec; this module keeps the plumbing out of them.

pub mod across;
pub mod cli;
pub mod notifications;
pub mod sound;
pub mod wine;

use futures_util::{SinkExt, StreamExt};
use peal_proto::error::ErrorEnvelope;
use peal_proto::wire::{
    CallInfo, CallResponse, CallType, Contact, Event, EventKind, HistoryEntry, LoginResponse,
    ReceiverType, RejectStatus, ServerFrame,
};
use peal_proto::{ErrorBody, ErrorCode, Millis};
use peal_server::clock::{Clock, ManualClock};
use peal_server::{Config, Server};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A binary of this workspace, next to the test executable (`make test`
/// builds them all first with `cargo build --workspace --bins`).
pub fn bin(name: &str) -> PathBuf {
    let mut p = std::env::current_exe().expect("test exe");
    p.pop();
    if p.ends_with("deps") {
        p.pop();
    }
    let p = p.join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        p.display()
    );
    p
}

/// The manual clock starts here (2026-09-21T…Z).
pub const T0: Millis = Millis(1_790_000_000_000);
/// How long a test waits for something that should happen.
pub const PATIENCE: Duration = Duration::from_secs(10);
/// The demo password of every user the tests create.
pub const PASSWORD: &str = "pw";

/// A server on 127.0.0.1:0 with users alice, bob, carol, dave and the group
/// `team` (all four).
pub struct TestServer {
    pub addr: SocketAddr,
    pub base: String,
    pub clock: ManualClock,
    pub dir: Arc<tempfile::TempDir>,
    /// The server's connection counts (any kind of connection).
    pub gate: Arc<peal_server::conns::Gate>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// Starts with a config tweak (short heartbeats, low limits…).
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let clock = ManualClock::new(T0);
        let s = TestServer::open(dir.clone(), clock, tweak).await;
        s.seed(&["alice", "bob", "carol", "dave"]).await;
        s.add_group("team", &["alice", "bob", "carol", "dave"])
            .await;
        s
    }

    /// Opens a server on an existing data directory (a restart).
    pub async fn open(
        dir: Arc<tempfile::TempDir>,
        clock: ManualClock,
        tweak: impl FnOnce(&mut Config),
    ) -> TestServer {
        let mut config = Config::new(dir.path().to_path_buf());
        tweak(&mut config);
        let server = Server::open(config, Arc::new(clock.clone()))
            .await
            .expect("server opens");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let gate = server.gate();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(listener, async move {
            let _ = rx.await;
        }));
        TestServer {
            addr,
            base: format!("http://{addr}"),
            clock,
            dir,
            gate,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Adds users (password [`PASSWORD`], name = capitalised uid) straight into the store.
    pub async fn seed(&self, uids: &[&str]) {
        let store = peal_server::store::SqliteStore::open(self.dir.path())
            .await
            .expect("store");
        for uid in uids {
            let mut name = uid.to_string();
            name[..1].make_ascii_uppercase();
            peal_server::add_user(&store, T0, uid, &name, PASSWORD)
                .await
                .expect("user added");
        }
        store.close().await;
    }

    pub async fn add_group(&self, guid: &str, members: &[&str]) {
        let store = peal_server::store::SqliteStore::open(self.dir.path())
            .await
            .expect("store");
        let mut name = guid.to_string();
        name[..1].make_ascii_uppercase();
        peal_server::add_group(&store, T0, guid, &name, members)
            .await
            .expect("group added");
        store.close().await;
    }

    /// Makes an invite as `peal-server invite` does, at the server's time:
    /// the invite and its code.
    pub async fn add_invite(
        &self,
        uses: u32,
        lifetime_ms: i64,
    ) -> (peal_server::invites::Invite, String) {
        let store = peal_server::store::SqliteStore::open(self.dir.path())
            .await
            .expect("store");
        let made = peal_server::add_invite(&store, self.clock.now(), uses, lifetime_ms)
            .await
            .expect("invite made");
        store.close().await;
        made
    }

    /// Withdraws an invite as `peal-server invite revoke` does.
    pub async fn revoke_invite(&self, id: &str) {
        let store = peal_server::store::SqliteStore::open(self.dir.path())
            .await
            .expect("store");
        peal_server::store::Store::revoke_invite(&store, id.to_owned(), self.clock.now())
            .await
            .expect("invite revoked");
        store.close().await;
    }

    /// Graceful shutdown; returns what a restart needs.
    pub async fn stop(mut self) -> (Arc<tempfile::TempDir>, ManualClock) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(PATIENCE, t).await;
        }
        (self.dir.clone(), self.clock.clone())
    }

    /// Signs in and opens the event socket; the first hello and snapshot are read.
    pub async fn device(&self, uid: &str, device: &str) -> Device {
        let session = self.login(uid, device).await.expect("login");
        let mut d = Device {
            base: self.base.clone(),
            addr: self.addr,
            token: session.token,
            uid: uid.to_owned(),
            ws: None,
            last_seq: 0,
            epoch: String::new(),
            http: reqwest::Client::new(),
        };
        d.connect(None).await;
        d
    }

    pub async fn login(&self, uid: &str, device: &str) -> Result<LoginResponse, ErrorBody> {
        let r = reqwest::Client::new()
            .post(format!("{}/v1/login", self.base))
            .json(&serde_json::json!({"uid": uid, "password": PASSWORD, "device": device}))
            .send()
            .await
            .expect("server reachable");
        decode(r).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

async fn decode<T: serde::de::DeserializeOwned>(r: reqwest::Response) -> Result<T, ErrorBody> {
    let ok = r.status().is_success();
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    if ok {
        Ok(serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad answer {text}: {e}")))
    } else {
        let env: ErrorEnvelope = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("bad error {status} {text}: {e}"));
        assert_eq!(
            env.error.code.http_status(),
            status,
            "status matches code for {text}"
        );
        Err(env.error)
    }
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One signed-in device speaking the raw protocol.
pub struct Device {
    pub base: String,
    pub addr: SocketAddr,
    pub token: String,
    pub uid: String,
    pub ws: Option<Ws>,
    pub last_seq: u64,
    pub epoch: String,
    pub http: reqwest::Client,
}

/// What a (re)connection brought.
#[derive(Debug)]
pub enum Catchup {
    Replayed(Vec<Event>),
    Snapshot(Vec<CallInfo>),
}

/// An event socket opened by hand over plain TCP (for frames no client
/// library will send): the upgrade is done and the server's greeting read.
pub async fn raw_event_socket(addr: SocketAddr, token: &str) -> TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "GET /v1/events HTTP/1.1\r\nHost: peal\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {token}\r\n\r\n"
    );
    tcp.write_all(req.as_bytes())
        .await
        .expect("upgrade request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(PATIENCE, tcp.read(&mut byte))
            .await
            .expect("upgrade answer within the patience")
            .expect("read");
        assert_eq!(n, 1, "server closed during the upgrade");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "not upgraded: {head}");
    tcp
}

/// A client frame as RFC 6455 lays it out: `first` is FIN/RSV/opcode; masked
/// with a fixed key when `masked` (clients must mask).
pub fn client_frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    assert!(payload.len() < 126, "short frames only");
    let key = [0x12u8, 0x34, 0x56, 0x78];
    let mut f = vec![first, (payload.len() as u8) | if masked { 0x80 } else { 0 }];
    if masked {
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        f.extend_from_slice(payload);
    }
    f
}

/// Reads server frames until a Close and returns its code (`None`: the
/// connection ended without one).
pub async fn read_close_code(tcp: &mut TcpStream) -> Option<u16> {
    use tokio::io::AsyncReadExt;
    async fn exact(tcp: &mut TcpStream, n: usize) -> Option<Vec<u8>> {
        let mut b = vec![0u8; n];
        tcp.read_exact(&mut b).await.ok()?;
        Some(b)
    }
    let read = async {
        loop {
            let h = exact(tcp, 2).await?;
            let opcode = h[0] & 0x0f;
            let len = match h[1] & 0x7f {
                126 => {
                    let b = exact(tcp, 2).await?;
                    usize::from(u16::from_be_bytes([b[0], b[1]]))
                }
                127 => {
                    let b = exact(tcp, 8).await?;
                    usize::try_from(u64::from_be_bytes(b.try_into().ok()?)).ok()?
                }
                n => usize::from(n),
            };
            let payload = exact(tcp, len).await?;
            if opcode == 0x8 {
                return (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
            }
        }
    };
    tokio::time::timeout(PATIENCE, read)
        .await
        .expect("closed within the patience")
}

impl Device {
    /// Opens the event socket with `?since=&epoch=` when `since` is given,
    /// reads hello and the catch-up, and returns the catch-up.
    pub async fn connect(&mut self, since: Option<u64>) -> Catchup {
        let mut url = format!("ws://{}/v1/events", self.addr);
        if let Some(s) = since {
            url.push_str(&format!("?since={s}&epoch={}", self.epoch));
        }
        let mut req = url.into_client_request().expect("request");
        req.headers_mut().insert(
            "authorization",
            format!("Bearer {}", self.token).parse().expect("header"),
        );
        let (ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("event socket opens");
        self.ws = Some(ws);
        match self.frame().await {
            ServerFrame::Hello { epoch, .. } => self.epoch = epoch,
            other => panic!("expected hello, got {other:?}"),
        }
        let mut replayed = Vec::new();
        loop {
            match self.frame().await {
                ServerFrame::Event { seq, event } => {
                    assert_eq!(seq, self.last_seq + 1, "replay is gap-free");
                    self.last_seq = seq;
                    replayed.push(event);
                }
                ServerFrame::Resumed { last_seq } => {
                    assert_eq!(last_seq, self.last_seq);
                    return Catchup::Replayed(replayed);
                }
                ServerFrame::Snapshot { last_seq, calls } => {
                    assert!(replayed.is_empty(), "no replay before a snapshot");
                    self.last_seq = last_seq;
                    return Catchup::Snapshot(calls);
                }
                other => panic!("unexpected frame while catching up: {other:?}"),
            }
        }
    }

    /// Drops the socket without a goodbye.
    pub fn drop_connection(&mut self) {
        self.ws = None;
    }

    /// The next frame (pongs and pings included), failing after [`PATIENCE`].
    pub async fn frame(&mut self) -> ServerFrame {
        let ws = self.ws.as_mut().expect("connected");
        loop {
            let msg = tokio::time::timeout(PATIENCE, ws.next())
                .await
                .expect("a frame within the patience")
                .expect("socket open")
                .expect("socket ok");
            match msg {
                Message::Text(t) => {
                    return serde_json::from_str(t.as_str())
                        .unwrap_or_else(|e| panic!("bad frame {t}: {e}"))
                }
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                Message::Binary(_) => panic!("binary frame from server"),
                Message::Close(c) => panic!("closed by server: {c:?}"),
            }
        }
    }

    /// The next event; checks that seqs are gap-free.
    pub async fn event(&mut self) -> Event {
        loop {
            match self.frame().await {
                ServerFrame::Event { seq, event } => {
                    assert_eq!(seq, self.last_seq + 1, "events are gap-free");
                    self.last_seq = seq;
                    return event;
                }
                ServerFrame::Pong { .. } => {}
                other => panic!("expected an event, got {other:?}"),
            }
        }
    }

    /// The next event, which must be of `kind`.
    pub async fn expect(&mut self, kind: EventKind) -> Event {
        let e = self.event().await;
        assert_eq!(
            e.event, kind,
            "{} got {:?} (reason {:?})",
            self.uid, e.event, e.reason
        );
        e
    }

    /// Asserts no event arrives: sends a ping and requires the pong to come first.
    pub async fn quiet(&mut self) {
        let nonce = 4242;
        self.send_text(&format!(r#"{{"type":"ping","nonce":{nonce}}}"#))
            .await;
        match self.frame().await {
            ServerFrame::Pong { nonce: n } => assert_eq!(n, nonce),
            other => panic!("{} expected silence, got {other:?}", self.uid),
        }
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .as_mut()
            .expect("connected")
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    /// Waits for the server to close the socket; returns the close code.
    pub async fn closed(&mut self) -> Option<u16> {
        let ws = self.ws.as_mut().expect("connected");
        loop {
            match tokio::time::timeout(PATIENCE, ws.next())
                .await
                .expect("closed within the patience")
            {
                Some(Ok(Message::Close(c))) => return c.map(|c| u16::from(c.code)),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    }

    async fn post(&self, path: &str, body: serde_json::Value) -> Result<CallInfo, ErrorBody> {
        self.post_keyed(path, body, None).await
    }

    /// A call action with an `Idempotency-Key`.
    pub async fn post_keyed(
        &self,
        path: &str,
        body: serde_json::Value,
        key: Option<&str>,
    ) -> Result<CallInfo, ErrorBody> {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body);
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        let r = req.send().await.expect("server reachable");
        decode::<CallResponse>(r).await.map(|c| c.call)
    }

    pub async fn call(&self, receiver: &str) -> Result<CallInfo, ErrorBody> {
        self.call_with(receiver, ReceiverType::User, CallType::Video, None)
            .await
    }

    pub async fn call_group(&self, guid: &str) -> Result<CallInfo, ErrorBody> {
        self.call_with(guid, ReceiverType::Group, CallType::Video, None)
            .await
    }

    pub async fn call_with(
        &self,
        receiver: &str,
        rt: ReceiverType,
        ct: CallType,
        timeout: Option<u32>,
    ) -> Result<CallInfo, ErrorBody> {
        self.post(
            "/v1/calls",
            serde_json::json!({"receiver": receiver, "receiver_type": rt, "call_type": ct, "timeout": timeout}),
        )
        .await
    }

    pub async fn accept(&self, id: &str) -> Result<CallInfo, ErrorBody> {
        self.post(&format!("/v1/calls/{id}/accept"), serde_json::json!({}))
            .await
    }

    pub async fn reject(&self, id: &str, status: RejectStatus) -> Result<CallInfo, ErrorBody> {
        self.post(
            &format!("/v1/calls/{id}/reject"),
            serde_json::json!({ "status": status }),
        )
        .await
    }

    pub async fn cancel(&self, id: &str) -> Result<CallInfo, ErrorBody> {
        self.reject(id, RejectStatus::Cancelled).await
    }

    pub async fn end(&self, id: &str) -> Result<CallInfo, ErrorBody> {
        self.post(&format!("/v1/calls/{id}/end"), serde_json::json!({}))
            .await
    }

    pub async fn get(&self, id: &str) -> Result<CallInfo, ErrorBody> {
        let r = self
            .http
            .get(format!("{}/v1/calls/{id}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("server reachable");
        decode::<CallResponse>(r).await.map(|c| c.call)
    }

    pub async fn history(&self) -> Vec<HistoryEntry> {
        let r = self
            .http
            .get(format!("{}/v1/history", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("reachable");
        decode(r).await.expect("history")
    }

    pub async fn contacts(&self) -> Vec<Contact> {
        let r = self
            .http
            .get(format!("{}/v1/contacts", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("reachable");
        decode(r).await.expect("contacts")
    }
}

/// Asserts an error code.
#[track_caller]
pub fn assert_code<T: std::fmt::Debug>(r: Result<T, ErrorBody>, code: ErrorCode) -> ErrorBody {
    match r {
        Ok(v) => panic!("expected {code}, got {v:?}"),
        Err(e) => {
            assert_eq!(e.code, code, "{}", e.message);
            e
        }
    }
}

/// A TCP proxy in front of the server that a test can cut: every connection
/// through it drops at once, and new ones are refused while it is blocked.
pub struct Proxy {
    pub addr: SocketAddr,
    state: Arc<std::sync::Mutex<ProxyState>>,
}

#[derive(Default)]
struct ProxyState {
    blocked: bool,
    pipes: Vec<JoinHandle<()>>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(std::sync::Mutex::new(ProxyState::default()));
        let st = state.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut guard = st.lock().unwrap_or_else(|p| p.into_inner());
                if guard.blocked {
                    drop(inbound);
                    continue;
                }
                guard.pipes.push(tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                }));
            }
        });
        Proxy { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Drops every connection now and refuses new ones until [`Proxy::heal`].
    pub fn cut(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.blocked = true;
        for p in s.pipes.drain(..) {
            p.abort();
        }
    }

    /// Another handle on the same proxy (to heal it from a task).
    pub fn clone_handle(&self) -> Proxy {
        Proxy {
            addr: self.addr,
            state: self.state.clone(),
        }
    }

    pub fn heal(&self) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).blocked = false;
    }
}

/// A raw request with an optional token and body; returns the status and the error code (if any).
pub async fn raw(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<String>,
) -> (u16, String) {
    let client = reqwest::Client::new();
    let mut req = match method {
        "GET" => client.get(url),
        _ => client.post(url),
    };
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b);
    }
    let r = req.send().await.expect("server reachable");
    let status = r.status().as_u16();
    let v: serde_json::Value = r.json().await.unwrap_or_default();
    (
        status,
        v["error"]["code"].as_str().unwrap_or_default().to_owned(),
    )
}

impl Device {
    /// The next presence frame, as `(uid, presence)`.
    pub async fn presence(&mut self) -> (String, peal_proto::wire::Presence) {
        loop {
            match self.frame().await {
                ServerFrame::Presence { uid, presence } => return (uid.to_string(), presence),
                ServerFrame::Pong { .. } => {}
                other => panic!("{} expected presence, got {other:?}", self.uid),
            }
        }
    }
}

/// The next call event on an SDK event stream (skipping the others), within 10 s.
pub async fn next_call(events: &mut peal_client::EventStream) -> Event {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("an event in time")
        {
            Some(peal_client::ClientEvent::Call(e)) => return e,
            Some(
                peal_client::ClientEvent::Connection(_)
                | peal_client::ClientEvent::Presence { .. }
                | peal_client::ClientEvent::Media { .. }
                | peal_client::ClientEvent::Refused { .. }
                | peal_client::ClientEvent::ContactAdded(_),
            ) => {}
            None => panic!("stream ended"),
        }
    }
}

/// A real coturn (`turnserver` from Debian's coturn) on loopback with
/// `use-auth-secret`, killed on drop.
pub struct Coturn {
    pub port: u16,
    pub secret: String,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Coturn {
    pub fn start(secret: &str) -> Coturn {
        let port = {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp port");
            s.local_addr().expect("addr").port()
        };
        Coturn::start_on(port, secret)
    }

    /// Starts on a given port (to bring a killed one back at the same address).
    pub fn start_on(port: u16, secret: &str) -> Coturn {
        use std::io::BufRead;
        let dir = tempfile::tempdir().expect("temp dir");
        let relay_lo = 40_000 + (port % 200) * 100;
        let mut child = std::process::Command::new("turnserver")
            .args([
                "-n",
                "--listening-ip=127.0.0.1",
                &format!("--listening-port={port}"),
                "--relay-ip=127.0.0.1",
                "--use-auth-secret",
                &format!("--static-auth-secret={secret}"),
                "--realm=peal",
                "--no-tls",
                "--no-dtls",
                "--no-cli",
                // The peers of these tests are on loopback too.
                "--allow-loopback-peers",
                &format!("--min-port={relay_lo}"),
                &format!("--max-port={}", relay_lo + 99),
                "--log-file=stdout",
                "--simple-log",
                &format!("--userdb={}", dir.path().join("turndb").display()),
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("turnserver (Debian package coturn) starts");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                // Into the test's output, shown when it fails.
                eprintln!("coturn:{port}: {line}");
                if line.contains("Total General servers") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("coturn ready within 10 s");
        let turn = Coturn {
            port,
            secret: secret.to_owned(),
            child,
            _dir: dir,
        };
        // "Total General servers" is logged before coturn's auth threads
        // start: ready means it grants an allocation to a valid credential.
        let expiry = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs()
            + 600;
        let uid = peal_proto::UserId::from("ready-check");
        let (user, pass) = peal_server::turn::turn_credential(secret, &uid, expiry);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !turn.allocates(&user, &pass) {
            assert!(
                Instant::now() < deadline,
                "coturn on {port} granted no allocation within 10 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        turn
    }

    pub fn url(&self) -> String {
        format!("turn:127.0.0.1:{}?transport=udp", self.port)
    }

    /// Whether coturn grants an allocation to `username`/`credential`
    /// (asked with coturn's own `turnutils_uclient`).
    pub fn allocates(&self, username: &str, credential: &str) -> bool {
        std::process::Command::new("turnutils_uclient")
            .args([
                "-y", "-n", "1", "-m", "1", "-c", "-u", username, "-w", credential,
            ])
            .args(["-p", &self.port.to_string(), "127.0.0.1"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An SDK client of `uid` on the device `<uid>-laptop`, connected.
pub async fn sdk_client(server: &TestServer, uid: &str) -> peal_client::PealClient {
    peal_client::PealClient::connect(peal_client::ClientConfig::new(
        &server.base,
        uid,
        PASSWORD,
        format!("{uid}-laptop"),
    ))
    .await
    .expect("connects")
}

/// Synthetic media on loopback, small frames: two debug-built encoders per
/// test stay cheap on a 2-core CI machine.
pub fn media_settings(t0: std::time::Instant) -> peal_media::SessionSettings {
    let mut s = peal_media::SessionSettings::new(
        peal_client::CallType::Video,
        peal_media::Sources::Synthetic,
    );
    s.width = 320;
    s.height = 240;
    s.fps = 15;
    s.video_kbps = 300;
    s.bind = vec!["127.0.0.1:0".into()];
    s.t0 = t0;
    s
}

/// A free TCP port on loopback (for a child process to listen on).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

/// Waits (up to `secs`) until `ok`; panics saying `what` otherwise.
pub fn wait_for(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !ok() {
        assert!(start.elapsed() < Duration::from_secs(secs), "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// [`wait_for`] inside a tokio test: polls without blocking the runtime the
/// server under test runs on.
pub async fn wait_until(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !ok() {
        assert!(start.elapsed() < Duration::from_secs(secs), "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether something listens on the Unix socket at `path` (an X server's, a
/// bus's). Never, where there are no Unix sockets: this crate builds for
/// Windows too (peal-bench links it), though these helpers are Linux's.
fn unix_socket_answers(path: impl AsRef<std::path::Path>) -> bool {
    #[cfg(unix)]
    {
        std::os::unix::net::UnixStream::connect(path.as_ref()).is_ok()
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

/// Starts Xvfb on a display nobody holds; the child and its `:N`.
pub fn xvfb() -> (std::process::Child, String) {
    use std::process::{Command, Stdio};
    // Tests start their screens at the same time: a display another one just
    // took makes Xvfb exit, so that try moves on to another number.
    for attempt in 0..20u32 {
        // A stale lock makes Xvfb refuse a display, so skip those.
        let n = (0..200)
            .map(|i| 90 + (u32::from(free_port()) + i + attempt * 7) % 500)
            .find(|n| !std::path::Path::new(&format!("/tmp/.X{n}-lock")).exists())
            .expect("a free X display");
        let display = format!(":{n}");
        let mut child = Command::new("Xvfb")
            .args([&display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb (apt: xvfb) starts");
        let socket = format!("/tmp/.X11-unix/X{n}");
        let start = std::time::Instant::now();
        // Up when it takes a connection (the socket file comes first).
        while start.elapsed() < Duration::from_secs(10) {
            if unix_socket_answers(&socket) {
                return (child, display);
            }
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("Xvfb did not come up on any display");
}

/// The X window titles on `display` (`xwininfo -root -tree`).
pub fn window_titles(display: &str) -> String {
    std::process::Command::new("xwininfo")
        .args(["-root", "-tree", "-display", display])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// A private D-Bus session bus (its socket in `dir`): the child and its address.
pub fn session_bus(dir: &std::path::Path) -> (std::process::Child, String) {
    use std::process::{Command, Stdio};
    let path = dir.join("bus");
    let address = format!("unix:path={}", path.display());
    let child = Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--nopidfile"])
        .arg(format!("--address={address}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dbus-daemon starts");
    // The socket file appears at bind(), before the daemon listens: a
    // connection refused then made a test fail now and then. Ready is when
    // a connection is taken.
    wait_for("the session bus", 10, || unix_socket_answers(&path));
    (child, address)
}

/// The sound card this machine lacks: `home`/.asoundrc makes ALSA's default
/// device write what it plays (2 x f32, 48 kHz) to the file returned. Each
/// sound opens the device anew, which starts the file again: it holds the
/// last sound played (and the silence after it).
pub fn alsa_to_file(home: &std::path::Path) -> PathBuf {
    let capture = home.join("speaker.raw");
    std::fs::write(
        home.join(".asoundrc"),
        format!(
            "pcm.!default {{ type file slave.pcm \"nullsink\" file \"{}\" format \"raw\" }}\npcm.nullsink {{ type null }}\n",
            capture.display()
        ),
    )
    .expect("asoundrc");
    capture
}

/// Logs to the test's stderr (shown by the runner when the test fails):
/// warnings from everything, and what webrtc-rs's ICE and TURN layers and
/// our media session say about gathering and connecting. `RUST_LOG`
/// overrides it.
pub fn log_to_test_output() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            "warn,peal_media=debug,webrtc::peer_connection::transport=debug,rtc_ice=debug,rtc_turn=debug",
        )
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
