//! `POST /token`: the OAuth 2.0 token endpoint (RFC 6749), answering errors in its format.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bson::DateTime;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared::ApiError;
use shared::auth::Role;
use shared::extract::{is_json, media_type, read_body};
use shared::net::{PeerAddr, client_ip};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use crate::domain::Username;
use crate::password::HashError;
use crate::state::AppState;
use crate::store::User;
use crate::store::refresh_tokens::{Redemption, RefreshToken};
use crate::tokens::{Subject, new_refresh_token, refresh_token_hash};

/// Token request fields, as form fields or JSON members. Unrecognised parameters are ignored, as
/// RFC 6749 section 3.2 requires of a token endpoint.
#[derive(Deserialize, Default, ToSchema)]
pub struct TokenRequest {
    /// `password` (the default in JSON), `refresh_token` or `client_credentials`.
    #[serde(default)]
    pub grant_type: Option<String>,
    /// For `password`.
    #[serde(default)]
    pub username: Option<String>,
    /// For `password`.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<SecretString>,
    /// Optional narrower scope, space-separated.
    #[serde(default)]
    pub scope: Option<String>,
    /// For `refresh_token`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub refresh_token: Option<SecretString>,
}

/// A successful token response.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// The EdDSA-signed JWT.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The next refresh token (not for client credentials).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Granted scopes, space-separated.
    pub scope: String,
}

/// An RFC 6749 section 5.2 error.
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthError {
    /// Error code.
    pub error: &'static str,
    /// Human-readable text.
    pub error_description: &'static str,
    #[serde(skip)]
    status: StatusCode,
    #[serde(skip)]
    retry_after: Option<u64>,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: &'static str) -> Self {
        Self {
            error,
            error_description: description,
            status,
            retry_after: None,
        }
    }
    fn invalid_request(description: &'static str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }
    fn invalid_grant() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the credentials or refresh token are invalid",
        )
    }
    fn invalid_client() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        )
    }
    fn invalid_scope() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "the requested scope exceeds what may be granted",
        )
    }
    fn too_many(retry_after: u64, description: &'static str) -> Self {
        Self {
            retry_after: Some(retry_after.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "temporarily_unavailable",
                description,
            )
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut response = (self.status, no_store(), axum::Json(&self)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="shop""#),
            );
        }
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

fn no_store() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}

/// Either an OAuth error or an infrastructure failure.
pub enum TokenError {
    /// Answered in the OAuth format.
    OAuth(OAuthError),
    /// Answered as problem+json (503 or 500).
    Api(ApiError),
}

impl From<OAuthError> for TokenError {
    fn from(e: OAuthError) -> Self {
        Self::OAuth(e)
    }
}
impl<E: Into<ApiError>> From<E> for TokenError {
    fn from(e: E) -> Self {
        Self::Api(e.into())
    }
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        match self {
            Self::OAuth(e) => e.into_response(),
            Self::Api(e) => {
                let mut response = e.into_response();
                response.headers_mut().extend(no_store());
                response
            }
        }
    }
}

/// Issues tokens for the `password`, `refresh_token` and `client_credentials` grants.
#[utoipa::path(
    post, path = "/token", tag = "tokens",
    request_body(content(
        (TokenRequest = "application/x-www-form-urlencoded"),
        (TokenRequest = "application/json"),
    )),
    security((), ("client_basic" = [])),
    responses(
        (status = 200, description = "Tokens", body = TokenResponse),
        (status = 400, description = "invalid_request, invalid_grant, invalid_scope or unsupported_grant_type", body = OAuthError),
        (status = 401, description = "invalid_client", body = OAuthError),
        (status = 413, description = "Body over the limit", body = OAuthError),
        (status = 415, description = "Neither form nor JSON", body = OAuthError),
        (status = 429, description = "Too many failures for this username, or requests from this address", body = OAuthError),
        (status = 503, description = "Too many sign-ins at once (temporarily_unavailable, Retry-After)", body = OAuthError),

    )
)]
pub async fn token(
    State(state): State<AppState>,
    PeerAddr(peer): PeerAddr,
    req: Request,
) -> Result<Response, TokenError> {
    let headers = req.headers().clone();
    if let Some(peer) = peer
        && let Err(problem) = state.limiter.check(client_ip(
            peer,
            &headers,
            &state.config.common.trusted_proxies,
        ))
    {
        let retry = problem
            .into_response()
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(1);
        return Err(OAuthError::too_many(retry, "too many requests from this address").into());
    }
    let request = parse(&headers, req, &state).await?;
    let grant = request.grant_type.clone().unwrap_or_default();
    let response = match grant.as_str() {
        "password" => password_grant(&state, request).await?,
        "refresh_token" => refresh_grant(&state, request).await?,
        "client_credentials" => client_grant(&state, &headers, request)?,
        "" => return Err(OAuthError::invalid_request("grant_type is required").into()),
        _ => {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be password, refresh_token or client_credentials",
            )
            .into());
        }
    };
    metrics::counter!("auth_tokens_issued_total", "grant" => grant).increment(1);
    Ok((StatusCode::OK, no_store(), axum::Json(response)).into_response())
}

