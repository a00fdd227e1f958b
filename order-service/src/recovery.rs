//! Recovery: settles what a crash or an outage left half-done, so no stock leaks.
//!
//! - An order left `pending` past the grace period (the process died between reserving and
//!   confirming) is settled against its reservation at product-service: still reserved ->
//!   `confirmed`; released -> `failed`; never reserved -> released (leaving a tombstone, so a
//!   reservation still in flight is refused) and `failed`.
//! - A `failed` or `cancelled` order whose stock release did not go through is released again.
//!
//! Each order is claimed with an atomic lease (`findOneAndUpdate` on `lease_until`), and settled
//! with updates conditional on that lease, so several replicas never settle the same order twice.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::domain::OrderStatus;
use crate::products::ProductError;
use crate::saga::{priced_lines, release};
use crate::state::AppState;
use crate::store::Order;

/// Most orders settled per pass and kind, so one pass stays short.
const BATCH: usize = 50;
/// A release is retried only after the order has not changed for this long (the request that
/// failed or cancelled it is releasing it itself right now).
const RELEASE_QUIET: Duration = Duration::from_secs(2);

/// Runs recovery passes every `ORDER_RECOVERY_INTERVAL_MS` until `stop` is cancelled.
pub async fn run(state: AppState, stop: CancellationToken) {
    let owner = uuid::Uuid::new_v4().to_string();
    let interval = state.config.service.recovery_interval();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        if let Err(e) = run_once(&state, &owner).await {
            tracing::warn!(error = %e, "recovery pass failed; retrying at the next interval");
        }
    }
}

/// One pass: settles stale pending orders, then retries outstanding releases. Returns how many
/// orders it handled.
pub async fn run_once(state: &AppState, owner: &str) -> mongodb::error::Result<usize> {
    let settings = &state.config.service;
    let (grace, lease) = (settings.recovery_grace(), settings.recovery_lease());
    let mut handled = 0;
    for _ in 0..BATCH {
        let Some(order) = state
            .orders
            .claim_stale_pending(grace, lease, owner)
            .await?
        else {
            break;
        };
        settle_pending(state, &order, owner).await?;
        handled += 1;
    }
    for _ in 0..BATCH {
        let Some(order) = state
            .orders
            .claim_release(RELEASE_QUIET, lease, owner)
            .await?
        else {
            break;
        };
        tracing::info!(order.id = %order.id, status = order.status.as_str(), "retrying the release of an order's stock");
        release(state, order.id).await;
        handled += 1;
    }
    Ok(handled)
}

async fn settle_pending(
    state: &AppState,
    order: &Order,
    owner: &str,
) -> mongodb::error::Result<()> {
    let id = order.id.to_hex();
    let settled = match state.products.get(&id).await {
        Ok(reservation) if reservation.is_reserved() => {
            match priced_lines(&order.items, &reservation) {
                Some((lines, total)) => {
                    let currency = reservation
                        .currency
                        .clone()
                        .unwrap_or_else(|| order.currency.clone());
                    state
                        .orders
                        .confirm(order.id, &lines, total.minor(), &currency, Some(owner))
                        .await?
                }
                None => {
                    tracing::error!(order.id = %id, "the reservation does not match the order; releasing it");
                    state.orders.fail(order.id, true, Some(owner)).await?
                }
            }
        }
        Ok(_released) => state.orders.fail(order.id, false, Some(owner)).await?,
        Err(ProductError::NotFound) => match state.products.release(&id).await {
            Ok(()) => state.orders.fail(order.id, false, Some(owner)).await?,
            Err(e) => {
                tracing::warn!(order.id = %id, error = %e, "could not release; the order stays pending");
                None
            }
        },
        Err(e) => {
            tracing::warn!(order.id = %id, error = %e, "could not settle; the order stays pending");
            None
        }
    };
    if let Some(settled) = settled {
        let outcome = settled.status.as_str();
        metrics::counter!("orders_recovered_total", "outcome" => outcome).increment(1);
        tracing::info!(order.id = %id, outcome, "pending order settled by recovery");
        if settled.status == OrderStatus::Failed && settled.release_pending {
            release(state, settled.id).await;
        }
    }
    Ok(())
}
