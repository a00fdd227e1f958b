//! [`ProductClient`]: typed calls to product-service's reservation API.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use rand::Rng;
use secrecy::ExposeSecret;
use serde_json::Value;

use super::breaker::{Breaker, breaker};
use super::error::{INSUFFICIENT_STOCK, ProductError, parse_reservation, problem_of, unexpected};
use super::token::ServiceTokens;
use super::types::{Reservation, ReserveItem, ReserveRequest};
use crate::config::OrderSettings;

/// Longest pause between two attempts.
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// One `reqwest::Client` (connection pool, connect timeout) for product-service, with a cached
/// service token, retries of idempotent calls and a circuit breaker. Cheap to clone.
#[derive(Clone)]
pub struct ProductClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base_url: String,
    tokens: ServiceTokens,
    breaker: Breaker,
    attempt_timeout: Duration,
    deadline: Duration,
    retries: u32,
    backoff: Duration,
}

/// What one attempt's answer means.
enum Answer<T> {
    Done(Result<T, ProductError>),
    /// The token was refused: fetch another and try again once.
    TokenRefused,
}

impl ProductClient {
    /// Builds the client from the settings.
    pub fn new(settings: &OrderSettings) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(settings.product_connect_timeout_ms))
            .timeout(Duration::from_millis(settings.product_timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let tokens = ServiceTokens::new(
            http.clone(),
            settings.auth_token_url.clone(),
            settings.client_id.clone(),
            settings.client_secret.clone(),
        );
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base_url: settings
                    .product_service_url
                    .trim_end_matches('/')
                    .to_owned(),
                tokens,
                breaker: breaker(
                    settings.breaker_failures,
                    Duration::from_millis(settings.breaker_open_ms),
                    Duration::from_millis(settings.breaker_max_open_ms),
                ),
                attempt_timeout: Duration::from_millis(settings.product_timeout_ms),
                deadline: Duration::from_millis(settings.product_deadline_ms),
                retries: settings.product_retries,
                backoff: Duration::from_millis(settings.product_backoff_ms),
            }),
        })
    }

    /// Reserves the stock of order `order_id`, all lines or none. Idempotent by order id, so it
    /// is retried on transient failures.
    #[tracing::instrument(skip_all, fields(order.id = %order_id))]
    pub async fn reserve(
        &self,
        order_id: &str,
        items: &[(String, u32)],
    ) -> Result<Reservation, ProductError> {
        let body = ReserveRequest {
            order_id,
            items: items
                .iter()
                .map(|(product_id, quantity)| ReserveItem {
                    product_id,
                    quantity: *quantity,
                })
                .collect(),
        };
        let body = serde_json::to_value(&body).map_err(|e| ProductError::Unavailable {
            reason: format!("serialising the reservation: {e}"),
            maybe_applied: false,
        })?;
        self.call(
            "reserve",
            Method::POST,
            "/reservations".to_owned(),
            Some(body),
            |status, bytes| match status {
                StatusCode::OK | StatusCode::CREATED => parse_reservation(bytes),
                StatusCode::CONFLICT => {
                    let problem = problem_of(bytes);
                    if problem["type"] == INSUFFICIENT_STOCK {
                        Err(ProductError::InsufficientStock(problem))
                    } else {
                        Err(ProductError::Conflict(problem))
                    }
                }
                StatusCode::UNPROCESSABLE_ENTITY => {
                    Err(ProductError::UnknownProduct(problem_of(bytes)))
                }
                other => Err(unexpected(other)),
            },
        )
        .await
    }

    /// Gives the stock of order `order_id` back (or leaves a tombstone, so that a reservation
    /// still in flight is refused). Idempotent.
    #[tracing::instrument(skip_all, fields(order.id = %order_id))]
    pub async fn release(&self, order_id: &str) -> Result<(), ProductError> {
        let path = format!("/reservations/{order_id}");
        self.call(
            "release",
            Method::DELETE,
            path,
            None,
            |status, _| match status {
                s if s.is_success() => Ok(()),
                StatusCode::NOT_FOUND => Ok(()),
                other => Err(unexpected(other)),
            },
        )
        .await
    }

    /// The reservation of order `order_id`.
    #[tracing::instrument(skip_all, fields(order.id = %order_id))]
    pub async fn get(&self, order_id: &str) -> Result<Reservation, ProductError> {
        let path = format!("/reservations/{order_id}");
        self.call(
            "get",
            Method::GET,
            path,
            None,
            |status, bytes| match status {
                StatusCode::OK => parse_reservation(bytes),
                StatusCode::NOT_FOUND => Err(ProductError::NotFound),
                other => Err(unexpected(other)),
            },
        )
        .await
    }

    /// Runs one idempotent call: attempts within the deadline, each bounded by the attempt
    /// timeout, with jittered exponential backoff between them, through the circuit breaker.
    async fn call<T>(
        &self,
        operation: &'static str,
        method: Method,
        path: String,
        body: Option<Value>,
        interpret: impl Fn(StatusCode, &[u8]) -> Result<T, ProductError>,
    ) -> Result<T, ProductError> {
        let inner = &self.inner;
        let started = Instant::now();
        let url = format!("{}{path}", inner.base_url);
        let mut maybe_applied = false;
        let mut reason = String::from("no attempt was made");
        let mut token_refreshed = false;
        // Failures (transport errors, timeouts, 500/502/504) are retried `retries` times;
        // back-pressure answers (503, 429) as long as the deadline allows.
        let mut failures = 0;
        let mut round = 0;
        while let Some(remaining) = inner.deadline.checked_sub(started.elapsed()) {
            if remaining < Duration::from_millis(20) {
                break;
            }
            if !inner.breaker.is_call_permitted() {
                count(operation, "rejected");
                reason = "the circuit is open".to_owned();
                break;
            }
            let token = match inner.tokens.get(remaining).await {
                Ok(token) => token,
                Err(e) => {
                    count(operation, "token_error");
                    reason = e;
                    break;
                }
            };
            let remaining = inner.deadline.saturating_sub(started.elapsed());
            let mut headers = http::HeaderMap::new();
            shared::context::propagate(&mut headers);
            let mut request = inner
                .http
                .request(method.clone(), &url)
                .headers(headers)
                .bearer_auth(token.expose_secret())
                .timeout(inner.attempt_timeout.min(remaining));
            if let Some(body) = &body {
                request = request.json(body);
            }
            let outcome = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    match response.bytes().await {
                        Ok(bytes) => Ok((status, bytes)),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            match outcome {
                Ok((status, bytes)) if !is_transient(status) => {
                    inner.breaker.on_success();
                    let answer = if status == StatusCode::UNAUTHORIZED && !token_refreshed {
                        Answer::TokenRefused
                    } else {
                        Answer::Done(interpret(status, &bytes))
                    };
                    match answer {
                        Answer::TokenRefused => {
                            count(operation, "token_refused");
                            tracing::warn!(
                                "product-service refused the service token; renewing it"
                            );
                            inner.tokens.invalidate().await;
                            token_refreshed = true;
                            continue;
                        }
                        Answer::Done(result) => {
                            count(
                                operation,
                                if status.is_success() {
                                    "success"
                                } else {
                                    "client_error"
                                },
                            );
                            return result;
                        }
                    }
                }
                Ok((status, _)) => {
                    // 503 and 429 are product-service's own back-pressure (contention, its
                    // database down): retried, but they do not trip the breaker; a 500, 502 or
                    // 504 does.
                    if is_back_pressure(status) {
                        count(operation, "back_pressure");
                    } else {
                        inner.breaker.on_error();
                        count(operation, "server_error");
                        failures += 1;
                    }
                    maybe_applied = true;
                    reason = format!("product-service answered {status}");
                }
                Err(e) => {
                    inner.breaker.on_error();
                    let kind = if e.is_connect() {
                        "connect_error"
                    } else if e.is_timeout() {
                        "timeout"
                    } else {
                        "transport_error"
                    };
                    count(operation, kind);
                    maybe_applied |= !e.is_connect();
                    reason = format!("{kind}: {e}");
                    failures += 1;
                }
            }
            if failures > inner.retries {
                break;
            }
            round += 1;
            let pause = jittered(inner.backoff, round);
            let remaining = inner.deadline.saturating_sub(started.elapsed());
            tokio::time::sleep(pause.min(remaining)).await;
        }
        tracing::warn!(operation, reason = %reason, maybe_applied, "product-service call failed");
        Err(ProductError::Unavailable {
            reason,
            maybe_applied,
        })
    }
}

/// Worth another attempt: product-service (or a proxy before it) is failing or overloaded.
fn is_transient(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

/// An explicit "retry later" from a live product-service.
fn is_back_pressure(status: StatusCode) -> bool {
    status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS
}

/// `base * 2^(round-1)` up to [`MAX_PAUSE`], half fixed and half random.
fn jittered(base: Duration, round: u32) -> Duration {
    let full = base
        .saturating_mul(1 << round.saturating_sub(1).min(10))
        .min(MAX_PAUSE);
    let half = full / 2;
    half + Duration::from_millis(rand::thread_rng().gen_range(0..=half.as_millis() as u64))
}

fn count(operation: &'static str, outcome: &'static str) {
    metrics::counter!("product_client_requests_total", "operation" => operation, "outcome" => outcome)
        .increment(1);
}
