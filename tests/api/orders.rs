//! order-service end to end: placing, listing, reading and cancelling orders with all three
//! services running, and the stock invariant under concurrency.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::order_helpers::*;

#[tokio::test]
async fn the_seed_flow_places_an_order_with_exact_totals_and_lists_it() {
    let shop = spawn_shop().await;
    let seller = shop.customer().await;
    let buyer = shop.customer().await;
    let mug = shop.product(&seller, "Mug", "12.50", 5).await;
    let pen = shop.product(&seller, "Pen", "0.10", 100).await;

    let response = shop
        .orders
        .place(&buyer, &order_body(&[(&mug, 2), (&pen, 3)]), None)
        .await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let order: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/orders/{}", order["id"].as_str().unwrap())
    );
    assert_eq!(order["status"], "confirmed");
    assert_eq!(order["user_id"], buyer.id.as_str());
    assert_eq!(order["total"], "25.30", "2 x 12.50 + 3 x 0.10, exactly");
    assert_eq!(order["currency"], "USD");
    assert_eq!(order["items"][0]["name"], "Mug");
    assert_eq!(order["items"][0]["unit_price"], "12.50");
    assert_eq!(order["items"][0]["line_total"], "25.00");
    assert_eq!(order["items"][1]["line_total"], "0.30");
    assert_eq!(shop.stock(&seller, &mug).await, 3);
    assert_eq!(shop.stock(&seller, &pen).await, 97);
    assert_eq!(
        shop.orders
            .order(&buyer, order["id"].as_str().unwrap())
            .await,
        order
    );
    let listed = shop.orders.list(&buyer, "").await;
    assert_eq!(listed, vec![order]);
    let metrics = shop
        .orders
        .get(&buyer, "/metrics")
        .await
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("orders_created_total"), "{metrics}");
    assert!(
        metrics.contains("product_client_requests_total"),
        "{metrics}"
    );
    shop.assert_invariants().await;
}

