//! This install's device: the name it signs in with, generated once and kept
//! beside the settings. The server tells a user's devices apart by this name,
//! so two computers of one user are two devices: each has its own event
//! stream, each rings, and answering on one is "answered elsewhere" on the
//! other. The name starts with the host name, for people to read in "your
//! devices"; a random suffix keeps two installs on hosts of one name apart.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// Longest host-name part of a device name (the server takes 128 in all).
pub const MAX_HOST_CHARS: usize = 48;

/// What `device.json` holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThisDevice {
    /// Sent as the login's `device`: `<host>-<8 hex digits>`.
    pub name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("can't keep this computer's device name in {0}: {1}")]
    Write(String, std::io::Error),
}

/// `<host>-<suffix as 8 hex digits>`: the host name with anything but
/// letters, digits, `-` and `.` made `-`, at most [`MAX_HOST_CHARS`]; an
/// empty host is "computer".
pub fn device_name(host: &str, suffix: u32) -> String {
    let cleaned: String = host
        .trim()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(MAX_HOST_CHARS)
        .collect();
    let cleaned = cleaned.trim_matches(|c| c == '-' || c == '.');
    let host = if cleaned.is_empty() {
        "computer"
    } else {
        cleaned
    };
    format!("{host}-{suffix:08x}")
}

/// This computer's host name (the OS's; "computer" when it can't say).
pub fn host_name() -> String {
    whoami::fallible::hostname().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "no host name; naming this device \"computer\"");
        "computer".to_owned()
    })
}

impl ThisDevice {
    /// The device kept in `path`, or a new one named after `host` (with the
    /// suffix `suffix()` gives) written there. A file that can't be read as a
    /// device is replaced (and the log says so). When the new one can't be
    /// written the error says why; the caller can still use `fallback`.
    pub fn load_or_create(
        path: &Path,
        host: &str,
        suffix: impl FnOnce() -> u32,
    ) -> Result<ThisDevice, (DeviceError, ThisDevice)> {
        match std::fs::read_to_string(path) {
            Ok(text) => match serde_json::from_str::<ThisDevice>(&text) {
                Ok(d) if valid(&d.name) => return Ok(d),
                Ok(d) => {
                    tracing::warn!(path = %path.display(), name = %d.name, "device name unusable; making a new one")
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "device file unreadable; making a new device")
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "device file unreadable; making a new device")
            }
        }
        let d = ThisDevice {
            name: device_name(host, suffix()),
        };
        match write(path, &d) {
            Ok(()) => {
                tracing::info!(name = %d.name, "this computer's device is new");
                Ok(d)
            }
            Err(e) => Err((e, d)),
        }
    }
}

/// What the server takes: 1–128 characters, no surrounding space.
fn valid(name: &str) -> bool {
    !name.is_empty() && name.len() <= 128 && name.trim() == name
}

fn write(path: &Path, d: &ThisDevice) -> Result<(), DeviceError> {
    let text = serde_json::to_string_pretty(d).unwrap_or_default();
    crate::settings::write_whole(path, text.as_bytes(), false)
        .map_err(|e| DeviceError::Write(path.display().to_string(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_is_named_after_its_host_with_a_suffix_of_its_own() {
        assert_eq!(device_name("work-laptop", 0x3f2a9c), "work-laptop-003f2a9c");
        assert_eq!(
            device_name("Ana's MacBook Pro", 1),
            "Ana-s-MacBook-Pro-00000001"
        );
        assert_eq!(device_name("  ", 2), "computer-00000002");
        assert_eq!(device_name("--", 2), "computer-00000002");
        let long = "x".repeat(300);
        let n = device_name(&long, 3);
        assert_eq!(n.len(), MAX_HOST_CHARS + 9);
        assert!(valid(&n));
    }

    #[test]
    fn the_device_is_made_once_and_kept_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("peal/device.json");
        let first = ThisDevice::load_or_create(&p, "desk", || 7).unwrap();
        assert_eq!(first.name, "desk-00000007");
        let again = ThisDevice::load_or_create(&p, "renamed", || panic!("not asked")).unwrap();
        assert_eq!(
            again, first,
            "the same device after a restart, even if the host is renamed"
        );
    }

    #[test]
    fn two_installs_on_hosts_of_one_name_are_two_devices() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let one = ThisDevice::load_or_create(&a.path().join("d.json"), "pc", || 1).unwrap();
        let two = ThisDevice::load_or_create(&b.path().join("d.json"), "pc", || 2).unwrap();
        assert_ne!(one.name, two.name);
    }

    #[test]
    fn a_damaged_device_file_is_replaced_and_an_unwritable_one_still_gives_a_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("device.json");
        std::fs::write(&p, "{not json").unwrap();
        let d = ThisDevice::load_or_create(&p, "pc", || 9).unwrap();
        assert_eq!(d.name, "pc-00000009");
        std::fs::write(&p, r#"{"name": ""}"#).unwrap();
        assert_eq!(
            ThisDevice::load_or_create(&p, "pc", || 10).unwrap().name,
            "pc-0000000a"
        );

        // A directory where the file should be: the error says where, and a
        // name is still given for this run.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir_all(blocked.join("device.json")).unwrap();
        let (e, d) =
            ThisDevice::load_or_create(&blocked.join("device.json"), "pc", || 11).unwrap_err();
        assert!(e.to_string().contains("blocked"), "{e}");
        assert_eq!(d.name, "pc-0000000b");
    }
}
