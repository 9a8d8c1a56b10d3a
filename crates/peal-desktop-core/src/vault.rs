//! Secrets kept for the next start: the session token of the server the
//! user signed in to (so a restart, or a reboot, signs them in again without
//! a password) and "this computer"'s generated account passwords.
//!
//! They go to the system's keyring (the `keyring` crate: the Secret Service
//! on Linux, the Keychain on macOS, the Credential Manager on Windows). Where
//! no keyring service runs (a bare window manager, a server session), they go
//! to a file only the user can read (0600), and the app says so once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("the keyring refused: {0}")]
    Keyring(String),
    #[error("can't keep secrets in {0}: {1}")]
    File(String, std::io::Error),
    #[error("the secrets file {0} is damaged: {1}")]
    Damaged(String, String),
}

/// Where secrets go: one value per key.
pub trait Vault: Send + Sync {
    fn get(&self, key: &str) -> Result<Option<String>, VaultError>;
    fn set(&self, key: &str, value: &str) -> Result<(), VaultError>;
    /// Removing what isn't there is not an error.
    fn delete(&self, key: &str) -> Result<(), VaultError>;
    /// For people: "the system keyring", or the file's path.
    fn describe(&self) -> String;
    /// Whether this is the fallback file (the app says so once).
    fn is_file(&self) -> bool;
}

/// The system keyring; entries are named after the app and its config
/// directory, so two Peal installs of one user (or a test's) don't mix.
pub struct Keyring {
    service: String,
}

impl Keyring {
    /// The keyring, if a keyring service answers.
    pub fn probe(config_dir: &Path) -> Result<Keyring, VaultError> {
        let k = Keyring {
            service: format!("Peal ({})", config_dir.display()),
        };
        k.get("probe")?;
        Ok(k)
    }

    fn entry(&self, key: &str) -> Result<keyring::Entry, VaultError> {
        keyring::Entry::new(&self.service, key).map_err(|e| VaultError::Keyring(e.to_string()))
    }
}

impl Vault for Keyring {
    fn get(&self, key: &str) -> Result<Option<String>, VaultError> {
        match self.entry(key)?.get_password() {
            Ok(v) => Ok(Some(v)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(VaultError::Keyring(e.to_string())),
        }
    }

    fn set(&self, key: &str, value: &str) -> Result<(), VaultError> {
        self.entry(key)?
            .set_password(value)
            .map_err(|e| VaultError::Keyring(e.to_string()))
    }

    fn delete(&self, key: &str) -> Result<(), VaultError> {
        match self.entry(key)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(VaultError::Keyring(e.to_string())),
        }
    }

    fn describe(&self) -> String {
        "the system keyring".to_owned()
    }

    fn is_file(&self) -> bool {
        false
    }
}

/// A JSON file of `key → value`, readable by the user alone, rewritten whole.
pub struct FileVault {
    path: PathBuf,
    lock: std::sync::Mutex<()>,
}

impl FileVault {
    pub fn new(path: PathBuf) -> FileVault {
        FileVault {
            path,
            lock: std::sync::Mutex::new(()),
        }
    }

