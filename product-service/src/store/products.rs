//! The `products` collection. Every change is one conditional operation, filtered on the
//! expected version, the owner or the stock it needs, so concurrent writers never lose an update.

use bson::{DateTime, Document, doc, oid::ObjectId};
use futures::TryStreamExt;
use mongodb::options::{FindOptions, IndexOptions, ReturnDocument};
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};

use crate::domain::{NewProduct, ProductPatch};

/// A stored product.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProductDoc {
    /// Id.
    #[serde(rename = "_id")]
    pub id: ObjectId,
    /// Display name.
    pub name: String,
    /// Lower-cased name, for sorting by name.
    pub name_key: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Price in minor units.
    pub price_minor: i64,
    /// Units available.
    pub stock: i64,
    /// Optional unique sku; absent (never null) when unset, so the sparse unique index skips it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    /// Owner's user id.
    pub owner_id: String,
    /// Incremented by every write; the ETag.
    pub version: i64,
    /// Stock at creation.
    pub initial_stock: i64,
    /// Sum of all stock adjustments since creation (deltas and PATCHed levels).
    pub adjustments: i64,
    /// Soft-deleted.
    #[serde(default)]
    pub deleted: bool,
    /// Creation time.
    pub created_at: DateTime,
    /// Last change.
    pub updated_at: DateTime,
}

/// List orders, each backed by an index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SortOrder {
    /// Newest first (by id, which grows with creation time).
    #[default]
    Newest,
    /// Cheapest first.
    PriceAsc,
    /// Dearest first.
    PriceDesc,
    /// By name, case-insensitively.
    Name,
}

/// The fields that writes of stock alone (reservations, releases, adjustments) change: a change
/// to none but these cannot move a product in any list order, nor in any filter but `in_stock`.
pub const STOCK_FIELDS: [&str; 4] = ["stock", "adjustments", "version", "updated_at"];

/// Where the previous page ended.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Position {
    /// The sort the cursor belongs to.
    pub s: SortOrder,
    /// Last id.
    pub id: ObjectId,
    /// Last price (price sorts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p: Option<i64>,
    /// Last name key (name sort).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
}

/// A checked list query.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    /// Case-insensitive name search, already escaped.
    pub name_pattern: Option<String>,
    /// Lowest price, minor units.
    pub min_price: Option<i64>,
    /// Highest price, minor units.
    pub max_price: Option<i64>,
    /// Only in stock (true) or only out of stock (false).
    pub in_stock: Option<bool>,
    /// Only this owner's.
    pub owner_id: Option<String>,
    /// Order.
    pub sort: SortOrder,
    /// Continue after this position.
    pub after: Option<Position>,
    /// Page size.
    pub limit: u32,
}

impl Position {
    /// The position of the last item of a page.
    pub fn of(sort: SortOrder, p: &ProductDoc) -> Self {
        Self {
            s: sort,
            id: p.id,
            p: matches!(sort, SortOrder::PriceAsc | SortOrder::PriceDesc).then_some(p.price_minor),
            n: (sort == SortOrder::Name).then(|| p.name_key.clone()),
        }
    }
}

/// The `products` collection.
#[derive(Clone)]
pub struct Products {
    collection: Collection<ProductDoc>,
}

impl Products {
    /// Opens the collection.
    pub fn new(db: &Database) -> Self {
        Self {
            collection: db.collection("products"),
        }
    }

    /// The collection, for transactions of the reservation store.
    pub fn collection(&self) -> &Collection<ProductDoc> {
        &self.collection
    }

    /// One index per sort order and the unique sku.
    pub async fn ensure_indexes(&self, patience: std::time::Duration) -> anyhow::Result<()> {
        let index = |keys: Document| IndexModel::builder().keys(keys).build();
        shared::mongo::ensure_indexes(
            &self.collection,
            vec![
                index(doc! {"deleted": 1, "_id": -1}),
                index(doc! {"deleted": 1, "price_minor": 1, "_id": 1}),
                index(doc! {"deleted": 1, "name_key": 1, "_id": 1}),
                index(doc! {"owner_id": 1, "deleted": 1, "_id": -1}),
                IndexModel::builder()
                    .keys(doc! {"sku": 1})
                    .options(IndexOptions::builder().unique(true).sparse(true).build())
                    .build(),
            ],
            patience,
        )
        .await
    }

