//! Claiming an `Idempotency-Key` before the saga runs: exactly one request runs per key.

use axum::response::Response;
use bson::{DateTime, oid::ObjectId};
use http::StatusCode;
use shared::auth::AuthUser;
use shared::{Problem, Result};

use super::answers::{created, replay};
use crate::domain::{IdempotencyKey, OrderStatus};
use crate::state::AppState;
use crate::store::{Begin, StoredResponse};

/// Problem type: an `Idempotency-Key` reused with a different body.
pub const IDEMPOTENCY_MISMATCH: &str = "urn:shop:problem:idempotency-key-mismatch";
/// Problem type: a request with the same `Idempotency-Key` is still running.
pub const IDEMPOTENCY_IN_FLIGHT: &str = "urn:shop:problem:idempotency-key-in-flight";

/// Claims `key` for this request, which will create `order_id`. `Ok(None)`: run the saga;
/// `Ok(Some(response))`: answer that instead (a replay); errors are 409 or 422 problems.
pub async fn claim(
    state: &AppState,
    user: &AuthUser,
    key: &IdempotencyKey,
    fingerprint: &str,
    order_id: ObjectId,
) -> Result<Option<Response>> {
    // Two rounds: a key left by a request that died is forgotten once, then claimed.
    let mut round = 0;
    loop {
        round += 1;
        let begun = state
            .idempotency
            .begin(&user.id, key, fingerprint, order_id)
            .await?;
        match begun {
            Begin::Started => return Ok(None),
            Begin::Replay(stored) => return Ok(Some(replay(&stored))),
            Begin::Mismatch => {
                return Err(Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    IDEMPOTENCY_MISMATCH,
                    "Idempotency key reused",
                )
                .detail("this Idempotency-Key was used with a different request body")
                .into());
            }
            Begin::InFlight {
                record_id,
                order_id: earlier,
                started_at,
            } => {
                // The request that claimed the key died (cut off by the request timeout, or its
                // process crashed): answer what its order became, or let this request run in
                // its place. A still-pending order stays 409 until recovery settles it.
                if round == 1 && is_stale(state, started_at) {
                    if let Some(stored) = settled_answer(state, earlier).await? {
                        state.idempotency.finish(&user.id, key, &stored).await?;
                        return Ok(Some(replay(&stored)));
                    }
                    let pending = state
                        .orders
                        .find(earlier, None)
                        .await?
                        .is_some_and(|o| o.status == OrderStatus::Pending);
                    if !pending {
                        state.idempotency.forget_unfinished(record_id).await?;
                        continue;
                    }
                }
                return Err(Problem::new(
                    StatusCode::CONFLICT,
                    IDEMPOTENCY_IN_FLIGHT,
                    "Request in progress",
                )
                .detail(
                    "a request with this Idempotency-Key is still being processed; retry shortly",
                )
                .into());
            }
        }
    }
}

/// Whether a request that started at `started_at` can no longer be running: every request is
/// cut off at `REQUEST_TIMEOUT_MS`.
fn is_stale(state: &AppState, started_at: DateTime) -> bool {
    let limit = state.config.common.request_timeout() + std::time::Duration::from_secs(5);
    let age = DateTime::now().timestamp_millis() - started_at.timestamp_millis();
    age > i64::try_from(limit.as_millis()).unwrap_or(i64::MAX)
}

/// The answer a request that died would have given, when its order got confirmed anyway (by
/// recovery): the order as a 201.
async fn settled_answer(state: &AppState, order_id: ObjectId) -> Result<Option<StoredResponse>> {
    match state.orders.find(order_id, None).await? {
        Some(order) if order.status != OrderStatus::Pending && order.total_minor.is_some() => {
            Ok(Some(created(&order)?))
        }
        _ => Ok(None),
    }
}