    fn read(&self) -> Result<BTreeMap<String, String>, VaultError> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| VaultError::Damaged(self.path.display().to_string(), e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(VaultError::File(self.path.display().to_string(), e)),
        }
    }

    fn write(&self, map: &BTreeMap<String, String>) -> Result<(), VaultError> {
        let text = serde_json::to_string_pretty(map).unwrap_or_default();
        crate::settings::write_whole(&self.path, text.as_bytes(), true)
            .map_err(|e| VaultError::File(self.path.display().to_string(), e))
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Vault for FileVault {
    fn get(&self, key: &str) -> Result<Option<String>, VaultError> {
        let _g = self.guard();
        Ok(self.read()?.remove(key))
    }

    fn set(&self, key: &str, value: &str) -> Result<(), VaultError> {
        let _g = self.guard();
        // A damaged file is replaced rather than blocking every sign-in.
        let mut map = self.read().unwrap_or_default();
        map.insert(key.to_owned(), value.to_owned());
        self.write(&map)
    }

    fn delete(&self, key: &str) -> Result<(), VaultError> {
        let _g = self.guard();
        let mut map = self.read().unwrap_or_default();
        if map.remove(key).is_some() {
            self.write(&map)?;
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("a file only you can read ({})", self.path.display())
    }

    fn is_file(&self) -> bool {
        true
    }
}

/// The file [`open`] falls back to, in the config directory.
pub const SECRETS_FILE: &str = "secrets.json";

/// The keyring when one answers, else the 0600 file in `config_dir` (and
/// why, for the log). `PEAL_NO_KEYRING=1` skips the keyring.
pub fn open(config_dir: &Path) -> (Box<dyn Vault>, Option<String>) {
    let skip = std::env::var_os("PEAL_NO_KEYRING").is_some_and(|v| v == "1");
    if !skip {
        match Keyring::probe(config_dir) {
            Ok(k) => return (Box::new(k), None),
            Err(e) => {
                let file = FileVault::new(config_dir.join(SECRETS_FILE));
                let why = format!(
                    "no keyring service ({e}); secrets go to {}",
                    file.describe()
                );
                return (Box::new(file), Some(why));
            }
        }
    }
    let file = FileVault::new(config_dir.join(SECRETS_FILE));
    (Box::new(file), Some("PEAL_NO_KEYRING=1".to_owned()))
}

/// The sign-in kept for the next start: which server, and its session.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SavedSession {
    pub server: String,
    pub session: peal_proto::wire::LoginResponse,
}

const SESSION_KEY: &str = "session";

/// The kept sign-in, if any (one that can't be read is logged and ignored).
pub fn saved_session(v: &dyn Vault) -> Option<SavedSession> {
    match v.get(SESSION_KEY) {
        Ok(Some(text)) => serde_json::from_str(&text)
            .inspect_err(
                |e| tracing::warn!(error = %e, "kept session unreadable; signing in again"),
            )
            .ok(),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(error = %e, "kept session not read");
            None
        }
    }
}

pub fn save_session(v: &dyn Vault, s: &SavedSession) -> Result<(), VaultError> {
    v.set(SESSION_KEY, &serde_json::to_string(s).unwrap_or_default())
}

pub fn forget_session(v: &dyn Vault) -> Result<(), VaultError> {
    v.delete(SESSION_KEY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_vault_keeps_secrets_for_the_user_alone_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peal/secrets.json");
        let v = FileVault::new(path.clone());
        assert_eq!(v.get("session").unwrap(), None);
        v.set("session", "token-1").unwrap();
        v.set("local", "pw").unwrap();
        let again = FileVault::new(path.clone());
        assert_eq!(again.get("session").unwrap().as_deref(), Some("token-1"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "only the user can read it");
        }
        again.delete("session").unwrap();
        again.delete("session").unwrap();
        assert_eq!(v.get("session").unwrap(), None);
        assert_eq!(v.get("local").unwrap().as_deref(), Some("pw"));
    }

    #[test]
    fn a_kept_session_comes_back_and_is_gone_after_sign_out() {
        let dir = tempfile::tempdir().unwrap();
        let v = FileVault::new(dir.path().join("secrets.json"));
        assert_eq!(saved_session(&v), None);
        let s = SavedSession {
            server: "https://peal.example.com".into(),
            session: peal_proto::wire::LoginResponse {
                token: "t0k3n".into(),
                device_id: peal_proto::DeviceId("d1".into()),
                user: peal_proto::wire::Party {
                    uid: peal_proto::UserId("bob".into()),
                    name: "Bob".into(),
                },
            },
        };
        save_session(&v, &s).unwrap();
        assert_eq!(saved_session(&v), Some(s));
        forget_session(&v).unwrap();
        assert_eq!(saved_session(&v), None);
        v.set("session", "not json").unwrap();
        assert_eq!(saved_session(&v), None, "unreadable is as good as none");
    }

    #[test]
    fn a_damaged_secrets_file_is_an_error_to_read_and_replaced_on_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.json");
        std::fs::write(&path, "{nope").unwrap();
        let v = FileVault::new(path);
        assert!(matches!(v.get("session"), Err(VaultError::Damaged(..))));
        v.set("session", "t").unwrap();
        assert_eq!(v.get("session").unwrap().as_deref(), Some("t"));
    }
}
