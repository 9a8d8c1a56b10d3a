//! Rate limits: new calls per user, requests per device, logins per user.
//! Token buckets from `peal_proto::limits`, keyed, with time as an input.

use peal_proto::limits::TokenBucket;
use peal_proto::{DeviceId, Millis, UserId};
use std::collections::HashMap;
use std::hash::Hash;
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
}

/// The server's limits.
pub struct Limits {
    calls: Keyed<UserId>,
    requests: Keyed<DeviceId>,
    logins: Keyed<UserId>,
}

impl Limits {
    pub fn new(calls_per_minute: u32, requests_per_second: u32) -> Self {
        Limits {
            calls: Keyed::new(calls_per_minute, 60_000),
            requests: Keyed::new(requests_per_second, 1_000),
            logins: Keyed::new(20, 60_000),
        }
    }

    pub fn allow_call(&self, user: &UserId, now: Millis) -> bool {
        self.calls.allow(user, now)
    }

    pub fn allow_request(&self, device: &DeviceId, now: Millis) -> bool {
        self.requests.allow(device, now)
    }

    pub fn allow_login(&self, user: &UserId, now: Millis) -> bool {
        self.logins.allow(user, now)
    }
}
