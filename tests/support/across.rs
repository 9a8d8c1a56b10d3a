//! A call between real `peal` processes across a shaped path
//! ([`peal_netem::Path`]): the server and the caller (alice) on side A, the
//! callee (bob) on side B; signaling crosses the path too. Used by
//! `tests/network.rs` and by `peal-bench network`.

use crate::{bin, wait_for};
use peal_netem::{Path, Side};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A child process killed when dropped.
pub struct Kill(pub Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running process whose JSON stdout lines arrive on a channel. Each
/// line that is an object gets `"_seen_unix_ms"`: when this harness read it
/// (wall clock, so it lines up with other processes' clocks).
pub struct Lines {
    _child: Kill,
    rx: mpsc::Receiver<Value>,
}

impl Lines {
    pub fn start(mut c: Command) -> Lines {
        let mut child = c
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("peal starts");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(mut v) = serde_json::from_str::<Value>(&line) {
                    if let Some(o) = v.as_object_mut() {
                        o.insert("_seen_unix_ms".into(), unix_ms().into());
                    }
                    if tx.send(v).is_err() {
                        break;
                    }
                }
            }
        });
        Lines {
            _child: Kill(child),
            rx,
        }
    }

    /// The next line, within `secs`.
    pub fn until_any(&self, secs: u64) -> Value {
        self.rx
            .recv_timeout(Duration::from_secs(secs))
            .unwrap_or_else(|_| panic!("no line within {secs} s"))
    }

    /// Every line up to and with the `final` one, waiting at most `secs`
    /// for each.
    pub fn until_final(&self, secs: u64) -> Vec<Value> {
        let mut lines = Vec::new();
        loop {
            let v = self.until_any(secs);
            let last = v["event"] == "final";
            lines.push(v);
            if last {
                return lines;
            }
        }
    }
}

/// Now, in milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A server on side A with users alice and bob (password `pw`).
pub struct Server {
    _process: Kill,
    _data: tempfile::TempDir,
    pub url: String,
}

impl Server {
    /// Starts it and waits until side B can reach it.
    pub fn start(path: &Path) -> Server {
        let data = tempfile::tempdir().expect("tmp");
        for (uid, name) in [("alice", "Alice"), ("bob", "Bob")] {
            let out = Command::new(bin("peal-server"))
                .arg("--data")
                .arg(data.path())
                .args(["user", "add", uid, "--name", name, "--password", "pw"])
                .output()
                .expect("admin");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let listen = format!("{}:7300", path.addr(Side::A));
        let child = path
            .command(Side::A, bin("peal-server"))
            .arg("--data")
            .arg(data.path())
            .args(["serve", "--listen", &listen, "--logins-per-address", "1000"])
            // Presence is polled with a sign-in each time; over a lossy
            // path that can pass the 20 a minute a user gets.
            .args(["--logins-per-user", "1000"])
            // Both ends are namespaces of this machine: nothing leaves it.
            .arg("--insecure-plaintext")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("server starts");
        let server = Server {
            _process: Kill(child),
            _data: data,
            url: format!("http://{listen}"),
        };
        wait_for("the server, from side B", 30, || {
            server
                .peal(path, Side::B, "bob")
                .arg("contacts")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        server
    }

    /// `peal` signed in as `user`, to run on `side`.
    pub fn peal(&self, path: &Path, side: Side, user: &str) -> Command {
        let mut c = path.command(side, bin("peal"));
        c.env_remove("PEAL_DEVICE").args([
            "--server",
            &self.url,
            "--user",
            user,
            "--password",
            "pw",
        ]);
        c
    }

    fn online(&self, path: &Path, uid: &str) -> bool {
        let out = self
            .peal(path, Side::A, "alice")
            .arg("contacts")
            .output()
            .expect("contacts");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|c| c["uid"] == uid && c["presence"] == "online")
    }
}

/// How the call across is made.
pub struct CallAcross<'a> {
    /// Bob hangs up this long after accepting.
    pub secs: u64,
    /// `--media` of both sides (`synthetic`, `synthetic-hd`).
    pub media: &'a str,
    /// Environment for Bob's `peal`.
    pub bob_env: &'a [(&'a str, &'a str)],
    /// `--stats-every` for both sides.
    pub stats_every: Option<u64>,
}

/// Each side's JSON lines, up to and with its `final` one.
pub struct Called {
    pub alice: Vec<Value>,
    pub bob: Vec<Value>,
}

impl CallAcross<'_> {
    /// Alice on side A calls Bob on side B, both `--stats`; Bob accepts at
    /// once and hangs up after `secs`.
    pub fn run(&self, path: &Path) -> Called {
        let server = Server::start(path);
        let stats = |c: &mut Command| {
            c.args(["--media", self.media, "--stats"]);
            if let Some(ms) = self.stats_every {
                c.args(["--stats-every", &ms.to_string()]);
            }
        };
        let mut answer = server.peal(path, Side::B, "bob");
        answer.args(["answer", "--accept"]);
        stats(&mut answer);
        answer.args(["--hangup-after", &(self.secs * 1000).to_string()]);
        answer.envs(self.bob_env.iter().copied());
        let bob = Lines::start(answer);
        wait_for("bob online", 30, || server.online(path, "bob"));
        let mut call = server.peal(path, Side::A, "alice");
        call.args(["call", "bob"]);
        stats(&mut call);
        let alice = Lines::start(call);
        let bob = bob.until_final(self.secs + 40);
        let alice = alice.until_final(40);
        Called { alice, bob }
    }
}

/// The first line of `lines` whose `event` is `what`.
pub fn event<'a>(lines: &'a [Value], what: &str) -> Option<&'a Value> {
    lines.iter().find(|l| l["event"] == what)
}

/// The last `media_stats` line (the one before `final`: the whole call).
pub fn last_stats(lines: &[Value]) -> Option<&Value> {
    lines.iter().rev().find(|l| l["event"] == "media_stats")
}
