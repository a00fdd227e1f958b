//! The `reservations` collection and the all-or-nothing reservation of stock.
//!
//! A reservation is one multi-document transaction: insert the reservation under the order id,
//! then decrement each line's stock with a filter `stock >= quantity`; any line that cannot be
//! decremented aborts the whole transaction, so no partial reservation is ever visible or left
//! behind, even if the process dies mid-way. This was chosen over conditional decrements with a
//! compensating rollback because a rollback is not crash-safe (a crash between decrement and
//! rollback leaks stock) and makes other buyers see transiently low stock. Write conflicts between
//! concurrent transactions surface as `TransientTransactionError` and the whole transaction is
//! retried with jittered backoff, within a time budget.
//!
//! Within one replica, reservations touching the same product take turns on a striped lock before
//! their transaction starts, so they queue instead of aborting each other; conflicts with other
//! replicas (and other writes) are still resolved by the transaction retries.
//!
//! Releasing moves the reservation from `reserved` to `released` and gives the stock back in one
//! transaction, so it happens once however often it is called. Releasing an unknown order id
//! leaves a tombstone (`released`, no items), so a late reservation for it is refused.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bson::{DateTime, doc};
use mongodb::error::{Error, TRANSIENT_TRANSACTION_ERROR, UNKNOWN_TRANSACTION_COMMIT_RESULT};
use mongodb::options::{ReadConcern, WriteConcern};
use mongodb::{Client, ClientSession, Collection, Database};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use super::products::{ProductDoc, Products};
use crate::domain::{ReservationLine, ReservationRequest};

/// Reservation states.
pub const RESERVED: &str = "reserved";
/// Reservation states.
pub const RELEASED: &str = "released";

/// One reserved line, with the name and price at reservation time.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReservedItem {
    /// Product id.
    pub product_id: String,
    /// Name at reservation time.
    pub name: String,
    /// Unit price at reservation time, minor units.
    pub unit_price_minor: i64,
    /// Quantity.
    pub quantity: i64,
}

/// A stored reservation, keyed by order id.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReservationDoc {
    /// The order id.
    #[serde(rename = "_id")]
    pub order_id: String,
    /// `reserved` or `released`.
    pub status: String,
    /// Lines (empty for a tombstone).
    pub items: Vec<ReservedItem>,
    /// Canonical form of the requested lines, to recognise a replay.
    pub request_key: String,
    /// Sum of the lines, minor units.
    pub total_minor: i64,
    /// Currency.
    pub currency: String,
    /// The service client that reserved.
    pub client_id: String,
    /// Creation time.
    pub created_at: DateTime,
    /// Release time.
    #[serde(default)]
    pub released_at: Option<DateTime>,
    /// Released before it was ever reserved.
    #[serde(default)]
    pub tombstone: bool,
}

/// What came of a reservation request.
pub enum ReserveOutcome {
    /// Reserved now.
    Created(ReservationDoc),
    /// The same request was reserved before: nothing moved.
    Replayed(ReservationDoc),
    /// The order id is taken by other items, or was released (or tombstoned).
    Conflict(&'static str),
    /// These products are short: (product id, requested, available).
    Short(Vec<(String, i64, i64)>),
    /// These products do not exist or were deleted.
    Unknown(Vec<String>),
    /// Write conflicts outlasted the retry budget.
    Busy,
}

/// What came of a release.
pub enum ReleaseOutcome {
    /// The stock went back now, to these products.
    Released(Vec<bson::oid::ObjectId>),
    /// It had been released before (or never reserved: tombstone left).
    AlreadyReleased,
    /// Write conflicts outlasted the retry budget.
    Busy,
}

/// Number of lock stripes products are spread over.
const STRIPES: usize = 256;

/// The `reservations` collection.
#[derive(Clone)]
pub struct Reservations {
    client: Client,
    collection: Collection<ReservationDoc>,
    products: Products,
    retry_budget: Duration,
    stripes: Arc<Vec<Arc<tokio::sync::Mutex<()>>>>,
}

/// The canonical form of a request: sorted `product_id:quantity` pairs.
pub fn request_key(lines: &[ReservationLine]) -> String {
    lines
        .iter()
        .map(|l| format!("{}:{}", l.product_id, l.quantity))
        .collect::<Vec<_>>()
        .join(",")
}

enum Attempt<T> {
    Done(T),
    Retry,
}

impl Reservations {
    /// Opens the collection.
    pub fn new(client: Client, db: &Database, products: Products, retry_budget: Duration) -> Self {
        Self {
            client,
            collection: db.collection("reservations"),
            products,
            retry_budget,
            stripes: Arc::new((0..STRIPES).map(|_| Arc::default()).collect()),
        }
    }

