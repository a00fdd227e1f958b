//! auth-service settings: the common ones plus `AUTH_*` variables.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use shared::config::{AppEnv, CommonConfig, from_pairs};

use crate::password::HashPriority;

/// The client secret used when no client is configured: for local runs only.
pub const DEV_CLIENT_SECRET: &str = "dev-order-service-secret";

/// Complete configuration.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Unprefixed settings.
    pub common: CommonConfig,
    /// `AUTH_*` settings.
    pub auth: AuthSettings,
}

impl Config {
    /// Reads the environment.
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            common: CommonConfig::from_env()?,
            auth: envy::prefixed("AUTH_").from_env()?,
        })
    }
}

/// `AUTH_*` variables.
#[derive(Clone, Debug, Deserialize)]
pub struct AuthSettings {
    /// `AUTH_HOST`, default `0.0.0.0`.
    #[serde(default = "default_host")]
    pub host: String,
    /// `AUTH_PORT`, default 8000 (0 picks a free port).
    #[serde(default = "default_port")]
    pub port: u16,
    /// `AUTH_DB_NAME`, default `auth`.
    #[serde(default = "default_db")]
    pub db_name: String,
    /// `AUTH_ACCESS_TOKEN_TTL_SECS`, default 900 (15 minutes).
    #[serde(default = "default_access_ttl")]
    pub access_token_ttl_secs: u64,
    /// `AUTH_REFRESH_TOKEN_TTL_SECS`, default 2592000 (30 days).
    #[serde(default = "default_refresh_ttl")]
    pub refresh_token_ttl_secs: u64,
    /// `AUTH_SIGNING_KEY_FILE`: an Ed25519 private key (PKCS#8 PEM). Unset: a key is generated
    /// once and kept in the database, shared by every replica.
    #[serde(default)]
    pub signing_key_file: Option<PathBuf>,
    /// `AUTH_ADMIN_USERNAME`: an admin created (or promoted) at start-up.
    #[serde(default)]
    pub admin_username: Option<String>,
    /// `AUTH_ADMIN_PASSWORD`: the admin's password, used only when the admin is first created.
    #[serde(default)]
    pub admin_password: Option<SecretString>,
    /// `AUTH_CLIENTS`: service clients, `id:secret:scope scope,...` (a secret holds no `:` or `,`).
    /// Unset in development: `order-service` with a development secret, logged as such.
    #[serde(default)]
    pub clients: Option<SecretString>,
    /// `AUTH_HASH_CONCURRENCY`: password hashes computed at once, default the number of cores.
    #[serde(default = "default_hash_concurrency")]
    pub hash_concurrency: usize,
    /// `AUTH_HASH_IDLE`: whether the hashing threads run under the idle scheduling policy
    /// (Linux `SCHED_IDLE`), default true: they then get a core only when no other thread of
    /// their CPU group (the container, or the host when services share one) wants it, and a
    /// woken request handler preempts them at once. A login flood then costs the requests
    /// served next to it almost nothing; when those keep every core busy, logins slow to a
    /// trickle and the queue (`AUTH_HASH_QUEUE`) answers 503. False: `AUTH_HASH_NICE` applies.
    #[serde(default = "default_true")]
    pub hash_idle: bool,
    /// `AUTH_HASH_NICE`: with `AUTH_HASH_IDLE=false`, how many nice values the hashing threads
    /// run below the rest of the process (at most 19 in all), 0 to 19, default 10. Above 0,
    /// hashing yields part of the CPU to request handling (here and in any process on the same
    /// host), but a running hash still finishes its time slice before a woken request runs.
    #[serde(default = "default_hash_nice")]
    pub hash_nice: u8,
    /// `AUTH_HASH_QUEUE`: password hashes that may wait for a free slot, default 64; beyond
    /// that, `/token` and `/register` answer 503 at once rather than queue without bound.
    #[serde(default = "default_hash_queue")]
    pub hash_queue: usize,
    /// `AUTH_LOGIN_MAX_FAILURES`: failed logins per username and window before 429, default 5.
    #[serde(default = "default_max_failures")]
    pub login_max_failures: u32,
    /// `AUTH_LOGIN_SLOW_AFTER`: failures after which answers are slowed down, default 3.
    #[serde(default = "default_slow_after")]
    pub login_slow_after: u32,
    /// `AUTH_LOGIN_WINDOW_SECS`: length of the failure window, default 900.
    #[serde(default = "default_window")]
    pub login_window_secs: u64,
    /// `AUTH_RATE_LIMIT_PER_MINUTE`: `/token` and `/register` requests per client address and
    /// minute, default 120.
    #[serde(default = "default_rate")]
    pub rate_limit_per_minute: u32,
    /// `AUTH_RATE_LIMIT_BURST`: burst of the per-address limit, default 30.
    #[serde(default = "default_burst")]
    pub rate_limit_burst: u32,
}

