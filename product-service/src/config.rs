//! product-service settings: the common ones plus `PRODUCT_*` variables.

use std::net::SocketAddr;

use anyhow::Context;
use serde::Deserialize;
use shared::config::{CommonConfig, from_pairs};

/// Complete configuration.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Unprefixed settings.
    pub common: CommonConfig,
    /// `PRODUCT_*` settings.
    pub service: ProductSettings,
}

impl Config {
    /// Reads the environment.
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            common: CommonConfig::from_env()?,
            service: envy::prefixed("PRODUCT_").from_env()?,
        })
    }
}

/// `PRODUCT_*` variables.
#[derive(Clone, Debug, Deserialize)]
pub struct ProductSettings {
    /// `PRODUCT_HOST`, default `0.0.0.0`.
    #[serde(default = "default_host")]
    pub host: String,
    /// `PRODUCT_PORT`, default 8001 (0 picks a free port).
    #[serde(default = "default_port")]
    pub port: u16,
    /// `PRODUCT_DB_NAME`, default `products`.
    #[serde(default = "default_db")]
    pub db_name: String,
    /// `PRODUCT_CURRENCY`: the one currency of this deployment, default `USD`.
    #[serde(default = "default_currency")]
    pub currency: String,
    /// `PRODUCT_TXN_RETRY_BUDGET_MS`: how long a reservation or release keeps retrying write
    /// conflicts before answering 503, default 5000.
    #[serde(default = "default_retry_budget")]
    pub txn_retry_budget_ms: u64,
    /// `PRODUCT_CACHE_TTL_MS`: how long `GET /products/{id}` may serve a cached product, default
    /// 1000, capped at 1000; 0 turns the cache off.
    #[serde(default = "default_cache_ttl")]
    pub cache_ttl_ms: u64,
    /// `PRODUCT_CACHE_CAPACITY`: products kept in the cache, default 10000.
    #[serde(default = "default_cache_capacity")]
    pub cache_capacity: u64,
    /// `PRODUCT_CACHE_FOLLOW_CHANGES`: follow the products collection's change stream, so that
    /// writes through other replicas invalidate cached entries at once and entries may live up
    /// to `PRODUCT_CACHE_MAX_AGE_MS` while the stream keeps up; default true.
    #[serde(default = "default_true")]
    pub cache_follow_changes: bool,
    /// `PRODUCT_CACHE_MAX_AGE_MS`: the longest a cached entry lives while the change stream
    /// vouches for it, default 30000.
    #[serde(default = "default_cache_max_age")]
    pub cache_max_age_ms: u64,
    /// `PRODUCT_CACHE_POLL_MS`: the longest one poll of the change stream waits for news,
    /// default 100; the stream vouches for entries up to the start of its latest empty poll, so
    /// keep it well under `PRODUCT_CACHE_TTL_MS`.
    #[serde(default = "default_cache_poll")]
    pub cache_poll_ms: u64,
    /// `PRODUCT_READ_BATCH_MAX`: most products one coalesced read of single products asks the
    /// database for, default 100.
    #[serde(default = "default_read_batch_max")]
    pub read_batch_max: usize,
    /// `PRODUCT_READ_BATCH_CONCURRENCY`: coalesced reads in flight at once, default 4.
    #[serde(default = "default_read_batch_concurrency")]
    pub read_batch_concurrency: usize,
}

impl Default for ProductSettings {
    fn default() -> Self {
        from_pairs(std::iter::empty())
    }
}

impl ProductSettings {
    /// The address to bind.
    pub fn bind_addr(&self) -> anyhow::Result<SocketAddr> {
        format!("{}:{}", self.host, self.port)
            .parse()
            .with_context(|| format!("PRODUCT_HOST/PRODUCT_PORT: {}:{}", self.host, self.port))
    }
}

fn default_host() -> String {
    "0.0.0.0".into()
}
fn default_port() -> u16 {
    8001
}
fn default_currency() -> String {
    "USD".into()
}
fn default_cache_ttl() -> u64 {
    1_000
}
fn default_cache_capacity() -> u64 {
    10_000
}
fn default_true() -> bool {
    true
}
fn default_cache_max_age() -> u64 {
    30_000
}
fn default_cache_poll() -> u64 {
    100
}
fn default_read_batch_max() -> usize {
    100
}
fn default_read_batch_concurrency() -> usize {
    4
}
fn default_retry_budget() -> u64 {
    5_000
}
fn default_db() -> String {
    "products".into()
}
