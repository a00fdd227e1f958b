//! The Ed25519 signing key and the published key set.
//!
//! With `AUTH_SIGNING_KEY_FILE` the key comes from that PEM file (rotate by replacing the file and
//! restarting). Without it, the first replica to start generates a key and stores it in the
//! `signing_keys` collection under a fixed id, so that every replica signs with the same key
//! whatever the start-up order. Every key ever used is recorded in `public_keys`, and the JWKS
//! publishes the newest few, so tokens signed before a rotation keep verifying.

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bson::{Binary, DateTime, doc, spec::BinarySubtype};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::EncodingKey;
use mongodb::{Collection, Database, IndexModel, options::FindOptions};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared::auth::{Jwk, JwkSet};

use crate::config::Config;

/// How many keys the JWKS publishes: the current one and the previous ones.
const PUBLISHED_KEYS: i64 = 3;
/// Id of the generated key's document.
const GENERATED_ID: &str = "generated";

/// The key this replica signs with.
pub struct SigningKeys {
    /// Key id in the token header.
    pub kid: String,
    /// The private key.
    pub encoding: EncodingKey,
}

#[derive(Serialize, Deserialize)]
struct GeneratedKey {
    #[serde(rename = "_id")]
    id: String,
    kid: String,
    pkcs8: Binary,
    created_at: DateTime,
}

#[derive(Serialize, Deserialize)]
struct PublicKey {
    #[serde(rename = "_id")]
    kid: String,
    x: String,
    first_used_at: DateTime,
}

/// The store of published keys.
#[derive(Clone)]
pub struct KeyStore {
    public: Collection<PublicKey>,
}

impl KeyStore {
    /// Opens the collections.
    pub fn new(db: &Database) -> Self {
        Self {
            public: db.collection("public_keys"),
        }
    }

    /// Indexes of the key collections.
    pub async fn ensure_indexes(&self, patience: std::time::Duration) -> anyhow::Result<()> {
        shared::mongo::ensure_indexes(
            &self.public,
            vec![
                IndexModel::builder()
                    .keys(doc! {"first_used_at": -1})
                    .build(),
            ],
            patience,
        )
        .await
    }

    /// The JWKS: the newest keys first.
    pub async fn jwks(&self) -> mongodb::error::Result<JwkSet> {
        use futures::TryStreamExt;
        let keys: Vec<PublicKey> = self
            .public
            .find(doc! {})
            .with_options(
                FindOptions::builder()
                    .sort(doc! {"first_used_at": -1})
                    .limit(PUBLISHED_KEYS)
                    .build(),
            )
            .await?
            .try_collect()
            .await?;
        Ok(JwkSet {
            keys: keys.into_iter().map(|k| Jwk::ed25519(k.kid, k.x)).collect(),
        })
    }
}

/// Loads or creates the signing key and records its public half.
pub async fn load(config: &Config, db: &Database, store: &KeyStore) -> anyhow::Result<SigningKeys> {
    let signing = match &config.auth.signing_key_file {
        Some(path) => {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("reading AUTH_SIGNING_KEY_FILE {}", path.display()))?;
            SigningKey::from_pkcs8_pem(&pem)
                .context("AUTH_SIGNING_KEY_FILE is not an Ed25519 PKCS#8 PEM key")?
        }
        None => generated_key(db).await?,
    };
    let x = URL_SAFE_NO_PAD.encode(signing.verifying_key().as_bytes());
    let kid = key_id(signing.verifying_key().as_bytes());
    store
        .public
        .update_one(
            doc! {"_id": &kid},
            doc! {"$setOnInsert": {"x": &x, "first_used_at": DateTime::now()}},
        )
        .upsert(true)
        .await
        .or_else(|e| {
            if shared::mongo::is_duplicate_key(&e) {
                Ok(Default::default())
            } else {
                Err(e)
            }
        })?;
    let der = signing.to_pkcs8_der().context("encoding the signing key")?;
    Ok(SigningKeys {
        kid,
        encoding: EncodingKey::from_ed_der(der.as_bytes()),
    })
}

/// The shared generated key: read it, or insert one; when two replicas race, the loser's insert
/// fails on the fixed id and it reads the winner's key.
async fn generated_key(db: &Database) -> anyhow::Result<SigningKey> {
    let keys: Collection<GeneratedKey> = db.collection("signing_keys");
    if let Some(existing) = keys.find_one(doc! {"_id": GENERATED_ID}).await? {
        return decode(&existing);
    }
    let signing = SigningKey::generate(&mut rand::rngs::OsRng);
    let der = signing.to_pkcs8_der().context("encoding the new key")?;
    let doc = GeneratedKey {
        id: GENERATED_ID.into(),
        kid: key_id(signing.verifying_key().as_bytes()),
        pkcs8: Binary {
            subtype: BinarySubtype::Generic,
            bytes: der.as_bytes().to_vec(),
        },
        created_at: DateTime::now(),
    };
    match keys.insert_one(&doc).await {
        Ok(_) => {
            tracing::info!(kid = %doc.kid, "generated a new signing key and stored it for every replica");
            Ok(signing)
        }
        Err(e) if shared::mongo::is_duplicate_key(&e) => {
            let existing = keys
                .find_one(doc! {"_id": GENERATED_ID})
                .await?
                .context("the generated key vanished")?;
            decode(&existing)
        }
        Err(e) => Err(e.into()),
    }
}

fn decode(doc: &GeneratedKey) -> anyhow::Result<SigningKey> {
    SigningKey::from_pkcs8_der(&doc.pkcs8.bytes).context("stored signing key is corrupt")
}

/// A stable key id: the first 16 characters of the base64url SHA-256 of the public key.
fn key_id(public: &[u8]) -> String {
    let digest = Sha256::digest(public);
    URL_SAFE_NO_PAD.encode(digest)[..16].to_owned()
}
