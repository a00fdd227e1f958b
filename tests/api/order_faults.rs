//! order-service when product-service is down or slow, and recovery of orders a crash left
//! `pending`.

use std::time::{Duration, Instant};

use mongodb::bson::{self, DateTime, doc, oid::ObjectId};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::order_helpers::*;

/// A port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test]
async fn with_product_service_down_orders_fail_fast_with_503_and_no_stock_is_lost() {
    let auth = spawn_auth().await;
    let products_db = fresh_db("products");
    let port = free_port();
    let products = spawn_product(&auth, &products_db, port).await;
    let orders = spawn_order_with(&auth, &products.url, |c| {
        c.service.breaker_open_ms = 300;
        c.service.breaker_max_open_ms = 1_000;
    })
    .await;
    let shop = Shop {
        auth,
        products,
        orders,
    };
    let seller = shop.customer().await;
    let buyer = shop.customer().await;
    let product = shop.product(&seller, "Resilient", "2.50", 10).await;
    let body = order_body(&[(&product, 1)]);
    assert_eq!(
        shop.orders.place(&buyer, &body, None).await.status(),
        StatusCode::CREATED
    );

    shop.products.stop.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3 {
        let started = Instant::now();
        let response = shop.orders.place(&buyer, &body, None).await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "answered in {:?}",
            started.elapsed()
        );
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key("retry-after"));
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["type"], "urn:shop:problem:unavailable");
    }
    let failed = shop.orders.list(&buyer, "&status=failed").await;
    assert_eq!(
        failed.len(),
        3,
        "the orders that could not be placed are failed"
    );

    let restarted = spawn_product(&shop.auth, &products_db, port).await;
    let created = eventually(
        Duration::from_secs(20),
        "order-service to reach product-service again",
        || async {
            let response = shop.orders.place(&buyer, &body, None).await;
            (response.status() == StatusCode::CREATED).then_some(())
        },
    )
    .await;
    let () = created;
    let http = &shop.orders.http;
    assert_eq!(
        stock_at(http, &restarted.url, &seller, &product).await,
        8,
        "only the two placed orders hold stock"
    );
    assert_eq!(shop.orders.list(&buyer, "&status=confirmed").await.len(), 2);
    shop.assert_invariants().await;
}

#[tokio::test]
async fn with_product_service_too_slow_orders_get_503_and_reads_stay_fast() {
    // A product-service that accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let auth = spawn_auth().await;
    let orders = spawn_order_with(&auth, &silent_url, |_| {}).await;
    let (_, token, _) = auth.customer().await;
    let me: Value = auth.get("/me", Some(&token)).await.json().await.unwrap();
    let buyer = Customer {
        id: me["id"].as_str().unwrap().to_owned(),
        token,
    };
    let body = order_body(&[("0123456789abcdef01234567", 1)]);

    let started = Instant::now();
    let (placed, listed) = tokio::join!(orders.place(&buyer, &body, None), async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let started = Instant::now();
        let response = orders.get(&buyer, "/orders").await;
        (response.status(), started.elapsed())
    });

    assert_eq!(placed.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(placed.headers().contains_key("retry-after"));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "503 after {:?}",
        started.elapsed()
    );
    assert_eq!(listed.0, StatusCode::OK);
    // The stalled order takes the whole 3 s deadline; a read must not queue behind it.
    assert!(
        listed.1 < Duration::from_secs(2),
        "GET /orders took {:?}",
        listed.1
    );
    let failed = orders.list(&buyer, "&status=failed").await;
    assert_eq!(failed.len(), 1, "the order ends failed");
    let id = failed[0]["id"].as_str().unwrap();
    let cancel = orders.post(&buyer, &format!("/orders/{id}/cancel")).await;
    assert_eq!(
        cancel.status(),
        StatusCode::CONFLICT,
        "a failed order cannot be cancelled"
    );
}

