//! Closed-loop load: `concurrency` workers each send one request after another for a fixed time,
//! after a warm-up whose results are dropped. Latency goes into an HDR histogram.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use hdrhistogram::Histogram;
use serde::Serialize;

/// One request of a scenario: returns the HTTP status (0 for a transport error).
pub type Op = Arc<dyn Fn(usize, u64) -> BoxFuture<'static, u16> + Send + Sync>;

/// What one scenario measured.
#[derive(Clone, Debug, Serialize)]
pub struct Figures {
    /// Scenario name.
    pub name: String,
    /// Workers.
    pub concurrency: usize,
    /// Measured seconds.
    pub seconds: f64,
    /// Requests completed in the measured window.
    pub requests: u64,
    /// Requests per second.
    pub rps: f64,
    /// Latency percentiles in milliseconds.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
    /// Responses that were not the expected success, by status (0: transport error).
    pub errors: BTreeMap<u16, u64>,
    /// What product-service's cache and database did meanwhile (scenarios only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_service: Option<ProductActivity>,
    /// The rate of each window, when measured in alternating windows.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub window_rps: Vec<f64>,
    /// Successful logins per second of a login flood running meanwhile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flood_logins_per_sec: Option<f64>,
}

/// product-service's cache lookups and MongoDB commands over a scenario (warm-up included),
/// from its `/metrics`.
#[derive(Clone, Debug, Serialize)]
pub struct ProductActivity {
    /// Share of cache lookups (products and pages) answered from the cache.
    pub cache_hit_ratio: Option<f64>,
    /// Cache misses per second.
    pub cache_misses_per_sec: f64,
    /// Background refreshes started per second.
    pub cache_refreshes_per_sec: f64,
    /// MongoDB commands per second, requests' and background work's together.
    pub db_commands_per_sec: f64,
    /// CPU used by product-service, in cores.
    pub cpu_cores: f64,
    /// product-service threads waiting on a run queue for a CPU, on average: the time its
    /// requests lose to other processes on the same cores.
    pub run_queue_wait: f64,
    /// CPU used by each process of the run (the services, the database when known, the load
    /// generator), in cores: where the machine's cores went.
    pub cpu_cores_by_process: BTreeMap<String, f64>,
}

/// What one measured window recorded.
struct Sample {
    histogram: Histogram<u64>,
    errors: BTreeMap<u16, u64>,
    requests: u64,
    seconds: f64,
}

/// Runs `op` on `concurrency` workers: `warmup`, then `duration` measured. `ok` tells success.
pub async fn run(
    name: &str,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    op: Op,
    ok: fn(u16) -> bool,
) -> Figures {
    let sample = measure(name, concurrency, warmup, duration, &op, ok).await;
    figures(name, concurrency, &[sample])
}

/// Measures several ops whose rates are compared with each other in `rounds` alternating
/// windows (each `duration / rounds` after a short warm-up), so that drift in the machine's
/// load during the run weighs on all of them alike. Every other round runs the ops in reverse
/// order (A B, B A, A B, ...), so that a steady drift favours none of them. One [`Figures`]
/// per op, in order.
pub async fn run_interleaved(
    ops: &[(&str, Op)],
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    rounds: u32,
    ok: fn(u16) -> bool,
) -> Vec<Figures> {
    let rounds = rounds.max(1);
    let window = duration / rounds;
    let short_warmup = (warmup / rounds).max(Duration::from_millis(200));
    let mut samples: Vec<Vec<Sample>> = ops.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..ops.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let (name, op) = &ops[i];
            let label = format!("{name} ({}/{rounds})", round + 1);
            samples[i].push(measure(&label, concurrency, short_warmup, window, op, ok).await);
        }
    }
    ops.iter()
        .zip(samples)
        .map(|((name, _), samples)| figures(name, concurrency, &samples))
        .collect()
}

