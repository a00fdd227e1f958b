//! Database faults: the MongoDB-protocol server under all three services is stopped and started
//! again. Readiness turns 503 within seconds, requests answer 503 problem+json quickly
//! instead of hanging, and both services recover on their own, with no acknowledged write lost.
//!
//! The test runs its own SecantusDB (from the project's `.venv`, which `scripts/test.sh` sets up)
//! on disk, so that it can stop and restart it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::order_helpers::spawn_order_with;

const GET: Method = Method::GET;
const POST: Method = Method::POST;

struct Database {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

fn python() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python")
}

impl Database {
    fn start(port: u16, dir: PathBuf) -> Self {
        let mut db = Self {
            child: None,
            port,
            dir,
        };
        db.restart();
        db
    }

    /// Starts the server (again) on the same port and files.
    fn restart(&mut self) {
        self.stop();
        let (port, dir) = (self.port, &self.dir);
        let child = Command::new(python())
            .args([
                "-m",
                "secantus",
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ])
            .arg("--storage-path")
            .arg(dir)
            .args(["--log-level", "WARNING", "--sync-on-commit"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("SecantusDB starts (run the tests with ./scripts/test.sh)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "SecantusDB did not open its port"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        self.child = Some(child);
    }

    fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}/?retryWrites=false", self.port)
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `url` until it answers `status`, returning how long that took.
async fn wait_for(
    http: &reqwest::Client,
    url: &str,
    status: StatusCode,
    limit: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        if let Ok(r) = http.get(url).send().await
            && r.status() == status
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{url} did not answer {status} within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn services_answer_503_while_the_database_is_down_and_recover_by_themselves() {
    let dir = std::env::temp_dir().join(format!("shop-fault-{}", uuid::Uuid::new_v4()));
    let mut db = Database::start(free_port(), dir);
    let uri = db.uri();
    let auth = spawn_auth_with(|c| {
        c.common.mongodb_uri = uri.clone().into();
        c.common.mongodb_timeout_ms = 1_000;
        c.common.request_timeout_ms = 4_000;
    })
    .await;
    let mut config = product_config(&auth);
    config.common.mongodb_uri = uri.clone().into();
    config.common.mongodb_timeout_ms = 1_000;
    config.common.request_timeout_ms = 4_000;
    let products = product_service::Application::build(config).await.unwrap();
    let products_url = format!("http://127.0.0.1:{}", products.port());
    tokio::spawn(products.run_until_stopped());
    let orders = spawn_order_with(&auth, &products_url, |c| {
        c.common.mongodb_uri = uri.clone().into();
        c.common.mongodb_timeout_ms = 1_000;
        c.common.request_timeout_ms = 4_000;
    })
    .await;
    let http = client();

    let (name, token, _) = auth.customer().await;
    let product = json!({"name": "Durable", "price": "3.00", "stock": 4});
    let created = send(
        &http,
        POST,
        &format!("{products_url}/products"),
        &token,
        Some(&product),
    )
    .await
    .json::<Value>()
    .await
    .unwrap();
    let product_id = created["id"].as_str().unwrap().to_owned();
    let product_url = format!("{products_url}/products/{product_id}");
    let order_body = json!({"items": [{"product_id": product_id, "quantity": 1}]});
    let orders_url = format!("{}/orders", orders.url);
    let placed = send(&http, POST, &orders_url, &token, Some(&order_body)).await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let placed: Value = placed.json().await.unwrap();
    let order_url = format!("{orders_url}/{}", placed["id"].as_str().unwrap());

    db.stop();
    for base in [&auth.url, &products_url, &orders.url] {
        let took = wait_for(
            &http,
            &format!("{base}/health/ready"),
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(10),
        )
        .await;
        assert!(
            took < Duration::from_secs(5),
            "{base} readiness turned 503 after {took:?}"
        );
        let live = http
            .get(format!("{base}/health/live"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            live.status(),
            StatusCode::OK,
            "liveness does not depend on the database"
        );
    }
    let started = Instant::now();
    let login = auth.login(&name, "a good password").await;
    assert_eq!(login.status(), StatusCode::SERVICE_UNAVAILABLE);
    let read = send(&http, GET, &product_url, &token, None).await;
    assert_eq!(read.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(read.headers()["content-type"], "application/problem+json");
    assert!(read.headers().contains_key("retry-after"));
    let delta = json!({"delta": 1});
    let write = send(
        &http,
        POST,
        &format!("{product_url}/stock"),
        &token,
        Some(&delta),
    )
    .await;
    assert_eq!(write.status(), StatusCode::SERVICE_UNAVAILABLE);
    let order = send(&http, POST, &orders_url, &token, Some(&order_body)).await;
    assert_eq!(order.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(order.headers()["content-type"], "application/problem+json");
    let listed = send(&http, GET, &orders_url, &token, None).await;
    assert_eq!(listed.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "five requests took {:?}",
        started.elapsed()
    );

    db.restart();
    for base in [&auth.url, &products_url, &orders.url] {
        wait_for(
            &http,
            &format!("{base}/health/ready"),
            StatusCode::OK,
            Duration::from_secs(30),
        )
        .await;
    }
    let read = send(&http, GET, &product_url, &token, None).await;
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(
        read.json::<Value>().await.unwrap()["stock"],
        3,
        "the acknowledged sale survived"
    );
    let order = get_json(&http, &order_url, &token).await;
    assert_eq!(
        order["status"], "confirmed",
        "the acknowledged order survived"
    );
    let again = send(&http, POST, &orders_url, &token, Some(&order_body)).await;
    assert_eq!(
        again.status(),
        StatusCode::CREATED,
        "orders are taken again without a restart"
    );
    assert_eq!(
        auth.login(&name, "a good password").await.status(),
        StatusCode::OK
    );
}
