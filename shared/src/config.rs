//! Settings every service reads from the environment, with documented defaults.
//!
//! Each service has its own typed config that embeds [`CommonConfig`]; the README lists every
//! variable in one table.

use std::time::Duration;

use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Whether development defaults are allowed.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum AppEnv {
    /// Local runs and tests: development defaults are used, and logged as such.
    #[default]
    Development,
    /// Refuses to start with development defaults.
    Production,
}

/// Log line format.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Settings shared by all services (unprefixed environment variables).
#[derive(Clone, Debug, Deserialize)]
pub struct CommonConfig {
    /// `APP_ENV`: `development` (default) or `production`.
    #[serde(default)]
    pub app_env: AppEnv,
    /// `LOG_FORMAT`: `text` (default) or `json`.
    #[serde(default)]
    pub log_format: LogFormat,
    /// `MONGODB_URI`, default `mongodb://localhost:27017`.
    #[serde(default = "default_mongodb_uri")]
    pub mongodb_uri: SecretString,
    /// `MONGODB_MAX_POOL_SIZE`, default 50.
    #[serde(default = "default_max_pool")]
    pub mongodb_max_pool_size: u32,
    /// `MONGODB_MIN_POOL_SIZE`, default 0.
    #[serde(default)]
    pub mongodb_min_pool_size: u32,
    /// `MONGODB_TIMEOUT_MS`: server selection and connect timeout, default 3000, so a request
    /// fails fast with 503 while the database is down instead of hanging.
    #[serde(default = "default_mongodb_timeout_ms")]
    pub mongodb_timeout_ms: u64,
    /// `REQUEST_TIMEOUT_MS`: the longest a request may take before it is answered 503, default 10000.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// `BODY_LIMIT_BYTES`: the largest request body accepted, default 65536 (64 KiB).
    #[serde(default = "default_body_limit")]
    pub body_limit_bytes: usize,
    /// `SHUTDOWN_TIMEOUT_SECS`: how long in-flight requests may finish after SIGTERM, default 20.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout_secs: u64,
    /// `CORS_ORIGINS`: comma-separated allowed origins; CORS is off when empty (default).
    #[serde(default, deserialize_with = "comma_separated")]
    pub cors_origins: Vec<String>,
    /// `TRUSTED_PROXIES`: comma-separated IPs or CIDRs whose `X-Forwarded-For` is believed.
    /// Default: none.
    #[serde(default, deserialize_with = "comma_separated_nets")]
    pub trusted_proxies: Vec<IpNet>,
    /// `JWT_ISSUER`: the `iss` of access tokens, default `http://localhost:8000`.
    #[serde(default = "default_issuer")]
    pub jwt_issuer: String,
    /// `JWT_AUDIENCE`: the `aud` of access tokens, default `shop`.
    #[serde(default = "default_audience")]
    pub jwt_audience: String,
    /// `JWKS_URL`: where product- and order-service fetch the public keys, default
    /// `http://localhost:8000/.well-known/jwks.json`.
    #[serde(default = "default_jwks_url")]
    pub jwks_url: String,
    /// `JWKS_MIN_REFRESH_SECS`: an unknown `kid` refetches the keys at most this often, default 30.
    #[serde(default = "default_jwks_min_refresh")]
    pub jwks_min_refresh_secs: u64,
    /// `JWKS_REFRESH_SECS`: the keys are refetched this often anyway, default 300.
    #[serde(default = "default_jwks_refresh")]
    pub jwks_refresh_secs: u64,
    /// `JWT_CACHE_CAPACITY`: verified tokens remembered until they expire, default 10000.
    #[serde(default = "default_jwt_cache")]
    pub jwt_cache_capacity: u64,
}

impl Default for CommonConfig {
    fn default() -> Self {
        from_pairs(std::iter::empty())
    }
}

impl CommonConfig {
    /// Reads the unprefixed variables.
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(envy::from_env()?)
    }

    /// The MongoDB URI.
    pub fn mongodb_uri(&self) -> &str {
        self.mongodb_uri.expose_secret()
    }

    /// The request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// How this service verifies access tokens.
    pub fn verifier_config(&self) -> crate::auth::VerifierConfig {
        crate::auth::VerifierConfig {
            issuer: self.jwt_issuer.clone(),
            audience: self.jwt_audience.clone(),
            jwks_url: self.jwks_url.clone(),
            min_refresh_interval: Duration::from_secs(self.jwks_min_refresh_secs),
            refresh_interval: Duration::from_secs(self.jwks_refresh_secs.max(1)),
            cache_capacity: self.jwt_cache_capacity,
        }
    }

    /// The graceful shutdown bound.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }
}

/// Deserializes a config from `(NAME, value)` pairs, taking every default; a config struct whose
/// fields all have defaults cannot fail here.
pub fn from_pairs<T: serde::de::DeserializeOwned>(
    pairs: impl IntoIterator<Item = (String, String)>,
) -> T {
    envy::from_iter(pairs).expect("every field has a default")
}

fn default_mongodb_uri() -> SecretString {
    SecretString::from("mongodb://localhost:27017")
}
fn default_max_pool() -> u32 {
    50
}
fn default_mongodb_timeout_ms() -> u64 {
    3_000
}
fn default_request_timeout_ms() -> u64 {
    10_000
}
fn default_body_limit() -> usize {
    64 * 1024
}
fn default_shutdown_timeout() -> u64 {
    20
}
fn default_issuer() -> String {
    "http://localhost:8000".to_owned()
}
fn default_audience() -> String {
    "shop".to_owned()
}
fn default_jwks_url() -> String {
    "http://localhost:8000/.well-known/jwks.json".to_owned()
}
fn default_jwks_min_refresh() -> u64 {
    30
}
fn default_jwks_refresh() -> u64 {
    300
}
fn default_jwt_cache() -> u64 {
    10_000
}

/// Deserializes `a,b,c` into a list, ignoring empty entries.
pub fn comma_separated<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let raw = String::deserialize(d)?;
    Ok(raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect())
}

fn comma_separated_nets<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    comma_separated(d)?
        .into_iter()
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| serde::de::Error::custom(format!("not an IP address or CIDR: {s}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_and_lists_parse() {
        let c: CommonConfig = from_pairs([
            (
                "TRUSTED_PROXIES".to_owned(),
                "10.0.0.0/8, 127.0.0.1".to_owned(),
            ),
            ("LOG_FORMAT".to_owned(), "json".to_owned()),
        ]);
        assert_eq!(c.trusted_proxies.len(), 2);
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.body_limit_bytes, 65536);
        assert_eq!(c.mongodb_uri(), "mongodb://localhost:27017");
    }
}
