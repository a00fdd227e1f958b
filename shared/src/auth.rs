//! Access tokens: the claims, verification against auth-service's JWKS, and the extractors.
//!
//! Only auth-service signs. Every service verifies locally with a [`Verifier`]: the algorithm is
//! pinned to EdDSA, `typ` must be `at+jwt`, and `iss`, `aud`, `exp` and `sub` are required.

mod claims;
mod extract;
mod jwks;
mod verifier;

pub use claims::{Claims, Role};
pub use extract::{AdminUser, AuthUser, Authenticated, RequiredScope, ServiceClient, StockReserve};
pub use jwks::{Jwk, JwkSet};
pub use verifier::{AuthError, KeySource, LEEWAY_SECS, Verifier, VerifierConfig};

/// The JWT `typ` of access tokens (RFC 9068).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";
