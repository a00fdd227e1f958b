//! A short-lived cache of single products (`GET /products/{id}`) and of list pages
//! (`GET /products`).
//!
//! Entries live at most `ttl`, which configuration caps at one second, so no replica serves a
//! product older than the last write acknowledged by any replica for longer than that. Writes
//! through this replica invalidate at once (the product, and every cached page), and a read that
//! started before a write is not cached, so a client never reads its own write back stale.
//! Conditional writes (`If-Match`) always compare against the database, never the cache.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use bson::oid::ObjectId;
use moka::sync::Cache;

use super::{ProductDoc, Products};

/// The longest an entry may live.
pub const MAX_TTL: Duration = Duration::from_secs(1);

/// Cache of live products by id.
#[derive(Clone)]
pub struct ProductCache {
    entries: Option<Cache<ObjectId, Arc<ProductDoc>>>,
    /// When each recently written product was last written by this replica.
    writes: Cache<ObjectId, Instant>,
    /// Serialised list pages by query, with the write generation they were read at.
    pages: Option<Cache<String, (u64, Bytes)>>,
    /// Incremented by every write through this replica; pages of an older generation are stale.
    generation: Arc<AtomicU64>,
}

impl ProductCache {
    /// A cache keeping entries `ttl` (at most [`MAX_TTL`]; zero disables it).
    pub fn new(ttl: Duration, capacity: u64) -> Self {
        let ttl = ttl.min(MAX_TTL);
        Self {
            entries: (!ttl.is_zero()).then(|| {
                Cache::builder()
                    .max_capacity(capacity)
                    .time_to_live(ttl)
                    .build()
            }),
            writes: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(MAX_TTL * 2)
                .build(),
            pages: (!ttl.is_zero()).then(|| {
                Cache::builder()
                    .max_capacity(capacity / 10 + 1)
                    .time_to_live(ttl)
                    .build()
            }),
            generation: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The live product, from the cache when fresh, else from the database.
    pub async fn get(
        &self,
        id: ObjectId,
        products: &Products,
    ) -> mongodb::error::Result<Option<Arc<ProductDoc>>> {
        let Some(entries) = &self.entries else {
            return Ok(products.find_live(id).await?.map(Arc::new));
        };
        if let Some(hit) = entries.get(&id) {
            return Ok(Some(hit));
        }
        let started = Instant::now();
        let loaded = products.find_live(id).await?.map(Arc::new);
        if let Some(product) = &loaded {
            let written_since = self.writes.get(&id).is_some_and(|at| at >= started);
            if !written_since {
                entries.insert(id, product.clone());
            }
        }
        Ok(loaded)
    }

    /// Forgets a product, and every cached page, after a write to it.
    pub fn invalidate(&self, id: ObjectId) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.writes.insert(id, Instant::now());
        if let Some(entries) = &self.entries {
            entries.invalidate(&id);
        }
    }

    /// The current write generation: read it before querying a page, store the page with it.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// A cached page for `key`, unless a write happened since it was read.
    pub fn page(&self, key: &str) -> Option<Bytes> {
        let (generation, page) = self.pages.as_ref()?.get(key)?;
        (generation == self.generation()).then_some(page)
    }

    /// Caches a page read at `generation`, unless a write happened meanwhile.
    pub fn store_page(&self, key: String, generation: u64, page: Bytes) {
        if let Some(pages) = &self.pages
            && generation == self.generation()
        {
            pages.insert(key, (generation, page));
        }
    }
}
