//! Shared handles of the request handlers.

use std::sync::Arc;

use axum::extract::FromRef;
use shared::auth::Verifier;

use crate::config::Config;
use crate::store::{ProductCache, Products, Reservations};

/// Cheap-to-clone handles; one per process.
#[derive(Clone, FromRef)]
pub struct AppState {
    /// Settings.
    pub config: Arc<Config>,
    /// Products.
    pub products: Products,
    /// Short-lived cache of single products.
    pub cache: ProductCache,
    /// Reservations.
    pub reservations: Reservations,
    /// Verifies access tokens against auth-service's JWKS.
    pub verifier: Verifier,
}
