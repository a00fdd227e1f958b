//! Load generator for the shop services: seeds users and products, measures each scenario after
//! a warm-up at a fixed concurrency, measures the reference ceilings in the same run, counts
//! MongoDB round trips per request from the services' `/metrics`, samples resident memory, and
//! prints a table plus a JSON file. Run through `scripts/bench.sh`, which starts everything.

mod load;
mod reference;
mod report;
mod scenarios;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use serde_json::{Value, json};

use crate::load::{Figures, run, run_against, run_interleaved};
use crate::scenarios::Shop;

/// Command line.
#[derive(Parser, Debug, Clone)]
#[command(about = "Benchmarks the shop services")]
pub struct Args {
    /// auth-service base URL.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub auth_url: String,
    /// product-service base URL.
    #[arg(long, default_value = "http://127.0.0.1:8001")]
    pub product_url: String,
    /// order-service base URL.
    #[arg(long, default_value = "http://127.0.0.1:8002")]
    pub order_url: String,
    /// MongoDB URI, for the direct-driver reference.
    #[arg(long, env = "MONGODB_URI", default_value = "mongodb://127.0.0.1:27017")]
    pub mongodb_uri: String,
    /// product-service's database.
    #[arg(long, default_value = "products")]
    pub product_db: String,
    /// Token issuer, for the bare-handler reference's verifier.
    #[arg(long, env = "JWT_ISSUER", default_value = "http://localhost:8000")]
    pub issuer: String,
    /// Measured seconds per scenario.
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// Warm-up seconds per scenario.
    #[arg(long, default_value_t = 5)]
    pub warmup: u64,
    /// Concurrent workers.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Products to seed.
    #[arg(long, default_value_t = 1000)]
    pub products: usize,
    /// Users to seed.
    #[arg(long, default_value_t = 20)]
    pub users: usize,
    /// Service processes to sample memory of: `auth=PID,product=PID,order=PID`.
    #[arg(long, default_value = "")]
    pub pids: String,
    /// Scenarios to run.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "browse,order,login,mixed,browse-during-login-flood"
    )]
    pub scenarios: Vec<String>,
    /// Where to write the JSON results.
    #[arg(long, default_value = "bench/results/latest.json")]
    pub out: String,
    /// Also record the scheduler (`perf sched record`, all CPUs) while `browse` and
    /// `browse-during-login-flood` are measured, into `<dir>/sched-<scenario>.data`.
    #[arg(long)]
    pub sched_trace: Option<String>,
    /// Serve reference (a) and print its address, instead of benchmarking (the bench runs
    /// itself this way, so the reference is a process of its own, as each service is).
    #[arg(long, hide = true)]
    pub serve_bare: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.serve_bare {
        return reference::serve_bare_handler(&args).await;
    }
    let pids = parse_pids(&args.pids);
    let warmup = Duration::from_secs(args.warmup);
    let duration = Duration::from_secs(args.duration);
    let c = args.concurrency;

    // Idle: started and ready, before any traffic.
    let rss_idle = report::rss(&pids);
    eprintln!(
        "seeding {} users and {} products",
        args.users, args.products
    );
    let shop = Arc::new(Shop::seed(&args).await?);
    let rss_seeded = report::rss(&pids);

    eprintln!("counting MongoDB round trips per request");
    let round_trips = shop.round_trips().await?;

    eprintln!("reference ceilings");
    let mut references: Vec<Figures> = Vec::new();
    let (_bare_process, bare) = reference::start_bare_handler(&args).await?;
    // (a) and (a0) are compared with each other to within 5 %: measured in eight alternating
    // windows (A B B A ...), so that the machine's drift does not decide the comparison.
    references.extend(
        run_interleaved(
            &[
                ("ref-a bare handler + token check", shop.bare_op(bare)),
                (
                    "ref-a0 bare handler, no token check",
                    shop.bare_open_op(bare),
                ),
            ],
            c,
            warmup,
            duration,
            8,
            |s| s == 200,
        )
        .await,
    );
    references.push(
        run(
            "ref-b driver find_one",
            c,
            warmup,
            duration,
            shop.driver_op(&args).await?,
            |s| s == 200,
        )
        .await,
    );
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    eprintln!("  ref-c argon2id verifications on {threads} threads");
    let argon2 =
        tokio::task::spawn_blocking(move || reference::argon2_rate(threads, duration)).await?;

    let mut scenarios: Vec<Figures> = Vec::new();
    // (c) in the windows alternating with the login scenario's.
    let mut argon2_windows: Vec<f64> = Vec::new();
    let ok_get = |s| s == 200;
    // A scenario's figures, with what product-service did meanwhile.
    let measured = |name: &'static str, op, ok: fn(u16) -> bool| {
        observed(&shop, run(name, c, warmup, duration, op, ok))
    };
    let trace = |name: &str| sched_trace(args.sched_trace.as_deref(), name, warmup, duration);
    for name in &args.scenarios {
        let figures = match name.as_str() {
            "browse" => {
                scenarios
                    .push(measured("browse: GET /products/{id}", shop.product_op(), ok_get).await);
                scenarios
                    .push(measured("browse: GET /products page", shop.list_op(), ok_get).await);
                let trace = trace("browse");
                let figures = measured("browse", shop.browse_op(), ok_get).await;
                trace.await??;
                figures
            }
            "order" => measured("order", shop.order_op(), |s| s == 201).await,
            "login" => {
                // POST /token is compared with (c) in alternating windows, as (a) with (a0).
                // Readings before and after each (c) window, so that what the services did is
                // taken over the login windows only.
                let readings = std::sync::Mutex::new(vec![shop.product_counters().await]);
                let (mut figures, rates) = run_against(
                    "login",
                    c,
                    warmup,
                    duration,
                    4,
                    shop.login_op(),
                    ok_get,
                    |window| {
                        let (shop, readings) = (&shop, &readings);
                        async move {
                            let start = shop.product_counters().await;
                            eprintln!(
                                "  ref-c argon2id verifications ({} s)",
                                window.as_secs_f64()
                            );
                            let rate = tokio::task::spawn_blocking(move || {
                                reference::argon2_rate(threads, window)
                            })
                            .await
                            .unwrap_or_default();
                            let end = shop.product_counters().await;
                            readings.lock().expect("not poisoned").extend([start, end]);
                            rate
                        }
                    },
                )
                .await;
                let mut readings = readings.into_inner().expect("not poisoned");
                readings.push(shop.product_counters().await);
                // (start, first (c) start), (first (c) end, second (c) start), ..., (last (c)
                // end, end): the stretches in which logins ran.
                figures.product_service = Some(scenarios::ProductCounters::over(
                    readings.chunks_exact(2).map(|pair| (&pair[0], &pair[1])),
                ));
                argon2_windows = rates;
                figures
            }
            "mixed" => measured("mixed", shop.mixed_op(), |s| s == 200 || s == 201).await,
            "browse-during-login-flood" => {
                let flood = shop.start_login_flood(c);
                let trace = trace("browse-during-login-flood");
                let mut figures =
                    measured("browse-during-login-flood", shop.browse_op(), ok_get).await;
                trace.await??;
                figures.flood_logins_per_sec = Some(flood.stop().await);
                figures
            }
            other => anyhow::bail!("unknown scenario {other}"),
        };
        scenarios.push(figures);
    }
    let rss_end = report::rss(&pids);

    let results = json!({
        "date": chrono::Utc::now().to_rfc3339(),
        "machine": report::machine(),
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "concurrency": c,
        "warmup_secs": args.warmup,
        "duration_secs": args.duration,
        "scenarios": scenarios,
        "references": {
            "figures": references,
            "argon2_verifications_per_sec": argon2,
            "argon2_window_rates": argon2_windows,
        },
        "round_trips": round_trips,
        "rss_mb": {"idle": rss_idle, "seeded": rss_seeded, "end": rss_end},
    });
    let targets = report::targets(&results);
    let mut results = results;
    results["targets"] = targets;
    report::print(&results);
    if let Some(dir) = std::path::Path::new(&args.out).parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&results)?)?;
    eprintln!("results written to {}", args.out);
    Ok(())
}

