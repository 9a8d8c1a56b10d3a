//! A group call's full mesh, and what leaving leaves behind. Its own test
//! binary: it counts this process's sockets, which other tests would disturb.

use peal_client::{Call, CallType, EventKind, ReceiverType};
use peal_media::{join_session, CallSession};
use peal_tests::{media_settings as settings, next_call, sdk_client as client, TestServer};
use std::time::{Duration, Instant};

/// UDP sockets this process holds (what peer connections bind; HTTP
/// keep-alive connections the SDK may open meanwhile are TCP and don't count).
fn udp_sockets() -> usize {
    let inodes: std::collections::HashSet<String> = ["/proc/self/net/udp", "/proc/self/net/udp6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|t| {
            t.lines()
                .skip(1)
                .filter_map(|l| l.split_whitespace().nth(9).map(str::to_owned))
                .collect::<Vec<_>>()
        })
        .collect();
    std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter_map(|t| {
                    let t = t.to_string_lossy().into_owned();
                    t.strip_prefix("socket:[")?
                        .strip_suffix(']')
                        .map(str::to_owned)
                })
                .filter(|inode| inodes.contains(inode))
                .count()
        })
        .unwrap_or(0)
}

/// Counts, per sender, the remote frames whose pattern verifies.
fn count_verified(
    s: &CallSession,
) -> std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, u32>>> {
    let counts = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    let mut rx = s.video();
    let c = counts.clone();
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(v) => {
                    if peal_media::synthetic::VideoPattern::verify(&v.frame).is_ok() {
                        *c.lock().unwrap().entry(v.from.to_string()).or_insert(0) += 1;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
    });
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_way_group_call_is_a_full_mesh_and_leaving_closes_every_socket_and_task() {
    let server = TestServer::start().await;
    let (alice, bob, carol) = (
        client(&server, "alice").await,
        client(&server, "bob").await,
        client(&server, "carol").await,
    );
    let (mut bob_ring, mut carol_ring) = (bob.events(), carol.events());
    let sockets_before = udp_sockets();
    let t0 = Instant::now();
    let placed = alice
        .initiate_call(Call::new("team", ReceiverType::Group, CallType::Video))
        .await
        .expect("placed");
    let a = join_session(&alice, &placed, settings(t0))
        .await
        .expect("alice joins");
    assert_eq!(
        next_call(&mut bob_ring).await.event,
        EventKind::IncomingCallReceived
    );
    assert_eq!(
        next_call(&mut carol_ring).await.event,
        EventKind::IncomingCallReceived
    );
    let bob_call = bob
        .accept_call(&placed.session_id)
        .await
        .expect("bob accepts");
    let b = join_session(&bob, &bob_call, settings(t0))
        .await
        .expect("bob joins");
    let carol_call = carol
        .accept_call(&placed.session_id)
        .await
        .expect("carol accepts");
    let c = join_session(&carol, &carol_call, settings(t0))
        .await
        .expect("carol joins");
    let seen = [
        ("alice", count_verified(&a)),
        ("bob", count_verified(&b)),
        ("carol", count_verified(&c)),
    ];
    let start = Instant::now();
    loop {
        let full = seen.iter().all(|(me, counts)| {
            let counts = counts.lock().unwrap();
            ["alice", "bob", "carol"]
                .iter()
                .filter(|o| *o != me)
                .all(|o| counts.get(*o).copied().unwrap_or(0) >= 10)
        });
        if full {
            break;
        }
        let all: Vec<_> = seen
            .iter()
            .map(|(m, c)| (m, c.lock().unwrap().clone()))
            .collect();
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "mesh incomplete: {all:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for s in [&a, &b, &c] {
        assert_eq!(s.stats().received.corrupt_frames, 0, "{:#?}", s.stats());
    }
    // The peer connections hold sockets and tasks now (so their absence later means something).
    assert!(
        udp_sockets() >= sockets_before + 6,
        "3 links a side: {}",
        udp_sockets()
    );
    assert!(
        peal_media::live_tasks() >= 3 + 6 + 12,
        "sessions, writers, readers: {}",
        peal_media::live_tasks()
    );
    assert_eq!(peal_media::live_links(), 6);
    // Everyone leaves: every peer connection's sockets and tasks are gone.
    for s in [&a, &b, &c] {
        s.leave().await;
    }
    drop((a, b, c));
    let start = Instant::now();
    loop {
        let (sockets, tasks, links) = (
            udp_sockets(),
            peal_media::live_tasks(),
            peal_media::live_links(),
        );
        if sockets <= sockets_before && tasks == 0 && links == 0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "left behind: UDP sockets {sockets} (before {sockets_before}), media tasks {tasks}, links {links}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
