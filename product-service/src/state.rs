//! Shared handles of the request handlers.

use std::ops::Deref;
use std::sync::Arc;

use axum::extract::FromRef;
use shared::auth::Verifier;

use crate::config::Config;
use crate::store::{BatchedReads, ProductCache, Products, Reservations};

/// The handles of one process, behind one `Arc`: the state is cloned for every request (by the
/// `State` extractor), and one reference count is cheaper than one per handle.
#[derive(Clone)]
pub struct AppState(Arc<Handles>);

/// What [`AppState`] shares.
pub struct Handles {
    /// Settings.
    pub config: Arc<Config>,
    /// Products.
    pub products: Products,
    /// Coalesced reads of single products, for the cache's misses.
    pub reads: BatchedReads,
    /// Short-lived cache of products and list pages.
    pub cache: ProductCache,
    /// Reservations.
    pub reservations: Reservations,
    /// Verifies access tokens against auth-service's JWKS.
    pub verifier: Verifier,
}

impl AppState {
    /// Shares `handles`.
    pub fn new(handles: Handles) -> Self {
        Self(Arc::new(handles))
    }
}

impl Deref for AppState {
    type Target = Handles;

    fn deref(&self) -> &Handles {
        &self.0
    }
}

impl FromRef<AppState> for Verifier {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}
