//! Minting access tokens and refresh tokens.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Header, encode};
use rand::RngCore;
use sha2::{Digest, Sha256};
use shared::auth::{ACCESS_TOKEN_TYPE, Claims, Role};

use crate::keys::SigningKeys;

/// Signs access tokens with the current key.
#[derive(Clone)]
pub struct TokenIssuer {
    keys: Arc<SigningKeys>,
    issuer: String,
    audience: String,
    ttl: Duration,
}

/// Who a token is for.
pub enum Subject<'a> {
    /// A user.
    User {
        /// User id.
        id: &'a str,
        /// Username.
        username: &'a str,
        /// Role.
        role: Role,
    },
    /// A service client.
    Client {
        /// Client id.
        id: &'a str,
    },
}

impl TokenIssuer {
    /// An issuer of tokens for `issuer`/`audience` living `ttl`.
    pub fn new(keys: Arc<SigningKeys>, issuer: String, audience: String, ttl: Duration) -> Self {
        Self {
            keys,
            issuer,
            audience,
            ttl,
        }
    }

    /// Lifetime in seconds, for `expires_in`.
    pub fn ttl_secs(&self) -> u64 {
        self.ttl.as_secs()
    }

    /// A signed access token.
    pub fn access_token(&self, subject: Subject<'_>, scope: &str) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let (sub, role, username, client_id) = match subject {
            Subject::User { id, username, role } => {
                (id, Some(role), Some(username.to_owned()), None)
            }
            Subject::Client { id } => (id, None, None, Some(id.to_owned())),
        };
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: sub.to_owned(),
            aud: self.audience.clone(),
            exp: now + self.ttl.as_secs() as i64,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            scope: scope.to_owned(),
            role,
            username,
            client_id,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        header.kid = Some(self.keys.kid.clone());
        Ok(encode(&header, &claims, &self.keys.encoding)?)
    }
}

/// A new opaque refresh token (256 random bits) and the hash it is stored under.
pub fn new_refresh_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = refresh_token_hash(&token);
    (token, hash)
}

/// The stored form of a refresh token.
pub fn refresh_token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
