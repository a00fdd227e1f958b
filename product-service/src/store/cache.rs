//! A cache of single products (`GET /products/{id}`) and of list pages (`GET /products`), both
//! kept as the JSON they are answered with, so a hit costs no serialisation.
//!
//! Freshness: no replica serves a product more than `ttl` (at most one second) older than the
//! last write acknowledged by any replica.
//! - Every write through this replica takes the next number of a write sequence, and each
//!   product is keyed by the number of its own latest write. The entries read before a write are
//!   never served again (not even by a load that was already running when the write happened),
//!   so a client never reads its own write back stale, while a write to one product leaves the
//!   other products cached.
//! - Pages are keyed by the number of the latest write that may have changed which products a
//!   page lists or their order ([`Change::Any`]: a create, an update, a delete). A write of
//!   stock alone ([`Change::Stock`]: reservations, releases, adjustments) cannot move a product
//!   in any order or filter but `in_stock`, so it drops the pages filtered by stock (keyed by the
//!   latest stock write too) and, among the others, only those that list the product: a page
//!   remembers its products and the write number its read started at, and a hit on a page
//!   listing a product written since then is a miss.
//! - Writes through other replicas reach this one through the products collection's change
//!   stream ([`super::watch`]), which invalidates what they changed the same way. The stream
//!   vouches for the entries read after it opened up to the start of its latest empty poll: every
//!   write acknowledged before that instant has been applied. Such an entry may be served until
//!   `ttl` after that instant (and never beyond `max_age`), so entries live on while the stream
//!   keeps up, and lapse within `ttl` of the stream falling behind or failing.
//! - Without the stream's word, an entry expires `ttl` after its database read *started*.
//!
//! Conditional writes (`If-Match`) always compare against the database, never the cache.
//!
//! Cost: concurrent misses for one key share a single database read, and an entry read again
//! when less than half of `ttl` is left of its life is refreshed in the background while it goes
//! on being served (it is still within its bound), so keys in steady demand do not make requests
//! wait for the database every time they expire.
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

/// The most a served entry may lag the last write acknowledged by any replica.
pub const MAX_TTL: Duration = Duration::from_secs(1);

/// A product as it is answered: its version (the ETag) and its JSON body.
#[derive(Clone, Debug)]
pub struct RenderedProduct {
    /// The product's version.
    pub version: i64,
    /// The serialised product view.
    pub body: Bytes,
}

/// What a write may have changed, for the pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Only the stock (with the version and timestamps that go with it).
    Stock,
    /// Anything: which products pages list and in what order.
    Any,
}

/// A serialised page and what it was read from.
#[derive(Clone)]
struct Page {
    body: Bytes,
    /// The products it lists.
    ids: Arc<[ObjectId]>,
    /// The number of the latest write when its read started.
    read_after: u64,
}

/// A page's database read, under way.
type PageRead = std::pin::Pin<Box<dyn Future<Output = mongodb::error::Result<Page>> + Send>>;

/// Pages by (latest [`Change::Any`] write, latest stock write for stock-filtered pages else 0,
/// query).
type PageEntries = Cache<(u64, u64, String), Entry<Page>>;

/// A cached value with the time its database read started.
#[derive(Clone)]
struct Entry<V> {
    value: V,
    read_at: Instant,
    /// Set by the first hit that starts a background refresh of this entry.
    refreshing: Arc<AtomicBool>,
}

/// When entries must stop being served.
struct Lifetime {
    ttl: Duration,
    max_age: Duration,
    coverage: Arc<Coverage>,
}

impl Lifetime {
    /// The last instant at which an entry whose read started at `read_at` may be served:
    /// `ttl` after the read, or later while the change stream vouches for it.
    fn deadline(&self, read_at: Instant) -> Instant {
        let own = read_at + self.ttl;
        match self.coverage.vouched_until(read_at, self.ttl) {
            Some(vouched) => own.max(vouched.min(read_at + self.max_age)),
            None => own,
        }
    }

