//! Password checks on a bounded pool: at most `workers` Argon2 verifications
//! run at once, each on its own long-lived thread with its own memory.
//!
//! Argon2id with the default parameters fills a 19 MiB block per check. Run
//! on tokio's blocking pool, every concurrent login allocated one, and the
//! freed blocks stayed with whichever malloc arena the thread used: 200
//! concurrent bad logins took the server to 12 GB. Here the pool's threads
//! keep their blocks and reuse them while checks keep coming, so password
//! checking costs at most `workers × 19 MiB` whatever the load, and a check
//! that cannot start within the deadline is refused ([`Busy`]) instead of
//! queueing without end. A worker with nothing to do for [`KEEP_MEMORY_FOR`]
//! gives its block back: the desktop's embedded server checks two passwords
//! at start and then held 19 MiB for good (a sixth of the idle app).
use argon2::password_hash::{PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

/// A valid Argon2 hash of a password nobody has, verified against when the
/// user does not exist, so "no such user" and "wrong password" take as long.
pub const DECOY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$X1T6nGi3CEa+Q8O/gvMbJj8mmsbpxsV2EVzd0AlASqM";

/// How long a worker keeps its Argon2 memory with no check to do. Within a
/// burst of sign-ins (a team arriving, a flood) each check reuses it instead
/// of allocating 19 MiB again; a few seconds after the last one it goes back
/// to the system. Long beside a check (~40 ms), short beside the time an
/// idle app is measured or looked at.
pub const KEEP_MEMORY_FOR: Duration = Duration::from_secs(5);

/// Largest memory cost accepted from a stored hash (KiB): a hash written
/// with more (by hand, or by a future default) is refused, not allocated.
const MAX_M_COST_KIB: u32 = 256 * 1024;

/// No worker was free within the deadline: the caller should retry later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

struct Job {
    password: String,
    work: Work,
    /// Held until the work is over, even if the request that asked is gone.
    _permit: OwnedSemaphorePermit,
}

/// What a worker does with a password.
enum Work {
    /// Checks it against a stored hash (none: the decoy).
    Verify {
        hash: Option<String>,
        done: oneshot::Sender<bool>,
    },
    /// Hashes a new password (an account made with an invite).
    Hash {
        done: oneshot::Sender<Option<String>>,
    },
}

/// The pool. Cloning shares it; it stops when the last clone is dropped.
#[derive(Clone)]
pub struct Verifier {
    permits: Arc<Semaphore>,
    jobs: crossbeam_channel::Sender<Job>,
    deadline: Duration,
    /// Bytes of Argon2 memory the workers hold now.
    held: Arc<AtomicUsize>,
}

impl Verifier {
    /// `workers` threads (at least one); a check waits at most `deadline` to
    /// start; an idle worker frees its memory after `keep_memory_for`.
    pub fn new(workers: usize, deadline: Duration, keep_memory_for: Duration) -> Verifier {
        let workers = workers.max(1);
        let (jobs, rx) = crossbeam_channel::bounded::<Job>(workers);
        let held = Arc::new(AtomicUsize::new(0));
        for i in 0..workers {
            let rx = rx.clone();
            let held = held.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("peal-argon2-{i}"))
                .spawn(move || worker(&rx, &held, keep_memory_for));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password worker");
            }
        }
        Verifier {
            permits: Arc::new(Semaphore::new(workers)),
            jobs,
            deadline,
            held,
        }
    }

    /// As many workers as the machine has cores but one (signaling keeps a
    /// core while a login flood hashes), at least one.
    pub fn for_this_machine(deadline: Duration) -> Verifier {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Verifier::new(cores.saturating_sub(1).max(1), deadline, KEEP_MEMORY_FOR)
    }

    /// Bytes of Argon2 memory the pool holds now (0 once idle for
    /// [`KEEP_MEMORY_FOR`]).
    pub fn memory_held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Whether `password` matches `hash` (with no hash: the same effort, then no).
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, Busy> {
        let (done, result) = oneshot::channel();
        self.submit(password, Work::Verify { hash, done }).await?;
        result.await.map_err(|_| Busy)
    }

    /// A new password's hash (a PHC string), made on the same bounded pool:
    /// sign-ups can't flood memory either. `Ok(None)`: hashing failed (logged).
    pub async fn hash(&self, password: String) -> Result<Option<String>, Busy> {
        let (done, result) = oneshot::channel();
        self.submit(password, Work::Hash { done }).await?;
        result.await.map_err(|_| Busy)
    }

    async fn submit(&self, password: String, work: Work) -> Result<(), Busy> {
        let permit = tokio::time::timeout(self.deadline, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| Busy)?
            .map_err(|_| Busy)?;
        // A permit means a worker is free, so this never waits.
        self.jobs
            .try_send(Job {
                password,
                work,
                _permit: permit,
            })
            .map_err(|_| Busy)
    }
}

