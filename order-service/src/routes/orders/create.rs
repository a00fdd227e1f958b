//! `POST /orders`.

use axum::extract::State;
use axum::response::Response;
use shared::Result;
use shared::auth::AuthUser;
use shared::extract::Json;

use crate::domain::NewOrder;
use crate::domain::idempotency_key::MaybeIdempotencyKey;
use crate::domain::new_order::CreateOrderRequest;
use crate::saga;
use crate::state::AppState;

/// Places an order: reserves the stock of every line at product-service (all or nothing) and
/// answers the confirmed order. Names and prices come from product-service.
///
/// With an `Idempotency-Key` (1..=255 visible ASCII characters, scoped to the caller, kept 24
/// hours) a repeat with the same body gets the same status and body and places nothing again.
#[utoipa::path(
    post, path = "/orders", tag = "orders", operation_id = "createOrder",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Makes retries safe: 1..=255 visible ASCII characters")),
    request_body = CreateOrderRequest,
    responses(
        (status = 201, description = "Placed and confirmed; `Location` names it", body = super::OrderView,
            headers(("Location" = String, description = "/orders/{id}")),
            links(
                ("GetOrder" = (operation_id = "getOrder", parameters(("id" = "$response.body#/id")))),
                ("CancelOrder" = (operation_id = "cancelOrder", parameters(("id" = "$response.body#/id")))),
            )),
        (status = 400, description = "Malformed JSON or Idempotency-Key", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "No valid access token", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "A service-client token", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "urn:shop:problem:insufficient-stock (no order remains), or urn:shop:problem:idempotency-key-in-flight", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
        (status = 413, description = "Body over the limit", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or unknown fields, unknown product, or urn:shop:problem:idempotency-key-mismatch", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "Too many orders from this user; `Retry-After` says when to retry", body = shared::problem::ProblemBody, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds"))),
        (status = 503, description = "product-service unavailable or too slow; `Retry-After` says when to retry; the order (if recorded) is failed and holds no stock", body = shared::problem::ProblemBody, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds"))),
    )
)]
pub async fn create_order(
    State(state): State<AppState>,
    user: AuthUser,
    MaybeIdempotencyKey(key): MaybeIdempotencyKey,
    Json(body): Json<CreateOrderRequest>,
) -> Result<Response> {
    state.order_limiter.check(&user.id)?;
    let order = NewOrder::parse(body, state.config.service.max_quantity_per_line)?;
    saga::place_order(&state, &user, order, key).await
}
