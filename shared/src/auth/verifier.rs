use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};

use super::{ACCESS_TOKEN_TYPE, Claims, JwkSet};

/// Clock leeway for `exp` (and `nbf`/`iat` when present), in seconds: covers clock drift between
/// auth-service and the verifying service, and nothing more. The contract allows at most 60.
pub const LEEWAY_SECS: u64 = 30;

/// How a verifier learns the public keys.
#[derive(Clone, Debug)]
pub struct VerifierConfig {
    /// Expected `iss`.
    pub issuer: String,
    /// Expected `aud`.
    pub audience: String,
    /// URL of auth-service's JWKS.
    pub jwks_url: String,
    /// An unknown `kid` triggers at most one refetch per this interval.
    pub min_refresh_interval: Duration,
    /// Keys are also refreshed this often, so a rotation is picked up before it is used.
    pub refresh_interval: Duration,
    /// Verified tokens remembered until their `exp`, so a token is checked once, not per request.
    pub cache_capacity: u64,
}

/// Why a token was refused. The client only ever learns "401" (or 503 for
/// [`AuthError::KeysUnavailable`]); the reason goes to the debug log.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No usable header, or not a JWT at all.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// Anything but EdDSA.
    #[error("algorithm {0:?} is not accepted")]
    WrongAlgorithm(Algorithm),
    /// `typ` is not `at+jwt` (refresh tokens are not JWTs at all).
    #[error("token type is not at+jwt")]
    WrongType,
    /// No key with the header's `kid`.
    #[error("unknown key id")]
    UnknownKey,
    /// Signature, expiry, issuer, audience or claims failed.
    #[error("invalid token: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    /// The keys have not been fetched yet (auth-service not reachable since start-up).
    #[error("signing keys are not available yet")]
    KeysUnavailable,
}

/// Verifies access tokens against a cached key set.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    keys: RwLock<Arc<HashMap<String, DecodingKey>>>,
    /// Tokens that verified, with their claims, each kept until its `exp`.
    verified: moka::sync::Cache<String, Arc<Claims>>,
    validation: Validation,
    remote: Option<Remote>,
}

/// Fetches the current key set from wherever it lives.
pub type KeySource = Arc<dyn Fn() -> BoxFuture<'static, anyhow::Result<JwkSet>> + Send + Sync>;

struct Remote {
    name: String,
    fetch: KeySource,
    min_refresh_interval: Duration,
    /// Last fetch attempt; the lock also makes concurrent refetches single-flight.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

impl Verifier {
    /// A verifier that fetches the JWKS from `config.jwks_url`: in the background from start-up
    /// (retrying until auth-service answers, then every `refresh_interval`), and on an unknown
    /// `kid` at most once per `min_refresh_interval`. Never fails: until keys arrive, requests get 503.
    pub fn remote(config: VerifierConfig, http: reqwest::Client) -> Self {
        let url = config.jwks_url.clone();
        let source: KeySource = Arc::new(move || {
            let (http, url) = (http.clone(), url.clone());
            Box::pin(async move {
                let response = http
                    .get(&url)
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await?
                    .error_for_status()?;
                Ok(response.json::<JwkSet>().await?)
            })
        });
        Self::with_source(config, source)
    }

    /// A verifier whose keys come from `source`, fetched as [`Verifier::remote`] describes.
    pub fn with_source(config: VerifierConfig, source: KeySource) -> Self {
        let verifier = Self::with_parts(
            &config.issuer,
            &config.audience,
            config.cache_capacity,
            HashMap::new(),
            Some(Remote {
                name: config.jwks_url,
                fetch: source,
                min_refresh_interval: config.min_refresh_interval,
                last_fetch: tokio::sync::Mutex::new(None),
            }),
        );
        tokio::spawn(refresh_loop(
            Arc::downgrade(&verifier.inner),
            config.refresh_interval,
        ));
        verifier
    }

    /// A verifier with a fixed key set (auth-service verifies its own tokens this way).
    pub fn fixed(issuer: &str, audience: &str, jwks: &JwkSet) -> Self {
        Self::with_parts(issuer, audience, 10_000, decoding_keys(jwks), None)
    }

