//! The app's log: everything the app and its embedded server write through
//! `tracing`, kept in a file in the app's log directory (and on stderr when
//! run from a terminal), rotated by size so it never grows without bound; a
//! panic leaves a crash report beside it. Diagnostics attach the last lines.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The log file's name in the log directory.
pub const LOG_FILE: &str = "peal.log";
/// A log file is rotated once it would pass this size: 5 MiB holds days of
/// a daily user's calls at the default level.
pub const MAX_LOG_BYTES: u64 = 5 * 1024 * 1024;
/// Rotated files kept beside the current one (`peal.log.1` is the newest).
pub const KEEP_ROTATED: u32 = 3;

/// A file that rotates itself by size: `peal.log` → `peal.log.1` → … →
/// `peal.log.KEEP`, the oldest dropped.
pub struct RotatingFile {
    path: PathBuf,
    file: File,
    written: u64,
    max_bytes: u64,
    keep: u32,
}

impl RotatingFile {
    pub fn open(path: &Path, max_bytes: u64, keep: u32) -> io::Result<RotatingFile> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let written = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(RotatingFile {
            path: path.to_owned(),
            file,
            written,
            max_bytes,
            keep,
        })
    }

    fn rotated(&self, n: u32) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        if self.keep == 0 {
            self.file = File::create(&self.path)?;
        } else {
            let _ = std::fs::remove_file(self.rotated(self.keep));
            for n in (1..self.keep).rev() {
                let _ = std::fs::rename(self.rotated(n), self.rotated(n + 1));
            }
            std::fs::rename(&self.path, self.rotated(1))?;
            self.file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
        }
        self.written = 0;
        Ok(())
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written > 0 && self.written + buf.len() as u64 > self.max_bytes {
            // A failed rotation keeps writing where we are: a log that grows
            // past its limit beats a log that stops.
            let _ = self.rotate();
        }
        let n = self.file.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// The last `n` lines of the log file at `path` (fewer when it is shorter;
/// none when it can't be read). Reads at most the last 256 KiB.
pub fn tail(path: &Path, n: usize) -> Vec<String> {
    const MAX_READ: u64 = 256 * 1024;
    let Ok(mut f) = File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(MAX_READ);
    if f.seek(SeekFrom::Start(start)).is_err() {
        return Vec::new();
    }
    let mut bytes = Vec::new();
    if f.read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    if start > 0 && !lines.is_empty() {
        // The first line was cut by where we started reading.
        lines.remove(0);
    }
    let skip = lines.len().saturating_sub(n);
    lines[skip..].iter().map(|l| (*l).to_owned()).collect()
}

/// The crash report a panic leaves: what, where, the version, the backtrace.
pub fn crash_report(message: &str, location: &str, version: &str, backtrace: &str) -> String {
    format!(
        "Peal {version} stopped unexpectedly.\n\npanic: {message}\nat: {location}\n\nbacktrace:\n{backtrace}\n"
    )
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("can't open the log file {0}: {1}")]
    Open(String, io::Error),
    #[error("a log subscriber is installed already")]
    Installed,
}

/// Installs the process's `tracing` subscriber: the log file in `dir`
/// (plain text), and stderr too when `to_stderr`. `RUST_LOG` picks the
/// level (default `info`). Installs the panic hook that writes a crash
/// report in `dir`. The log file's path.
pub fn install(dir: &Path, to_stderr: bool, version: &'static str) -> Result<PathBuf, LogError> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let path = dir.join(LOG_FILE);
    let file = RotatingFile::open(&path, MAX_LOG_BYTES, KEEP_ROTATED)
        .map_err(|e| LogError::Open(path.display().to_string(), e))?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let to_file = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file));
    let to_stderr = to_stderr.then(|| tracing_subscriber::fmt::layer().with_writer(io::stderr));
    tracing_subscriber::registry()
        .with(filter)
        .with(to_file)
        .with(to_stderr)
        .try_init()
        .map_err(|_| LogError::Installed)?;
    let crash_dir = dir.to_owned();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_owned());
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let backtrace = std::backtrace::Backtrace::force_capture().to_string();
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let report = crash_dir.join(format!("crash-{secs}.txt"));
        let text = crash_report(&message, &location, version, &backtrace);
        match std::fs::write(&report, text) {
            Ok(()) => {
                tracing::error!(%message, %location, report = %report.display(), "panic; crash report written")
            }
            Err(e) => {
                tracing::error!(%message, %location, error = %e, "panic; crash report not written")
            }
        }
        default_hook(info);
    }));
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_rotates_by_size_and_keeps_only_the_newest_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/peal.log");
        let mut f = RotatingFile::open(&path, 100, 2).unwrap();
        for i in 0..10 {
            // One write per line, as the subscriber writes a formatted event.
            f.write_all(format!("line {i:02} {}\n", "x".repeat(40)).as_bytes())
                .unwrap();
        }
        f.flush().unwrap();
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        let (now, one, two) = (
            read(&path),
            read(&dir.path().join("logs/peal.log.1")),
            read(&dir.path().join("logs/peal.log.2")),
        );
        assert!(now.len() <= 100 && one.len() <= 100 && two.len() <= 100);
        assert!(now.contains("line 09"), "{now}");
        assert!(one.contains("line 07"), "{one}");
        assert!(two.contains("line 05"), "{two}");
        assert!(
            !dir.path().join("logs/peal.log.3").exists(),
            "only two kept"
        );
        // Reopened after a restart, it carries on where it was.
        drop(f);
        let mut f = RotatingFile::open(&path, 100, 2).unwrap();
        f.write_all(format!("after restart {}\n", "y".repeat(40)).as_bytes())
            .unwrap();
        assert!(read(&dir.path().join("logs/peal.log.1")).contains("line 09"));
    }

    #[test]
    fn diagnostics_get_the_last_lines_of_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peal.log");
        assert!(tail(&path, 5).is_empty(), "no log yet");
        let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, text).unwrap();
        assert_eq!(tail(&path, 3), ["line 997", "line 998", "line 999"]);
        assert_eq!(tail(&path, 5000).len(), 1000);
    }

    #[test]
    fn a_crash_report_says_what_where_and_which_version() {
        let r = crash_report("index out of bounds", "src/x.rs:10", "0.3.0", "0: main");
        assert!(r.contains("Peal 0.3.0"));
        assert!(r.contains("panic: index out of bounds"));
        assert!(r.contains("at: src/x.rs:10"));
        assert!(r.contains("0: main"));
    }
}
