//! The request context: the request id and W3C trace context of the request being served.
//!
//! The middleware in [`crate::server`] scopes a [`RequestContext`] around each request, so that
//! problem responses can carry the request id and outbound calls can forward both headers.

use http::{HeaderMap, HeaderValue};
use rand::Rng;

/// Header carrying the request id.
pub const REQUEST_ID: &str = "x-request-id";
/// W3C trace context header.
pub const TRACEPARENT: &str = "traceparent";

/// Identity of the request being served, available anywhere inside its task.
#[derive(Clone, Debug)]
pub struct RequestContext {
    /// Accepted from the client when well formed, generated otherwise.
    pub request_id: String,
    /// The W3C `traceparent` to send downstream: the caller's trace id with a new span id.
    pub traceparent: String,
}

tokio::task_local! {
    static CURRENT: RequestContext;
}

impl RequestContext {
    /// Builds the context from incoming headers.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut rng = rand::thread_rng();
        let request_id = headers
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|v| is_valid_request_id(v))
            .map_or_else(
                || {
                    let id = uuid::Builder::from_random_bytes(rng.r#gen()).into_uuid();
                    id.hyphenated()
                        .encode_lower(&mut uuid::Uuid::encode_buffer())
                        .to_owned()
                },
                str::to_owned,
            );
        let mut traceparent = String::with_capacity(55);
        traceparent.push_str("00-");
        match headers
            .get(TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_trace_id)
        {
            Some(trace_id) => traceparent.push_str(&trace_id),
            None => push_hex(&mut traceparent, &rng.r#gen::<[u8; 16]>()),
        }
        traceparent.push('-');
        push_hex(&mut traceparent, &rng.r#gen::<[u8; 8]>());
        traceparent.push_str("-01");
        Self {
            request_id,
            traceparent,
        }
    }

    /// Runs `fut` with this context as the current one.
    pub async fn scope<F: Future>(self, fut: F) -> F::Output {
        CURRENT.scope(self, fut).await
    }

    /// The context of the request being served, if any.
    pub fn current() -> Option<RequestContext> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// Whether a request is being served in this task.
    pub fn is_set() -> bool {
        CURRENT.try_with(|_| ()).is_ok()
    }

    /// The current request id, if inside a request.
    pub fn current_request_id() -> Option<String> {
        CURRENT.try_with(|c| c.request_id.clone()).ok()
    }

    /// The trace id part of the traceparent.
    pub fn trace_id(&self) -> &str {
        self.traceparent.get(3..35).unwrap_or_default()
    }
}

/// Adds the current request id and traceparent to an outbound request's headers.
pub fn propagate(headers: &mut HeaderMap) {
    if let Some(ctx) = RequestContext::current() {
        if let Ok(v) = HeaderValue::from_str(&ctx.request_id) {
            headers.insert(REQUEST_ID, v);
        }
        let mut child = String::with_capacity(55);
        child.push_str("00-");
        child.push_str(ctx.trace_id());
        child.push('-');
        push_hex(&mut child, &rand::thread_rng().r#gen::<[u8; 8]>());
        child.push_str("-01");
        if let Ok(v) = HeaderValue::from_str(&child) {
            headers.insert(TRACEPARENT, v);
        }
    }
}

/// A client-supplied request id is kept when it is 1..=128 visible, safe characters.
fn is_valid_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Extracts the trace id of a version-00 `traceparent`, rejecting the all-zero id.
fn parse_trace_id(value: &str) -> Option<String> {
    let mut parts = value.trim().split('-');
    let (version, trace_id, span_id, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    let valid = version == "00"
        && hex(trace_id, 32)
        && hex(span_id, 16)
        && hex(flags, 2)
        && trace_id.bytes().any(|b| b != b'0');
    valid.then(|| trace_id.to_ascii_lowercase())
}

/// Appends `bytes` as lowercase hex.
fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_ids_are_kept_and_others_replaced() {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(RequestContext::from_headers(&headers).request_id, "abc-123");
        headers.insert(REQUEST_ID, HeaderValue::from_static("bad id with spaces"));
        assert_ne!(
            RequestContext::from_headers(&headers).request_id,
            "bad id with spaces"
        );
    }

    #[test]
    fn generated_ids_are_well_formed() {
        let ctx = RequestContext::from_headers(&HeaderMap::new());
        assert!(uuid::Uuid::parse_str(&ctx.request_id).is_ok_and(|id| id.get_version_num() == 4));
        assert!(
            parse_trace_id(&ctx.traceparent).is_some(),
            "{}",
            ctx.traceparent
        );
        assert_eq!(ctx.traceparent.len(), 55);
    }

    #[test]
    fn incoming_trace_id_is_continued() {
        let mut headers = HeaderMap::new();
        headers.insert(
            TRACEPARENT,
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        let ctx = RequestContext::from_headers(&headers);
        assert_eq!(ctx.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(
            ctx.traceparent
                .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-")
        );
    }
}
