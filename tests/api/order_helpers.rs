//! All three services for the order tests: auth-service, product-service and order-service, each
//! through its library entry point, on fresh databases, talking real HTTP to each other.

use std::time::{Duration, Instant};

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::helpers::*;

/// A running product-service.
pub struct ProductService {
    pub url: String,
    pub db_name: String,
    pub stop: CancellationToken,
}

/// Starts product-service on `port` (0: any) with database `db_name`, trusting `auth`'s keys.
pub async fn spawn_product(auth: &AuthApp, db_name: &str, port: u16) -> ProductService {
    let mut config = product_service::Config {
        common: common_config(),
        ..Default::default()
    };
    config.service.host = "127.0.0.1".into();
    config.service.port = port;
    config.service.db_name = db_name.to_owned();
    config.common.jwks_url = format!("{}/.well-known/jwks.json", auth.url);
    config.common.jwt_issuer = "http://auth.test".into();
    let app = product_service::Application::build(config)
        .await
        .expect("product-service builds");
    let port = app.port();
    let stop = app.stop_token();
    tokio::spawn(app.run_until_stopped());
    ProductService {
        url: format!("http://127.0.0.1:{port}"),
        db_name: db_name.to_owned(),
        stop,
    }
}

/// A running order-service.
pub struct OrderApp {
    pub url: String,
    pub db_name: String,
    pub http: reqwest::Client,
}

/// order-service settings for a test: port 0, fresh database, `auth`'s keys and token endpoint,
/// product-service at `product_url`, fast recovery passes.
pub fn order_config(auth: &AuthApp, product_url: &str) -> order_service::Config {
    let mut config = order_service::Config {
        common: common_config(),
        ..Default::default()
    };
    config.common.jwks_url = format!("{}/.well-known/jwks.json", auth.url);
    config.common.jwt_issuer = "http://auth.test".into();
    let s = &mut config.service;
    s.host = "127.0.0.1".into();
    s.port = 0;
    s.db_name = fresh_db("orders");
    s.product_service_url = product_url.to_owned();
    s.auth_token_url = format!("{}/token", auth.url);
    s.client_id = CLIENT_ID.into();
    s.client_secret = CLIENT_SECRET.to_owned().into();
    s.recovery_interval_ms = 200;
    config
}

/// For the concurrency tests, which check correctness rather than latency: under a parallel test
/// run the test database is far slower than MongoDB, and product-service's own write-conflict
/// retries (up to 5 s) outlast order-service's production deadline.
pub fn patient(config: &mut order_service::Config) {
    config.service.product_timeout_ms = 8_000;
    config.service.product_deadline_ms = 8_000;
}

/// Starts order-service with the test settings changed by `tweak`.
pub async fn spawn_order_with(
    auth: &AuthApp,
    product_url: &str,
    tweak: impl FnOnce(&mut order_service::Config),
) -> OrderApp {
    let mut config = order_config(auth, product_url);
    tweak(&mut config);
    let db_name = config.service.db_name.clone();
    let app = order_service::Application::build(config)
        .await
        .expect("order-service builds");
    let url = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    OrderApp {
        url,
        db_name,
        http: client(),
    }
}

/// The three services.
pub struct Shop {
    pub auth: AuthApp,
    pub products: ProductService,
    pub orders: OrderApp,
}

/// A customer: id and access token.
#[derive(Clone)]
pub struct Customer {
    pub id: String,
    pub token: String,
}

/// Starts all three services with the test defaults.
pub async fn spawn_shop() -> Shop {
    spawn_shop_with(|_| {}).await
}

/// Starts all three services, order-service's settings changed by `tweak`.
pub async fn spawn_shop_with(tweak: impl FnOnce(&mut order_service::Config)) -> Shop {
    let auth = spawn_auth().await;
    let products = spawn_product(&auth, &fresh_db("products"), 0).await;
    let orders = spawn_order_with(&auth, &products.url, tweak).await;
    Shop {
        auth,
        products,
        orders,
    }
}

impl Shop {
    /// Fails the test unless stock, reservations and orders agree (`shop::invariants`): stock
    /// never below zero, initial + adjustments = stock + held, every confirmed order backed by a
    /// live reservation of the same lines and every live reservation by a confirmed order, no
    /// order pending, one record per Idempotency-Key.
    pub async fn assert_invariants(&self) {
        crate::helpers::assert_invariants(&self.products.db_name, Some(&self.orders.db_name)).await;
    }

    /// Registers and logs in a new customer.
    pub async fn customer(&self) -> Customer {
        let (_, token, _) = self.auth.customer().await;
        let me: Value = self
            .auth
            .get("/me", Some(&token))
            .await
            .json()
            .await
            .unwrap();
        Customer {
            id: me["id"].as_str().unwrap().to_owned(),
            token,
        }
    }

    /// Creates a product as `owner` and returns its id.
    pub async fn product(&self, owner: &Customer, name: &str, price: &str, stock: i64) -> String {
        let response = self
            .orders
            .http
            .post(format!("{}/products", self.products.url))
            .bearer_auth(&owner.token)
            .json(&json!({"name": name, "price": price, "stock": stock}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED, "product created");
        let body: Value = response.json().await.unwrap();
        body["id"].as_str().unwrap().to_owned()
    }

    /// The product's current stock.
    pub async fn stock(&self, who: &Customer, product_id: &str) -> i64 {
        stock_at(&self.orders.http, &self.products.url, who, product_id).await
    }
}

/// The stock of `product_id` at the product-service at `url`.
pub async fn stock_at(http: &reqwest::Client, url: &str, who: &Customer, product_id: &str) -> i64 {
    let response = http
        .get(format!("{url}/products/{product_id}"))
        .bearer_auth(&who.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "product readable");
    let body: Value = response.json().await.unwrap();
    body["stock"].as_i64().unwrap()
}

/// `{"items": [{"product_id", "quantity"}...]}`.
pub fn order_body(lines: &[(&str, i64)]) -> Value {
    json!({"items": lines.iter().map(|(p, q)| json!({"product_id": p, "quantity": q})).collect::<Vec<_>>()})
}

impl OrderApp {
    /// `POST /orders` with an optional `Idempotency-Key`.
    pub async fn place(&self, who: &Customer, body: &Value, key: Option<&str>) -> Response {
        let mut request = self
            .http
            .post(format!("{}/orders", self.url))
            .bearer_auth(&who.token)
            .json(body);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        request.send().await.expect("request sent")
    }

    /// `GET` a path.
    pub async fn get(&self, who: &Customer, path: &str) -> Response {
        self.http
            .get(format!("{}{path}", self.url))
            .bearer_auth(&who.token)
            .send()
            .await
            .expect("request sent")
    }

    /// `POST` a path without a body.
    pub async fn post(&self, who: &Customer, path: &str) -> Response {
        self.http
            .post(format!("{}{path}", self.url))
            .bearer_auth(&who.token)
            .send()
            .await
            .expect("request sent")
    }

    /// The order `id` as `who` sees it.
    pub async fn order(&self, who: &Customer, id: &str) -> Value {
        let response = self.get(who, &format!("/orders/{id}")).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// Every order of `who` (first page of 100).
    pub async fn list(&self, who: &Customer, query: &str) -> Vec<Value> {
        let response = self.get(who, &format!("/orders?limit=100{query}")).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        body["items"].as_array().unwrap().clone()
    }
}

/// Polls `check` until it returns `Some`, or panics after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