    fn with_parts(
        issuer: &str,
        audience: &str,
        cache_capacity: u64,
        keys: HashMap<String, DecodingKey>,
        remote: Option<Remote>,
    ) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.algorithms = vec![Algorithm::EdDSA];
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Self {
            inner: Arc::new(Inner {
                keys: RwLock::new(Arc::new(keys)),
                verified: moka::sync::Cache::builder()
                    .max_capacity(cache_capacity)
                    .expire_after(UntilExpiry)
                    .build(),
                validation,
                remote,
            }),
        }
    }

    /// Whether any key is known.
    pub fn has_keys(&self) -> bool {
        !self.current_keys().is_empty()
    }

    /// Verifies a compact JWT and returns its claims.
    pub async fn verify(&self, token: &str) -> Result<Arc<Claims>, AuthError> {
        if let Some(claims) = self.inner.verified.get(token) {
            return Ok(claims);
        }
        let header = decode_header(token).map_err(|e| AuthError::Malformed(e.to_string()))?;
        if header.alg != Algorithm::EdDSA {
            return Err(AuthError::WrongAlgorithm(header.alg));
        }
        if !header
            .typ
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case(ACCESS_TOKEN_TYPE))
        {
            return Err(AuthError::WrongType);
        }
        let kid = header
            .kid
            .ok_or_else(|| AuthError::Malformed("no kid".into()))?;
        let key = match self.current_keys().get(&kid) {
            Some(key) => key.clone(),
            None => {
                self.refresh_for_unknown_kid().await;
                let keys = self.current_keys();
                match keys.get(&kid) {
                    Some(key) => key.clone(),
                    None if keys.is_empty() => return Err(AuthError::KeysUnavailable),
                    None => return Err(AuthError::UnknownKey),
                }
            }
        };
        let data = decode::<Claims>(token, &key, &self.inner.validation)?;
        let claims = Arc::new(data.claims);
        self.inner.verified.insert(token.to_owned(), claims.clone());
        Ok(claims)
    }

    fn current_keys(&self) -> Arc<HashMap<String, DecodingKey>> {
        self.inner
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    async fn refresh_for_unknown_kid(&self) {
        let Some(remote) = &self.inner.remote else {
            return;
        };
        let mut last = remote.last_fetch.lock().await;
        if last.is_some_and(|t| t.elapsed() < remote.min_refresh_interval) {
            return;
        }
        *last = Some(Instant::now());
        fetch_into(&self.inner, remote).await;
    }
}

/// Keeps a verified token until its `exp` (without the leeway): after that it is verified again,
/// and refused once past the leeway.
struct UntilExpiry;

impl moka::Expiry<String, Arc<Claims>> for UntilExpiry {
    fn expire_after_create(
        &self,
        _token: &String,
        claims: &Arc<Claims>,
        _now: Instant,
    ) -> Option<Duration> {
        let left = claims.exp - chrono::Utc::now().timestamp();
        Some(Duration::from_secs(left.max(0) as u64))
    }
}

async fn refresh_loop(inner: Weak<Inner>, interval: Duration) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let Some(remote) = &strong.remote else {
            return;
        };
        let ok = {
            let mut last = remote.last_fetch.lock().await;
            *last = Some(Instant::now());
            fetch_into(&strong, remote).await
        };
        drop(strong);
        let wait = if ok {
            backoff = Duration::from_millis(200);
            interval
        } else {
            backoff = (backoff * 2).min(Duration::from_secs(10));
            backoff
        };
        tokio::time::sleep(wait).await;
    }
}

/// Fetches the JWKS and replaces the cached keys; keeps the old ones on any failure.
async fn fetch_into(inner: &Inner, remote: &Remote) -> bool {
    match (remote.fetch)().await {
        Ok(jwks) => {
            let keys = decoding_keys(&jwks);
            if keys.is_empty() {
                tracing::warn!(source = %remote.name, "JWKS holds no usable key");
                return false;
            }
            tracing::debug!(count = keys.len(), "JWKS refreshed");
            *inner.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
            true
        }
        Err(err) => {
            tracing::warn!(source = %remote.name, error = %format!("{err:#}"), "fetching the JWKS failed");
            false
        }
    }
}

fn decoding_keys(jwks: &JwkSet) -> HashMap<String, DecodingKey> {
    jwks.keys
        .iter()
        .filter(|k| k.kty == "OKP" && k.crv == "Ed25519")
        .filter_map(|k| {
            DecodingKey::from_ed_components(&k.x)
                .ok()
                .map(|key| (k.kid.clone(), key))
        })
        .collect()
}
