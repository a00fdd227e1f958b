use std::time::Duration;

use bson::{DateTime, doc};
use mongodb::options::{IndexOptions, ReturnDocument};
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};

/// Failed logins of one username in one fixed time window. Kept in MongoDB so every replica
/// counts together, and deleted by a TTL index once the window is over.
#[derive(Debug, Serialize, Deserialize)]
struct Window {
    #[serde(rename = "_id")]
    id: String,
    count: u32,
    expires_at: DateTime,
}

/// The `login_failures` collection.
#[derive(Clone)]
pub struct LoginFailures {
    collection: Collection<Window>,
    window: Duration,
}

impl LoginFailures {
    /// Opens the collection; failures are counted per `window`.
    pub fn new(db: &Database, window: Duration) -> Self {
        Self {
            collection: db.collection("login_failures"),
            window: window.max(Duration::from_secs(1)),
        }
    }

    /// The TTL index.
    pub async fn ensure_indexes(&self, patience: Duration) -> anyhow::Result<()> {
        shared::mongo::ensure_indexes(
            &self.collection,
            vec![
                IndexModel::builder()
                    .keys(doc! {"expires_at": 1})
                    .options(IndexOptions::builder().expire_after(Duration::ZERO).build())
                    .build(),
            ],
            patience,
        )
        .await
    }

    /// The current window's id and the seconds left in it.
    fn current(&self, username_key: &str) -> (String, u64, DateTime) {
        let now = chrono::Utc::now().timestamp().max(0) as u64;
        let len = self.window.as_secs();
        let index = now / len;
        let end = (index + 1) * len;
        let expires_at = DateTime::from_millis((end as i64) * 1000);
        (format!("{username_key}:{index}"), end - now, expires_at)
    }

    /// Failures so far in the current window, and the seconds until it ends.
    #[tracing::instrument(skip_all)]
    pub async fn count(&self, username_key: &str) -> mongodb::error::Result<(u32, u64)> {
        let (id, left, _) = self.current(username_key);
        let found = self.collection.find_one(doc! {"_id": id}).await?;
        Ok((found.map_or(0, |w| w.count), left))
    }

    /// Counts one more failure; returns the new count.
    #[tracing::instrument(skip_all)]
    pub async fn record(&self, username_key: &str) -> mongodb::error::Result<u32> {
        let (id, _, expires_at) = self.current(username_key);
        let window = self
            .collection
            .find_one_and_update(
                doc! {"_id": &id},
                doc! {"$inc": {"count": 1}, "$setOnInsert": {"expires_at": expires_at}},
            )
            .upsert(true)
            .return_document(ReturnDocument::After)
            .await;
        match window {
            Ok(w) => Ok(w.map_or(1, |w| w.count)),
            // Two first failures raced on the upsert: the other one created the window.
            Err(e) if shared::mongo::is_duplicate_key(&e) => {
                let w = self
                    .collection
                    .find_one_and_update(doc! {"_id": &id}, doc! {"$inc": {"count": 1}})
                    .return_document(ReturnDocument::After)
                    .await?;
                Ok(w.map_or(1, |w| w.count))
            }
            Err(e) => Err(e),
        }
    }

    /// Forgets the failures after a successful login.
    #[tracing::instrument(skip_all)]
    pub async fn clear(&self, username_key: &str) -> mongodb::error::Result<()> {
        let (id, _, _) = self.current(username_key);
        self.collection.delete_one(doc! {"_id": id}).await.map(drop)
    }
}
