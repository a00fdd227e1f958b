//! Stock reservations under contention. The invariant checked throughout: for every product,
//! stock never goes below 0 and `initial + adjustments = stock + quantities held by live
//! reservations`.

use std::collections::HashMap;

use futures::future::join_all;
use rand::Rng;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::*;

/// Sums the quantities held per product by the given reservations that are still `reserved`.
async fn held(app: &ProductApp, service: &str, order_ids: &[String]) -> HashMap<String, i64> {
    let mut held = HashMap::new();
    for order_id in order_ids {
        let reservation = app
            .get_json(&format!("/reservations/{order_id}"), service)
            .await;
        if reservation["status"] == "reserved" {
            for item in reservation["items"].as_array().unwrap() {
                *held
                    .entry(item["product_id"].as_str().unwrap().to_owned())
                    .or_default() += item["quantity"].as_i64().unwrap();
            }
        }
    }
    held
}

#[tokio::test]
async fn fifty_concurrent_single_unit_reservations_of_ten_units_sell_exactly_ten() {
    let app = spawn_products().await;
    let (_, token, _) = app.auth.customer().await;
    let service = app.auth.service_token().await;
    let product = app.create_product(&token, "Limited", "5.00", 10).await;
    let id = product["id"].as_str().unwrap();
    let attempts = (0..50).map(|i| {
        let app = &app;
        let service = service.clone();
        async move {
            app.reserve(&service, &format!("order-{i}"), &[(id, 1)])
                .await
        }
    });
    let responses = join_all(attempts).await;
    let mut created = 0;
    let mut short = 0;
    for response in responses {
        match response.status() {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => {
                let problem: Value = response.json().await.unwrap();
                assert_eq!(problem["type"], "urn:shop:problem:insufficient-stock");
                assert_eq!(problem["products"][0]["product_id"], id);
                short += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((created, short), (10, 40));
    assert_eq!(app.stock(&token, id).await, 0);
    assert_invariants(&app.db_name, None).await;
}

#[tokio::test]
async fn competing_multi_line_reservations_are_all_or_nothing() {
    let app = spawn_products().await;
    let (_, token, _) = app.auth.customer().await;
    let service = app.auth.service_token().await;
    let mut ids = Vec::new();
    for name in ["A", "B", "C", "D"] {
        let p = app.create_product(&token, name, "2.00", 12).await;
        ids.push(p["id"].as_str().unwrap().to_owned());
    }
    let requests: Vec<(String, Vec<(String, i64)>)> = (0..30)
        .map(|i| {
            let mut rng = rand::thread_rng();
            let start = rng.gen_range(0..ids.len());
            let lines = rng.gen_range(2..=3);
            let items = (0..lines)
                .map(|k| (ids[(start + k) % ids.len()].clone(), rng.gen_range(1..=3)))
                .collect();
            (format!("multi-{i}"), items)
        })
        .collect();
    let attempts = requests.iter().map(|(order_id, items)| {
        let app = &app;
        let service = service.clone();
        async move {
            let items: Vec<(&str, i64)> = items.iter().map(|(id, q)| (id.as_str(), *q)).collect();
            app.reserve(&service, order_id, &items).await.status()
        }
    });
    // Meanwhile the owner adds 3 units to every product, one at a time.
    let delta = serde_json::json!({"delta": 1});
    let adjustments = ids.iter().flat_map(|id| {
        let path = format!("/products/{id}/stock");
        let (app, token, delta) = (&app, &token, &delta);
        (0..3).map(move |_| {
            let path = path.clone();
            async move { app.post(&path, token, delta).await.status() }
        })
    });
    let (statuses, adjusted) = tokio::join!(join_all(attempts), join_all(adjustments));
    assert!(
        adjusted.iter().all(|s| *s == StatusCode::OK),
        "{adjusted:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT),
        "{statuses:?}"
    );
    assert!(statuses.contains(&StatusCode::CREATED));

    // Every accepted reservation holds all its lines; every refused one holds nothing.
    let mut accepted = Vec::new();
    for ((order_id, items), status) in requests.iter().zip(&statuses) {
        let found = app
            .get(&format!("/reservations/{order_id}"), &service)
            .await;
        if *status == StatusCode::CREATED {
            let body: Value = found.json().await.unwrap();
            assert_eq!(
                body["items"].as_array().unwrap().len(),
                items.len(),
                "{order_id}"
            );
            accepted.push(order_id.clone());
        } else {
            assert_eq!(
                found.status(),
                StatusCode::NOT_FOUND,
                "{order_id} left nothing behind"
            );
        }
    }
    // Release half of them concurrently, then check the invariant.
    let releases = accepted.iter().step_by(2).map(|order_id| {
        app.request(
            Method::DELETE,
            &format!("/reservations/{order_id}"),
            Some(&service),
        )
        .send()
    });
    for r in join_all(releases).await {
        assert_eq!(r.unwrap().status(), StatusCode::NO_CONTENT);
    }
    let held = held(&app, &service, &accepted).await;
    for id in &ids {
        let stock = app.stock(&token, id).await;
        assert!(stock >= 0);
        assert_eq!(
            12 + 3,
            stock + held.get(id).copied().unwrap_or(0),
            "invariant for {id}"
        );
    }
    assert_invariants(&app.db_name, None).await;
}

#[tokio::test]
async fn concurrent_releases_give_the_stock_back_once() {
    let app = spawn_products().await;
    let (_, token, _) = app.auth.customer().await;
    let service = app.auth.service_token().await;
    let product = app.create_product(&token, "Bulb", "0.99", 20).await;
    let id = product["id"].as_str().unwrap();
    assert_eq!(
        app.reserve(&service, "rel-1", &[(id, 5)]).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(app.stock(&token, id).await, 15);
    let releases = (0..10).map(|_| {
        app.request(Method::DELETE, "/reservations/rel-1", Some(&service))
            .send()
    });
    for r in join_all(releases).await {
        assert_eq!(r.unwrap().status(), StatusCode::NO_CONTENT);
    }
    assert_eq!(app.stock(&token, id).await, 20);
    let body = app.get_json("/reservations/rel-1", &service).await;
    assert_eq!(body["status"], "released");
    assert_invariants(&app.db_name, None).await;
}

#[tokio::test]
async fn replays_are_idempotent_mismatches_conflict_and_early_releases_leave_a_tombstone() {
    let app = spawn_products().await;
    let (_, token, _) = app.auth.customer().await;
    let service = app.auth.service_token().await;
    let a = app.create_product(&token, "A", "1.25", 10).await;
    let b = app.create_product(&token, "B", "2.50", 10).await;
    let (a, b) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());

    let first = app.reserve(&service, "idem-1", &[(a, 2), (b, 1)]).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["total"], "5.00");
    assert_eq!(first["status"], "reserved");
    // Same items in another order: the same request.
    let replay = app.reserve(&service, "idem-1", &[(b, 1), (a, 2)]).await;
    assert_eq!(replay.status(), StatusCode::OK);
    assert_eq!(replay.json::<Value>().await.unwrap(), first);
    assert_eq!(app.stock(&token, a).await, 8, "nothing moved twice");
    let mismatch = app.reserve(&service, "idem-1", &[(a, 3)]).await;
    assert_eq!(mismatch.status(), StatusCode::CONFLICT);

    let early = app
        .request(
            Method::DELETE,
            "/reservations/never-reserved",
            Some(&service),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(early.status(), StatusCode::NO_CONTENT);
    let late = app.reserve(&service, "never-reserved", &[(a, 1)]).await;
    assert_eq!(late.status(), StatusCode::CONFLICT);
    assert_eq!(app.stock(&token, a).await, 8);
    assert_eq!(
        app.get("/reservations/unknown", &service).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn unknown_deleted_and_malformed_products_are_422_naming_them() {
    let app = spawn_products().await;
    let (_, token, _) = app.auth.customer().await;
    let service = app.auth.service_token().await;
    let live = app.create_product(&token, "Live", "1", 5).await;
    let gone = app.create_product(&token, "Gone", "1", 5).await;
    let (live, gone) = (live["id"].as_str().unwrap(), gone["id"].as_str().unwrap());
    app.request(Method::DELETE, &format!("/products/{gone}"), Some(&token))
        .send()
        .await
        .unwrap();
    for (case, missing) in [
        ("deleted", gone),
        ("unknown", "64b7f0c2a1b2c3d4e5f60718"),
        ("malformed", "nope"),
    ] {
        let response = app
            .reserve(&service, &format!("bad-{case}"), &[(live, 1), (missing, 1)])
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{case}"
        );
        let problem: Value = response.json().await.unwrap();
        assert!(
            problem["detail"].as_str().unwrap().contains(missing),
            "{case}: {problem}"
        );
    }
    assert_eq!(app.stock(&token, live).await, 5, "no line moved");
    for (items, case) in [
        (vec![], "no lines"),
        (vec![(live, 0)], "zero quantity"),
        (vec![(live, 1001)], "quantity over 1000"),
        (vec![(live, 1), (live, 2)], "product twice"),
    ] {
        let response = app.reserve(&service, "bad-lines", &items).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{case}"
        );
    }
}

#[tokio::test]
async fn a_short_line_refuses_the_whole_reservation_and_names_it() {
    let app = spawn_products().await;
    let (_, token, _) = app.auth.customer().await;
    let service = app.auth.service_token().await;
    let plenty = app.create_product(&token, "Plenty", "1", 100).await;
    let scarce = app.create_product(&token, "Scarce", "1", 1).await;
    let (plenty, scarce) = (
        plenty["id"].as_str().unwrap(),
        scarce["id"].as_str().unwrap(),
    );
    let response = app
        .reserve(&service, "short-1", &[(plenty, 10), (scarce, 2)])
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["type"], "urn:shop:problem:insufficient-stock");
    assert_eq!(problem["products"].as_array().unwrap().len(), 1);
    assert_eq!(problem["products"][0]["product_id"], scarce);
    assert_eq!(problem["products"][0]["available"], 1);
    assert_eq!(app.stock(&token, plenty).await, 100);
    assert_eq!(app.stock(&token, scarce).await, 1);
}

#[tokio::test]
async fn the_invariant_checker_reports_stock_that_vanished() {
    let app = spawn_products().await;
    let (_, token, _) = app.auth.customer().await;
    let service = app.auth.service_token().await;
    let product = app.create_product(&token, "Ledger", "1.00", 10).await;
    let id = product["id"].as_str().unwrap();
    let reserved = app.reserve(&service, "inv-1", &[(id, 3)]).await;
    assert_eq!(reserved.status(), StatusCode::CREATED);
    assert_invariants(&app.db_name, None).await;
    // Stock disappears behind the services' back: the checker must notice.
    let client = mongodb::Client::with_uri_str(mongodb_uri()).await.unwrap();
    let products = client
        .database(&app.db_name)
        .collection::<bson::Document>("products");
    let oid = bson::oid::ObjectId::parse_str(id).unwrap();
    products
        .update_one(bson::doc! {"_id": oid}, bson::doc! {"$inc": {"stock": -1}})
        .await
        .unwrap();
    let report = shop::invariants::check(&client.database(&app.db_name), None)
        .await
        .unwrap();
    assert_eq!(report.violations.len(), 1, "{report}");
    assert!(report.violations[0].contains(id));
}

/// A caller that goes away mid-reservation (order-service killed, or past its attempt timeout)
/// must not leave the reservation's transaction open on the server: it would hold the product
/// until the server aborts it (60 s by default), and every other reservation of the product
/// would fail with 503 meanwhile (seen in ./scripts/ha-test.sh).
#[tokio::test]
async fn callers_that_go_away_mid_reservation_leave_the_product_reservable() {
    let app = spawn_products().await;
    let (_, token, _) = app.auth.customer().await;
    let service = app.auth.service_token().await;
    let product = app
        .create_product(&token, "Abandoned", "5.00", 100_000)
        .await;
    let id = product["id"].as_str().unwrap();
    // Rounds of concurrent callers giving up after 2..=40 ms: some before their transaction
    // starts, some inside it, while others' transactions are running.
    for round in 0..3 {
        let callers = (1..=20u64).map(|i| {
            let request = app
                .request(Method::POST, "/reservations", Some(&service))
                .json(&serde_json::json!({
                    "order_id": format!("gone-{round}-{i}"),
                    "items": [{"product_id": id, "quantity": 1}],
                }))
                .timeout(std::time::Duration::from_millis(2 * i));
            async move {
                let _ = request.send().await;
            }
        });
        join_all(callers).await;
    }
    let started = std::time::Instant::now();
    let response = app.reserve(&service, "stays", &[(id, 1)]).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "the next reservation took {:?}",
        started.elapsed()
    );
    // Whatever the callers saw, every reservation that exists holds its stock, and no more.
    assert_invariants(&app.db_name, None).await;
}
