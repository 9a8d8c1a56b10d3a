//! The XML of a Windows toast for a call, made here so it is tested on every
//! system (the `windows` backend only loads it). The schema is Microsoft's
//! "toast content" one: `scenario="incomingCall"` keeps an incoming call on
//! screen with its buttons until it is answered, declined or withdrawn;
//! each button's `arguments` and the toast's own `launch` are the action
//! keys [`super::Action::from_key`] reads back. The ringtone is the app's
//! own, so an incoming toast is silent.

use super::Kind;

/// The toast for `kind`, saying `summary` and `body`.
pub fn xml(kind: Kind, summary: &str, body: &str) -> String {
    let scenario = match kind {
        Kind::Incoming => r#" scenario="incomingCall""#,
        Kind::Missed => "",
    };
    let mut out = format!(
        r#"<toast launch="default" activationType="foreground"{scenario}><visual><binding template="ToastGeneric"><text>{}</text><text>{}</text></binding></visual><actions>"#,
        escape(summary),
        escape(body)
    );
    // "default" is the toast itself (its `launch`), not a button.
    for (key, label) in kind.actions().iter().filter(|(k, _)| *k != "default") {
        out.push_str(&format!(
            r#"<action content="{}" arguments="{}" activationType="foreground"/>"#,
            escape(label),
            escape(key)
        ));
    }
    out.push_str("</actions>");
    if kind == Kind::Incoming {
        out.push_str(r#"<audio silent="true"/>"#);
    }
    out.push_str("</toast>");
    out
}

/// Text and attribute values as XML: a caller named `<b>&Co` is shown as
/// typed, never parsed (and can't break the toast).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters other than tab and newlines aren't XML.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::Action;

    #[test]
    fn an_incoming_toast_is_a_silent_incoming_call_with_accept_then_decline() {
        let x = xml(
            Kind::Incoming,
            "Incoming video call",
            "Alice is calling you",
        );
        assert_eq!(
            x,
            r#"<toast launch="default" activationType="foreground" scenario="incomingCall"><visual><binding template="ToastGeneric"><text>Incoming video call</text><text>Alice is calling you</text></binding></visual><actions><action content="Accept" arguments="accept" activationType="foreground"/><action content="Decline" arguments="decline" activationType="foreground"/></actions><audio silent="true"/></toast>"#
        );
    }

    #[test]
    fn a_missed_call_toast_offers_call_back_and_is_not_a_ringing_call() {
        let x = xml(
            Kind::Missed,
            "Missed call from Alice",
            "Video call from Alice",
        );
        assert!(!x.contains("incomingCall"), "{x}");
        assert!(!x.contains("silent"), "{x}");
        assert!(
            x.contains(
                r#"<action content="Call back" arguments="call_back" activationType="foreground"/>"#
            ),
            "{x}"
        );
    }

    #[test]
    fn every_key_a_toast_can_send_back_is_the_choice_it_shows() {
        for kind in [Kind::Incoming, Kind::Missed] {
            let x = xml(kind, "s", "b");
            for (key, label) in kind.actions() {
                let expected = match *key {
                    "default" => Action::Show,
                    "accept" => Action::Accept,
                    "decline" => Action::Decline,
                    "call_back" => Action::CallBack,
                    other => panic!("an action key the toast can't send: {other}"),
                };
                assert_eq!(Action::from_key(key), expected, "{label}");
                let sent = if *key == "default" {
                    r#"launch="default""#.to_owned()
                } else {
                    format!(r#"arguments="{key}""#)
                };
                assert!(x.contains(&sent), "{kind:?} lacks {sent}: {x}");
            }
        }
    }

    #[test]
    fn a_name_with_markup_is_shown_as_typed_not_parsed() {
        let x = xml(
            Kind::Incoming,
            "Incoming audio call",
            "<b>Tom & \"Jerry\"</b>'s\u{7} phone is calling",
        );
        assert!(
            x.contains("<text>&lt;b&gt;Tom &amp; &quot;Jerry&quot;&lt;/b&gt;&apos;s phone is calling</text>"),
            "{x}"
        );
        // Still one document: the only markup is ours.
        assert_eq!(x.matches("<text>").count(), 2);
    }
}
