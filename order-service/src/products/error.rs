//! How product-service's answers map to outcomes.

use http::StatusCode;
use serde_json::Value;

use super::types::Reservation;

/// Problem type of a refusal for lack of stock, product-service's and order-service's alike.
pub const INSUFFICIENT_STOCK: &str = "urn:shop:problem:insufficient-stock";

/// Why a call to product-service did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ProductError {
    /// Some line is short of stock; nothing was reserved. Carries product-service's problem.
    #[error("insufficient stock")]
    InsufficientStock(Value),
    /// Some product is unknown or deleted; nothing was reserved. Carries the problem.
    #[error("unknown product")]
    UnknownProduct(Value),
    /// The order id was reserved with other items, or released before (a tombstone).
    #[error("reservation conflict")]
    Conflict(Value),
    /// No reservation for this order id.
    #[error("no such reservation")]
    NotFound,
    /// product-service (or the token endpoint) is down, failing, too slow, or the circuit is
    /// open. `maybe_applied`: a request may have reached product-service and taken effect.
    #[error("product-service unavailable: {reason}")]
    Unavailable {
        /// What happened, for the log.
        reason: String,
        /// Whether the call may have had its effect anyway.
        maybe_applied: bool,
    },
}

/// Parses a reservation; an unreadable one is treated as an outage (it may have been applied).
pub fn parse_reservation(bytes: &[u8]) -> Result<Reservation, ProductError> {
    serde_json::from_slice(bytes).map_err(|e| ProductError::Unavailable {
        reason: format!("unreadable reservation from product-service: {e}"),
        maybe_applied: true,
    })
}

/// The problem body of an error answer (`null` if unreadable).
pub fn problem_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

/// An answer this client does not expect: treated as an outage, never as the client's fault.
pub fn unexpected(status: StatusCode) -> ProductError {
    ProductError::Unavailable {
        reason: format!("unexpected answer {status} from product-service"),
        maybe_applied: false,
    }
}
