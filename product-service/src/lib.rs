//! product-service: the catalogue, stock, and all-or-nothing stock reservations.
//!
//! - [`config`]: settings from the environment.
//! - [`domain`]: product fields and reservation requests, parsed exactly (money never a float).
//! - [`store`]: products (every change one conditional operation) and reservations (transactions).
//! - [`routes`]: the HTTP handlers, one module per resource, and the OpenAPI document.
//! - [`state`]: the handles every handler shares.
//!
//! [`Application`] is the one way to build and run the service, for `main`, the all-in-one
//! binary and the tests alike.

pub mod config;
pub mod domain;
pub mod routes;
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

/// A built product-service, bound to its port and ready to run.
pub struct Application {
    service: BoundService,
    follower: Option<Follower>,
}

/// What following the products collection's change stream needs.
struct Follower {
    collection: mongodb::Collection<bson::Document>,
    cache: store::ProductCache,
    poll: Duration,
}

impl Application {
    /// Connects to MongoDB and builds the service.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let client = shared::mongo::connect(&config.common, "product-service").await?;
        Self::build_with_client(config, client).await
    }

    /// Builds the service on an existing MongoDB client (one client per process).
    pub async fn build_with_client(
        config: Config,
        client: mongodb::Client,
    ) -> anyhow::Result<Self> {
        let db = client.database(&config.service.db_name);
        let products = store::Products::new(&db);
        products.ensure_indexes(STARTUP_PATIENCE).await?;
        let reservations = store::Reservations::new(
            client.clone(),
            &db,
            products.clone(),
            Duration::from_millis(config.service.txn_retry_budget_ms),
        );
        let verifier = Verifier::remote(config.common.verifier_config(), reqwest::Client::new());
        let addr = config.service.bind_addr()?;
        let common = config.common.clone();
        let reads = store::BatchedReads::new(
            products.clone(),
            config.service.read_batch_max,
            config.service.read_batch_concurrency,
        );
        let settings = &config.service;
        let cache = store::ProductCache::new(
            Duration::from_millis(settings.cache_ttl_ms),
            Duration::from_millis(settings.cache_max_age_ms),
            settings.cache_capacity,
        );
        let follower = (cache.enabled() && settings.cache_follow_changes).then(|| Follower {
            collection: products.collection().clone_with_type(),
            cache: cache.clone(),
            poll: Duration::from_millis(settings.cache_poll_ms.max(1)),
        });
        let state = AppState::new(state::Handles {
            reads,
            cache,
            config: Arc::new(config),
            products,
            reservations,
            verifier,
        });
        let service =
            BoundService::bind("product-service", addr, router(state), client, &common).await?;
        Ok(Self { service, follower })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.service.port()
    }

    /// Cancel it to shut the service down gracefully (as SIGTERM does).
    pub fn stop_token(&self) -> CancellationToken {
        self.service.stop_token()
    }

    /// Serves, following the product change stream beside, until SIGINT/SIGTERM or the stop
    /// token.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let stop = self.service.stop_token();
        let follower = self.follower.map(|f| {
            tokio::spawn(store::watch::follow(
                f.collection,
                f.cache,
                f.poll,
                stop.clone(),
            ))
        });
        let served = self.service.run_until_stopped().await;
        stop.cancel();
        if let Some(follower) = follower {
            follower.abort();
        }
        served
    }
}