    fn remaining<V>(&self, entry: &Entry<V>, now: Instant) -> Option<Duration> {
        Some(self.deadline(entry.read_at).saturating_duration_since(now))
    }
}

/// Entries expire at their [`Lifetime::deadline`], which every read computes anew.
struct Expires(Arc<Lifetime>);

impl<K, V> Expiry<K, Entry<V>> for Expires {
    fn expire_after_create(&self, _: &K, entry: &Entry<V>, now: Instant) -> Option<Duration> {
        self.0.remaining(entry, now)
    }

    fn expire_after_read(
        &self,
        _: &K,
        entry: &Entry<V>,
        now: Instant,
        _: Option<Duration>,
        _: Instant,
    ) -> Option<Duration> {
        self.0.remaining(entry, now)
    }

    fn expire_after_update(
        &self,
        _: &K,
        entry: &Entry<V>,
        now: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        self.0.remaining(entry, now)
    }
}

/// What the products collection's change stream vouches for: it opened at `since`, and every
/// write acknowledged before `caught_up` has invalidated what it changed. Both are nanoseconds
/// after `base`; `since` is `u64::MAX` while no stream is open.
pub struct Coverage {
    base: Instant,
    since: AtomicU64,
    caught_up: AtomicU64,
}

impl Coverage {
    fn new() -> Self {
        Self {
            base: Instant::now(),
            since: AtomicU64::new(u64::MAX),
            caught_up: AtomicU64::new(0),
        }
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX - 1)
    }

    /// A stream was opened (its `watch` had returned) at `at`: it will deliver every write
    /// acknowledged after that; entries read from `at` on reflect the earlier ones.
    pub fn opened(&self, at: Instant) {
        self.caught_up.store(0, Ordering::SeqCst);
        self.since.store(self.nanos(at), Ordering::SeqCst);
    }

    /// A poll of the stream that started at `at` found nothing new after every event before it
    /// had been applied.
    pub fn caught_up(&self, at: Instant) {
        self.caught_up.fetch_max(self.nanos(at), Ordering::SeqCst);
    }

    /// The stream failed or closed: nothing is vouched for until another one opens.
    pub fn lost(&self) {
        self.since.store(u64::MAX, Ordering::SeqCst);
    }

    /// Until when the stream vouches for an entry whose read started at `read_at`, if at all.
    fn vouched_until(&self, read_at: Instant, ttl: Duration) -> Option<Instant> {
        let since = self.since.load(Ordering::SeqCst);
        let caught_up = self.caught_up.load(Ordering::SeqCst);
        // A `caught_up` older than `since` belongs to an earlier stream.
        (since != u64::MAX && caught_up >= since && self.nanos(read_at) >= since)
            .then(|| self.base + Duration::from_nanos(caught_up) + ttl)
    }
}

/// Cached products: by (number of the product's latest write, id); `None` for an id with no live product.
type ProductEntries = Cache<(u64, ObjectId), Entry<Option<RenderedProduct>>>;

/// Cache of live products by id and of serialised list pages by query.
#[derive(Clone)]
pub struct ProductCache {
    products: Option<ProductEntries>,
    pages: Option<PageEntries>,
    /// The sequence number of each product's latest write, kept as long as an entry can live
    /// (plus `ttl`): by the time a number is forgotten (and the product's key falls back to 0),
    /// every entry read before that write has expired. Never evicted for room, which could bring
    /// a stale entry back; writes are few enough to keep them all for that long.
    written: Option<moka::sync::Cache<ObjectId, u64>>,
    lifetime: Arc<Lifetime>,
    /// Advanced by every write through this replica and every write the change stream reports.
    sequence: Arc<AtomicU64>,
    /// The number of the latest write that may have changed any page ([`Change::Any`]).
    reordered: Arc<AtomicU64>,
    /// The number of the latest write of stock.
    restocked: Arc<AtomicU64>,
}

