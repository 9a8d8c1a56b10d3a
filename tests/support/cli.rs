//! The `peal` CLI driven as its contract says (ARCHITECTURE.md): a running
//! command's JSON lines, its events, its final line and exit code. Shared by
//! the Linux CLI scenarios and the Windows ones under wine.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A `peal-server` child on a loopback port, killed (and waited for) on
/// drop, with the data directory it serves from.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `peal` whose stdout lines arrive on a channel.
pub struct Running {
    child: Child,
    lines: mpsc::Receiver<Value>,
}

impl Running {
    pub fn start(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("peal starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Running { child, lines }
    }

    pub fn line(&self) -> Value {
        self.lines
            .recv_timeout(Duration::from_secs(15))
            .expect("a JSON line within 15 s")
    }

    /// Reads lines until the `final` one; returns every line.
    pub fn until_final(&self) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let v = self.line();
            let done = v["event"] == "final";
            out.push(v);
            if done {
                return out;
            }
        }
    }

    pub fn exit_code(mut self) -> i32 {
        for _ in 0..300 {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return s.code().unwrap_or(-1);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        panic!("peal did not exit after its final line");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn events(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l["event"].as_str().unwrap_or("?").to_owned())
        .collect()
}

/// The `media_stats` line of a finished `peal call/answer --stats`.
pub fn media_stats(lines: &[Value]) -> &Value {
    let n = lines.len();
    assert!(n >= 2, "{lines:?}");
    assert_eq!(
        lines[n - 2]["event"],
        "media_stats",
        "last but one: {lines:?}"
    );
    &lines[n - 2]
}
