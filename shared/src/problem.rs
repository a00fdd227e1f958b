//! RFC 9457 problem details, the error shape of every route but `POST /token`.

use std::borrow::Cow;

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use serde::Serialize;
use utoipa::ToSchema;

use crate::context::RequestContext;

/// Media type of problem responses.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Stable problem type URIs, one per kind of problem. Listed in every OpenAPI document.
pub mod types {
    pub const BAD_REQUEST: &str = "urn:shop:problem:bad-request";
    pub const UNAUTHORIZED: &str = "urn:shop:problem:unauthorized";
    pub const FORBIDDEN: &str = "urn:shop:problem:forbidden";
    pub const NOT_FOUND: &str = "urn:shop:problem:not-found";
    pub const METHOD_NOT_ALLOWED: &str = "urn:shop:problem:method-not-allowed";
    pub const CONFLICT: &str = "urn:shop:problem:conflict";
    pub const PRECONDITION_FAILED: &str = "urn:shop:problem:precondition-failed";
    pub const PAYLOAD_TOO_LARGE: &str = "urn:shop:problem:payload-too-large";
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "urn:shop:problem:unsupported-media-type";
    pub const VALIDATION: &str = "urn:shop:problem:validation";
    pub const PRECONDITION_REQUIRED: &str = "urn:shop:problem:precondition-required";
    pub const TOO_MANY_REQUESTS: &str = "urn:shop:problem:too-many-requests";
    pub const INTERNAL: &str = "urn:shop:problem:internal";
    pub const UNAVAILABLE: &str = "urn:shop:problem:unavailable";
    pub const TIMEOUT: &str = "urn:shop:problem:timeout";
}

/// One invalid field of a 422 answer.
#[derive(Clone, Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field, e.g. `items[0].quantity`.
    pub field: String,
    /// What is wrong with it, for a human.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The body of a problem response, as documented in the OpenAPI documents.
#[derive(Serialize, ToSchema)]
pub struct ProblemBody {
    /// Stable URI of the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Invalid fields (422 only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The request id, to find the matching log lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Extension members of some problem types (for example the products short of stock).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

/// A client-facing error: status, type, human text and optional headers and extensions.
/// Boxed, so that results carrying it stay small.
#[derive(Clone, Debug)]
pub struct Problem(Box<ProblemData>);

#[derive(Clone, Debug)]
struct ProblemData {
    status: StatusCode,
    kind: &'static str,
    title: Cow<'static, str>,
    detail: Option<String>,
    errors: Vec<FieldError>,
    extensions: serde_json::Map<String, serde_json::Value>,
    headers: HeaderMap,
}

impl Problem {
    /// A problem of the given status and type.
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        title: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self(Box::new(ProblemData {
            status,
            kind,
            title: title.into(),
            detail: None,
            errors: Vec::new(),
            extensions: serde_json::Map::new(),
            headers: HeaderMap::new(),
        }))
    }

