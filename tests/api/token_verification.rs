//! The shared crate's token verification, against a real auth-service JWKS over HTTP.
//! auth-service signs with a key file here, so the test can also sign with the real key.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{EncodePrivateKey, spki::der::pem::LineEnding};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use reqwest::StatusCode;
use serde_json::{Value, json};
use shared::auth::{AuthError, LEEWAY_SECS, Verifier, VerifierConfig};

use crate::helpers::*;

const ISSUER: &str = "http://auth.test";

struct Setup {
    app: AuthApp,
    key: SigningKey,
    kid: String,
    verifier: Verifier,
}

async fn setup() -> Setup {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
    let path = std::env::temp_dir().join(format!("{}.pem", uuid::Uuid::new_v4()));
    std::fs::write(&path, pem.as_bytes()).unwrap();
    let app = spawn_auth_with(|c| c.auth.signing_key_file = Some(path.clone())).await;
    // auth-service reads its key once, at start-up.
    std::fs::remove_file(&path).unwrap();
    let jwks: Value = app
        .get("/.well-known/jwks.json", None)
        .await
        .json()
        .await
        .unwrap();
    let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_owned();
    assert_eq!(
        jwks["keys"][0]["x"],
        URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes()),
        "the JWKS publishes the key of the file"
    );
    let verifier = Verifier::remote(
        VerifierConfig {
            issuer: ISSUER.into(),
            audience: "shop".into(),
            jwks_url: format!("{}/.well-known/jwks.json", app.url),
            min_refresh_interval: Duration::from_secs(30),
            refresh_interval: Duration::from_secs(300),
            cache_capacity: 100,
        },
        reqwest::Client::new(),
    );
    Setup {
        app,
        key,
        kid,
        verifier,
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn claims() -> Value {
    json!({
        "iss": ISSUER, "sub": "64b7f0c2a1b2c3d4e5f60718", "aud": "shop",
        "exp": now() + 300, "iat": now(), "jti": "j1", "scope": "shop",
        "role": "customer", "username": "someone",
    })
}

fn sign(key: &SigningKey, kid: &str, typ: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some(typ.into());
    header.kid = Some(kid.into());
    let der = key.to_pkcs8_der().unwrap();
    encode(&header, claims, &EncodingKey::from_ed_der(der.as_bytes())).unwrap()
}

impl Setup {
    fn token(&self, claims: &Value) -> String {
        sign(&self.key, &self.kid, "at+jwt", claims)
    }
    async fn verify(&self, token: &str) -> Result<std::sync::Arc<shared::auth::Claims>, AuthError> {
        self.verifier.verify(token).await
    }
}

#[tokio::test]
async fn a_well_formed_token_verifies_and_is_accepted_over_http() {
    let s = setup().await;
    let token = s.token(&claims());
    let verified = s.verify(&token).await.expect("valid token");
    assert_eq!(verified.sub, "64b7f0c2a1b2c3d4e5f60718");
    // Through the AuthUser extractor: valid token, but no such account.
    assert_eq!(
        s.app.get("/me", Some(&token)).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn alg_none_is_refused() {
    let s = setup().await;
    let header =
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "at+jwt", "kid": s.kid}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
    let token = format!("{header}.{payload}.");
    assert!(s.verify(&token).await.is_err());
    let response = s.app.get("/me", Some(&token)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_bytes_is_refused() {
    let s = setup().await;
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("at+jwt".into());
    header.kid = Some(s.kid.clone());
    let public = s.key.verifying_key();
    let token = encode(
        &header,
        &claims(),
        &EncodingKey::from_secret(public.as_bytes()),
    )
    .unwrap();
    assert!(matches!(
        s.verify(&token).await,
        Err(AuthError::WrongAlgorithm(_))
    ));
    let x = URL_SAFE_NO_PAD.encode(public.as_bytes());
    let token = encode(&header, &claims(), &EncodingKey::from_secret(x.as_bytes())).unwrap();
    assert!(s.verify(&token).await.is_err());
}

#[tokio::test]
async fn a_token_signed_by_another_key_with_the_real_kid_is_refused() {
    let s = setup().await;
    let other = SigningKey::generate(&mut rand::rngs::OsRng);
    let token = sign(&other, &s.kid, "at+jwt", &claims());
    assert!(matches!(s.verify(&token).await, Err(AuthError::Invalid(_))));
}

#[tokio::test]
async fn a_tampered_payload_is_refused() {
    let s = setup().await;
    let token = s.token(&claims());
    let parts: Vec<&str> = token.split('.').collect();
    let mut forged = claims();
    forged["role"] = json!("admin");
    let token = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(forged.to_string()),
        parts[2]
    );
    assert!(matches!(s.verify(&token).await, Err(AuthError::Invalid(_))));
}

#[tokio::test]
async fn expiry_is_enforced_past_the_leeway_only() {
    let s = setup().await;
    let leeway = LEEWAY_SECS as i64;
    let mut within = claims();
    within["exp"] = json!(now() - leeway / 2);
    assert!(
        s.verify(&s.token(&within)).await.is_ok(),
        "inside the leeway"
    );
    let mut expired = claims();
    expired["exp"] = json!(now() - leeway - 5);
    assert!(matches!(
        s.verify(&s.token(&expired)).await,
        Err(AuthError::Invalid(_))
    ));
}

#[tokio::test]
async fn wrong_or_missing_issuer_audience_or_subject_are_refused() {
    let s = setup().await;
    let cases: [(&str, Value); 6] = [
        ("iss", json!("http://evil.test")),
        ("iss", Value::Null),
        ("aud", json!("another-audience")),
        ("aud", Value::Null),
        ("sub", Value::Null),
        ("exp", Value::Null),
    ];
    for (claim, value) in cases {
        let mut c = claims();
        if value.is_null() {
            c.as_object_mut().unwrap().remove(claim);
        } else {
            c[claim] = value.clone();
        }
        assert!(s.verify(&s.token(&c)).await.is_err(), "{claim} = {value}");
    }
}

#[tokio::test]
async fn a_token_of_another_type_is_refused() {
    let s = setup().await;
    for typ in ["JWT", "refresh+jwt", "at+jwt2"] {
        let token = sign(&s.key, &s.kid, typ, &claims());
        assert!(
            matches!(s.verify(&token).await, Err(AuthError::WrongType)),
            "{typ}"
        );
    }
}

#[tokio::test]
async fn a_refresh_token_is_never_a_bearer_token() {
    let s = setup().await;
    let (_, _, refresh) = s.app.customer().await;
    assert!(s.verify(&refresh).await.is_err());
    assert_eq!(
        s.app.get("/me", Some(&refresh)).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn an_unknown_kid_is_refused() {
    let s = setup().await;
    let token = sign(&s.key, "no-such-kid", "at+jwt", &claims());
    assert!(matches!(s.verify(&token).await, Err(AuthError::UnknownKey)));
}

#[tokio::test]
async fn without_reachable_keys_verification_is_unavailable_not_a_crash() {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let verifier = Verifier::remote(
        VerifierConfig {
            issuer: ISSUER.into(),
            audience: "shop".into(),
            jwks_url: "http://127.0.0.1:9/.well-known/jwks.json".into(),
            min_refresh_interval: Duration::from_secs(30),
            refresh_interval: Duration::from_secs(300),
            cache_capacity: 100,
        },
        reqwest::Client::new(),
    );
    let token = sign(&key, "kid", "at+jwt", &claims());
    assert!(matches!(
        verifier.verify(&token).await,
        Err(AuthError::KeysUnavailable)
    ));
}

#[tokio::test]
async fn unknown_kids_refetch_the_jwks_at_most_once_per_interval() {
    let s = setup().await;
    let count =
        |metrics: String| metric_sum(&metrics, "http_requests_total", &["/.well-known/jwks.json"]);
    // The first fetch happens in the background at start-up.
    assert!(s.verify(&s.token(&claims())).await.is_ok());
    let before = count(s.app.get("/metrics", None).await.text().await.unwrap());
    for i in 0..5 {
        let token = sign(&s.key, &format!("rotated-{i}"), "at+jwt", &claims());
        assert!(matches!(s.verify(&token).await, Err(AuthError::UnknownKey)));
    }
    let after = count(s.app.get("/metrics", None).await.text().await.unwrap());
    assert!(
        after - before <= 1,
        "{} refetches for 5 unknown kids",
        after - before
    );
}
