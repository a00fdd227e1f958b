//! Integration tests: the real services on port 0, a real MongoDB-protocol server (`MONGODB_URI`,
//! set by `scripts/test.sh`), fresh database names per test, and real HTTP.

mod auth;
mod db_faults;
mod helpers;
mod operations;
mod order_faults;
mod order_helpers;
mod order_idempotency;
mod orders;
mod products;
mod reservations;
mod token_verification;