/// Measures `op` against a reference that `reference(window)` measures in this process (a CPU
/// ceiling, say) and returns as a rate: in `rounds` pairs of windows (each `duration / rounds`),
/// the reference first in every other pair (R A, A R, R A, ...) as in [`run_interleaved`].
/// Returns the op's figures (with each window's rate) and the reference's rate in each window.
#[allow(clippy::too_many_arguments)]
pub async fn run_against<R, F>(
    name: &str,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    rounds: u32,
    op: Op,
    ok: fn(u16) -> bool,
    mut reference: R,
) -> (Figures, Vec<f64>)
where
    R: FnMut(Duration) -> F,
    F: std::future::Future<Output = f64>,
{
    let rounds = rounds.max(1);
    let window = duration / rounds;
    let short_warmup = (warmup / rounds).max(Duration::from_millis(200));
    let (mut samples, mut rates) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let label = format!("{name} ({}/{rounds})", round + 1);
        if round % 2 == 1 {
            samples.push(measure(&label, concurrency, short_warmup, window, &op, ok).await);
        }
        rates.push(reference(window).await);
        if round % 2 == 0 {
            samples.push(measure(&label, concurrency, short_warmup, window, &op, ok).await);
        }
    }
    (figures(name, concurrency, &samples), rates)
}

fn figures(name: &str, concurrency: usize, samples: &[Sample]) -> Figures {
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
    let mut errors = BTreeMap::new();
    let (mut requests, mut seconds) = (0, 0.0);
    for sample in samples {
        let _ = histogram.add(&sample.histogram);
        for (status, n) in &sample.errors {
            *errors.entry(*status).or_default() += n;
        }
        requests += sample.requests;
        seconds += sample.seconds;
    }
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    Figures {
        name: name.to_owned(),
        concurrency,
        seconds,
        requests,
        rps: requests as f64 / seconds,
        p50_ms: ms(0.5),
        p90_ms: ms(0.9),
        p99_ms: ms(0.99),
        max_ms: histogram.max() as f64 / 1000.0,
        errors,
        product_service: None,
        window_rps: if samples.len() > 1 {
            samples
                .iter()
                .map(|s| s.requests as f64 / s.seconds)
                .collect()
        } else {
            Vec::new()
        },
        flood_logins_per_sec: None,
    }
}

/// One window: `warmup`, then `duration` measured.
async fn measure(
    name: &str,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    op: &Op,
    ok: fn(u16) -> bool,
) -> Sample {
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let (op, measuring, stop, done) =
            (op.clone(), measuring.clone(), stop.clone(), done.clone());
        workers.push(tokio::spawn(async move {
            let mut histogram =
                Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
            let mut errors: BTreeMap<u16, u64> = BTreeMap::new();
            let mut count = 0u64;
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                seq += 1;
                let started = Instant::now();
                let status = op(worker, seq).await;
                if measuring.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                    let micros = started.elapsed().as_micros().max(1) as u64;
                    let _ = histogram.record(micros.min(60_000_000));
                    count += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                    if !ok(status) {
                        *errors.entry(status).or_default() += 1;
                    }
                }
            }
            (histogram, errors, count)
        }));
    }
    eprint!("  {name}: warming up {}s", warmup.as_secs());
    tokio::time::sleep(warmup).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let mut last = 0;
    while started.elapsed() < duration {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = done.load(Ordering::Relaxed);
        eprint!(
            "\r  {name}: {:>3}s/{}s  {:>8} requests  {:>7.0} req/s   ",
            started.elapsed().as_secs(),
            duration.as_secs(),
            now,
            (now - last) as f64
        );
        last = now;
    }
    stop.store(true, Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    eprintln!();
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
    let mut errors = BTreeMap::new();
    let mut requests = 0;
    for worker in workers {
        if let Ok((h, e, c)) = worker.await {
            let _ = histogram.add(h);
            for (status, n) in e {
                *errors.entry(status).or_default() += n;
            }
            requests += c;
        }
    }
    Sample {
        histogram,
        errors,
        requests,
        seconds,
    }
}
