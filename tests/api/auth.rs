//! auth-service through HTTP: API.md section 2.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn registration_returns_the_customer_and_never_the_password() {
    let app = spawn_auth().await;
    let name = username();
    let response = app
        .post_json(
            "/register",
            &json!({"username": name, "password": "a good password", "email": "a@example.com"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["username"], name);
    assert_eq!(body["email"], "a@example.com");
    assert_eq!(body["role"], "customer");
    assert!(body["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(body["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(body.get("password").is_none() && body.get("password_hash").is_none());
}

#[tokio::test]
async fn a_taken_username_in_other_letter_case_is_409() {
    let app = spawn_auth().await;
    let name = username();
    assert_eq!(
        app.register(&name, "a good password").await.status(),
        StatusCode::CREATED
    );
    let response = app.register(&name.to_uppercase(), "another password").await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "urn:shop:problem:username-taken");
    assert!(body["request_id"].is_string());
}

#[tokio::test]
async fn invalid_registrations_are_422_naming_the_field() {
    let app = spawn_auth().await;
    let long_password = "p".repeat(129);
    let cases = [
        (
            json!({"username": "ab", "password": "a good password"}),
            "username",
            "username too short",
        ),
        (
            json!({"username": "x".repeat(33), "password": "a good password"}),
            "username",
            "username too long",
        ),
        (
            json!({"username": "bad name", "password": "a good password"}),
            "username",
            "space in username",
        ),
        (
            json!({"username": "gooduser", "password": "short"}),
            "password",
            "password too short",
        ),
        (
            json!({"username": "gooduser", "password": long_password}),
            "password",
            "password too long",
        ),
        (
            json!({"username": "gooduser", "password": "GOODUSER"}),
            "password",
            "password equals username",
        ),
        (
            json!({"username": "gooduser", "password": "a good password", "email": "nope"}),
            "email",
            "bad email",
        ),
        (
            json!({"username": "gooduser", "password": "a good password", "role": "admin"}),
            "role",
            "role is not accepted",
        ),
        (
            json!({"password": "a good password"}),
            "username",
            "missing username",
        ),
        (
            json!({"username": 42, "password": "a good password"}),
            "username",
            "username of wrong type",
        ),
    ];
    for (body, field, case) in cases {
        let response = app.post_json("/register", &body).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{case}"
        );
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["type"], "urn:shop:problem:validation", "{case}");
        assert_eq!(problem["errors"][0]["field"], field, "{case}");
    }
    // A password of 8 multi-byte characters is long enough: characters, not bytes, count.
    let response = app.register(&username(), "пароль-ок").await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn malformed_wrongly_typed_and_oversized_bodies_are_400_415_413() {
    let app = spawn_auth().await;
    let url = format!("{}/register", app.url);
    let malformed = app
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body(r#"{"username": "#)
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let untyped = app.http.post(&url).body("{}").send().await.unwrap();
    assert_eq!(untyped.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let text = app
        .http
        .post(&url)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let huge = json!({"username": "x".repeat(70 * 1024), "password": "a good password"});
    let oversized = app.post_json("/register", &huge).await;
    assert_eq!(oversized.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        oversized.headers()["content-type"],
        "application/problem+json"
    );
}

#[tokio::test]
async fn concurrent_registrations_of_one_username_yield_exactly_one_201() {
    let app = spawn_auth().await;
    let name = username();
    let attempts = (0..12).map(|i| {
        let variant = if i % 2 == 0 {
            name.clone()
        } else {
            name.to_uppercase()
        };
        let app = &app;
        async move { app.register(&variant, "a good password").await.status() }
    });
    let statuses = join_all(attempts).await;
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let conflicts = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((created, conflicts), (1, 11), "{statuses:?}");
}

#[tokio::test]
async fn password_grant_works_with_form_and_json() {
    let app = spawn_auth().await;
    let name = username();
    app.register(&name, "a good password").await;
    let form = app.login(&name, "a good password").await;
    assert_eq!(form.status(), StatusCode::OK);
    assert_eq!(form.headers()["cache-control"], "no-store");
    let body: Value = form.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["scope"], "shop");
    assert!(body["refresh_token"].is_string());
    // JSON, with grant_type defaulting to password.
    let json_login = app
        .post_json(
            "/token",
            &json!({"username": name, "password": "a good password"}),
        )
        .await;
    assert_eq!(json_login.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_identical_invalid_grant() {
    let app = spawn_auth().await;
    let name = username();
    app.register(&name, "a good password").await;
    let wrong = app.login(&name, "a wrong password").await;
    let unknown = app.login(&username(), "a good password").await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    let (wrong, unknown): (Value, Value) =
        (wrong.json().await.unwrap(), unknown.json().await.unwrap());
    assert_eq!(wrong, unknown);
    assert_eq!(wrong["error"], "invalid_grant");
}

#[tokio::test]
async fn token_request_errors_follow_rfc_6749() {
    let app = spawn_auth().await;
    let unsupported = app
        .token_form(&[("grant_type", "authorization_code")])
        .await;
    assert_eq!(unsupported.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        unsupported.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
    let missing = app
        .token_form(&[("grant_type", "password"), ("username", "x")])
        .await;
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        missing.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let no_grant = app.token_form(&[("username", "x")]).await;
    assert_eq!(
        no_grant.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let malformed = app
        .http
        .post(format!("{}/token", app.url))
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        malformed.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let plain = app
        .http
        .post(format!("{}/token", app.url))
        .header("content-type", "text/plain")
        .body("grant_type=password")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (name, _, _) = app.customer().await;
    let scope = app
        .token_form(&[
            ("grant_type", "password"),
            ("username", &name),
            ("password", "a good password"),
            ("scope", "admin"),
        ])
        .await;
    assert_eq!(
        scope.json::<Value>().await.unwrap()["error"],
        "invalid_scope"
    );
}

#[tokio::test]
async fn client_credentials_need_a_valid_client() {
    let app = spawn_auth().await;
    let url = format!("{}/token", app.url);
    let form = [("grant_type", "client_credentials")];
    let ok = app
        .http
        .post(&url)
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["scope"], "stock:reserve");
    assert!(body.get("refresh_token").is_none());

    let wrong = app
        .http
        .post(&url)
        .basic_auth(CLIENT_ID, Some("not the secret"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().contains_key("www-authenticate"));
    assert_eq!(
        wrong.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
    let anonymous = app.token_form(&form).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        anonymous.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
}

#[tokio::test]
async fn repeated_failures_for_a_username_are_refused_with_429_whatever_the_password() {
    let app = spawn_auth_with(|c| {
        c.auth.login_max_failures = 3;
        c.auth.login_slow_after = 10;
    })
    .await;
    let (name, _, _) = app.customer().await;
    for _ in 0..3 {
        assert_eq!(
            app.login(&name, "a wrong password").await.status(),
            StatusCode::BAD_REQUEST
        );
    }
    let refused = app.login(&name, "a good password").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    // Other users are not affected.
    let (other, _, _) = app.customer().await;
    assert_eq!(
        app.login(&other, "a good password").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_flood_from_one_address_gets_429_with_retry_after() {
    let app = spawn_auth_with(|c| {
        c.auth.rate_limit_per_minute = 1;
        c.auth.rate_limit_burst = 3;
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let response = app.register(&username(), "a good password").await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(response.headers().contains_key("retry-after"));
        }
        statuses.push(response.status());
    }
    assert_eq!(&statuses[..3], &[StatusCode::CREATED; 3]);
    assert_eq!(&statuses[3..], &[StatusCode::TOO_MANY_REQUESTS; 2]);
    let token = app.login("whoever", "whatever pass").await;
    assert_eq!(token.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(token.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn refresh_rotates_and_a_replayed_token_revokes_its_family() {
    let app = spawn_auth().await;
    let (_, _, first) = app.customer().await;
    let rotated = app
        .token_form(&[("grant_type", "refresh_token"), ("refresh_token", &first)])
        .await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let body: Value = rotated.json().await.unwrap();
    let second = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    let me = app.get("/me", body["access_token"].as_str()).await;
    assert_eq!(me.status(), StatusCode::OK);

    // Replaying the rotated token fails and revokes the whole family, second included.
    let replay = app
        .token_form(&[("grant_type", "refresh_token"), ("refresh_token", &first)])
        .await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        replay.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    let after = app
        .token_form(&[("grant_type", "refresh_token"), ("refresh_token", &second)])
        .await;
    assert_eq!(after.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn concurrent_redemptions_of_one_refresh_token_succeed_at_most_once() {
    let app = spawn_auth().await;
    let (_, _, token) = app.customer().await;
    let attempts = (0..6).map(|_| {
        let app = &app;
        let token = token.clone();
        async move {
            app.token_form(&[("grant_type", "refresh_token"), ("refresh_token", &token)])
                .await
                .status()
        }
    });
    let statuses = join_all(attempts).await;
    assert!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count() <= 1,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn revoked_refresh_tokens_fail_and_revoke_always_answers_200() {
    let app = spawn_auth().await;
    let (_, _, refresh) = app.customer().await;
    let revoke = app
        .http
        .post(format!("{}/revoke", app.url))
        .form(&[("token", refresh.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), StatusCode::OK);
    let again = app
        .token_form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
        .await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    let unknown = app
        .post_json("/revoke", &json!({"token": "never issued"}))
        .await;
    assert_eq!(unknown.status(), StatusCode::OK);
    let missing = app.post_json("/revoke", &json!({})).await;
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn me_requires_a_bearer_access_token() {
    let app = spawn_auth().await;
    let (name, access, refresh) = app.customer().await;
    let anonymous = app.get("/me", None).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    let with_refresh = app.get("/me", Some(&refresh)).await;
    assert_eq!(with_refresh.status(), StatusCode::UNAUTHORIZED);
    assert!(
        with_refresh.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    let me = app.get("/me", Some(&access)).await;
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(me.headers()["cache-control"], "no-store");
    assert_eq!(me.json::<Value>().await.unwrap()["username"], name);
}

#[tokio::test]
async fn the_configured_admin_exists_and_nobody_else_becomes_admin() {
    let app = spawn_auth().await;
    let login = app.login(ADMIN_USERNAME, ADMIN_PASSWORD).await;
    assert_eq!(login.status(), StatusCode::OK);
    let body: Value = login.json().await.unwrap();
    assert_eq!(body["scope"], "shop admin");
    let me: Value = app
        .get("/me", body["access_token"].as_str())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], "admin");
}

#[tokio::test]
async fn two_replicas_share_keys_admin_and_failure_counts() {
    let first = spawn_auth_with(|c| c.auth.login_max_failures = 2).await;
    let db = first.db_name.clone();
    // Both replicas of one database start at the same time as the second and third.
    let (second, third) = tokio::join!(
        spawn_auth_with(|c| {
            c.auth.db_name = db.clone();
            c.auth.login_max_failures = 2;
        }),
        spawn_auth_with(|c| {
            c.auth.db_name = db.clone();
            c.auth.login_max_failures = 2;
        })
    );
    let (name, access, _) = first.customer().await;
    let me = second.get("/me", Some(&access)).await;
    assert_eq!(
        me.status(),
        StatusCode::OK,
        "a token of one replica verifies on another"
    );
    let jwks = |app: &AuthApp| {
        let url = format!("{}/.well-known/jwks.json", app.url);
        let http = app.http.clone();
        async move {
            http.get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    assert_eq!(jwks(&first).await, jwks(&third).await);
    assert_eq!(
        third.login(ADMIN_USERNAME, ADMIN_PASSWORD).await.status(),
        StatusCode::OK
    );

    assert_eq!(
        first.login(&name, "wrong password").await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        second.login(&name, "wrong password").await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        third.login(&name, "a good password").await.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "failures counted on two replicas lock the third"
    );
}

#[tokio::test]
async fn production_refuses_to_start_with_development_defaults() {
    let db = fresh_db("auth");
    let mut config = auth_config(&db);
    config.common.app_env = shared::config::AppEnv::Production;
    config.auth.clients = None;
    assert!(auth_service::Application::build(config).await.is_err());
    let mut config = auth_config(&db);
    config.common.app_env = shared::config::AppEnv::Production;
    config.auth.clients = Some("order-service:dev-order-service-secret:stock:reserve".into());
    assert!(auth_service::Application::build(config).await.is_err());
}

#[tokio::test]
async fn discovery_documents_describe_the_server() {
    let app = spawn_auth().await;
    let jwks: Value = app
        .get("/.well-known/jwks.json", None)
        .await
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(
        (
            key["kty"].as_str(),
            key["alg"].as_str(),
            key["use"].as_str()
        ),
        (Some("OKP"), Some("EdDSA"), Some("sig"))
    );
    assert!(key["kid"].is_string());
    let metadata: Value = app
        .get("/.well-known/oauth-authorization-server", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], "http://auth.test");
    assert_eq!(metadata["token_endpoint"], "http://auth.test/token");
    assert!(
        metadata["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("client_credentials"))
    );
}

#[tokio::test]
async fn a_login_flood_is_shed_with_503_while_other_requests_are_served() {
    let app = spawn_auth_with(|c| {
        c.auth.hash_concurrency = 1;
        c.auth.hash_queue = 2;
    })
    .await;
    let (name, _, _) = app.customer().await;
    let (_, other_token, _) = app.customer().await;
    let logins = (0..20).map(|_| {
        let (app, name) = (&app, &name);
        async move {
            let r = app.login(name, "a good password").await;
            (r.status(), r.headers().contains_key("retry-after"))
        }
    });
    let reads = (0..10).map(|_| {
        let (app, token) = (&app, &other_token);
        async move { app.get("/me", Some(token)).await.status() }
    });
    let (logins, reads) = tokio::join!(join_all(logins), join_all(reads));
    let served = logins.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    let shed: Vec<_> = logins
        .iter()
        .filter(|(s, _)| *s == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert_eq!(served + shed.len(), 20, "{logins:?}");
    assert!(served >= 1 && !shed.is_empty(), "{logins:?}");
    assert!(
        shed.iter().all(|(_, retry)| *retry),
        "shed logins carry Retry-After"
    );
    assert!(reads.iter().all(|s| *s == StatusCode::OK), "{reads:?}");
}
