//! Parsed types: what a value is allowed to be is checked once, where it enters.

pub mod cursor;
pub mod idempotency_key;
pub mod money;
pub mod new_order;
pub mod status;

pub use cursor::Cursor;
pub use idempotency_key::IdempotencyKey;
pub use money::Money;
pub use new_order::{NewOrder, OrderItemRequest, Quantity};
pub use status::OrderStatus;
