//! Which of the remembered devices a call can have now: each choice that is
//! connected, and for each that is not, the system's default and a notice
//! saying so (the call goes ahead rather than failing on an unplugged
//! headset).

use crate::settings::Settings;
use crate::ui::DeviceList;
use std::collections::{BTreeMap, BTreeSet};

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
    let labels = &settings.device_labels;
    let mut pick = |chosen: &Option<String>, connected: &[String], instead: &str| match chosen {
        Some(name) if !connected.contains(name) => {
            let known_as = labels.get(name).unwrap_or(name);
            notices.push(format!(
                "{known_as} is not connected: this call uses {instead}."
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

/// Keeps `settings.device_labels` to the chosen devices: how the system
/// describes each now (`now`, name → description), or, for one that is not
/// connected now, how it was described when it was chosen.
pub fn remember_labels(settings: &mut Settings, now: &BTreeMap<String, String>) {
    let chosen: BTreeSet<&String> = [
        &settings.microphone,
        &settings.speaker,
        &settings.ringtone_output,
        &settings.camera,
    ]
    .into_iter()
    .flatten()
    .collect();
    let before = &settings.device_labels;
    let kept = chosen
        .into_iter()
        .filter_map(|name| {
            let label = now.get(name).or_else(|| before.get(name))?;
            Some((name.clone(), label.clone()))
        })
        .collect();
    settings.device_labels = kept;
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

    #[test]
    fn an_unplugged_headset_is_named_as_the_system_described_it_when_it_was_chosen() {
        let described = BTreeMap::from([
            ("headset".to_owned(), "USB Headset".to_owned()),
            ("pulse".to_owned(), "PulseAudio Sound Server".to_owned()),
        ]);
        // Chosen while plugged in: its description is kept, not the others'.
        let mut s = Settings {
            microphone: Some("headset".into()),
            speaker: Some("headset".into()),
            ..Settings::default()
        };
        remember_labels(&mut s, &described);
        assert_eq!(
            s.device_labels,
            BTreeMap::from([("headset".to_owned(), "USB Headset".to_owned())])
        );
        // Saved again while it is unplugged: the description stays.
        remember_labels(&mut s, &BTreeMap::new());
        assert_eq!(
            s.device_labels.get("headset").map(String::as_str),
            Some("USB Headset")
        );
        let got = for_call(&s, &connected(), false);
        assert_eq!(
            got.notices,
            [
                "USB Headset is not connected: this call uses the default microphone.",
                "USB Headset is not connected: this call uses the default speaker.",
            ]
        );
        // Back to the defaults: nothing is kept of it.
        s.microphone = None;
        s.speaker = None;
        remember_labels(&mut s, &described);
        assert!(s.device_labels.is_empty(), "{:?}", s.device_labels);
    }
}
