//! `peal:` links, from a web page, a chat or a calendar:
//!
//! - `peal:call/USER?server=URL&video=1` rings USER (on the server the link
//!   names, or the one you're signed in to) after one click of confirmation;
//! - `peal:join?server=URL&invite=CODE` is an invitation to a server.
//!
//! [`parse`] turns a link into a [`Link`] or says what is wrong with it
//! (never a panic, whatever the input); [`route`] decides, from where the
//! user is signed in, what the app does with it. A link never places a call
//! by itself.

use peal_proto::ids::is_valid_id;
use peal_proto::UserId;

/// Longest link taken (a browser's limit is far above a real one).
pub const MAX_LINK: usize = 2048;

/// What a link asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Link {
    Call {
        user: UserId,
        /// The server the link names (`None`: the one you're signed in to).
        server: Option<String>,
        video: bool,
    },
    Join {
        server: String,
        invite: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("not a peal: link")]
    NotPeal,
    #[error("the link is longer than {MAX_LINK} characters")]
    TooLong,
    #[error("a peal: link is peal:call/USER or peal:join, not {0:?}")]
    UnknownAction(String),
    #[error("the link names no one to call")]
    NoUser,
    #[error("{0:?} is not a user id")]
    BadUser(String),
    #[error("{0:?} is not a server address (https://…)")]
    BadServer(String),
    #[error("an invite link names its server")]
    NoServer,
    #[error("the invite code is missing or malformed")]
    BadInvite,
}

/// Reads a `peal:` link (`peal:call/alice`, also `peal://call/alice`).
pub fn parse(text: &str) -> Result<Link, LinkError> {
    let text = text.trim();
    if text.len() > MAX_LINK {
        return Err(LinkError::TooLong);
    }
    let url = url::Url::parse(text).map_err(|_| LinkError::NotPeal)?;
    if url.scheme() != "peal" {
        return Err(LinkError::NotPeal);
    }
    // `peal:call/alice` has the path "call/alice"; `peal://call/alice` has
    // the host "call" and the path "/alice".
    let whole = match url.host_str() {
        Some(host) => format!("{host}{}", url.path()),
        None => url.path().to_owned(),
    };
    let mut parts = whole.trim_matches('/').splitn(2, '/');
    let action = parts.next().unwrap_or_default().to_ascii_lowercase();
    let rest = parts.next().unwrap_or_default().trim_matches('/');
    let query = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let server = query("server").map(|s| server_url(&s)).transpose()?;
    match action.as_str() {
        "call" => {
            if rest.is_empty() {
                return Err(LinkError::NoUser);
            }
            let user = percent_decoded(rest);
            if !is_valid_id(&user) {
                return Err(LinkError::BadUser(user));
            }
            let video = query("video").is_some_and(|v| v == "1" || v == "true");
            Ok(Link::Call {
                user: UserId(user),
                server,
                video,
            })
        }
        "join" => {
            let server = server.ok_or(LinkError::NoServer)?;
            let invite = query("invite").ok_or(LinkError::BadInvite)?;
            let ok = (1..=128).contains(&invite.len())
                && invite
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                return Err(LinkError::BadInvite);
            }
            Ok(Link::Join { server, invite })
        }
        other => Err(LinkError::UnknownAction(other.chars().take(40).collect())),
    }
}

fn percent_decoded(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// An `http(s)` server address, in the form the app compares.
fn server_url(s: &str) -> Result<String, LinkError> {
    let bad = || LinkError::BadServer(s.chars().take(80).collect());
    let u = url::Url::parse(s.trim()).map_err(|_| bad())?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(bad());
    }
    Ok(normal(&u))
}

/// scheme://host[:port][/path], without a trailing slash, lower-case host.
fn normal(u: &url::Url) -> String {
    let mut out = format!("{}://{}", u.scheme(), u.host_str().unwrap_or_default());
    if let Some(p) = u.port() {
        out.push_str(&format!(":{p}"));
    }
    out.push_str(u.path().trim_end_matches('/'));
    out
}

/// Whether two server addresses are the same server (case of the host, a
/// trailing slash and the default port don't matter).
pub fn same_server(a: &str, b: &str) -> bool {
    match (url::Url::parse(a.trim()), url::Url::parse(b.trim())) {
        (Ok(a), Ok(b)) => normal(&a) == normal(&b),
        (Ok(_) | Err(_), _) => a.trim() == b.trim(),
    }
}

/// What the app does with a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Ask "Call USER?"; only a click places the call.
    ConfirmCall { user: UserId, video: bool },
    /// Signed in elsewhere, or not at all: the sign-in screen for `server`
    /// first (the link is kept and asked about after).
    SignInFirst { server: String },
    /// Signed out and the link names no server: sign in first, to any.
    SignInAnywhere,
    /// An invitation to `server`, signed out: offer to make the account.
    Join { server: String, invite: String },
    /// An invitation to the server you're signed in to: nothing to do.
    AlreadyMember { server: String },
    /// An invitation to another server than yours: sign out first.
    SignOutToJoin {
        server: String,
        signed_in_to: String,
    },
}

