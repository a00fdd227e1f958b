//! Parsed product-service values: a value of these types is valid by construction.

pub mod fields;
pub mod reservation;

pub use fields::{NewProduct, ProductPatch};
pub use reservation::{ReservationLine, ReservationRequest};

/// Highest price, in minor units (1,000,000.00).
pub const MAX_PRICE_MINOR: i64 = 100_000_000;
/// Highest stock level.
pub const MAX_STOCK: i64 = 1_000_000_000;