    /// Takes the stripes of these products, in a fixed order so that two requests can never wait
    /// on each other.
    async fn lock(&self, lines: &[ReservationLine]) -> Vec<tokio::sync::OwnedMutexGuard<()>> {
        let mut indexes: Vec<usize> = lines
            .iter()
            .filter_map(|l| l.oid)
            .map(|oid| {
                let bytes = oid.bytes();
                (usize::from(bytes[10]) << 8 | usize::from(bytes[11])) % STRIPES
            })
            .collect();
        indexes.sort_unstable();
        indexes.dedup();
        let mut guards = Vec::with_capacity(indexes.len());
        for i in indexes {
            guards.push(self.stripes[i].clone().lock_owned().await);
        }
        guards
    }

    /// A reservation by order id.
    #[tracing::instrument(skip_all, fields(order.id = %order_id))]
    pub async fn find(&self, order_id: &str) -> mongodb::error::Result<Option<ReservationDoc>> {
        self.collection.find_one(doc! {"_id": order_id}).await
    }

    /// Reserves every line or none. Runs to the end even if the caller goes away (see
    /// [`to_the_end`]).
    pub async fn reserve(
        &self,
        request: &ReservationRequest,
        currency: &str,
        client_id: &str,
    ) -> mongodb::error::Result<ReserveOutcome> {
        let (this, request) = (self.clone(), request.clone());
        let (currency, client_id) = (currency.to_owned(), client_id.to_owned());
        to_the_end(async move { this.reserve_now(&request, &currency, &client_id).await }).await
    }

    #[tracing::instrument(skip_all, fields(order.id = %request.order_id, lines = request.lines.len()))]
    async fn reserve_now(
        &self,
        request: &ReservationRequest,
        currency: &str,
        client_id: &str,
    ) -> mongodb::error::Result<ReserveOutcome> {
        let key = request_key(&request.lines);
        if let Some(existing) = self.find(&request.order_id).await? {
            return Ok(compare(existing, &key));
        }
        let unknown: Vec<String> = request
            .lines
            .iter()
            .filter(|l| l.oid.is_none())
            .map(|l| l.product_id.clone())
            .collect();
        if !unknown.is_empty() {
            return Ok(ReserveOutcome::Unknown(unknown));
        }
        let _turn = self.lock(&request.lines).await;
        let started = Instant::now();
        let mut backoff = Duration::from_millis(5);
        loop {
            match self.try_reserve(request, &key, currency, client_id).await? {
                Attempt::Done(outcome) => return Ok(outcome),
                Attempt::Retry if started.elapsed() < self.retry_budget => {
                    metrics::counter!("product_write_conflicts_total").increment(1);
                    sleep_jittered(&mut backoff).await;
                }
                Attempt::Retry => return Ok(ReserveOutcome::Busy),
            }
        }
    }

    async fn try_reserve(
        &self,
        request: &ReservationRequest,
        key: &str,
        currency: &str,
        client_id: &str,
    ) -> mongodb::error::Result<Attempt<ReserveOutcome>> {
        let mut session = self.start().await?;
        let mut reservation = ReservationDoc {
            order_id: request.order_id.clone(),
            status: RESERVED.into(),
            items: Vec::with_capacity(request.lines.len()),
            request_key: key.to_owned(),
            total_minor: 0,
            currency: currency.to_owned(),
            client_id: client_id.to_owned(),
            created_at: DateTime::now(),
            released_at: None,
            tombstone: false,
        };
        let mut short = None;
        for line in &request.lines {
            let Some(oid) = line.oid else { continue };
            let updated = self
                .products
                .collection()
                .find_one_and_update(
                    doc! {"_id": oid, "deleted": false, "stock": {"$gte": line.quantity}},
                    doc! {
                        "$inc": {"stock": -line.quantity, "version": 1},
                        "$set": {"updated_at": DateTime::now()},
                    },
                )
                .return_document(mongodb::options::ReturnDocument::After)
                .session(&mut session)
                .await;
            match updated {
                Ok(Some(product)) => reservation.items.push(item(&product, line)),
                Ok(None) => {
                    short = Some(line);
                    break;
                }
                Err(e) => return abort_or_retry(session, e).await,
            }
        }
        if short.is_some() {
            let _ = session.abort_transaction().await;
            return Ok(Attempt::Done(self.diagnose(&request.lines).await?));
        }
        reservation.total_minor = reservation
            .items
            .iter()
            .map(|i| i.unit_price_minor * i.quantity)
            .sum();
        if let Err(e) = self
            .collection
            .insert_one(&reservation)
            .session(&mut session)
            .await
        {
            if shared::mongo::is_duplicate_key(&e) {
                let _ = session.abort_transaction().await;
                return Ok(match self.find(&request.order_id).await? {
                    Some(existing) => Attempt::Done(compare(existing, key)),
                    None => Attempt::Retry,
                });
            }
            return abort_or_retry(session, e).await;
        }
        match commit(&mut session).await {
            Ok(()) => Ok(Attempt::Done(ReserveOutcome::Created(reservation))),
            Err(e) if e.contains_label(TRANSIENT_TRANSACTION_ERROR) => Ok(Attempt::Retry),
            Err(e) => Err(e),
        }
    }