    /// Inserts a new product owned by `owner_id`.
    #[tracing::instrument(skip_all, fields(user.id = %owner_id))]
    pub async fn insert(
        &self,
        new: NewProduct,
        owner_id: &str,
    ) -> mongodb::error::Result<ProductDoc> {
        let now = DateTime::now();
        let product = ProductDoc {
            id: ObjectId::new(),
            name_key: new.name.to_lowercase(),
            name: new.name,
            description: new.description,
            price_minor: new.price_minor,
            stock: new.stock,
            sku: new.sku,
            owner_id: owner_id.to_owned(),
            version: 1,
            initial_stock: new.stock,
            adjustments: 0,
            deleted: false,
            created_at: now,
            updated_at: now,
        };
        self.collection.insert_one(&product).await?;
        Ok(product)
    }

    /// A live (not deleted) product.
    #[tracing::instrument(skip_all, fields(product.id = %id))]
    pub async fn find_live(&self, id: ObjectId) -> mongodb::error::Result<Option<ProductDoc>> {
        self.collection
            .find_one(doc! {"_id": id, "deleted": false})
            .await
    }

    /// Live products by id, for diagnosing a failed reservation.
    pub async fn find_many(&self, ids: Vec<ObjectId>) -> mongodb::error::Result<Vec<ProductDoc>> {
        self.collection
            .find(doc! {"_id": {"$in": ids}, "deleted": false})
            .await?
            .try_collect()
            .await
    }

    /// A page of live products: `limit + 1` are fetched to know whether another page exists.
    #[tracing::instrument(skip_all)]
    pub async fn list(&self, query: &ListQuery) -> mongodb::error::Result<Vec<ProductDoc>> {
        let mut clauses = vec![doc! {"deleted": false}];
        if let Some(pattern) = &query.name_pattern {
            clauses.push(doc! {"name": {"$regex": pattern, "$options": "i"}});
        }
        if let Some(min) = query.min_price {
            clauses.push(doc! {"price_minor": {"$gte": min}});
        }
        if let Some(max) = query.max_price {
            clauses.push(doc! {"price_minor": {"$lte": max}});
        }
        match query.in_stock {
            Some(true) => clauses.push(doc! {"stock": {"$gt": 0}}),
            Some(false) => clauses.push(doc! {"stock": 0}),
            None => {}
        }
        if let Some(owner) = &query.owner_id {
            clauses.push(doc! {"owner_id": owner});
        }
        if let Some(after) = &query.after {
            clauses.push(keyset(query.sort, after));
        }
        let sort = match query.sort {
            SortOrder::Newest => doc! {"_id": -1},
            SortOrder::PriceAsc => doc! {"price_minor": 1, "_id": 1},
            SortOrder::PriceDesc => doc! {"price_minor": -1, "_id": -1},
            SortOrder::Name => doc! {"name_key": 1, "_id": 1},
        };
        self.collection
            .find(doc! {"$and": clauses})
            .with_options(
                FindOptions::builder()
                    .sort(sort)
                    .limit(i64::from(query.limit) + 1)
                    .build(),
            )
            .await?
            .try_collect()
            .await
    }

