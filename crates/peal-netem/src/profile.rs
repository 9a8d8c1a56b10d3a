//! A path's parameters: `loss=3%,delay=40ms,jitter=10ms,rate=600kbit,queue=100ms`,
//! each optional, and rate steps `steps=2000kbit/20s+500kbit/20s+2000kbit/20s`.

use std::time::Duration;

/// One direction of a path (both directions get the same).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Profile {
    /// Probability that a frame is lost, 0..=1.
    pub loss: f64,
    /// One-way delay added to every frame.
    pub delay: Duration,
    /// Each frame's delay varies uniformly by ± this much (never reordering:
    /// a frame never overtakes the one before it, as on one real link).
    pub jitter: Duration,
    /// The link's rate in bit/s (`None`: unlimited), changing over time in
    /// steps; the last step lasts for ever.
    pub steps: Vec<(u64, Duration)>,
    /// The most a frame may wait in the rate limiter's queue before it is
    /// tail-dropped (a shallow home-router buffer is ~100 ms).
    pub queue: Duration,
}

/// Why a profile string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProfileError {
    #[error("unknown profile or parameter `{0}` (known: loss, delay, jitter, rate, steps, queue; or a named profile: {names})", names = NAMED.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "))]
    Unknown(String),
    #[error("`{0}`: {1}")]
    Bad(String, &'static str),
}

/// The benchmark's profiles (issue 12's table), by name.
pub const NAMED: &[(&str, &str)] = &[
    ("clean", ""),
    ("loss3", "loss=3%,delay=40ms,jitter=10ms"),
    ("narrow600", "rate=600kbit,delay=40ms,queue=100ms"),
    (
        "lossy1m",
        "rate=1000kbit,loss=5%,delay=60ms,jitter=20ms,queue=100ms",
    ),
    (
        "step",
        "steps=2000kbit/20s+500kbit/20s+2000kbit/20s,delay=40ms,queue=100ms",
    ),
];

fn duration(key: &str, v: &str) -> Result<Duration, ProfileError> {
    let bad = || ProfileError::Bad(key.to_owned(), "a duration like 40ms or 20s");
    let (n, unit) = if let Some(n) = v.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000)
    } else {
        return Err(bad());
    };
    let n: u64 = n.parse().map_err(|_| bad())?;
    Ok(Duration::from_millis(n.checked_mul(unit).ok_or_else(bad)?))
}

fn rate(key: &str, v: &str) -> Result<u64, ProfileError> {
    let bad = || ProfileError::Bad(key.to_owned(), "a rate like 600kbit or 2mbit");
    let (n, mul) = if let Some(n) = v.strip_suffix("kbit") {
        (n, 1000)
    } else if let Some(n) = v.strip_suffix("mbit") {
        (n, 1_000_000)
    } else {
        return Err(bad());
    };
    let n: u64 = n.parse().map_err(|_| bad())?;
    match n.checked_mul(mul) {
        Some(r) if r >= 8_000 => Ok(r),
        _ => Err(bad()),
    }
}

impl Profile {
    /// A named profile or a parameter list (see the module docs).
    pub fn parse(s: &str) -> Result<Profile, ProfileError> {
        if let Some((_, spec)) = NAMED.iter().find(|(n, _)| *n == s) {
            return Profile::parse(spec);
        }
        let mut p = Profile {
            queue: Duration::from_millis(100),
            ..Profile::default()
        };
        for part in s.split(',').filter(|s| !s.is_empty()) {
            let Some((key, v)) = part.split_once('=') else {
                return Err(ProfileError::Unknown(part.to_owned()));
            };
            match key {
                "loss" => {
                    let bad = || ProfileError::Bad(key.to_owned(), "a percentage like 3%");
                    let n: f64 = v
                        .strip_suffix('%')
                        .ok_or_else(bad)?
                        .parse()
                        .map_err(|_| bad())?;
                    if !(0.0..=100.0).contains(&n) {
                        return Err(bad());
                    }
                    p.loss = n / 100.0;
                }
                "delay" => p.delay = duration(key, v)?,
                "jitter" => p.jitter = duration(key, v)?,
                "queue" => p.queue = duration(key, v)?,
                "rate" => p.steps = vec![(rate(key, v)?, Duration::ZERO)],
                "steps" => {
                    p.steps = v
                        .split('+')
                        .map(|step| {
                            let (r, d) = step.split_once('/').ok_or(ProfileError::Bad(
                                key.to_owned(),
                                "steps like 2000kbit/20s+500kbit/20s",
                            ))?;
                            Ok((rate(key, r)?, duration(key, d)?))
                        })
                        .collect::<Result<_, ProfileError>>()?;
                }
                _ => return Err(ProfileError::Unknown(key.to_owned())),
            }
        }
        if p.jitter > p.delay {
            return Err(ProfileError::Bad("jitter".into(), "at most the delay"));
        }
        Ok(p)
    }

    /// The link rate `elapsed` after the path was made (`None`: unlimited).
    pub fn rate_at(&self, elapsed: Duration) -> Option<u64> {
        let mut t = Duration::ZERO;
        for &(r, d) in &self.steps {
            t += d;
            if elapsed < t {
                return Some(r);
            }
        }
        self.steps.last().map(|&(r, _)| r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_profile_parses_and_parameters_mean_what_they_say() {
        for (name, _) in NAMED {
            Profile::parse(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let p = Profile::parse("lossy1m").unwrap();
        assert_eq!(p.loss, 0.05);
        assert_eq!(p.delay, Duration::from_millis(60));
        assert_eq!(p.rate_at(Duration::from_secs(99)), Some(1_000_000));
        let s = Profile::parse("step").unwrap();
        assert_eq!(s.rate_at(Duration::from_secs(5)), Some(2_000_000));
        assert_eq!(s.rate_at(Duration::from_secs(25)), Some(500_000));
        assert_eq!(s.rate_at(Duration::from_secs(45)), Some(2_000_000));
        assert_eq!(
            Profile::parse("clean").unwrap().rate_at(Duration::ZERO),
            None
        );
    }

    #[test]
    fn a_bad_profile_is_refused_with_what_was_wrong() {
        assert!(matches!(
            Profile::parse("lossy"),
            Err(ProfileError::Unknown(_))
        ));
        assert!(matches!(
            Profile::parse("loss=3"),
            Err(ProfileError::Bad(..))
        ));
        assert!(matches!(
            Profile::parse("loss=300%"),
            Err(ProfileError::Bad(..))
        ));
        assert!(matches!(
            Profile::parse("rate=1kbit"),
            Err(ProfileError::Bad(..))
        ));
        assert!(matches!(
            Profile::parse("delay=10ms,jitter=20ms"),
            Err(ProfileError::Bad(..))
        ));
    }
}