async fn parse(
    headers: &HeaderMap,
    req: Request,
    state: &AppState,
) -> Result<TokenRequest, TokenError> {
    let form = media_type(headers).as_deref() == Some("application/x-www-form-urlencoded");
    let json = is_json(headers);
    if !form && !json {
        return Err(OAuthError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request",
            "the body must be application/x-www-form-urlencoded or application/json",
        )
        .into());
    }
    let body = read_body(req, state).await.map_err(|p| {
        if p.status() == StatusCode::PAYLOAD_TOO_LARGE {
            OAuthError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                "the body is too large",
            )
        } else {
            OAuthError::invalid_request("the body could not be read")
        }
    })?;
    if form {
        serde_urlencoded::from_bytes::<TokenRequest>(&body)
            .map_err(|_| OAuthError::invalid_request("the form body is malformed").into())
    } else {
        let mut request = serde_json::from_slice::<TokenRequest>(&body).map_err(|_| {
            OAuthError::invalid_request("the JSON body is malformed or of the wrong shape")
        })?;
        request
            .grant_type
            .get_or_insert_with(|| "password".to_owned());
        Ok(request)
    }
}

/// The scopes a role may have.
fn role_scopes(role: Role) -> &'static [&'static str] {
    match role {
        Role::Customer => &["shop"],
        Role::Admin => &["shop", "admin"],
    }
}

/// The granted scope: everything allowed when none is asked, else the request if allowed.
fn grant_scope<S: AsRef<str>>(
    requested: Option<&str>,
    allowed: &[S],
) -> Result<String, OAuthError> {
    let allowed: Vec<&str> = allowed.iter().map(AsRef::as_ref).collect();
    match requested.map(str::split_ascii_whitespace) {
        None => Ok(allowed.join(" ")),
        Some(parts) => {
            let asked: Vec<&str> = parts.collect();
            if asked.is_empty() {
                Ok(allowed.join(" "))
            } else if asked.iter().all(|s| allowed.contains(s)) {
                Ok(asked.join(" "))
            } else {
                Err(OAuthError::invalid_scope())
            }
        }
    }
}

