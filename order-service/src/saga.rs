//! The order saga: record the order `pending`, reserve its stock at product-service, then mark it
//! `confirmed`; compensate when the reservation fails. Also cancellation, which gives the stock
//! back. Every step is a conditional update, so a crash at any point leaves an order that the
//! [`crate::recovery`] task can settle.

pub mod answers;
pub mod cancel;
pub mod keys;
pub mod pricing;

use axum::response::Response;
use bson::{DateTime, oid::ObjectId};
use shared::Result;
use shared::auth::AuthUser;
use tracing::Instrument;

use crate::domain::{IdempotencyKey, NewOrder, OrderStatus};
use crate::products::{ProductError, Reservation};
use crate::state::AppState;
use crate::store::{Order, OrderLine};
use answers::{
    Outcome, count, created, insufficient_stock, replayable, unavailable, unknown_product,
};

pub use cancel::cancel_order;
pub use pricing::priced_lines;

/// The order `id` if `user` may see it: their own, or any for an admin. Anyone else's is a 404,
/// exactly as a missing id, so order ids reveal nothing.
pub async fn owned_order(state: &AppState, user: &AuthUser, id: ObjectId) -> Result<Order> {
    state
        .orders
        .find(id, user.owner_filter())
        .await?
        .ok_or_else(|| shared::Problem::not_found("no such order").into())
}

/// `POST /orders`: places `order` for `user`, at most once per `key`.
pub async fn place_order(
    state: &AppState,
    user: &AuthUser,
    order: NewOrder,
    key: Option<IdempotencyKey>,
) -> Result<Response> {
    let order_id = ObjectId::new();
    if let Some(key) = &key
        && let Some(answer) = keys::claim(state, user, key, &order.fingerprint(), order_id).await?
    {
        return Ok(answer);
    }
    let outcome = run(state, user, &order, order_id).await;
    if let Some(key) = &key {
        // A transient 503 frees the key for a retry (its order is `failed`, holding nothing). An
        // error (the database failing midway) leaves the key unfinished: the order may still get
        // confirmed by recovery, and a retry must then replay it rather than order again.
        let stored = match &outcome {
            Ok(o) if o.replayable => state.idempotency.finish(&user.id, key, &o.response).await,
            Ok(_) => state.idempotency.abandon(&user.id, key).await,
            Err(_) => Ok(()),
        };
        if let Err(e) = stored {
            tracing::error!(error = %e, order.id = %order_id, "recording the idempotency key's outcome failed");
        }
    }
    let outcome = outcome?;
    Ok(answers::respond(&outcome))
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
        // The request's id and trace go with the release, though it outlives the request.
        let state = state.clone();
        let release =
            async move { release(&state, order_id).await }.instrument(tracing::Span::current());
        match shared::context::RequestContext::current() {
            Some(context) => tokio::spawn(context.scope(release)),
            None => tokio::spawn(release),
        };
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
