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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use axum::routing::post;

    use super::*;

    /// A token endpoint issuing `t1`, `t2`... valid for `lifetime` seconds; counts its calls.
    async fn token_endpoint(lifetime: u64) -> (String, Arc<AtomicU64>) {
        let calls = Arc::new(AtomicU64::new(0));
        let counter = calls.clone();
        let app = axum::Router::new().route(
            "/token",
            post(move |headers: http::HeaderMap| {
                let counter = counter.clone();
                async move {
                    let basic = headers
                        .get(http::header::AUTHORIZATION)
                        .is_some_and(|v| v.as_bytes().starts_with(b"Basic "));
                    if !basic {
                        return Err(http::StatusCode::UNAUTHORIZED);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                    Ok(axum::Json(serde_json::json!({
                        "access_token": format!("t{n}"),
                        "expires_in": lifetime,
                        "token_type": "Bearer",
                    })))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, calls)
    }

    fn tokens(url: String) -> ServiceTokens {
        ServiceTokens::new(
            reqwest::Client::new(),
            url,
            "order-service".into(),
            SecretString::from("secret"),
        )
    }

    #[tokio::test]
    async fn one_fetch_serves_concurrent_callers_until_the_token_is_refused() {
        let (url, calls) = token_endpoint(3600).await;
        let tokens = tokens(url);
        let budget = Duration::from_secs(2);
        let got = futures::future::join_all((0..10).map(|_| tokens.get(budget))).await;
        assert!(
            got.iter()
                .all(|t| t.as_ref().unwrap().expose_secret() == "t1")
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1, "single flight");
        tokens.invalidate().await;
        assert_eq!(tokens.get(budget).await.unwrap().expose_secret(), "t2");
    }

    #[tokio::test]
    async fn the_token_is_renewed_before_it_expires() {
        let (url, calls) = token_endpoint(1).await;
        let tokens = tokens(url);
        let budget = Duration::from_secs(2);
        assert_eq!(tokens.get(budget).await.unwrap().expose_secret(), "t1");
        assert_eq!(tokens.get(budget).await.unwrap().expose_secret(), "t1");
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert_eq!(
            tokens.get(budget).await.unwrap().expose_secret(),
            "t2",
            "renewed with a fifth of its lifetime left"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_unreachable_token_endpoint_is_an_error_not_a_hang() {
        let tokens = tokens("http://127.0.0.1:9/token".into());
        assert!(tokens.get(Duration::from_millis(500)).await.is_err());
    }
}
