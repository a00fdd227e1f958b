//! `/reservations`: stock reservations for order-service (scope `stock:reserve`).

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;
use shared::auth::{ServiceClient, StockReserve};
use shared::extract::{Json, Path};
use shared::{FieldError, Problem, Result};

use super::views::ReservationView;
use crate::domain::ReservationRequest;
use crate::domain::reservation::ReservationBody;
use crate::state::AppState;
use crate::store::{Change, ReleaseOutcome, ReserveOutcome};

/// Problem type of a reservation refused for lack of stock.
pub const INSUFFICIENT_STOCK: &str = "urn:shop:problem:insufficient-stock";
/// Problem type of an order id reserved with other items, or already released.
pub const RESERVATION_CONFLICT: &str = "urn:shop:problem:reservation-conflict";

const PROBLEM: &str = "application/problem+json";

fn count(outcome: &'static str) {
    metrics::counter!("product_reservations_total", "outcome" => outcome).increment(1);
}

fn busy() -> Problem {
    Problem::unavailable(1, "too many concurrent changes to these products; retry")
}

/// Reserves every line or none, idempotently per `order_id`.
#[utoipa::path(
    post, path = "/reservations", tag = "reservations", operation_id = "reserveStock", security(("bearer" = ["stock:reserve"])),
    request_body = ReservationBody,
    responses(
        (status = 201, description = "Reserved", body = ReservationView,
            links(
                ("GetReservation" = (operation_id = "getReservation", parameters(("order_id" = "$response.body#/order_id")))),
                ("ReleaseReservation" = (operation_id = "releaseReservation", parameters(("order_id" = "$response.body#/order_id")))),
            )),
        (status = 200, description = "The same request was reserved before; nothing moved", body = ReservationView),
        (status = 400, description = "Malformed JSON", body = shared::problem::ProblemBody, content_type = PROBLEM),
        (status = 401, description = "No valid token", body = shared::problem::ProblemBody, content_type = PROBLEM),
        (status = 403, description = "Not a service token with scope stock:reserve", body = shared::problem::ProblemBody, content_type = PROBLEM),
        (status = 409, description = "Insufficient stock (type insufficient-stock, extension `products`), or the order id is taken by other items or released (type reservation-conflict)", body = shared::problem::ProblemBody, content_type = PROBLEM),
        (status = 413, description = "Body too large", body = shared::problem::ProblemBody, content_type = PROBLEM),
        (status = 415, description = "Not JSON", body = shared::problem::ProblemBody, content_type = PROBLEM),
        (status = 422, description = "Invalid lines, or unknown/deleted products", body = shared::problem::ProblemBody, content_type = PROBLEM),
        (status = 503, description = "Too much contention or database unavailable", body = shared::problem::ProblemBody, content_type = PROBLEM),
    )
)]
pub async fn reserve(
    State(state): State<AppState>,
    client: ServiceClient<StockReserve>,
    Json(body): Json<ReservationBody>,
) -> Result<(StatusCode, axum::Json<ReservationView>)> {
    let request = ReservationRequest::parse(body)?;
    let outcome = state
        .reservations
        .reserve(&request, &state.config.service.currency, &client.client_id)
        .await?;
    match outcome {
        ReserveOutcome::Created(reservation) => {
            count("reserved");
            for line in &request.lines {
                if let Some(oid) = line.oid {
                    state.cache.invalidate(oid, Change::Stock);
                }
            }
            tracing::info!(order.id = %reservation.order_id, total_minor = reservation.total_minor, "stock reserved");
            Ok((
                StatusCode::CREATED,
                axum::Json(ReservationView::from(&reservation)),
            ))
        }
        ReserveOutcome::Replayed(reservation) => {
            count("replayed");
            Ok((
                StatusCode::OK,
                axum::Json(ReservationView::from(&reservation)),
            ))
        }
        ReserveOutcome::Conflict(detail) => {
            count("conflict");
            Err(Problem::new(
                StatusCode::CONFLICT,
                RESERVATION_CONFLICT,
                "Reservation conflict",
            )
            .detail(detail)
            .into())
        }
        ReserveOutcome::Short(short) => {
            count("insufficient_stock");
            let names: Vec<&str> = short.iter().map(|(id, _, _)| id.as_str()).collect();
            let products: Vec<_> = short
                .iter()
                .map(|(id, requested, available)| {
                    json!({"product_id": id, "requested": requested, "available": available})
                })
                .collect();
            Err(Problem::new(
                StatusCode::CONFLICT,
                INSUFFICIENT_STOCK,
                "Insufficient stock",
            )
            .detail(format!("not enough stock for: {}", names.join(", ")))
            .extension("products", products)
            .into())
        }
        ReserveOutcome::Unknown(unknown) => {
            count("unknown_product");
            let errors = request
                .lines
                .iter()
                .enumerate()
                .filter(|(_, l)| unknown.contains(&l.product_id))
                .map(|(i, l)| {
                    FieldError::new(
                        format!("items[{i}].product_id"),
                        format!("no such product: {}", l.product_id),
                    )
                })
                .collect();
            Err(Problem::validation(errors)
                .extension("unknown_products", unknown)
                .into())
        }
        ReserveOutcome::Busy => {
            count("busy");
            Err(busy().into())
        }
    }
}

