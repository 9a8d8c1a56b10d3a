//! A group call's full mesh, and what leaving leaves behind. Its own test
//! binary: it counts this process's sockets, which other tests would disturb.

use peal_client::{Call, CallType, EventKind, ReceiverType};
use peal_media::{join_session, CallSession};
use peal_tests::{media_settings as settings, next_call, sdk_client as client, TestServer};
use std::time::{Duration, Instant};

/// Open sockets of this process (the server's, the clients' and every peer connection's).
fn open_sockets() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .is_ok_and(|t| t.to_string_lossy().starts_with("socket:"))
                })
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
    let sockets_before = open_sockets();
    let tasks_before = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
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
    assert!(open_sockets() > sockets_before);
    assert!(
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
            > tasks_before
    );
    // Everyone leaves: every peer connection's sockets and tasks are gone.
    for s in [&a, &b, &c] {
        s.leave().await;
    }
    drop((a, b, c));
    let start = Instant::now();
    loop {
        let (sockets, tasks) = (
            open_sockets(),
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks(),
        );
        // The three counting tasks end with their sessions too.
        if sockets <= sockets_before && tasks <= tasks_before {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "left behind: sockets {sockets} (before {sockets_before}), tasks {tasks} (before {tasks_before})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
