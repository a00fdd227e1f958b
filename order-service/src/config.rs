//! order-service settings: the common ones plus `ORDER_*` variables.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use shared::config::{AppEnv, CommonConfig, from_pairs};

/// The client secret auth-service accepts for `order-service` when it has no configured clients:
/// for local runs only, refused when `APP_ENV=production`.
pub const DEV_CLIENT_SECRET: &str = "dev-order-service-secret";

/// The most units of one product on one order line that product-service accepts.
pub const MAX_QUANTITY_LIMIT: u32 = 1000;

/// Complete configuration.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Unprefixed settings.
    pub common: CommonConfig,
    /// `ORDER_*` settings.
    pub service: OrderSettings,
}

impl Config {
    /// Reads the environment.
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            common: CommonConfig::from_env()?,
            service: envy::prefixed("ORDER_").from_env()?,
        })
    }

    /// Refuses settings that must not reach production, and impossible values.
    pub fn validate(&self) -> anyhow::Result<()> {
        let s = &self.service;
        if self.common.app_env == AppEnv::Production
            && s.client_secret.expose_secret() == DEV_CLIENT_SECRET
        {
            bail!("ORDER_CLIENT_SECRET must be set when APP_ENV=production");
        }
        if s.client_secret.expose_secret() == DEV_CLIENT_SECRET {
            tracing::warn!(
                client_id = %s.client_id,
                "ORDER_CLIENT_SECRET is not set: using the development client secret; never do this in production"
            );
        }
        if !(1..=MAX_QUANTITY_LIMIT).contains(&s.max_quantity_per_line) {
            bail!("ORDER_MAX_QUANTITY_PER_LINE must be 1..={MAX_QUANTITY_LIMIT}");
        }
        if s.product_deadline_ms == 0 || s.product_timeout_ms == 0 {
            bail!("ORDER_PRODUCT_TIMEOUT_MS and ORDER_PRODUCT_DEADLINE_MS must be positive");
        }
        Ok(())
    }
}

/// `ORDER_*` variables.
#[derive(Clone, Debug, Deserialize)]
pub struct OrderSettings {
    /// `ORDER_HOST`, default `0.0.0.0`.
    #[serde(default = "default_host")]
    pub host: String,
    /// `ORDER_PORT`, default 8002 (0 picks a free port).
    #[serde(default = "default_port")]
    pub port: u16,
    /// `ORDER_DB_NAME`, default `orders`.
    #[serde(default = "default_db")]
    pub db_name: String,
    /// `ORDER_CURRENCY`: shown on orders not priced yet, default `USD`.
    #[serde(default = "default_currency")]
    pub currency: String,
    /// `ORDER_PRODUCT_SERVICE_URL`, default `http://localhost:8001`.
    #[serde(default = "default_product_url")]
    pub product_service_url: String,
    /// `ORDER_AUTH_TOKEN_URL`: auth-service's token endpoint, default `http://localhost:8000/token`.
    #[serde(default = "default_token_url")]
    pub auth_token_url: String,
    /// `ORDER_CLIENT_ID`: this service's OAuth client id, default `order-service`.
    #[serde(default = "default_client_id")]
    pub client_id: String,
    /// `ORDER_CLIENT_SECRET`: its secret; the development default is refused in production.
    #[serde(default = "default_client_secret")]
    pub client_secret: SecretString,
    /// `ORDER_PRODUCT_CONNECT_TIMEOUT_MS`: TCP connect timeout to product- and auth-service,
    /// default 500.
    #[serde(default = "default_connect_timeout")]
    pub product_connect_timeout_ms: u64,
    /// `ORDER_PRODUCT_TIMEOUT_MS`: the longest one attempt may take, default 2000.
    #[serde(default = "default_timeout")]
    pub product_timeout_ms: u64,
    /// `ORDER_PRODUCT_DEADLINE_MS`: the longest one call may take with all its retries, default 3000.
    #[serde(default = "default_deadline")]
    pub product_deadline_ms: u64,
    /// `ORDER_PRODUCT_RETRIES`: extra attempts of an idempotent call after a transient failure,
    /// default 2.
    #[serde(default = "default_retries")]
    pub product_retries: u32,
    /// `ORDER_PRODUCT_BACKOFF_MS`: base of the jittered exponential backoff between attempts,
    /// default 100.
    #[serde(default = "default_backoff")]
    pub product_backoff_ms: u64,
    /// `ORDER_BREAKER_FAILURES`: consecutive failed calls that open the circuit, default 5.
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    /// `ORDER_BREAKER_OPEN_MS`: first open period of the circuit, doubling (jittered) while
    /// product-service keeps failing, default 1000.
    #[serde(default = "default_breaker_open")]
    pub breaker_open_ms: u64,
    /// `ORDER_BREAKER_MAX_OPEN_MS`: longest open period, default 10000.
    #[serde(default = "default_breaker_max_open")]
    pub breaker_max_open_ms: u64,
    /// `ORDER_RETRY_AFTER_SECS`: `Retry-After` of a 503 while product-service is unavailable,
    /// default 2.
    #[serde(default = "default_retry_after")]
    pub retry_after_secs: u64,
    /// `ORDER_RECOVERY_GRACE_SECS`: age after which a `pending` order is settled by recovery,
    /// default 60 (well above the request timeout, so a live request is never overtaken).
    #[serde(default = "default_grace")]
    pub recovery_grace_secs: u64,
    /// `ORDER_RECOVERY_INTERVAL_MS`: how often the recovery task looks for work, default 5000.
    #[serde(default = "default_recovery_interval")]
    pub recovery_interval_ms: u64,
    /// `ORDER_RECOVERY_LEASE_SECS`: how long a replica owns an order it is settling, default 30.
    #[serde(default = "default_lease")]
    pub recovery_lease_secs: u64,
    /// `ORDER_RATE_LIMIT_PER_MINUTE`: orders one user may place per minute (per replica), default
    /// 300; 0 turns the limit off.
    #[serde(default = "default_rate")]
    pub rate_limit_per_minute: u32,
    /// `ORDER_RATE_LIMIT_BURST`: orders one user may place at once, default 60.
    #[serde(default = "default_burst")]
    pub rate_limit_burst: u32,
    /// `ORDER_MAX_QUANTITY_PER_LINE`: the largest quantity of one line, 1..=1000, default 1000.
    #[serde(default = "default_max_quantity")]
    pub max_quantity_per_line: u32,
}

