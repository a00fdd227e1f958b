use bson::{DateTime, doc, oid::ObjectId};
use mongodb::{Collection, Database, IndexModel, options::IndexOptions};
use serde::{Deserialize, Serialize};
use shared::auth::Role;

use crate::domain::Username;

/// A stored user.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct User {
    /// Id.
    #[serde(rename = "_id")]
    pub id: ObjectId,
    /// As registered.
    pub username: String,
    /// Lower-cased, unique.
    pub username_key: String,
    /// Optional email.
    #[serde(default)]
    pub email: Option<String>,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Role.
    pub role: Role,
    /// Creation time.
    pub created_at: DateTime,
}

/// The `users` collection.
#[derive(Clone)]
pub struct Users {
    collection: Collection<User>,
}

impl Users {
    /// Opens the collection.
    pub fn new(db: &Database) -> Self {
        Self {
            collection: db.collection("users"),
        }
    }

    /// The unique case-insensitive username index.
    pub async fn ensure_indexes(&self, patience: std::time::Duration) -> anyhow::Result<()> {
        shared::mongo::ensure_indexes(
            &self.collection,
            vec![
                IndexModel::builder()
                    .keys(doc! {"username_key": 1})
                    .options(IndexOptions::builder().unique(true).build())
                    .build(),
            ],
            patience,
        )
        .await
    }

    /// Inserts a user; a taken username fails with a duplicate-key error.
    #[tracing::instrument(skip_all, fields(user.id = %user.id))]
    pub async fn insert(&self, user: &User) -> mongodb::error::Result<()> {
        self.collection.insert_one(user).await.map(drop)
    }

    /// Finds a user by username, case-insensitively.
    #[tracing::instrument(skip_all)]
    pub async fn find_by_username(
        &self,
        username: &Username,
    ) -> mongodb::error::Result<Option<User>> {
        self.collection
            .find_one(doc! {"username_key": username.key()})
            .await
    }

    /// Finds a user by id.
    #[tracing::instrument(skip_all, fields(user.id = %id))]
    pub async fn find_by_id(&self, id: ObjectId) -> mongodb::error::Result<Option<User>> {
        self.collection.find_one(doc! {"_id": id}).await
    }

    /// Creates the configured admin, or makes the existing user of that name an admin. An upsert
    /// on the unique key, retried once: when two replicas start together, one inserts and the
    /// other's upsert collides, then matches on retry.
    #[tracing::instrument(skip_all, fields(username = %username.as_str()))]
    pub async fn ensure_admin(
        &self,
        username: &Username,
        password_hash: &str,
    ) -> mongodb::error::Result<()> {
        let update = doc! {
            "$set": {"role": "admin"},
            "$setOnInsert": {
                "_id": ObjectId::new(),
                "username": username.as_str(),
                "email": null,
                "password_hash": password_hash,
                "created_at": DateTime::now(),
            },
        };
        let filter = doc! {"username_key": username.key()};
        for attempt in 0..2 {
            match self
                .collection
                .update_one(filter.clone(), update.clone())
                .upsert(true)
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if attempt == 0 && shared::mongo::is_duplicate_key(&e) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