    /// Applies a merge patch if the product is live, at `expected_version`, and (unless `owner` is
    /// `None`, for admins) owned by `owner`. `None` when any condition fails.
    #[tracing::instrument(skip_all, fields(product.id = %id))]
    pub async fn patch(
        &self,
        id: ObjectId,
        expected_version: i64,
        owner: Option<&str>,
        patch: &ProductPatch,
        current_stock: i64,
    ) -> mongodb::error::Result<Option<ProductDoc>> {
        let mut set = doc! {"updated_at": DateTime::now()};
        let mut unset = Document::new();
        let mut inc = doc! {"version": 1};
        if let Some(name) = &patch.name {
            set.insert("name", name);
            set.insert("name_key", name.to_lowercase());
        }
        if let Some(description) = &patch.description {
            set.insert("description", description);
        }
        if let Some(price) = patch.price_minor {
            set.insert("price_minor", price);
        }
        if let Some(stock) = patch.stock {
            // The version filter guarantees the stock is still `current_stock`.
            set.insert("stock", stock);
            inc.insert("adjustments", stock - current_stock);
        }
        match &patch.sku {
            Some(Some(sku)) => {
                set.insert("sku", sku);
            }
            Some(None) => {
                unset.insert("sku", "");
            }
            None => {}
        }
        let mut update = doc! {"$set": set, "$inc": inc};
        if !unset.is_empty() {
            update.insert("$unset", unset);
        }
        let mut filter = doc! {"_id": id, "deleted": false, "version": expected_version};
        if let Some(owner) = owner {
            filter.insert("owner_id", owner);
        }
        self.collection
            .find_one_and_update(filter, update)
            .return_document(ReturnDocument::After)
            .await
    }

    /// Adds `delta` to the stock in one conditional update that cannot take it below 0 or above
    /// `max`. `None` when the product is gone, not the owner's, or the result would be out of range.
    #[tracing::instrument(skip_all, fields(product.id = %id, delta))]
    pub async fn adjust_stock(
        &self,
        id: ObjectId,
        delta: i64,
        owner: Option<&str>,
        max: i64,
    ) -> mongodb::error::Result<Option<ProductDoc>> {
        let mut filter = doc! {"_id": id, "deleted": false};
        if delta < 0 {
            filter.insert("stock", doc! {"$gte": -delta});
        } else {
            filter.insert("stock", doc! {"$lte": max - delta});
        }
        if let Some(owner) = owner {
            filter.insert("owner_id", owner);
        }
        self.collection
            .find_one_and_update(
                filter,
                doc! {
                    "$inc": {"stock": delta, "adjustments": delta, "version": 1},
                    "$set": {"updated_at": DateTime::now()},
                },
            )
            .return_document(ReturnDocument::After)
            .await
    }

    /// Soft-deletes a live product (freeing its sku). `false` when gone or not the owner's.
    #[tracing::instrument(skip_all, fields(product.id = %id))]
    pub async fn soft_delete(
        &self,
        id: ObjectId,
        owner: Option<&str>,
    ) -> mongodb::error::Result<bool> {
        let mut filter = doc! {"_id": id, "deleted": false};
        if let Some(owner) = owner {
            filter.insert("owner_id", owner);
        }
        let result = self
            .collection
            .update_one(
                filter,
                doc! {
                    "$set": {"deleted": true, "updated_at": DateTime::now()},
                    "$inc": {"version": 1},
                    "$unset": {"sku": ""},
                },
            )
            .await?;
        Ok(result.modified_count == 1)
    }

    /// Any product by id, deleted or not: to explain why a conditional write matched nothing.
    pub async fn find_any(&self, id: ObjectId) -> mongodb::error::Result<Option<ProductDoc>> {
        self.collection.find_one(doc! {"_id": id}).await
    }
}

fn keyset(sort: SortOrder, after: &Position) -> Document {
    let id = after.id;
    match sort {
        SortOrder::Newest => doc! {"_id": {"$lt": id}},
        SortOrder::PriceAsc => {
            let p = after.p.unwrap_or_default();
            doc! {"$or": [{"price_minor": {"$gt": p}}, {"price_minor": p, "_id": {"$gt": id}}]}
        }
        SortOrder::PriceDesc => {
            let p = after.p.unwrap_or_default();
            doc! {"$or": [{"price_minor": {"$lt": p}}, {"price_minor": p, "_id": {"$lt": id}}]}
        }
        SortOrder::Name => {
            let n = after.n.clone().unwrap_or_default();
            doc! {"$or": [{"name_key": {"$gt": &n}}, {"name_key": &n, "_id": {"$gt": id}}]}
        }
    }
}
