//! A load-generator process, and the harness's handle on a set of them.
//!
//! A generator connects a range of the seeded devices through the SDK
//! (`PealClient::connect_with_session`: the real event socket, heartbeats,
//! listeners) and then follows one-line commands on stdin:
//!
//! - `call LOCAL CALLEE`: device LOCAL calls user CALLEE;
//! - `warm LOCAL`: device LOCAL makes one request (`warmed`), opening its HTTP connection;
//! - `quit`: closes every client and exits.
//!
//! Every callee accepts as soon as it rings and every caller ends the call as
//! soon as it is accepted. Each step is one line on stdout, stamped with the
//! wall clock in ns (the one clock every process on the machine shares):
//! `init SID T` (just before initiate was sent), `inc SID T` (the callee's SDK
//! delivered `incoming_call_received`), `accsent SID T`, `acc SID T` (the
//! caller's `outgoing_call_accepted`), `ended SID T` (end answered: history
//! written), `cend SID T` (a device heard `call_ended_message_received`),
//! `err WHAT DETAIL`.

use crate::serve::uid;
use peal_client::{Call, CallListener, CallType, ClientConfig, PealClient, ReceiverType};
use peal_proto::wire::{Event, LoginResponse};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// Wall-clock ns: comparable across the processes of one machine.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

type Out = mpsc::UnboundedSender<String>;

fn word(e: &peal_client::ClientError) -> String {
    e.code()
        .map(|c| format!("{c:?}"))
        .unwrap_or_else(|| e.to_string().replace(' ', "_"))
}

struct Auto {
    client: PealClient,
    out: Out,
}

impl CallListener for Auto {
    fn on_incoming_call_received(&self, event: &Event) {
        let t = now_ns();
        let sid = event.call.session_id.clone();
        let _ = self.out.send(format!("inc {sid} {t}"));
        let (c, out) = (self.client.clone(), self.out.clone());
        tokio::spawn(async move {
            let _ = out.send(format!("accsent {sid} {}", now_ns()));
            if let Err(e) = c.accept_call(&sid).await {
                let _ = out.send(format!("err accept {}", word(&e)));
            }
        });
    }

    fn on_outgoing_call_accepted(&self, event: &Event) {
        let t = now_ns();
        let sid = event.call.session_id.clone();
        let _ = self.out.send(format!("acc {sid} {t}"));
        let (c, out) = (self.client.clone(), self.out.clone());
        tokio::spawn(async move {
            match c.end_call(&sid).await {
                Ok(_) => {
                    let _ = out.send(format!("ended {sid} {}", now_ns()));
                }
                Err(e) => {
                    let _ = out.send(format!("err end {}", word(&e)));
                }
            }
        });
    }

    fn on_outgoing_call_rejected(&self, event: &Event) {
        let _ = self
            .out
            .send(format!("err rejected {:?}", event.call.status));
    }

    fn on_call_ended_message_received(&self, event: &Event) {
        let t = now_ns();
        let _ = self.out.send(format!("cend {} {t}", event.call.session_id));
    }

    fn on_incoming_call_cancelled(&self, event: &Event) {
        let _ = self.out.send(format!("err cancelled {:?}", event.reason));
    }
}

fn read_sessions(path: &Path, from: usize, count: usize) -> Result<Vec<LoginResponse>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .skip(from)
        .take(count)
        .map(|l| serde_json::from_str(l).map_err(|e| format!("sessions file: {e}")))
        .collect()
}