#[tokio::test]
async fn fifty_concurrent_orders_for_ten_units_accept_exactly_ten() {
    // Invariant: stock never goes below zero; every accepted unit is one unit less in stock.
    let shop = spawn_shop_with(patient).await;
    let seller = shop.customer().await;
    let product = shop.product(&seller, "Scarce", "1.00", 10).await;
    let mut buyers = Vec::new();
    for _ in 0..5 {
        buyers.push(shop.customer().await);
    }
    let body = order_body(&[(&product, 1)]);

    let responses = join_all((0..50).map(|i| shop.orders.place(&buyers[i % 5], &body, None))).await;

    let mut created = 0;
    let mut refused = 0;
    for response in responses {
        match response.status() {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => {
                assert_eq!(
                    response.headers()["content-type"],
                    "application/problem+json"
                );
                let problem: Value = response.json().await.unwrap();
                assert_eq!(problem["type"], "urn:shop:problem:insufficient-stock");
                refused += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((created, refused), (10, 40));
    assert_eq!(shop.stock(&seller, &product).await, 0);
    let mut confirmed = 0;
    for buyer in &buyers {
        let orders = shop.orders.list(buyer, "").await;
        assert!(
            orders.iter().all(|o| o["status"] == "confirmed"),
            "no refused order remains"
        );
        confirmed += orders.len();
    }
    assert_eq!(confirmed, 10);
    shop.assert_invariants().await;
}

#[tokio::test]
async fn concurrent_orders_of_mixed_quantities_never_oversell() {
    // Invariant: the accepted quantities never exceed the stock, and stock = initial - accepted.
    let shop = spawn_shop_with(patient).await;
    let seller = shop.customer().await;
    let buyer = shop.customer().await;
    let product = shop.product(&seller, "Bulk", "2.00", 20).await;
    let quantities = [3, 4, 5, 7, 3, 4, 5, 7, 2, 6];

    let bodies: Vec<_> = quantities
        .iter()
        .map(|q| order_body(&[(&product, *q)]))
        .collect();

    let responses = join_all(bodies.iter().map(|b| shop.orders.place(&buyer, b, None))).await;

    let mut accepted = 0;
    for (response, quantity) in responses.into_iter().zip(quantities) {
        match response.status() {
            StatusCode::CREATED => accepted += quantity,
            StatusCode::CONFLICT => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(accepted <= 20, "accepted {accepted} of 20");
    assert!(accepted > 0);
    assert_eq!(shop.stock(&seller, &product).await, 20 - accepted);
    shop.assert_invariants().await;
}

#[tokio::test]
async fn an_order_with_one_short_line_is_409_and_moves_no_stock() {
    let shop = spawn_shop().await;
    let seller = shop.customer().await;
    let buyer = shop.customer().await;
    let plenty = shop.product(&seller, "Plenty", "1.00", 50).await;
    let short = shop.product(&seller, "Short", "1.00", 1).await;

    let response = shop
        .orders
        .place(&buyer, &order_body(&[(&plenty, 5), (&short, 2)]), None)
        .await;

    assert_eq!(response.status(), StatusCode::CONFLICT);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["type"], "urn:shop:problem:insufficient-stock");
    assert_eq!(
        problem["products"][0]["product_id"],
        short.as_str(),
        "names the short product"
    );
    assert_eq!(shop.stock(&seller, &plenty).await, 50);
    assert_eq!(shop.stock(&seller, &short).await, 1);
    assert!(
        shop.orders.list(&buyer, "").await.is_empty(),
        "no order remains"
    );
    shop.assert_invariants().await;
}

#[tokio::test]
async fn an_unknown_product_is_422() {
    let shop = spawn_shop().await;
    let buyer = shop.customer().await;
    let response = shop
        .orders
        .place(
            &buyer,
            &order_body(&[("0123456789abcdef01234567", 1)]),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        shop.orders.list(&buyer, "").await.is_empty(),
        "no order remains"
    );
}

#[tokio::test]
async fn invalid_order_requests_are_refused_and_never_5xx() {
    let shop = spawn_shop().await;
    let buyer = shop.customer().await;
    let p = "0123456789abcdef01234567";
    let line = |q: Value| json!({"items": [{"product_id": p, "quantity": q}]});
    let many: Vec<Value> = (0..51)
        .map(|i| json!({"product_id": format!("{i:024x}"), "quantity": 1}))
        .collect();
    let cases: Vec<(Value, &str)> = vec![
        (line(json!(0)), "quantity 0"),
        (line(json!(-1)), "negative quantity"),
        (line(json!(1.5)), "fractional quantity"),
        (line(json!("1")), "quantity as a string"),
        (line(Value::Null), "null quantity"),
        (line(json!(1_000_000_000)), "10^9"),
        (line(json!(9_223_372_036_854_775_808u64)), "2^63"),
        (
            serde_json::from_str(&format!(
                r#"{{"items":[{{"product_id":"{p}","quantity":18446744073709551616}}]}}"#
            ))
            .unwrap(),
            "2^64",
        ),
        (json!({"items": []}), "no lines"),
        (json!({"items": many}), "51 lines"),
        (
            json!({"items": [{"product_id": p, "quantity": 1, "unit_price": "0.01"}]}),
            "unit_price",
        ),
        (
            json!({"items": [{"product_id": p, "quantity": 1}], "user_id": "someone"}),
            "user_id",
        ),
        (
            json!({"items": [{"product_id": p, "quantity": 1}], "total": "0.01"}),
            "total",
        ),
        (
            json!({"items": [{"product_id": p, "quantity": 1}], "status": "confirmed"}),
            "status",
        ),
        (
            json!({"items": [{"product_id": p, "quantity": 1}, {"product_id": p, "quantity": 2}]}),
            "same product twice",
        ),
        (json!({}), "no items"),
    ];
    for (body, why) in cases {
        let response = shop.orders.place(&buyer, &body, None).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{why}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{why}"
        );
    }
    let long_key = "k".repeat(256);
    let response = shop
        .orders
        .place(&buyer, &line(json!(1)), Some(&long_key))
        .await;
    assert_eq!(
        response.status(),
        StatusCode::BAD_REQUEST,
        "key over 255 characters"
    );
    let malformed = shop
        .orders
        .http
        .post(format!("{}/orders", shop.orders.url))
        .bearer_auth(&buyer.token)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let anonymous = shop
        .orders
        .http
        .get(format!("{}/orders", shop.orders.url))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert!(shop.orders.list(&buyer, "").await.is_empty());
}

#[tokio::test]
async fn others_orders_are_404_and_never_listed() {
    let shop = spawn_shop().await;
    let seller = shop.customer().await;
    let alice = shop.customer().await;
    let mallory = shop.customer().await;
    let product = shop.product(&seller, "Private", "3.00", 10).await;
    let response = shop
        .orders
        .place(&alice, &order_body(&[(&product, 1)]), None)
        .await;
    let order: Value = response.json().await.unwrap();
    let id = order["id"].as_str().unwrap();

    let theirs = shop.orders.get(&mallory, &format!("/orders/{id}")).await;
    let missing = shop
        .orders
        .get(&mallory, "/orders/0123456789abcdef01234567")
        .await;
    let malformed = shop.orders.get(&mallory, "/orders/not-an-id").await;
    assert_eq!(theirs.status(), StatusCode::NOT_FOUND);
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(malformed.status(), StatusCode::NOT_FOUND);
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("request_id");
        v
    };
    assert_eq!(
        strip(theirs.json().await.unwrap()),
        strip(missing.json().await.unwrap()),
        "another's order looks exactly like a missing one"
    );
    assert!(shop.orders.list(&mallory, "").await.is_empty());
    let spoofed = shop
        .orders
        .list(&mallory, &format!("&user_id={}", alice.id))
        .await;
    assert!(spoofed.is_empty(), "user_id= is ignored for customers");
    let cancel = shop
        .orders
        .post(&mallory, &format!("/orders/{id}/cancel"))
        .await;
    assert_eq!(cancel.status(), StatusCode::NOT_FOUND);
    assert_eq!(shop.orders.order(&alice, id).await["status"], "confirmed");
}

#[tokio::test]
async fn cancelling_restores_the_stock_exactly_once() {
    let shop = spawn_shop().await;
    let seller = shop.customer().await;
    let buyer = shop.customer().await;
    let product = shop.product(&seller, "Returnable", "5.00", 10).await;
    let order: Value = shop
        .orders
        .place(&buyer, &order_body(&[(&product, 4)]), None)
        .await
        .json()
        .await
        .unwrap();
    let id = order["id"].as_str().unwrap();
    assert_eq!(shop.stock(&seller, &product).await, 6);

    let first = shop
        .orders
        .post(&buyer, &format!("/orders/{id}/cancel"))
        .await;
    assert_eq!(first.status(), StatusCode::OK);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["status"], "cancelled");
    let again = shop
        .orders
        .post(&buyer, &format!("/orders/{id}/cancel"))
        .await;
    assert_eq!(again.status(), StatusCode::OK, "cancelling twice is fine");
    assert_eq!(
        again.json::<Value>().await.unwrap(),
        first,
        "and changes nothing"
    );

    assert_eq!(shop.stock(&seller, &product).await, 10);
    let cancelled = shop.orders.list(&buyer, "&status=cancelled").await;
    assert_eq!(cancelled.len(), 1);
    assert!(
        shop.orders
            .list(&buyer, "&status=confirmed")
            .await
            .is_empty()
    );
    shop.assert_invariants().await;
}

#[tokio::test]
async fn listing_is_newest_first_and_pages_never_repeat_or_skip() {
    let shop = spawn_shop().await;
    let seller = shop.customer().await;
    let buyer = shop.customer().await;
    let product = shop.product(&seller, "Listed", "1.00", 100).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let order: Value = shop
            .orders
            .place(&buyer, &order_body(&[(&product, 1)]), None)
            .await
            .json()
            .await
            .unwrap();
        ids.push(order["id"].as_str().unwrap().to_owned());
    }

    let first: Value = shop
        .orders
        .get(&buyer, "/orders?limit=2")
        .await
        .json()
        .await
        .unwrap();
    let newer: Value = shop
        .orders
        .place(&buyer, &order_body(&[(&product, 1)]), None)
        .await
        .json()
        .await
        .unwrap();
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let second: Value = shop
        .orders
        .get(&buyer, &format!("/orders?limit=2&cursor={cursor}"))
        .await
        .json()
        .await
        .unwrap();

    let seen: Vec<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["items"].as_array().unwrap())
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        seen,
        vec![ids[2].as_str(), ids[1].as_str(), ids[0].as_str()]
    );
    assert!(second["next_cursor"].is_null());
    assert_eq!(shop.orders.list(&buyer, "").await[0]["id"], newer["id"]);
    for bad in [
        "limit=0",
        "limit=101",
        "limit=x",
        "cursor=nonsense",
        "status=shipped",
        "colour=red",
    ] {
        let response = shop.orders.get(&buyer, &format!("/orders?{bad}")).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let shop = spawn_shop().await;
    let buyer = shop.customer().await;
    let doc: Value = shop
        .orders
        .get(&buyer, "/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    let paths = &doc["paths"];
    assert!(paths["/orders"]["post"]["responses"]["201"].is_object());
    assert!(paths["/orders"]["post"]["responses"]["503"].is_object());
    assert!(paths["/orders"]["get"].is_object());
    assert!(paths["/orders/{id}"]["get"].is_object());
    assert!(paths["/orders/{id}/cancel"]["post"]["responses"]["409"].is_object());
    let docs = shop.orders.get(&buyer, "/docs/").await;
    assert_eq!(docs.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_user_over_the_order_rate_limit_gets_429_and_others_are_unaffected() {
    let shop = spawn_shop_with(|c| {
        c.service.rate_limit_per_minute = 60;
        c.service.rate_limit_burst = 3;
    })
    .await;
    let seller = shop.customer().await;
    let flooder = shop.customer().await;
    let neighbour = shop.customer().await;
    let product = shop.product(&seller, "Limited", "1.00", 10).await;
    let invalid = order_body(&[(&product, 0)]);

    for _ in 0..3 {
        let response = shop.orders.place(&flooder, &invalid, None).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let limited = shop
        .orders
        .place(&flooder, &order_body(&[(&product, 1)]), None)
        .await;

    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key("retry-after"));
    let other = shop
        .orders
        .place(&neighbour, &order_body(&[(&product, 1)]), None)
        .await;
    assert_eq!(
        other.status(),
        StatusCode::CREATED,
        "other users are unaffected"
    );
    assert_eq!(shop.stock(&seller, &product).await, 9);
}
