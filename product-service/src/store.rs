//! MongoDB access of product-service: products and reservations, each store with its indexes.

pub mod batch;
pub mod cache;
pub mod products;
pub mod reservations;

pub use batch::BatchedReads;
pub use cache::{ProductCache, RenderedProduct};
pub use products::{ListQuery, ProductDoc, Products, SortOrder};
pub use reservations::{ReleaseOutcome, ReservationDoc, Reservations, ReserveOutcome};
