//! order-service: orders that reserve stock at product-service, idempotently, and recover from
//! crashes.
//!
//! - [`config`]: settings from the environment.
//! - [`domain`]: parsed order requests, quantities, money, statuses, cursors, idempotency keys.
//! - [`limits`]: the per-user order rate limit.
//! - [`store`]: orders and `Idempotency-Key` records in MongoDB.
//! - [`products`]: the product-service client (service token, timeouts, retries, circuit breaker).
//! - [`saga`]: placing an order (record, reserve, confirm, compensate) and cancelling it.
//! - [`recovery`]: the background task settling orders a crash or outage left half-done.
//! - [`routes`]: the HTTP handlers and the OpenAPI document.
//! - [`state`]: the handles every handler shares.
//!
//! [`Application`] is the one way to build and run the service, for `main`, the all-in-one
//! binary and the tests alike.

pub mod config;
pub mod domain;
pub mod limits;
pub mod products;
pub mod recovery;
pub mod routes;
pub mod saga;
pub mod state;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use shared::auth::Verifier;
use shared::server::BoundService;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use routes::router;
pub use state::AppState;

/// How long start-up waits for MongoDB before giving up.
const STARTUP_PATIENCE: Duration = Duration::from_secs(60);

/// A built order-service, bound to its port and ready to run.
pub struct Application {
    service: BoundService,
    state: AppState,
}

impl Application {
    /// Connects to MongoDB and builds the service.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let client = shared::mongo::connect(&config.common, "order-service").await?;
        Self::build_with_client(config, client).await
    }

    /// Builds the service on an existing MongoDB client (one client per process).
    pub async fn build_with_client(
        config: Config,
        client: mongodb::Client,
    ) -> anyhow::Result<Self> {
        config.validate()?;
        let db = client.database(&config.service.db_name);
        let orders = store::Orders::new(&db);
        let idempotency = store::IdempotencyKeys::new(&db);
        orders.ensure_indexes(STARTUP_PATIENCE).await?;
        idempotency.ensure_indexes(STARTUP_PATIENCE).await?;
        let products = products::ProductClient::new(&config.service)?;
        let order_limiter = limits::OrderRateLimiter::new(
            config.service.rate_limit_per_minute,
            config.service.rate_limit_burst,
        );
        let verifier = Verifier::remote(config.common.verifier_config(), reqwest::Client::new());
        let addr = config.service.bind_addr()?;
        let common = config.common.clone();
        let state = AppState {
            config: Arc::new(config),
            orders,
            idempotency,
            products,
            order_limiter,
            verifier,
        };
        let service = BoundService::bind(
            "order-service",
            addr,
            router(state.clone()),
            client,
            &common,
        )
        .await?;
        Ok(Self { service, state })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.service.port()
    }

    /// Cancel it to shut the service down gracefully (as SIGTERM does).
    pub fn stop_token(&self) -> CancellationToken {
        self.service.stop_token()
    }

    /// Serves, with the recovery task running beside, until SIGINT/SIGTERM or the stop token.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let stop = self.service.stop_token();
        let recovery = tokio::spawn(recovery::run(self.state, stop.clone()));
        let served = self.service.run_until_stopped().await;
        stop.cancel();
        recovery.abort();
        served
    }
}
