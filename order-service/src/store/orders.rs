//! The `orders` collection: orders with their life-cycle transitions as conditional updates,
//! listing by keyset, and the leases of the recovery task.

use std::time::Duration;

use bson::{DateTime, Document, doc, oid::ObjectId};
use mongodb::options::{IndexOptions, ReturnDocument};
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};

use crate::domain::{Cursor, OrderStatus};

mod leases;

/// A stored order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Order {
    /// Id; also the reservation's `order_id` at product-service.
    #[serde(rename = "_id")]
    pub id: ObjectId,
    /// Owner (`sub` of the customer's token).
    pub user_id: String,
    /// Life-cycle state.
    pub status: OrderStatus,
    /// Lines; names and prices are filled in from the reservation.
    pub items: Vec<OrderLine>,
    /// Sum of the line totals in minor units, once priced.
    #[serde(default)]
    pub total_minor: Option<i64>,
    /// Currency of the amounts.
    pub currency: String,
    /// Creation time.
    pub created_at: DateTime,
    /// Last change.
    pub updated_at: DateTime,
    /// Stock may still be held at product-service for this failed or cancelled order: the
    /// release is retried until it succeeds.
    #[serde(default)]
    pub release_pending: bool,
    /// Recovery lease: no other replica touches the order before this time.
    pub lease_until: DateTime,
    /// The replica holding the lease.
    #[serde(default)]
    pub lease_owner: Option<String>,
}

/// One line of an order.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct OrderLine {
    /// The product.
    pub product_id: String,
    /// Units ordered.
    pub quantity: u32,
    /// Product name at reservation time.
    #[serde(default)]
    pub name: Option<String>,
    /// Unit price at reservation time, minor units.
    #[serde(default)]
    pub unit_price_minor: Option<i64>,
    /// `unit_price * quantity`, minor units.
    #[serde(default)]
    pub line_total_minor: Option<i64>,
}

/// One page of a listing.
#[derive(Debug)]
pub struct Page {
    /// The orders, newest first.
    pub items: Vec<Order>,
    /// Where the next page starts, if there is one.
    pub next: Option<Cursor>,
}

/// The `orders` collection.
#[derive(Clone)]
pub struct Orders {
    collection: Collection<Order>,
}

impl Orders {
    /// Opens the collection.
    pub fn new(db: &Database) -> Self {
        Self {
            collection: db.collection("orders"),
        }
    }

    /// Indexes for listing by owner (with and without status) and for the recovery scans.
    pub async fn ensure_indexes(&self, patience: Duration) -> anyhow::Result<()> {
        let index = |keys: Document| IndexModel::builder().keys(keys).build();
        shared::mongo::ensure_indexes(
            &self.collection,
            vec![
                index(doc! {"user_id": 1, "created_at": -1, "_id": -1}),
                index(doc! {"user_id": 1, "status": 1, "created_at": -1, "_id": -1}),
                index(doc! {"status": 1, "created_at": 1}),
                IndexModel::builder()
                    .keys(doc! {"release_pending": 1, "updated_at": 1})
                    .options(
                        IndexOptions::builder()
                            .name("release_pending".to_owned())
                            .build(),
                    )
                    .build(),
            ],
            patience,
        )
        .await
    }

    /// Records a new order.
    #[tracing::instrument(skip_all, fields(order.id = %order.id))]
    pub async fn insert(&self, order: &Order) -> mongodb::error::Result<()> {
        self.collection.insert_one(order).await.map(drop)
    }

    /// The order `id`, if it exists and (when `owner` is given) belongs to `owner`.
    #[tracing::instrument(skip_all, fields(order.id = %id))]
    pub async fn find(
        &self,
        id: ObjectId,
        owner: Option<&str>,
    ) -> mongodb::error::Result<Option<Order>> {
        let mut filter = doc! {"_id": id};
        if let Some(owner) = owner {
            filter.insert("user_id", owner);
        }
        self.collection.find_one(filter).await
    }

