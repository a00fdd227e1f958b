//! What every shop service shares.
//!
//! - [`problem`]: RFC 9457 `application/problem+json` errors and the [`ApiError`] every handler returns.
//! - [`extract`]: `Json`, `Path` and `Query` wrappers whose rejections are problems too.
//! - [`auth`]: access-token verification against auth-service's JWKS and the `AuthUser`,
//!   `AdminUser` and `ServiceClient` extractors.
//! - [`server`]: the common middleware stack (request ids, tracing, metrics, security headers,
//!   timeouts, body limits), the operations routes and graceful serving.
//! - [`context`]: the per-request id and trace context, forwarded on outbound calls.
//! - [`telemetry`]: log and metrics set-up.
//! - [`config`]: settings every service reads from the environment.
//! - [`mongo`]: one MongoDB client per process with safe defaults, and error classification.
//! - [`net`]: client addresses behind trusted proxies and per-address rate limiting.
//! - [`money`]: exact decimal parsing and formatting of amounts in minor units.
//! - [`openapi`]: serving the OpenAPI document and the `/docs` page.
//! - [`pagination`]: keyset pagination cursors, limits and pages.

pub mod auth;
pub mod config;
pub mod context;
pub mod extract;
pub mod money;
pub mod mongo;
pub mod net;
pub mod openapi;
pub mod pagination;
pub mod problem;
pub mod server;
pub mod telemetry;

pub use problem::{ApiError, FieldError, Problem};

/// The result type of handlers and stores: errors become problem+json responses.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;
