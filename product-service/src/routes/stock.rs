//! `POST /products/{id}/stock`: an atomic relative adjustment.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::value::RawValue;
use shared::auth::AuthUser;
use shared::extract::{Json, Path};
use shared::{Problem, Result};
use utoipa::ToSchema;

use super::products::{explain, product_id, product_response};
use crate::domain::MAX_STOCK;
use crate::domain::fields::parse_integer;
use crate::state::AppState;
use crate::store::Change;

/// Stock adjustment.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StockDelta {
    /// Units to add (negative to remove), at most 1000000000 either way.
    #[schema(value_type = i64, minimum = -1_000_000_000, maximum = 1_000_000_000)]
    pub delta: Box<RawValue>,
}

/// Adds `delta` to the stock in one conditional update; a result below 0 is refused with 409 and
/// changes nothing. No If-Match needed: concurrent adjustments all apply.
#[utoipa::path(
    post, path = "/products/{id}/stock", tag = "products", operation_id = "adjustStock", security(("bearer" = [])),
    params(("id" = String, Path, description = "Product id")),
    request_body = StockDelta,
    responses(
        (status = 200, description = "The product after the adjustment", body = super::views::ProductView),
        (status = 401, description = "No valid token", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not the owner or an admin", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such product", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
        (status = 400, description = "Malformed JSON", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "The stock would leave 0..=1000000000", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Invalid delta", body = shared::problem::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn adjust(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(body): Json<StockDelta>,
) -> Result<Response> {
    let id = product_id(&id)?;
    let delta = parse_integer("delta", body.delta.get(), MAX_STOCK)
        .map_err(|e| Problem::validation(vec![e]))?;
    let adjusted = state
        .products
        .adjust_stock(id, delta, user.owner_filter(), MAX_STOCK)
        .await?;
    state.cache.invalidate(id, Change::Stock);
    match adjusted {
        Some(product) => {
            tracing::info!(product.id = %id, delta, stock = product.stock, "stock adjusted");
            Ok(product_response(StatusCode::OK, &product, &state))
        }
        None => Err(explain(&state, id, &user)
            .await?
            .unwrap_or_else(|| {
                Problem::conflict("the adjustment would take the stock below 0 or above 1000000000")
            })
            .into()),
    }
}
