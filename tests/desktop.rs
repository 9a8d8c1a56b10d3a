//! The desktop app end to end: the real debug build of `peal-desktop` in a
//! real WebKit window under Xvfb, driven through tauri-driver and
//! WebKitWebDriver, against a real peal-server (in this process, real
//! sockets, a real SQLite file, the system clock), with the real `peal` CLI
//! as the other party.
//!
//! What this machine lacks is stood in for, and named so: the sound card is
//! an ALSA `file` device (the app's output is captured to a file and its
//! pitch checked), and the notification daemon is [`notifications`], a
//! stand-in that speaks the freedesktop interface on a private D-Bus session
//! (`dbus-daemon`), records what the app shows and clicks its buttons.
//! Screenshots of the whole X screen are saved under `target/e2e/`.

use peal_desktop_core::tones::power_at;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use peal_tests::bin;

fn artifacts() -> PathBuf {
    let dir = bin("").join("../e2e");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

use peal_tests::sound::{alsa_config_path, heard, plug, Pulse};
use peal_tests::{free_port, notifications, wait_for};

/// A peal-server with the system clock (so calls have real durations) and
/// the users alice and bob (password `peal`).
struct Server {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Server {
        let dir = tempfile::tempdir().expect("dir");
        let server = peal_server::Server::open(
            peal_server::Config::new(dir.path().to_path_buf()),
            Arc::new(peal_server::clock::SystemClock),
        )
        .await
        .expect("server");
        for (uid, name) in [("alice", "Alice"), ("bob", "Bob"), ("carol", "Carol")] {
            server.add_user(uid, name, "peal").await.expect("user");
        }
        server
            .add_group("team", "Team", &["alice", "bob", "carol"])
            .await
            .expect("group");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.run(listener, async move {
            let _ = rx.await;
        }));
        Server {
            url,
            stop: Some(tx),
            _dir: dir,
        }
    }

    /// An invite to this server for `uses` accounts, as `peal-server invite`
    /// makes it: its `peal:join` link.
    async fn invite(&self, uses: u32) -> (String, String) {
        use peal_server::clock::Clock;
        let store = peal_server::store::SqliteStore::open(self._dir.path())
            .await
            .expect("store");
        let now = peal_server::clock::SystemClock.now();
        let (_, code) = peal_server::add_invite(&store, now, uses, 86_400_000)
            .await
            .expect("invite");
        store.close().await;
        let (link, _) = peal_server::invites::links(&self.url, &code);
        (link, code)
    }

    /// `peal --user alice ARGS...`: its stdout lines are read by [`Cli::finish`].
    fn alice(&self, args: &[&str]) -> Cli {
        self.cli("alice", args)
    }

    /// `peal --user UID ARGS...` (password `peal`).
    fn cli(&self, uid: &str, args: &[&str]) -> Cli {
        let child = Command::new(bin("peal"))
            .args(["--server", &self.url, "--user", uid, "--password", "peal"])
            .args(args)
            .env("PEAL_MEDIA_BIND", "127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("peal CLI starts");
        Cli { child }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

struct Cli {
    child: Child,
}

impl Cli {
    /// Waits for the CLI to exit; its JSON lines.
    fn finish(mut self) -> Vec<Value> {
        let start = Instant::now();
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "peal CLI exits");
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut out = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            use std::io::Read;
            let _ = o.read_to_string(&mut out);
        }
        out.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// Xvfb, a private D-Bus session, the stand-in notification daemon, an ALSA
/// output captured to a file, and tauri-driver; all stopped on drop.
struct Desktop {
    xvfb: Child,
    dbus: Child,
    driver: Child,
    port: u16,
    display: String,
    capture: PathBuf,
    bus: String,
    notifications: notifications::Daemon,
    home: tempfile::TempDir,
}

impl Drop for Desktop {
    fn drop(&mut self) {
        for c in [&mut self.driver, &mut self.dbus, &mut self.xvfb] {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Desktop {
    async fn start() -> Desktop {
        Desktop::start_with(true).await
    }

    /// `stand_ins` false: no sound card and no notification daemon at all.
    async fn start_with(stand_ins: bool) -> Desktop {
        let (xvfb, display) = peal_tests::xvfb();
        let home = tempfile::tempdir().expect("home");
        // A private session bus: nothing reaches a developer's desktop.
        let (dbus, bus) = peal_tests::session_bus(home.path());
        let notifications = if stand_ins {
            notifications::Daemon::start(&bus).await
        } else {
            notifications::Daemon::default()
        };

        // The sound card: ALSA's default device writes what it plays to a file.
        let capture = if stand_ins {
            peal_tests::alsa_to_file(home.path())
        } else {
            // Even on a machine with a sound card: ALSA's default is a card that isn't there.
            std::fs::write(
                home.path().join(".asoundrc"),
                "pcm.!default { type hw card 99 }\n",
            )
            .expect("asoundrc");
            home.path().join("no-sound-card")
        };

        let port = free_port();
        let cargo_bin = std::env::var("HOME")
            .map(|h| format!("{h}/.cargo/bin"))
            .unwrap_or_default();
        let path = format!("{cargo_bin}:{}", std::env::var("PATH").unwrap_or_default());
        let driver = Command::new("tauri-driver")
            .args([
                "--port",
                &port.to_string(),
                "--native-port",
                &free_port().to_string(),
            ])
            .env("DISPLAY", &display)
            .env("PATH", &path)
            .env("HOME", home.path())
            .env("DBUS_SESSION_BUS_ADDRESS", &bus)
            // The app's data (its embedded server, settings) stays here.
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .env("XDG_RUNTIME_DIR", home.path())
            .env("ALSA_CONFIG_PATH", alsa_config_path(home.path()))
            .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
            .env("PEAL_MEDIA_BIND", "127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            // tauri-driver lives in ~/.cargo/bin (make test installs it).
            .unwrap_or_else(|e| panic!("tauri-driver starts: {e}"));
        wait_for("tauri-driver listening", 10, || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Desktop {
            xvfb,
            dbus,
            driver,
            port,
            display,
            capture,
            bus,
            notifications,
            home,
        }
    }

    /// The X screen as target/e2e/NAME.png (WebKitWebDriver's own
    /// screenshot command hangs under Xvfb here), with the window list
    /// beside it; its pixels. A window with a 32-bit visual (the incoming
    /// window) shows black in a root capture without a compositor: see
    /// [`Desktop::window_shot`].
    fn screenshot(&self, name: &str) -> Vec<u8> {
        let _ = std::fs::write(
            artifacts().join(format!("{name}.windows.txt")),
            self.window_titles(),
        );
        self.xwd(&["-root"], name)
    }

    /// One window, by its title, as target/e2e/NAME.png; its pixels.
    fn window_shot(&self, title: &str, name: &str) -> Vec<u8> {
        self.xwd(&["-name", title], name)
    }

    fn xwd(&self, which: &[&str], name: &str) -> Vec<u8> {
        let out = Command::new("xwd")
            .args(which)
            .args(["-silent", "-display", &self.display])
            .output()
            .expect("xwd (apt: x11-apps) runs");
        let (w, h, rgb) = xwd_to_rgb(&out.stdout).unwrap_or_else(|| {
            panic!(
                "an XWD image of {which:?}: {} bytes, {}",
                out.stdout.len(),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let file = std::fs::File::create(artifacts().join(format!("{name}.png"))).expect("png");
        let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        if let Ok(mut wr) = enc.write_header() {
            let _ = wr.write_image_data(&rgb);
        }
        rgb
    }

    /// The app's log file (Tauri's log directory under this desktop's home).
    fn log_file(&self) -> PathBuf {
        self.home.path().join("data/app.peal.desktop/logs/peal.log")
    }

    /// Waits until the app on this desktop has exited (it no longer holds
    /// its one-instance name on the desktop's bus), so the next launch is a
    /// new process.
    fn app_gone(&self) {
        wait_for("the app has exited", 15, || {
            Command::new("dbus-send")
                .args([
                    &format!("--bus={}", self.bus),
                    "--print-reply",
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.NameHasOwner",
                    "string:app.peal.desktop.SingleInstance",
                ])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("boolean false"))
        });
    }

    /// The app started as the desktop's login would start it (no WebDriver):
    /// this desktop's display, bus and home, with `args`.
    fn spawn_app(&self, args: &[&str]) -> Child {
        let home = self.home.path();
        Command::new(bin("peal-desktop"))
            .args(args)
            .env("DISPLAY", &self.display)
            .env("HOME", home)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_RUNTIME_DIR", home)
            .env("ALSA_CONFIG_PATH", alsa_config_path(home))
            .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
            .env("PEAL_MEDIA_BIND", "127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("peal-desktop starts")
    }

    /// Whether a window titled `title` is on screen (mapped and viewable).
    fn shown(&self, title: &str) -> bool {
        Command::new("xwininfo")
            .args(["-display", &self.display, "-name", title])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("IsViewable"))
    }

    /// Window titles on the X screen (the incoming window is a real X window).
    fn window_titles(&self) -> String {
        peal_tests::window_titles(&self.display)
    }

    /// What the app has played so far, as mono f32 (the device's channels averaged).
    fn played(&self) -> (Vec<f32>, u32) {
        played_in(&self.capture)
    }
}

/// What the app has played into the ALSA file device writing `file`.
fn played_in(file: &std::path::Path) -> (Vec<f32>, u32) {
    let bytes = std::fs::read(file).unwrap_or_default();
    // cpal opens ALSA's default as 2 channels of f32 at 48 kHz here.
    let stereo: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let mono = stereo
        .chunks_exact(2)
        .map(|c| (c[0] + c[1]) / 2.0)
        .collect();
    (mono, 48_000)
}

/// Decodes an XWD (X window dump, 24/32-bit TrueColor) to RGB8.
fn xwd_to_rgb(x: &[u8]) -> Option<(u32, u32, Vec<u8>)> {
    let be = |i: usize| -> Option<u32> {
        x.get(i * 4..i * 4 + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let header = be(0)? as usize;
    let (w, h) = (be(4)?, be(5)?);
    let byte_order = be(7)?;
    let line = be(12)? as usize;
    let ncolors = be(19)? as usize;
    // Xvfb's 24-bit screen: 3 bytes a pixel, each line padded.
    let px = match be(11)? {
        24 => 3,
        32 => 4,
        _ => return None,
    };
    let data = x.get(header + ncolors * 12..)?;
    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h as usize {
        for xx in 0..w as usize {
            let p = data.get(y * line + xx * px..y * line + xx * px + px)?;
            let mut b = [0u8; 4];
            b[..px].copy_from_slice(p);
            let v = if byte_order == 0 {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b) >> (8 * (4 - px))
            };
            rgb.extend_from_slice(&[(v >> 16) as u8, (v >> 8) as u8, v as u8]);
        }
    }
    Some((w, h, rgb))
}

/// One WebDriver request over a fresh connection (`Connection: close`):
/// the JSON answer's body.
async fn webdriver(port: u16, method: &str, path: &str, body: Option<&Value>) -> Value {
    // An empty answer (the connection closed before one) is retried twice.
    for _ in 0..2 {
        if let Some(v) = webdriver_once(port, method, path, body).await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    webdriver_once(port, method, path, body)
        .await
        .unwrap_or_else(|| panic!("{method} {path}: empty answers"))
}

async fn webdriver_once(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Option<Value> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let io = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        s.write_all(req.as_bytes()).await?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await?;
        Ok::<_, std::io::Error>(out)
    };
    let out = tokio::time::timeout(Duration::from_secs(60), io)
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no answer in 60 s"))
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    if out.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(&out);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    // tauri-driver answers with a fixed length or chunked.
    let json = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut body = String::new();
        let mut r = rest;
        while let Some((len, tail)) = r.split_once("\r\n") {
            let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
            if n == 0 || tail.len() < n {
                break;
            }
            body.push_str(&tail[..n]);
            r = tail[n..].trim_start_matches("\r\n");
        }
        body
    } else {
        rest.to_owned()
    };
    Some(serde_json::from_str(&json).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}")))
}

/// WebDriver's codes for the keys the tests press.
const ENTER: char = '\u{E007}';
const ESCAPE: char = '\u{E00C}';

/// A WebDriver session on the app.
struct App {
    port: u16,
    base: String,
}

impl App {
    async fn launch(d: &Desktop) -> App {
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "wry",
            "tauri:options": {"application": bin("peal-desktop")}
        }}});
        let r = webdriver(d.port, "POST", "/session", Some(&caps)).await;
        let id = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("session: {r}"))
            .to_owned();
        App {
            port: d.port,
            base: format!("/session/{id}"),
        }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        webdriver(
            self.port,
            "POST",
            &format!("{}{path}", self.base),
            Some(&body),
        )
        .await
    }

    /// Runs `script` in the current window's page (its `return` value back).
    async fn js(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": []}))
            .await["value"]
            .clone()
    }

    /// Calls an app command from the page; its answer.
    async fn invoke(&self, cmd: &str) -> Value {
        let script = format!(
            "const done = arguments[0]; window.__TAURI__.core.invoke({cmd:?}).then(done, (e) => done({{error: e}}));"
        );
        self.post("/execute/async", json!({"script": script, "args": []}))
            .await["value"]
            .clone()
    }

    /// Waits until `script` returns something truthy; its value.
    async fn until(&self, what: &str, script: &str) -> Value {
        let start = Instant::now();
        loop {
            let v = self.js(script).await;
            if !(v.is_null() || v == json!(false) || v == json!("")) {
                return v;
            }
            if start.elapsed() > Duration::from_secs(30) {
                self.save_html(&format!("timeout-{}", what.replace(' ', "-")))
                    .await;
                panic!("{what}: not within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn visible(&self, what: &str, id: &str) {
        self.until(
            what,
            &format!("const e = document.getElementById({id:?}); return !!e && !e.hidden;"),
        )
        .await;
    }

    /// Types `key` (a WebDriver key code) into the element `css`, as the
    /// keyboard does to the focused control.
    async fn press(&self, css: &str, key: char) {
        let found = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await;
        let element = found["value"]
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no {css}: {found}"))
            .to_owned();
        let r = self
            .post(
                &format!("/element/{element}/value"),
                json!({"text": key.to_string()}),
            )
            .await;
        // A key that answers or declines closes the window it was pressed
        // in, sometimes before the driver answers: that is no failure (what
        // the key did is asserted by the caller).
        assert!(
            r["value"].is_null() || r["value"]["error"] == "no such window",
            "key pressed: {r}"
        );
    }

    async fn click(&self, css: &str) {
        let script = format!("document.querySelector({css:?}).click(); return true;");
        self.js(&script).await;
    }

    /// Saves the page's HTML to target/e2e/NAME.html.
    async fn save_html(&self, name: &str) {
        let html = self.js("return document.documentElement.outerHTML;").await;
        let _ = std::fs::write(
            artifacts().join(format!("{name}.html")),
            html.as_str().unwrap_or_default(),
        );
    }

    async fn windows(&self) -> Vec<String> {
        let r = webdriver(
            self.port,
            "GET",
            &format!("{}/window/handles", self.base),
            None,
        )
        .await;
        r["value"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn current_window(&self) -> String {
        let r = webdriver(self.port, "GET", &format!("{}/window", self.base), None).await;
        r["value"].as_str().unwrap_or_default().to_owned()
    }

    async fn switch_to(&self, handle: &str) {
        self.post("/window", json!({"handle": handle})).await;
    }

    /// Switches to the window whose page is `file` (e.g. "incoming.html").
    async fn switch_to_page(&self, file: &str) -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            for h in self.windows().await {
                self.switch_to(&h).await;
                let href = self.js("return location.pathname;").await;
                if href.as_str().is_some_and(|p| p.ends_with(file)) {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    }

    /// Signs in to `server` as bob through the sign-in form.
    async fn sign_in_as_bob(&self, server: &Server) {
        self.visible("the sign-in screen", "signin").await;
        let script = format!(
            "document.getElementById('server').value = {:?}; document.getElementById('uid').value = 'bob'; document.getElementById('password').value = 'peal'; document.getElementById('signin-button').click(); return true;",
            server.url
        );
        self.js(&script).await;
        self.until(
            "Alice among the contacts",
            "return document.querySelector('li.contact[data-uid=alice]') !== null;",
        )
        .await;
    }

    /// The canvas pixels of the first remote tile, once something is drawn.
    async fn drawn_video(&self) -> String {
        let start = Instant::now();
        loop {
            let v = self
                .js("const c = document.querySelector('#tiles canvas'); if (!c) return ''; const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; for (let i = 0; i < d.length; i += 4) { if (d[i] > 0 || d[i+1] > 0 || d[i+2] > 0) return c.toDataURL('image/png'); } return '';")
                .await;
            if let Some(s) = v.as_str().filter(|s| !s.is_empty()) {
                return s.to_owned();
            }
            if start.elapsed() > Duration::from_secs(20) {
                let why = self
                    .js("return JSON.stringify({video: window.pealVideo, webcodecs: typeof VideoDecoder, notice: document.getElementById('notice').textContent, quality: document.getElementById('quality').textContent});")
                    .await;
                let d = self.invoke("diagnostics").await;
                panic!("no video drawn: {why}; the app: {d}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The newest history row once it shows `outcome`: the page refreshes
    /// its history after a call ends, so an earlier read may still find the
    /// row as it was during the call ("in progress").
    async fn history_row(&self, outcome: &str) -> String {
        self.until(
            &format!("the call in history as {outcome}"),
            &format!(
                "const li = document.querySelector('#history li'); \
                 return !!li && li.textContent.includes({outcome:?}) && li.textContent;"
            ),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    async fn quit(&self) {
        webdriver(self.port, "DELETE", &self.base, None).await;
    }
}

/// Waits for the incoming window (a real X window, titled "Alice is calling").
fn incoming_window_shown(d: &Desktop) {
    wait_for("the incoming window on screen", 15, || {
        d.window_titles().contains("Alice is calling")
    });
}

fn incoming_window_closed(d: &Desktop) {
    wait_for("the incoming window closes", 10, || {
        !d.window_titles().contains("Alice is calling")
    });
}

/// A server, the desktop, and the app signed in to it as bob.
async fn bob_signed_in() -> (Server, Desktop, App) {
    signed_in_as_bob(Desktop::start().await).await
}

async fn signed_in_as_bob(desktop: Desktop) -> (Server, Desktop, App) {
    let server = Server::start().await;
    let app = App::launch(&desktop).await;
    app.sign_in_as_bob(&server).await;
    (server, desktop, app)
}

/// The ringtone (classic: 400 + 450 Hz) is what the app played.
fn assert_ringtone_played(d: &Desktop) {
    wait_for("the ringtone reaches the sound device", 15, || {
        let (pcm, rate) = d.played();
        let start = pcm.iter().position(|v| v.abs() > 1e-3).unwrap_or(pcm.len());
        pcm.len() - start > rate as usize
    });
    let (pcm, rate) = d.played();
    // The unclocked capture device pulls silence while the stream opens:
    // what was played starts at the first sound.
    let start = pcm.iter().position(|v| v.abs() > 1e-3).unwrap_or(0);
    let pcm = &pcm[start..];
    let first = &pcm[..pcm.len().min(rate as usize * 3)];
    let peak = first.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(peak > 0.1, "the ringtone is audible: peak {peak}");
    let burst = &first[..(rate as usize * 2 / 5).min(first.len())];
    let ring = power_at(burst, rate, 400.0) + power_at(burst, rate, 450.0);
    let other = power_at(burst, rate, 1000.0) + power_at(burst, rate, 300.0);
    assert!(
        ring > 50.0 * other,
        "the classic ringtone's pitch: {ring} vs {other}"
    );
}

async fn diag(app: &App) -> Value {
    app.invoke("diagnostics").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_rings_us_we_hear_it_accept_in_the_incoming_window_see_video_and_history_shows_the_call(
) {
    let (server, desktop, app) = bob_signed_in().await;
    let main = app.current_window().await;
    desktop.screenshot("ring-01-contacts");

    let cli = server.alice(&[
        "call",
        "bob",
        "--media",
        "synthetic",
        "--hangup-after",
        "5000",
    ]);
    incoming_window_shown(&desktop);
    assert_ringtone_played(&desktop);
    let d = diag(&app).await;
    assert_eq!(d["sound"], "ringtone", "{d}");
    let n = desktop.notifications.all();
    let ring = n.first().expect("a notification");
    assert_eq!(ring.summary, "Incoming video call");
    assert_eq!(ring.body, "Alice is calling you");
    assert!(
        ring.actions.windows(2).any(|a| a == ["accept", "Accept"])
            && ring.actions.windows(2).any(|a| a == ["decline", "Decline"]),
        "{:?}",
        ring.actions
    );

    // Accept in the incoming window itself.
    assert!(
        app.switch_to_page("incoming.html").await,
        "the incoming window is a page of its own"
    );
    let who = app
        .until(
            "the caller's name",
            "return document.getElementById('who').textContent;",
        )
        .await;
    assert_eq!(who, "Alice");
    desktop.screenshot("ring-02-main-while-ringing");
    let shot = desktop.window_shot("Alice is calling", "ring-02-incoming-window");
    assert!(
        shot.chunks(3).any(|p| p[0] > 60 || p[1] > 60 || p[2] > 60),
        "the incoming window is painted"
    );
    // The keyboard starts on Accept, a screen reader hears who calls, and
    // Enter answers.
    app.until(
        "focus on Accept",
        "return document.activeElement && document.activeElement.id === 'accept';",
    )
    .await;
    let said = app
        .js("return document.getElementById('announce').textContent;")
        .await;
    assert_eq!(
        said,
        "Alice is calling you: video call. Enter accepts, Escape declines."
    );
    app.press("#accept", ENTER).await;
    app.switch_to(&main).await;
    app.visible("the call window", "call").await;
    incoming_window_closed(&desktop);
    let d = diag(&app).await;
    assert_eq!(d["sound"], Value::Null, "ringing stopped: {d}");
    assert!(
        desktop.notifications.all()[0].closed,
        "the notification is withdrawn"
    );
    let first = app.drawn_video().await;
    let over = app
        .js("const n = document.getElementById('notice').getBoundingClientRect(); const v = document.querySelector('#tiles canvas').getBoundingClientRect(); return [n.height, n.bottom > v.top + 1 && n.top < v.bottom];")
        .await;
    assert_eq!(
        over[1],
        json!(false),
        "notices sit above the video, never on it: {over}"
    );
    let shot1 = desktop.screenshot("ring-03-call");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let second = app.drawn_video().await;
    let shot2 = desktop.screenshot("ring-04-call-later");
    assert_ne!(first, second, "the remote video moves");
    assert_ne!(shot1, shot2, "and so does the screen");

    // Alice hangs up after 5 s.
    let lines = cli.finish();
    assert!(
        lines.iter().any(|l| l["event"] == "outgoing_call_accepted"),
        "{lines:?}"
    );
    app.until(
        "home after the caller hung up",
        "return document.getElementById('call').hidden;",
    )
    .await;
    let row = app.history_row("ended").await;
    assert!(row.contains("Alice") && row.contains("ended"), "{row}");
    assert!(
        row.contains("0:04") || row.contains("0:05") || row.contains("0:06"),
        "the call's duration: {row}"
    );
    desktop.screenshot("ring-05-history");
    let ms = diag(&app).await["event_to_ringtone_ms"].clone();
    println!("event_to_ringtone_ms {ms}");
    app.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_decline_in_the_incoming_window_the_caller_hears_rejected_and_ringing_stops_everywhere()
{
    let (server, desktop, app) = bob_signed_in().await;
    let main = app.current_window().await;
    let cli = server.alice(&["call", "bob"]);
    app.visible("the incoming screen", "incoming").await;
    incoming_window_shown(&desktop);
    desktop.screenshot("decline-01-ringing");
    assert!(app.switch_to_page("incoming.html").await);
    app.until(
        "the caller's name",
        "return document.getElementById('who').textContent === 'Alice';",
    )
    .await;
    // Esc declines.
    app.press("#accept", ESCAPE).await;
    app.switch_to(&main).await;
    let lines = cli.finish();
    let rejected = lines
        .iter()
        .find(|l| l["event"] == "outgoing_call_rejected")
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!(rejected["call"]["status"], "rejected");
    incoming_window_closed(&desktop);
    app.until(
        "the main window leaves the incoming screen",
        "return document.getElementById('incoming').hidden;",
    )
    .await;
    assert_eq!(diag(&app).await["sound"], Value::Null);
    assert!(desktop.notifications.all()[0].closed);
    let row = app.history_row("declined").await;
    assert!(row.contains("Alice") && row.contains("declined"), "{row}");
    desktop.screenshot("decline-02-history");
    app.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_on_another_of_our_devices_ringing_stops_here_and_it_is_not_missed() {
    let (server, desktop, app) = bob_signed_in().await;
    // Bob's other device: the CLI, answering after two seconds of ringing.
    let other = server.cli(
        "bob",
        &[
            "--device",
            "phone",
            "answer",
            "--accept",
            "--after",
            "2000",
            "--hangup-after",
            "500",
        ],
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let caller = server.alice(&["call", "bob"]);
    incoming_window_shown(&desktop);
    assert_eq!(diag(&app).await["sound"], "ringtone");
    incoming_window_closed(&desktop);
    app.until(
        "home, saying where it was answered",
        "return document.getElementById('incoming').hidden && document.getElementById('notice').textContent.includes('Answered on another device');",
    )
    .await;
    let d = diag(&app).await;
    assert_eq!(d["sound"], Value::Null, "{d}");
    assert_eq!(d["missed"], 0, "not a missed call: {d}");
    assert!(desktop.notifications.all()[0].closed);
    assert!(
        !desktop
            .notifications
            .all()
            .iter()
            .any(|n| n.summary.starts_with("Missed")),
        "no missed-call notification"
    );
    other.finish();
    caller.finish();
    app.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_call_alice_who_is_busy_ringback_gives_way_to_the_busy_tone_and_the_app_says_why() {
    let (server, desktop, app) = bob_signed_in().await;
    let alice = server.alice(&["answer", "--busy", "--after", "1500"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.click("li.contact[data-uid=alice] .call-audio").await;
    app.visible("the outgoing screen", "outgoing").await;
    app.until(
        "ringback while Alice's phone rings",
        "return window.__TAURI__.core.invoke('diagnostics').then(d => d.sound === 'ringback');",
    )
    .await;
    app.until(
        "the reason",
        "return document.getElementById('notice').textContent.includes('Alice is busy');",
    )
    .await;
    assert!(app
        .js("return document.getElementById('outgoing').hidden;")
        .await
        .as_bool()
        .unwrap_or(false));
    alice.finish();
    // The busy tone follows the ringback (its pitch: peal-desktop-core's
    // tones tests; the capture device does not give this short second
    // stream back sample for sample).
    assert_eq!(diag(&app).await["sound"], "busy");
    desktop.screenshot("busy-01-home");
    app.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_video_call_shows_each_other_participant_in_a_grid() {
    let (server, desktop, app) = bob_signed_in().await;
    let carol = server.cli(
        "carol",
        &[
            "answer",
            "--accept",
            "--media",
            "synthetic",
            "--hangup-after",
            "7000",
        ],
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let alice = server.alice(&[
        "call",
        "team",
        "--group",
        "--media",
        "synthetic",
        "--hangup-after",
        "7000",
    ]);
    app.visible("the incoming screen", "incoming").await;
    let who = app
        .js("return document.querySelector('#incoming .who').textContent;")
        .await;
    assert_eq!(who, "Team", "a group call is named after the group");
    app.click("#accept").await;
    app.visible("the call window", "call").await;
    app.until(
        "a drawn tile for Alice and one for Carol",
        "const tiles = [...document.querySelectorAll('#tiles .tile')]; if (tiles.length !== 2) return false; return tiles.every((t) => { const c = t.querySelector('canvas'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; for (let i = 0; i < d.length; i += 4) { if (d[i] > 0 || d[i+1] > 0 || d[i+2] > 0) return true; } return false; }) && tiles.map((t) => t.dataset.uid).sort().join(',');",
    )
    .await;
    let names = app
        .js("return [...document.querySelectorAll('#tiles .tile .label')].map((l) => l.textContent).sort().join(',');")
        .await;
    assert_eq!(names, "Alice,Carol");
    let columns = app
        .js("return getComputedStyle(document.getElementById('tiles')).gridTemplateColumns.split(' ').length;")
        .await;
    assert_eq!(columns, 2, "side by side");
    desktop.screenshot("group-01-grid");
    alice.finish();
    carol.finish();
    app.until(
        "home when the others have left",
        "return document.getElementById('call').hidden;",
    )
    .await;
    app.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_do_not_disturb_the_caller_hears_busy_nothing_rings_and_the_title_counts_a_missed_call()
{
    let (server, desktop, app) = bob_signed_in().await;
    app.click("#open-settings").await;
    app.visible("the settings", "settings").await;
    app.until(
        "the ringtone choices",
        "return document.querySelectorAll('#ringtone option').length >= 4;",
    )
    .await;
    desktop.screenshot("dnd-01-settings");
    app.js("document.getElementById('dnd').checked = true; document.querySelector('#settings-form button[type=submit]').click(); return true;")
        .await;
    app.until(
        "the settings saved",
        "return document.getElementById('settings').hidden;",
    )
    .await;
    let lines = server.alice(&["call", "bob"]).finish();
    let rejected = lines
        .iter()
        .find(|l| l["event"] == "outgoing_call_rejected")
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!(rejected["call"]["status"], "busy");
    let title = || {
        desktop
            .window_titles()
            .lines()
            .find(|l| l.contains("missed call"))
            .map(str::to_owned)
    };
    let start = Instant::now();
    while title().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the title counts the missed call: {}",
            desktop.window_titles()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let title = title().unwrap_or_default();
    assert!(title.contains("1 missed call"), "{title}");
    assert!(
        !desktop.window_titles().contains("Alice is calling"),
        "no incoming window"
    );
    assert!(app
        .js("return document.getElementById('incoming').hidden;")
        .await
        .as_bool()
        .unwrap_or(false));
    let d = diag(&app).await;
    assert_eq!(d["event_to_ringtone_ms"], json!([]), "nothing rang: {d}");
    assert!(desktop.notifications.all().is_empty(), "nothing notified");
    assert!(desktop.played().0.is_empty(), "nothing played");
    desktop.screenshot("dnd-02-missed");
    app.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_cancels_the_window_closes_and_history_says_missed_in_red() {
    let (server, desktop, app) = bob_signed_in().await;
    let cli = server.alice(&["call", "bob", "--cancel-after", "2500"]);
    incoming_window_shown(&desktop);
    desktop.screenshot("missed-01-ringing");
    let lines = cli.finish();
    assert!(
        lines.iter().any(|l| l["call"]["status"] == "cancelled"),
        "{lines:?}"
    );
    incoming_window_closed(&desktop);
    app.until(
        "home, with the missed call said",
        "return document.getElementById('incoming').hidden && document.getElementById('notice').textContent.includes('Missed call from Alice');",
    )
    .await;
    let row = app.history_row("missed").await;
    assert!(row.contains("Alice") && row.contains("missed"), "{row}");
    let red = app
        .js("return getComputedStyle(document.querySelector('#history li.missed')).color;")
        .await;
    assert_eq!(red, "rgb(192, 57, 43)", "missed calls are red");
    // The history is by day, each call with its time; the filter keeps the missed.
    let day = app
        .js("return document.querySelector('#history h3.day').textContent;")
        .await;
    assert_eq!(day, "Today");
    app.click("#history-missed").await;
    let shown = app
        .js("return [...document.querySelectorAll('#history li')].map((li) => li.className);")
        .await;
    assert_eq!(shown, json!(["history missed"]), "only the missed call");
    let time = app
        .js("return document.querySelector('#history li .time').textContent;")
        .await;
    assert!(
        time.as_str()
            .is_some_and(|t| t.len() == 5 && t.as_bytes()[2] == b':'),
        "a time of day: {time}"
    );
    desktop.screenshot("missed-02-filter");
    wait_for("a missed-call notification", 10, || {
        desktop
            .notifications
            .all()
            .iter()
            .any(|n| n.summary == "Missed call from Alice")
    });
    let missed = desktop.notifications.all();
    let missed = missed
        .iter()
        .find(|n| n.summary == "Missed call from Alice")
        .unwrap();
    assert!(
        missed.actions.iter().any(|a| a == "call_back"),
        "{:?}",
        missed.actions
    );
    assert!(
        desktop.notifications.all()[0].closed,
        "the ringing one is withdrawn"
    );
    assert_eq!(diag(&app).await["sound"], Value::Null);
    desktop.screenshot("missed-02-history");
    // Call back, from the missed-call notification: we ring Alice.
    let answer = server.alice(&["answer", "--reject"]);
    desktop.notifications.invoke(missed.id, "call_back").await;
    let lines = answer.finish();
    let rang = lines
        .iter()
        .find(|l| l["event"] == "incoming_call_received")
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!(rang["call"]["initiator"]["uid"], "bob");
    app.until(
        "the decline said",
        "return document.getElementById('notice').textContent.includes('Alice declined the call');",
    )
    .await;
    app.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_from_the_notification_joins_the_call_and_opens_the_call_window() {
    let (server, desktop, app) = bob_signed_in().await;
    let cli = server.alice(&[
        "call",
        "bob",
        "--media",
        "synthetic",
        "--hangup-after",
        "3000",
    ]);
    wait_for("the incoming notification", 15, || {
        !desktop.notifications.all().is_empty()
    });
    let id = desktop.notifications.all()[0].id;
    // The way a daemon answers a click on Accept (notify-rust subscribes
    // just after the notification shows; a person is slower than that).
    tokio::time::sleep(Duration::from_millis(300)).await;
    desktop.notifications.invoke(id, "accept").await;
    app.visible("the call window", "call").await;
    let first = app.drawn_video().await;
    desktop.screenshot("notification-01-call");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_ne!(first, app.drawn_video().await, "the remote video moves");
    incoming_window_closed(&desktop);
    let lines = cli.finish();
    assert!(
        lines.iter().any(|l| l["event"] == "outgoing_call_accepted"),
        "{lines:?}"
    );
    let row = app.history_row("ended").await;
    assert!(row.contains("Alice") && row.contains("ended"), "{row}");
    app.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_sound_card_and_no_notification_daemon_calls_still_ring_in_the_window_and_the_app_says_so(
) {
    let (server, desktop, app) = signed_in_as_bob(Desktop::start_with(false).await).await;
    let cli = server.alice(&["call", "bob", "--cancel-after", "4000"]);
    incoming_window_shown(&desktop);
    let said = app
        .until(
            "both notices",
            "const t = document.getElementById('notice').textContent; return t.includes('No sound output') && t.includes('No desktop notifications') && t;",
        )
        .await;
    assert!(
        said.as_str().is_some_and(|t| t.contains("ring silently")),
        "{said}"
    );
    desktop.screenshot("nodevices-01-ringing");
    let d = diag(&app).await;
    assert!(d["sound_unavailable"].is_string(), "{d}");
    assert!(d["notifications_unavailable"].is_string(), "{d}");
    cli.finish();
    incoming_window_closed(&desktop);
    let row = app.history_row("missed").await;
    assert!(row.contains("missed"), "the app carried on: {row}");
    app.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_this_computer_we_call_echo_and_see_ourselves_then_history_shows_the_call() {
    let desktop = Desktop::start().await;
    let app = App::launch(&desktop).await;
    app.visible("the sign-in screen", "signin").await;
    desktop.screenshot("echo-01-signin");
    app.click("#local").await;
    app.until(
        "Echo among the contacts",
        "return document.querySelector('li.contact[data-uid=echo]') !== null;",
    )
    .await;
    desktop.screenshot("echo-02-contacts");
    app.click("li.contact[data-uid=echo] .call-video").await;
    app.visible("the outgoing screen", "outgoing").await;
    // Ringback while Echo "rings".
    app.until(
        "ringback",
        "return window.__TAURI__.core.invoke('diagnostics').then(d => d.sound === 'ringback');",
    )
    .await;
    // Echo answers after two seconds; then our own (test pattern) video comes back.
    app.visible("the call window", "call").await;
    let notice = app
        .js("return document.getElementById('notice').textContent;")
        .await;
    assert!(
        notice.as_str().is_some_and(|n| n.contains("test pattern")),
        "no camera here, and the app says so: {notice}"
    );
    let first = app.drawn_video().await;
    app.until(
        "the self view shows what we send",
        "const c = document.getElementById('self'); if (c.hidden) return false; const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; for (let i = 0; i < d.length; i += 4) { if (d[i] > 0 || d[i+1] > 0 || d[i+2] > 0) return true; } return false;",
    )
    .await;
    desktop.screenshot("echo-03-call");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_ne!(first, app.drawn_video().await, "the remote video moves");
    app.click("#mute").await;
    app.until(
        "muted",
        "return document.getElementById('mute').textContent === 'Unmute';",
    )
    .await;
    app.click("#hangup").await;
    app.until(
        "home again",
        "return document.getElementById('call').hidden;",
    )
    .await;
    let row = app.history_row("ended").await;
    assert!(row.contains("Echo") && row.contains("ended"), "{row}");
    desktop.screenshot("echo-04-history");

    // The log file keeps what the app and its embedded server said, and the
    // diagnostics carry its last lines.
    let log = desktop.log_file();
    let text = std::fs::read_to_string(&log)
        .unwrap_or_else(|e| panic!("the app's log at {}: {e}", log.display()));
    assert!(
        text.contains("peal_desktop") && text.contains("Peal starts"),
        "{text}"
    );
    assert!(
        text.contains("peal_server") && text.contains("serving"),
        "{text}"
    );
    let d = diag(&app).await;
    assert_eq!(d["log_file"], log.display().to_string(), "{d}");
    assert!(
        d["log_tail"].as_array().is_some_and(|l| l
            .iter()
            .any(|l| l.as_str().is_some_and(|l| l.contains("peal_server")))),
        "{d}"
    );
    app.quit().await;
}

/// The chime's three notes (the settings' test sound).
const CHIME: [f64; 3] = [659.25, 830.61, 987.77];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_settings_we_choose_a_headset_hear_it_see_its_level_and_an_unplugged_one_gives_way_to_the_default(
) {
    let desktop = Desktop::start().await;
    let home = desktop.home.path().to_owned();
    let mut pulse = Pulse::start(&home, &artifacts().join("pulseaudio.log"));
    plug(&home, true, false);
    let app = App::launch(&desktop).await;
    app.visible("the sign-in screen", "signin").await;
    app.click("#local").await;
    app.until(
        "Echo among the contacts",
        "return document.querySelector('li.contact[data-uid=echo]') !== null;",
    )
    .await;

    // The settings list the headset as ALSA describes it (its name is the value kept).
    app.click("#open-settings").await;
    app.visible("the settings", "settings").await;
    let has = |id: &str, value: &str, label: &str| {
        format!("const s = document.getElementById({id:?}); return [...s.options].some(o => o.value === {value:?} && o.text === {label:?});")
    };
    app.until(
        "the headset's microphone listed",
        &has("mic-choice", "headset", "USB Headset"),
    )
    .await;
    app.until(
        "the headset's speaker listed",
        &has("speaker-choice", "headset", "USB Headset"),
    )
    .await;
    let choose = |id: &str, value: &str| {
        format!("const s = document.getElementById({id:?}); s.value = {value:?}; s.dispatchEvent(new Event('change')); return s.value === {value:?};")
    };

    // Its microphone's level moves with what it hears (the tone).
    assert_eq!(
        app.js("return document.getElementById('mic-level').value;")
            .await,
        json!(0)
    );
    app.until("the headset chosen", &choose("mic-choice", "headset"))
        .await;
    // The sine is well above -30 dBFS: past the middle of the meter.
    app.until(
        "the microphone level moves",
        "return document.getElementById('mic-level').value > 50;",
    )
    .await;
    desktop.screenshot("devices-01-settings");

    // "Test sound" plays on the headset, not on the default speaker.
    app.until(
        "the headset's speaker chosen",
        &choose("speaker-choice", "headset"),
    )
    .await;
    let headset_out = pulse.record_headset();
    app.click("#speaker-test").await;
    wait_for("the chime on the headset", 15, || {
        let (ratio, peak) = heard(&headset_out, &CHIME);
        ratio > 50.0 && peak > 0.1
    });

    // Desk speakers plugged in while the settings are open: they show up, and the page says so.
    plug(&home, true, true);
    app.until(
        "the desk speakers offered for the ringtone",
        &has("ringtone-output", "desk", "Desk speakers"),
    )
    .await;
    let status = app
        .until(
            "what was plugged in",
            "return document.getElementById('hardware-status').textContent;",
        )
        .await;
    assert_eq!(status, json!("Connected: Desk speakers."));
    app.click("#settings-form button[type=submit]").await;
    app.until(
        "saved",
        "return document.getElementById('settings').hidden;",
    )
    .await;

    // A call's sounds play on the chosen speaker: Echo's ringback on the headset.
    app.click("li.contact[data-uid=echo] .call-audio").await;
    // (480 Hz: the ringback's upper tone; the headset's microphone says 440.)
    wait_for("the ringback on the headset", 15, || {
        heard(&headset_out, &[480.0]).0 > 50.0
    });
    app.visible("the call", "call").await;
    let notice = app
        .js("return document.getElementById('notice').textContent;")
        .await;
    assert!(
        !notice
            .as_str()
            .unwrap_or_default()
            .contains("not connected"),
        "the headset is here: {notice}"
    );
    app.click("#hangup").await;
    app.until(
        "home again",
        "return document.getElementById('call').hidden;",
    )
    .await;

    // The headset unplugged while the settings are open: still chosen, marked.
    app.click("#open-settings").await;
    // Opened afresh (last time's "Connected: Desk speakers." gone), the headset still chosen.
    app.until(
        "the headset remembered",
        "return document.getElementById('hardware-status').textContent === '' && document.getElementById('mic-choice').value === 'headset';",
    )
    .await;
    plug(&home, false, true);
    app.until(
        "the headset shown as not connected",
        &has("mic-choice", "headset", "USB Headset (not connected)"),
    )
    .await;
    let status = app
        .until(
            "what was taken out",
            "const t = document.getElementById('hardware-status').textContent; return t.startsWith('Disconnected') && t;",
        )
        .await;
    assert_eq!(status, json!("Disconnected: USB Headset."));
    // It stops delivering sound (suspended in the sound server, as a USB
    // microphone's stream stops when ALSA loses it): the level stops, and
    // the settings say so rather than show a level that no longer moves.
    pulse
        .pactl(&["suspend-source", "headset_mic", "1"])
        .expect("the headset's microphone stops");
    app.until(
        "the metered microphone said to be gone",
        "return document.getElementById('notice').textContent.includes('The microphone (USB Headset) stopped sending sound');",
    )
    .await;
    desktop.screenshot("devices-02-unplugged");
    app.click("#settings-cancel").await;

    // A call now uses the default microphone and says why.
    app.click("li.contact[data-uid=echo] .call-audio").await;
    let said = app
        .until(
            "the call says the headset is gone",
            "const t = document.getElementById('notice').textContent; return t.includes('USB Headset is not connected') && t;",
        )
        .await;
    assert!(
        said.as_str()
            .is_some_and(|t| t.contains("this call uses the default microphone")),
        "{said}"
    );
    app.visible("the call", "call").await;
    app.click("#hangup").await;
    app.until(
        "home again",
        "return document.getElementById('call').hidden;",
    )
    .await;
    let kept = std::fs::read_to_string(home.join("config/app.peal.desktop/settings.json"))
        .unwrap_or_default();
    assert!(
        kept.contains(r#""microphone": "headset""#),
        "remembered by name: {kept}"
    );
    app.quit().await;
}

/// The host name the app names its device after.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_computers_of_one_user_both_ring_answering_on_one_stops_the_other_and_one_signs_the_other_out(
) {
    let server = Server::start().await;
    let (home, work) = (Desktop::start().await, Desktop::start().await);
    let at_home = App::launch(&home).await;
    at_home.sign_in_as_bob(&server).await;
    let at_work = App::launch(&work).await;
    at_work.sign_in_as_bob(&server).await;

    // Each install signed in as a device of its own, named after the host.
    let devices = at_home.invoke("devices").await;
    let list = devices
        .as_array()
        .unwrap_or_else(|| panic!("devices: {devices}"));
    assert_eq!(list.len(), 2, "two devices: {devices}");
    let names: Vec<&str> = list.iter().filter_map(|d| d["name"].as_str()).collect();
    assert_ne!(names[0], names[1], "{devices}");
    let host = host_name();
    assert!(
        names.iter().all(|n| n.starts_with(&format!("{host}-"))),
        "named after the host {host:?}: {names:?}"
    );
    assert_eq!(
        list.iter().filter(|d| d["current"] == true).count(),
        1,
        "{devices}"
    );

    // Alice calls: both computers ring.
    let caller = server.alice(&["call", "bob", "--hangup-after", "3000"]);
    incoming_window_shown(&home);
    incoming_window_shown(&work);
    assert_eq!(diag(&at_home).await["sound"], "ringtone");
    assert_eq!(diag(&at_work).await["sound"], "ringtone");

    // Answered at work: home stops ringing, says where, and it is not missed.
    let main = at_work.current_window().await;
    assert!(at_work.switch_to_page("incoming.html").await);
    at_work
        .until(
            "the caller's name at work",
            "return document.getElementById('who').textContent === 'Alice';",
        )
        .await;
    at_work.click("#accept").await;
    at_work.switch_to(&main).await;
    at_work.visible("the call at work", "call").await;
    incoming_window_closed(&home);
    at_home
        .until(
            "home says it was answered elsewhere",
            "return document.getElementById('incoming').hidden && document.getElementById('notice').textContent.includes('Answered on another device');",
        )
        .await;
    let d = diag(&at_home).await;
    assert_eq!(d["sound"], Value::Null, "{d}");
    assert_eq!(d["missed"], 0, "{d}");
    let lines = caller.finish();
    assert!(
        lines.iter().any(|l| l["event"] == "outgoing_call_accepted"),
        "{lines:?}"
    );
    at_work
        .until(
            "work back home after the call",
            "return document.getElementById('call').hidden;",
        )
        .await;

    // At home, settings lists both; signing the work computer out from
    // there puts it back at the sign-in screen, saying why.
    at_home.click("#open-settings").await;
    at_home
        .until(
            "both devices in settings",
            "return document.querySelectorAll('#devices li.device').length === 2 && document.querySelectorAll('#devices .sign-out-device').length === 1;",
        )
        .await;
    home.screenshot("devices-01-settings");
    at_home.click("#devices .sign-out-device").await;
    at_work
        .visible("the sign-in screen at work", "signin")
        .await;
    at_work
        .until(
            "work says it was signed out",
            "return document.getElementById('notice').textContent.includes('signed out');",
        )
        .await;
    at_home
        .until(
            "home lists work as signed out",
            "return [...document.querySelectorAll('#devices li.device .status')].some((s) => s.textContent === 'signed out') && document.querySelectorAll('#devices .sign-out-device').length === 0;",
        )
        .await;
    // And the call rings only at home now.
    let caller = server.alice(&["call", "bob", "--cancel-after", "3000"]);
    incoming_window_shown(&home);
    assert_eq!(diag(&at_work).await["sound"], Value::Null);
    assert!(
        !work.window_titles().contains("Alice is calling"),
        "the signed-out computer does not ring"
    );
    caller.finish();
    at_home.quit().await;
    at_work.quit().await;
}

/// The app started again on `desktop` is signed in (no password asked)
/// and Alice's call rings it.
async fn launched_signed_in_and_ringing(server: &Server, desktop: &Desktop) -> App {
    let app = App::launch(desktop).await;
    app.until(
        "Alice among the contacts without signing in",
        "return document.getElementById('signin').hidden && document.querySelector('li.contact[data-uid=alice]') !== null;",
    )
    .await;
    desktop.screenshot("resume-01-signed-in-again");
    let caller = server.alice(&["call", "bob", "--cancel-after", "3000"]);
    incoming_window_shown(desktop);
    caller.finish();
    incoming_window_closed(desktop);
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_after_signing_in_the_app_signs_in_again_without_a_password_and_rings() {
    use std::os::unix::fs::PermissionsExt;
    let (server, desktop, app) = bob_signed_in().await;
    // This desktop's bus has no keyring service: the app keeps the sign-in
    // in a file only the user can read, and says so.
    app.until(
        "where the sign-in is kept",
        "return document.getElementById('notice').textContent.includes('No keyring service');",
    )
    .await;
    let secrets = desktop
        .home
        .path()
        .join("config/app.peal.desktop/secrets.json");
    let mode = std::fs::metadata(&secrets)
        .unwrap_or_else(|e| panic!("{}: {e}", secrets.display()))
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "only the user can read it");
    let kept = std::fs::read_to_string(&secrets).expect("secrets");
    assert!(
        !kept.contains("\"peal\""),
        "the password itself is not kept"
    );
    app.quit().await;
    desktop.app_gone();

    // Started again: signed in, no password asked, and calls ring.
    let app = launched_signed_in_and_ringing(&server, &desktop).await;

    // Signing out forgets it: the next start asks for the password.
    app.click("#open-settings").await;
    app.click("#sign-out").await;
    app.visible("the sign-in screen", "signin").await;
    app.quit().await;
    desktop.app_gone();
    let app = App::launch(&desktop).await;
    app.visible("the sign-in screen after signing out", "signin")
        .await;
    let form = app
        .js("return [document.getElementById('uid').value, document.getElementById('password').value, document.getElementById('home').hidden];")
        .await;
    assert_eq!(
        form,
        json!(["bob", "", true]),
        "asked again, user filled in"
    );
    app.quit().await;
}

/// A process that ends with the test.
struct Ends(Child);

impl Drop for Ends {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The system keyring: GNOME Keyring's Secret Service on the desktop's
/// bus, its login collection made and unlocked with a password, as a
/// desktop session does at login.
fn keyring(d: &Desktop) -> Ends {
    use std::io::Write;
    let mut child = Command::new("gnome-keyring-daemon")
        .args(["--foreground", "--unlock", "--components=secrets"])
        .env("HOME", d.home.path())
        .env("XDG_RUNTIME_DIR", d.home.path())
        .env("DBUS_SESSION_BUS_ADDRESS", &d.bus)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(artifacts().join("gnome-keyring.log")).expect("keyring log"),
        ))
        .spawn()
        // make test installs it (scripts/ensure-deps.sh).
        .unwrap_or_else(|e| panic!("gnome-keyring-daemon starts: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(b"peal-test").expect("keyring password");
    }
    let child = Ends(child);
    // Asked without starting one: the bus would start a keyring of its own
    // (D-Bus activation), locked, for the first call that names the service.
    wait_for("the keyring on the bus", 15, || {
        Command::new("dbus-send")
            .args([
                "--session",
                "--print-reply",
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
                "string:org.freedesktop.secrets",
            ])
            .env("DBUS_SESSION_BUS_ADDRESS", &d.bus)
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("boolean true"))
    });
    wait_for("the keyring's login collection", 15, || {
        keyring_items(d).is_some()
    });
    child
}

/// The items in the keyring's login collection (`None`: no keyring yet).
fn keyring_items(d: &Desktop) -> Option<usize> {
    let out = Command::new("dbus-send")
        .args([
            "--session",
            "--print-reply",
            "--dest=org.freedesktop.secrets",
            "/org/freedesktop/secrets/collection/login",
            "org.freedesktop.DBus.Properties.Get",
            "string:org.freedesktop.Secret.Collection",
            "string:Items",
        ])
        .env("DBUS_SESSION_BUS_ADDRESS", &d.bus)
        .output()
        .ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .matches("object path")
            .count()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_keyring_the_sign_in_is_kept_in_it_not_in_a_file_and_sign_out_removes_it() {
    let desktop = Desktop::start().await;
    let _keyring = keyring(&desktop);
    assert_eq!(keyring_items(&desktop), Some(0));
    let (server, desktop, app) = signed_in_as_bob(desktop).await;
    let secrets = desktop
        .home
        .path()
        .join("config/app.peal.desktop/secrets.json");
    wait_for("the sign-in kept in the keyring", 15, || {
        keyring_items(&desktop).is_some_and(|n| n > 0)
    });
    assert!(
        !secrets.exists(),
        "no file beside it: {}",
        secrets.display()
    );
    let notice = app
        .js("return document.getElementById('notice').textContent;")
        .await;
    assert!(
        !notice.as_str().unwrap_or_default().contains("No keyring"),
        "{notice}"
    );
    app.quit().await;
    desktop.app_gone();

    // Started again: signed in from the keyring, and calls ring.
    let app = launched_signed_in_and_ringing(&server, &desktop).await;

    // Signing out takes it out of the keyring.
    app.click("#open-settings").await;
    app.click("#sign-out").await;
    app.visible("the sign-in screen", "signin").await;
    wait_for("the keyring emptied", 15, || {
        keyring_items(&desktop) == Some(0)
    });
    assert!(!secrets.exists());
    app.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_login_peal_starts_hidden_in_the_tray_signed_in_and_a_call_still_rings() {
    let (server, desktop, app) = bob_signed_in().await;
    // Start at login is on unless switched off: an XDG autostart entry that
    // starts Peal hidden.
    // (auto-launch writes it under $HOME/.config, whatever XDG_CONFIG_HOME says.)
    let entry = desktop.home.path().join(".config/autostart/Peal.desktop");
    // Waited for whole: the file exists before its lines are written.
    wait_for("the autostart entry", 10, || {
        std::fs::read_to_string(&entry).is_ok_and(|t| t.contains("Exec="))
    });
    let text = std::fs::read_to_string(&entry).expect("entry");
    assert!(
        text.contains("peal-desktop") && text.contains("--hidden"),
        "{text}"
    );
    // The settings switch takes it away and puts it back.
    for on in [false, true] {
        app.click("#open-settings").await;
        // Shown, so filled from this opening's settings: the switch keeps
        // its state while the settings are hidden, so its state alone could
        // be last time's, and a click before the fill would be undone.
        app.until(
            "the switch shows how it is",
            &format!(
                "return !document.getElementById('settings').hidden && document.getElementById('start-at-login').checked === {};",
                !on
            ),
        )
        .await;
        app.click("#start-at-login").await;
        app.click("#settings-form button[type=submit]").await;
        wait_for("the autostart entry follows the switch", 10, || {
            entry.exists() == on
        });
    }
    app.quit().await;
    desktop.app_gone();

    // As the login starts it: no window, signed in with the kept session,
    // and a call rings (the incoming window, the ringtone).
    let mut peal = desktop.spawn_app(&["--hidden"]);
    let caller = server.alice(&["call", "bob", "--cancel-after", "8000"]);
    incoming_window_shown(&desktop);
    assert_ringtone_played(&desktop);
    assert!(
        !desktop.shown("Peal"),
        "the main window stays hidden: {}",
        desktop.window_titles()
    );
    assert!(peal.try_wait().ok().flatten().is_none(), "Peal is running");
    desktop.screenshot("login-01-hidden-ringing");
    caller.finish();
    let _ = peal.kill();
    let _ = peal.wait();
}

/// Waits for a second launch of the app to hand over and exit; its status.
fn handed_over(mut second: Child) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = second.try_wait() {
            return status;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = second.kill();
            panic!("the second launch did not hand over and exit within 20 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peal_call_link_opened_while_peal_runs_rings_alice_after_one_confirmation() {
    let (server, desktop, app) = bob_signed_in().await;
    let alice = server.alice(&["answer", "--reject"]);

    // The link, opened as a browser would: a second launch with it, which
    // hands it to the running Peal and exits.
    let link = format!("peal:call/alice?server={}&video=1", server.url);
    let status = handed_over(desktop.spawn_app(&[&link]));
    assert!(status.success(), "{status}");
    app.until(
        "the running Peal asks first",
        "return !document.getElementById('confirm-call').hidden && document.getElementById('confirm-call-text').textContent;",
    )
    .await;
    let asked = app
        .js("return document.getElementById('confirm-call-text').textContent;")
        .await;
    assert_eq!(asked, "Video call Alice?");
    assert_eq!(
        app.invoke("history").await,
        json!([]),
        "nothing is placed before the click"
    );
    desktop.screenshot("link-01-confirm");

    // One click: Alice's phone rings, from Bob.
    app.click("#confirm-call-yes").await;
    let lines = alice.finish();
    let rang = lines
        .iter()
        .find(|l| l["event"] == "incoming_call_received")
        .unwrap_or_else(|| panic!("alice rang: {lines:?}"));
    assert_eq!(rang["call"]["initiator"]["uid"], "bob");
    assert_eq!(rang["call"]["call_type"], "video");

    // A link for another server asks for that sign-in instead, and a link
    // that isn't one we know says why; neither places a call.
    let status =
        handed_over(desktop.spawn_app(&["peal:call/alice?server=https://elsewhere.example"]));
    assert!(status.success());
    app.until(
        "the other server named",
        "return document.getElementById('notice').textContent.includes('https://elsewhere.example');",
    )
    .await;
    handed_over(desktop.spawn_app(&["peal:hangup/alice"]));
    app.until(
        "a bad link refused with its reason",
        "return document.getElementById('notice').textContent.includes(\"Can't open the link\");",
    )
    .await;
    let calls = app.invoke("history").await;
    assert_eq!(calls.as_array().map(Vec::len), Some(1), "{calls}");
    app.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_link_makes_a_new_account_in_the_app_everyone_sees_it_and_a_cli_user_calls_it() {
    let (server, desktop, app) = bob_signed_in().await;
    let (link, code) = server.invite(2).await;

    // Someone joins with the invite while Bob's app runs: Bob sees them
    // among his contacts without doing anything.
    let erin = peal_client::PealClient::join(
        peal_client::ClientConfig::new(&server.url, "erin", "erin's password", "laptop"),
        &code,
        "Erin",
    )
    .await
    .expect("erin joins");
    app.until(
        "Erin among Bob's contacts",
        "return document.querySelector('li.contact[data-uid=erin]') !== null;",
    )
    .await;
    drop(erin);

    // Signed out, the link opened as a browser would (a second launch that
    // hands it over): the app offers to make the account.
    app.click("#open-settings").await;
    app.click("#sign-out").await;
    app.visible("the sign-in screen", "signin").await;
    let status = handed_over(desktop.spawn_app(&[&link]));
    assert!(status.success(), "{status}");
    app.visible("the join form", "join").await;
    let title = app
        .js("return document.getElementById('join-title').textContent;")
        .await;
    assert_eq!(title, json!(format!("Join {}", server.url)));
    // A form with a problem says what, and makes nothing.
    app.js("document.getElementById('join-name').value = 'Dana Smith'; document.getElementById('join-uid').value = 'dana'; document.getElementById('join-password').value = 'short'; document.getElementById('join-password2').value = 'short'; document.getElementById('join-button').click(); return true;").await;
    app.until(
        "the form says the password is too short",
        "return document.getElementById('join-error').textContent.includes('at least 8');",
    )
    .await;
    app.js("document.getElementById('join-password').value = 'dana password'; document.getElementById('join-password2').value = 'dana password'; return true;").await;
    desktop.screenshot("join-01-form");
    app.click("#join-button").await;
    app.until(
        "signed in as Dana, Alice and Erin among the contacts",
        "return document.getElementById('join').hidden && document.getElementById('me').textContent === 'Dana Smith' && document.querySelector('li.contact[data-uid=alice]') !== null && document.querySelector('li.contact[data-uid=erin]') !== null;",
    )
    .await;
    desktop.screenshot("join-02-signed-in");

    // Alice, on the CLI, calls the new account, and Dana's desktop rings.
    let caller = server.alice(&["call", "dana", "--cancel-after", "3000"]);
    wait_for("the incoming window on screen", 15, || {
        desktop.window_titles().contains("Alice is calling")
    });
    let lines = caller.finish();
    assert!(
        lines.iter().any(|l| l["call"]["receiver"]["uid"] == "dana"),
        "alice called dana: {lines:?}"
    );

    // The invite is used up now: opened again, it says so (Dana is
    // signed in, so it says that first).
    handed_over(desktop.spawn_app(&[&link]));
    app.until(
        "the app says Dana is on that server already",
        "return document.getElementById('notice').textContent.includes('signed in already');",
    )
    .await;
    app.quit().await;
}

/// WCAG's contrast ratio of two CSS `rgb(...)` colours (1 to 21).
fn contrast(a: &str, b: &str) -> f64 {
    let luminance = |css: &str| {
        let v: Vec<f64> = css
            .trim_start_matches("rgba(")
            .trim_start_matches("rgb(")
            .trim_end_matches(')')
            .split(',')
            .take(3)
            .map(|x| {
                x.trim()
                    .parse::<f64>()
                    .unwrap_or_else(|_| panic!("a colour: {css}"))
                    / 255.0
            })
            .map(|c| {
                if c <= 0.03928 {
                    c / 12.92
                } else {
                    ((c + 0.055) / 1.055).powf(2.4)
                }
            })
            .collect();
        0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]
    };
    let (x, y) = (luminance(a), luminance(b));
    (x.max(y) + 0.05) / (x.min(y) + 0.05)
}

/// The text and background colours of what `css` selects, and the page's.
async fn colours(app: &App, css: &str) -> (String, String) {
    let v = app
        .js(&format!(
            "const e = document.querySelector({css:?}); const s = getComputedStyle(e); \
             let bg = s.backgroundColor, p = e; \
             while (bg === 'rgba(0, 0, 0, 0)' && p.parentElement) {{ p = p.parentElement; bg = getComputedStyle(p).backgroundColor; }} \
             return [s.color, bg];"
        ))
        .await;
    (
        v[0].as_str().unwrap_or_default().to_owned(),
        v[1].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_system_in_dark_mode_every_screen_is_dark_and_readable() {
    let desktop = Desktop::start().await;
    // The desktop's preference, where GTK (and so WebKitGTK) reads it.
    let gtk = desktop.home.path().join("config/gtk-3.0");
    std::fs::create_dir_all(&gtk).expect("gtk config dir");
    std::fs::write(
        gtk.join("settings.ini"),
        "[Settings]\ngtk-application-prefer-dark-theme=1\n",
    )
    .expect("gtk settings");
    let (server, desktop, app) = signed_in_as_bob(desktop).await;
    assert_eq!(
        app.js("return matchMedia('(prefers-color-scheme: dark)').matches;")
            .await,
        json!(true),
        "the page hears the system's preference"
    );
    let page = app
        .js("return getComputedStyle(document.documentElement).backgroundColor;")
        .await;
    let page = page.as_str().unwrap_or_default().to_owned();
    assert!(
        contrast(&page, "rgb(0, 0, 0)") < 1.5,
        "the page is dark: {page}"
    );
    // Text people read, on what it sits on: WCAG AA (4.5:1) at least.
    for css in [
        "#me",
        "li.contact .name",
        "#history-title, h2",
        "#open-settings",
        "li.contact button",
    ] {
        let (fg, bg) = colours(&app, css).await;
        let ratio = contrast(&fg, &bg);
        assert!(ratio >= 4.5, "{css}: {fg} on {bg} is {ratio:.1}:1");
    }
    desktop.screenshot("dark-01-contacts");

    app.click("#open-settings").await;
    app.visible("settings", "settings").await;
    for css in ["#settings .card h2", "#settings .hint", "#settings label"] {
        let (fg, bg) = colours(&app, css).await;
        let ratio = contrast(&fg, &bg);
        assert!(ratio >= 4.5, "{css}: {fg} on {bg} is {ratio:.1}:1");
    }
    desktop.screenshot("dark-02-settings");
    app.click("#settings-cancel").await;

    let main = app.current_window().await;
    let cli = server.alice(&["call", "bob"]);
    incoming_window_shown(&desktop);
    assert!(app.switch_to_page("incoming.html").await);
    app.until(
        "the caller's name",
        "return document.getElementById('who').textContent === 'Alice';",
    )
    .await;
    let (fg, bg) = colours(&app, "#who").await;
    assert!(contrast(&fg, &bg) >= 4.5, "the caller's name: {fg} on {bg}");
    desktop.window_shot("Alice is calling", "dark-03-incoming-window");
    app.press("#accept", ESCAPE).await;
    app.switch_to(&main).await;
    let lines = cli.finish();
    assert!(
        lines.iter().any(|l| l["event"] == "outgoing_call_rejected"),
        "{lines:?}"
    );
    app.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_opens_where_and_as_large_as_it_was_left() {
    let (_server, desktop, app) = bob_signed_in().await;
    let asked = json!({"x": 120, "y": 80, "width": 700, "height": 520});
    app.post("/window/rect", asked.clone()).await;
    let rect = |v: Value| {
        let v = &v["value"];
        [
            v["x"].clone(),
            v["y"].clone(),
            v["width"].clone(),
            v["height"].clone(),
        ]
    };
    let now = rect(webdriver(app.port, "GET", &format!("{}/window/rect", app.base), None).await);
    assert_eq!(
        now[2..],
        [json!(700), json!(520)],
        "the window took the size: {now:?}"
    );
    // Closed to the tray (it keeps ringing there), then the app stopped.
    app.invoke("close_window").await;
    app.quit().await;
    desktop.app_gone();

    let app = App::launch(&desktop).await;
    app.until(
        "signed in again",
        "return document.querySelector('li.contact[data-uid=alice]') !== null;",
    )
    .await;
    let again = rect(webdriver(app.port, "GET", &format!("{}/window/rect", app.base), None).await);
    assert_eq!(again, now, "the size and place it was left with");
    app.quit().await;
}