/// A reservation and its status.
#[utoipa::path(
    get, path = "/reservations/{order_id}", tag = "reservations", operation_id = "getReservation", security(("bearer" = ["stock:reserve"])),
    params(("order_id" = String, Path, description = "Order id")),
    responses(
        (status = 200, description = "The reservation", body = ReservationView),
        (status = 401, description = "No valid token", body = shared::problem::ProblemBody, content_type = PROBLEM),
        (status = 403, description = "Not a service token with scope stock:reserve", body = shared::problem::ProblemBody, content_type = PROBLEM),
        (status = 404, description = "Never reserved nor released", body = shared::problem::ProblemBody, content_type = PROBLEM),
    )
)]
pub async fn get_one(
    State(state): State<AppState>,
    _client: ServiceClient<StockReserve>,
    Path(order_id): Path<String>,
) -> Result<axum::Json<ReservationView>> {
    let reservation = state
        .reservations
        .find(&order_id)
        .await?
        .ok_or_else(|| Problem::not_found("no reservation for this order id"))?;
    Ok(axum::Json(ReservationView::from(&reservation)))
}

/// Gives the reserved stock back, exactly once however often it is called; an order id never
/// reserved gets a tombstone so a late reservation for it is refused.
#[utoipa::path(
    delete, path = "/reservations/{order_id}", tag = "reservations", operation_id = "releaseReservation", security(("bearer" = ["stock:reserve"])),
    params(("order_id" = String, Path, description = "Order id")),
    responses(
        (status = 204, description = "Released (now or before)"),
        (status = 401, description = "No valid token", body = shared::problem::ProblemBody, content_type = PROBLEM),
        (status = 403, description = "Not a service token with scope stock:reserve", body = shared::problem::ProblemBody, content_type = PROBLEM),
        (status = 503, description = "Too much contention or database unavailable", body = shared::problem::ProblemBody, content_type = PROBLEM),
    )
)]
pub async fn release(
    State(state): State<AppState>,
    _client: ServiceClient<StockReserve>,
    Path(order_id): Path<String>,
) -> Result<StatusCode> {
    match state.reservations.release(&order_id).await? {
        ReleaseOutcome::Released(product_ids) => {
            count("released");
            for id in product_ids {
                state.cache.invalidate(id, Change::Stock);
            }
            tracing::info!(order.id = %order_id, "reservation released");
            Ok(StatusCode::NO_CONTENT)
        }
        ReleaseOutcome::AlreadyReleased => Ok(StatusCode::NO_CONTENT),
        ReleaseOutcome::Busy => Err(busy().into()),
    }
}
