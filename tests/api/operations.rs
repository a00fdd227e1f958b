//! Operations routes and the common HTTP behaviour of every service.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn health_routes_answer() {
    let app = spawn_auth().await;
    let live = app.get("/health/live", None).await;
    assert_eq!(live.status(), StatusCode::OK);
    assert_eq!(live.json::<Value>().await.unwrap()["status"], "ok");
    let ready = app.get("/health/ready", None).await;
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(
        ready.json::<Value>().await.unwrap()["checks"]["mongodb"],
        "up"
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let app = spawn_auth().await;
    let count = |text: &str| {
        metric_sum(
            text,
            "http_requests_total",
            &[r#"route="/register""#, r#"status="201""#],
        )
    };
    let before = count(&app.get("/metrics", None).await.text().await.unwrap());
    app.register(&username(), "a good password").await;
    app.register(&username(), "a good password").await;
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(count(&metrics) >= before + 2, "{metrics}");
    assert!(metrics.contains("http_request_duration_seconds_bucket"));
    assert!(metrics.contains("auth_registrations_total"));
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let app = spawn_auth().await;
    let echoed = app
        .http
        .get(format!("{}/health/live", app.url))
        .header("x-request-id", "my-request-42")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "my-request-42");
    assert_eq!(echoed.headers()["x-content-type-options"], "nosniff");
    let generated = app.get("/me", None).await;
    let id = generated.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!id.is_empty());
    let body: Value = generated.json().await.unwrap();
    assert_eq!(body["request_id"], id, "the problem names the request id");
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_with_allow() {
    let app = spawn_auth().await;
    let missing = app.get("/no/such/route", None).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );
    let wrong = app.get("/register", None).await;
    assert_eq!(wrong.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(wrong.headers()["allow"].to_str().unwrap().contains("POST"));
    assert_eq!(wrong.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn the_openapi_document_and_docs_page_are_served() {
    let app = spawn_auth().await;
    let doc: Value = app.get("/openapi.json", None).await.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/register",
        "/token",
        "/revoke",
        "/me",
        "/.well-known/jwks.json",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} documented");
    }
    let docs = app.get("/docs/", None).await;
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await.unwrap().contains("swagger"));
}

#[tokio::test]
async fn a_stopped_service_stops_accepting_connections() {
    let app = spawn_auth().await;
    assert_eq!(app.get("/health/live", None).await.status(), StatusCode::OK);
    app.stop.cancel();
    let mut refused = false;
    for _ in 0..50 {
        let attempt = reqwest::Client::new()
            .get(format!("{}/health/live", app.url))
            .send()
            .await;
        if attempt.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(refused, "the listener closed after the stop");
}

#[tokio::test]
async fn product_service_serves_its_operations_routes_and_openapi() {
    let app = spawn_products().await;
    let ready = app
        .http
        .get(format!("{}/health/ready", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let doc: Value = app
        .http
        .get(format!("{}/openapi.json", app.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/products",
        "/products/{id}",
        "/products/{id}/stock",
        "/reservations",
        "/reservations/{order_id}",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} documented");
    }
    let docs = app
        .http
        .get(format!("{}/docs/", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    let metrics = app
        .http
        .get(format!("{}/metrics", app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("http_requests_total"));
}
