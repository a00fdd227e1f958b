//! The answers of `POST /orders`, built once and stored for `Idempotency-Key` replays.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::Value;
use shared::{FieldError, Problem, Result};

use crate::routes::orders::OrderView;
use crate::state::AppState;
use crate::store::{Order, StoredResponse};

pub use crate::products::error::INSUFFICIENT_STOCK;

/// The outcome of running the saga once.
pub struct Outcome {
    /// The answer.
    pub response: StoredResponse,
    /// Extra headers not stored for replays.
    pub retry_after: Option<u64>,
    /// Whether a replay under the same key should get this same answer (not for transient 503s).
    pub replayable: bool,
}

/// Counts an outcome of `POST /orders`.
pub fn count(outcome: &'static str) {
    metrics::counter!("orders_created_total", "outcome" => outcome).increment(1);
}

/// An answer that replays get too.
pub fn replayable(response: StoredResponse) -> Outcome {
    Outcome {
        response,
        retry_after: None,
        replayable: true,
    }
}

/// 503 with `Retry-After`; not replayed (a retry runs afresh).
pub fn unavailable(state: &AppState, detail: &str) -> Outcome {
    let secs = state.config.service.retry_after_secs;
    Outcome {
        response: problem_response(&Problem::unavailable(secs, detail)),
        retry_after: Some(secs),
        replayable: false,
    }
}

/// The 201 of a placed order.
pub fn created(order: &Order) -> Result<StoredResponse> {
    let body = serde_json::to_string(&OrderView::from(order)).map_err(anyhow::Error::from)?;
    Ok(StoredResponse {
        status: StatusCode::CREATED.as_u16(),
        content_type: "application/json".to_owned(),
        body,
        location: Some(format!("/orders/{}", order.id.to_hex())),
    })
}

/// A stored answer replayed, marked as such.
pub fn replay(stored: &StoredResponse) -> Response {
    count("replayed");
    let mut response = to_response(stored);
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

/// The HTTP response of an outcome.
pub fn respond(outcome: &Outcome) -> Response {
    let mut response = to_response(&outcome.response);
    if let Some(secs) = outcome.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    }
    response
}

/// 409 naming the products short, as product-service reported them.
pub fn insufficient_stock(upstream: &Value) -> StoredResponse {
    let detail = upstream["detail"]
        .as_str()
        .unwrap_or("not enough stock for some products; nothing was reserved");
    let mut problem = Problem::new(
        StatusCode::CONFLICT,
        INSUFFICIENT_STOCK,
        "Insufficient stock",
    )
    .detail(detail);
    problem = with_upstream_extensions(problem, upstream);
    problem_response(&problem)
}

/// 422 naming the unknown products, as product-service reported them.
pub fn unknown_product(upstream: &Value) -> StoredResponse {
    let mut errors: Vec<FieldError> = upstream["errors"]
        .as_array()
        .map(|errs| {
            errs.iter()
                .filter_map(|e| {
                    Some(FieldError::new(
                        e["field"].as_str()?,
                        e["message"].as_str().unwrap_or("is not a product"),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    if errors.is_empty() {
        let detail = upstream["detail"]
            .as_str()
            .unwrap_or("names a product that does not exist");
        errors.push(FieldError::new("items", detail));
    }
    problem_response(&with_upstream_extensions(
        Problem::validation(errors),
        upstream,
    ))
}

/// Copies product-service's extension members (e.g. the products concerned).
fn with_upstream_extensions(mut problem: Problem, upstream: &Value) -> Problem {
    const STANDARD: [&str; 7] = [
        "type",
        "title",
        "status",
        "detail",
        "instance",
        "errors",
        "request_id",
    ];
    if let Some(members) = upstream.as_object() {
        for (name, value) in members {
            if !STANDARD.contains(&name.as_str()) {
                problem = problem.extension(name, value);
            }
        }
    }
    problem
}

fn problem_response(problem: &Problem) -> StoredResponse {
    StoredResponse {
        status: problem.status().as_u16(),
        content_type: shared::problem::PROBLEM_JSON.to_owned(),
        body: serde_json::to_string(&problem.body()).unwrap_or_default(),
        location: None,
    }
}

/// The HTTP response of a stored answer.
fn to_response(stored: &StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, stored.body.clone()).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&stored.content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    if let Some(location) = stored
        .location
        .as_deref()
        .and_then(|l| HeaderValue::from_str(l).ok())
    {
        headers.insert(header::LOCATION, location);
    }
    response
}