impl Default for OrderSettings {
    fn default() -> Self {
        from_pairs(std::iter::empty())
    }
}

impl OrderSettings {
    /// The address to bind.
    pub fn bind_addr(&self) -> anyhow::Result<SocketAddr> {
        format!("{}:{}", self.host, self.port)
            .parse()
            .with_context(|| format!("ORDER_HOST/ORDER_PORT: {}:{}", self.host, self.port))
    }

    /// Grace period before recovery settles a pending order.
    pub fn recovery_grace(&self) -> Duration {
        Duration::from_secs(self.recovery_grace_secs)
    }

    /// Interval of the recovery task.
    pub fn recovery_interval(&self) -> Duration {
        Duration::from_millis(self.recovery_interval_ms.max(10))
    }

    /// Lease of one order being settled.
    pub fn recovery_lease(&self) -> Duration {
        Duration::from_secs(self.recovery_lease_secs.max(1))
    }
}

fn default_host() -> String {
    "0.0.0.0".into()
}
fn default_port() -> u16 {
    8002
}
fn default_db() -> String {
    "orders".into()
}
fn default_currency() -> String {
    "USD".into()
}
fn default_product_url() -> String {
    "http://localhost:8001".into()
}
fn default_token_url() -> String {
    "http://localhost:8000/token".into()
}
fn default_client_id() -> String {
    "order-service".into()
}
fn default_client_secret() -> SecretString {
    SecretString::from(DEV_CLIENT_SECRET)
}
fn default_connect_timeout() -> u64 {
    500
}
fn default_timeout() -> u64 {
    2_000
}
fn default_deadline() -> u64 {
    3_000
}
fn default_retries() -> u32 {
    2
}
fn default_backoff() -> u64 {
    100
}
fn default_breaker_failures() -> u32 {
    5
}
fn default_breaker_open() -> u64 {
    1_000
}
fn default_breaker_max_open() -> u64 {
    10_000
}
fn default_retry_after() -> u64 {
    2
}
fn default_grace() -> u64 {
    60
}
fn default_recovery_interval() -> u64 {
    5_000
}
fn default_lease() -> u64 {
    30
}
fn default_rate() -> u32 {
    300
}
fn default_burst() -> u32 {
    60
}
fn default_max_quantity() -> u32 {
    MAX_QUANTITY_LIMIT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_development_secret_is_refused_in_production() {
        let mut config = Config::default();
        assert!(config.validate().is_ok());
        config.common.app_env = AppEnv::Production;
        assert!(config.validate().is_err());
        config.service.client_secret = SecretString::from("a real secret from the vault");
        assert!(config.validate().is_ok());
    }
}
