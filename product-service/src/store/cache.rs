//! A short-lived cache of single products (`GET /products/{id}`) and of list pages
//! (`GET /products`).
//!
//! Entries live at most `ttl`, which configuration caps at one second, so no replica serves a
//! product older than the last write acknowledged by any replica for longer than that. Every
//! write through this replica moves a generation counter that is part of every key, so the
//! entries read before it are never served again (not even by a load that was already running
//! when the write happened): a client never reads its own write back stale. Concurrent misses
//! for one key share a single database read. Conditional writes (`If-Match`) always compare
//! against the database, never the cache.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use bson::oid::ObjectId;
use moka::future::Cache;

use super::{ProductDoc, Products};

/// The longest an entry may live.
pub const MAX_TTL: Duration = Duration::from_secs(1);

/// Cached products: by (write generation, id); `None` for an id with no live product.
type ProductEntries = Cache<(u64, ObjectId), Option<Arc<ProductDoc>>>;

/// Cache of live products by id and of serialised list pages by query.
#[derive(Clone)]
pub struct ProductCache {
    products: Option<ProductEntries>,
    pages: Option<Cache<(u64, String), Bytes>>,
    /// Incremented by every write through this replica.
    generation: Arc<AtomicU64>,
}

impl ProductCache {
    /// A cache keeping entries `ttl` (at most [`MAX_TTL`]; zero disables it).
    pub fn new(ttl: Duration, capacity: u64) -> Self {
        let ttl = ttl.min(MAX_TTL);
        let enabled = !ttl.is_zero();
        Self {
            products: enabled.then(|| {
                Cache::builder()
                    .max_capacity(capacity)
                    .time_to_live(ttl)
                    .build()
            }),
            pages: enabled.then(|| {
                Cache::builder()
                    .max_capacity(capacity / 10 + 1)
                    .time_to_live(ttl)
                    .build()
            }),
            generation: Arc::new(AtomicU64::new(0)),
        }
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The live product, from the cache when fresh, else from the database.
    pub async fn get(
        &self,
        id: ObjectId,
        products: &Products,
    ) -> mongodb::error::Result<Option<Arc<ProductDoc>>> {
        let load = async move { Ok(products.find_live(id).await?.map(Arc::new)) };
        match &self.products {
            None => load.await,
            Some(cache) => cache
                .try_get_with((self.generation(), id), load)
                .await
                .map_err(|e: Arc<mongodb::error::Error>| e.as_ref().clone()),
        }
    }

    /// The serialised page for `query` (any stable description of it), from the cache when
    /// fresh, else from `load`.
    pub async fn page<F>(&self, query: String, load: F) -> mongodb::error::Result<Bytes>
    where
        F: Future<Output = mongodb::error::Result<Bytes>>,
    {
        match &self.pages {
            None => load.await,
            Some(cache) => cache
                .try_get_with((self.generation(), query), load)
                .await
                .map_err(|e: Arc<mongodb::error::Error>| e.as_ref().clone()),
        }
    }

    /// Makes every entry read before now unreachable, after a write to `_id`.
    pub fn invalidate(&self, _id: ObjectId) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}