fn worker(rx: &crossbeam_channel::Receiver<Job>, held: &AtomicUsize, keep: Duration) {
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let job = if memory.is_empty() {
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        } else {
            match rx.recv_timeout(keep) {
                Ok(job) => job,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    held.fetch_sub(std::mem::size_of_val(&memory[..]), Ordering::Relaxed);
                    memory = Vec::new();
                    // Blocks this size may have come from this thread's arena
                    // (glibc's mmap threshold rises with each freed mapping):
                    // hand them back too.
                    crate::memory::release();
                    continue;
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
            }
        };
        // The permit goes back with the job, after the work.
        match job.work {
            Work::Verify { hash, done } => {
                let before = std::mem::size_of_val(&memory[..]);
                let ok = check(&job.password, hash.as_deref(), &mut memory);
                held.fetch_add(
                    std::mem::size_of_val(&memory[..]) - before,
                    Ordering::Relaxed,
                );
                let _ = done.send(ok);
            }
            Work::Hash { done } => {
                let _ = done.send(crate::auth::hash_password(&job.password).ok());
            }
        }
    }
}

/// The check itself, in `memory` (grown once to the hash's size, then reused).
pub fn check(password: &str, hash: Option<&str>, memory: &mut Vec<Block>) -> bool {
    let (hash, real) = match hash {
        Some(h) => (h, true),
        None => (DECOY_HASH, false),
    };
    verify_in(password, hash, memory).unwrap_or(false) && real
}

fn verify_in(password: &str, hash: &str, memory: &mut Vec<Block>) -> Option<bool> {
    let parsed = PasswordHash::new(hash).ok()?;
    let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
    let version = parsed
        .version
        .map_or(Ok(Version::default()), Version::try_from)
        .ok()?;
    let params = Params::try_from(&parsed).ok()?;
    if params.m_cost() > MAX_M_COST_KIB {
        tracing::warn!(
            m_cost = params.m_cost(),
            "stored password hash asks for too much memory"
        );
        return None;
    }
    let expected = parsed.hash?;
    let salt: Salt<'_> = parsed.salt?;
    let mut salt_buf = [0u8; Salt::MAX_LENGTH];
    let salt = salt.decode_b64(&mut salt_buf).ok()?;
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut memory[..blocks])
        .ok()?;
    // `Output`'s equality is constant-time.
    let computed = argon2::password_hash::Output::new(&out).ok()?;
    Some(computed == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_only_its_password_and_the_decoy_never() {
        let h = crate::auth::hash_password("correct horse").unwrap();
        let mut memory = Vec::new();
        assert!(check("correct horse", Some(&h), &mut memory));
        assert!(!check("wrong horse", Some(&h), &mut memory));
        assert!(!check("correct horse", None, &mut memory));
        assert!(!check("x", Some("not a phc string"), &mut memory));
        // The decoy is a real hash of the default cost: same work as a real check.
        let decoy = PasswordHash::new(DECOY_HASH).unwrap();
        let real = PasswordHash::new(&h).unwrap();
        assert_eq!(
            Params::try_from(&decoy).unwrap().block_count(),
            Params::try_from(&real).unwrap().block_count()
        );
    }

    #[test]
    fn a_hash_that_asks_for_gigabytes_is_refused_not_allocated() {
        let greedy = "$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$X1T6nGi3CEa+Q8O/gvMbJj8mmsbpxsV2EVzd0AlASqM";
        let mut memory = Vec::new();
        assert!(!check("x", Some(greedy), &mut memory));
        assert!(memory.is_empty());
    }

    #[tokio::test]
    async fn with_every_worker_busy_past_the_deadline_a_check_is_refused() {
        let v = Verifier::new(1, Duration::from_millis(1), KEEP_MEMORY_FOR);
        let h = crate::auth::hash_password("pw").unwrap();
        // Hold the only permit as a running check would.
        let held = v.permits.clone().acquire_owned().await.unwrap();
        assert_eq!(v.verify("pw".into(), Some(h.clone())).await, Err(Busy));
        assert_eq!(v.hash("pw".into()).await, Err(Busy));
        drop(held);
        assert_eq!(v.verify("pw".into(), Some(h)).await, Ok(true));
        let made = v.hash("new pw".into()).await.unwrap().unwrap();
        assert_eq!(v.verify("new pw".into(), Some(made)).await, Ok(true));
    }

    #[tokio::test]
    async fn an_idle_pool_gives_its_memory_back_and_a_later_check_still_works() {
        // Long beside a stalled test thread, so "kept" can't be read late.
        let keep = Duration::from_secs(1);
        let v = Verifier::new(1, Duration::from_secs(5), keep);
        let h = crate::auth::hash_password("pw").unwrap();
        assert_eq!(v.memory_held(), 0, "nothing is held before the first check");
        assert_eq!(v.verify("pw".into(), Some(h.clone())).await, Ok(true));
        let one_check = Params::try_from(&PasswordHash::new(&h).unwrap())
            .unwrap()
            .block_count()
            * std::mem::size_of::<Block>();
        assert_eq!(
            v.memory_held(),
            one_check,
            "the block is kept for the next check"
        );
        let idle = std::time::Instant::now();
        while v.memory_held() != 0 {
            assert!(
                idle.elapsed() < Duration::from_secs(10),
                "the idle worker never freed its block"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(v.verify("pw".into(), Some(h)).await, Ok(true));
        assert_eq!(v.memory_held(), one_check);
    }
}
