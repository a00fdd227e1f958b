use bson::{DateTime, doc, oid::ObjectId};
use mongodb::options::{IndexOptions, ReturnDocument};
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};

/// A refresh token, stored only as the SHA-256 of its value.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RefreshToken {
    /// Hex SHA-256 of the token.
    #[serde(rename = "_id")]
    pub hash: String,
    /// Every token descending from one login shares a family.
    pub family_id: String,
    /// Owner.
    pub user_id: ObjectId,
    /// Scope granted at login.
    pub scope: String,
    /// Issue time.
    pub created_at: DateTime,
    /// Expiry; a TTL index deletes it afterwards.
    pub expires_at: DateTime,
    /// Set when exchanged for a new token.
    #[serde(default)]
    pub rotated_at: Option<DateTime>,
    /// Set when the token or its family was revoked.
    #[serde(default)]
    pub revoked: bool,
}

/// What came of presenting a refresh token.
pub enum Redemption {
    /// Valid: the token is now rotated and this is its record.
    Rotated(RefreshToken),
    /// Already rotated: a replay, so the whole family has been revoked.
    Reused,
    /// Unknown, expired or revoked.
    Invalid,
}

/// The `refresh_tokens` collection.
#[derive(Clone)]
pub struct RefreshTokens {
    collection: Collection<RefreshToken>,
}

impl RefreshTokens {
    /// Opens the collection.
    pub fn new(db: &Database) -> Self {
        Self {
            collection: db.collection("refresh_tokens"),
        }
    }

    /// TTL and family indexes.
    pub async fn ensure_indexes(&self, patience: std::time::Duration) -> anyhow::Result<()> {
        shared::mongo::ensure_indexes(
            &self.collection,
            vec![
                IndexModel::builder()
                    .keys(doc! {"expires_at": 1})
                    .options(
                        IndexOptions::builder()
                            .expire_after(std::time::Duration::ZERO)
                            .build(),
                    )
                    .build(),
                IndexModel::builder().keys(doc! {"family_id": 1}).build(),
            ],
            patience,
        )
        .await
    }

    /// Stores a new token.
    #[tracing::instrument(skip_all, fields(user.id = %token.user_id))]
    pub async fn insert(&self, token: &RefreshToken) -> mongodb::error::Result<()> {
        self.collection.insert_one(token).await.map(drop)
    }

    /// Marks a live token rotated in one conditional update, so two concurrent redemptions of
    /// the same token cannot both succeed; a token found already rotated revokes its family.
    #[tracing::instrument(skip_all)]
    pub async fn redeem(&self, hash: &str) -> mongodb::error::Result<Redemption> {
        let now = DateTime::now();
        let rotated = self
            .collection
            .find_one_and_update(
                doc! {"_id": hash, "rotated_at": null, "revoked": false, "expires_at": {"$gt": now}},
                doc! {"$set": {"rotated_at": now}},
            )
            .return_document(ReturnDocument::After)
            .await?;
        if let Some(token) = rotated {
            return Ok(Redemption::Rotated(token));
        }
        match self.collection.find_one(doc! {"_id": hash}).await? {
            Some(token) if token.rotated_at.is_some() => {
                tracing::warn!(user.id = %token.user_id, "refresh token replayed; revoking its family");
                self.revoke_family(&token.family_id).await?;
                Ok(Redemption::Reused)
            }
            _ => Ok(Redemption::Invalid),
        }
    }

    /// Revokes every token of a family.
    pub async fn revoke_family(&self, family_id: &str) -> mongodb::error::Result<()> {
        self.collection
            .update_many(
                doc! {"family_id": family_id},
                doc! {"$set": {"revoked": true}},
            )
            .await
            .map(drop)
    }

    /// Revokes the family of the token with this hash, if it exists (RFC 7009).
    #[tracing::instrument(skip_all)]
    pub async fn revoke(&self, hash: &str) -> mongodb::error::Result<()> {
        if let Some(token) = self.collection.find_one(doc! {"_id": hash}).await? {
            self.revoke_family(&token.family_id).await?;
        }
        Ok(())
    }
}
