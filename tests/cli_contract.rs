//! The `peal` and `peal-server` binaries driven exactly as the CLI contract in
//! ARCHITECTURE.md says: JSON lines out, one JSON error line on stderr, exit
//! codes 2/3/4/5. The binaries are the ones `cargo build --workspace --bins`
//! put next to this test (make test builds them first).

use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use peal_tests::bin;
use peal_tests::cli::{events, media_stats, Running, Server};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn start_server() -> Server {
    let dir = seeded_data_dir();
    let port = free_port();
    let child = spawn_server(dir.path(), port, 30);
    Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    }
}

/// A data directory with alice, bob, carol and the group trio, made by the admin commands.
fn seeded_data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    let admin = |args: &[&str]| {
        let out = Command::new(bin("peal-server"))
            .arg("--data")
            .arg(dir.path())
            .args(args)
            .output()
            .expect("admin");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    for (uid, name) in [("alice", "Alice"), ("bob", "Bob"), ("carol", "Carol")] {
        admin(&["user", "add", uid, "--name", name, "--password", "pw"]);
    }
    admin(&[
        "group",
        "add",
        "trio",
        "--name",
        "Trio",
        "--members",
        "alice,bob,carol",
    ]);
    dir
}

/// Starts `peal-server serve` and waits until it accepts connections.
fn spawn_server(data: &std::path::Path, port: u16, ring_timeout: u32) -> Child {
    #[allow(clippy::zombie_processes)] // Server's Drop (or the test) kills and waits.
    let child = Command::new(bin("peal-server"))
        .arg("--data")
        .arg(data)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--ring-timeout",
            &ring_timeout.to_string(),
            // Every `peal` command signs in, and all of them from 127.0.0.1.
            "--logins-per-address",
            "100000",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("server starts");
    for _ in 0..400 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return child;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("peal-server did not start listening");
}

fn peal(server: &Server, user: &str) -> Command {
    peal_with(server, user, "pw")
}

fn peal_with(server: &Server, user: &str, password: &str) -> Command {
    let mut c = Command::new(bin("peal"));
    c.env_remove("PEAL_DEVICE").args([
        "--server",
        &server.url,
        "--user",
        user,
        "--password",
        password,
    ]);
    c
}

/// Waits until `uid` shows as online to alice (their `answer` is listening).
fn wait_online(server: &Server, uid: &str) {
    for _ in 0..300 {
        let out = peal(server, "alice")
            .arg("contacts")
            .output()
            .expect("contacts");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|c| c["uid"] == uid && c["presence"] == "online")
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    panic!("{uid} never came online");
}

