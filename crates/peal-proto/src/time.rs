//! Time as a plain value: milliseconds since the Unix epoch.
//!
//! The state machine never asks what time it is; callers pass `now`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Milliseconds since 1970-01-01T00:00:00Z.
/// On the wire (and in TypeScript) an RFC 3339 string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(type = "string"))]
pub struct Millis(pub i64);

impl Millis {
    /// `self + ms`, saturating.
    pub fn plus(self, ms: i64) -> Millis {
        Millis(self.0.saturating_add(ms))
    }

    /// Milliseconds from `earlier` to `self` (negative when `earlier` is later).
    pub fn since(self, earlier: Millis) -> i64 {
        self.0.saturating_sub(earlier.0)
    }

    /// RFC 3339 with millisecond precision in UTC, e.g. `2026-11-24T12:00:00.123Z`.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        match ::time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(t) => {
                let t = t
                    .replace_nanosecond((t.millisecond() as u32) * 1_000_000)
                    .unwrap_or(t);
                t.format(&::time::format_description::well_known::Rfc3339)
                    .unwrap_or_else(|_| self.0.to_string())
            }
            Err(_) => self.0.to_string(),
        }
    }

    /// Parses RFC 3339; `None` when it is not, or when the instant has no
    /// RFC 3339 form in UTC (`9999-12-31T23:59:59-23:59` is in year 10000):
    /// every time accepted can be written back.
    pub fn parse_rfc3339(s: &str) -> Option<Millis> {
        let t = ::time::OffsetDateTime::parse(s, &::time::format_description::well_known::Rfc3339)
            .ok()?;
        // 0000-01-01T00:00:00Z ..= 9999-12-31T23:59:59Z, by the timestamp
        // (converting an instant past them to UTC would panic).
        if !(-62_167_219_200..=253_402_300_799).contains(&t.unix_timestamp()) {
            return None;
        }
        i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
            .ok()
            .map(Millis)
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Millis {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Millis::parse_rfc3339(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 time: {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_with_milliseconds() {
        let t = Millis(1_764_000_000_123);
        let s = t.to_rfc3339();
        assert_eq!(s, "2025-11-24T16:00:00.123Z");
        assert_eq!(Millis::parse_rfc3339(&s), Some(t));
    }

    #[test]
    fn a_time_outside_years_0_to_9999_in_utc_is_refused_so_every_accepted_one_writes_back() {
        // Found by the client_frame and request_bodies fuzz targets.
        assert_eq!(Millis::parse_rfc3339("9999-12-31T23:59:59-23:59"), None);
        assert_eq!(Millis::parse_rfc3339("0000-01-01T00:00:00+23:59"), None);
        let last = Millis::parse_rfc3339("9999-12-31T23:59:59.999Z").unwrap();
        assert_eq!(Millis::parse_rfc3339(&last.to_rfc3339()), Some(last));
    }

    #[test]
    fn garbage_time_is_refused_not_panicked_on() {
        assert_eq!(Millis::parse_rfc3339("yesterday"), None);
        assert!(serde_json::from_str::<Millis>("\"nope\"").is_err());
    }
}