pub fn gen(server: String, sessions: PathBuf, from: usize, count: usize) -> Result<(), String> {
    let sessions = read_sessions(&sessions, from, count)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let (out, mut lines) = mpsc::unbounded_channel::<String>();
        let writer = std::thread::spawn(move || {
            let mut w = BufWriter::new(std::io::stdout());
            // Ends at "closed" (the listeners' senders outlive the clients).
            'out: while let Some(l) = lines.blocking_recv() {
                let mut next = Some(l);
                while let Some(l) = next {
                    let _ = writeln!(w, "{l}");
                    if l == "closed" {
                        break 'out;
                    }
                    next = lines.try_recv().ok();
                }
                let _ = w.flush();
            }
            let _ = w.flush();
        });
        // Connect, 64 at a time.
        let gate = Arc::new(tokio::sync::Semaphore::new(64));
        let tasks: Vec<_> = sessions
            .into_iter()
            .map(|s| {
                let (gate, server, out) = (gate.clone(), server.clone(), out.clone());
                tokio::spawn(async move {
                    let _permit = gate.acquire().await;
                    let config = ClientConfig::new(server, s.user.uid.to_string(), "", "bench");
                    let client = PealClient::connect_with_session(config, s).await?;
                    client.add_call_listener(
                        "bench",
                        Arc::new(Auto {
                            client: client.clone(),
                            out,
                        }),
                    );
                    Ok::<_, peal_client::ClientError>(client)
                })
            })
            .collect();
        let mut clients = Vec::with_capacity(tasks.len());
        let mut failed = 0usize;
        let mut first_err = String::new();
        for t in tasks {
            match t.await {
                Ok(Ok(c)) => clients.push(Some(c)),
                Ok(Err(e)) => {
                    failed += 1;
                    if first_err.is_empty() {
                        first_err = e.to_string();
                    }
                    clients.push(None);
                }
                Err(e) => {
                    failed += 1;
                    first_err = e.to_string();
                    clients.push(None);
                }
            }
        }
        let _ = out.send(format!(
            "ready {} {failed} {first_err}",
            clients.len() - failed
        ));

        let (cmd_tx, mut cmds) = mpsc::unbounded_channel::<String>();
        std::thread::spawn(move || {
            for l in std::io::stdin().lock().lines().map_while(Result::ok) {
                if cmd_tx.send(l).is_err() {
                    break;
                }
            }
        });
        while let Some(cmd) = cmds.recv().await {
            let parts: Vec<&str> = cmd.split_whitespace().collect();
            match parts.as_slice() {
                ["call", local, callee] => {
                    let Some(Some(c)) = local.parse::<usize>().ok().and_then(|i| clients.get(i))
                    else {
                        let _ = out.send(format!("err call no_client_{local}"));
                        continue;
                    };
                    let (c, out, callee) = (c.clone(), out.clone(), callee.to_string());
                    tokio::spawn(async move {
                        let t0 = now_ns();
                        match c
                            .initiate_call(Call::new(callee, ReceiverType::User, CallType::Audio))
                            .await
                        {
                            Ok(info) => {
                                let _ = out.send(format!("init {} {t0}", info.session_id));
                            }
                            Err(e) => {
                                let _ = out.send(format!("err initiate {}", word(&e)));
                            }
                        }
                    });
                }
                ["warm", local] => {
                    // One request, so the client's HTTP connection is open
                    // before the calls are timed (as in an app that is in use).
                    let Some(Some(c)) = local.parse::<usize>().ok().and_then(|i| clients.get(i))
                    else {
                        let _ = out.send(format!("err warm no_client_{local}"));
                        continue;
                    };
                    let (c, out) = (c.clone(), out.clone());
                    tokio::spawn(async move {
                        let _ = match c.ice_servers().await {
                            Ok(_) => out.send("warmed".into()),
                            Err(e) => out.send(format!("err warm {}", word(&e))),
                        };
                    });
                }
                ["quit"] => break,
                _ => {
                    let _ = out.send(format!("err command {}", cmd.replace(' ', "_")));
                }
            }
        }
        for c in clients.iter().flatten() {
            c.close();
        }
        drop(clients);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = out.send("closed".into());
        let _ = writer.join();
        Ok(())
    })
}

/// One line from generator `gen`.
pub struct Line {
    pub gen: usize,
    pub text: String,
}

/// The harness's handle on the generator processes: client `i` lives in
/// generator `i / per_gen` at local index `i % per_gen`.
pub struct Gens {
    children: Vec<Child>,
    stdins: Vec<BufWriter<ChildStdin>>,
    pub lines: std_mpsc::Receiver<Line>,
    pub per_gen: usize,
    pub connected: usize,
}

