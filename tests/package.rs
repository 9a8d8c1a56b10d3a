//! The package a person installs: `make package` builds the .deb with
//! Tauri's bundler (make test builds it first); this installs it into a
//! scratch root, checks what it declares, and starts the installed binary
//! under Xvfb until its window is on screen.

use std::path::PathBuf;
use std::process::{Command, Stdio};

fn deb() -> PathBuf {
    let mut dir = std::env::current_exe().expect("exe");
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let dir = dir.join("bundle/deb");
    std::fs::read_dir(&dir)
        .ok()
        .and_then(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|x| x == "deb"))
        })
        .unwrap_or_else(|| panic!("no .deb in {}: run `make package`", dir.display()))
}

fn field(deb: &PathBuf, name: &str) -> String {
    let out = Command::new("dpkg-deb")
        .arg("--field")
        .arg(deb)
        .arg(name)
        .output()
        .expect("dpkg-deb runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn the_deb_installs_into_a_scratch_root_and_the_installed_app_starts() {
    let deb = deb();
    assert_eq!(field(&deb, "Package"), "peal");
    let depends = field(&deb, "Depends");
    for needed in [
        "libwebkit2gtk-4.1-0",
        // WebCodecs' VP8 in the page, the codecs and ALSA of the media.
        "gstreamer1.0-plugins-good",
        "libopus0",
        "libvpx7",
        "libasound2",
    ] {
        assert!(
            depends.contains(needed),
            "Depends lacks {needed}: {depends}"
        );
    }
    // dpkg -i would find every dependency on this machine.
    for dep in depends
        .split(',')
        .map(|d| d.split_whitespace().next().unwrap_or(""))
    {
        let ok = Command::new("dpkg-query")
            .args(["-W", "-f=${Status}", dep])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("installed"));
        assert!(ok, "dependency {dep} is not installable here");
    }

    let root = tempfile::tempdir().expect("scratch root");
    let x = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(root.path())
        .status()
        .expect("dpkg-deb -x");
    assert!(x.success());
    let app = root.path().join("usr/bin/peal-desktop");
    assert!(app.exists(), "the binary is installed");
    let desktop = std::fs::read_to_string(root.path().join("usr/share/applications/Peal.desktop"))
        .expect("a desktop entry");
    assert!(desktop.contains("Exec=peal-desktop"), "{desktop}");
    // peal: links open in Peal, the link handed to it as its argument.
    assert!(
        desktop.contains("MimeType=x-scheme-handler/peal;")
            && desktop.contains("Exec=peal-desktop %u"),
        "{desktop}"
    );
    assert!(root
        .path()
        .join("usr/share/icons/hicolor/128x128/apps/peal-desktop.png")
        .exists());

    let (mut xvfb, display) = peal_tests::xvfb();
    let home = tempfile::tempdir().expect("home");
    // The installed app, as a person starts it: a home of its own and a
    // session bus (one instance is a name on it), nothing else running.
    let (mut dbus, bus) = peal_tests::session_bus(home.path());
    let launch = || {
        Command::new(&app)
            .env("DISPLAY", &display)
            .env("HOME", home.path())
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .env("XDG_RUNTIME_DIR", home.path())
            .env("DBUS_SESSION_BUS_ADDRESS", &bus)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the installed app starts")
    };
    let mut child = launch();
    peal_tests::wait_for("the installed app's window on screen", 20, || {
        peal_tests::window_titles(&display).contains("\"Peal\"")
    });
    assert!(
        child.try_wait().expect("status").is_none(),
        "the installed app keeps running"
    );
    // One instance: a second launch hands over to the first and exits.
    let mut second = launch();
    peal_tests::wait_for("the second launch exits", 15, || {
        second.try_wait().ok().flatten().is_some()
    });
    assert!(second.wait().expect("status").success());
    assert!(
        child.try_wait().expect("status").is_none(),
        "the first goes on"
    );
    let windows = peal_tests::window_titles(&display);
    assert_eq!(
        windows.matches("\"Peal\"").count(),
        1,
        "one main window: {windows}"
    );
    let _ = child.kill();
    let _ = child.wait();
    let _ = xvfb.kill();
    let _ = xvfb.wait();
    let _ = dbus.kill();
    let _ = dbus.wait();
}