    /// Adds the human-readable detail of this occurrence.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.0.detail = Some(detail.into());
        self
    }

    /// Adds an extension member.
    pub fn extension(mut self, name: &str, value: impl Serialize) -> Self {
        if let Ok(value) = serde_json::to_value(value) {
            self.0.extensions.insert(name.to_owned(), value);
        }
        self
    }

    /// Adds a response header.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.0.headers.insert(name, value);
        self
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// The problem type URI.
    pub fn kind(&self) -> &'static str {
        self.0.kind
    }

    /// The field errors.
    pub fn errors(&self) -> &[FieldError] {
        &self.0.errors
    }

    /// 400: a request that cannot be parsed.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, types::BAD_REQUEST, "Bad request").detail(detail)
    }

    /// 401 with `WWW-Authenticate: Bearer`; `error="invalid_token"` when a token was presented.
    pub fn unauthorized(token_presented: bool) -> Self {
        let challenge = if token_presented {
            HeaderValue::from_static(
                r#"Bearer error="invalid_token", error_description="the access token is invalid""#,
            )
        } else {
            HeaderValue::from_static("Bearer")
        };
        Self::new(
            StatusCode::UNAUTHORIZED,
            types::UNAUTHORIZED,
            "Unauthorized",
        )
        .detail(if token_presented {
            "the access token is missing, malformed, expired or not trusted"
        } else {
            "this route requires a bearer access token"
        })
        .header(header::WWW_AUTHENTICATE, challenge)
    }

    /// 403: authenticated but not allowed.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, types::FORBIDDEN, "Forbidden").detail(detail)
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, types::NOT_FOUND, "Not found").detail(detail)
    }

    /// 409 of the generic conflict type.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, types::CONFLICT, "Conflict").detail(detail)
    }

    /// 422 with one entry per invalid field.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            _ => format!("{} fields are invalid", errors.len()),
        };
        let mut problem = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            types::VALIDATION,
            "Validation failed",
        )
        .detail(detail);
        problem.0.errors = errors;
        problem
    }

    /// 422 for a single field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new(field, message)])
    }

    /// 415.
    pub fn unsupported_media_type(expected: &str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            types::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported media type",
        )
        .detail(format!("the request body must be {expected}"))
    }

    /// 413.
    pub fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            types::PAYLOAD_TOO_LARGE,
            "Payload too large",
        )
        .detail("the request body is larger than this service accepts")
    }

    /// 429 with `Retry-After` in whole seconds (at least 1).
    pub fn too_many_requests(retry_after_secs: u64, detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            types::TOO_MANY_REQUESTS,
            "Too many requests",
        )
        .detail(detail)
        .header(
            header::RETRY_AFTER,
            HeaderValue::from(retry_after_secs.max(1)),
        )
    }

    /// 503 with `Retry-After`: a dependency is down or too slow.
    pub fn unavailable(retry_after_secs: u64, detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            types::UNAVAILABLE,
            "Service unavailable",
        )
        .detail(detail)
        .header(
            header::RETRY_AFTER,
            HeaderValue::from(retry_after_secs.max(1)),
        )
    }

    /// 500 without any internal detail.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            types::INTERNAL,
            "Internal server error",
        )
        .detail("an unexpected error occurred; the request id identifies it in the logs")
    }

    /// The problem for a bare status produced outside the handlers (routing, limits, timeouts).
    pub fn for_status(status: StatusCode) -> Self {
        match status {
            StatusCode::NOT_FOUND => Self::not_found("no such resource"),
            StatusCode::METHOD_NOT_ALLOWED => {
                Self::new(status, types::METHOD_NOT_ALLOWED, "Method not allowed")
                    .detail("the resource does not support this method; see the Allow header")
            }
            StatusCode::PAYLOAD_TOO_LARGE => Self::payload_too_large(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::unsupported_media_type("application/json"),
            StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => {
                Self::new(status, types::TIMEOUT, "Request timed out")
            }
            s if s.is_server_error() => {
                let mut p = Self::internal();
                p.0.status = s;
                p
            }
            s => Self::new(
                s,
                types::BAD_REQUEST,
                s.canonical_reason().unwrap_or("Error"),
            ),
        }
    }

    /// The serialisable body.
    pub fn body(&self) -> ProblemBody {
        ProblemBody {
            kind: self.0.kind.to_owned(),
            title: self.0.title.to_string(),
            status: self.0.status.as_u16(),
            detail: self.0.detail.clone(),
            errors: self.0.errors.clone(),
            request_id: RequestContext::current_request_id(),
            extensions: self.0.extensions.clone(),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut response = (self.0.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        headers.extend(self.0.headers);
        response
    }
}

/// The error of every handler and store function.
///
/// Client errors carry their [`Problem`]; infrastructure errors are logged once, here at the
/// boundary, and answered without internal detail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A client-facing problem.
    #[error("{}", .0.0.title)]
    Problem(Problem),
    /// The database could not be reached in time: answered 503, as the fault is transient.
    #[error("database unavailable")]
    DatabaseUnavailable(#[source] mongodb::error::Error),
    /// Anything else: answered 500.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<Problem> for ApiError {
    fn from(problem: Problem) -> Self {
        Self::Problem(problem)
    }
}

impl From<mongodb::error::Error> for ApiError {
    fn from(err: mongodb::error::Error) -> Self {
        if crate::mongo::is_unavailable(&err) {
            Self::DatabaseUnavailable(err)
        } else {
            Self::Internal(err.into())
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::Problem(problem) => problem.into_response(),
            Self::DatabaseUnavailable(err) => {
                tracing::warn!(error = %err, "database unavailable");
                Problem::unavailable(2, "the database is not reachable; retry shortly")
                    .into_response()
            }
            Self::Internal(err) => {
                tracing::error!(error = ?err, "request failed");
                Problem::internal().into_response()
            }
        }
    }
}