    /// Why a reservation could not be made: unknown products first, else the short ones.
    async fn diagnose(&self, lines: &[ReservationLine]) -> mongodb::error::Result<ReserveOutcome> {
        let ids = lines.iter().filter_map(|l| l.oid).collect();
        let found: Vec<ProductDoc> = self.products.find_many(ids).await?;
        let stock_of = |oid| found.iter().find(|p| p.id == oid).map(|p| p.stock);
        let unknown: Vec<String> = lines
            .iter()
            .filter(|l| l.oid.and_then(stock_of).is_none())
            .map(|l| l.product_id.clone())
            .collect();
        if !unknown.is_empty() {
            return Ok(ReserveOutcome::Unknown(unknown));
        }
        let short: Vec<(String, i64, i64)> = lines
            .iter()
            .filter_map(|l| {
                let available = l.oid.and_then(stock_of)?;
                (available < l.quantity).then(|| (l.product_id.clone(), l.quantity, available))
            })
            .collect();
        if short.is_empty() {
            // Stock came back between the failed decrement and this read: still a refusal.
            let first = &lines[0];
            let available = first.oid.and_then(stock_of).unwrap_or(0);
            return Ok(ReserveOutcome::Short(vec![(
                first.product_id.clone(),
                first.quantity,
                available,
            )]));
        }
        Ok(ReserveOutcome::Short(short))
    }

    /// Gives the stock back once; leaves a tombstone for an order id never reserved. Runs to the
    /// end even if the caller goes away (see [`to_the_end`]).
    pub async fn release(&self, order_id: &str) -> mongodb::error::Result<ReleaseOutcome> {
        let (this, order_id) = (self.clone(), order_id.to_owned());
        to_the_end(async move { this.release_now(&order_id).await }).await
    }

    #[tracing::instrument(skip_all, fields(order.id = %order_id))]
    async fn release_now(&self, order_id: &str) -> mongodb::error::Result<ReleaseOutcome> {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(5);
        loop {
            match self.try_release(order_id).await? {
                Attempt::Done(outcome) => return Ok(outcome),
                Attempt::Retry if started.elapsed() < self.retry_budget => {
                    metrics::counter!("product_write_conflicts_total").increment(1);
                    sleep_jittered(&mut backoff).await;
                }
                Attempt::Retry => return Ok(ReleaseOutcome::Busy),
            }
        }
    }

    async fn try_release(&self, order_id: &str) -> mongodb::error::Result<Attempt<ReleaseOutcome>> {
        let mut session = self.start().await?;
        let released = self
            .collection
            .find_one_and_update(
                doc! {"_id": order_id, "status": RESERVED},
                doc! {"$set": {"status": RELEASED, "released_at": DateTime::now()}},
            )
            .session(&mut session)
            .await;
        let reservation = match released {
            Ok(Some(reservation)) => reservation,
            Ok(None) => {
                let _ = session.abort_transaction().await;
                return self.tombstone(order_id).await;
            }
            Err(e) => return abort_or_retry(session, e).await,
        };
        let mut returned = Vec::with_capacity(reservation.items.len());
        for item in &reservation.items {
            let Ok(oid) = bson::oid::ObjectId::parse_str(&item.product_id) else {
                continue;
            };
            returned.push(oid);
            if let Err(e) = self
                .products
                .collection()
                .update_one(
                    doc! {"_id": oid},
                    doc! {
                        "$inc": {"stock": item.quantity, "version": 1},
                        "$set": {"updated_at": DateTime::now()},
                    },
                )
                .session(&mut session)
                .await
            {
                return abort_or_retry(session, e).await;
            }
        }
        match commit(&mut session).await {
            Ok(()) => Ok(Attempt::Done(ReleaseOutcome::Released(returned))),
            Err(e) if e.contains_label(TRANSIENT_TRANSACTION_ERROR) => Ok(Attempt::Retry),
            Err(e) => Err(e),
        }
    }