/// A proxy to product-service that forwards every request at once but, for reservations, holds
/// the answer back for `delay`: the reservation happens, order-service just never hears of it.
async fn late_answering_proxy(upstream: String, delay: Duration) -> String {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, Method, Uri};
    use axum::response::IntoResponse;

    let http = reqwest::Client::new();
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let (http, upstream) = (http.clone(), upstream.clone());
            async move {
                let mut request = http
                    .request(method.clone(), format!("{upstream}{uri}"))
                    .body(body);
                for name in ["authorization", "content-type"] {
                    if let Some(value) = headers.get(name) {
                        request = request.header(name, value.as_bytes());
                    }
                }
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                let body = response.bytes().await.unwrap();
                if method == Method::POST {
                    tokio::time::sleep(delay).await;
                }
                let status = axum::http::StatusCode::from_u16(status).unwrap();
                (status, [("content-type", "application/json")], body).into_response()
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn a_reservation_whose_answer_came_too_late_is_released() {
    // Invariant: an order that failed holds no stock, even when product-service did reserve it.
    let auth = spawn_auth().await;
    let products = spawn_product(&auth, &fresh_db("products"), 0).await;
    let proxy = late_answering_proxy(products.url.clone(), Duration::from_secs(10)).await;
    let orders = spawn_order_with(&auth, &proxy, |_| {}).await;
    let shop = Shop {
        auth,
        products,
        orders,
    };
    let seller = shop.customer().await;
    let buyer = shop.customer().await;
    let product = shop.product(&seller, "Late", "1.00", 10).await;

    let response = shop
        .orders
        .place(&buyer, &order_body(&[(&product, 4)]), None)
        .await;

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(shop.orders.list(&buyer, "&status=failed").await.len(), 1);
    eventually(
        Duration::from_secs(10),
        "the late reservation to be released",
        || async { (shop.stock(&seller, &product).await == 10).then_some(()) },
    )
    .await;
    shop.assert_invariants().await;
}

#[tokio::test]
async fn a_failing_product_service_is_not_hammered_once_the_circuit_opens() {
    // A product-service that answers every request 500, counting them.
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    let failing = axum::Router::new().fallback(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async { axum::http::StatusCode::INTERNAL_SERVER_ERROR }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, failing).await });
    let auth = spawn_auth().await;
    let orders = spawn_order_with(&auth, &url, |c| {
        c.service.breaker_failures = 5;
        c.service.breaker_open_ms = 60_000;
        c.service.breaker_max_open_ms = 60_000;
    })
    .await;
    let (_, token, _) = auth.customer().await;
    let buyer = Customer {
        id: String::new(),
        token,
    };
    let body = order_body(&[("0123456789abcdef01234567", 1)]);

    for _ in 0..10 {
        let response = orders.place(&buyer, &body, None).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    let started = Instant::now();
    let response = orders.place(&buyer, &body, None).await;

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "fails fast: {:?}",
        started.elapsed()
    );
    let hits = hits.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        hits <= 6,
        "{hits} requests reached the failing product-service; the circuit should have opened after 5"
    );
}

