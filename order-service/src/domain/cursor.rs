//! The opaque keyset cursor of `GET /orders`.

use bson::oid::ObjectId;
use serde::{Deserialize, Serialize};
use shared::Problem;
use shared::pagination::{decode_cursor, encode_cursor};

/// Position after the last order of a page: its creation time and id (orders are listed newest
/// first, ties broken by id), so inserts between fetches never shift a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// `created_at` of the last order shown, in milliseconds since the epoch.
    pub created_at_ms: i64,
    /// Its id.
    pub id: ObjectId,
}

/// The encoded form.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Position {
    t: i64,
    id: String,
}

impl Cursor {
    /// The opaque text handed to clients.
    pub fn encode(&self) -> String {
        encode_cursor(&Position {
            t: self.created_at_ms,
            id: self.id.to_hex(),
        })
    }

    /// Parses a cursor from a client; anything else is a 422 on `cursor`.
    pub fn decode(text: &str) -> Result<Self, Problem> {
        let position: Position = decode_cursor(text)?;
        let id = ObjectId::parse_str(&position.id).map_err(|_| {
            Problem::invalid_field("cursor", "is not a cursor returned by this list")
        })?;
        Ok(Self {
            created_at_ms: position.t,
            id,
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
        for bad in ["", "!!", "bm90IGEgY3Vyc29y", "eyJ0IjoxLCJpZCI6IngifQ"] {
            let err = Cursor::decode(bad).expect_err(bad);
            assert_eq!(err.status().as_u16(), 422, "{bad}");
        }
    }
}
