//! `spawn_*` helpers and a small typed client for the tests.

use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

pub const ADMIN_USERNAME: &str = "root-admin";
pub const ADMIN_PASSWORD: &str = "admin password 1";
pub const CLIENT_ID: &str = "order-service";
pub const CLIENT_SECRET: &str = "test-order-service-secret";

/// The MongoDB URI the test script provides.
pub fn mongodb_uri() -> String {
    std::env::var("MONGODB_URI")
        .expect("MONGODB_URI is not set: run the tests with ./scripts/test.sh")
}

/// A fresh database name for one service of one test.
pub fn fresh_db(service: &str) -> String {
    format!(
        "t{}_{service}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// Common settings for a test service.
pub fn common_config() -> shared::config::CommonConfig {
    // Log lines are captured by the test runner and shown for failing tests.
    shared::telemetry::init_tracing(shared::config::LogFormat::Text);
    shared::config::CommonConfig {
        mongodb_uri: mongodb_uri().into(),
        mongodb_timeout_ms: 5_000,
        ..Default::default()
    }
}

/// auth-service settings for a test: port 0, fresh database, generous limits, a known admin
/// and service client.
pub fn auth_config(db_name: &str) -> auth_service::Config {
    let mut config = auth_service::Config {
        common: common_config(),
        ..Default::default()
    };
    config.auth.host = "127.0.0.1".into();
    config.auth.port = 0;
    config.auth.db_name = db_name.to_owned();
    config.auth.admin_username = Some(ADMIN_USERNAME.into());
    config.auth.admin_password = Some(ADMIN_PASSWORD.into());
    config.auth.clients = Some(format!("{CLIENT_ID}:{CLIENT_SECRET}:stock:reserve").into());
    config.auth.rate_limit_per_minute = 10_000;
    config.auth.rate_limit_burst = 10_000;
    config
}

/// A running auth-service.
pub struct AuthApp {
    pub url: String,
    pub db_name: String,
    pub http: reqwest::Client,
    pub stop: tokio_util::sync::CancellationToken,
}

/// Starts auth-service with the test defaults changed by `tweak`.
pub async fn spawn_auth_with(tweak: impl FnOnce(&mut auth_service::Config)) -> AuthApp {
    let db_name = fresh_db("auth");
    let mut config = auth_config(&db_name);
    config.common.jwt_issuer = "http://auth.test".into();
    tweak(&mut config);
    let db_name = config.auth.db_name.clone();
    let app = auth_service::Application::build(config)
        .await
        .expect("auth-service builds");
    let url = format!("http://127.0.0.1:{}", app.port());
    let stop = app.stop_token();
    tokio::spawn(app.run_until_stopped());
    AuthApp {
        url,
        db_name,
        http: client(),
        stop,
    }
}

/// Starts auth-service with the test defaults.
pub async fn spawn_auth() -> AuthApp {
    spawn_auth_with(|_| {}).await
}

/// A client that follows no redirects and never hangs a test.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client builds")
}

/// `method url` with a bearer token and, when given, a JSON body.
pub async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: &str,
    body: Option<&Value>,
) -> Response {
    let request = http.request(method, url).bearer_auth(token);
    match body {
        Some(body) => request.json(body),
        None => request,
    }
    .send()
    .await
    .unwrap()
}

/// `GET url` with a bearer token, its body parsed as JSON.
pub async fn get_json(http: &reqwest::Client, url: &str, token: &str) -> Value {
    send(http, reqwest::Method::GET, url, token, None)
        .await
        .json()
        .await
        .unwrap()
}

/// The sum of the Prometheus samples of `name` whose labels include every one of `labels`
/// (written as in the exposition, e.g. `route="/register"`).
pub fn metric_sum(text: &str, name: &str, labels: &[&str]) -> u64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
                && labels.iter().all(|label| l.contains(label))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// A unique, valid username.
