//! The user's choices, kept as one JSON file in the app's config directory.
//! A missing or unreadable file means the defaults (and says why in the log);
//! a value out of range is clamped, never trusted.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::tones::{self, Tone, ToneError};

/// Which ringtone: a built-in one by id, or a file of the user's own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Ringtone {
    Builtin {
        id: String,
    },
    File {
        #[ts(type = "string")]
        path: PathBuf,
    },
}

impl Default for Ringtone {
    fn default() -> Self {
        Ringtone::Builtin {
            id: "classic".to_owned(),
        }
    }
}

impl Ringtone {
    /// Its samples: a file that can't be played is an error (the caller
    /// falls back to the default ringtone and says so).
    pub fn tone(&self) -> Result<Tone, ToneError> {
        match self {
            Ringtone::Builtin { id } => Ok(tones::ringtone(id)
                .or_else(|| tones::ringtone("classic"))
                .unwrap_or_else(tones::ringback)),
            Ringtone::File { path } => tones::from_file(path),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(default)]
pub struct Settings {
    pub ringtone: Ringtone,
    /// 0..=100.
    pub ringtone_volume: u8,
    /// Incoming calls are declined as busy and counted as missed.
    pub do_not_disturb: bool,
    /// The devices calls use, each by the name the system gives it
    /// (`None`: the system's default). A remembered device that is not
    /// connected gives way to the default, and the call says so.
    pub microphone: Option<String>,
    pub speaker: Option<String>,
    /// Where the ringtone plays: a loud speaker, say, while calls go to a
    /// headset (`None`: the system's default output).
    pub ringtone_output: Option<String>,
    /// A camera by name (`None`: the first). Settings from before names
    /// kept an index, which reads as the first camera.
    #[serde(deserialize_with = "camera_by_name")]
    pub camera: Option<String>,
    /// How the system described each chosen device when it was chosen
    /// ("USB Headset" for `headset`), so a call can name one that has since
    /// been unplugged as the person knows it. Kept by the app
    /// ([`crate::devices::remember_labels`]); the page passes it through.
    pub device_labels: std::collections::BTreeMap<String, String>,
    /// Peal starts (hidden in the tray) when the user logs in, so calls
    /// ring after a reboot without opening it.
    pub start_at_login: bool,
    /// Signed in on "this computer" last time: the app does so again at start.
    pub this_computer: bool,
    /// The server and user last signed in to (the sign-in form is filled in).
    pub server: Option<String>,
    pub user: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            ringtone: Ringtone::default(),
            ringtone_volume: 80,
            do_not_disturb: false,
            microphone: None,
            speaker: None,
            ringtone_output: None,
            camera: None,
            device_labels: Default::default(),
            start_at_login: true,
            this_computer: false,
            server: None,
            user: None,
        }
    }
}

/// A camera as kept: its name, or (from before names) an index, which
/// can't name one and so means the first.
fn camera_by_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Kept {
        Name(String),
        Index(#[allow(dead_code)] u64),
    }
    Ok(match Option::<Kept>::deserialize(d)? {
        Some(Kept::Name(name)) => Some(name),
        Some(Kept::Index(_)) | None => None,
    })
}

impl Settings {
    /// The output `sound` plays on: the ringtone on its own output, the
    /// sounds of our own calls (and the test) on the call speaker.
    pub fn output_for(&self, sound: crate::ui::Playing) -> Option<&str> {
        use crate::ui::Playing;
        match sound {
            Playing::Ringtone => self.ringtone_output.as_deref(),
            Playing::Ringback | Playing::Busy | Playing::Test => self.speaker.as_deref(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("can't save settings to {0}: {1}")]
    Write(String, std::io::Error),
}

impl Settings {
    /// Reads `path`; the defaults when it is missing or unreadable.
    pub fn load(path: &Path) -> Settings {
        let mut s = match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str::<Settings>(&text).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "settings unreadable; using defaults");
                Settings::default()
            }),
            Err(_) => Settings::default(),
        };
        s.ringtone_volume = s.ringtone_volume.min(100);
        s
    }

    /// Writes `path` whole (see [`write_whole`]).
    pub fn save(&self, path: &Path) -> Result<(), SettingsError> {
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        write_whole(path, text.as_bytes(), false)
            .map_err(|e| SettingsError::Write(path.display().to_string(), e))
    }
}

/// Writes `path` whole: a temporary file beside it (0600 when `private`)
/// renamed over it, so a crash never leaves half a file. The directory is
/// made if missing. Every file the app keeps is written this way.
pub(crate) fn write_whole(path: &Path, bytes: &[u8], private: bool) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut f = opts.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_survive_a_restart_and_bad_files_mean_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("peal/settings.json");
        assert_eq!(Settings::load(&p), Settings::default());
        let s = Settings {
            ringtone: Ringtone::Builtin { id: "chime".into() },
            ringtone_volume: 35,
            do_not_disturb: true,
            ..Settings::default()
        };
        s.save(&p).unwrap();
        assert_eq!(Settings::load(&p), s);
        std::fs::write(&p, "{not json").unwrap();
        assert_eq!(Settings::load(&p), Settings::default());
        std::fs::write(&p, r#"{"ringtone_volume": 250}"#).unwrap();
        assert_eq!(Settings::load(&p).ringtone_volume, 100, "clamped");
    }

    #[test]
    fn chosen_devices_are_remembered_by_name_and_an_old_camera_index_means_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("settings.json");
        let s = Settings {
            microphone: Some("USB Headset".into()),
            speaker: Some("USB Headset".into()),
            ringtone_output: Some("Speakers".into()),
            camera: Some("HD Webcam".into()),
            ..Settings::default()
        };
        s.save(&p).unwrap();
        assert_eq!(Settings::load(&p), s);
        // A file from before names: everything else in it is kept.
        std::fs::write(
            &p,
            r#"{"camera": 1, "ringtone_volume": 35, "do_not_disturb": true}"#,
        )
        .unwrap();
        let old = Settings::load(&p);
        assert_eq!(
            (old.camera, old.ringtone_volume, old.do_not_disturb),
            (None, 35, true)
        );
    }

    #[test]
    fn the_ringtone_plays_on_its_own_output_and_our_calls_sounds_on_the_speaker() {
        use crate::ui::Playing;
        let s = Settings {
            speaker: Some("USB Headset".into()),
            ringtone_output: Some("Speakers".into()),
            ..Settings::default()
        };
        assert_eq!(s.output_for(Playing::Ringtone), Some("Speakers"));
        for sound in [Playing::Ringback, Playing::Busy, Playing::Test] {
            assert_eq!(s.output_for(sound), Some("USB Headset"), "{sound:?}");
        }
        assert_eq!(Settings::default().output_for(Playing::Ringtone), None);
    }

    #[test]
    fn an_unknown_builtin_ringtone_falls_back_to_classic() {
        let t = Ringtone::Builtin { id: "gone".into() }.tone().unwrap();
        assert_eq!(
            t.samples.len(),
            tones::ringtone("classic").unwrap().samples.len()
        );
    }
}
