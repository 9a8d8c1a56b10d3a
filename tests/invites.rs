//! Invites: an admin makes a link, whoever opens it picks their own account,
//! everyone connected sees the new contact, and a link that can no longer be
//! used says why and makes nothing. Over real sockets, the real SDK, a real
//! SQLite file, and the real `peal-server` binary for the admin commands.

use futures_util::StreamExt;
use peal_client::{
    Call, CallType, ClientConfig, ClientError, ClientEvent, ErrorCode, EventKind, PealClient,
    ReceiverType,
};
use peal_tests::{bin, next_call, TestServer, PASSWORD, T0};
use std::time::Duration;

const DAY_MS: i64 = 86_400_000;
const NEW_PASSWORD: &str = "a long password";

async fn join(s: &TestServer, code: &str, uid: &str) -> Result<PealClient, ClientError> {
    let config = ClientConfig::new(&s.base, uid, NEW_PASSWORD, "laptop");
    PealClient::join(config, code, &format!("{uid} (new)")).await
}

fn refused(r: Result<PealClient, ClientError>, code: ErrorCode) -> String {
    match r {
        Err(ClientError::Refused(b)) if b.code == code => b.message,
        Err(e) => panic!("expected {code}, got {e}"),
        Ok(c) => panic!("expected {code}, got an account for {}", c.user_id()),
    }
}

/// Whether `uid` can sign in (with the password joining would have set).
async fn has_account(s: &TestServer, uid: &str) -> bool {
    let config = ClientConfig::new(&s.base, uid, NEW_PASSWORD, "probe");
    match PealClient::sign_in(config).await {
        Ok(_) => true,
        Err(ClientError::Unauthorized(_)) => false,
        Err(e) => panic!("sign-in failed otherwise: {e}"),
    }
}

#[tokio::test]
async fn an_invited_person_makes_their_account_shows_up_in_contacts_and_can_be_called() {
    let s = TestServer::start().await;
    let alice = PealClient::connect(ClientConfig::new(&s.base, "alice", PASSWORD, "laptop"))
        .await
        .expect("alice connects");
    let mut alice_events = alice.events();
    let (_, code) = s.add_invite(2, 7 * DAY_MS).await;

    PealClient::check_invite(&ClientConfig::new(&s.base, "", "", ""), &code)
        .await
        .expect("a fresh invite is good");
    let erin = join(&s, &code, "erin").await.expect("erin joins");
    assert_eq!(erin.user().name, "erin (new)");

    // Alice, connected all along, hears of Erin and sees her in her contacts.
    let added = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match alice_events.next().await {
                Some(ClientEvent::ContactAdded(p)) => return p,
                Some(_) => {}
                None => panic!("alice's stream ended"),
            }
        }
    })
    .await
    .expect("alice hears of erin");
    assert_eq!(added.uid.as_str(), "erin");
    let contacts = alice.contacts().await.unwrap();
    assert!(contacts.iter().any(|c| c.uid.as_str() == "erin"));

    // And Erin's phone rings when Alice calls her.
    let mut erin_events = erin.events();
    let call = alice
        .initiate_call(Call::new("erin", ReceiverType::User, CallType::Audio))
        .await
        .unwrap();
    let rang = next_call(&mut erin_events).await;
    assert_eq!(rang.event, EventKind::IncomingCallReceived);
    assert_eq!(rang.call.session_id, call.session_id);

    // The same password signs Erin in from another device.
    assert!(has_account(&s, "erin").await);
}

#[tokio::test]
async fn an_invite_used_up_expired_or_withdrawn_says_so_and_makes_no_account() {
    let s = TestServer::start().await;
    let anyone = ClientConfig::new(&s.base, "", "", "");

    let (_, once) = s.add_invite(1, DAY_MS).await;
    join(&s, &once, "erin").await.expect("the one use");
    let m = refused(join(&s, &once, "frank").await, ErrorCode::InviteInvalid);
    assert!(m.contains("used as many times"), "{m}");

    let (_, short) = s.add_invite(5, 60 * 60_000).await;
    s.clock.advance(60 * 60_000);
    let m = refused(join(&s, &short, "frank").await, ErrorCode::InviteInvalid);
    assert!(m.contains("expired"), "{m}");

    let (withdrawn, code) = s.add_invite(5, DAY_MS).await;
    s.revoke_invite(&withdrawn.id).await;
    let m = refused(join(&s, &code, "frank").await, ErrorCode::InviteInvalid);
    assert!(m.contains("withdrawn"), "{m}");
    match PealClient::check_invite(&anyone, &code).await {
        Err(ClientError::Refused(b)) => assert_eq!(b.code, ErrorCode::InviteInvalid),
        other => panic!("a withdrawn invite checked as {other:?}"),
    }

    for bad in [
        "0123456789abcdef0123456789abcdef",
        "not-a-code",
        "../../etc",
    ] {
        let m = refused(join(&s, bad, "frank").await, ErrorCode::InviteInvalid);
        assert!(m.contains("not valid"), "{m}");
    }
    assert!(
        !has_account(&s, "frank").await,
        "no refusal made an account"
    );
}