impl ProductCache {
    /// A cache whose entries live `ttl` (at most [`MAX_TTL`]; zero disables it), or up to
    /// `max_age` while the change stream vouches for them, `capacity` products at most.
    pub fn new(ttl: Duration, max_age: Duration, capacity: u64) -> Self {
        let ttl = ttl.min(MAX_TTL);
        let max_age = max_age.max(ttl);
        let enabled = !ttl.is_zero();
        let lifetime = Arc::new(Lifetime {
            ttl,
            max_age,
            coverage: Arc::new(Coverage::new()),
        });
        Self {
            products: enabled.then(|| {
                Cache::builder()
                    .max_capacity(capacity)
                    .expire_after(Expires(lifetime.clone()))
                    .build()
            }),
            pages: enabled.then(|| {
                Cache::builder()
                    .max_capacity(capacity / 10 + 1)
                    .expire_after(Expires(lifetime.clone()))
                    .build()
            }),
            written: enabled.then(|| {
                moka::sync::Cache::builder()
                    .time_to_live(max_age + ttl)
                    .build()
            }),
            lifetime,
            sequence: Arc::new(AtomicU64::new(0)),
            reordered: Arc::new(AtomicU64::new(0)),
            restocked: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Whether the cache is on (a ttl above zero).
    pub fn enabled(&self) -> bool {
        self.products.is_some()
    }

    /// What the change stream vouches for; [`super::watch`] keeps it.
    pub fn coverage(&self) -> &Coverage {
        &self.lifetime.coverage
    }

    /// The number of the latest write through this replica or reported by the change stream.
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
                cached("product", cache, key, &self.lifetime, load).await
            }
        }
    }

    /// The serialised page for `query` (any stable description of it), from the cache when
    /// fresh, else from `load`, which returns the page and the ids of the products it lists.
    /// `by_stock`: whether the query filters by stock.
    pub async fn page<L, F>(
        &self,
        query: String,
        by_stock: bool,
        load: L,
    ) -> mongodb::error::Result<Bytes>
    where
        L: FnOnce() -> F + Clone,
        F: Future<Output = mongodb::error::Result<(Bytes, Vec<ObjectId>)>> + Send + 'static,
    {
        let Some(cache) = &self.pages else {
            return Ok(load().await?.0);
        };
        let key = (
            self.reordered.load(Ordering::SeqCst),
            if by_stock {
                self.restocked.load(Ordering::SeqCst)
            } else {
                0
            },
            query,
        );
        let page = cached(
            "page",
            cache,
            key.clone(),
            &self.lifetime,
            self.page_load(load.clone()),
        )
        .await?;
        if !self.outdated(&page) {
            return Ok(page.body);
        }
        // A product it lists was written after its read started: read it again.
        cache.remove(&key).await;
        Ok(
            cached("page", cache, key, &self.lifetime, self.page_load(load))
                .await?
                .body,
        )
    }

    /// `load` for [`Self::page`], noting the latest write before the read starts.
    fn page_load<L, F>(&self, load: L) -> impl FnOnce() -> PageRead
    where
        L: FnOnce() -> F,
        F: Future<Output = mongodb::error::Result<(Bytes, Vec<ObjectId>)>> + Send + 'static,
    {
        let sequence = self.sequence.clone();
        move || {
            let read_after = sequence.load(Ordering::SeqCst);
            let read = load();
            Box::pin(async move {
                let (body, ids) = read.await?;
                Ok(Page {
                    body,
                    ids: ids.into(),
                    read_after,
                })
            })
        }
    }

    /// Whether a product `page` lists was written after the page's read started.
    fn outdated(&self, page: &Page) -> bool {
        // No write at all since then: the common case under reads, with no lookups.
        page.read_after != self.latest_write()
            && page
                .ids
                .iter()
                .any(|&id| self.latest_write_to(id) > page.read_after)
    }

    /// Takes the next number of the write sequence.
    fn next_write(&self) -> u64 {
        self.sequence.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Makes every page read before now unreachable; returns the write's sequence number.
    pub fn invalidate_pages(&self) -> u64 {
        let number = self.next_write();
        self.reordered.fetch_max(number, Ordering::SeqCst);
        number
    }

    /// After a write to `id` is acknowledged (here or, through the change stream, anywhere):
    /// makes the product's entries unreachable, and the pages it may have changed (see the
    /// module's documentation).
    pub fn invalidate(&self, id: ObjectId, change: Change) {
        let number = match change {
            Change::Any => self.invalidate_pages(),
            Change::Stock => {
                let number = self.next_write();
                self.restocked.fetch_max(number, Ordering::SeqCst);
                number
            }
        };
        if let Some(written) = &self.written {
            written.insert(id, number);
        }
    }
}

