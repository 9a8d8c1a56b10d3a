//! The server process the signaling scenarios measure, and the harness's handle on it.
//!
//! It is peal-server's own `Server` (a real SQLite file, the system clock),
//! with two changes for load: the per-user and per-device rate limits are
//! lifted (the generators are a few processes calling as fast as told), and
//! the devices are seeded directly in the store — N users sharing one Argon2
//! hash, each with a device and a token — because signing 10,000 users in
//! through Argon2 would take minutes and measure the password hash, not calls.

use crate::procfs;
use peal_proto::wire::{LoginResponse, Party};
use peal_proto::{DeviceId, UserId};
use peal_server::auth;
use peal_server::clock::{Clock, SystemClock};
use peal_server::{Config, Server};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

/// The seeded user id of client `i`.
pub fn uid(i: usize) -> String {
    format!("b{i}")
}

pub fn serve(data: PathBuf, users: usize, max_connections: usize) -> Result<(), String> {
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let mut config = Config::new(data.clone());
        config.requests_per_second = 1_000_000;
        config.calls_per_minute = 1_000_000;
        config.max_connections = max_connections;
        // Every generator connects from 127.0.0.1, up to the open-file limit.
        config.conn_limits.per_address = usize::MAX;
        config.conn_limits.total = usize::MAX;
        let server = Server::open(config, Arc::new(SystemClock))
            .await
            .map_err(|e| e.to_string())?;
        seed(&server, users, &data.join("sessions.jsonl")).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        println!("listening {addr}");
        let _ = std::io::stdout().flush();
        // Serve until the harness closes our stdin.
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let mut sink = String::new();
            while std::io::stdin()
                .read_line(&mut sink)
                .map(|n| n > 0)
                .unwrap_or(false)
            {}
            let _ = tx.send(());
        });
        server
            .run(listener, async move {
                let _ = rx.await;
            })
            .await
            .map_err(|e| e.to_string())
    })
}

async fn seed(server: &Server, users: usize, out: &Path) -> Result<(), String> {
    let store = server.state().store.clone();
    let now = SystemClock.now();
    let hash = auth::hash_password("bench").map_err(|_| "cannot hash the password".to_owned())?;
    let mut lines = String::new();
    let ids: Vec<usize> = (0..users).collect();
    for chunk in ids.chunks(256) {
        let made = futures_util::future::join_all(chunk.iter().map(|&i| {
            let store = store.clone();
            let hash = hash.clone();
            async move {
                let uid = UserId::from(uid(i));
                let name = format!("Bench {i}");
                store.add_user(uid.clone(), name.clone(), hash, now).await?;
                let device = store
                    .device(
                        uid.clone(),
                        "bench".into(),
                        DeviceId(auth::random_id(12)),
                        now,
                    )
                    .await?;
                let token = auth::new_token();
                store
                    .add_token(auth::token_hash(&token), device.clone(), now)
                    .await?;
                Ok::<_, peal_server::store::StoreError>(LoginResponse {
                    token,
                    device_id: device,
                    user: Party { uid, name },
                })
            }
        }))
        .await;
        for m in made {
            let s = m.map_err(|e| format!("seeding: {e}"))?;
            lines.push_str(&serde_json::to_string(&s).unwrap_or_default());
            lines.push('\n');
        }
    }
    std::fs::write(out, lines).map_err(|e| format!("cannot write {}: {e}", out.display()))
}

/// The harness's handle: the process, its address and its seeded sessions file.
pub struct ServerProc {
    child: Child,
    pub url: String,
    pub sessions: PathBuf,
    _data: tempfile::TempDir,
}

impl ServerProc {
    pub fn start(users: usize, max_connections: usize) -> Result<ServerProc, String> {
        let data = tempfile::tempdir().map_err(|e| e.to_string())?;
        let started = std::time::Instant::now();
        let mut child = Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
            .args(["serve", "--data"])
            .arg(data.path())
            .args([
                "--users",
                &users.to_string(),
                "--max-connections",
                &max_connections.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the server: {e}"))?;
        let out = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(out)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let addr = line
            .strip_prefix("listening ")
            .map(str::trim)
            .ok_or_else(|| format!("the server did not start (said {line:?})"))?
            .to_owned();
        eprintln!(
            "server pid {} at {addr}, {users} devices seeded in {:.1} s",
            child.id(),
            started.elapsed().as_secs_f64()
        );
        Ok(ServerProc {
            child,
            url: format!("http://{addr}"),
            sessions: data.path().join("sessions.jsonl"),
            _data: data,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn cpu_secs(&self) -> f64 {
        procfs::cpu_secs(self.pid())
    }

    pub fn rss_kb(&self) -> u64 {
        procfs::rss_kb(self.pid())
    }

    pub fn open_files(&self) -> usize {
        procfs::open_files(self.pid())
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
