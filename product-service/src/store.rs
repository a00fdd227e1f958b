//! MongoDB access of product-service: products and reservations, each store with its indexes,
//! and the cache of reads with the change stream that keeps it fresh.

pub mod batch;
pub mod cache;
pub mod products;
pub mod reservations;
pub mod watch;

pub use batch::BatchedReads;
pub use cache::{Change, ProductCache, RenderedProduct};
pub use products::{ListQuery, ProductDoc, Products, SortOrder};
pub use reservations::{ReleaseOutcome, ReservationDoc, Reservations, ReserveOutcome};
