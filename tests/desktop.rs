//! The desktop app end to end: the real debug build of `peal-desktop` in a
//! real WebKit window under Xvfb, driven through tauri-driver and
//! WebKitWebDriver (a few WebDriver calls over reqwest, no extra runtime).
//! Screenshots are saved under `target/e2e/` as artifacts.

use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn bin(name: &str) -> PathBuf {
    let mut p = std::env::current_exe().expect("exe");
    p.pop();
    if p.ends_with("deps") {
        p.pop();
    }
    p.join(name)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

/// Xvfb and tauri-driver, killed on drop.
struct Desktop {
    xvfb: Child,
    driver: Child,
    port: u16,
    _home: tempfile::TempDir,
}

impl Drop for Desktop {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = self.xvfb.kill();
        let _ = self.xvfb.wait();
    }
}

impl Desktop {
    fn start() -> Desktop {
        // A display number nobody holds (a stale lock makes Xvfb refuse).
        let n = (0..200)
            .map(|i| 90 + (u32::from(free_port()) + i) % 500)
            .find(|n| !std::path::Path::new(&format!("/tmp/.X{n}-lock")).exists())
            .expect("a free X display");
        let display = format!(":{n}");
        let xvfb = Command::new("Xvfb")
            .args([&display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb (apt: xvfb) starts");
        let socket = format!("/tmp/.X11-unix/X{n}");
        let start = Instant::now();
        while !std::path::Path::new(&socket).exists() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "Xvfb {display} up"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let home = tempfile::tempdir().expect("home");
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
            // The app's data (its embedded server) stays in this test's directory.
            .env("XDG_DATA_HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path())
            .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            // tauri-driver lives in ~/.cargo/bin (make test installs it).
            .unwrap_or_else(|e| panic!("tauri-driver starts: {e}"));
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "tauri-driver listening"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Desktop {
            xvfb,
            driver,
            port,
            _home: home,
        }
    }
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

    /// Runs `script` in the page (its `return` value back).
    async fn js(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": []}))
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
                self.screenshot(&format!("timeout-{}", what.replace(' ', "-")))
                    .await;
                panic!("{what}: not within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn click(&self, css: &str) {
        let script = format!("document.querySelector({css:?}).click(); return true;");
        self.js(&script).await;
    }

    /// Saves what the page shows to target/e2e/NAME.html (WebKitWebDriver's
    /// screenshot command hangs under Xvfb here; the call's video is saved
    /// as PNG from its canvas instead).
    async fn screenshot(&self, name: &str) {
        let html = self.js("return document.documentElement.outerHTML;").await;
        let dir = bin("").join("../e2e");
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(
            dir.join(format!("{name}.html")),
            html.as_str().unwrap_or_default(),
        );
    }

    /// Saves the call canvas as target/e2e/NAME.png.
    async fn save_canvas(&self, name: &str) {
        use base64::Engine;
        let url = self.canvas().await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(url.trim_start_matches("data:image/png;base64,"))
            .unwrap_or_default();
        let dir = bin("").join("../e2e");
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join(format!("{name}.png")), png);
    }

    /// The call canvas's pixels as a data URL (changes when video moves).
    async fn canvas(&self) -> String {
        self.js("return document.getElementById('remote').toDataURL('image/png');")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn quit(&self) {
        webdriver(self.port, "DELETE", &self.base, None).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_this_computer_we_call_echo_and_see_ourselves_then_history_shows_the_call() {
    let desktop = Desktop::start();
    let app = App::launch(&desktop).await;
    app.until(
        "the sign-in screen",
        "return !document.getElementById('signin').hidden;",
    )
    .await;
    app.screenshot("01-signin").await;
    app.click("#local").await;
    app.until(
        "Echo among the contacts",
        "return document.querySelector('li.contact[data-uid=echo]') !== null;",
    )
    .await;
    app.screenshot("02-contacts").await;

    app.click("li.contact[data-uid=echo] .call-video").await;
    app.until(
        "the outgoing screen",
        "return !document.getElementById('outgoing').hidden;",
    )
    .await;
    // Echo answers after two seconds; then our own (test pattern) video comes back.
    app.until(
        "the call window",
        "return !document.getElementById('call').hidden;",
    )
    .await;
    let notice = app
        .js("return document.getElementById('notice').textContent;")
        .await;
    assert!(
        notice.as_str().is_some_and(|n| n.contains("test pattern")),
        "no camera here, and the app says so: {notice}"
    );
    let first = {
        let start = Instant::now();
        loop {
            let c = app.canvas().await;
            let blank = app
                .js("const c=document.getElementById('remote'); const d=c.getContext('2d').getImageData(0,0,c.width,c.height).data; for (let i=0;i<d.length;i+=4){ if (d[i]>0||d[i+1]>0||d[i+2]>0) return false; } return true;")
                .await;
            if blank == json!(false) {
                break c;
            }
            if start.elapsed() > Duration::from_secs(20) {
                let why = app
                    .js("return JSON.stringify({video: window.pealVideo, webcodecs: typeof VideoDecoder, notice: document.getElementById('notice').textContent, t: typeof (window.__TAURI__.core.Channel)});")
                    .await;
                panic!("no video drawn: {why}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    app.screenshot("03-call").await;
    app.save_canvas("03-call-video").await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let second = app.canvas().await;
    assert_ne!(first, second, "the remote video moves");

    app.click("#hangup").await;
    app.until(
        "home again",
        "return document.getElementById('call').hidden;",
    )
    .await;
    let row = app
        .until(
            "the call in history",
            "const li=document.querySelector('#history li'); return li && li.textContent;",
        )
        .await;
    let row = row.as_str().unwrap_or_default();
    assert!(row.contains("Echo") && row.contains("ended"), "{row}");
    app.screenshot("04-history").await;
    app.quit().await;
}
