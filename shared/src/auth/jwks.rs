use serde::{Deserialize, Serialize};

/// A JSON Web Key of an Ed25519 public key (RFC 8037).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Jwk {
    /// Always `OKP`.
    pub kty: String,
    /// Always `Ed25519`.
    pub crv: String,
    /// The public key, base64url without padding.
    pub x: String,
    /// Key id, matched against the token header's `kid`.
    pub kid: String,
    /// Always `EdDSA`.
    pub alg: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: String,
}

impl Jwk {
    /// The JWK of an Ed25519 public key given as base64url.
    pub fn ed25519(kid: impl Into<String>, x: impl Into<String>) -> Self {
        Self {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: x.into(),
            kid: kid.into(),
            alg: "EdDSA".into(),
            use_: "sig".into(),
        }
    }
}

/// A JWKS document.
#[derive(Clone, Debug, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct JwkSet {
    /// The keys: current first, then previous ones.
    pub keys: Vec<Jwk>,
}
