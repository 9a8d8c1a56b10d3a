//! Ring-path latency on loopback: initiate sent → callee's `incoming_call_received`,
//! and accept sent → caller's `outgoing_call_accepted`.
//!
//! The server runs in this process on its own runtime thread (real SQLite file
//! in a temp dir, system clock); `PAIRS` caller/callee pairs hold event sockets
//! and place `CALLS` calls one after another, each accepted then ended.
//! Writes `target/bench/ring.json` and prints p50/p99/p99.9/max.
//!
//! `cargo run --release -p peal-tests --example ring_latency -- [CALLS] [PAIRS]`

use futures_util::StreamExt;
use peal_proto::wire::{CallResponse, EventKind, LoginResponse, ServerFrame};
use peal_server::clock::SystemClock;
use peal_server::{Config, Server};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Dev {
    token: String,
    ws: Ws,
}

async fn dev(base: &str, addr: &str, uid: &str) -> Dev {
    let login: LoginResponse = reqwest::Client::new()
        .post(format!("{base}/v1/login"))
        .json(&serde_json::json!({"uid": uid, "password": "pw", "device": "bench"}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("login body");
    let mut req = format!("ws://{addr}/v1/events")
        .into_client_request()
        .expect("req");
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", login.token).parse().expect("hdr"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.expect("ws");
    // hello + snapshot
    for _ in 0..2 {
        ws.next().await.expect("frame").expect("ok");
    }
    Dev {
        token: login.token,
        ws,
    }
}

async fn wait_for(ws: &mut Ws, kind: EventKind) {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("event in time");
        if let Some(Ok(Message::Text(t))) = msg {
            if let Ok(ServerFrame::Event { event, .. }) =
                serde_json::from_str::<ServerFrame>(t.as_str())
            {
                if event.event == kind {
                    return;
                }
            }
        }
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let calls: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2000);
    let pairs: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10);
    let dir = tempfile::tempdir().expect("tmp");

    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let data = dir.path().to_path_buf();
    let uids: Vec<String> = (0..pairs * 2).map(|i| format!("u{i}")).collect();
    let seed = uids.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("rt");
        rt.block_on(async move {
            let mut config = Config::new(data);
            config.requests_per_second = 1_000_000;
            config.calls_per_minute = 1_000_000;
            let server = Server::open(config, Arc::new(SystemClock))
                .await
                .expect("open");
            for u in &seed {
                server.add_user(u, u, "pw").await.expect("user");
            }
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            addr_tx
                .send(listener.local_addr().expect("addr"))
                .expect("send");
            server
                .run(listener, std::future::pending())
                .await
                .expect("run");
        });
    });
    let addr = addr_rx.recv().expect("server address").to_string();
    let base = format!("http://{addr}");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async move {
        let http = reqwest::Client::new();
        let mut devs = Vec::new();
        for u in &uids {
            devs.push(dev(&base, &addr, u).await);
        }
        let mut ring = Vec::with_capacity(calls);
        let mut accept = Vec::with_capacity(calls);
        let started = Instant::now();
        for i in 0..calls {
            let p = i % pairs;
            let (left, right) = devs.split_at_mut(2 * p + 1);
            let (caller, callee) = (&mut left[2 * p], &mut right[0]);
            let callee_uid = format!("u{}", 2 * p + 1);
            let t0 = Instant::now();
            let send = http
                .post(format!("{base}/v1/calls"))
                .bearer_auth(&caller.token)
                .json(&serde_json::json!({"receiver": callee_uid, "receiver_type": "user", "call_type": "video"}))
                .send();
            let (resp, ()) = tokio::join!(send, wait_for(&mut callee.ws, EventKind::IncomingCallReceived));
            ring.push(t0.elapsed().as_secs_f64() * 1e6);
            let call: CallResponse = resp.expect("initiate").json().await.expect("call");
            let id = call.call.session_id.to_string();
            let t1 = Instant::now();
            let send = http.post(format!("{base}/v1/calls/{id}/accept")).bearer_auth(&callee.token).send();
            let (resp, ()) = tokio::join!(send, wait_for(&mut caller.ws, EventKind::OutgoingCallAccepted));
            accept.push(t1.elapsed().as_secs_f64() * 1e6);
            resp.expect("accept");
            let send = http.post(format!("{base}/v1/calls/{id}/end")).bearer_auth(&caller.token).send();
            let (resp, ()) = tokio::join!(send, wait_for(&mut callee.ws, EventKind::CallEndedMessageReceived));
            resp.expect("end");
        }
        let secs = started.elapsed().as_secs_f64();
        let mut out = serde_json::Map::new();
        for (name, v) in [("initiate_to_incoming_us", &mut ring), ("accept_to_accepted_us", &mut accept)] {
            v.sort_by(|a, b| a.total_cmp(b));
            let stats = serde_json::json!({
                "p50": pct(v, 0.5), "p99": pct(v, 0.99), "p999": pct(v, 0.999), "max": v[v.len() - 1], "n": v.len()
            });
            println!(
                "{name:<26} p50 {:>8.0} µs  p99 {:>8.0} µs  p99.9 {:>8.0} µs  max {:>8.0} µs  (n={})",
                pct(v, 0.5),
                pct(v, 0.99),
                pct(v, 0.999),
                v[v.len() - 1],
                v.len()
            );
            out.insert(name.to_owned(), stats);
        }
        println!("{calls} full call cycles in {secs:.2} s ({:.0} cycles/s, sequential)", calls as f64 / secs);
        out.insert("calls".into(), calls.into());
        out.insert("pairs".into(), pairs.into());
        let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
        let _ = std::fs::create_dir_all(&target);
        let _ = std::fs::write(target.join("ring.json"), serde_json::to_string_pretty(&out).unwrap_or_default());
    });
}