impl Gens {
    /// Starts enough generators for `clients` (at most `per_gen` each) and
    /// waits until every one has connected its share.
    pub fn start(
        server: &crate::serve::ServerProc,
        clients: usize,
        per_gen: usize,
    ) -> Result<Gens, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let n = clients.div_ceil(per_gen).max(1);
        let (tx, lines) = std_mpsc::channel();
        let mut children = Vec::new();
        let mut stdins = Vec::new();
        let started = std::time::Instant::now();
        for g in 0..n {
            let from = g * per_gen;
            let count = per_gen.min(clients - from);
            let mut child = Command::new(&exe)
                .args(["gen", "--server", &server.url, "--sessions"])
                .arg(&server.sessions)
                .args(["--from", &from.to_string(), "--count", &count.to_string()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .map_err(|e| format!("cannot start a generator: {e}"))?;
            let out = child.stdout.take().ok_or("no stdout")?;
            stdins.push(BufWriter::new(child.stdin.take().ok_or("no stdin")?));
            let tx = tx.clone();
            std::thread::spawn(move || {
                for text in BufReader::new(out).lines().map_while(Result::ok) {
                    if tx.send(Line { gen: g, text }).is_err() {
                        break;
                    }
                }
            });
            children.push(child);
        }
        let mut gens = Gens {
            children,
            stdins,
            lines,
            per_gen,
            connected: 0,
        };
        let mut ready = 0;
        while ready < n {
            let l = gens
                .lines
                .recv_timeout(Duration::from_secs(300))
                .map_err(|_| "a generator did not get ready in 300 s".to_owned())?;
            if let Some(rest) = l.text.strip_prefix("ready ") {
                ready += 1;
                let mut w = rest.splitn(3, ' ');
                let ok: usize = w.next().and_then(|s| s.parse().ok()).unwrap_or(0);
                let failed: usize = w.next().and_then(|s| s.parse().ok()).unwrap_or(0);
                gens.connected += ok;
                if failed > 0 {
                    return Err(format!(
                        "generator {}: {failed} clients could not connect: {}",
                        l.gen,
                        w.next().unwrap_or("")
                    ));
                }
            }
        }
        eprintln!(
            "{} clients connected over {n} generator processes in {:.1} s",
            gens.connected,
            started.elapsed().as_secs_f64()
        );
        Ok(gens)
    }

    /// Client `caller` calls client `callee`.
    pub fn call(&mut self, caller: usize, callee: usize) -> Result<(), String> {
        let (g, local) = (caller / self.per_gen, caller % self.per_gen);
        let w = self.stdins.get_mut(g).ok_or("no such generator")?;
        writeln!(w, "call {local} {}", uid(callee))
            .and_then(|_| w.flush())
            .map_err(|e| format!("generator {g} is gone: {e}"))
    }

    /// Has each of `clients` make one request and waits for all of them.
    pub fn warm(&mut self, clients: &[usize]) -> Result<(), String> {
        for &c in clients {
            let (g, local) = (c / self.per_gen, c % self.per_gen);
            let w = self.stdins.get_mut(g).ok_or("no such generator")?;
            writeln!(w, "warm {local}").map_err(|e| format!("generator {g} is gone: {e}"))?;
        }
        for w in &mut self.stdins {
            w.flush().map_err(|e| format!("a generator is gone: {e}"))?;
        }
        let mut done = 0;
        while done < clients.len() {
            let l = self
                .lines
                .recv_timeout(Duration::from_secs(60))
                .map_err(|_| "warming the clients took over 60 s".to_owned())?;
            if l.text == "warmed" {
                done += 1;
            } else if l.text.starts_with("err warm") {
                return Err(format!("generator {}: {}", l.gen, l.text));
            }
        }
        Ok(())
    }

    /// Closes every client and waits for the generators to exit.
    pub fn quit(mut self) {
        for w in &mut self.stdins {
            let _ = writeln!(w, "quit").and_then(|_| w.flush());
        }
        self.stdins.clear();
        for c in &mut self.children {
            let _ = c.wait();
        }
        self.children.clear();
    }
}

impl Drop for Gens {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
