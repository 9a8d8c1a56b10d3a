//! Which of the remembered devices a call can have now: each choice that is
//! connected, and for each that is not, the system's default and a notice
//! saying so (the call goes ahead rather than failing on an unplugged
//! headset).

use crate::settings::Settings;
use crate::ui::DeviceList;

/// The devices a call opens (`None`: the system's default), and what the
/// person should be told about them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ForCall {
    pub microphone: Option<String>,
    pub speaker: Option<String>,
    pub camera: Option<String>,
    pub notices: Vec<String>,
}

/// What a call (with video when `video`) opens, from the settings and the
/// devices connected `now`.
pub fn for_call(settings: &Settings, now: &DeviceList, video: bool) -> ForCall {
    let mut notices = Vec::new();
    let mut pick = |chosen: &Option<String>, connected: &[String], instead: &str| match chosen {
        Some(name) if !connected.contains(name) => {
            notices.push(format!(
                "{name} is not connected: this call uses {instead}."
            ));
            None
        }
        Some(_) | None => chosen.clone(),
    };
    let microphone = pick(
        &settings.microphone,
        &now.microphones,
        "the default microphone",
    );
    let speaker = pick(&settings.speaker, &now.speakers, "the default speaker");
    let camera = if video {
        pick(&settings.camera, &now.cameras, "the first camera")
    } else {
        settings.camera.clone()
    };
    ForCall {
        microphone,
        speaker,
        camera,
        notices,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    fn connected() -> DeviceList {
        DeviceList {
            microphones: names(&["default", "USB Headset"]),
            speakers: names(&["default", "USB Headset", "Speakers"]),
            cameras: names(&["HD Webcam"]),
            labels: Default::default(),
        }
    }

    #[test]
    fn connected_choices_are_used_as_they_are() {
        let s = Settings {
            microphone: Some("USB Headset".into()),
            speaker: Some("Speakers".into()),
            camera: Some("HD Webcam".into()),
            ..Settings::default()
        };
        let got = for_call(&s, &connected(), true);
        assert_eq!(got.microphone.as_deref(), Some("USB Headset"));
        assert_eq!(got.speaker.as_deref(), Some("Speakers"));
        assert_eq!(got.camera.as_deref(), Some("HD Webcam"));
        assert!(got.notices.is_empty(), "{:?}", got.notices);
        assert_eq!(
            for_call(&Settings::default(), &connected(), true),
            ForCall::default()
        );
    }

    #[test]
    fn an_unplugged_headset_gives_way_to_the_default_and_the_call_says_so() {
        let s = Settings {
            microphone: Some("Jabra".into()),
            speaker: Some("Jabra".into()),
            camera: Some("Old Cam".into()),
            ..Settings::default()
        };
        let got = for_call(&s, &connected(), true);
        assert_eq!(
            (got.microphone, got.speaker, got.camera),
            (None, None, None)
        );
        assert_eq!(
            got.notices,
            [
                "Jabra is not connected: this call uses the default microphone.",
                "Jabra is not connected: this call uses the default speaker.",
                "Old Cam is not connected: this call uses the first camera.",
            ]
        );
        // An audio call opens no camera and says nothing of one.
        let audio = for_call(&s, &connected(), false);
        assert_eq!(audio.notices.len(), 2, "{:?}", audio.notices);
    }
}
