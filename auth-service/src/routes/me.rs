//! `GET /me`.

use axum::extract::State;
use bson::oid::ObjectId;
use shared::auth::AuthUser;
use shared::{Problem, Result};

use super::register::UserView;
use crate::state::AppState;

/// The caller's account.
#[utoipa::path(
    get, path = "/me", tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = UserView),
        (status = 401, description = "No valid access token", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "A service-client token", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "The account no longer exists", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn me(State(state): State<AppState>, user: AuthUser) -> Result<axum::Json<UserView>> {
    let id = ObjectId::parse_str(&user.id).map_err(|_| Problem::not_found("no such account"))?;
    let found = state
        .users
        .find_by_id(id)
        .await?
        .ok_or_else(|| Problem::not_found("no such account"))?;
    Ok(axum::Json(UserView::from(&found)))
}
