//! The common HTTP stack: middleware every service wraps its router in, the operations routes,
//! and serving with bounded graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tracing::Instrument;

use crate::config::CommonConfig;
use crate::context::{REQUEST_ID, RequestContext};
use crate::problem::{PROBLEM_JSON, Problem};
use crate::telemetry::{self, HTTP_DURATION, HTTP_REQUESTS};

/// Settings of the common middleware.
#[derive(Clone, Debug)]
struct Settings {
    service: &'static str,
    request_timeout: Duration,
}

/// Wraps a service's complete router (its own routes merged with [`ops_routes`]) in the common
/// middleware: request id and trace context, a tracing span with the route template, metrics,
/// security headers, request timeout, body limit, panic catching, CORS when configured, and
/// problem+json for every error the framework produces itself (404, 405, 413...).
pub fn with_common_layers(router: Router, service: &'static str, config: &CommonConfig) -> Router {
    let settings = Arc::new(Settings {
        service,
        request_timeout: config.request_timeout(),
    });
    let mut router = router
        .fallback(|| async { Problem::not_found("no such route") })
        .layer(DefaultBodyLimit::max(config.body_limit_bytes))
        .layer(RequestBodyLimitLayer::new(config.body_limit_bytes))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("handler panicked");
            Problem::internal().into_response()
        }));
    if !config.cors_origins.is_empty() {
        let origins: Vec<HeaderValue> = config
            .cors_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        router = router.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    header::IF_MATCH,
                    header::IF_NONE_MATCH,
                    http::HeaderName::from_static("idempotency-key"),
                ])
                .expose_headers([header::ETAG, header::LOCATION, header::RETRY_AFTER]),
        );
    }
    router.layer(middleware::from_fn_with_state(settings, observe))
}

/// Per request: context, span, timeout, error normalisation, headers, metrics, one log line.
async fn observe(State(settings): State<Arc<Settings>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let ctx = RequestContext::from_headers(req.headers());
    let request_id = ctx.request_id.clone();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let authenticated = req.headers().contains_key(header::AUTHORIZATION);
    let span = tracing::info_span!(
        "request",
        request_id = %ctx.request_id,
        trace_id = %ctx.trace_id(),
        method = %method,
        route = %route,
    );
    let timeout = settings.request_timeout;
    let mut response = ctx
        .scope(
            async move {
                let response = match tokio::time::timeout(timeout, next.run(req)).await {
                    Ok(response) => response,
                    Err(_) => {
                        tracing::warn!("request timed out");
                        Problem::unavailable(1, "the request took too long; retry shortly")
                            .into_response()
                    }
                };
                as_problem(response)
            }
            .instrument(span.clone()),
        )
        .await;

    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert(REQUEST_ID, v);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if authenticated && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }

    let status = response.status();
    let elapsed = started.elapsed();
    let labels = [
        ("service", settings.service.to_owned()),
        ("method", method.to_string()),
        ("route", route.clone()),
        ("status", status.as_u16().to_string()),
    ];
    metrics::counter!(HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(HTTP_DURATION, &labels[..3]).record(elapsed.as_secs_f64());
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    if route.starts_with("/health") || route == "/metrics" {
        tracing::debug!(parent: &span, status = status.as_u16(), latency_ms, "request completed");
    } else if status.is_server_error() {
        tracing::warn!(parent: &span, status = status.as_u16(), latency_ms, "request completed");
    } else {
        tracing::info!(parent: &span, status = status.as_u16(), latency_ms, "request completed");
    }
    response
}

/// Turns bare error responses (empty or plain text, from routing or limits) into problem+json,
/// keeping their headers (`Allow`, `Retry-After`, `WWW-Authenticate`).
fn as_problem(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type.starts_with(PROBLEM_JSON) || content_type.starts_with("application/json") {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let problem = Problem::for_status(status).into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    let (problem_parts, body) = problem.into_parts();
    parts.headers.extend(problem_parts.headers);
    Response::from_parts(parts, body)
}

/// `/health/live`, `/health/ready` (a MongoDB ping) and `/metrics`.
pub fn ops_routes(mongo: mongodb::Client) -> Router {
    let handle = telemetry::metrics_handle();
    Router::new()
        .route(
            "/health/live",
            get(|| async { axum::Json(json!({"status": "ok"})) }),
        )
        .route(
            "/health/ready",
            get(move || {
                let mongo = mongo.clone();
                async move {
                    if crate::mongo::ping(&mongo, Duration::from_secs(2)).await {
                        (
                            StatusCode::OK,
                            axum::Json(json!({"status": "ok", "checks": {"mongodb": "up"}})),
                        )
                    } else {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            axum::Json(
                                json!({"status": "unavailable", "checks": {"mongodb": "down"}}),
                            ),
                        )
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let handle = handle.clone();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                        )],
                        handle.render(),
                    )
                }
            }),
        )
}

/// Serves `router` on `listener` until SIGINT/SIGTERM or `stop` is cancelled, then lets
/// in-flight requests finish for at most `grace`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    grace: Duration,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let signalled = stop.clone();
    let shutdown = async move {
        tokio::select! {
            () = shutdown_signal() => tracing::info!("shutdown signal received; draining"),
            () = signalled.cancelled() => {}
        }
        signalled.cancel();
    };
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown);
    tokio::select! {
        result = server => result,
        () = async { stop.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(grace_secs = grace.as_secs(), "in-flight requests did not finish in time; exiting");
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// A service's routes bound to its port, wrapped in the common middleware with the operations
/// routes beside them: what each service's `Application` holds.
pub struct BoundService {
    listener: TcpListener,
    router: Router,
    port: u16,
    grace: Duration,
    stop: CancellationToken,
}

impl BoundService {
    /// Binds `addr` (port 0 picks a free port) and assembles the full router of service `name`.
    pub async fn bind(
        name: &'static str,
        addr: SocketAddr,
        routes: Router,
        mongo: mongodb::Client,
        common: &CommonConfig,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {name} to {addr}"))?;
        let port = listener.local_addr()?.port();
        Ok(Self {
            listener,
            router: with_common_layers(routes.merge(ops_routes(mongo)), name, common),
            port,
            grace: common.shutdown_timeout(),
            stop: CancellationToken::new(),
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Cancel it to shut the service down gracefully (as SIGTERM does).
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Serves until SIGINT/SIGTERM or the stop token, then drains for at most the grace period.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        serve(self.listener, self.router, self.grace, self.stop).await
    }
}
