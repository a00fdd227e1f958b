//! A short-lived cache of single products (`GET /products/{id}`) and of list pages
//! (`GET /products`), both kept as the JSON they are answered with, so a hit costs no
//! serialisation.
//!
//! Freshness: an entry expires `ttl` after its database read *started* (configuration caps `ttl`
//! at one second), so no replica serves a product older than the last write acknowledged by any
//! replica for longer than that. Every write through this replica takes the next number of a
//! write sequence: pages are keyed by the latest number, and each product by the number of its
//! own latest write, so the entries read before a write are never served again (not even by a
//! load that was already running when the write happened) — a client never reads its own write
//! back stale — while a write to one product leaves the other products cached. Conditional
//! writes (`If-Match`) always compare against the database, never the cache.
//!
//! Cost: concurrent misses for one key share a single database read, and an entry read again
//! past half its life is refreshed in the background while it goes on being served (it is
//! still within its bound), so keys in steady demand do not make requests wait for the
//! database every time they expire.
//!
//! Monitoring: `product_cache_lookups_total{cache="product"|"page", result="hit"|"miss"}` counts
//! the lookups, and `product_cache_refreshes_total{cache}` the background refreshes started.

use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use bson::oid::ObjectId;
use moka::Expiry;
use moka::future::Cache;

/// Lookups by cache and result.
const LOOKUPS: &str = "product_cache_lookups_total";
/// Background refreshes started, by cache.
const REFRESHES: &str = "product_cache_refreshes_total";

/// The longest an entry may live.
pub const MAX_TTL: Duration = Duration::from_secs(1);

/// A product as it is answered: its version (the ETag) and its JSON body.
#[derive(Clone, Debug)]
pub struct RenderedProduct {
    /// The product's version.
    pub version: i64,
    /// The serialised product view.
    pub body: Bytes,
}

/// A cached value with the time its database read started.
#[derive(Clone)]
struct Entry<V> {
    value: V,
    read_at: Instant,
    /// Set by the first hit that starts a background refresh of this entry.
    refreshing: Arc<AtomicBool>,
}

/// Entries expire `ttl` after their read started, not after they were stored.
struct FromRead(Duration);

impl<K, V> Expiry<K, Entry<V>> for FromRead {
    fn expire_after_create(&self, _: &K, entry: &Entry<V>, now: Instant) -> Option<Duration> {
        Some(
            self.0
                .saturating_sub(now.saturating_duration_since(entry.read_at)),
        )
    }

    fn expire_after_update(
        &self,
        _: &K,
        entry: &Entry<V>,
        now: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(
            self.0
                .saturating_sub(now.saturating_duration_since(entry.read_at)),
        )
    }
}

/// Cached products: by (number of the product's latest write, id); `None` for an id with no live product.
type ProductEntries = Cache<(u64, ObjectId), Entry<Option<RenderedProduct>>>;

/// Cache of live products by id and of serialised list pages by query.
#[derive(Clone)]
pub struct ProductCache {
    products: Option<ProductEntries>,
    pages: Option<Cache<(u64, String), Entry<Bytes>>>,
    /// The sequence number of each product's latest write through this replica, kept twice the
    /// ttl: by the time a number is forgotten (and the product's key falls back to 0), every
    /// entry read before that write has expired. Never evicted for room, which could bring a
    /// stale entry back; writes are few enough to keep them all for that long.
    written: Option<moka::sync::Cache<ObjectId, u64>>,
    ttl: Duration,
    /// Advanced by every write through this replica.
    sequence: Arc<AtomicU64>,
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
                    .expire_after(FromRead(ttl))
                    .build()
            }),
            pages: enabled.then(|| {
                Cache::builder()
                    .max_capacity(capacity / 10 + 1)
                    .expire_after(FromRead(ttl))
                    .build()
            }),
            written: enabled.then(|| moka::sync::Cache::builder().time_to_live(ttl * 2).build()),
            ttl,
            sequence: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The number of the latest write through this replica, which keys pages.
    fn latest_write(&self) -> u64 {
        self.sequence.load(Ordering::SeqCst)
    }

    /// The number of the latest write to `id` through this replica, which keys the product.
    fn latest_write_to(&self, id: ObjectId) -> u64 {
        self.written
            .as_ref()
            .and_then(|written| written.get(&id))
            .unwrap_or(0)
    }

    /// The live product with `id`, from the cache when fresh, else from `load`.
    pub async fn product<L, F>(
        &self,
        id: ObjectId,
        load: L,
    ) -> mongodb::error::Result<Option<RenderedProduct>>
    where
        L: FnOnce() -> F,
        F: Future<Output = mongodb::error::Result<Option<RenderedProduct>>> + Send + 'static,
    {
        match &self.products {
            None => load().await,
            Some(cache) => {
                let key = (self.latest_write_to(id), id);
                cached("product", cache, key, self.ttl, load).await
            }
        }
    }

    /// The serialised page for `query` (any stable description of it), from the cache when
    /// fresh, else from `load`.
    pub async fn page<L, F>(&self, query: String, load: L) -> mongodb::error::Result<Bytes>
    where
        L: FnOnce() -> F,
        F: Future<Output = mongodb::error::Result<Bytes>> + Send + 'static,
    {
        match &self.pages {
            None => load().await,
            Some(cache) => {
                cached("page", cache, (self.latest_write(), query), self.ttl, load).await
            }
        }
    }

    /// After a write to `id` is acknowledged: makes the product's entries and every page read
    /// before now unreachable.
    pub fn invalidate(&self, id: ObjectId) {
        let number = self.sequence.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(written) = &self.written {
            written.insert(id, number);
        }
    }
}

/// The fresh entry for `key`, else the value of `load()`, which concurrent misses of `key`
/// share. A hit on an entry past half its life also refreshes it in the background with
/// `load()`, once. `name` labels the lookup in the metrics.
async fn cached<K, V, L, F>(
    name: &'static str,
    cache: &Cache<K, Entry<V>>,
    key: K,
    ttl: Duration,
    load: L,
) -> mongodb::error::Result<V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    L: FnOnce() -> F,
    F: Future<Output = mongodb::error::Result<V>> + Send + 'static,
{
    if let Some(entry) = cache.get(&key).await {
        metrics::counter!(LOOKUPS, "cache" => name, "result" => "hit").increment(1);
        if entry.read_at.elapsed() >= ttl / 2 && !entry.refreshing.swap(true, Ordering::AcqRel) {
            metrics::counter!(REFRESHES, "cache" => name).increment(1);
            let (cache, fresh) = (cache.clone(), read(load()));
            tokio::spawn(async move {
                // On failure the entry simply expires, and the next request reads again.
                if let Ok(fresh) = fresh.await {
                    cache.insert(key, fresh).await;
                }
            });
        }
        return Ok(entry.value);
    }
    metrics::counter!(LOOKUPS, "cache" => name, "result" => "miss").increment(1);
    cache
        .try_get_with(key, read(load()))
        .await
        .map(|entry| entry.value)
        .map_err(|e: Arc<mongodb::error::Error>| e.as_ref().clone())
}

/// Runs `load`, noting when the read started.
async fn read<V, F>(load: F) -> mongodb::error::Result<Entry<V>>
where
    F: Future<Output = mongodb::error::Result<V>>,
{
    let read_at = Instant::now();
    Ok(Entry {
        value: load.await?,
        read_at,
        refreshing: Arc::default(),
    })
}
