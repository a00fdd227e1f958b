//! The service token order-service presents to product-service: obtained from auth-service with
//! the `client_credentials` grant (HTTP Basic), cached, and renewed before it expires. One fetch
//! at a time: concurrent callers wait for it instead of all asking auth-service.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

use super::types::TokenResponse;

/// The scope needed to reserve stock.
pub const SCOPE: &str = "stock:reserve";

/// Renew when less than this share of the lifetime is left (at most one minute before expiry).
const RENEW_MARGIN_MAX: Duration = Duration::from_secs(60);

/// A cached service token source.
pub struct ServiceTokens {
    http: reqwest::Client,
    url: String,
    client_id: String,
    client_secret: SecretString,
    cached: Mutex<Option<Cached>>,
}

struct Cached {
    token: SecretString,
    renew_at: Instant,
}

impl ServiceTokens {
    /// A token source for the client `client_id` at the token endpoint `url`.
    pub fn new(
        http: reqwest::Client,
        url: String,
        client_id: String,
        client_secret: SecretString,
    ) -> Self {
        Self {
            http,
            url,
            client_id,
            client_secret,
            cached: Mutex::new(None),
        }
    }

    /// A valid token, fetched within `budget` if none is cached. The error names the cause
    /// (never the secret).
    pub async fn get(&self, budget: Duration) -> Result<SecretString, String> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref()
            && Instant::now() < c.renew_at
        {
            return Ok(c.token.clone());
        }
        let fetched = self.fetch(budget).await?;
        let lifetime = Duration::from_secs(fetched.expires_in);
        let margin = (lifetime / 5).min(RENEW_MARGIN_MAX);
        let token = SecretString::from(fetched.access_token);
        *cached = Some(Cached {
            token: token.clone(),
            renew_at: Instant::now() + lifetime.saturating_sub(margin),
        });
        Ok(token)
    }

    /// Drops the cached token (product-service refused it), so the next call fetches a new one.
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    async fn fetch(&self, budget: Duration) -> Result<TokenResponse, String> {
        let mut headers = http::HeaderMap::new();
        shared::context::propagate(&mut headers);
        let response = self
            .http
            .post(&self.url)
            .headers(headers)
            .basic_auth(&self.client_id, Some(self.client_secret.expose_secret()))
            .form(&[("grant_type", "client_credentials"), ("scope", SCOPE)])
            .timeout(budget)
            .send()
            .await
            .map_err(|e| format!("auth-service token endpoint not reachable: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            tracing::error!(status = status.as_u16(), client_id = %self.client_id, "auth-service refused the service token request");
            return Err(format!(
                "auth-service answered {status} to the token request"
            ));
        }
        let token: TokenResponse = response
            .json()
            .await
            .map_err(|e| format!("unreadable token response: {e}"))?;
        tracing::debug!(expires_in = token.expires_in, "service token fetched");
        Ok(token)
    }
}
