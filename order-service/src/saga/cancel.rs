//! Cancelling an order: `confirmed` -> `cancelled`, then the stock goes back.

use bson::oid::ObjectId;
use http::StatusCode;
use shared::auth::AuthUser;
use shared::{ApiError, Problem, Result};

use super::release;
use crate::domain::OrderStatus;
use crate::state::AppState;
use crate::store::Order;

/// Problem type: the order cannot go to the requested state from its current one.
pub const INVALID_STATE: &str = "urn:shop:problem:invalid-order-state";

/// `POST /orders/{id}/cancel`: the caller's order (any order for admins). The status change comes
/// first, so a crash before the release leaves a cancelled order whose release recovery retries.
pub async fn cancel_order(state: &AppState, user: &AuthUser, id: ObjectId) -> Result<Order> {
    if let Some(mut order) = state.orders.cancel(id, user.owner_filter()).await? {
        tracing::info!(order.id = %id, user.id = %user.id, "order cancelled");
        if release(state, id).await {
            order.release_pending = false;
        }
        return Ok(order);
    }
    let order = super::owned_order(state, user, id).await?;
    if order.status != OrderStatus::Cancelled {
        return Err(ApiError::from(
            Problem::new(
                StatusCode::CONFLICT,
                INVALID_STATE,
                "Order cannot be cancelled",
            )
            .detail(format!(
                "only confirmed orders can be cancelled; this one is {}",
                order.status.as_str()
            )),
        ));
    }
    if order.release_pending {
        release(state, id).await;
    }
    Ok(order)
}
