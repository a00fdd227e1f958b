//! `/.well-known/jwks.json` and `/.well-known/oauth-authorization-server`.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use serde_json::json;
use shared::Result;
use shared::auth::JwkSet;

use crate::state::AppState;

/// The public keys (current and previous) that verify access tokens.
#[utoipa::path(
    get, path = "/.well-known/jwks.json", tag = "discovery",
    responses((status = 200, description = "The key set", body = JwkSet))
)]
pub async fn jwks(State(state): State<AppState>) -> Result<impl IntoResponse> {
    let keys = state.key_store.jwks().await?;
    Ok((
        [(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=60"),
        )],
        axum::Json(keys),
    ))
}

/// RFC 8414 authorization server metadata.
#[utoipa::path(
    get, path = "/.well-known/oauth-authorization-server", tag = "discovery",
    responses((status = 200, description = "Metadata", body = Object))
)]
pub async fn metadata(State(state): State<AppState>) -> impl IntoResponse {
    let issuer = state
        .config
        .common
        .jwt_issuer
        .trim_end_matches('/')
        .to_owned();
    axum::Json(json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}/token"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "registration_endpoint": format!("{issuer}/register"),
        "grant_types_supported": ["password", "refresh_token", "client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "response_types_supported": [],
        "scopes_supported": ["shop", "admin", "stock:reserve"],
        "token_endpoint_auth_signing_alg_values_supported": ["EdDSA"],
    }))
}
