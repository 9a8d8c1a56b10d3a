//! Invitations: an admin makes one (`peal-server invite`), it travels as a
//! link, and whoever opens it picks their own user id, name and password.
//!
//! A code is 128 random bits, shown once and stored only as its SHA-256 (as
//! tokens are). An invite makes at most `uses` accounts before `expires_at`,
//! unless it is revoked first. Everything here is pure: time is an input.

use peal_proto::Millis;

/// Accounts one invite makes unless told otherwise.
pub const DEFAULT_USES: u32 = 1;
/// Most accounts one invite may make (a link for a whole company, not for the world).
pub const MAX_USES: u32 = 10_000;
/// How long an invite lasts unless told otherwise: long enough to reach
/// someone on holiday, short enough that an old chat log is not a key.
pub const DEFAULT_EXPIRES: &str = "7d";
/// Longest an invite may last.
pub const MAX_EXPIRES_MS: i64 = 365 * DAY_MS;
/// Random bytes in a code (hex in the link: 32 characters).
pub const CODE_BYTES: usize = 16;
/// Random bytes in an invite's public id (what `list` shows and `revoke` takes).
pub const ID_BYTES: usize = 6;
/// Shortest password a person picks for themselves when joining.
pub const MIN_PASSWORD: usize = 8;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;

/// One invite, as stored (without its code).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invite {
    pub id: String,
    pub created_at: Millis,
    pub expires_at: Millis,
    /// Accounts it may make.
    pub uses: u32,
    /// Accounts it has made.
    pub used: u32,
    pub revoked_at: Option<Millis>,
}

/// Why an invite makes no account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("this invite is not valid on this server; ask for a new one")]
    Unknown,
    #[error("this invite was withdrawn; ask for a new one")]
    Revoked,
    #[error("this invite has been used as many times as it allows; ask for a new one")]
    UsedUp,
    #[error("this invite has expired; ask for a new one")]
    Expired,
}

impl Invite {
    /// Accounts it can still make at `now`, or why none. Revoked comes
    /// first (an admin's decision), then used up, then expired.
    pub fn check(&self, now: Millis) -> Result<u32, Refusal> {
        if self.revoked_at.is_some() {
            return Err(Refusal::Revoked);
        }
        if self.used >= self.uses {
            return Err(Refusal::UsedUp);
        }
        if now.0 >= self.expires_at.0 {
            return Err(Refusal::Expired);
        }
        Ok(self.uses - self.used)
    }

    /// One line for `peal-server invite list`.
    pub fn describe(&self, now: Millis) -> String {
        let state = match self.check(now) {
            Ok(left) => format!("open, {left} left"),
            Err(Refusal::Revoked) => "revoked".to_owned(),
            Err(Refusal::UsedUp) => "used up".to_owned(),
            Err(Refusal::Expired) => "expired".to_owned(),
            Err(Refusal::Unknown) => "unknown".to_owned(),
        };
        format!(
            "{}  made {}  expires {}  used {}/{}  {state}",
            self.id,
            utc(self.created_at),
            utc(self.expires_at),
            self.used,
            self.uses
        )
    }
}

/// Whether `code` has the form of a code (so a malformed one costs no lookup).
pub fn is_code(code: &str) -> bool {
    code.len() == CODE_BYTES * 2 && code.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `30m`, `12h`, `7d`, `2w` → milliseconds, at most [`MAX_EXPIRES_MS`].
pub fn parse_lifetime(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let bad = || {
        format!("{s:?} is not a lifetime: use minutes, hours, days or weeks, e.g. 30m, 12h, 7d, 2w")
    };
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let n: i64 = digits.parse().map_err(|_| bad())?;
    let unit_ms = match unit {
        "m" => MINUTE_MS,
        "h" => HOUR_MS,
        "d" => DAY_MS,
        "w" => 7 * DAY_MS,
        _ => return Err(bad()),
    };
    let ms = n.checked_mul(unit_ms).ok_or_else(bad)?;
    if ms <= 0 {
        return Err(format!("an invite must last longer than {s}"));
    }
    if ms > MAX_EXPIRES_MS {
        return Err(format!("an invite lasts at most 365 days, not {s}"));
    }
    Ok(ms)
}

/// The two forms of an invite to `server` (its public `http(s)://` address):
/// the `peal:join` link the app opens, and a web page for people without the
/// app yet, which offers the same link.
pub fn links(server: &str, code: &str) -> (String, String) {
    let server = server.trim().trim_end_matches('/');
    (
        format!("peal:join?server={}&invite={code}", query_value(server)),
        format!("{server}/join?invite={code}"),
    )
}

/// `s` as a URL query value (RFC 3986 unreserved characters kept).
fn query_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `2026-12-04 19:30 UTC`.
pub fn utc(t: Millis) -> String {
    let secs = t.0.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    )
}

