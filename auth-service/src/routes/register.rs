//! `POST /register`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::StatusCode;
use bson::{DateTime, oid::ObjectId};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use shared::auth::Role;
use shared::extract::Json;
use shared::net::{PeerAddr, client_ip};
use shared::{FieldError, Problem, Result};
use utoipa::ToSchema;

use crate::domain::{Email, NewPassword, Username};
use crate::state::AppState;
use crate::store::User;

/// Problem type of a taken username.
pub const USERNAME_TAKEN: &str = "urn:shop:problem:username-taken";

/// Registration request. Unknown fields (such as `role`) are refused with 422.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// 3..=32 of `[A-Za-z0-9_.-]`, unique case-insensitively.
    #[schema(min_length = 3, max_length = 32, pattern = "^[A-Za-z0-9_.-]{3,32}$")]
    pub username: String,
    /// 8..=128 characters, not equal to the username.
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 128)]
    pub password: SecretString,
    /// Optional email address.
    #[serde(default)]
    #[schema(format = Email, max_length = 254)]
    pub email: Option<String>,
}

/// A user as shown to clients.
#[derive(Serialize, ToSchema)]
pub struct UserView {
    /// Id.
    pub id: String,
    /// Username as registered.
    pub username: String,
    /// Email, if given.
    pub email: Option<String>,
    /// `customer` or `admin`.
    pub role: Role,
    /// RFC 3339 UTC.
    pub created_at: String,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.to_hex(),
            username: user.username.clone(),
            email: user.email.clone(),
            role: user.role,
            created_at: user
                .created_at
                .to_chrono()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }
    }
}

/// Creates a customer account.
#[utoipa::path(
    post, path = "/register", tag = "accounts",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Created", body = UserView),
        (status = 400, description = "Malformed JSON", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "Username taken (case-insensitively)", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
        (status = 413, description = "Body over the limit", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or unknown fields", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this address", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
        (status = 503, description = "Too many sign-ins at once, or the database is unavailable", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn register(
    State(state): State<AppState>,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
    Json(body): Json<RegisterRequest>,
) -> Result<(StatusCode, axum::Json<UserView>)> {
    if let Some(peer) = peer {
        state.limiter.check(client_ip(
            peer,
            &headers,
            &state.config.common.trusted_proxies,
        ))?;
    }
    let (username, password, email) = parse(body)?;
    let password_hash = state.hasher.hash(password.into_secret()).await?;
    let user = User {
        id: ObjectId::new(),
        username: username.as_str().to_owned(),
        username_key: username.key(),
        email: email.map(Email::into_inner),
        password_hash,
        role: Role::Customer,
        created_at: DateTime::now(),
    };
    match state.users.insert(&user).await {
        Ok(()) => {}
        Err(e) if shared::mongo::is_duplicate_key(&e) => {
            return Err(
                Problem::new(StatusCode::CONFLICT, USERNAME_TAKEN, "Username taken")
                    .detail("this username is already registered")
                    .into(),
            );
        }
        Err(e) => return Err(e.into()),
    }
    metrics::counter!("auth_registrations_total").increment(1);
    tracing::info!(user.id = %user.id, "user registered");
    Ok((StatusCode::CREATED, axum::Json(UserView::from(&user))))
}

fn parse(body: RegisterRequest) -> Result<(Username, NewPassword, Option<Email>), Problem> {
    let mut errors: Vec<FieldError> = Vec::new();
    let username = Username::parse(&body.username)
        .map_err(|e| errors.push(e))
        .ok();
    let password = NewPassword::parse(body.password, username.as_ref())
        .map_err(|e| errors.push(e))
        .ok();
    let email = match body.email.as_deref() {
        None => None,
        Some(raw) => Email::parse(raw).map_err(|e| errors.push(e)).ok(),
    };
    match (username, password) {
        (Some(u), Some(p)) if errors.is_empty() => Ok((u, p, email)),
        _ => Err(Problem::validation(errors)),
    }
}
