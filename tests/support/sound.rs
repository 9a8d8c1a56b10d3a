//! A real sound server for tests that choose devices: PulseAudio with null
//! sinks (clocked, as a sound card is) and a sine source, the ALSA devices a
//! person "plugs in" on it, and what a recording of a sink holds.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use peal_desktop_core::tones::power_at;

use crate::wait_for;

/// ALSA's own configuration and then ours: alsa-lib reads the files named
/// here again when one changes (it only watches these, not what they
/// include), so a device "plugged in" by rewriting ~/.asoundrc shows up as
/// a new sound card does on a real machine.
pub fn alsa_config_path(home: &Path) -> String {
    format!(
        "/usr/share/alsa/alsa.conf:{}",
        home.join(".asoundrc").display()
    )
}

/// A real sound server for one test desktop: PulseAudio (clocked, as a
/// sound card is, where ALSA's null device takes samples as fast as they
/// come) with null sinks for the default speakers, a "headset" and "desk"
/// speakers, and a 440 Hz sine as the headset's microphone. Its socket is
/// in the app's runtime directory, where the app looks for one.
pub struct Pulse {
    child: Child,
    recorder: Option<Child>,
    home: PathBuf,
}

impl Drop for Pulse {
    fn drop(&mut self) {
        for c in self.recorder.iter_mut().chain([&mut self.child]) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Pulse {
    /// Starts one with its socket at `home/pulse/native` (the runtime
    /// directory `home` names), logging to `log`.
    pub fn start(home: &Path, log: &Path) -> Pulse {
        let socket = home.join("pulse/native");
        std::fs::create_dir_all(home.join("pulse")).expect("pulse dir");
        let script = home.join("peal-test.pa");
        std::fs::write(
            &script,
            format!(
                "load-module module-native-protocol-unix socket={} auth-anonymous=1\n\
                 load-module module-null-sink sink_name=speakers\n\
                 load-module module-null-sink sink_name=headset\n\
                 load-module module-null-sink sink_name=desk\n\
                 load-module module-sine-source source_name=headset_mic frequency=440\n\
                 set-default-sink speakers\n\
                 set-default-source speakers.monitor\n",
                socket.display()
            ),
        )
        .expect("pulse script");
        let child = Command::new("pulseaudio")
            .args([
                "-n",
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--use-pid-file=no",
            ])
            .arg("-F")
            .arg(&script)
            .env("HOME", home)
            .env("XDG_RUNTIME_DIR", home)
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(log).expect("pulse log")))
            .spawn()
            // make test installs it (scripts/ensure-deps.sh).
            .unwrap_or_else(|e| panic!("pulseaudio starts: {e}"));
        let pulse = Pulse {
            child,
            recorder: None,
            home: home.to_owned(),
        };
        wait_for("PulseAudio takes connections", 15, || {
            pulse.pactl(&["info"]).is_some()
        });
        pulse
    }

    pub fn pactl(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("pactl")
            .args(args)
            .env(
                "PULSE_SERVER",
                format!("unix:{}", self.home.join("pulse/native").display()),
            )
            .env("HOME", &self.home)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Records what the headset plays (its sink's monitor), 48 kHz mono f32.
    pub fn record_headset(&mut self) -> PathBuf {
        let file = self.home.join("headset.rec");
        let child = Command::new("parec")
            .args([
                "-d",
                "headset.monitor",
                "--format=float32le",
                "--rate=48000",
                "--channels=1",
            ])
            .env(
                "PULSE_SERVER",
                format!("unix:{}", self.home.join("pulse/native").display()),
            )
            .env("HOME", &self.home)
            .stdout(Stdio::from(
                std::fs::File::create(&file).expect("recording"),
            ))
            .stderr(Stdio::null())
            .spawn()
            .expect("parec starts");
        self.recorder = Some(child);
        file
    }
}

/// The test desktop's ALSA as a person plugs devices in and out: the
/// default device, the headset and the desk speakers as ALSA devices on the
/// sound server's sinks. Rewritten whole, as a new file (alsa-lib reads its
/// configuration again when a file in ALSA_CONFIG_PATH changes), so a
/// device plugged in shows up as a new sound card does on a real machine.
pub fn plug(home: &Path, headset: bool, desk: bool) {
    let mut conf = String::from("pcm.!default { type pulse device speakers }\n");
    if headset {
        conf += "pcm.headset { type asym playback.pcm { type pulse device headset } capture.pcm { type pulse device headset_mic } hint { show on description \"USB Headset\" } }\n";
    }
    if desk {
        conf +=
            "pcm.desk { type pulse device desk hint { show on description \"Desk speakers\" } }\n";
    }
    std::fs::write(home.join(".asoundrc.new"), conf).expect("asoundrc");
    std::fs::rename(home.join(".asoundrc.new"), home.join(".asoundrc")).expect("asoundrc");
}

/// How much of a recording (48 kHz mono f32) is at `notes` (Hz) rather
/// than at two frequencies no sound of ours has, and its loudest sample.
pub fn heard(file: &Path, notes: &[f64]) -> (f64, f32) {
    let bytes = std::fs::read(file).unwrap_or_default();
    let pcm: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let on: f64 = notes.iter().map(|hz| power_at(&pcm, 48_000, *hz)).sum();
    let off = power_at(&pcm, 48_000, 300.0) + power_at(&pcm, 48_000, 1200.0);
    let peak = pcm.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    (on / off.max(1e-12), peak)
}