    /// Nothing was reserved under this id: record that it was released. If a reservation slipped
    /// in meanwhile, the insert collides and the release is retried against it.
    async fn tombstone(&self, order_id: &str) -> mongodb::error::Result<Attempt<ReleaseOutcome>> {
        if let Some(existing) = self.find(order_id).await? {
            return Ok(if existing.status == RESERVED {
                Attempt::Retry
            } else {
                Attempt::Done(ReleaseOutcome::AlreadyReleased)
            });
        }
        let tombstone = ReservationDoc {
            order_id: order_id.to_owned(),
            status: RELEASED.into(),
            items: Vec::new(),
            request_key: String::new(),
            total_minor: 0,
            currency: String::new(),
            client_id: String::new(),
            created_at: DateTime::now(),
            released_at: Some(DateTime::now()),
            tombstone: true,
        };
        match self.collection.insert_one(&tombstone).await {
            Ok(_) => Ok(Attempt::Done(ReleaseOutcome::AlreadyReleased)),
            Err(e) if shared::mongo::is_duplicate_key(&e) => Ok(Attempt::Retry),
            Err(e) => Err(e),
        }
    }

    async fn start(&self) -> mongodb::error::Result<ClientSession> {
        let mut session = self.client.start_session().await?;
        session
            .start_transaction()
            .read_concern(ReadConcern::snapshot())
            .write_concern(WriteConcern::majority())
            .await?;
        Ok(session)
    }
}

fn item(product: &ProductDoc, line: &ReservationLine) -> ReservedItem {
    ReservedItem {
        product_id: line.product_id.clone(),
        name: product.name.clone(),
        unit_price_minor: product.price_minor,
        quantity: line.quantity,
    }
}

fn compare(existing: ReservationDoc, key: &str) -> ReserveOutcome {
    if existing.status != RESERVED {
        ReserveOutcome::Conflict("this order id was released; it cannot be reserved again")
    } else if existing.request_key != key {
        ReserveOutcome::Conflict("this order id is already reserved with other items")
    } else {
        ReserveOutcome::Replayed(existing)
    }
}

async fn abort_or_retry<T>(
    mut session: ClientSession,
    e: Error,
) -> mongodb::error::Result<Attempt<T>> {
    let _ = session.abort_transaction().await;
    if e.contains_label(TRANSIENT_TRANSACTION_ERROR) {
        Ok(Attempt::Retry)
    } else {
        Err(e)
    }
}

/// Commits, retrying while the outcome of the commit is unknown.
async fn commit(session: &mut ClientSession) -> mongodb::error::Result<()> {
    let mut tries = 0;
    loop {
        match session.commit_transaction().await {
            Err(e) if e.contains_label(UNKNOWN_TRANSACTION_COMMIT_RESULT) && tries < 3 => {
                tries += 1
            }
            other => return other,
        }
    }
}

/// Runs a transaction on a task of its own, so it is committed or aborted even when the request
/// that started it is dropped (the caller disconnected: order-service killed or past its attempt
/// timeout; or the request timed out). A transaction dropped mid-way stays open on the server,
/// holding the products it wrote until the server aborts it (`transactionLifetimeLimitSeconds`,
/// 60 s by default), and every other reservation of those products waits and fails meanwhile.
/// The task keeps the request's context: its log lines carry the request id, and its database
/// commands count as the request's.
async fn to_the_end<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    let work = work.in_current_span();
    let task = match shared::context::RequestContext::current() {
        Some(context) => tokio::spawn(context.scope(work)),
        None => tokio::spawn(work),
    };
    match task.await {
        Ok(value) => value,
        Err(e) => std::panic::resume_unwind(
            e.try_into_panic()
                .unwrap_or_else(|e| Box::new(format!("reservation task: {e}"))),
        ),
    }
}

async fn sleep_jittered(backoff: &mut Duration) {
    let jitter = rand::thread_rng().gen_range(0..=backoff.as_millis() as u64);
    tokio::time::sleep(*backoff / 2 + Duration::from_millis(jitter)).await;
    *backoff = (*backoff * 2).min(Duration::from_millis(200));
}
