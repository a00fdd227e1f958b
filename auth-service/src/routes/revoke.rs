//! `POST /revoke` (RFC 7009).

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use shared::Result;
use shared::extract::{is_json, media_type, read_body};
use utoipa::ToSchema;

use crate::state::AppState;
use crate::tokens::refresh_token_hash;

/// Revocation request (form or JSON).
#[derive(Deserialize, ToSchema)]
pub struct RevokeRequest {
    /// The refresh token to revoke.
    #[schema(value_type = String)]
    pub token: Option<SecretString>,
    /// Ignored: only refresh tokens can be revoked.
    #[serde(default)]
    pub token_type_hint: Option<String>,
}

/// Revokes a refresh token and every token rotated from the same login. Answers 200 whether or
/// not the token was valid, so it reveals nothing.
#[utoipa::path(
    post, path = "/revoke", tag = "tokens",
    request_body(content(
        (RevokeRequest = "application/x-www-form-urlencoded"),
        (RevokeRequest = "application/json"),
    )),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke"),
        (status = 400, description = "No token given (OAuth invalid_request)"),
        (status = 413, description = "Body over the limit", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
        (status = 415, description = "Neither form nor JSON", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn revoke(State(state): State<AppState>, req: Request) -> Result<Response> {
    let headers = req.headers().clone();
    let form = media_type(&headers).as_deref() == Some("application/x-www-form-urlencoded");
    if !form && !is_json(&headers) {
        return Err(shared::Problem::unsupported_media_type(
            "application/x-www-form-urlencoded or application/json",
        )
        .into());
    }
    let body = read_body(req, &state).await?;
    let parsed: Option<RevokeRequest> = if form {
        serde_urlencoded::from_bytes(&body).ok()
    } else {
        serde_json::from_slice(&body).ok()
    };
    let no_store = [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))];
    let Some(token) = parsed.and_then(|r| r.token) else {
        return Ok((
            StatusCode::BAD_REQUEST,
            no_store,
            axum::Json(
                json!({"error": "invalid_request", "error_description": "token is required"}),
            ),
        )
            .into_response());
    };
    state
        .refresh_tokens
        .revoke(&refresh_token_hash(token.expose_secret()))
        .await?;
    Ok((StatusCode::OK, no_store).into_response())
}
