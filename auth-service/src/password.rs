//! Password hashing: argon2id off the async runtime, behind a concurrency limit.

use std::sync::Arc;

use anyhow::Context;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

/// argon2id parameters: m = 19456 KiB, t = 2, p = 1 (OWASP's minimum recommendation).
const M_COST_KIB: u32 = 19_456;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

fn argon2() -> Argon2<'static> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes and verifies passwords without starving the async runtime: at most `concurrency`
/// hashes run at once, each on the blocking pool, so a login flood queues instead of taking
/// every worker thread.
#[derive(Clone)]
pub struct PasswordHasherPool {
    permits: Arc<Semaphore>,
    /// Hashes running or queued; past this bound, requests are shed at once.
    admitted: Arc<Semaphore>,
    dummy_hash: Arc<str>,
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

impl PasswordHasherPool {
    /// Builds the pool and the dummy hash verified for unknown users: at most `concurrency`
    /// hashes run at once and at most `queue` more wait.
    pub async fn new(concurrency: usize, queue: usize) -> anyhow::Result<Self> {
        let concurrency = concurrency.max(1);
        let pool = Self {
            permits: Arc::new(Semaphore::new(concurrency)),
            admitted: Arc::new(Semaphore::new(concurrency + queue)),
            dummy_hash: Arc::from(""),
        };
        let dummy = pool
            .hash(SecretString::from("dummy password for unknown users"))
            .await?;
        Ok(Self {
            dummy_hash: Arc::from(dummy),
            ..pool
        })
    }

    /// An argon2id PHC string of `password` with a random salt.
    pub async fn hash(&self, password: SecretString) -> Result<String, HashError> {
        let _admitted = self.admitted.try_acquire().map_err(|_| HashError::Busy)?;
        let _permit = self.permits.acquire().await.context("hasher closed")?;
        let hashed = tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut rand::rngs::OsRng);
            argon2()
                .hash_password(password.expose_secret().as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
        })
        .await
        .context("hashing task")??;
        Ok(hashed)
    }

    /// Whether `password` matches `hash`; with no hash (unknown user) a dummy hash is verified
    /// so that both cases take the same time, and the answer is always false.
    pub async fn verify(
        &self,
        password: SecretString,
        hash: Option<String>,
    ) -> Result<bool, HashError> {
        let _admitted = self.admitted.try_acquire().map_err(|_| HashError::Busy)?;
        let _permit = self.permits.acquire().await.context("hasher closed")?;
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.to_string());
        let matches = tokio::task::spawn_blocking(move || {
            let parsed =
                PasswordHash::new(&hash).map_err(|e| anyhow::anyhow!("bad stored hash: {e}"))?;
            Ok::<_, anyhow::Error>(
                argon2()
                    .verify_password(password.expose_secret().as_bytes(), &parsed)
                    .is_ok(),
            )
        })
        .await
        .context("verification task")??;
        Ok(known && matches)
    }
}