#[test]
fn call_answered_then_hung_up_prints_the_contract_lines_and_history() {
    let s = start_server();
    let mut answer = peal(&s, "bob");
    answer.args(["answer", "--accept", "--hangup-after", "300"]);
    let bob = Running::start(answer);
    wait_online(&s, "bob");

    let mut call = peal(&s, "alice");
    call.args(["call", "bob", "--audio"]);
    let alice = Running::start(call);
    let a = alice.until_final();
    assert_eq!(
        events(&a),
        [
            "initiated",
            "outgoing_call_accepted",
            "call_ended_message_received",
            "final"
        ]
    );
    let c = &a[0]["call"];
    assert_eq!(c["status"], "initiated");
    assert_eq!(c["call_type"], "audio");
    assert_eq!(c["receiver_type"], "user");
    assert_eq!(
        c["initiator"],
        serde_json::json!({"uid": "alice", "name": "Alice"})
    );
    assert_eq!(
        c["receiver"],
        serde_json::json!({"uid": "bob", "name": "Bob"})
    );
    assert!(c["joined_at"].is_null() && c["ended_at"].is_null());
    assert!(c["initiated_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    let fin = &a[3]["call"];
    assert_eq!(fin["status"], "ended");
    assert!(fin["joined_at"].is_string() && fin["ended_at"].is_string());
    assert_eq!(alice.exit_code(), 0);

    let b = bob.until_final();
    assert_eq!(
        events(&b).first().map(String::as_str),
        Some("incoming_call_received")
    );
    assert_eq!(b.last().unwrap()["call"]["status"], "ended");
    assert_eq!(bob.exit_code(), 0);

    let out = peal(&s, "alice")
        .args(["history", "--limit", "5"])
        .output()
        .expect("history");
    assert!(out.status.success());
    let rows: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["status"], "ended");
    assert_eq!(rows[0]["direction"], "outgoing");
    assert_eq!(rows[0]["peer"], "bob");
    assert_eq!(rows[0]["call_type"], "audio");
}

#[test]
fn cancel_after_an_ignored_ring_leaves_the_callee_a_missed_call() {
    let s = start_server();
    let mut answer = peal(&s, "bob");
    answer.args(["answer", "--ignore"]);
    let bob = Running::start(answer);
    wait_online(&s, "bob");
    let alice = Running::start({
        let mut c = peal(&s, "alice");
        c.args(["call", "bob", "--cancel-after", "300"]);
        c
    });
    let a = alice.until_final();
    assert_eq!(events(&a), ["initiated", "final"]);
    assert_eq!(a[1]["call"]["status"], "cancelled");
    let b = bob.until_final();
    assert_eq!(
        events(&b),
        ["incoming_call_received", "incoming_call_cancelled", "final"]
    );
    assert_eq!(b[1]["reason"], "cancelled");
    let out = peal(&s, "bob").arg("history").output().expect("history");
    let row: Value = serde_json::from_str(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .expect("a row"),
    )
    .expect("json");
    assert_eq!(
        (row["status"].as_str(), row["direction"].as_str()),
        (Some("missed"), Some("incoming"))
    );
}

#[test]
fn busy_and_reject_answers_reach_the_caller_as_outgoing_call_rejected() {
    let s = start_server();
    for (flag, status) in [("--busy", "busy"), ("--reject", "rejected")] {
        let bob = Running::start({
            let mut c = peal(&s, "bob");
            c.args(["answer", flag, "--after", "50"]);
            c
        });
        wait_online(&s, "bob");
        let alice = Running::start({
            let mut c = peal(&s, "alice");
            c.args(["call", "bob"]);
            c
        });
        let a = alice.until_final();
        assert_eq!(
            events(&a),
            ["initiated", "outgoing_call_rejected", "final"],
            "{flag}"
        );
        assert_eq!(a[2]["call"]["status"], status);
        assert_eq!(bob.until_final().last().unwrap()["call"]["status"], status);
        // Let bob's device go offline before the next round.
        drop(bob);
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn one_shot_commands_and_errors_follow_the_exit_code_contract() {
    let s = start_server();
    // contacts: one JSON line per contact
    let out = peal(&s, "alice")
        .arg("contacts")
        .output()
        .expect("contacts");
    assert!(out.status.success());
    let uids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("json")["uid"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(uids, ["bob", "carol"]);

    // 4: authentication failed
    let out = peal_with(&s, "alice", "wrong")
        .arg("contacts")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(4));
    let err: Value = serde_json::from_str(String::from_utf8_lossy(&out.stderr).trim())
        .expect("one JSON line on stderr");
    assert_eq!(err["error"]["code"], "unauthorized");

    // 5: refused by the server
    let out = peal(&s, "alice")
        .args(["accept", "0123456789abcdef0123456789abcdef"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(5));
    let err: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stderr).trim()).expect("json");
    assert_eq!(err["error"]["code"], "not_found");
    let out = peal(&s, "alice")
        .args(["call", "alice"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(5));

    // 2: usage
    let out = peal(&s, "alice").args(["call"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));

    // 3: server unreachable
    let dead = format!("http://127.0.0.1:{}", free_port());
    let out = Command::new(bin("peal"))
        .args([
            "--server",
            &dead,
            "--user",
            "alice",
            "--password",
            "pw",
            "contacts",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    assert!(serde_json::from_str::<Value>(String::from_utf8_lossy(&out.stderr).trim()).is_ok());

    // accept/reject/cancel/end print {"call":...}
    let alice_call = Running::start({
        let mut c = peal(&s, "alice");
        c.args(["call", "carol"]);
        c
    });
    let first = alice_call.line();
    let id = first["call"]["session_id"]
        .as_str()
        .expect("session id")
        .to_owned();
    let out = peal(&s, "carol")
        .args(["accept", &id])
        .output()
        .expect("accept");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["call"]["status"], "ongoing");
    let out = peal(&s, "carol").args(["end", &id]).output().expect("end");
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["call"]["status"], "ended");
    let a = alice_call.until_final();
    assert_eq!(a.last().unwrap()["call"]["status"], "ended");
}

#[test]
fn a_server_killed_mid_ring_finishes_expired_rings_on_restart_and_keeps_the_others_ringing() {
    let dir = seeded_data_dir();
    let port = free_port();
    let mut s = Server {
        child: spawn_server(dir.path(), port, 2),
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let placed = |user: &str, extra: &[&str]| {
        let mut c = peal(&s, user);
        c.args(["call", "bob"]).args(extra);
        let r = Running::start(c);
        let first = r.line();
        assert_eq!(first["event"], "initiated");
        (
            r,
            first["call"]["session_id"].as_str().expect("id").to_owned(),
        )
    };
    let (alice_call, short) = placed("alice", &[]); // rings 2 s (the server default here)
    let (carol_call, long) = placed("carol", &["--timeout", "60"]);

    // kill -9: no goodbye, no chance to write anything more.
    s.child.kill().expect("kill");
    s.child.wait().expect("reaped");
    drop((alice_call, carol_call));
    std::thread::sleep(Duration::from_millis(2_500)); // the short ring runs out while the server is down
    s.child = spawn_server(s._dir.path(), port, 2);

    let rows = |user: &str| -> Vec<Value> {
        let out = peal(&s, user).arg("history").output().expect("history");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect()
    };
    let status_of = |rows: &[Value], id: &str| {
        rows.iter()
            .find(|r| r["session_id"] == id)
            .map(|r| r["status"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(
        status_of(&rows("alice"), &short).as_deref(),
        Some("unanswered")
    );
    let bob = rows("bob");
    assert_eq!(status_of(&bob, &short).as_deref(), Some("missed"));
    assert_eq!(
        status_of(&bob, &long).as_deref(),
        Some("initiated"),
        "the 60 s ring survives the crash"
    );

    // A device of bob's that connects now rings for the surviving call and can answer it.
    let answer = Running::start({
        let mut c = peal(&s, "bob");
        c.args(["answer", "--accept", "--hangup-after", "100"]);
        c
    });
    let lines = answer.until_final();
    assert_eq!(lines[0]["event"], "incoming_call_received");
    assert_eq!(lines[0]["call"]["session_id"], long.as_str());
    assert_eq!(lines.last().unwrap()["call"]["status"], "ended");
}

#[test]
fn a_group_call_from_the_cli_one_declines_one_joins_and_the_caller_leaving_ends_it() {
    let s = start_server();
    let bob = Running::start({
        let mut c = peal(&s, "bob");
        c.args(["answer", "--accept"]);
        c
    });
    let carol = Running::start({
        let mut c = peal(&s, "carol");
        c.args(["answer", "--reject"]);
        c
    });
    wait_online(&s, "bob");
    wait_online(&s, "carol");
    let alice = Running::start({
        let mut c = peal(&s, "alice");
        c.args(["call", "trio", "--group", "--hangup-after", "300"]);
        c
    });
    let a = alice.until_final();
    assert_eq!(a[0]["event"], "initiated");
    assert_eq!(
        a[0]["call"]["receiver"],
        serde_json::json!({"guid": "trio", "name": "Trio"})
    );
    assert!(
        events(&a).contains(&"outgoing_call_accepted".to_owned()),
        "{a:?}"
    );
    assert_eq!(
        a.last().unwrap()["call"]["status"],
        "ended",
        "fewer than two left"
    );

    let c = carol.until_final();
    assert_eq!(
        events(&c),
        ["incoming_call_received", "final"],
        "a decliner is done at once"
    );
    let b = bob.until_final();
    assert_eq!(b.last().unwrap()["call"]["status"], "ended");
    assert_eq!(
        events(&b)
            .iter()
            .filter(|e| *e == "call_ended_message_received")
            .count(),
        1
    );
}

/// alice calls bob with synthetic media on loopback, hangs up after `ms`, prints stats.
fn synthetic_call(s: &Server, ms: u64) -> Command {
    let mut call = peal(s, "alice");
    call.env("PEAL_MEDIA_BIND", "127.0.0.1:0")
        .args(["call", "bob", "--media", "synthetic"]);
    call.args(["--hangup-after", &ms.to_string(), "--stats"]);
    call
}

#[test]
fn synthetic_media_call_shows_frames_received_and_verified_both_ways() {
    let s = start_server();
    let mut answer = peal(&s, "bob");
    answer.env("PEAL_MEDIA_BIND", "127.0.0.1:0").args([
        "answer",
        "--accept",
        "--media",
        "synthetic",
        "--stats",
    ]);
    let bob = Running::start(answer);
    wait_online(&s, "bob");
    let alice = Running::start(synthetic_call(&s, 3000));
    let a = alice.until_final();
    let b = bob.until_final();
    for (who, lines) in [("alice", &a), ("bob", &b)] {
        let st = media_stats(lines);
        let r = &st["received"];
        // 3 s at 30 fps; a debug build on 2 busy cores still gets well past a third.
        assert!(r["verified_frames"].as_u64().unwrap() >= 30, "{who}: {st}");
        assert_eq!(r["corrupt_frames"], 0, "{who}: {st}");
        assert!(
            r["verified_audio_frames"].as_u64().unwrap() >= 50,
            "{who}: {st}"
        );
        assert!(
            st["sent"]["video_frames"].as_u64().unwrap() >= 30,
            "{who}: {st}"
        );
        assert!(
            st["first_remote_video_ms"].as_u64().is_some(),
            "{who}: {st}"
        );
        assert!(
            st["capture_to_decode_ms_p50"].as_u64().is_some(),
            "{who}: {st}"
        );
    }
    assert_eq!(a.last().unwrap()["call"]["status"], "ended");
    assert_eq!(alice.exit_code(), 0);
    assert_eq!(bob.exit_code(), 0);
}

#[test]
fn the_echo_bot_sends_the_caller_its_own_frames_back() {
    let s = start_server();
    let mut bot = peal(&s, "bob");
    bot.env("PEAL_MEDIA_BIND", "127.0.0.1:0").args(["echo-bot"]);
    let _bot = Running::start(bot);
    wait_online(&s, "bob");
    let alice = Running::start(synthetic_call(&s, 2500));
    let a = alice.until_final();
    let st = media_stats(&a);
    // What comes back is alice's own pattern: it verifies, in order.
    assert!(
        st["received"]["verified_frames"].as_u64().unwrap() >= 20,
        "{st}"
    );
    assert_eq!(st["received"]["corrupt_frames"], 0, "{st}");
    assert!(
        st["received"]["verified_audio_frames"].as_u64().unwrap() >= 30,
        "{st}"
    );
    assert_eq!(alice.exit_code(), 0);
}

#[test]
fn media_devices_without_a_microphone_fail_before_anyone_rings_with_exit_6() {
    // This machine kind has no sound card, camera or sound server.
    if std::path::Path::new("/dev/snd").exists() {
        return;
    }
    let s = start_server();
    let out = peal(&s, "alice")
        .args(["call", "bob", "--media", "devices"])
        .output()
        .expect("peal runs");
    assert_eq!(out.status.code(), Some(6));
    assert!(
        out.stdout.is_empty(),
        "nothing was rung: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON error line: {err}");
    let v: Value = serde_json::from_str(lines[0]).expect("JSON");
    assert_eq!(v["error"]["code"], "media_unavailable");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("microphone")),
        "{v}"
    );
    let history = peal(&s, "alice")
        .args(["history"])
        .output()
        .expect("history");
    assert!(history.stdout.is_empty(), "no call was placed");
}

#[test]
fn a_call_cancelled_from_another_device_of_the_caller_ends_the_calling_process() {
    let s = start_server();
    let bob = Running::start({
        let mut c = peal(&s, "bob");
        c.args(["answer", "--ignore"]);
        c
    });
    wait_online(&s, "bob");
    let alice = Running::start({
        let mut c = peal(&s, "alice");
        c.args(["call", "bob", "--timeout", "20"]);
        c
    });
    let initiated = alice.line();
    assert_eq!(initiated["event"], "initiated");
    let id = initiated["call"]["session_id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(bob.line()["event"], "incoming_call_received");
    // Alice's other device cancels the call her laptop placed.
    let out = peal(&s, "alice")
        .args(["--device", "phone", "cancel", &id])
        .output()
        .expect("cancel");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut a = vec![initiated];
    a.extend(alice.until_final());
    assert_eq!(
        events(&a),
        ["initiated", "call_ended_message_received", "final"]
    );
    assert_eq!(a[1]["reason"], "cancelled_elsewhere");
    assert_eq!(a[2]["call"]["status"], "cancelled");
    assert_eq!(alice.exit_code(), 0);
    let b = bob.until_final();
    assert_eq!(events(&b), ["incoming_call_cancelled", "final"]);
    assert_eq!(b[0]["reason"], "cancelled");
}

#[test]
fn a_call_hung_up_from_another_device_of_the_callee_ends_the_answering_process() {
    let s = start_server();
    let bob = Running::start({
        let mut c = peal(&s, "bob");
        c.args(["answer", "--accept"]);
        c
    });
    wait_online(&s, "bob");
    let alice = Running::start({
        let mut c = peal(&s, "alice");
        c.args(["call", "bob", "--timeout", "20"]);
        c
    });
    let initiated = alice.line();
    let id = initiated["call"]["session_id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(alice.line()["event"], "outgoing_call_accepted");
    // Bob's tablet hangs up the call his `answer` took.
    let out = peal(&s, "bob")
        .args(["--device", "tablet", "end", &id])
        .output()
        .expect("end");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b = bob.until_final();
    let ended = b
        .iter()
        .find(|l| l["event"] == "call_ended_message_received")
        .expect("bob's answering process hears the end");
    assert_eq!(ended["reason"], "ended_elsewhere");
    assert_eq!(bob.exit_code(), 0);
    let a = alice.until_final();
    assert_eq!(events(&a), ["call_ended_message_received", "final"]);
    assert_eq!(a[0]["reason"], "hung_up");
}

/// `peal` on a machine with a real sound server (PulseAudio, the default
/// speakers and a plugged-in headset whose microphone plays 440 Hz).
fn with_sound(mut cmd: Command, home: &std::path::Path) -> Command {
    let alsa = peal_tests::sound::alsa_config_path(home);
    cmd.env("HOME", home)
        .env("XDG_RUNTIME_DIR", home)
        .env("ALSA_CONFIG_PATH", alsa);
    cmd
}

/// Runs `cmd` to its end; it must exit with `code`.
fn exits(mut cmd: Command, code: i32) -> std::process::Output {
    let out = cmd.output().expect("peal runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{err}");
    out
}

fn cmd_devices() -> Command {
    let mut c = Command::new(bin("peal"));
    c.arg("devices");
    c
}

fn error_of(out: &std::process::Output) -> Value {
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {err:?}: {e}"))
}

#[test]
fn peal_devices_lists_the_headset_a_call_on_it_is_heard_there_and_one_not_plugged_in_fails_naming_what_is(
) {
    use peal_tests::sound::{heard, plug, Pulse};
    let home = tempfile::tempdir().expect("home");
    let log = home.path().join("pulseaudio.log");
    let mut pulse = Pulse::start(home.path(), &log);
    plug(home.path(), true, false);

    // The names the flags take, without signing in.
    let out = exits(with_sound(cmd_devices(), home.path()), 0);
    let listed: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    for list in ["microphones", "speakers"] {
        assert!(
            listed[list]
                .as_array()
                .is_some_and(|l| l.iter().any(|d| d == "headset")),
            "{listed}"
        );
    }
    assert!(listed["cameras"].is_array(), "{listed}");
    assert_eq!(listed["labels"]["headset"], "USB Headset", "{listed}");

    // A speaker that is not plugged in: refused before anyone rings, with
    // what is connected.
    let s = start_server();
    let mut call = with_sound(peal(&s, "alice"), home.path());
    call.args(["call", "bob", "--audio", "--media", "devices"])
        .args(["--speaker", "Desk speakers"]);
    let out = exits(call, 6);
    assert!(out.stdout.is_empty(), "nothing was rung");
    let v = error_of(&out);
    assert_eq!(v["error"]["code"], "media_unavailable");
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("Desk speakers")
            && message.contains("connected speakers:")
            && message.contains("headset"),
        "{message}"
    );
    // A device named for media that uses none is a mistake, said so.
    let mut call = peal(&s, "alice");
    call.args([
        "call",
        "bob",
        "--media",
        "synthetic",
        "--microphone",
        "headset",
    ]);
    assert_eq!(error_of(&exits(call, 2))["error"]["code"], "bad_request");
    let history = peal(&s, "alice").arg("history").output().expect("history");
    assert!(history.stdout.is_empty(), "no call was placed");

    // Bob answers on the headset: alice's tone is heard in it, and what she
    // receives is its microphone.
    let recording = pulse.record_headset();
    let bob = Running::start({
        let mut c = with_sound(peal(&s, "bob"), home.path());
        c.args(["answer", "--media", "devices"]).args([
            "--microphone",
            "headset",
            "--speaker",
            "headset",
        ]);
        c
    });
    wait_online(&s, "bob");
    let alice = Running::start({
        let mut c = peal(&s, "alice");
        c.args([
            "call",
            "bob",
            "--audio",
            "--media",
            "synthetic",
            "--stats",
            "--hangup-after",
            "6000",
        ]);
        c
    });
    let a = alice.until_final();
    assert_eq!(a.last().unwrap()["call"]["status"], "ended", "{a:?}");
    let st = media_stats(&a);
    assert!(
        st["received"]["audio_frames"]
            .as_u64()
            .is_some_and(|n| n >= 25),
        "alice receives bob's microphone: {st}"
    );
    bob.until_final();
    let tones: Vec<f64> = (0..8).map(|i| 400.0 + 100.0 * f64::from(i)).collect();
    let (ratio, peak) = heard(&recording, &tones);
    assert!(
        ratio > 20.0 && peak > 0.01,
        "alice's tone in the headset: {ratio:.1}x the power off its notes, peak {peak}"
    );
}
