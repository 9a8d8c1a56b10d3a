//! TLS where calls leave the machine: the server serves HTTPS and WSS from PEM
//! files, the SDK trusts a private root, and a client that doesn't trust the
//! certificate gets a clear error instead of a call.

use peal_client::{Call, CallType, ClientConfig, ClientError, EventKind, PealClient, ReceiverType};
use peal_server::clock::SystemClock;
use peal_server::{Config, Server};
use peal_tests::{TestServer, PASSWORD};
use std::sync::Arc;

struct TlsServer {
    url: String,
    ca_pem: String,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

async fn start_tls() -> TlsServer {
    let seeded = TestServer::start().await; // creates the users in a data dir
    let (dir, _) = seeded.stop().await;
    let data = tempfile::tempdir().expect("tmp");
    std::fs::copy(dir.path().join("peal.db"), data.path().join("peal.db")).expect("copy db");
    for ext in ["-wal", "-shm"] {
        let _ = std::fs::copy(
            dir.path().join(format!("peal.db{ext}")),
            data.path().join(format!("peal.db{ext}")),
        );
    }

    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let cert_path = data.path().join("cert.pem");
    let key_path = data.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).expect("write key");
    let tls = peal_server::tls::server_config(&cert_path, &key_path).expect("tls config");

    let server = Server::open(
        Config::new(data.path().to_path_buf()),
        Arc::new(SystemClock),
    )
    .await
    .expect("open");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run_tls(listener, tls, async move {
        let _ = rx.await;
    }));
    TlsServer {
        url: format!("https://localhost:{port}"),
        ca_pem: cert.cert.pem(),
        _stop: tx,
        _dir: data,
    }
}

#[tokio::test]
async fn a_call_rings_over_https_and_wss_with_a_private_root() {
    let s = start_tls().await;
    let cfg = |uid: &str| {
        ClientConfig::new(&s.url, uid, PASSWORD, "laptop")
            .with_root_certificates_pem(s.ca_pem.clone())
    };
    let alice = PealClient::connect(cfg("alice"))
        .await
        .expect("alice over TLS");
    let bob = PealClient::connect(cfg("bob")).await.expect("bob over TLS");
    let mut events = bob.events();
    let call = alice
        .initiate_call(Call::new("bob", ReceiverType::User, CallType::Video))
        .await
        .expect("call");
    let e = peal_tests::next_call(&mut events).await;
    assert_eq!(
        (e.event, &e.call.session_id),
        (EventKind::IncomingCallReceived, &call.session_id)
    );
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_certificate_is_told_so_and_sends_nothing() {
    let s = start_tls().await;
    let e = PealClient::connect(ClientConfig::new(&s.url, "alice", PASSWORD, "laptop"))
        .await
        .unwrap_err();
    match &e {
        ClientError::Unreachable(m) => assert!(m.to_lowercase().contains("certificate"), "{m}"),
        other => panic!("expected unreachable with a certificate error, got {other:?}"),
    }
    // Plain HTTP to the TLS port is not an answer either.
    let plain = s.url.replace("https://", "http://");
    assert!(
        PealClient::connect(ClientConfig::new(&plain, "alice", PASSWORD, "laptop"))
            .await
            .is_err()
    );
}
