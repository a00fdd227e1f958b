//! The `shop` package: the all-in-one binary (`src/main.rs`) that runs the three services in one
//! process, the invariant checker (`src/bin/check-invariants.rs`), and the end-to-end tests.
//!
//! - [`invariants`]: reads product-service's and order-service's databases and reports every
//!   broken invariant of stock, reservations, orders and idempotency keys.

pub mod invariants;
