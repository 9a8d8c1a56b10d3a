//! Peal on Windows, run here under wine: the `peal-server.exe` and
//! `peal.exe` that `make test` cross-builds (x86_64-pc-windows-gnu) talking
//! to the Linux `peal`, driven through the CLI contract as the Linux
//! scenarios are (`support/wine.rs` says what the harness adds: a prefix
//! and a shim for wine's missing `ProcessPrng`, never shipped).

use serde_json::Value;
use std::process::{Command, Stdio};

use peal_tests::cli::{events, media_stats, Running, Server};
use peal_tests::wine::{windows_path, wine, Wine};
use peal_tests::{bin, free_port, wait_for};

/// `peal-server` (`admin` runs it: under wine or not) with alice and bob
/// added by its own admin commands, serving on a free port.
fn server(admin: impl Fn() -> Command, data_arg: impl Fn(&std::path::Path) -> String) -> Server {
    let dir = tempfile::tempdir().expect("tmp");
    let data = data_arg(dir.path());
    for (uid, name) in [("alice", "Alice"), ("bob", "Bob")] {
        let out = admin()
            .args(["--data", &data, "user", "add", uid, "--name", name])
            .args(["--password", "pw"])
            .output()
            .expect("admin");
        assert!(
            out.status.success(),
            "user add {uid}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let port = free_port();
    #[allow(clippy::zombie_processes)] // Server's Drop kills and waits.
    let child = admin()
        .args([
            "--data",
            &data,
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .args(["--logins-per-address", "100000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("server starts");
    wait_for("the server listens", 60, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    }
}

/// `peal` as `user` on `s`, from `cmd` (the Linux binary or `peal.exe`).
fn signed_in(mut cmd: Command, s: &Server, user: &str) -> Command {
    cmd.env_remove("PEAL_DEVICE")
        .args(["--server", &s.url, "--user", user, "--password", "pw"]);
    cmd
}

fn linux_peal(s: &Server, user: &str) -> Command {
    signed_in(Command::new(bin("peal")), s, user)
}

fn windows_peal(w: &Wine, s: &Server, user: &str) -> Command {
    signed_in(w.command("peal.exe"), s, user)
}

/// Waits until `uid` shows as online to alice (their `answer` listens).
fn wait_online(s: &Server, uid: &str) {
    wait_for(&format!("{uid} comes online"), 60, || {
        let out = linux_peal(s, "alice")
            .arg("contacts")
            .output()
            .expect("contacts");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|c| c["uid"] == uid && c["presence"] == "online")
    });
}

/// `peal history` (`cmd` signed in): the rows.
fn history(mut cmd: Command) -> Vec<Value> {
    let out = cmd
        .args(["history", "--limit", "5"])
        .output()
        .expect("history");
    assert!(
        out.status.success(),
        "history: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON row"))
        .collect()
}

#[test]
fn a_windows_server_and_a_windows_peal_take_a_call_from_linux_ring_accept_hang_up_ended_in_both_histories(
) {
    let w = wine();
    let s = server(|| w.command("peal-server.exe"), windows_path);

    let mut answer = windows_peal(&w, &s, "bob");
    answer.args(["answer", "--accept", "--hangup-after", "500"]);
    let bob = Running::start(answer);
    wait_online(&s, "bob");

    let mut call = linux_peal(&s, "alice");
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
    assert_eq!(a[3]["call"]["status"], "ended");
    assert_eq!(alice.exit_code(), 0);
    let b = bob.until_final();
    assert_eq!(
        events(&b).first().map(String::as_str),
        Some("incoming_call_received")
    );
    assert_eq!(b.last().unwrap()["call"]["status"], "ended");
    assert_eq!(bob.exit_code(), 0);

    for (who, rows, direction, peer) in [
        (
            "alice (Linux)",
            history(linux_peal(&s, "alice")),
            "outgoing",
            "bob",
        ),
        (
            "bob (Windows)",
            history(windows_peal(&w, &s, "bob")),
            "incoming",
            "alice",
        ),
    ] {
        assert_eq!(rows.len(), 1, "{who}: {rows:?}");
        assert_eq!(rows[0]["status"], "ended", "{who}");
        assert_eq!(rows[0]["direction"], direction, "{who}");
        assert_eq!(rows[0]["peer"], peer, "{who}");
    }
}

#[test]
fn a_media_call_between_a_windows_peal_and_a_linux_peal_shows_verified_frames_both_ways() {
    let w = wine();
    let s = server(
        || Command::new(bin("peal-server")),
        |p| p.display().to_string(),
    );

    let mut answer = windows_peal(&w, &s, "bob");
    answer.env("PEAL_MEDIA_BIND", "127.0.0.1:0").args([
        "answer",
        "--accept",
        "--media",
        "synthetic",
        "--stats",
    ]);
    let bob = Running::start(answer);
    wait_online(&s, "bob");

    let mut call = linux_peal(&s, "alice");
    call.env("PEAL_MEDIA_BIND", "127.0.0.1:0")
        .args(["call", "bob", "--media", "synthetic"])
        .args(["--hangup-after", "4000", "--stats"]);
    let alice = Running::start(call);
    let a = alice.until_final();
    let b = bob.until_final();
    for (who, lines) in [("alice (Linux)", &a), ("bob (Windows)", &b)] {
        let st = media_stats(lines);
        let r = &st["received"];
        // 4 s at 30 fps: well past a third even with wine on 2 busy cores.
        assert!(r["verified_frames"].as_u64().unwrap() >= 30, "{who}: {st}");
        assert_eq!(r["corrupt_frames"], 0, "{who}: {st}");
        assert!(
            r["verified_audio_frames"].as_u64().unwrap() >= 50,
            "{who}: {st}"
        );
    }
    assert_eq!(a.last().unwrap()["call"]["status"], "ended");
    assert_eq!(alice.exit_code(), 0);
    assert_eq!(bob.exit_code(), 0);
}

#[test]
fn the_installer_puts_the_app_its_loader_a_shortcut_and_peal_links_in_place_and_the_uninstaller_takes_them_away(
) {
    let w = wine();
    let (app, loader) = (
        w.bin.join("peal-desktop.exe"),
        w.bin.join("WebView2Loader.dll"),
    );
    for f in [&app, &loader] {
        assert!(
            f.exists(),
            "{} is missing (scripts/windows.sh build places it)",
            f.display()
        );
    }
    let dir = tempfile::tempdir().expect("tmp");
    let setup = dir.path().join("Peal-setup.exe");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let define = |k: &str, v: &std::path::Path| format!("-D{k}={}", v.display());
    let out = Command::new("makensis")
        .args(["-V2", "-DVERSION=0.1.0", "-DCOMPRESSOR=zlib"])
        .arg(define("APP", &app))
        .arg(define("LOADER", &loader))
        .arg(define("ICON", &root.join("icons/icon.ico")))
        .arg(define("PICTURE", &root.join("icons/128x128.png")))
        .arg(define("OUT", &setup))
        .arg(root.join("scripts/windows/installer.nsi"))
        .output()
        .expect("makensis (nsis) runs");
    assert!(
        out.status.success(),
        "makensis: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Silently, into a folder of this test's (the keys are the user's).
    let installed = dir.path().join("Programs").join("Peal");
    let status = w
        .program(&setup)
        .arg("/S")
        .arg(format!("/D={}", windows_path(&installed)))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("the installer runs");
    assert!(status.success(), "the installer: {status}");
    for (file, like) in [("peal-desktop.exe", &app), ("WebView2Loader.dll", &loader)] {
        let got = std::fs::metadata(installed.join(file))
            .map(|m| m.len())
            .ok();
        let want = std::fs::metadata(like).expect("built").len();
        assert_eq!(got, Some(want), "{file} installed whole");
    }
    assert!(installed.join("uninstall.exe").exists(), "an uninstaller");
    let shortcut = w.start_menu().join("Peal.lnk");
    assert!(
        shortcut.exists(),
        "{} in the Start menu",
        shortcut.display()
    );
    let app_path = format!("{}\\peal-desktop.exe", windows_path(&installed));
    let open = w.registry(r"HKCU\Software\Classes\peal\shell\open\command", None);
    assert_eq!(
        open,
        Some(format!("\"{app_path}\" \"%1\"")),
        "a peal: link opens the app"
    );
    assert_eq!(
        w.registry(
            r"HKCU\Software\Classes\AppUserModelId\app.peal.desktop",
            Some("DisplayName")
        )
        .as_deref(),
        Some("Peal"),
        "notifications come from Peal"
    );
    let uninstall_key = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Uninstall\Peal";
    assert_eq!(
        w.registry(uninstall_key, Some("DisplayName")).as_deref(),
        Some("Peal"),
        "listed in Installed apps"
    );

    // The uninstaller copies itself away and runs from there: wait for it.
    let status = w
        .program(&installed.join("uninstall.exe"))
        .arg("/S")
        // Its copy outlives this: it must not hold the test's output.
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("the uninstaller runs");
    assert!(status.success(), "the uninstaller: {status}");
    wait_for("the uninstaller removes the app", 120, || {
        !installed.join("peal-desktop.exe").exists()
    });
    wait_for("the uninstaller removes the peal: scheme", 60, || {
        w.registry(r"HKCU\Software\Classes\peal\shell\open\command", None)
            .is_none()
    });
    assert_eq!(w.registry(uninstall_key, Some("DisplayName")), None);
    assert!(!installed.join("WebView2Loader.dll").exists());
    assert!(!shortcut.exists(), "the Start menu entry removed");
}
