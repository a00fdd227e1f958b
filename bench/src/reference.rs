//! Reference ceilings measured in the same run: what the services are compared against.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::Router;
use axum::body::Bytes;
use axum::extract::FromRef;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use shared::auth::{AuthUser, Verifier, VerifierConfig};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::Args;

/// State of the bare handler: only the token verifier.
#[derive(Clone, FromRef)]
struct BareState {
    verifier: Verifier,
}

/// (a) Starts the bare handler as a process of its own (this binary with `--serve-bare`), as
/// each service is one, so that it is measured across the same process boundary. Returns the
/// process (killed when dropped) and its address.
pub async fn start_bare_handler(args: &Args) -> anyhow::Result<(Child, SocketAddr)> {
    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "--serve-bare",
            "--auth-url",
            &args.auth_url,
            "--issuer",
            &args.issuer,
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().context("bare handler stdout")?;
    let line = BufReader::new(stdout)
        .lines()
        .next_line()
        .await?
        .context("the bare handler exited before printing its address")?;
    Ok((child, line.trim().parse()?))
}

/// Serves (a) until killed: a bare axum handler returning a fixed 1 KB JSON body behind the
/// same token check as the services (`/bare`), and the same without the check (`/bare-open`),
/// to price the check. Prints its address on stdout first.
#[expect(
    clippy::print_stdout,
    reason = "the parent process reads the address there"
)]
pub async fn serve_bare_handler(args: &Args) -> anyhow::Result<()> {
    let verifier = Verifier::remote(
        VerifierConfig {
            issuer: args.issuer.clone(),
            audience: "shop".into(),
            jwks_url: format!("{}/.well-known/jwks.json", args.auth_url),
            min_refresh_interval: Duration::from_secs(30),
            refresh_interval: Duration::from_secs(300),
            cache_capacity: 10_000,
        },
        reqwest::Client::new(),
    );
    let body = Bytes::from({
        let filler = "x".repeat(1000);
        format!("{{\"id\":\"bare\",\"filler\":\"{filler}\"}}")
    });
    let open_body = body.clone();
    let app = Router::new()
        .route(
            "/bare-open",
            get(move || std::future::ready(json(open_body.clone()))),
        )
        .route(
            "/bare",
            get(move |_user: AuthUser| std::future::ready(json(body.clone()))),
        )
        .with_state(BareState { verifier });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

/// A 200 with `body` as JSON.
fn json(body: Bytes) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], body)
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
