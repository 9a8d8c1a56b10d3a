//! Peal's Windows binaries under wine: what `make test` cross-builds
//! (`scripts/windows.sh build --workspace --bins`, the debug profile) run
//! here in a wine prefix of their own under `target/wine/`.
//!
//! Debian 12's wine 8.0 lacks `ProcessPrng` (bcryptprimitives.dll), which
//! Rust's std calls at start, so the harness builds a shim of it
//! (`wine-processprng.c`, mingw-w64) into the prefix: test-only, never
//! shipped. Everything else is the binaries a Windows user gets.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A prepared prefix and the Windows binaries.
pub struct Wine {
    prefix: PathBuf,
    /// Where the cross-built binaries are.
    pub bin: PathBuf,
}

/// `target/`, from this test's executable (`target/debug/deps/…`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    exe.ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "target"))
        .unwrap_or_else(|| panic!("{} is not under a target/ directory", exe.display()))
        .to_owned()
}

fn run(what: &str, cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The prefix, made once (under a lock: the tests that use it run in
/// processes of their own), with the shim in its system32.
pub fn wine() -> Wine {
    let target = target_dir();
    let bin = target.join("x86_64-pc-windows-gnu").join("debug");
    for exe in ["peal.exe", "peal-server.exe"] {
        assert!(
            bin.join(exe).exists(),
            "{} is missing: cross-build it with `scripts/windows.sh build --workspace --bins` (make test does)",
            bin.join(exe).display()
        );
    }
    let dir = target.join("wine");
    std::fs::create_dir_all(&dir).expect("target/wine");
    let lock = std::fs::File::create(dir.join("lock")).expect("lock file");
    lock.lock().expect("lock");
    let prefix = dir.join("prefix");
    let wine = Wine { prefix, bin };
    if !wine.prefix.join("system.reg").exists() {
        run(
            "wineboot --init",
            wine.env(Command::new("wineboot").arg("--init")),
        );
    }
    let shim = wine
        .prefix
        .join("drive_c/windows/system32/bcryptprimitives.dll");
    if !shim.exists() {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("support/wine-processprng.c");
        let made = dir.join("bcryptprimitives.dll");
        run(
            "the ProcessPrng shim (x86_64-w64-mingw32-gcc)",
            Command::new("x86_64-w64-mingw32-gcc")
                .args(["-shared", "-O2", "-o"])
                .arg(&made)
                .arg(&source)
                .arg("-ladvapi32"),
        );
        std::fs::rename(&made, &shim).expect("shim into system32");
    }
    // The wineserver and wine's own background programs (services,
    // explorer) started here, not holding the test's output open: the
    // first wine program of a session starts them with its own. The
    // server stays 5 s after the last program, so each test starts them;
    // a second server exits at once.
    let quiet = |cmd: &mut Command| {
        let _ = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    };
    quiet(wine.env(&mut Command::new("wineserver")).arg("-p5"));
    quiet(wine.program(Path::new("cmd")).args(["/c", "exit"]));
    wine
}

impl Wine {
    fn env<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        cmd.env("WINEPREFIX", &self.prefix)
            .env("WINEDEBUG", "-all")
            .env("WINEDLLOVERRIDES", "bcryptprimitives=n,b;mscoree,mshtml=")
    }

    /// `exe` (`peal.exe`, `peal-server.exe`) under wine.
    pub fn command(&self, exe: &str) -> Command {
        self.program(&self.bin.join(exe))
    }

    /// The user's Start menu programs folder in the prefix.
    pub fn start_menu(&self) -> PathBuf {
        let users = self.prefix.join("drive_c/users");
        std::fs::read_dir(&users)
            .expect("the prefix's users")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| !p.ends_with("Public"))
            .expect("the prefix's user")
            .join("AppData/Roaming/Microsoft/Windows/Start Menu/Programs")
    }

    /// The Windows program at `path` (or a wine builtin: `reg`) under wine.
    pub fn program(&self, path: &Path) -> Command {
        let mut cmd = Command::new("wine");
        self.env(&mut cmd).arg(path);
        cmd
    }

    /// The value of `key` (`HKCU\...`) `name` (`None`: its default) in the
    /// prefix's registry, as `reg query` prints it; `None`: not there.
    pub fn registry(&self, key: &str, name: Option<&str>) -> Option<String> {
        let mut reg = self.program(Path::new("reg"));
        reg.args(["query", key]);
        match name {
            Some(n) => reg.args(["/v", n]),
            None => reg.arg("/ve"),
        };
        let out = reg.output().expect("reg query");
        if !out.status.success() {
            return None;
        }
        // "    (name)    REG_SZ    value"
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.split_once("REG_SZ").map(|(_, v)| v.trim().to_owned()))
    }
}

/// How a Windows program names the file at `path` (wine's Z: is /).
pub fn windows_path(path: &Path) -> String {
    format!("Z:{}", path.display()).replace('/', "\\")
}