/// With a trace folder: after the warm-up, records the scheduler on every CPU for the
/// measured `duration` into `<dir>/sched-<scenario>.data`. The returned task ends with the
/// recording.
fn sched_trace(
    dir: Option<&str>,
    scenario: &str,
    warmup: Duration,
    duration: Duration,
) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    let out = dir.map(|dir| format!("{dir}/sched-{scenario}.data"));
    tokio::spawn(async move {
        let Some(out) = out else { return Ok(()) };
        tokio::time::sleep(warmup).await;
        let status = tokio::process::Command::new("perf")
            .args(["sched", "record", "-a", "-o", &out, "--", "sleep"])
            .arg(duration.as_secs_f64().to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .await?;
        anyhow::ensure!(status.success(), "perf sched record failed ({status})");
        Ok(())
    })
}

/// `run`, with what product-service's cache and database did meanwhile.
async fn observed(shop: &Shop, run: impl Future<Output = Figures>) -> Figures {
    let before = shop.product_counters().await;
    let mut figures = run.await;
    figures.product_service = Some(shop.product_counters().await.since(&before));
    figures
}

pub fn parse_pids(raw: &str) -> BTreeMap<String, u32> {
    raw.split(',')
        .filter_map(|pair| {
            let (name, pid) = pair.split_once('=')?;
            Some((name.to_owned(), pid.parse().ok()?))
        })
        .collect()
}

/// Reads a value at a JSON pointer as f64.
pub fn num(v: &Value, pointer: &str) -> Option<f64> {
    v.pointer(pointer).and_then(Value::as_f64)
}
