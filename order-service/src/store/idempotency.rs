//! The `idempotency_keys` collection: one record per (user, `Idempotency-Key`), unique, so that
//! however requests race, exactly one of them runs; the others replay its answer or get 409.
//! Records expire after 24 hours (TTL index).

use std::time::Duration;

use bson::{DateTime, doc, oid::ObjectId};
use mongodb::options::IndexOptions;
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};

use crate::domain::IdempotencyKey;

/// How long a key is remembered.
pub const KEY_TTL: Duration = Duration::from_secs(24 * 3600);

/// A stored key.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Record {
    #[serde(rename = "_id")]
    id: ObjectId,
    user_id: String,
    key: String,
    /// What the first request asked for ([`crate::domain::NewOrder::fingerprint`]).
    fingerprint: String,
    /// The order the first request creates.
    order_id: ObjectId,
    /// The answer, once the first request has finished.
    #[serde(default)]
    response: Option<StoredResponse>,
    created_at: DateTime,
    expires_at: DateTime,
}

/// The answer of a finished request, replayed verbatim.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredResponse {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: String,
    /// The body, byte for byte.
    pub body: String,
    /// `Location`, for a 201.
    #[serde(default)]
    pub location: Option<String>,
}

/// What became of an attempt to start a request under a key.
#[derive(Debug)]
pub enum Begin {
    /// This request owns the key and must run, creating order `order_id`.
    Started,
    /// A finished request with the same body: answer this.
    Replay(StoredResponse),
    /// The key was used with a different body.
    Mismatch,
    /// A request with this key started and has not finished: it is still running, or it died
    /// (see [`IdempotencyKeys::forget_unfinished`]).
    InFlight {
        /// The record, to forget it if it turns out stale.
        record_id: ObjectId,
        /// The order that request creates.
        order_id: ObjectId,
        /// When it started.
        started_at: DateTime,
    },
}

/// The `idempotency_keys` collection.
#[derive(Clone)]
pub struct IdempotencyKeys {
    collection: Collection<Record>,
}

impl IdempotencyKeys {
    /// Opens the collection.
    pub fn new(db: &Database) -> Self {
        Self {
            collection: db.collection("idempotency_keys"),
        }
    }

    /// The unique (user, key) index and the TTL index.
    pub async fn ensure_indexes(&self, patience: Duration) -> anyhow::Result<()> {
        shared::mongo::ensure_indexes(
            &self.collection,
            vec![
                IndexModel::builder()
                    .keys(doc! {"user_id": 1, "key": 1})
                    .options(IndexOptions::builder().unique(true).build())
                    .build(),
                IndexModel::builder()
                    .keys(doc! {"expires_at": 1})
                    .options(IndexOptions::builder().expire_after(Duration::ZERO).build())
                    .build(),
            ],
            patience,
        )
        .await
    }

    /// Claims `key` for `user_id`'s request with `fingerprint`, which will create `order_id`.
    #[tracing::instrument(skip_all, fields(user.id = %user_id, order.id = %order_id))]
    pub async fn begin(
        &self,
        user_id: &str,
        key: &IdempotencyKey,
        fingerprint: &str,
        order_id: ObjectId,
    ) -> mongodb::error::Result<Begin> {
        let now = DateTime::now();
        let record = Record {
            id: ObjectId::new(),
            user_id: user_id.to_owned(),
            key: key.as_str().to_owned(),
            fingerprint: fingerprint.to_owned(),
            order_id,
            response: None,
            created_at: now,
            expires_at: DateTime::from_millis(now.timestamp_millis() + KEY_TTL.as_millis() as i64),
        };
        // Two rounds: an expired record the TTL monitor has not removed yet is cleared once.
        for _ in 0..2 {
            match self.collection.insert_one(&record).await {
                Ok(_) => return Ok(Begin::Started),
                Err(e) if shared::mongo::is_duplicate_key(&e) => {}
                Err(e) => return Err(e),
            }
            let filter = doc! {"user_id": user_id, "key": key.as_str()};
            let Some(existing) = self.collection.find_one(filter).await? else {
                continue;
            };
            if existing.expires_at < now {
                self.collection
                    .delete_one(doc! {"_id": existing.id})
                    .await?;
                continue;
            }
            if existing.fingerprint != fingerprint {
                return Ok(Begin::Mismatch);
            }
            return Ok(match existing.response {
                Some(response) => Begin::Replay(response),
                None => Begin::InFlight {
                    record_id: existing.id,
                    order_id: existing.order_id,
                    started_at: existing.created_at,
                },
            });
        }
        Ok(Begin::InFlight {
            record_id: record.id,
            order_id,
            started_at: now,
        })
    }

    /// Forgets an unfinished record whose request died, so that the key can be claimed again.
    /// Conditional on the record being unchanged: of several callers, one removes it.
    #[tracing::instrument(skip_all)]
    pub async fn forget_unfinished(&self, record_id: ObjectId) -> mongodb::error::Result<()> {
        self.collection
            .delete_one(doc! {"_id": record_id, "response": null})
            .await
            .map(drop)
    }

    /// Stores the answer of the request that owns the key, for replays.
    #[tracing::instrument(skip_all, fields(user.id = %user_id))]
    pub async fn finish(
        &self,
        user_id: &str,
        key: &IdempotencyKey,
        response: &StoredResponse,
    ) -> mongodb::error::Result<()> {
        let response = bson::to_bson(response).map_err(mongodb::error::Error::custom)?;
        self.collection
            .update_one(
                doc! {"user_id": user_id, "key": key.as_str(), "response": null},
                doc! {"$set": {"response": response}},
            )
            .await
            .map(drop)
    }

    /// Forgets the key after a transient failure, so that a retry runs afresh.
    #[tracing::instrument(skip_all, fields(user.id = %user_id))]
    pub async fn abandon(&self, user_id: &str, key: &IdempotencyKey) -> mongodb::error::Result<()> {
        self.collection
            .delete_one(doc! {"user_id": user_id, "key": key.as_str(), "response": null})
            .await
            .map(drop)
    }
}
