//! The client of product-service's reservation API, and what it needs to be a good citizen:
//! a cached service token ([`token`]), a circuit breaker ([`breaker`]), bounded retries with
//! jittered backoff for idempotent calls, and timeouts on everything.

pub mod breaker;
pub mod client;
pub mod error;
pub mod token;
pub mod types;

pub use client::ProductClient;
pub use error::ProductError;
pub use types::{Reservation, ReservedLine};
