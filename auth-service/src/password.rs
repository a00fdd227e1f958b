//! Password hashing: argon2id on a few dedicated threads, with a bounded queue in front.
//!
//! Each hash needs 19 MiB of working memory. Every hashing thread keeps one such buffer and
//! reuses it for every hash, instead of allocating it anew each time (which fragments the heap
//! and leaves hundreds of MiB resident under a login flood): memory stays at one buffer per
//! hashing thread, allocated on first use. The threads are dedicated, so a login flood never
//! takes the async workers, and they run at a lower CPU priority (the idle scheduling policy by
//! default, else a positive nice value), so that when the cores are all busy, serving requests
//! comes before hashing: a login flood slows logins down, not the reads and orders served next
//! to it.

use std::cell::RefCell;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use anyhow::{Context, anyhow};
use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tokio::sync::{Semaphore, oneshot};

/// argon2id parameters: m = 19456 KiB, t = 2, p = 1 (OWASP's minimum recommendation).
const M_COST_KIB: u32 = 19_456;
const T_COST: u32 = 2;
const P_COST: u32 = 1;
/// Hash output length in bytes.
const OUTPUT_LEN: usize = 32;

/// An argon2id hash, with the parameters above, of a random password nobody knows: verified for
/// unknown users so that they take as long as known ones.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$lSzectRkSXd+IjAXmrNr+w$icUx4GfAG07Jf4iM/QAZPH0p21V3Xept57DjaCUElWI";

thread_local! {
    /// The hashing thread's working memory, reused by every hash it computes.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// argon2id of `password` and `salt` with `params` into `out`, in this thread's buffer.
fn argon2id(params: Params, password: &[u8], salt: &[u8], out: &mut [u8]) -> anyhow::Result<()> {
    MEMORY.with(|memory| {
        let mut blocks = memory.borrow_mut();
        let count = params.block_count();
        if blocks.len() != count {
            *blocks = vec![Block::default(); count];
        }
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into_with_memory(password, salt, out, &mut blocks[..])
            .map_err(|e| anyhow!("argon2: {e}"))
    })
}

/// A PHC string `$argon2id$v=19$m=..,t=..,p=..$salt$hash` of `password` with a random salt.
fn hash_now(password: &[u8]) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let params = Params::new(M_COST_KIB, T_COST, P_COST, Some(OUTPUT_LEN))
        .map_err(|e| anyhow!("argon2 parameters: {e}"))?;
    let mut out = [0u8; OUTPUT_LEN];
    argon2id(params, password, &salt, &mut out)?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow!("salt: {e}"))?;
    Ok(format!(
        "$argon2id$v=19$m={M_COST_KIB},t={T_COST},p={P_COST}${}${}",
        salt.as_str(),
        STANDARD_NO_PAD.encode(out)
    ))
}

/// Whether `password` matches the PHC string `stored` (argon2id, any parameters).
fn verify_now(password: &[u8], stored: &str) -> anyhow::Result<bool> {
    let parsed = PasswordHash::new(stored).map_err(|e| anyhow!("stored hash: {e}"))?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(anyhow!("stored hash is not argon2id"));
    }
    let params = Params::try_from(&parsed).map_err(|e| anyhow!("stored parameters: {e}"))?;
    let salt = parsed.salt.context("stored hash has no salt")?;
    let mut salt_buf = [0u8; 64];
    let salt = salt
        .decode_b64(&mut salt_buf)
        .map_err(|e| anyhow!("stored salt: {e}"))?;
    let expected = parsed.hash.context("stored hash has no output")?;
    let mut out = vec![0u8; expected.len()];
    argon2id(params, password, salt, &mut out)?;
    Ok(bool::from(out.ct_eq(expected.as_bytes())))
}

type Job = Box<dyn FnOnce() + Send>;

/// Hashes and verifies passwords on `concurrency` dedicated threads; at most `queue` more
/// requests wait, and the rest are refused at once ([`HashError::Busy`]).
#[derive(Clone)]
pub struct PasswordHasherPool {
    jobs: SyncSender<Job>,
    /// Hashes running or queued; past this bound, requests are shed at once.
    admitted: Arc<Semaphore>,
}

/// Why hashing did not happen.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Too many hashes are running or queued: answered 503 at once instead of queueing longer.
    #[error("too many password hashes in progress")]
    Busy,
    /// The hash itself failed.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<HashError> for shared::ApiError {
    fn from(err: HashError) -> Self {
        match err {
            HashError::Busy => {
                shared::Problem::unavailable(1, "too many sign-ins at once; retry shortly").into()
            }
            HashError::Failed(e) => shared::ApiError::Internal(e),
        }
    }
}

/// The CPU priority of the hashing threads, below that of the rest of the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashPriority {
    /// The idle scheduling policy (`SCHED_IDLE`): a thread that wants the core preempts a hash
    /// at once, and hashing gets only what the other threads leave.
    Idle,
    /// Normal scheduling, this many nice values below the process (0 to 19).
    Nice(u8),
}