pub fn username() -> String {
    format!("u{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

impl AuthApp {
    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.http
            .post(format!("{}{path}", self.url))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn register(&self, username: &str, password: &str) -> Response {
        self.post_json(
            "/register",
            &json!({"username": username, "password": password}),
        )
        .await
    }

    pub async fn token_form(&self, form: &[(&str, &str)]) -> Response {
        self.http
            .post(format!("{}/token", self.url))
            .form(form)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.token_form(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
        ])
        .await
    }

    /// Registers a new customer and returns (username, access token, refresh token).
    pub async fn customer(&self) -> (String, String, String) {
        let name = username();
        let password = "a good password";
        assert_eq!(
            self.register(&name, password).await.status(),
            StatusCode::CREATED
        );
        let body: Value = self.login(&name, password).await.json().await.unwrap();
        (
            name,
            body["access_token"].as_str().unwrap().to_owned(),
            body["refresh_token"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.http.get(format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }
}

/// product-service settings for a test, trusting `auth`'s keys.
pub fn product_config(auth: &AuthApp) -> product_service::Config {
    let mut config = product_service::Config {
        common: common_config(),
        ..Default::default()
    };
    config.common.jwt_issuer = "http://auth.test".into();
    config.common.jwks_url = format!("{}/.well-known/jwks.json", auth.url);
    config.service.host = "127.0.0.1".into();
    config.service.port = 0;
    config.service.db_name = fresh_db("products");
    config
}

/// A running product-service with the auth-service it trusts.
pub struct ProductApp {
    pub url: String,
    pub db_name: String,
    pub auth: AuthApp,
    pub http: reqwest::Client,
}

/// Starts auth-service and product-service.
pub async fn spawn_products() -> ProductApp {
    spawn_products_with(|_| {}).await
}

/// Starts auth-service and product-service with settings changed by `tweak`.
pub async fn spawn_products_with(tweak: impl FnOnce(&mut product_service::Config)) -> ProductApp {
    let auth = spawn_auth().await;
    let mut config = product_config(&auth);
    tweak(&mut config);
    let db_name = config.service.db_name.clone();
    let app = product_service::Application::build(config)
        .await
        .expect("product-service builds");
    let url = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    ProductApp {
        url,
        db_name,
        auth,
        http: client(),
    }
}

impl AuthApp {
    /// An access token of the configured admin.
    pub async fn admin_token(&self) -> String {
        let body: Value = self
            .login(ADMIN_USERNAME, ADMIN_PASSWORD)
            .await
            .json()
            .await
            .unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// A client-credentials token of order-service (scope `stock:reserve`).
    pub async fn service_token(&self) -> String {
        let body: Value = self
            .http
            .post(format!("{}/token", self.url))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }
}

impl ProductApp {
    /// Starts another product-service replica on the same database, trusting the same
    /// auth-service; returns its base URL.
    pub async fn replica(&self) -> String {
        let mut config = product_config(&self.auth);
        config.service.db_name = self.db_name.clone();
        let app = product_service::Application::build(config)
            .await
            .expect("product-service builds");
        let url = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        url
    }

    /// A request builder with a bearer token.
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.url));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.request(reqwest::Method::GET, path, Some(token))
            .send()
            .await
            .unwrap()
    }

    /// `GET path` with a bearer token, its body parsed as JSON.
    pub async fn get_json(&self, path: &str, token: &str) -> Value {
        self.get(path, token).await.json().await.unwrap()
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Response {
        self.request(reqwest::Method::POST, path, Some(token))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Creates a product and returns its JSON.
    pub async fn create_product(&self, token: &str, name: &str, price: &str, stock: i64) -> Value {
        let response = self
            .post(
                "/products",
                token,
                &json!({"name": name, "price": price, "stock": stock}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }

    /// The current stock of a product.
    pub async fn stock(&self, token: &str, id: &str) -> i64 {
        let body = self.get_json(&format!("/products/{id}"), token).await;
        body["stock"].as_i64().unwrap()
    }

    /// Reserves with a service token.
    pub async fn reserve(&self, service: &str, order_id: &str, items: &[(&str, i64)]) -> Response {
        let items: Vec<Value> = items
            .iter()
            .map(|(id, q)| json!({"product_id": id, "quantity": q}))
            .collect();
        self.post(
            "/reservations",
            service,
            &json!({"order_id": order_id, "items": items}),
        )
        .await
    }
}

/// Runs the invariant checker on these databases and fails the test on any violation.
pub async fn assert_invariants(
    products_db: &str,
    orders_db: Option<&str>,
) -> shop::invariants::Report {
    let client = mongodb::Client::with_uri_str(mongodb_uri()).await.unwrap();
    let orders = orders_db.map(|name| client.database(name));
    let report = shop::invariants::check(&client.database(products_db), orders.as_ref())
        .await
        .expect("the databases can be read");
    assert!(report.ok(), "{report}");
    report
}
