//! Rate limits: new calls per user, requests per device, logins per user and
//! per source address. Token buckets from `peal_proto::limits`, keyed, with
//! time as an input. Why each exists is in ARCHITECTURE.md ("Limits").

use peal_proto::limits::TokenBucket;
use peal_proto::{DeviceId, Millis, UserId};
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;

/// Buckets per key; idle (full) buckets are forgotten now and then.
struct Keyed<K> {
    capacity: u32,
    period_ms: i64,
    buckets: Mutex<HashMap<K, TokenBucket>>,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    fn new(capacity: u32, period_ms: i64) -> Self {
        Keyed {
            capacity,
            period_ms,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn allow(&self, key: &K, now: Millis) -> bool {
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, b| !b.is_full_at(now));
        }
        let (capacity, period) = (self.capacity, self.period_ms);
        map.entry(key.clone())
            .or_insert_with(|| TokenBucket::new(capacity, period, now))
            .try_take(now)
    }

    /// Seconds until a refused key has a token again (one refill), at least 1.
    fn retry_secs(&self) -> u32 {
        let per_token_ms = self.period_ms / i64::from(self.capacity.max(1));
        u32::try_from((per_token_ms + 999) / 1000)
            .unwrap_or(u32::MAX)
            .max(1)
    }
}

/// Sign-in attempts a minute for one user id (guessing one password).
pub const LOGINS_PER_USER_PER_MINUTE: u32 = 20;
/// Sign-in attempts a minute from one source address (trying many user ids).
pub const LOGINS_PER_ADDRESS_PER_MINUTE: u32 = 30;

/// The server's limits.
pub struct Limits {
    calls: Keyed<UserId>,
    requests: Keyed<DeviceId>,
    logins: Keyed<UserId>,
    logins_from: Keyed<IpAddr>,
}

/// Which login limit refused, and when to try again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginRefused {
    User { retry_secs: u32 },
    Address { retry_secs: u32 },
}

impl Limits {
    pub fn new(calls_per_minute: u32, requests_per_second: u32) -> Self {
        Limits::with_logins(
            calls_per_minute,
            requests_per_second,
            LOGINS_PER_USER_PER_MINUTE,
            LOGINS_PER_ADDRESS_PER_MINUTE,
        )
    }

    /// [`Limits::new`] with other sign-in limits: per user, and per source
    /// address (a server behind a proxy sees every client at the proxy's
    /// address).
    pub fn with_logins(
        calls_per_minute: u32,
        requests_per_second: u32,
        logins_per_user_per_minute: u32,
        logins_per_address_per_minute: u32,
    ) -> Self {
        Limits {
            calls: Keyed::new(calls_per_minute, 60_000),
            requests: Keyed::new(requests_per_second, 1_000),
            logins: Keyed::new(logins_per_user_per_minute, 60_000),
            logins_from: Keyed::new(logins_per_address_per_minute, 60_000),
        }
    }

    pub fn allow_call(&self, user: &UserId, now: Millis) -> bool {
        self.calls.allow(user, now)
    }

    pub fn allow_request(&self, device: &DeviceId, now: Millis) -> bool {
        self.requests.allow(device, now)
    }

    /// A sign-in attempt for `user` from `from`: the address is charged
    /// first, so a flood of made-up user ids stops at its address.
    /// One more sign-in-like request from `from` (an invite check), against
    /// the per-address sign-in limit.
    pub fn allow_login_from(&self, from: IpAddr, now: Millis) -> bool {
        self.logins_from.allow(&from, now)
    }

    pub fn allow_login(
        &self,
        user: &UserId,
        from: IpAddr,
        now: Millis,
    ) -> Result<(), LoginRefused> {
        if !self.logins_from.allow(&from, now) {
            return Err(LoginRefused::Address {
                retry_secs: self.logins_from.retry_secs(),
            });
        }
        if !self.logins.allow(user, now) {
            return Err(LoginRefused::User {
                retry_secs: self.logins.retry_secs(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_user_ids_from_one_address_stop_at_the_address_limit() {
        let l = Limits::new(60, 100);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let t = Millis(1_000);
        for i in 0..LOGINS_PER_ADDRESS_PER_MINUTE {
            assert_eq!(l.allow_login(&UserId(format!("u{i}")), a, t), Ok(()));
        }
        assert_eq!(
            l.allow_login(&UserId::from("fresh"), a, t),
            Err(LoginRefused::Address { retry_secs: 2 })
        );
        // Another address is not held back; a minute later this one isn't either.
        assert_eq!(l.allow_login(&UserId::from("fresh"), b, t), Ok(()));
        assert_eq!(l.allow_login(&UserId::from("x"), a, t.plus(60_000)), Ok(()));
    }

    #[test]
    fn one_user_id_from_many_addresses_stops_at_the_user_limit() {
        let l = Limits::new(60, 100);
        let t = Millis(1_000);
        let uid = UserId::from("alice");
        for i in 0..LOGINS_PER_USER_PER_MINUTE {
            let from = IpAddr::from([198, 51, 100, i as u8]);
            assert_eq!(l.allow_login(&uid, from, t), Ok(()));
        }
        assert_eq!(
            l.allow_login(&uid, IpAddr::from([203, 0, 113, 1]), t),
            Err(LoginRefused::User { retry_secs: 3 })
        );
    }
}
