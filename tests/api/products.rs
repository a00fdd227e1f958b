//! product-service catalogue through HTTP: API.md section 3.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn a_created_product_has_location_etag_and_exact_money() {
    let app = spawn_products().await;
    let (_, token, _) = app.auth.customer().await;
    let response = app
        .post(
            "/products",
            &token,
            &json!({"name": "Desk lamp", "price": 19.9, "stock": 3, "sku": "LAMP-1", "description": "Warm light"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(response.headers()["etag"], "\"1\"");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/products/{}", body["id"].as_str().unwrap())
    );
    assert_eq!(body["price"], "19.90");
    assert_eq!(body["currency"], "USD");
    assert_eq!(body["stock"], 3);
    assert_eq!(body["version"], 1);
    let fetched = app.get(&location, &token).await;
    assert_eq!(fetched.headers()["etag"], "\"1\"");
    assert_eq!(fetched.headers()["cache-control"], "no-store");
    let cached = app
        .request(Method::GET, &location, Some(&token))
        .header("if-none-match", "\"1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
    let duplicate_sku = app
        .post(
            "/products",
            &token,
            &json!({"name": "Other", "price": "1", "sku": "LAMP-1"}),
        )
        .await;
    assert_eq!(duplicate_sku.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn the_authorization_matrix_holds() {
    let app = spawn_products().await;
    let (_, owner, _) = app.auth.customer().await;
    let (_, stranger, _) = app.auth.customer().await;
    let admin = app.auth.admin_token().await;
    let service = app.auth.service_token().await;
    let product = app.create_product(&owner, "Chair", "40.00", 5).await;
    let path = format!("/products/{}", product["id"].as_str().unwrap());

    // Anonymous: 401 everywhere, with the Bearer challenge.
    for (method, route) in [
        (Method::GET, "/products".to_owned()),
        (Method::GET, path.clone()),
        (Method::POST, "/products".to_owned()),
        (Method::PATCH, path.clone()),
        (Method::DELETE, path.clone()),
        (Method::POST, format!("{path}/stock")),
        (Method::POST, "/reservations".to_owned()),
        (Method::GET, "/reservations/o1".to_owned()),
        (Method::DELETE, "/reservations/o1".to_owned()),
    ] {
        let response = app
            .request(method.clone(), &route, None)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {route}"
        );
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
    }

    // Another user: 403 on every write.
    let patch = app
        .request(Method::PATCH, &path, Some(&stranger))
        .header("if-match", "\"1\"")
        .json(&json!({"name": "Mine now"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), StatusCode::FORBIDDEN);
    let stock = app
        .post(&format!("{path}/stock"), &stranger, &json!({"delta": 1}))
        .await;
    assert_eq!(stock.status(), StatusCode::FORBIDDEN);
    let delete = app
        .request(Method::DELETE, &path, Some(&stranger))
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::FORBIDDEN);

    // A service token cannot write products; a user token cannot touch reservations.
    let service_create = app
        .post("/products", &service, &json!({"name": "x", "price": "1"}))
        .await;
    assert_eq!(service_create.status(), StatusCode::FORBIDDEN);
    let service_stock = app
        .post(&format!("{path}/stock"), &service, &json!({"delta": 1}))
        .await;
    assert_eq!(service_stock.status(), StatusCode::FORBIDDEN);
    let id = product["id"].as_str().unwrap();
    assert_eq!(
        app.reserve(&owner, "o1", &[(id, 1)]).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get("/reservations/o1", &owner).await.status(),
        StatusCode::FORBIDDEN
    );
    let user_release = app
        .request(Method::DELETE, "/reservations/o1", Some(&owner))
        .send()
        .await
        .unwrap();
    assert_eq!(user_release.status(), StatusCode::FORBIDDEN);

    // The admin may do everything.
    let admin_patch = app
        .request(Method::PATCH, &path, Some(&admin))
        .header("if-match", "\"1\"")
        .json(&json!({"price": "45.50"}))
        .send()
        .await
        .unwrap();
    assert_eq!(admin_patch.status(), StatusCode::OK);
    assert_eq!(
        app.post(&format!("{path}/stock"), &admin, &json!({"delta": 2}))
            .await
            .status(),
        StatusCode::OK
    );
    let admin_delete = app
        .request(Method::DELETE, &path, Some(&admin))
        .send()
        .await
        .unwrap();
    assert_eq!(admin_delete.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.get(&path, &owner).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn of_two_concurrent_patches_with_one_etag_exactly_one_wins() {
    let app = spawn_products().await;
    let (_, token, _) = app.auth.customer().await;
    let product = app.create_product(&token, "Table", "100", 1).await;
    let path = format!("/products/{}", product["id"].as_str().unwrap());
    let missing = app
        .request(Method::PATCH, &path, Some(&token))
        .json(&json!({"name": "No precondition"}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::PRECONDITION_REQUIRED);

    let attempt = |name: &'static str| {
        app.request(Method::PATCH, &path, Some(&token))
            .header("if-match", "\"1\"")
            .json(&json!({"name": name}))
            .send()
    };
    let (a, b) = tokio::join!(attempt("First"), attempt("Second"));
    let mut statuses = [a.unwrap().status(), b.unwrap().status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::PRECONDITION_FAILED]);
    let after = app.get_json(&path, &token).await;
    assert_eq!(after["version"], 2);
}

#[tokio::test]
async fn an_etag_read_before_a_reservation_is_stale_after_it() {
    let app = spawn_products().await;
    let (_, token, _) = app.auth.customer().await;
    let service = app.auth.service_token().await;
    let product = app.create_product(&token, "Mug", "7.25", 4).await;
    let id = product["id"].as_str().unwrap();
    let path = format!("/products/{id}");
    let etag = app.get(&path, &token).await.headers()["etag"].clone();
    assert_eq!(
        app.reserve(&service, "order-1", &[(id, 1)]).await.status(),
        StatusCode::CREATED
    );
    let stale = app
        .request(Method::PATCH, &path, Some(&token))
        .header("if-match", etag.clone())
        .json(&json!({"stock": 100}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    let unchanged = app
        .request(Method::GET, &path, Some(&token))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(
        unchanged.status(),
        StatusCode::OK,
        "the old ETag no longer matches"
    );
    assert_eq!(unchanged.json::<Value>().await.unwrap()["stock"], 3);
}

#[tokio::test]
async fn twenty_concurrent_stock_deltas_lose_no_update() {
    let app = spawn_products().await;
    let (_, token, _) = app.auth.customer().await;
    let product = app.create_product(&token, "Pen", "1.50", 7).await;
    let path = format!("/products/{}/stock", product["id"].as_str().unwrap());
    let delta = json!({"delta": 5});
    let adds = (0..20).map(|_| app.post(&path, &token, &delta));
    let statuses: Vec<StatusCode> = join_all(adds).await.iter().map(|r| r.status()).collect();
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    let id = product["id"].as_str().unwrap();
    assert_eq!(app.stock(&token, id).await, 107);
    let below = app.post(&path, &token, &json!({"delta": -108})).await;
    assert_eq!(below.status(), StatusCode::CONFLICT);
    assert_eq!(
        app.stock(&token, id).await,
        107,
        "a refused delta changes nothing"
    );
    let to_zero = app.post(&path, &token, &json!({"delta": -107})).await;
    assert_eq!(to_zero.json::<Value>().await.unwrap()["stock"], 0);
}

#[tokio::test]
async fn pages_never_repeat_or_skip_when_products_are_added_between_fetches() {
    let app = spawn_products().await;
    let (_, token, _) = app.auth.customer().await;
    let mut originals = HashSet::new();
    for i in 0..23 {
        let price = format!("{}.00", 10 + (i % 5));
        let p = app
            .create_product(&token, &format!("Item {i:02}"), &price, 1)
            .await;
        originals.insert(p["id"].as_str().unwrap().to_owned());
    }
    for sort in ["newest", "price_asc", "price_desc", "name"] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut page = 0;
        loop {
            let mut path = format!("/products?limit=10&sort={sort}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let body = app.get_json(&path, &token).await;
            for item in body["items"].as_array().unwrap() {
                seen.push(item["id"].as_str().unwrap().to_owned());
            }
            // Someone adds a product between page fetches.
            app.create_product(&token, &format!("Late {sort} {page}"), "12.00", 1)
                .await;
            page += 1;
            match body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "{sort}: no product twice");
        assert!(
            originals.iter().all(|id| unique.contains(id)),
            "{sort}: none skipped"
        );
    }
}

#[tokio::test]
async fn filters_and_sorts_select_and_order_products() {
    let app = spawn_products().await;
    let (_, token, _) = app.auth.customer().await;
    let (_, other, _) = app.auth.customer().await;
    app.create_product(&token, "Red Apple", "3.00", 10).await;
    app.create_product(&token, "green apple", "2.00", 0).await;
    app.create_product(&token, "Banana", "1.00", 5).await;
    app.create_product(&token, "a.*b (special)", "9.99", 1)
        .await;
    app.create_product(&other, "Apple pie", "12.00", 2).await;
    let names = |body: Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let get = |path: String| {
        let app = &app;
        let token = token.clone();
        async move { app.get(&path, &token).await.json::<Value>().await.unwrap() }
    };
    assert_eq!(
        names(get("/products?q=APPLE&sort=name".into()).await),
        ["Apple pie", "green apple", "Red Apple"]
    );
    assert_eq!(
        names(get("/products?q=.*".into()).await),
        ["a.*b (special)"],
        "regex text matched literally"
    );
    assert_eq!(names(get("/products?q=(".into()).await), ["a.*b (special)"]);
    assert_eq!(
        names(get("/products?min_price=2&max_price=3.00&sort=price_asc".into()).await),
        ["green apple", "Red Apple"]
    );
    assert_eq!(
        names(get("/products?in_stock=true&q=apple&sort=price_desc".into()).await),
        ["Apple pie", "Red Apple"]
    );
    assert_eq!(
        names(get("/products?owner=me&sort=price_asc&q=a".into()).await).len(),
        4
    );
    assert_eq!(
        names(get("/products?sort=newest&limit=1".into()).await),
        ["Apple pie"]
    );
}

#[tokio::test]
async fn bad_input_is_refused_with_a_4xx_and_a_message_per_case() {
    let app = spawn_products().await;
    let (_, token, _) = app.auth.customer().await;
    let cases = [
        (json!({"name": "x", "price": -1}), "price"),
        (json!({"name": "x", "price": 0}), "price"),
        (json!({"name": "x", "price": "0.001"}), "price"),
        (json!({"name": "x", "price": 1e12}), "price"),
        (json!({"name": "x", "price": "abc"}), "price"),
        (json!({"name": "x", "price": null}), "price"),
        (json!({"name": "x", "price": true}), "price"),
        (json!({"name": "x", "price": 1, "stock": -1}), "stock"),
        (json!({"name": "x", "price": 1, "stock": 1.5}), "stock"),
        (
            json!({"name": "x", "price": 1, "stock": 10_000_000_000_i64}),
            "stock",
        ),
        (json!({"name": "x", "price": 1, "stock": "3"}), "stock"),
        (json!({"name": "", "price": 1}), "name"),
        (json!({"name": "n".repeat(201), "price": 1}), "name"),
        (
            json!({"name": "x", "price": 1, "owner_id": "someone"}),
            "owner_id",
        ),
        (json!({"name": "x", "price": 1, "version": 9}), "version"),
        (
            json!({"name": "x", "price": 1, "description": "d".repeat(2001)}),
            "description",
        ),
    ];
    let mut messages = HashSet::new();
    for (body, field) in cases {
        let response = app.post("/products", &token, &body).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}"
        );
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], field, "{body}");
        messages.insert(problem["errors"][0]["message"].as_str().unwrap().to_owned());
    }
    assert!(
        messages.len() >= 10,
        "the cases are told apart: {messages:?}"
    );

    let url = format!("{}/products", app.url);
    let huge = json!({"name": "x", "price": 1, "description": "d".repeat(100 * 1024)});
    assert_eq!(
        app.post("/products", &token, &huge).await.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let plain = app
        .http
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let malformed = app
        .http
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"name\":")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    for query in [
        "limit=0",
        "limit=101",
        "limit=abc",
        "cursor=garbage",
        "sort=cheapest",
        "min_price=-1",
        "in_stock=maybe",
        "cursor=eyJzIjoibmFtZSJ9",
    ] {
        let response = app.get(&format!("/products?{query}"), &token).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}"
        );
    }
    let product = app.create_product(&token, "Valid", "1", 1).await;
    let path = format!("/products/{}", product["id"].as_str().unwrap());
    let bad_patch = app
        .request(Method::PATCH, &path, Some(&token))
        .header("if-match", "\"1\"")
        .json(&json!({"price": "1.234", "id": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_patch.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.get("/products/not-an-id", &token).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/products/64b7f0c2a1b2c3d4e5f60718", &token)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let too_big = app
        .post(
            &format!("{path}/stock"),
            &token,
            &json!({"delta": 2_000_000_000}),
        )
        .await;
    assert_eq!(too_big.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let integral = app
        .post(&format!("{path}/stock"), &token, &json!({"delta": 2.0}))
        .await;
    assert_eq!(
        integral.status(),
        StatusCode::OK,
        "2.0 is an integer, as in JSON Schema"
    );
    let fractional = app
        .post(&format!("{path}/stock"), &token, &json!({"delta": 1.5}))
        .await;
    assert_eq!(fractional.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_merge_patch_changes_only_what_it_names_and_deleted_products_disappear() {
    let app = spawn_products().await;
    let (_, token, _) = app.auth.customer().await;
    let created = app
        .post("/products", &token, &json!({"name": "Sofa", "price": "499.99", "stock": 2, "sku": "SOFA", "description": "Grey"}))
        .await
        .json::<Value>()
        .await
        .unwrap();
    let path = format!("/products/{}", created["id"].as_str().unwrap());
    let patched = app
        .request(Method::PATCH, &path, Some(&token))
        .header("if-match", "\"1\"")
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"price": 450, "sku": null}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), StatusCode::OK);
    assert_eq!(patched.headers()["etag"], "\"2\"");
    let body: Value = patched.json().await.unwrap();
    assert_eq!(
        (
            body["price"].as_str(),
            body["name"].as_str(),
            body["description"].as_str()
        ),
        (Some("450.00"), Some("Sofa"), Some("Grey"))
    );
    assert!(body["sku"].is_null());
    let delete = app
        .request(Method::DELETE, &path, Some(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.get(&path, &token).await.status(), StatusCode::NOT_FOUND);
    let again = app
        .request(Method::DELETE, &path, Some(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    let list = app.get_json("/products", &token).await;
    assert!(list["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn cached_reads_never_hide_a_write_made_through_the_same_replica() {
    let app = spawn_products().await;
    let (_, token, _) = app.auth.customer().await;
    let service = app.auth.service_token().await;
    let product = app.create_product(&token, "Cached", "2.00", 5).await;
    let id = product["id"].as_str().unwrap();
    let first_stock = |page: Value| page["items"][0]["stock"].clone();
    let hits = || async {
        let text = app.get("/metrics", &token).await.text().await.unwrap();
        let hits = |cache| {
            let cache = format!(r#"cache="{cache}""#);
            metric_sum(
                &text,
                "product_cache_lookups_total",
                &[&cache, r#"result="hit""#],
            )
        };
        (hits("product"), hits("page"))
    };
    // Warm both caches until a repeated read is a hit in each (the change stream reports the
    // creation a poll later, which drops the pages once more), then write and read again at once.
    let mut warmed = false;
    for _ in 0..20 {
        let before = hits().await;
        for _ in 0..2 {
            let page = app.get_json("/products?sort=name", &token).await;
            assert_eq!(first_stock(page), 5);
            assert_eq!(app.stock(&token, id).await, 5);
        }
        let after = hits().await;
        if after.0 > before.0 && after.1 > before.1 {
            warmed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(warmed, "repeated reads never hit the cache");
    let reserved = app.reserve(&service, "cache-1", &[(id, 2)]).await;
    assert_eq!(reserved.status(), StatusCode::CREATED);
    assert_eq!(app.stock(&token, id).await, 3);
    let page = app.get_json("/products?sort=name", &token).await;
    assert_eq!(first_stock(page), 3);
    app.create_product(&token, "Another", "1.00", 1).await;
    let page = app.get_json("/products?sort=name", &token).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
}

/// Another replica's cache may serve a product for at most one second after a write, even while
/// the product is read non-stop (and so refreshed in the background instead of expiring). The
/// test allows another second for a loaded test machine.
#[tokio::test]
async fn a_write_through_another_replica_shows_within_the_cache_bound() {
    let app = spawn_products().await;
    let other = app.replica().await;
    let (_, token, _) = app.auth.customer().await;
    let product = app.create_product(&token, "Replicated", "3.00", 10).await;
    let id = product["id"].as_str().unwrap();
    let hot_until = Instant::now() + Duration::from_millis(700);
    while Instant::now() < hot_until {
        assert_eq!(app.stock(&token, id).await, 10);
    }
    let adjusted = app
        .http
        .post(format!("{other}/products/{id}/stock"))
        .bearer_auth(&token)
        .json(&json!({"delta": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(adjusted.status(), StatusCode::OK);
    let acknowledged = Instant::now();
    while app.stock(&token, id).await != 15 {
        assert!(
            acknowledged.elapsed() < Duration::from_secs(2),
            "a replica served a stale product for over a second"
        );
    }
}

/// A write made straight in the database, through no replica at all, reaches a replica's cache
/// through the change stream well before the entry's one-second ttl would have run out: read,
/// write in MongoDB, read again 600 ms later. The product, a page listing it and a page
/// filtered by stock all show the write (the stream reports a write of stock alone). (An
/// attempt whose second read came too late to tell them apart, on a stalled machine, is made
/// again.)
#[tokio::test]
async fn a_write_straight_in_the_database_reaches_the_cache_through_the_change_stream() {
    let app = spawn_products().await;
    let (_, token, _) = app.auth.customer().await;
    let product = app.create_product(&token, "Streamed", "3.00", 10).await;
    let id = product["id"].as_str().unwrap();
    let oid = bson::oid::ObjectId::parse_str(id).unwrap();
    let mongo = mongodb::Client::with_uri_str(mongodb_uri()).await.unwrap();
    let products = mongo
        .database(&app.db_name)
        .collection::<bson::Document>("products");
    // The change stream opens in the background once the service runs.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let reads = || async {
        let page = app.get_json("/products?sort=name", &token).await;
        let in_stock = app.get_json("/products?in_stock=true", &token).await;
        (
            app.stock(&token, id).await,
            page["items"][0]["stock"].as_i64().unwrap(),
            in_stock["items"].as_array().unwrap().len(),
        )
    };
    let mut stock = 10;
    for attempt in 1..=3 {
        let read = Instant::now();
        assert_eq!(reads().await, (stock, stock, usize::from(stock > 0)));
        // Out of stock, then back in.
        stock = if attempt % 2 == 1 { 0 } else { 10 };
        products
            .update_one(
                bson::doc! {"_id": oid},
                bson::doc! {"$set": {"stock": stock}, "$inc": {"version": 1}},
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        let after = reads().await;
        if read.elapsed() < Duration::from_millis(950) {
            assert_eq!(
                after,
                (stock, stock, usize::from(stock > 0)),
                "served an entry cached before the write"
            );
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        stock = app.stock(&token, id).await;
    }
    panic!("no attempt read back within the ttl: the machine is too slow to tell");
}

/// Concurrent reads of different products are coalesced into shared database queries (here at
/// most 8 ids per query, one query at a time, no cache): each read still gets its own product,
/// and ids with no live product get 404.
#[tokio::test]
async fn coalesced_reads_give_each_caller_its_own_product() {
    let app = spawn_products_with(|config| {
        config.service.cache_ttl_ms = 0;
        config.service.read_batch_max = 8;
        config.service.read_batch_concurrency = 1;
    })
    .await;
    let token = app.auth.admin_token().await;
    let mut expected = Vec::new();
    for i in 0..20 {
        let product = app
            .create_product(&token, &format!("Batch item {i}"), "1.50", i)
            .await;
        expected.push((product["id"].as_str().unwrap().to_owned(), Some(i)));
    }
    let deleted = expected[3].0.clone();
    let delete = app
        .request(
            Method::DELETE,
            &format!("/products/{deleted}"),
            Some(&token),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::NO_CONTENT);
    expected[3].1 = None;
    expected.push((bson::oid::ObjectId::new().to_hex(), None));
    // Every id twice, so that some batches hold the same id more than once.
    let (app, token) = (&app, &token);
    let reads = expected
        .iter()
        .chain(expected.iter())
        .map(|(id, stock)| async move {
            let response = app.get(&format!("/products/{id}"), token).await;
            (id, stock, response)
        });
    for (id, stock, response) in join_all(reads).await {
        match stock {
            None => assert_eq!(response.status(), StatusCode::NOT_FOUND, "{id}"),
            Some(stock) => {
                assert_eq!(response.status(), StatusCode::OK, "{id}");
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["id"], id.as_str());
                assert_eq!(body["name"], format!("Batch item {stock}"));
                assert_eq!(body["stock"], *stock);
            }
        }
    }
}