async fn password_grant(
    state: &AppState,
    request: TokenRequest,
) -> Result<TokenResponse, TokenError> {
    let (Some(username), Some(password)) = (request.username, request.password) else {
        return Err(OAuthError::invalid_request("username and password are required").into());
    };
    let settings = &state.config.auth;
    let key: String = username.to_lowercase().chars().take(64).collect();
    let (failures, retry_after) = state.login_failures.count(&key).await?;
    if failures >= settings.login_max_failures {
        metrics::counter!("auth_logins_total", "outcome" => "throttled").increment(1);
        tracing::warn!("login refused: too many failures for this username");
        return Err(
            OAuthError::too_many(retry_after, "too many failed logins; retry later").into(),
        );
    }
    let user = match Username::parse(&username) {
        Ok(parsed) => state.users.find_by_username(&parsed).await?,
        Err(_) => None,
    };
    let verified = state
        .hasher
        .verify(password, user.as_ref().map(|u| u.password_hash.clone()))
        .await
        .map_err(|e| match e {
            HashError::Busy => TokenError::OAuth(OAuthError {
                retry_after: Some(1),
                ..OAuthError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "too many sign-ins at once; retry shortly",
                )
            }),
            HashError::Failed(e) => TokenError::Api(ApiError::Internal(e)),
        })?;
    let Some(user) = user.filter(|_| verified) else {
        let count = state.login_failures.record(&key).await?;
        metrics::counter!("auth_logins_total", "outcome" => "failure").increment(1);
        if count > settings.login_slow_after {
            let extra = u64::from(count - settings.login_slow_after).min(8);
            tokio::time::sleep(Duration::from_millis(250 * extra)).await;
        }
        return Err(OAuthError::invalid_grant().into());
    };
    if failures > 0 {
        state.login_failures.clear(&key).await?;
    }
    let scope = grant_scope(request.scope.as_deref(), role_scopes(user.role))?;
    let family = uuid::Uuid::new_v4().to_string();
    let response = user_tokens(state, &user, scope, family).await?;
    metrics::counter!("auth_logins_total", "outcome" => "success").increment(1);
    tracing::info!(user.id = %user.id, "login succeeded");
    Ok(response)
}

async fn refresh_grant(
    state: &AppState,
    request: TokenRequest,
) -> Result<TokenResponse, TokenError> {
    let Some(token) = request.refresh_token else {
        return Err(OAuthError::invalid_request("refresh_token is required").into());
    };
    let hash = refresh_token_hash(token.expose_secret());
    let old = match state.refresh_tokens.redeem(&hash).await? {
        Redemption::Rotated(old) => old,
        Redemption::Reused | Redemption::Invalid => return Err(OAuthError::invalid_grant().into()),
    };
    let Some(user) = state.users.find_by_id(old.user_id).await? else {
        return Err(OAuthError::invalid_grant().into());
    };
    let granted: Vec<&str> = old.scope.split_ascii_whitespace().collect();
    let scope = grant_scope(request.scope.as_deref(), &granted)?;
    Ok(user_tokens(state, &user, scope, old.family_id).await?)
}

/// An access token and a new refresh token of `family`.
async fn user_tokens(
    state: &AppState,
    user: &User,
    scope: String,
    family_id: String,
) -> Result<TokenResponse, ApiError> {
    let id = user.id.to_hex();
    let access_token = state.issuer.access_token(
        Subject::User {
            id: &id,
            username: &user.username,
            role: user.role,
        },
        &scope,
    )?;
    let (refresh, hash) = new_refresh_token();
    let now = DateTime::now();
    let ttl_ms = (state.config.auth.refresh_token_ttl_secs as i64).saturating_mul(1000);
    state
        .refresh_tokens
        .insert(&RefreshToken {
            hash,
            family_id,
            user_id: user.id,
            scope: scope.clone(),
            created_at: now,
            expires_at: DateTime::from_millis(now.timestamp_millis().saturating_add(ttl_ms)),
            rotated_at: None,
            revoked: false,
        })
        .await?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: state.issuer.ttl_secs(),
        refresh_token: Some(refresh),
        scope,
    })
}

fn client_grant(
    state: &AppState,
    headers: &HeaderMap,
    request: TokenRequest,
) -> Result<TokenResponse, TokenError> {
    let (id, secret) = basic_credentials(headers).ok_or_else(OAuthError::invalid_client)?;
    let digest = |s: &str| Sha256::digest(s.as_bytes());
    let client = state
        .clients
        .iter()
        .find(|c| c.id == id)
        .filter(|c| bool::from(digest(c.secret.expose_secret()).ct_eq(&digest(&secret))));
    let Some(client) = client else {
        tracing::warn!(client_id = %id, "client authentication failed");
        return Err(OAuthError::invalid_client().into());
    };
    let scope = grant_scope(request.scope.as_deref(), &client.scopes)?;
    let access_token = state
        .issuer
        .access_token(Subject::Client { id: &client.id }, &scope)
        .map_err(ApiError::from)?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: state.issuer.ttl_secs(),
        refresh_token: None,
        scope,
    })
}

/// HTTP Basic client credentials, form-decoded as RFC 6749 section 2.3.1 asks.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| {
        form_urlencoded::parse(format!("v={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}
