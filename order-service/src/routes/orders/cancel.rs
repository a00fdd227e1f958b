//! `POST /orders/{id}/cancel`.

use axum::extract::State;
use shared::Result;
use shared::auth::AuthUser;
use shared::extract::Path;

use super::{OrderView, parse_id};
use crate::saga;
use crate::state::AppState;

/// Cancels a confirmed order and gives its stock back (exactly once, however often it is
/// called). Cancelling a cancelled order answers it unchanged.
#[utoipa::path(
    post, path = "/orders/{id}/cancel", tag = "orders", operation_id = "cancelOrder",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Order id")),
    responses(
        (status = 200, description = "The cancelled order", body = OrderView),
        (status = 401, description = "No valid access token", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "A service-client token", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such order of the caller's", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "urn:shop:problem:invalid-order-state: the order is pending or failed", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn cancel_order(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<axum::Json<OrderView>> {
    let id = parse_id(&id)?;
    let order = saga::cancel_order(&state, &user, id).await?;
    Ok(axum::Json(OrderView::from(&order)))
}
