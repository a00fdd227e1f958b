//! MongoDB access of auth-service. Each store wraps its collections and creates its indexes.

pub mod login_failures;
pub mod refresh_tokens;
pub mod users;

pub use login_failures::LoginFailures;
pub use refresh_tokens::RefreshTokens;
pub use users::{User, Users};
