//! Keyset pagination: `limit` and an opaque `cursor`, answered as `{"items", "next_cursor"}`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::problem::Problem;

/// Default page size.
pub const DEFAULT_LIMIT: u32 = 20;
/// Largest page size.
pub const MAX_LIMIT: u32 = 100;

/// A page of items.
#[derive(Serialize, Deserialize, Debug, utoipa::ToSchema)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Pass it as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Checks `limit` (1..=100, default 20).
pub fn limit(raw: Option<u32>) -> Result<u32, Problem> {
    match raw {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(Problem::invalid_field("limit", "must be between 1 and 100")),
    }
}

/// Encodes a cursor position.
pub fn encode_cursor<T: Serialize>(position: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(position).unwrap_or_default())
}

/// Decodes a cursor; anything not produced by [`encode_cursor`] for this position type is a 422.
pub fn decode_cursor<T: DeserializeOwned>(cursor: &str) -> Result<T, Problem> {
    let invalid = || Problem::invalid_field("cursor", "is not a cursor returned by this list");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    serde_json::from_slice(&bytes).map_err(|_| invalid())
}