    /// A page of `owner`'s orders, newest first, optionally of one status, after `cursor`.
    #[tracing::instrument(skip_all, fields(user.id = %owner))]
    pub async fn list(
        &self,
        owner: &str,
        status: Option<OrderStatus>,
        after: Option<Cursor>,
        limit: u32,
    ) -> mongodb::error::Result<Page> {
        let mut filter = doc! {"user_id": owner};
        if let Some(status) = status {
            filter.insert("status", status.as_str());
        }
        if let Some(c) = after {
            let at = DateTime::from_millis(c.created_at_ms);
            filter.insert(
                "$or",
                vec![
                    doc! {"created_at": {"$lt": at}},
                    doc! {"created_at": at, "_id": {"$lt": c.id}},
                ],
            );
        }
        let mut cursor = self
            .collection
            .find(filter)
            .sort(doc! {"created_at": -1, "_id": -1})
            .limit(i64::from(limit) + 1)
            .await?;
        let mut items = Vec::new();
        while cursor.advance().await? {
            items.push(cursor.deserialize_current()?);
        }
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        let next = more.then(|| items.last()).flatten().map(|o| Cursor {
            created_at_ms: o.created_at.timestamp_millis(),
            id: o.id,
        });
        Ok(Page { items, next })
    }

    /// `pending` -> `confirmed` with the priced lines; `None` if the order is no longer pending.
    /// With `lease_owner`, only while that replica holds the recovery lease.
    #[tracing::instrument(skip_all, fields(order.id = %id))]
    pub async fn confirm(
        &self,
        id: ObjectId,
        lines: &[OrderLine],
        total_minor: i64,
        currency: &str,
        lease_owner: Option<&str>,
    ) -> mongodb::error::Result<Option<Order>> {
        let lines = bson::to_bson(lines).map_err(mongodb::error::Error::custom)?;
        self.transition(
            still(
                id,
                OrderStatus::Pending,
                lease_owner.map(|o| ("lease_owner", o)),
            ),
            OrderStatus::Confirmed,
            doc! {"items": lines, "total_minor": total_minor, "currency": currency},
        )
        .await
    }

    /// `pending` -> `failed`; `release_pending` when stock may be held. `None` if no longer
    /// pending (or, with `lease_owner`, the lease was lost).
    #[tracing::instrument(skip_all, fields(order.id = %id))]
    pub async fn fail(
        &self,
        id: ObjectId,
        release_pending: bool,
        lease_owner: Option<&str>,
    ) -> mongodb::error::Result<Option<Order>> {
        self.transition(
            still(
                id,
                OrderStatus::Pending,
                lease_owner.map(|o| ("lease_owner", o)),
            ),
            OrderStatus::Failed,
            doc! {"release_pending": release_pending},
        )
        .await
    }

    /// Removes a `pending` order whose reservation was refused (nothing was reserved).
    #[tracing::instrument(skip_all, fields(order.id = %id))]
    pub async fn delete_pending(&self, id: ObjectId) -> mongodb::error::Result<bool> {
        let result = self
            .collection
            .delete_one(doc! {"_id": id, "status": OrderStatus::Pending.as_str()})
            .await?;
        Ok(result.deleted_count == 1)
    }

    /// `confirmed` -> `cancelled`, marking the stock for release; `None` when the order is not
    /// `owner`'s confirmed order.
    #[tracing::instrument(skip_all, fields(order.id = %id))]
    pub async fn cancel(
        &self,
        id: ObjectId,
        owner: Option<&str>,
    ) -> mongodb::error::Result<Option<Order>> {
        self.transition(
            still(id, OrderStatus::Confirmed, owner.map(|o| ("user_id", o))),
            OrderStatus::Cancelled,
            doc! {"release_pending": true},
        )
        .await
    }

    /// Moves the order `filter` matches to status `to`, setting `set` too: one conditional
    /// update, so of two concurrent transitions from the same status only one happens. The order
    /// after the change; `None` when nothing matched.
    async fn transition(
        &self,
        filter: Document,
        to: OrderStatus,
        mut set: Document,
    ) -> mongodb::error::Result<Option<Order>> {
        set.insert("status", to.as_str());
        set.insert("updated_at", DateTime::now());
        self.collection
            .find_one_and_update(filter, doc! {"$set": set})
            .return_document(ReturnDocument::After)
            .await
    }

    /// Notes that the order's stock has been released.
    #[tracing::instrument(skip_all, fields(order.id = %id))]
    pub async fn release_done(&self, id: ObjectId) -> mongodb::error::Result<()> {
        self.collection
            .update_one(
                doc! {"_id": id},
                doc! {"$set": {"release_pending": false, "lease_until": DateTime::from_millis(0)}},
            )
            .await
            .map(drop)
    }
}

/// The order `id` while it still has `status` (and, when given, a field with the given value).
fn still(id: ObjectId, status: OrderStatus, also: Option<(&str, &str)>) -> Document {
    let mut filter = doc! {"_id": id, "status": status.as_str()};
    if let Some((field, value)) = also {
        filter.insert(field, value);
    }
    filter
}
