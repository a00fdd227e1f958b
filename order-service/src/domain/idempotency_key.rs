//! The `Idempotency-Key` request header.

use axum::extract::FromRequestParts;
use http::request::Parts;
use shared::Problem;

/// The header name.
pub const HEADER: &str = "idempotency-key";

/// A client-chosen key making a retried `POST /orders` safe: 1..=255 visible ASCII characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Parses a header value.
    pub fn parse(raw: &[u8]) -> Result<Self, Problem> {
        let valid = (1..=255).contains(&raw.len()) && raw.iter().all(|b| b.is_ascii_graphic());
        if !valid {
            return Err(Problem::bad_request(
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            ));
        }
        Ok(Self(String::from_utf8_lossy(raw).into_owned()))
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Extracts the optional `Idempotency-Key`; a malformed one (or several) is a 400.
#[derive(Clone, Debug)]
pub struct MaybeIdempotencyKey(pub Option<IdempotencyKey>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeIdempotencyKey {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut values = parts.headers.get_all(HEADER).iter();
        let Some(first) = values.next() else {
            return Ok(Self(None));
        };
        if values.next().is_some() {
            return Err(Problem::bad_request("send one Idempotency-Key header"));
        }
        IdempotencyKey::parse(first.as_bytes()).map(|k| Self(Some(k)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_one_to_255_visible_ascii_characters() {
        assert!(IdempotencyKey::parse(b"a").is_ok());
        assert!(IdempotencyKey::parse(&[b'k'; 255]).is_ok());
        for (bad, why) in [
            (&b""[..], "empty"),
            (&[b'k'; 256][..], "too long"),
            (&b"has space"[..], "space"),
            (&b"tab\t"[..], "control character"),
            ("caf\u{e9}".as_bytes(), "not ASCII"),
        ] {
            let err = IdempotencyKey::parse(bad).expect_err(why);
            assert_eq!(err.status().as_u16(), 400, "{why}");
        }
    }
}
