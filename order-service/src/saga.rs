//! The order saga: record the order `pending`, reserve its stock at product-service, then mark it
//! `confirmed`; compensate when the reservation fails. Also cancellation, which gives the stock
//! back. Every step is a conditional update, so a crash at any point leaves an order that the
//! [`crate::recovery`] task can settle.

use axum::response::{IntoResponse, Response};
use bson::{DateTime, oid::ObjectId};
use http::{HeaderValue, StatusCode, header};
use serde_json::Value;
use shared::auth::AuthUser;
use shared::{ApiError, FieldError, Problem, Result};

use crate::domain::{IdempotencyKey, Money, NewOrder, OrderStatus};
use crate::products::{ProductError, Reservation};
use crate::routes::orders::OrderView;
use crate::state::AppState;
use crate::store::{Begin, Order, OrderLine, StoredResponse};

/// Problem type: not enough stock for some line.
pub const INSUFFICIENT_STOCK: &str = "urn:shop:problem:insufficient-stock";
/// Problem type: an `Idempotency-Key` reused with a different body.
pub const IDEMPOTENCY_MISMATCH: &str = "urn:shop:problem:idempotency-key-mismatch";
/// Problem type: a request with the same `Idempotency-Key` is still running.
pub const IDEMPOTENCY_IN_FLIGHT: &str = "urn:shop:problem:idempotency-key-in-flight";
/// Problem type: the order cannot go to the requested state from its current one.
pub const INVALID_STATE: &str = "urn:shop:problem:invalid-order-state";

/// The outcome of running the saga once.
struct Outcome {
    /// The answer.
    response: StoredResponse,
    /// Extra headers not stored for replays.
    retry_after: Option<u64>,
    /// Whether a replay under the same key should get this same answer (not for transient 503s).
    replayable: bool,
}

