//! order-service settings: the common ones plus `ORDER_*` variables.

use std::net::SocketAddr;

use anyhow::Context;
use serde::Deserialize;
use shared::config::{CommonConfig, from_pairs};

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
