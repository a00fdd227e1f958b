//! Reference ceilings measured in the same run: what the services are compared against.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::Router;
use axum::extract::FromRef;
use axum::routing::get;
use shared::auth::{AuthUser, Verifier};

/// State of the bare handler: only the token verifier.
#[derive(Clone, FromRef)]
struct BareState {
    verifier: Verifier,
}

/// (a) A bare axum handler returning a fixed 1 KB JSON body behind the same token check as the
/// services (`/bare`), and the same without the check (`/bare-open`), to price the check.
/// Returns its address.
pub async fn spawn_bare_handler(verifier: Verifier) -> anyhow::Result<SocketAddr> {
    let body: String = {
        let filler = "x".repeat(1000);
        format!("{{\"id\":\"bare\",\"filler\":\"{filler}\"}}")
    };
    let body = Arc::new(body);
    let open_body = body.clone();
    let app = Router::new()
        .route(
            "/bare-open",
            get(move || {
                let body = open_body.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        body.as_ref().clone(),
                    )
                }
            }),
        )
        .route(
            "/bare",
            get(move |_user: AuthUser| {
                let body = body.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        body.as_ref().clone(),
                    )
                }
            }),
        )
        .with_state(BareState { verifier });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

/// (c) argon2id verifications per second with the service's parameters on `threads` threads.
pub fn argon2_rate(threads: usize, duration: Duration) -> f64 {
    let params = Params::new(19_456, 2, 1, None).expect("valid parameters");
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let hash = argon
        .hash_password(b"benchmark password", &salt)
        .expect("hashing")
        .to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (stop, count, hash, argon) =
                (stop.clone(), count.clone(), hash.clone(), argon.clone());
            std::thread::spawn(move || {
                let parsed = PasswordHash::new(&hash).expect("own hash parses");
                while !stop.load(Ordering::Relaxed) {
                    let _ = argon.verify_password(b"benchmark password", &parsed);
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
    count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}
