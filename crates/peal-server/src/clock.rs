//! Time as an input: the server reads the time only through [`Clock`], so tests
//! drive ring timeouts and the resume window with a [`ManualClock`] instead of sleeping.

use peal_proto::Millis;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

pub type SleepFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The server's only source of the current time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Millis;
    /// Completes once `now() >= at`.
    fn sleep_until(&self, at: Millis) -> SleepFuture;
}

/// Wall-clock time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Millis(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    fn sleep_until(&self, at: Millis) -> SleepFuture {
        let wait = at.since(self.now()).max(0) as u64;
        Box::pin(tokio::time::sleep(Duration::from_millis(wait)))
    }
}

/// A clock that moves only when told to. Sleepers wake when it passes their time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<watch::Sender<Millis>>,
}

impl ManualClock {
    pub fn new(start: Millis) -> Self {
        ManualClock {
            now: Arc::new(watch::Sender::new(start)),
        }
    }

    /// Moves the clock forward by `ms`.
    pub fn advance(&self, ms: i64) {
        self.now.send_modify(|t| *t = t.plus(ms));
    }

    pub fn set(&self, t: Millis) {
        self.now.send_replace(t);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        *self.now.borrow()
    }

    fn sleep_until(&self, at: Millis) -> SleepFuture {
        let mut rx = self.now.subscribe();
        Box::pin(async move {
            // A closed channel means the clock is gone: never wake.
            if rx.wait_for(|t| *t >= at).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

/// A shared clock.
pub type SharedClock = Arc<dyn Clock>;
