//! Follows the products collection's change stream, so that writes made through any replica
//! (or straight in the database) reach this replica's cache: each changed product's entries and
//! the pages the change may have changed are invalidated (an update of nothing but
//! [`STOCK_FIELDS`] is a [`Change::Stock`]), and [`Coverage`](super::cache::Coverage) records
//! how far the stream has caught up, which lets entries outlive the cache's `ttl` (see
//! [`super::cache`]).
//!
//! Only `documentKey`, `operationType` and `updateDescription` are asked for. A poll returning
//! nothing means every write acknowledged before the poll started has been applied. When the
//! stream fails, nothing is vouched for until a new one opens (it starts from then, so entries
//! read before are left to their `ttl`); the driver itself resumes a stream after a transient
//! error without losing events. On a server without change streams (a standalone `mongod`),
//! the cache keeps to its `ttl` and the stream is tried again now and then.
//! `product_cache_change_stream_up` (a gauge on `/metrics`) is 1 while a stream is open.

use std::time::{Duration, Instant};

use bson::{Document, doc};
use mongodb::Collection;
use mongodb::change_stream::event::{ChangeStreamEvent, OperationType};
use tokio_util::sync::CancellationToken;

use super::cache::{Change, ProductCache};
use super::products::STOCK_FIELDS;

/// 1 while a change stream is open, else 0.
const STREAM_UP: &str = "product_cache_change_stream_up";
/// Wait before opening a stream again; doubled after each failure in a row.
const BACKOFF: Duration = Duration::from_millis(500);
/// Longest wait before opening a stream again.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Follows the change stream of `collection` into `cache` until `stop` is cancelled. Each
/// poll waits at most `poll` for news.
pub async fn follow(
    collection: Collection<Document>,
    cache: ProductCache,
    poll: Duration,
    stop: CancellationToken,
) {
    // Failures since a stream last opened.
    let mut failures = 0u32;
    loop {
        let outcome = tokio::select! {
            () = stop.cancelled() => return,
            outcome = follow_one(&collection, &cache, poll, &mut failures) => outcome,
        };
        cache.coverage().lost();
        metrics::gauge!(STREAM_UP).set(0.0);
        match outcome {
            Ok(()) => tracing::info!("product change stream closed; opening another"),
            Err(e) => {
                failures += 1;
                // The first failure in a row is worth a warning; a server that cannot stream
                // changes at all would otherwise repeat it forever.
                if failures == 1 {
                    tracing::warn!(error = %e, "product change stream failed; cached products keep to the ttl until it reopens");
                } else {
                    tracing::debug!(error = %e, failures, "product change stream failed again");
                }
            }
        }
        let backoff = BACKOFF
            .saturating_mul(1 << failures.saturating_sub(1).min(6))
            .min(MAX_BACKOFF);
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
    }
}

/// Opens one stream and applies its events until it fails or closes.
async fn follow_one(
    collection: &Collection<Document>,
    cache: &ProductCache,
    poll: Duration,
    failures: &mut u32,
) -> mongodb::error::Result<()> {
    let mut stream = collection
        .watch()
        .pipeline([
            doc! {"$project": {"operationType": 1, "documentKey": 1, "updateDescription": 1}},
        ])
        .max_await_time(poll)
        .await?;
    let coverage = cache.coverage();
    coverage.opened(Instant::now());
    metrics::gauge!(STREAM_UP).set(1.0);
    *failures = 0;
    tracing::info!("following the product change stream");
    while stream.is_alive() {
        let started = Instant::now();
        match stream.next_if_any().await? {
            Some(event) => {
                if !apply(cache, &event) {
                    return Ok(());
                }
            }
            None => coverage.caught_up(started),
        }
    }
    Ok(())
}

/// What an insert, update, replace or delete event may have changed: an update that set only
/// [`STOCK_FIELDS`] changed the stock alone.
fn change(event: &ChangeStreamEvent<Document>) -> Change {
    let stock_only = event.operation_type == OperationType::Update
        && event.update_description.as_ref().is_some_and(|update| {
            update.removed_fields.is_empty()
                && update.truncated_arrays.as_ref().is_none_or(Vec::is_empty)
                && update
                    .updated_fields
                    .keys()
                    .all(|field| STOCK_FIELDS.contains(&field.as_str()))
        });
    if stock_only {
        Change::Stock
    } else {
        Change::Any
    }
}

/// Invalidates what `event` changed. Returns false for an event that ends the stream's
/// usefulness (the collection dropped or renamed): the caller opens a new one.
fn apply(cache: &ProductCache, event: &ChangeStreamEvent<Document>) -> bool {
    match event.operation_type {
        OperationType::Insert
        | OperationType::Update
        | OperationType::Replace
        | OperationType::Delete => {
            match event
                .document_key
                .as_ref()
                .and_then(|key| key.get_object_id("_id").ok())
            {
                Some(id) => cache.invalidate(id, change(event)),
                // Not a product id, so no cached product: the pages may still show it.
                None => {
                    cache.invalidate_pages();
                }
            }
            true
        }
        _ => false,
    }
}