/// Decides what a link does, given the server the user is signed in to.
pub fn route(link: &Link, signed_in_to: Option<&str>) -> Route {
    match link {
        Link::Call {
            user,
            server,
            video,
        } => match (server, signed_in_to) {
            (None, Some(_)) => Route::ConfirmCall {
                user: user.clone(),
                video: *video,
            },
            (Some(s), Some(now)) if same_server(s, now) => Route::ConfirmCall {
                user: user.clone(),
                video: *video,
            },
            (Some(s), Some(_) | None) => Route::SignInFirst { server: s.clone() },
            (None, None) => Route::SignInAnywhere,
        },
        Link::Join { server, invite } => match signed_in_to {
            None => Route::Join {
                server: server.clone(),
                invite: invite.clone(),
            },
            Some(now) if same_server(server, now) => Route::AlreadyMember {
                server: server.clone(),
            },
            Some(now) => Route::SignOutToJoin {
                server: server.clone(),
                signed_in_to: now.to_owned(),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(user: &str, server: Option<&str>, video: bool) -> Link {
        Link::Call {
            user: UserId(user.into()),
            server: server.map(str::to_owned),
            video,
        }
    }

    #[test]
    fn call_links_in_the_forms_people_paste() {
        assert_eq!(parse("peal:call/alice"), Ok(call("alice", None, false)));
        assert_eq!(
            parse("peal:call/alice?server=https://Peal.Example.com/&video=1"),
            Ok(call("alice", Some("https://peal.example.com"), true))
        );
        assert_eq!(
            parse("peal://call/alice?server=https%3A%2F%2Fpeal.example.com%3A8443"),
            Ok(call("alice", Some("https://peal.example.com:8443"), false))
        );
        assert_eq!(
            parse("  peal:CALL/bob.smith  "),
            Ok(call("bob.smith", None, false))
        );
        assert_eq!(
            parse("peal:call/alice?video=true"),
            Ok(call("alice", None, true))
        );
    }

    #[test]
    fn invite_links_name_their_server_and_code() {
        assert_eq!(
            parse("peal:join?server=http://127.0.0.1:7300&invite=Ab3_x-9"),
            Ok(Link::Join {
                server: "http://127.0.0.1:7300".into(),
                invite: "Ab3_x-9".into()
            })
        );
        assert_eq!(parse("peal:join?invite=abc"), Err(LinkError::NoServer));
        assert_eq!(
            parse("peal:join?server=https://s.example&invite=a%20b"),
            Err(LinkError::BadInvite)
        );
        assert_eq!(
            parse("peal:join?server=https://s.example"),
            Err(LinkError::BadInvite)
        );
    }

    #[test]
    fn bad_links_get_a_reason_and_never_a_panic() {
        assert_eq!(parse("https://peal.example.com"), Err(LinkError::NotPeal));
        assert_eq!(parse("not a link"), Err(LinkError::NotPeal));
        assert_eq!(parse("peal:call/"), Err(LinkError::NoUser));
        assert_eq!(parse("peal:call"), Err(LinkError::NoUser));
        assert!(matches!(
            parse("peal:call/al%20ice"),
            Err(LinkError::BadUser(_))
        ));
        assert!(matches!(parse("peal:call/a/b"), Err(LinkError::BadUser(_))));
        assert!(matches!(
            parse("peal:hangup/alice"),
            Err(LinkError::UnknownAction(_))
        ));
        assert!(matches!(
            parse("peal:call/alice?server=javascript:alert(1)"),
            Err(LinkError::BadServer(_))
        ));
        assert!(matches!(
            parse("peal:call/alice?server=file:///etc/passwd"),
            Err(LinkError::BadServer(_))
        ));
        let long = format!("peal:call/{}", "a".repeat(MAX_LINK));
        assert_eq!(parse(&long), Err(LinkError::TooLong));
        for junk in [
            "peal:",
            "peal:%",
            "peal://",
            "peal:?server=",
            "peal:call/%ff%fe",
            "peal:join?server=&invite=",
        ] {
            let _ = parse(junk);
        }
    }

    #[test]
    fn a_call_link_asks_first_and_only_on_the_server_it_names() {
        let here = Some("https://peal.example.com");
        let ask = Route::ConfirmCall {
            user: UserId("alice".into()),
            video: true,
        };
        assert_eq!(route(&call("alice", None, true), here), ask);
        assert_eq!(
            route(
                &call("alice", Some("https://PEAL.example.com/"), true),
                here
            ),
            ask
        );
        assert_eq!(
            route(&call("alice", Some("https://other.example"), true), here),
            Route::SignInFirst {
                server: "https://other.example".into()
            }
        );
        assert_eq!(
            route(&call("alice", Some("https://other.example"), false), None),
            Route::SignInFirst {
                server: "https://other.example".into()
            }
        );
        assert_eq!(
            route(&call("alice", None, false), None),
            Route::SignInAnywhere
        );
    }

    #[test]
    fn an_invite_is_offered_only_to_someone_signed_out() {
        let link = parse("peal:join?server=https://peal.example.com&invite=ab12").unwrap();
        assert_eq!(
            route(&link, None),
            Route::Join {
                server: "https://peal.example.com".into(),
                invite: "ab12".into()
            }
        );
        assert_eq!(
            route(&link, Some("https://PEAL.example.com/")),
            Route::AlreadyMember {
                server: "https://peal.example.com".into()
            }
        );
        assert_eq!(
            route(&link, Some("http://127.0.0.1:7300")),
            Route::SignOutToJoin {
                server: "https://peal.example.com".into(),
                signed_in_to: "http://127.0.0.1:7300".into()
            }
        );
    }

    #[test]
    fn servers_compare_without_case_slash_or_default_port() {
        assert!(same_server(
            "https://Peal.example.com/",
            "https://peal.example.com"
        ));
        assert!(same_server(
            "https://peal.example.com:443",
            "https://peal.example.com"
        ));
        assert!(!same_server(
            "http://peal.example.com",
            "https://peal.example.com"
        ));
        assert!(!same_server("https://a.example", "https://b.example"));
    }
}
