//! Shared handles of the request handlers.

use std::sync::Arc;

use axum::extract::FromRef;
use shared::auth::Verifier;

use crate::config::Config;

/// Cheap-to-clone handles; one per process.
#[derive(Clone, FromRef)]
pub struct AppState {
    /// Settings.
    pub config: Arc<Config>,
    /// The service's own database.
    pub db: mongodb::Database,
    /// Verifies access tokens against auth-service's JWKS.
    pub verifier: Verifier,
}
