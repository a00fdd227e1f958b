//! Shared handles of the request handlers.

use std::sync::Arc;

use axum::extract::FromRef;
use shared::auth::Verifier;
use shared::net::AddressLimiter;

use crate::config::{Config, ServiceClientConfig};
use crate::keys::KeyStore;
use crate::password::PasswordHasherPool;
use crate::store::{LoginFailures, RefreshTokens, Users};
use crate::tokens::TokenIssuer;

/// Cheap-to-clone handles; one per process.
#[derive(Clone, FromRef)]
pub struct AppState {
    /// Settings.
    pub config: Arc<Config>,
    /// Users.
    pub users: Users,
    /// Refresh tokens.
    pub refresh_tokens: RefreshTokens,
    /// Login failure windows.
    pub login_failures: LoginFailures,
    /// Published keys.
    pub key_store: KeyStore,
    /// Signs access tokens.
    pub issuer: TokenIssuer,
    /// Verifies access tokens (for `/me`).
    pub verifier: Verifier,
    /// Password hashing.
    pub hasher: PasswordHasherPool,
    /// Per-address limit of `/token` and `/register`.
    pub limiter: AddressLimiter,
    /// Configured service clients.
    pub clients: Arc<Vec<ServiceClientConfig>>,
}
