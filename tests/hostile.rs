//! Hostile clients against a real server on loopback: a sign-in flood from
//! many addresses, sockets that send nothing or half a request, one address
//! taking every socket it can. Each is refused with a typed answer or closed,
//! memory stays bounded, and calls keep ringing for everyone else.
//!
//! Other source addresses are other loopback addresses (127.0.0.2, …), which
//! Linux routes to `lo` with no set-up.

use peal_proto::wire::EventKind;
use peal_tests::{wait_until, TestServer, PATIENCE};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

fn loopback(i: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, i])
}

async fn connect_from(from: IpAddr, to: SocketAddr) -> TcpStream {
    let sock = TcpSocket::new_v4().expect("socket");
    sock.bind(SocketAddr::new(from, 0)).expect("bind");
    sock.connect(to).await.expect("connect")
}

/// Returns once the server has closed `tcp` (end of stream or reset).
async fn closed_by_server(tcp: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(PATIENCE, async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the server closes the socket within the patience");
}

/// This process's resident memory.
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// A client that doesn't keep connections open between requests.
fn no_keep_alive() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bad_sign_ins_is_refused_in_time_memory_stays_bounded_and_calls_still_ring() {
    let s = TestServer::start().await;
    let alice = s.device("alice", "laptop").await;
    let mut bob = s.device("bob", "laptop").await;
    let before = rss_bytes();
    let peak = Arc::new(AtomicU64::new(before));
    let flooding = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, flooding) = (peak.clone(), flooding.clone());
        tokio::spawn(async move {
            while flooding.load(Ordering::Relaxed) {
                peak.fetch_max(rss_bytes(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    // 200 at once, from 50 addresses, each attempt a made-up user id.
    let url = format!("{}/v1/login", s.base);
    let mut flood = tokio::task::JoinSet::new();
    for i in 0..200u32 {
        let url = url.clone();
        flood.spawn(async move {
            let client = reqwest::Client::builder()
                .local_address(loopback(2 + (i % 50) as u8))
                .build()
                .expect("client");
            let mut answers = Vec::new();
            for round in 0..3 {
                let r = client
                    .post(&url)
                    .json(&serde_json::json!({
                        "uid": format!("nobody{i}x{round}"),
                        "password": "guess",
                        "device": "x",
                    }))
                    .send()
                    .await
                    .expect("the server answers");
                let retry = r
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u32>().ok());
                answers.push((r.status().as_u16(), retry));
            }
            answers
        });
    }
    // Meanwhile a call rings as it should.
    alice.call("bob").await.expect("the call is placed");
    bob.expect(EventKind::IncomingCallReceived).await;
    let (mut refused, mut limited) = (0, 0);
    while let Some(answers) = flood.join_next().await {
        for (status, retry) in answers.expect("flood task") {
            match status {
                401 => refused += 1,
                429 => {
                    assert!(retry.is_some_and(|s| s >= 1), "a 429 says when to retry");
                    limited += 1;
                }
                other => panic!("a bad sign-in got {other}"),
            }
        }
    }
    flooding.store(false, Ordering::Relaxed);
    sampler.await.expect("sampler");
    assert_eq!(refused + limited, 600);
    assert!(
        limited > 0,
        "more than the password checks could take was held back"
    );
    let growth = peak.load(Ordering::Relaxed).saturating_sub(before);
    // Unbounded, this was 200 × 19 MiB of Argon2 memory and more.
    assert!(
        growth < 200 << 20,
        "memory grew {} MB during the flood",
        growth >> 20
    );
    // The real user still signs in once the flood is over.
    s.login("carol", "laptop").await.expect("carol signs in");
}

#[tokio::test]
async fn sign_ins_past_the_address_limit_are_refused_with_retry_after_and_others_are_not() {
    let s = TestServer::start().await;
    let url = format!("{}/v1/login", s.base);
    let attempt = |from: IpAddr, uid: String| {
        let url = url.clone();
        async move {
            let r = reqwest::Client::builder()
                .local_address(from)
                .build()
                .expect("client")
                .post(&url)
                .json(&serde_json::json!({"uid": uid, "password": "guess", "device": "x"}))
                .send()
                .await
                .expect("the server answers");
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap_or_default().to_owned());
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            (
                status,
                body["error"]["code"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                retry,
            )
        }
    };
    let guesser = loopback(7);
    for i in 0..peal_server::limits::LOGINS_PER_ADDRESS_PER_MINUTE {
        let (status, code, _) = attempt(guesser, format!("user{i}")).await;
        assert_eq!((status, code.as_str()), (401, "unauthorized"));
    }
    let (status, code, retry) = attempt(guesser, "one-more".into()).await;
    assert_eq!((status, code.as_str()), (429, "rate_limited"));
    assert!(
        retry.is_some_and(|r| r.parse::<u32>().is_ok_and(|s| s >= 1)),
        "Retry-After in seconds"
    );
    // Another address is not held back, and a real sign-in still works.
    let (status, _, _) = attempt(loopback(8), "someone".into()).await;
    assert_eq!(status, 401);
    s.login("alice", "laptop").await.expect("alice signs in");
}

#[tokio::test]
async fn sockets_that_send_nothing_or_half_a_request_are_closed_and_calls_still_ring() {
    let s = TestServer::start_with(|c| c.conn_limits.header_timeout = Duration::from_secs(1)).await;
    let mut alice = s.device("alice", "laptop").await;
    let mut bob = s.device("bob", "laptop").await;
    alice.http = no_keep_alive();
    bob.http = no_keep_alive();
    let baseline = s.gate.open();
    let mut idle = Vec::new();
    for i in 0..300 {
        let mut tcp = TcpStream::connect(s.addr).await.expect("connect");
        if i % 2 == 0 {
            tcp.write_all(b"GET /v1/me HTTP/1.1\r\nHost: x\r\n")
                .await
                .expect("half a request");
        }
        idle.push(tcp);
    }
    // A call rings while they hang on.
    alice.call("bob").await.expect("the call is placed");
    bob.expect(EventKind::IncomingCallReceived).await;
    for tcp in &mut idle {
        closed_by_server(tcp).await;
    }
    // Their places are given back; the event sockets stay.
    let gate = s.gate.clone();
    wait_until("the connection count to come back", 10, || {
        gate.open() == baseline
    })
    .await;
    alice.quiet().await;
    bob.quiet().await;
}

#[tokio::test]
async fn past_its_share_an_address_is_closed_at_once_while_others_still_get_in() {
    let s = TestServer::start_with(|c| {
        c.conn_limits.per_address = 20;
        // Long enough that a close within the patience is the cap, not the timeout.
        c.conn_limits.header_timeout = Duration::from_secs(60);
    })
    .await;
    let hog = loopback(9);
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(connect_from(hog, s.addr).await);
    }
    let gate = s.gate.clone();
    wait_until("the server to accept the hog's sockets", 10, || {
        gate.open() == 20
    })
    .await;
    let mut extra = connect_from(hog, s.addr).await;
    closed_by_server(&mut extra).await;
    // Everyone else still gets in, signs in and rings.
    let alice = s.device("alice", "laptop").await;
    let mut bob = s.device("bob", "laptop").await;
    alice.call("bob").await.expect("the call is placed");
    bob.expect(EventKind::IncomingCallReceived).await;
    // The hog's first twenty are still open.
    let mut buf = [0u8; 1];
    for tcp in &held {
        assert!(
            matches!(tcp.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "a socket within the share stays open"
        );
    }
}
