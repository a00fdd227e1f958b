//! MongoDB access of product-service: products and reservations, each store with its indexes.

pub mod products;
pub mod reservations;

pub use products::{ListQuery, ProductDoc, Products, SortOrder};
pub use reservations::{ReleaseOutcome, ReservationDoc, Reservations, ReserveOutcome};
