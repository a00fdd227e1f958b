//! MongoDB access of order-service. Each store wraps its collection and creates its indexes.

pub mod idempotency;
pub mod orders;

pub use idempotency::{Begin, IdempotencyKeys, StoredResponse};
pub use orders::{Order, OrderLine, Orders, Page};