impl Default for AuthSettings {
    fn default() -> Self {
        from_pairs(std::iter::empty())
    }
}

impl AuthSettings {
    /// The address to bind.
    pub fn bind_addr(&self) -> anyhow::Result<SocketAddr> {
        format!("{}:{}", self.host, self.port)
            .parse()
            .with_context(|| format!("AUTH_HOST/AUTH_PORT: {}:{}", self.host, self.port))
    }

    /// Access token lifetime.
    pub fn access_ttl(&self) -> Duration {
        Duration::from_secs(self.access_token_ttl_secs)
    }

    /// The CPU priority of the hashing threads.
    pub fn hash_priority(&self) -> HashPriority {
        if self.hash_idle {
            HashPriority::Idle
        } else {
            HashPriority::Nice(self.hash_nice)
        }
    }
}

/// A service client allowed the client-credentials grant.
#[derive(Clone, Debug)]
pub struct ServiceClientConfig {
    /// Client id.
    pub id: String,
    /// Client secret.
    pub secret: SecretString,
    /// Scopes it may ask for.
    pub scopes: Vec<String>,
}

/// Parses `AUTH_CLIENTS`, falling back to the development client outside production.
pub fn service_clients(config: &Config) -> anyhow::Result<Vec<ServiceClientConfig>> {
    let Some(raw) = &config.auth.clients else {
        if config.common.app_env == AppEnv::Production {
            bail!("AUTH_CLIENTS must be set when APP_ENV=production");
        }
        tracing::warn!(
            client_id = "order-service",
            "AUTH_CLIENTS is not set: using the development client secret; never do this in production"
        );
        return Ok(vec![ServiceClientConfig {
            id: "order-service".into(),
            secret: SecretString::from(DEV_CLIENT_SECRET),
            scopes: vec!["stock:reserve".into()],
        }]);
    };
    let clients = raw
        .expose_secret()
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let mut parts = entry.splitn(3, ':');
            let (Some(id), Some(secret), scopes) = (parts.next(), parts.next(), parts.next())
            else {
                bail!("AUTH_CLIENTS entries look like id:secret:scopes");
            };
            if id.is_empty() || secret.len() < 16 {
                bail!(
                    "AUTH_CLIENTS: client {id:?} needs an id and a secret of at least 16 characters"
                );
            }
            if config.common.app_env == AppEnv::Production && secret == DEV_CLIENT_SECRET {
                bail!("AUTH_CLIENTS: the development secret is refused when APP_ENV=production");
            }
            Ok(ServiceClientConfig {
                id: id.to_owned(),
                secret: SecretString::from(secret.to_owned()),
                scopes: scopes
                    .unwrap_or_default()
                    .split_ascii_whitespace()
                    .map(str::to_owned)
                    .collect(),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(clients)
}

fn default_host() -> String {
    "0.0.0.0".into()
}
fn default_port() -> u16 {
    8000
}
fn default_db() -> String {
    "auth".into()
}
fn default_access_ttl() -> u64 {
    900
}
fn default_refresh_ttl() -> u64 {
    30 * 24 * 3600
}
fn default_hash_concurrency() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}
fn default_true() -> bool {
    true
}
fn default_hash_nice() -> u8 {
    10
}
fn default_hash_queue() -> usize {
    64
}
fn default_max_failures() -> u32 {
    5
}
fn default_slow_after() -> u32 {
    3
}
fn default_window() -> u64 {
    900
}
fn default_rate() -> u32 {
    120
}
fn default_burst() -> u32 {
    30
}
