//! `GET /orders` and `GET /orders/{id}`.

use axum::extract::State;
use serde::Deserialize;
use shared::Result;
use shared::auth::AuthUser;
use shared::extract::{Path, Query};
use utoipa::IntoParams;

use super::{OrderPage, OrderView, parse_id};
use crate::domain::{Cursor, OrderStatus};
use crate::saga;
use crate::state::AppState;

/// Query of `GET /orders`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// 1..=100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only orders of this status.
    #[param(inline)]
    pub status: Option<OrderStatus>,
    /// Admins only: list this user's orders. Ignored for everyone else, who only ever see
    /// their own.
    pub user_id: Option<String>,
}

/// The caller's orders, newest first, paginated by an opaque keyset cursor.
#[utoipa::path(
    get, path = "/orders", tag = "orders", operation_id = "listOrders",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of orders", body = OrderPage),
        (status = 401, description = "No valid access token", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "A service-client token", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Bad limit, cursor, status or unknown parameter", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn list_orders(
    State(state): State<AppState>,
    user: AuthUser,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<OrderPage>> {
    let limit = shared::pagination::limit(query.limit)?;
    let after = query.cursor.as_deref().map(Cursor::decode).transpose()?;
    let owner = match query.user_id {
        Some(other) if user.is_admin() => other,
        _ => user.id.clone(),
    };
    let page = state
        .orders
        .list(&owner, query.status, after, limit)
        .await?;
    Ok(axum::Json(OrderPage {
        items: page.items.iter().map(OrderView::from).collect(),
        next_cursor: page.next.map(|c| c.encode()),
    }))
}

/// One order: the caller's own (any order for admins). Anyone else's is a 404, exactly as a
/// missing id.
#[utoipa::path(
    get, path = "/orders/{id}", tag = "orders", operation_id = "getOrder",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Order id")),
    responses(
        (status = 200, description = "The order", body = OrderView),
        (status = 401, description = "No valid access token", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "A service-client token", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such order of the caller's", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn get_order(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<axum::Json<OrderView>> {
    let order = saga::owned_order(&state, &user, parse_id(&id)?).await?;
    Ok(axum::Json(OrderView::from(&order)))
}