/// The page `GET /join?invite=CODE` serves: it offers the `peal:join` link
/// (built from the address the browser used, so it is right behind a proxy)
/// and says where to get Peal. `code` is checked before it is written in.
pub fn join_page(code: Option<&str>) -> String {
    let body = match code.filter(|c| is_code(c)) {
        Some(code) => format!(
            r#"<h1>You're invited to Peal</h1>
<p>Open the invitation in the Peal app to pick your user name and password.</p>
<p><a id="open" class="button" href="peal:join?invite={code}">Open in Peal</a></p>
<p>No Peal yet? Install it, start it once, then come back to this page and click the button again.</p>
<script>
document.getElementById("open").href =
  "peal:join?server=" + encodeURIComponent(location.origin) + "&invite={code}";
</script>"#
        ),
        None => "<h1>This invitation link is incomplete</h1>\n<p>Ask whoever sent it for the whole link.</p>".to_owned(),
    };
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Peal invitation</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:34em;margin:4em auto;padding:0 1em}}
.button{{display:inline-block;padding:.6em 1.2em;background:#2563eb;color:#fff;border-radius:.4em;text-decoration:none}}
@media (prefers-color-scheme:dark){{body{{background:#111;color:#eee}}}}</style>
</head><body>
{body}
</body></html>
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite(uses: u32, used: u32, revoked: bool) -> Invite {
        Invite {
            id: "a1".into(),
            created_at: Millis(0),
            expires_at: Millis(10_000),
            uses,
            used,
            revoked_at: revoked.then_some(Millis(5)),
        }
    }

    #[test]
    fn an_invite_is_open_until_it_is_used_up_expired_or_revoked() {
        assert_eq!(invite(3, 1, false).check(Millis(9_999)), Ok(2));
        assert_eq!(
            invite(3, 1, false).check(Millis(10_000)),
            Err(Refusal::Expired)
        );
        assert_eq!(invite(3, 3, false).check(Millis(1)), Err(Refusal::UsedUp));
        // Revoked says so even when it has also run out.
        assert_eq!(
            invite(3, 3, true).check(Millis(20_000)),
            Err(Refusal::Revoked)
        );
        assert_eq!(
            invite(1, 0, false).describe(Millis(1)),
            "a1  made 1970-01-01 00:00 UTC  expires 1970-01-01 00:00 UTC  used 0/1  open, 1 left"
        );
    }

    #[test]
    fn lifetimes_read_as_people_write_them_and_nonsense_is_refused() {
        assert_eq!(parse_lifetime("30m"), Ok(30 * 60_000));
        assert_eq!(parse_lifetime("7d"), Ok(7 * 86_400_000));
        assert_eq!(parse_lifetime(" 2w "), Ok(14 * 86_400_000));
        for bad in [
            "",
            "7",
            "d",
            "7x",
            "-1d",
            "0h",
            "400d",
            "99999999999999999999d",
        ] {
            assert!(parse_lifetime(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn links_carry_the_server_encoded_and_the_code() {
        let (app, web) = links("https://peal.example.com:8443/", "ab12");
        assert_eq!(
            app,
            "peal:join?server=https%3A%2F%2Fpeal.example.com%3A8443&invite=ab12"
        );
        assert_eq!(web, "https://peal.example.com:8443/join?invite=ab12");
    }

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(utc(Millis(0)), "1970-01-01 00:00 UTC");
        // 2026-12-04 19:30:00 UTC
        assert_eq!(utc(Millis(1_796_412_600_000)), "2026-12-04 19:30 UTC");
        assert_eq!(utc(Millis(951_782_400_000)), "2000-02-29 00:00 UTC");
    }

    #[test]
    fn the_join_page_writes_in_only_a_well_formed_code() {
        let code = "0123456789abcdef0123456789abcdef";
        assert!(join_page(Some(code)).contains(&format!("&invite={code}")));
        let evil = join_page(Some("\"><script>alert(1)</script>"));
        assert!(!evil.contains("alert(1)"));
        assert!(evil.contains("incomplete"));
        assert!(join_page(None).contains("incomplete"));
    }
}
