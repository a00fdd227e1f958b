//! auth-service: registration, the OAuth 2.0 token endpoint, revocation and the JWKS.
//!
//! - [`config`]: settings from the environment.
//! - [`domain`]: parsed usernames, passwords and emails.
//! - [`password`]: argon2id hashing off the runtime, behind a concurrency limit.
//! - [`keys`]: the Ed25519 signing key, shared by all replicas, and the published key set.
//! - [`tokens`]: minting access and refresh tokens.
//! - [`store`]: users, refresh tokens and login-failure windows in MongoDB.
//! - [`routes`]: the HTTP handlers, one module per resource, and the OpenAPI document.
//!
//! [`Application`] is the one way to build and run the service, for `main`, the all-in-one
//! binary and the tests alike.

pub mod config;
pub mod domain;
pub mod keys;
pub mod password;
pub mod routes;
pub mod state;
pub mod store;
pub mod tokens;

use std::sync::Arc;
use std::time::Duration;

use shared::auth::{KeySource, Verifier};
use shared::net::AddressLimiter;
use shared::server::BoundService;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use routes::router;
pub use state::AppState;

/// How long start-up waits for MongoDB before giving up.
const STARTUP_PATIENCE: Duration = Duration::from_secs(60);

/// A built auth-service, bound to its port and ready to run.
pub struct Application {
    service: BoundService,
}

impl Application {
    /// Connects to MongoDB and builds the service.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let client = shared::mongo::connect(&config.common, "auth-service").await?;
        Self::build_with_client(config, client).await
    }

    /// Builds the service on an existing MongoDB client (one client per process).
    pub async fn build_with_client(
        config: Config,
        client: mongodb::Client,
    ) -> anyhow::Result<Self> {
        let db = client.database(&config.auth.db_name);
        let clients = config::service_clients(&config)?;
        let users = store::Users::new(&db);
        let refresh_tokens = store::RefreshTokens::new(&db);
        let login_failures =
            store::LoginFailures::new(&db, Duration::from_secs(config.auth.login_window_secs));
        let key_store = keys::KeyStore::new(&db);
        users.ensure_indexes(STARTUP_PATIENCE).await?;
        refresh_tokens.ensure_indexes(STARTUP_PATIENCE).await?;
        login_failures.ensure_indexes(STARTUP_PATIENCE).await?;
        key_store.ensure_indexes(STARTUP_PATIENCE).await?;

        let signing = Arc::new(keys::load(&config, &db, &key_store).await?);
        let hasher = password::PasswordHasherPool::new(
            config.auth.hash_concurrency,
            config.auth.hash_queue,
            config.auth.hash_priority(),
        )?;
        bootstrap_admin(&config, &users, &hasher).await?;

        let source_store = key_store.clone();
        let source: KeySource = Arc::new(move || {
            let store = source_store.clone();
            Box::pin(async move { Ok(store.jwks().await?) })
        });
        let verifier = Verifier::with_source(config.common.verifier_config(), source);
        let issuer = tokens::TokenIssuer::new(
            signing,
            config.common.jwt_issuer.clone(),
            config.common.jwt_audience.clone(),
            config.auth.access_ttl(),
        );
        let limiter = AddressLimiter::new(
            config.auth.rate_limit_per_minute,
            config.auth.rate_limit_burst,
        );
        let addr = config.auth.bind_addr()?;
        let common = config.common.clone();
        let state = AppState {
            config: Arc::new(config),
            users,
            refresh_tokens,
            login_failures,
            key_store,
            issuer,
            verifier,
            hasher,
            limiter,
            clients: Arc::new(clients),
        };
        let service =
            BoundService::bind("auth-service", addr, router(state), client, &common).await?;
        Ok(Self { service })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.service.port()
    }

    /// Cancel it to shut the service down gracefully (as SIGTERM does).
    pub fn stop_token(&self) -> CancellationToken {
        self.service.stop_token()
    }

    /// Serves until SIGINT/SIGTERM or the stop token.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.service.run_until_stopped().await
    }
}

/// Creates the configured admin account, idempotently.
async fn bootstrap_admin(
    config: &Config,
    users: &store::Users,
    hasher: &password::PasswordHasherPool,
) -> anyhow::Result<()> {
    let (Some(name), Some(password)) = (&config.auth.admin_username, &config.auth.admin_password)
    else {
        return Ok(());
    };
    let username = domain::Username::parse(name)
        .map_err(|e| anyhow::anyhow!("AUTH_ADMIN_USERNAME {}", e.message))?;
    let password = domain::NewPassword::parse(password.clone(), Some(&username))
        .map_err(|e| anyhow::anyhow!("AUTH_ADMIN_PASSWORD {}", e.message))?;
    let hash = hasher.hash(password.into_secret()).await?;
    users.ensure_admin(&username, &hash).await?;
    tracing::info!(username = %username.as_str(), "admin account ensured");
    Ok(())
}