/// Inserts an order as a crash between reserve and confirm leaves it: `pending`, an hour old.
async fn insert_pending(
    db: &mongodb::Database,
    id: ObjectId,
    user_id: &str,
    product: &str,
    quantity: i32,
) {
    let an_hour_ago = DateTime::from_millis(DateTime::now().timestamp_millis() - 3_600_000);
    db.collection::<bson::Document>("orders")
        .insert_one(doc! {
            "_id": id,
            "user_id": user_id,
            "status": "pending",
            "items": [{"product_id": product, "quantity": quantity}],
            "total_minor": null,
            "currency": "USD",
            "created_at": an_hour_ago,
            "updated_at": an_hour_ago,
            "release_pending": false,
            "lease_until": DateTime::from_millis(0),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn recovery_settles_pending_orders_against_their_reservations() {
    // Invariant: initial stock = current stock + quantities held by confirmed orders.
    let shop = spawn_shop_with(|c| c.service.recovery_grace_secs = 1).await;
    let seller = shop.customer().await;
    let buyer = shop.customer().await;
    let product = shop.product(&seller, "Recovered", "3.00", 10).await;
    let reserved = ObjectId::new();
    let never_reserved = ObjectId::new();
    let token = shop.auth.service_token().await;
    let reservation = shop
        .orders
        .http
        .post(format!("{}/reservations", shop.products.url))
        .bearer_auth(&token)
        .json(&json!({"order_id": reserved.to_hex(), "items": [{"product_id": product, "quantity": 2}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(reservation.status(), StatusCode::CREATED);
    let mongo = mongodb::Client::with_uri_str(mongodb_uri()).await.unwrap();
    let db = mongo.database(&shop.orders.db_name);

    insert_pending(&db, reserved, &buyer.id, &product, 2).await;
    insert_pending(&db, never_reserved, &buyer.id, &product, 3).await;

    let settled = |id: ObjectId| {
        let (orders, buyer) = (&shop.orders, &buyer);
        async move {
            let order = orders.order(buyer, &id.to_hex()).await;
            (order["status"] != "pending").then_some(order)
        }
    };
    let confirmed = eventually(Duration::from_secs(15), "recovery to confirm", || {
        settled(reserved)
    })
    .await;
    let failed = eventually(Duration::from_secs(15), "recovery to fail", || {
        settled(never_reserved)
    })
    .await;
    assert_eq!(confirmed["status"], "confirmed");
    assert_eq!(confirmed["total"], "6.00", "priced from the reservation");
    assert_eq!(failed["status"], "failed");
    assert_eq!(
        shop.stock(&seller, &product).await,
        8,
        "the live reservation holds 2, nothing else"
    );
    let late = shop
        .orders
        .http
        .post(format!("{}/reservations", shop.products.url))
        .bearer_auth(&token)
        .json(&json!({"order_id": never_reserved.to_hex(), "items": [{"product_id": product, "quantity": 3}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        late.status(),
        StatusCode::CONFLICT,
        "a late reservation of a failed order is refused"
    );
    assert_eq!(shop.stock(&seller, &product).await, 8);
    shop.assert_invariants().await;
}

#[tokio::test]
async fn two_replicas_recovering_together_settle_every_pending_order_once() {
    // Invariant: initial stock = current stock + quantities held by confirmed orders, with two
    // order-service replicas racing to settle the same pending orders.
    let shop = spawn_shop_with(|c| c.service.recovery_grace_secs = 1).await;
    let db_name = shop.orders.db_name.clone();
    let _replica = spawn_order_with(&shop.auth, &shop.products.url, |c| {
        c.service.db_name = db_name;
        c.service.recovery_grace_secs = 1;
    })
    .await;
    let seller = shop.customer().await;
    let buyer = shop.customer().await;
    let product = shop.product(&seller, "Contended", "1.50", 30).await;
    let token = shop.auth.service_token().await;
    let mongo = mongodb::Client::with_uri_str(mongodb_uri()).await.unwrap();
    let db = mongo.database(&shop.orders.db_name);
    let mut ids = Vec::new();
    for quantity in 1..=5 {
        let id = ObjectId::new();
        let reserved = shop
            .orders
            .http
            .post(format!("{}/reservations", shop.products.url))
            .bearer_auth(&token)
            .json(&json!({"order_id": id.to_hex(), "items": [{"product_id": product, "quantity": quantity}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(reserved.status(), StatusCode::CREATED);
        insert_pending(&db, id, &buyer.id, &product, quantity).await;
        ids.push(id);
    }

    eventually(
        Duration::from_secs(20),
        "both replicas to settle every order",
        || async {
            let orders = shop.orders.list(&buyer, "&status=confirmed").await;
            (orders.len() == ids.len()).then_some(())
        },
    )
    .await;

    assert_eq!(shop.stock(&seller, &product).await, 30 - 15);
    for id in &ids {
        let order = shop.orders.order(&buyer, &id.to_hex()).await;
        assert_eq!(order["status"], "confirmed");
    }
    shop.assert_invariants().await;
}
