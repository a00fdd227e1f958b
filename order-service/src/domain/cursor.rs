//! The opaque keyset cursor of `GET /orders`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bson::oid::ObjectId;
use shared::Problem;

/// Position after the last order of a page: its creation time and id (orders are listed newest
/// first, ties broken by id), so inserts between fetches never shift a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// `created_at` of the last order shown, in milliseconds since the epoch.
    pub created_at_ms: i64,
    /// Its id.
    pub id: ObjectId,
}

impl Cursor {
    /// The opaque text handed to clients.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}", self.created_at_ms, self.id.to_hex()))
    }

    /// Parses a cursor from a client; anything else is a 422 on `cursor`.
    pub fn decode(text: &str) -> Result<Self, Problem> {
        let invalid = || Problem::invalid_field("cursor", "is not a cursor this service issued");
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (ms, id) = text.split_once(':').ok_or_else(invalid)?;
        Ok(Self {
            created_at_ms: ms.parse().map_err(|_| invalid())?,
            id: ObjectId::parse_str(id).map_err(|_| invalid())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_422() {
        let cursor = Cursor {
            created_at_ms: 1_700_000_000_123,
            id: ObjectId::new(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), cursor);
        for bad in ["", "!!", "bm90IGEgY3Vyc29y", "MTox"] {
            let err = Cursor::decode(bad).expect_err(bad);
            assert_eq!(err.status().as_u16(), 422, "{bad}");
        }
    }
}
