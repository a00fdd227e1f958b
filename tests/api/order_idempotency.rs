//! `Idempotency-Key` on `POST /orders`: replays, mismatches, races, and per-user scope.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::Value;

use crate::order_helpers::*;

#[tokio::test]
async fn a_replay_with_the_same_key_and_body_answers_the_same_and_places_once() {
    let shop = spawn_shop().await;
    let seller = shop.customer().await;
    let buyer = shop.customer().await;
    let product = shop.product(&seller, "Once", "4.20", 10).await;
    let body = order_body(&[(&product, 2)]);

    let first = shop.orders.place(&buyer, &body, Some("key-1")).await;
    let first_status = first.status();
    let first_location = first.headers()["location"].clone();
    let first_body = first.text().await.unwrap();
    let replay = shop.orders.place(&buyer, &body, Some("key-1")).await;

    assert_eq!(first_status, StatusCode::CREATED);
    assert_eq!(replay.status(), StatusCode::CREATED);
    assert_eq!(replay.headers()["location"], first_location);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.text().await.unwrap(), first_body);
    assert_eq!(shop.stock(&seller, &product).await, 8, "stock moved once");
    assert_eq!(shop.orders.list(&buyer, "").await.len(), 1);
    shop.assert_invariants().await;
}

#[tokio::test]
async fn the_same_key_with_another_body_is_422() {
    let shop = spawn_shop().await;
    let seller = shop.customer().await;
    let buyer = shop.customer().await;
    let product = shop.product(&seller, "Strict", "1.00", 10).await;

    let first = shop
        .orders
        .place(&buyer, &order_body(&[(&product, 1)]), Some("k"))
        .await;
    let other = shop
        .orders
        .place(&buyer, &order_body(&[(&product, 2)]), Some("k"))
        .await;

    assert_eq!(first.status(), StatusCode::CREATED);
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = other.json().await.unwrap();
    assert_eq!(problem["type"], "urn:shop:problem:idempotency-key-mismatch");
    assert_eq!(shop.stock(&seller, &product).await, 9);
}

#[tokio::test]
async fn eight_concurrent_requests_with_one_key_place_one_order() {
    let shop = spawn_shop_with(patient).await;
    let seller = shop.customer().await;
    let buyer = shop.customer().await;
    let product = shop.product(&seller, "Raced", "1.00", 10).await;
    let body = order_body(&[(&product, 3)]);

    let responses = join_all((0..8).map(|_| shop.orders.place(&buyer, &body, Some("race")))).await;

    let mut created_ids = Vec::new();
    for response in responses {
        match response.status() {
            StatusCode::CREATED => {
                let order: Value = response.json().await.unwrap();
                created_ids.push(order["id"].as_str().unwrap().to_owned());
            }
            StatusCode::CONFLICT => {
                let problem: Value = response.json().await.unwrap();
                assert_eq!(
                    problem["type"],
                    "urn:shop:problem:idempotency-key-in-flight"
                );
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(!created_ids.is_empty());
    assert!(
        created_ids.iter().all(|id| *id == created_ids[0]),
        "replays name the one order"
    );
    assert_eq!(shop.orders.list(&buyer, "").await.len(), 1, "one order");
    assert_eq!(shop.stock(&seller, &product).await, 7, "stock moved once");
    shop.assert_invariants().await;
}

#[tokio::test]
async fn the_same_key_from_two_users_places_two_orders() {
    let shop = spawn_shop().await;
    let seller = shop.customer().await;
    let alice = shop.customer().await;
    let bob = shop.customer().await;
    let product = shop.product(&seller, "Shared key", "1.00", 10).await;
    let body = order_body(&[(&product, 1)]);

    let a = shop.orders.place(&alice, &body, Some("same")).await;
    let b = shop.orders.place(&bob, &body, Some("same")).await;

    assert_eq!(a.status(), StatusCode::CREATED);
    assert_eq!(b.status(), StatusCode::CREATED);
    let a: Value = a.json().await.unwrap();
    let b: Value = b.json().await.unwrap();
    assert_ne!(a["id"], b["id"]);
    assert_eq!(shop.stock(&seller, &product).await, 8);
}

#[tokio::test]
async fn a_key_left_unfinished_by_a_request_that_died_is_answered_or_taken_over() {
    let shop = spawn_shop().await;
    let seller = shop.customer().await;
    let buyer = shop.customer().await;
    let product = shop.product(&seller, "Crashy", "1.00", 10).await;
    let body = order_body(&[(&product, 1)]);
    let first: Value = shop
        .orders
        .place(&buyer, &body, Some("died"))
        .await
        .json()
        .await
        .unwrap();
    let mongo = mongodb::Client::with_uri_str(crate::helpers::mongodb_uri())
        .await
        .unwrap();
    let db = mongo.database(&shop.orders.db_name);
    let keys = db.collection::<mongodb::bson::Document>("idempotency_keys");
    let an_hour_ago = mongodb::bson::DateTime::from_millis(
        mongodb::bson::DateTime::now().timestamp_millis() - 3_600_000,
    );
    let unfinish = mongodb::bson::doc! {"$set": {"response": null, "created_at": an_hour_ago}};

    // Its order was confirmed (by recovery, say) but the answer never stored: replay the order.
    keys.update_one(mongodb::bson::doc! {"key": "died"}, unfinish.clone())
        .await
        .unwrap();
    let replay = shop.orders.place(&buyer, &body, Some("died")).await;
    assert_eq!(replay.status(), StatusCode::CREATED);
    let replayed: Value = replay.json().await.unwrap();
    assert_eq!(replayed["id"], first["id"]);

    // It died before its order was recorded: this request runs in its place.
    keys.update_one(mongodb::bson::doc! {"key": "died"}, unfinish)
        .await
        .unwrap();
    let first_id = mongodb::bson::oid::ObjectId::parse_str(first["id"].as_str().unwrap()).unwrap();
    db.collection::<mongodb::bson::Document>("orders")
        .delete_one(mongodb::bson::doc! {"_id": first_id})
        .await
        .unwrap();
    let rerun = shop.orders.place(&buyer, &body, Some("died")).await;
    assert_eq!(rerun.status(), StatusCode::CREATED);
    let rerun: Value = rerun.json().await.unwrap();
    assert_ne!(rerun["id"], first["id"]);
    let again = shop.orders.place(&buyer, &body, Some("died")).await;
    assert_eq!(
        again.json::<Value>().await.unwrap()["id"],
        rerun["id"],
        "and is replayed from then on"
    );
}
