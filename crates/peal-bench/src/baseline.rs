//! The anchors measured in the same run: NATS (Debian's `nats-server`,
//! the async-nats client) and TCP ping-pong on loopback.

use crate::gen::now_ns;
use futures_util::StreamExt;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Nats {
    /// Publish → subscriber delivery, one way, paced like our calls.
    pub pubsub_us: Vec<f64>,
    /// Request → reply round trips, one in flight.
    pub request_reply_us: Vec<f64>,
    pub version: String,
}

struct NatsServer(Child);

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `nats-server` on a loopback port and measures `n` messages each way.
pub fn nats(n: usize, rate: u32) -> Result<Nats, String> {
    let port = peal_tests::free_port();
    let child = Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start nats-server ({e}); install it: apt-get install nats-server (scripts/ensure-bench-deps.sh does)"))?;
    let _server = NatsServer(child);
    peal_tests::wait_for("nats-server listening", 10, || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let url = format!("127.0.0.1:{port}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let connect = |cap: usize| {
            let url = url.clone();
            async move {
                async_nats::ConnectOptions::new()
                    .subscription_capacity(cap)
                    .connect(url)
                    .await
                    .map_err(|e| format!("nats connect: {e}"))
            }
        };
        let (publisher, subscriber) = (connect(1 << 16).await?, connect(1 << 22).await?);
        let version = publisher.server_info().version;

        // Pub → sub, the ring path's shape: one hop in, one hop out.
        let mut sub = subscriber
            .subscribe("bench.ring")
            .await
            .map_err(|e| e.to_string())?;
        subscriber.flush().await.map_err(|e| e.to_string())?;
        // The server has the subscription once a request through it is answered (below).
        tokio::time::sleep(Duration::from_millis(200)).await;
        let total = n + n / 10;
        let receiver = tokio::spawn(async move {
            let mut got = Vec::with_capacity(total);
            while got.len() < total {
                match tokio::time::timeout(Duration::from_secs(10), sub.next()).await {
                    Ok(Some(m)) => {
                        let now = now_ns();
                        let sent: u64 = std::str::from_utf8(&m.payload)
                            .ok()
                            .and_then(|s| s.trim().parse().ok())
                            .unwrap_or(now);
                        got.push(now.saturating_sub(sent) as f64 / 1e3);
                    }
                    _ => break,
                }
            }
            got
        });
        let gap = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
        let start = Instant::now();
        for k in 0..total {
            tokio::time::sleep_until((start + gap * k as u32).into()).await;
            // 64 bytes, like the anchor: the send time, padded.
            let payload = format!("{:<64}", now_ns());
            publisher
                .publish("bench.ring", payload.into())
                .await
                .map_err(|e| e.to_string())?;
        }
        publisher.flush().await.map_err(|e| e.to_string())?;
        let got = receiver.await.map_err(|e| e.to_string())?;
        if got.len() < total {
            return Err(format!("nats delivered {} of {total} messages", got.len()));
        }
        let pubsub_us = got[n / 10..].to_vec(); // the first tenth is warm-up

        // Request → reply.
        let mut requests = subscriber
            .subscribe("bench.rr")
            .await
            .map_err(|e| e.to_string())?;
        subscriber.flush().await.map_err(|e| e.to_string())?;
        let responder = subscriber.clone();
        let answering = tokio::spawn(async move {
            while let Some(m) = requests.next().await {
                if let Some(reply) = m.reply {
                    let _ = responder.publish(reply, m.payload).await;
                }
            }
        });
        // Until the responder's subscription has reached the server, a
        // request finds no responders.
        let ready = Instant::now();
        while publisher.request("bench.rr", "ready".into()).await.is_err() {
            if ready.elapsed() > Duration::from_secs(5) {
                return Err("nats: the responder never became reachable".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut request_reply_us = Vec::with_capacity(n);
        for k in 0..total {
            let t = Instant::now();
            publisher
                .request("bench.rr", format!("{:<64}", k).into())
                .await
                .map_err(|e| format!("nats request: {e}"))?;
            if k >= n / 10 {
                request_reply_us.push(t.elapsed().as_secs_f64() * 1e6);
            }
        }
        answering.abort();
        Ok(Nats {
            pubsub_us,
            request_reply_us,
            version,
        })
    })
}

/// `n` round trips of 64 bytes over TCP on loopback (TCP_NODELAY, blocking
/// sockets, one thread each side): the physical floor under any signaling hop.
pub fn tcp_pingpong(n: usize) -> Vec<f64> {
    let Ok(listener) = TcpListener::bind("127.0.0.1:0") else {
        return Vec::new();
    };
    let Ok(addr) = listener.local_addr() else {
        return Vec::new();
    };
    let echo = std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let _ = s.set_nodelay(true);
            let mut buf = [0u8; 64];
            while s.read_exact(&mut buf).is_ok() {
                if s.write_all(&buf).is_err() {
                    break;
                }
            }
        }
    });
    let mut rtts = Vec::with_capacity(n);
    if let Ok(mut s) = TcpStream::connect(addr) {
        let _ = s.set_nodelay(true);
        let mut buf = [7u8; 64];
        for k in 0..n + 1_000 {
            let t = Instant::now();
            if s.write_all(&buf)
                .and_then(|_| s.read_exact(&mut buf))
                .is_err()
            {
                break;
            }
            if k >= 1_000 {
                rtts.push(t.elapsed().as_secs_f64() * 1e6);
            }
        }
    }
    let _ = echo.join();
    rtts
}
