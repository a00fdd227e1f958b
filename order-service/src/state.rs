//! Shared handles of the request handlers.

use std::sync::Arc;

use axum::extract::FromRef;
use shared::auth::Verifier;

use crate::config::Config;
use crate::limits::OrderRateLimiter;
use crate::products::ProductClient;
use crate::store::{IdempotencyKeys, Orders};

/// Cheap-to-clone handles; one per process.
#[derive(Clone, FromRef)]
pub struct AppState {
    /// Settings.
    pub config: Arc<Config>,
    /// Orders.
    pub orders: Orders,
    /// `Idempotency-Key` records.
    pub idempotency: IdempotencyKeys,
    /// product-service's reservation API.
    pub products: ProductClient,
    /// Per-user limit of `POST /orders`.
    pub order_limiter: OrderRateLimiter,
    /// Verifies access tokens against auth-service's JWKS.
    pub verifier: Verifier,
}