/// The fresh entry for `key`, else the value of `load()`, which concurrent misses of `key`
/// share. A hit on an entry with less than half of `ttl` left to live also refreshes it in the
/// background with `load()`, once. `name` labels the lookup in the metrics.
async fn cached<K, V, L, F>(
    name: &'static str,
    cache: &Cache<K, Entry<V>>,
    key: K,
    lifetime: &Lifetime,
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
        let left = lifetime
            .deadline(entry.read_at)
            .saturating_duration_since(Instant::now());
        if left < lifetime.ttl / 2 && !entry.refreshing.swap(true, Ordering::AcqRel) {
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    const TTL: Duration = Duration::from_secs(1);

    /// Looks `id` up, counting the database reads the lookup (or its refresh) makes.
    async fn lookup(cache: &ProductCache, id: ObjectId, reads: &Arc<AtomicUsize>) {
        let reads = reads.clone();
        let product = cache
            .product(id, move || async move {
                reads.fetch_add(1, Ordering::SeqCst);
                Ok(Some(RenderedProduct {
                    version: 1,
                    body: Bytes::from_static(b"{}"),
                }))
            })
            .await
            .unwrap();
        assert!(product.is_some());
    }

    /// Looks `id` up every 50 ms for `span`, telling the cache the stream caught up before each
    /// lookup when `caught_up` is set.
    async fn keep_reading(
        cache: &ProductCache,
        id: ObjectId,
        reads: &Arc<AtomicUsize>,
        span: Duration,
        caught_up: bool,
    ) {
        let until = Instant::now() + span;
        while Instant::now() < until {
            if caught_up {
                cache.coverage().caught_up(Instant::now());
            }
            lookup(cache, id, reads).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn entries_outlive_the_ttl_only_while_the_stream_vouches_for_them() {
        let cache = ProductCache::new(TTL, Duration::from_secs(60), 100);
        let (id, reads) = (ObjectId::new(), Arc::new(AtomicUsize::new(0)));
        cache.coverage().opened(Instant::now());
        lookup(&cache, id, &reads).await;
        keep_reading(&cache, id, &reads, TTL * 2, true).await;
        assert_eq!(
            reads.load(Ordering::SeqCst),
            1,
            "vouched for: never read again"
        );
        // The stream stops catching up: within the ttl the entry is refreshed or reloaded.
        keep_reading(&cache, id, &reads, TTL + TTL / 5, false).await;
        assert!(reads.load(Ordering::SeqCst) >= 2);
    }

    /// A stream vouches only for entries read after it opened: writes made before it opened
    /// (or between two streams) are never reported.
    #[tokio::test]
    async fn entries_read_before_the_stream_opened_keep_to_the_ttl() {
        let cache = ProductCache::new(TTL, Duration::from_secs(60), 100);
        let (id, reads) = (ObjectId::new(), Arc::new(AtomicUsize::new(0)));
        lookup(&cache, id, &reads).await;
        cache.coverage().opened(Instant::now());
        keep_reading(&cache, id, &reads, TTL * 2, true).await;
        let first = reads.load(Ordering::SeqCst);
        assert!(
            first >= 2,
            "read before the stream opened, yet never read again"
        );

        // The stream fails and another opens: the entry read under the first one lapses.
        cache.coverage().lost();
        cache.coverage().opened(Instant::now());
        keep_reading(&cache, id, &reads, TTL * 2, true).await;
        assert!(
            reads.load(Ordering::SeqCst) > first,
            "read under the first stream, never read again"
        );
    }

    #[tokio::test]
    async fn entries_never_outlive_the_max_age() {
        let cache = ProductCache::new(TTL, TTL * 2, 100);
        let (id, reads) = (ObjectId::new(), Arc::new(AtomicUsize::new(0)));
        cache.coverage().opened(Instant::now());
        lookup(&cache, id, &reads).await;
        keep_reading(&cache, id, &reads, TTL * 2 + TTL / 5, true).await;
        assert!(reads.load(Ordering::SeqCst) >= 2);
    }

    /// Reads a page through the cache, counting the database reads in `reads`.
    async fn page(
        cache: &ProductCache,
        query: &str,
        by_stock: bool,
        ids: &[ObjectId],
        reads: &Arc<AtomicUsize>,
    ) {
        let (reads, ids) = (reads.clone(), ids.to_vec());
        cache
            .page(query.into(), by_stock, move || async move {
                reads.fetch_add(1, Ordering::SeqCst);
                Ok((Bytes::from_static(b"[]"), ids))
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_write_drops_its_product_and_the_pages_but_not_other_products() {
        let cache = ProductCache::new(TTL, Duration::from_secs(60), 100);
        let (written, other) = (ObjectId::new(), ObjectId::new());
        let (reads, other_reads) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let pages = Arc::new(AtomicUsize::new(0));
        for _ in 0..2 {
            lookup(&cache, written, &reads).await;
            lookup(&cache, other, &other_reads).await;
            page(&cache, "sort=name", false, &[other], &pages).await;
        }
        cache.invalidate(written, Change::Any);
        lookup(&cache, written, &reads).await;
        lookup(&cache, other, &other_reads).await;
        page(&cache, "sort=name", false, &[other], &pages).await;
        assert_eq!(reads.load(Ordering::SeqCst), 2);
        assert_eq!(other_reads.load(Ordering::SeqCst), 1);
        assert_eq!(pages.load(Ordering::SeqCst), 2, "a page it could join");
    }

    #[tokio::test]
    async fn a_stock_write_drops_only_the_pages_listing_the_product_or_filtered_by_stock() {
        let cache = ProductCache::new(TTL, Duration::from_secs(60), 100);
        let (written, other) = (ObjectId::new(), ObjectId::new());
        let counters = || Arc::new(AtomicUsize::new(0));
        let (listing, not_listing, by_stock) = (counters(), counters(), counters());
        let read_all = || async {
            page(&cache, "sort=name", false, &[other, written], &listing).await;
            page(&cache, "sort=price", false, &[other], &not_listing).await;
            page(&cache, "in_stock=true", true, &[other], &by_stock).await;
        };
        read_all().await;
        read_all().await;
        cache.invalidate(written, Change::Stock);
        read_all().await;
        read_all().await;
        let reads = |c: &Arc<AtomicUsize>| c.load(Ordering::SeqCst);
        assert_eq!(reads(&listing), 2, "the page listing the product");
        assert_eq!(reads(&not_listing), 1, "a page not listing it");
        assert_eq!(reads(&by_stock), 2, "a page filtered by stock");
        // Other products' stock writes leave the re-read page alone; its own product's do not.
        cache.invalidate(ObjectId::new(), Change::Stock);
        read_all().await;
        assert_eq!(reads(&listing), 2);
        cache.invalidate(written, Change::Stock);
        read_all().await;
        assert_eq!(reads(&listing), 3);
    }
}