#[tokio::test]
async fn a_taken_user_id_or_a_weak_password_is_refused_and_the_invite_keeps_its_use() {
    let s = TestServer::start().await;
    let (_, code) = s.add_invite(1, DAY_MS).await;

    let m = refused(join(&s, &code, "alice").await, ErrorCode::UserExists);
    assert!(m.contains("alice is taken"), "{m}");
    let weak = PealClient::join(
        ClientConfig::new(&s.base, "erin", "short", "x"),
        &code,
        "Erin",
    );
    let m = refused(weak.await, ErrorCode::BadRequest);
    assert!(m.contains("at least 8"), "{m}");
    let bad_id = PealClient::join(
        ClientConfig::new(&s.base, "erin smith", NEW_PASSWORD, "x"),
        &code,
        "Erin",
    );
    refused(bad_id.await, ErrorCode::BadRequest);

    join(&s, &code, "erin")
        .await
        .expect("the use is still there");
}

#[tokio::test]
async fn two_people_racing_for_the_last_use_of_an_invite_get_one_account_between_them() {
    let s = TestServer::start().await;
    let (_, code) = s.add_invite(1, DAY_MS).await;
    let (a, b) = tokio::join!(join(&s, &code, "erin"), join(&s, &code, "frank"));
    let won = [a.is_ok(), b.is_ok()];
    assert_eq!(
        won.iter().filter(|w| **w).count(),
        1,
        "one account: {won:?}"
    );
    let loser = if won[0] { b } else { a };
    refused(loser, ErrorCode::InviteInvalid);
    assert_ne!(
        has_account(&s, "erin").await,
        has_account(&s, "frank").await
    );
}

/// `peal-server invite` with its flags, run as an admin would.
fn admin(data: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(bin("peal-server"))
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .expect("peal-server runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_admin_prints_an_invite_link_the_app_reads_then_lists_and_revokes_it() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let (ok, out, err) = admin(
        dir.path(),
        &[
            "invite",
            "--uses",
            "2",
            "--expires",
            "2w",
            "--url",
            "https://peal.example.com/",
        ],
    );
    assert!(ok, "{err}");
    let mut lines = out.lines();
    let app_link = lines.next().expect("the peal: link");
    let web_link = lines.next().expect("the web link");
    let Ok(peal_desktop_core::links::Link::Join { server, invite }) =
        peal_desktop_core::links::parse(app_link)
    else {
        panic!("the app can't read {app_link}");
    };
    assert_eq!(server, "https://peal.example.com");
    assert_eq!(
        web_link,
        format!("https://peal.example.com/join?invite={invite}")
    );
    assert!(err.contains("for 2 account(s)"), "{err}");

    let (ok, _, err) = admin(dir.path(), &["invite", "--expires", "soon"]);
    assert!(!ok && err.contains("not a lifetime"), "{err}");

    // The link works on the server that owns the data.
    let s = TestServer::open(
        dir.clone(),
        peal_server::clock::ManualClock::new(T0),
        |_| {},
    )
    .await;
    join(&s, &invite, "erin")
        .await
        .expect("erin joins with the printed code");
    let page = reqwest::get(format!("{}/join?invite={invite}", s.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(&format!("&invite={invite}")), "{page}");
    s.stop().await;

    let (ok, out, err) = admin(dir.path(), &["invite", "list"]);
    assert!(ok, "{err}");
    assert!(out.contains("used 1/2  open, 1 left"), "{out}");
    let id = out.split_whitespace().next().unwrap().to_owned();
    let (ok, _, err) = admin(dir.path(), &["invite", "revoke", &id]);
    assert!(ok, "{err}");
    let (_, out, _) = admin(dir.path(), &["invite", "list"]);
    assert!(out.contains("revoked"), "{out}");
    let (ok, _, err) = admin(dir.path(), &["invite", "revoke", "nope"]);
    assert!(!ok && err.contains("does not exist"), "{err}");
}

/// `peal --server BASE --user UID --password NEW_PASSWORD ARGS…`, off the
/// runtime the server under test runs on.
async fn peal(base: &str, uid: &str, args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(bin("peal"));
    cmd.args(["--server", base, "--user", uid, "--password", NEW_PASSWORD])
        .args(args);
    tokio::task::spawn_blocking(move || cmd.output().expect("peal runs"))
        .await
        .expect("joined")
}

#[tokio::test]
async fn someone_without_the_desktop_joins_from_the_command_line_with_the_whole_link() {
    let s = TestServer::start().await;
    let (_, code) = s.add_invite(1, DAY_MS).await;
    let (link, _) = peal_server::invites::links(&s.base, &code);
    let out = peal(&s.base, "gina", &["join", &link, "--name", "Gina"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(line["joined"]["uid"], "gina");
    assert!(has_account(&s, "gina").await);
    // The link is used up: a second try is refused with the reason, exit 5.
    let again = peal(&s.base, "hal", &["join", &code, "--name", "Hal"]).await;
    assert_eq!(again.status.code(), Some(5));
    let err: serde_json::Value =
        serde_json::from_slice(&again.stderr).expect("one JSON error line");
    assert_eq!(err["error"]["code"], "invite_invalid");
}