/// `POST /orders`: places `order` for `user`, at most once per `key`.
pub async fn place_order(
    state: &AppState,
    user: &AuthUser,
    order: NewOrder,
    key: Option<IdempotencyKey>,
) -> Result<Response> {
    let order_id = ObjectId::new();
    if let Some(key) = &key {
        let fingerprint = order.fingerprint();
        // Two rounds: a key left by a request that died is forgotten once, then claimed.
        let mut round = 0;
        loop {
            round += 1;
            let begun = state
                .idempotency
                .begin(&user.id, key, &fingerprint, order_id)
                .await?;
            match begun {
                Begin::Started => break,
                Begin::Replay(stored) => return Ok(replay(&stored)),
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
                    // The request that claimed the key died (cut off by the request
                    // timeout, or its process crashed): answer what its order became, or let
                    // this request run in its place. A still-pending order stays 409 until
                    // recovery settles it.
                    if round == 1 && is_stale(state, started_at) {
                        if let Some(stored) = settled_answer(state, earlier).await? {
                            state.idempotency.finish(&user.id, key, &stored).await?;
                            return Ok(replay(&stored));
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
    let outcome = run(state, user, &order, order_id).await;
    if let Some(key) = &key {
        let stored = match &outcome {
            Ok(o) if o.replayable => state.idempotency.finish(&user.id, key, &o.response).await,
            _ => state.idempotency.abandon(&user.id, key).await,
        };
        if let Err(e) = stored {
            tracing::error!(error = %e, order.id = %order_id, "recording the idempotency key's outcome failed");
        }
    }
    let outcome = outcome?;
    let mut response = to_response(&outcome.response);
    if let Some(secs) = outcome.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    }
    Ok(response)
}

/// A stored answer replayed, marked as such.
fn replay(stored: &StoredResponse) -> Response {
    metrics::counter!("orders_created_total", "outcome" => "replayed").increment(1);
    let mut response = to_response(stored);
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
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

/// The 201 of a confirmed order.
fn created(order: &Order) -> Result<StoredResponse> {
    let body = serde_json::to_string(&OrderView::from(order)).map_err(anyhow::Error::from)?;
    Ok(StoredResponse {
        status: StatusCode::CREATED.as_u16(),
        content_type: "application/json".to_owned(),
        body,
        location: Some(format!("/orders/{}", order.id.to_hex())),
    })
}

/// The saga proper.
async fn run(
    state: &AppState,
    user: &AuthUser,
    request: &NewOrder,
    order_id: ObjectId,
) -> Result<Outcome> {
    let now = DateTime::now();
    let order = Order {
        id: order_id,
        user_id: user.id.clone(),
        status: OrderStatus::Pending,
        items: request
            .items()
            .iter()
            .map(|(product_id, quantity)| OrderLine {
                product_id: product_id.clone(),
                quantity: quantity.get(),
                name: None,
                unit_price_minor: None,
                line_total_minor: None,
            })
            .collect(),
        total_minor: None,
        currency: state.config.service.currency.clone(),
        created_at: now,
        updated_at: now,
        release_pending: false,
        lease_until: DateTime::from_millis(0),
        lease_owner: None,
    };
    state.orders.insert(&order).await?;
    let lines: Vec<(String, u32)> = order
        .items
        .iter()
        .map(|l| (l.product_id.clone(), l.quantity))
        .collect();
    let reserved = state.products.reserve(&order_id.to_hex(), &lines).await;
    match reserved {
        Ok(reservation) => confirm(state, &order, &reservation).await,
        Err(ProductError::InsufficientStock(problem)) => {
            state.orders.delete_pending(order_id).await?;
            count("insufficient_stock");
            Ok(replayable(insufficient_stock(&problem)))
        }
        Err(ProductError::UnknownProduct(problem)) => {
            state.orders.delete_pending(order_id).await?;
            count("unknown_product");
            Ok(replayable(unknown_product(&problem)))
        }
        Err(ProductError::Unavailable {
            reason,
            maybe_applied,
        }) => {
            tracing::warn!(order.id = %order_id, reason = %reason, "reservation failed; the order fails");
            fail(state, order_id, maybe_applied).await
        }
        Err(other) => {
            tracing::error!(order.id = %order_id, error = %other, "unexpected reservation answer; the order fails");
            fail(state, order_id, true).await
        }
    }
}

/// Marks the order `confirmed` with the reservation's names and prices.
async fn confirm(state: &AppState, order: &Order, reservation: &Reservation) -> Result<Outcome> {
    let Some((lines, total)) = priced_lines(&order.items, reservation) else {
        tracing::error!(order.id = %order.id, "the reservation does not match the order; releasing it");
        return fail(state, order.id, true).await;
    };
    let currency = reservation
        .currency
        .clone()
        .unwrap_or_else(|| state.config.service.currency.clone());
    let confirmed = state
        .orders
        .confirm(order.id, &lines, total.minor(), &currency, None)
        .await?;
    let confirmed = match confirmed {
        Some(o) => o,
        // Settled by someone else in the meantime: answer what it became.
        None => match state.orders.find(order.id, None).await? {
            Some(o) if o.status == OrderStatus::Confirmed => o,
            _ => return Ok(unavailable(state, "the order could not be completed")),
        },
    };
    count("confirmed");
    tracing::info!(order.id = %confirmed.id, user.id = %confirmed.user_id, total = %total, "order confirmed");
    Ok(replayable(created(&confirmed)?))
}

/// Compensation: the order ends `failed`; stock that may have been reserved is released now
/// (in the background, so the client gets its 503 at once) and, should that fail, by recovery.
async fn fail(state: &AppState, order_id: ObjectId, maybe_reserved: bool) -> Result<Outcome> {
    state.orders.fail(order_id, maybe_reserved, None).await?;
    count("unavailable");
    if maybe_reserved {
        let state = state.clone();
        tokio::spawn(async move { release(&state, order_id).await });
    }
    Ok(unavailable(
        state,
        "product-service is unavailable; the order was not placed, retry shortly",
    ))
}

/// Releases the stock of an order marked `release_pending`, and notes it. Failures are left
/// for the recovery task.
pub async fn release(state: &AppState, order_id: ObjectId) -> bool {
    match state.products.release(&order_id.to_hex()).await {
        Ok(()) => match state.orders.release_done(order_id).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(order.id = %order_id, error = %e, "noting the release failed; recovery will repeat it");
                false
            }
        },
        Err(e) => {
            tracing::warn!(order.id = %order_id, error = %e, "releasing stock failed; recovery will retry");
            false
        }
    }
}

/// `POST /orders/{id}/cancel`.
pub async fn cancel_order(state: &AppState, user: &AuthUser, id: ObjectId) -> Result<Order> {
    let owner = (!user.is_admin()).then_some(user.id.as_str());
    if let Some(mut order) = state.orders.cancel(id, owner).await? {
        tracing::info!(order.id = %id, user.id = %user.id, "order cancelled");
        if release(state, id).await {
            order.release_pending = false;
        }
        return Ok(order);
    }
    match state.orders.find(id, owner).await? {
        None => Err(Problem::not_found("no such order").into()),
        Some(order) if order.status == OrderStatus::Cancelled => {
            if order.release_pending {
                release(state, id).await;
            }
            Ok(order)
        }
        Some(order) => Err(ApiError::from(
            Problem::new(
                StatusCode::CONFLICT,
                INVALID_STATE,
                "Order cannot be cancelled",
            )
            .detail(format!(
                "only confirmed orders can be cancelled; this one is {}",
                order.status.as_str()
            )),
        )),
    }
}

/// The order's lines priced from the reservation, and their total; `None` if the reservation
/// does not hold exactly the order's lines or a price is unreadable.
pub fn priced_lines(
    items: &[OrderLine],
    reservation: &Reservation,
) -> Option<(Vec<OrderLine>, Money)> {
    if items.len() != reservation.items.len() {
        return None;
    }
    let mut total = Money::default();
    let mut lines = Vec::with_capacity(items.len());
    for item in items {
        let reserved = reservation
            .items
            .iter()
            .find(|r| r.product_id == item.product_id && r.quantity == item.quantity)?;
        let unit = Money::parse(&reserved.unit_price)?;
        let line_total = unit.times(item.quantity)?;
        total = total.plus(line_total)?;
        lines.push(OrderLine {
            product_id: item.product_id.clone(),
            quantity: item.quantity,
            name: Some(reserved.name.clone()),
            unit_price_minor: Some(unit.minor()),
            line_total_minor: Some(line_total.minor()),
        });
    }
    Some((lines, total))
}

fn count(outcome: &'static str) {
    metrics::counter!("orders_created_total", "outcome" => outcome).increment(1);
}

fn replayable(response: StoredResponse) -> Outcome {
    Outcome {
        response,
        retry_after: None,
        replayable: true,
    }
}

fn unavailable(state: &AppState, detail: &str) -> Outcome {
    let secs = state.config.service.retry_after_secs;
    Outcome {
        response: problem_response(&Problem::unavailable(secs, detail)),
        retry_after: Some(secs),
        replayable: false,
    }
}

/// 409 naming the products short, as product-service reported them.
fn insufficient_stock(upstream: &Value) -> StoredResponse {
    let detail = upstream["detail"]
        .as_str()
        .unwrap_or("not enough stock for some products; nothing was reserved");
    let mut problem = Problem::new(
        StatusCode::CONFLICT,
        INSUFFICIENT_STOCK,
        "Insufficient stock",
    )
    .detail(detail);
    problem = with_upstream_extensions(problem, upstream);
    problem_response(&problem)
}

/// 422 naming the unknown products, as product-service reported them.
fn unknown_product(upstream: &Value) -> StoredResponse {
    let mut errors: Vec<FieldError> = upstream["errors"]
        .as_array()
        .map(|errs| {
            errs.iter()
                .filter_map(|e| {
                    Some(FieldError::new(
                        e["field"].as_str()?,
                        e["message"].as_str().unwrap_or("is not a product"),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    if errors.is_empty() {
        let detail = upstream["detail"]
            .as_str()
            .unwrap_or("names a product that does not exist");
        errors.push(FieldError::new("items", detail));
    }
    problem_response(&with_upstream_extensions(
        Problem::validation(errors),
        upstream,
    ))
}

/// Copies product-service's extension members (e.g. the products concerned).
fn with_upstream_extensions(mut problem: Problem, upstream: &Value) -> Problem {
    const STANDARD: [&str; 7] = [
        "type",
        "title",
        "status",
        "detail",
        "instance",
        "errors",
        "request_id",
    ];
    if let Some(members) = upstream.as_object() {
        for (name, value) in members {
            if !STANDARD.contains(&name.as_str()) {
                problem = problem.extension(name, value);
            }
        }
    }
    problem
}

fn problem_response(problem: &Problem) -> StoredResponse {
    StoredResponse {
        status: problem.status().as_u16(),
        content_type: shared::problem::PROBLEM_JSON.to_owned(),
        body: serde_json::to_string(&problem.body()).unwrap_or_default(),
        location: None,
    }
}

/// The HTTP response of a stored answer.
fn to_response(stored: &StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, stored.body.clone()).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&stored.content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    if let Some(location) = stored
        .location
        .as_deref()
        .and_then(|l| HeaderValue::from_str(l).ok())
    {
        headers.insert(header::LOCATION, location);
    }
    response
}