impl PasswordHasherPool {
    /// Starts `concurrency` hashing threads at `priority`.
    pub fn new(concurrency: usize, queue: usize, priority: HashPriority) -> anyhow::Result<Self> {
        let concurrency = concurrency.max(1);
        let (jobs, receiver) = sync_channel::<Job>(concurrency + queue);
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..concurrency {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    lower_priority(priority);
                    work(&receiver)
                })
                .context("starting a hashing thread")?;
        }
        Ok(Self {
            jobs,
            admitted: Arc::new(Semaphore::new(concurrency + queue)),
        })
    }

    /// Runs `f` on a hashing thread, unless too many are already waiting.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T, HashError> {
        let _admitted = self.admitted.try_acquire().map_err(|_| HashError::Busy)?;
        let (done, result) = oneshot::channel();
        self.jobs
            .try_send(Box::new(move || {
                let _ = done.send(f());
            }))
            .map_err(|_| HashError::Busy)?;
        Ok(result.await.context("hashing thread gone")??)
    }

    /// An argon2id PHC string of `password` with a random salt.
    pub async fn hash(&self, password: SecretString) -> Result<String, HashError> {
        self.run(move || hash_now(password.expose_secret().as_bytes()))
            .await
    }

    /// Whether `password` matches `hash`; with no hash (unknown user) a dummy hash is verified
    /// so that both cases take the same time, and the answer is always false.
    pub async fn verify(
        &self,
        password: SecretString,
        hash: Option<String>,
    ) -> Result<bool, HashError> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| DUMMY_HASH.to_owned());
        let matches = self
            .run(move || verify_now(password.expose_secret().as_bytes(), &hash))
            .await?;
        Ok(known && matches)
    }
}

/// Lowers the calling thread's CPU priority (on Linux both the policy and the nice value are
/// per-thread attributes). Neither needs a privilege; should it fail anyway, hashing goes on
/// at normal priority.
fn lower_priority(priority: HashPriority) {
    let lowered = match priority {
        HashPriority::Idle => schedule_idle(),
        HashPriority::Nice(steps) => lower_nice(i32::from(steps.min(19))),
    };
    if let Err(e) = lowered {
        tracing::warn!(error = %e, "could not lower the priority of a hashing thread");
    }
}

/// Moves the calling thread to the idle scheduling policy.
fn schedule_idle() -> anyhow::Result<()> {
    use thread_priority::unix::{
        NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
        thread_native_id, thread_schedule_policy,
    };
    let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
    // Besides the policy, this sets the nice value to 0, which fails in a process started with
    // a positive one; the nice value does not matter under the idle policy, so only the policy
    // is checked.
    let _ = set_thread_priority_and_policy(
        thread_native_id(),
        thread_priority::ThreadPriority::Min,
        idle,
    );
    match thread_schedule_policy() {
        Ok(policy) if policy == idle => Ok(()),
        Ok(policy) => Err(anyhow!("the policy stayed {policy:?}")),
        Err(e) => Err(anyhow!("reading the policy: {e:?}")),
    }
}

/// Raises the calling thread's nice value by `steps`, at most to 19.
fn lower_nice(steps: i32) -> anyhow::Result<()> {
    use rustix::process::{getpriority_process, setpriority_process};
    if steps <= 0 {
        return Ok(());
    }
    getpriority_process(None)
        .and_then(|current| setpriority_process(None, (current + steps).min(19)))
        .context("setting the nice value")
}

/// A hashing thread: runs jobs until the pool is dropped.
fn work(receiver: &Mutex<Receiver<Job>>) {
    loop {
        let job = match receiver.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::PasswordVerifier;

    use super::*;

    #[test]
    fn hashes_are_standard_argon2id_phc_strings() {
        let hash = hash_now(b"correct horse").unwrap();
        let parsed = PasswordHash::new(&hash).unwrap();
        let params = Params::try_from(&parsed).unwrap();
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (19_456, 2, 1)
        );
        // The argon2 crate's own verifier agrees with ours.
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(verify_now(b"correct horse", &hash).unwrap());
        assert!(!verify_now(b"wrong horse", &hash).unwrap());
        // A hash made by another implementation (argon2-cffi) verifies too.
        assert!(!verify_now(b"anything", DUMMY_HASH).unwrap());
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }

    #[tokio::test]
    async fn hashing_threads_run_under_the_idle_policy_by_default() {
        use thread_priority::unix::{
            NormalThreadSchedulePolicy, ThreadSchedulePolicy, thread_schedule_policy,
        };
        let normal = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other);
        let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
        assert_eq!(thread_schedule_policy().unwrap(), normal);
        let priority = crate::config::AuthSettings::default().hash_priority();
        let pool = PasswordHasherPool::new(1, 1, priority).unwrap();
        let on_hashing_thread = pool
            .run(|| thread_schedule_policy().map_err(|e| anyhow!("{e:?}")))
            .await
            .unwrap();
        assert_eq!(on_hashing_thread, idle);
        // Only the hashing thread changed.
        assert_eq!(thread_schedule_policy().unwrap(), normal);
    }

    #[tokio::test]
    async fn hashing_threads_run_at_the_configured_nice_value() {
        let before = rustix::process::getpriority_process(None).unwrap();
        let pool = PasswordHasherPool::new(1, 1, HashPriority::Nice(7)).unwrap();
        let on_hashing_thread = pool
            .run(|| Ok(rustix::process::getpriority_process(None)?))
            .await
            .unwrap();
        assert_eq!(on_hashing_thread, (before + 7).min(19));
        // Only the hashing thread changed.
        assert_eq!(rustix::process::getpriority_process(None).unwrap(), before);
    }
}
