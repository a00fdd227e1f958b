//! The seeded shop and the request of each scenario.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use rand::Rng;
use rand::seq::SliceRandom;
use serde_json::{Value, json};

use crate::Args;
use crate::load::{Op, ProductActivity};

const PASSWORD: &str = "benchmark password";

/// Everything the scenarios need: URLs, seeded users and their tokens, product ids.
pub struct Shop {
    http: reqwest::Client,
    auth: String,
    product: String,
    order: String,
    users: Vec<String>,
    tokens: Vec<String>,
    products: Vec<String>,
    /// The processes whose CPU use each scenario reports, by name: the services (product-service
    /// also for its run-queue wait), the database when its process is known, and this load
    /// generator.
    processes: BTreeMap<String, u32>,
}

fn status(r: Result<reqwest::Response, reqwest::Error>) -> u16 {
    r.map_or(0, |r| r.status().as_u16())
}

impl Shop {
    /// Registers users, logs them in and creates products with ample stock.
    pub async fn seed(args: &Args) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .timeout(Duration::from_secs(30))
            .build()?;
        let run = uuid_like();
        let users: Vec<String> = (0..args.users).map(|i| format!("bench{run}u{i}")).collect();
        let mut tokens = Vec::new();
        for user in &users {
            let r = http
                .post(format!("{}/register", args.auth_url))
                .json(&json!({"username": user, "password": PASSWORD}))
                .send()
                .await?;
            anyhow::ensure!(r.status().is_success(), "register: {}", r.status());
            let body: Value = http
                .post(format!("{}/token", args.auth_url))
                .form(&[
                    ("grant_type", "password"),
                    ("username", user),
                    ("password", PASSWORD),
                ])
                .send()
                .await?
                .json()
                .await?;
            tokens.push(body["access_token"].as_str().context("token")?.to_owned());
        }
        let creates = (0..args.products).map(|i| {
            let (http, url, token) = (&http, &args.product_url, &tokens[i % tokens.len()]);
            async move {
                let price = format!("{}.{:02}", 1 + i % 500, i % 100);
                let body: Value = http
                    .post(format!("{url}/products"))
                    .bearer_auth(token)
                    .json(&json!({"name": format!("Product {i:04}"), "price": price, "stock": 1_000_000_000}))
                    .send()
                    .await?
                    .json()
                    .await?;
                Ok::<_, anyhow::Error>(body["id"].as_str().context("product id")?.to_owned())
            }
        });
        let products: Vec<String> = futures::stream::iter(creates)
            .buffer_unordered(8)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            http,
            auth: args.auth_url.clone(),
            product: args.product_url.clone(),
            order: args.order_url.clone(),
            users,
            tokens,
            products,
            processes: {
                let mut processes = crate::parse_pids(&args.pids);
                processes.insert("load generator".into(), std::process::id());
                processes
            },
        })
    }

    fn token(&self, worker: usize) -> String {
        self.tokens[worker % self.tokens.len()].clone()
    }

    fn random_product(&self) -> String {
        self.products[rand::thread_rng().gen_range(0..self.products.len())].clone()
    }

    /// (a) GET on the bare handler.
    pub fn bare_op(self: &Arc<Self>, addr: SocketAddr) -> Op {
        let shop = self.clone();
        Arc::new(move |worker, _| {
            let request = shop
                .http
                .get(format!("http://{addr}/bare"))
                .bearer_auth(shop.token(worker));
            Box::pin(async move { status(request.send().await) })
        })
    }

    /// (a0) GET on the bare handler without the token check. The request carries the same
    /// token, unchecked, so that only the check differs, not the bytes the client sends.
    pub fn bare_open_op(self: &Arc<Self>, addr: SocketAddr) -> Op {
        let shop = self.clone();
        Arc::new(move |worker, _| {
            let request = shop
                .http
                .get(format!("http://{addr}/bare-open"))
                .bearer_auth(shop.token(worker));
            Box::pin(async move { status(request.send().await) })
        })
    }

    /// (b) The driver's `find_one` by id on the products collection, directly.
    pub async fn driver_op(self: &Arc<Self>, args: &Args) -> anyhow::Result<Op> {
        let client = mongodb::Client::with_uri_str(&args.mongodb_uri).await?;
        let collection: mongodb::Collection<bson::Document> =
            client.database(&args.product_db).collection("products");
        let ids: Vec<bson::oid::ObjectId> = self
            .products
            .iter()
            .filter_map(|id| bson::oid::ObjectId::parse_str(id).ok())
            .collect();
        let ids = Arc::new(ids);
        Ok(Arc::new(move |_, _| {
            let (collection, ids) = (collection.clone(), ids.clone());
            Box::pin(async move {
                let id = ids[rand::thread_rng().gen_range(0..ids.len())];
                match collection
                    .find_one(bson::doc! {"_id": id, "deleted": false})
                    .await
                {
                    Ok(Some(_)) => 200,
                    Ok(None) => 404,
                    Err(_) => 0,
                }
            })
        }))
    }

    /// GET /products/{id} of a random product.
    pub fn product_op(self: &Arc<Self>) -> Op {
        let shop = self.clone();
        Arc::new(move |worker, _| {
            let request = shop
                .http
                .get(format!(
                    "{}/products/{}",
                    shop.product,
                    shop.random_product()
                ))
                .bearer_auth(shop.token(worker));
            Box::pin(async move { status(request.send().await) })
        })
    }

    /// GET /products, first page of a random sort order.
    pub fn list_op(self: &Arc<Self>) -> Op {
        let shop = self.clone();
        Arc::new(move |worker, _| {
            let sort = ["newest", "price_asc", "price_desc", "name"]
                .choose(&mut rand::thread_rng())
                .copied()
                .unwrap_or("newest");
            let request = shop
                .http
                .get(format!("{}/products?limit=20&sort={sort}", shop.product))
                .bearer_auth(shop.token(worker));
            Box::pin(async move { status(request.send().await) })
        })
    }

    /// Half product reads, half pages.
    pub fn browse_op(self: &Arc<Self>) -> Op {
        let (one, page) = (self.product_op(), self.list_op());
        Arc::new(move |worker, seq| {
            if seq % 2 == 0 {
                one(worker, seq)
            } else {
                page(worker, seq)
            }
        })
    }

    /// POST /orders of 1-3 random products, one unit each.
    pub fn order_op(self: &Arc<Self>) -> Op {
        let shop = self.clone();
        Arc::new(move |worker, _| {
            let lines = rand::thread_rng().gen_range(1..=3);
            let mut ids: Vec<String> = (0..lines).map(|_| shop.random_product()).collect();
            ids.sort();
            ids.dedup();
            let items: Vec<Value> = ids
                .iter()
                .map(|id| json!({"product_id": id, "quantity": 1}))
                .collect();
            let request = shop
                .http
                .post(format!("{}/orders", shop.order))
                .bearer_auth(shop.token(worker))
                .json(&json!({"items": items}));
            Box::pin(async move { status(request.send().await) })
        })
    }

    /// POST /token with a seeded user's password.
    pub fn login_op(self: &Arc<Self>) -> Op {
        let shop = self.clone();
        Arc::new(move |worker, _| {
            let user = shop.users[worker % shop.users.len()].clone();
            let request = shop.http.post(format!("{}/token", shop.auth)).form(&[
                ("grant_type", "password"),
                ("username", user.as_str()),
                ("password", PASSWORD),
            ]);
            Box::pin(async move { status(request.send().await) })
        })
    }

    /// 90% browse, 8% order, 2% login.
    pub fn mixed_op(self: &Arc<Self>) -> Op {
        let (browse, order, login) = (self.browse_op(), self.order_op(), self.login_op());
        Arc::new(
            move |worker, seq| match rand::thread_rng().gen_range(0..100) {
                0..90 => browse(worker, seq),
                90..98 => order(worker, seq),
                _ => login(worker, seq),
            },
        )
    }

    /// Starts `concurrency` workers logging in as fast as they can until stopped.
    pub fn start_login_flood(self: &Arc<Self>, concurrency: usize) -> Flood {
        let stop = Arc::new(AtomicBool::new(false));
        let signed_in = Arc::new(AtomicU64::new(0));
        let login = self.login_op();
        let handles = (0..concurrency)
            .map(|worker| {
                let (stop, login, signed_in) = (stop.clone(), login.clone(), signed_in.clone());
                tokio::spawn(async move {
                    let mut seq = 0;
                    while !stop.load(Ordering::Relaxed) {
                        seq += 1;
                        if login(worker, seq).await == 200 {
                            signed_in.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        Flood {
            stop,
            handles,
            signed_in,
            started: Instant::now(),
        }
    }

    /// MongoDB commands per request of each endpoint, from the services' command counters.
    pub async fn round_trips(&self) -> anyhow::Result<BTreeMap<String, f64>> {
        const N: usize = 40;
        let mut out = BTreeMap::new();
        let token = self.token(0);
        let id = self.products[0].clone();
        type MakeRequest<'a> = Box<dyn Fn(usize) -> reqwest::RequestBuilder + 'a>;
        let cases: Vec<(&str, MakeRequest<'_>)> = vec![
            (
                "GET /products/{id}",
                Box::new(|_| {
                    self.http
                        .get(format!("{}/products/{id}", self.product))
                        .bearer_auth(&token)
                }),
            ),
            (
                "GET /products",
                Box::new(|_| {
                    self.http
                        .get(format!("{}/products?limit=20", self.product))
                        .bearer_auth(&token)
                }),
            ),
            (
                "POST /products",
                Box::new(|i| {
                    self.http.post(format!("{}/products", self.product)).bearer_auth(&token)
                    .json(&json!({"name": format!("Round trip {i}"), "price": "1.00", "stock": 1}))
                }),
            ),
            (
                "POST /token",
                Box::new(|_| {
                    self.http.post(format!("{}/token", self.auth)).form(&[
                        ("grant_type", "password"),
                        ("username", self.users[0].as_str()),
                        ("password", PASSWORD),
                    ])
                }),
            ),
            (
                "POST /orders",
                Box::new(|_| {
                    self.http
                        .post(format!("{}/orders", self.order))
                        .bearer_auth(&token)
                        .json(&json!({"items": [{"product_id": id, "quantity": 1}]}))
                }),
            ),
        ];
        for (name, request) in cases {
            let before = self.commands().await;
            let mut ok = 0;
            for i in 0..N {
                if request(i)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
                {
                    ok += 1;
                }
            }
            let after = self.commands().await;
            if ok == N {
                out.insert(name.to_owned(), (after - before) as f64 / N as f64);
            } else {
                eprintln!("  {name}: only {ok}/{N} succeeded; round trips not counted");
            }
        }
        Ok(out)
    }

    /// product-service's cumulative cache and database counters.
    pub async fn product_counters(&self) -> ProductCounters {
        let text = match self
            .http
            .get(format!("{}/metrics", self.product))
            .send()
            .await
        {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let sum = |name: &str, label: &str| metric_sum(&text, name, label);
        let (mut cpu_ns, mut wait_ns) = (0.0, 0.0);
        let mut cpu_by_process = BTreeMap::new();
        for (name, &pid) in &self.processes {
            let threads = schedstat(pid);
            let run = |keep: &dyn Fn(&str) -> bool| -> f64 {
                threads.iter().filter(|t| keep(&t.0)).map(|t| t.1).sum()
            };
            match name.as_str() {
                // Password hashing apart from the rest of auth-service.
                "auth" => {
                    let hashing = |comm: &str| comm.starts_with("argon2");
                    cpu_by_process.insert("auth: hashing".into(), run(&hashing));
                    cpu_by_process.insert("auth: the rest".into(), run(&|c| !hashing(c)));
                }
                "product" => {
                    cpu_ns = run(&|_| true);
                    wait_ns = threads.iter().map(|t| t.2).sum();
                    cpu_by_process.insert(name.clone(), cpu_ns);
                }
                _ => {
                    cpu_by_process.insert(name.clone(), run(&|_| true));
                }
            }
        }
        ProductCounters {
            at: Instant::now(),
            cpu_ns,
            wait_ns,
            cpu_by_process,
            hits: sum("product_cache_lookups_total{", r#"result="hit""#),
            misses: sum("product_cache_lookups_total{", r#"result="miss""#),
            refreshes: sum("product_cache_refreshes_total{", ""),
            commands: sum("mongodb_commands_total{", ""),
        }
    }

    /// Sum of `mongodb_commands_total` sent while serving requests, over the three services.
    async fn commands(&self) -> u64 {
        let mut total = 0;
        for base in [&self.auth, &self.product, &self.order] {
            let Ok(response) = self.http.get(format!("{base}/metrics")).send().await else {
                continue;
            };
            let text = response.text().await.unwrap_or_default();
            total += metric_sum(&text, "mongodb_commands_total{", r#"origin="request""#) as u64;
        }
        total
    }
}

/// The sum of the Prometheus samples whose line starts with `prefix` (a name and its `{`) and
/// contains `label`.
fn metric_sum(text: &str, prefix: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Each live thread of process `pid`: its name, and the nanoseconds it has run and waited on a
/// run queue for a CPU (Linux `/proc/<pid>/task/*/comm` and `schedstat`).
fn schedstat(pid: u32) -> Vec<(String, f64, f64)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|task| {
            let path = task.ok()?.path();
            let comm = std::fs::read_to_string(path.join("comm")).ok()?;
            let line = std::fs::read_to_string(path.join("schedstat")).ok()?;
            let mut fields = line.split_whitespace().map(|f| f.parse::<f64>().ok());
            Some((comm.trim().to_owned(), fields.next()??, fields.next()??))
        })
        .collect()
}

/// A reading of product-service's counters.
pub struct ProductCounters {
    at: Instant,
    cpu_ns: f64,
    wait_ns: f64,
    /// Nanoseconds of CPU by process (and, for auth-service, hashing and the rest).
    cpu_by_process: BTreeMap<String, f64>,
    hits: f64,
    misses: f64,
    refreshes: f64,
    commands: f64,
}

impl ProductCounters {
    /// What happened between `before` and this reading.
    pub fn since(&self, before: &ProductCounters) -> ProductActivity {
        Self::over([(before, self)])
    }

    /// What happened over several stretches of time, each between two readings.
    pub fn over<'a>(
        stretches: impl IntoIterator<Item = (&'a ProductCounters, &'a ProductCounters)>,
    ) -> ProductActivity {
        let (mut seconds, mut hits, mut misses, mut refreshes, mut commands) =
            (0.0, 0.0, 0.0, 0.0, 0.0);
        let (mut cpu_ns, mut wait_ns) = (0.0, 0.0);
        let mut by_process: BTreeMap<String, f64> = BTreeMap::new();
        for (from, to) in stretches {
            seconds += to.at.duration_since(from.at).as_secs_f64();
            hits += to.hits - from.hits;
            misses += to.misses - from.misses;
            refreshes += to.refreshes - from.refreshes;
            commands += to.commands - from.commands;
            cpu_ns += to.cpu_ns - from.cpu_ns;
            wait_ns += to.wait_ns - from.wait_ns;
            for (name, ns) in &to.cpu_by_process {
                let earlier = from.cpu_by_process.get(name).copied().unwrap_or(*ns);
                *by_process.entry(name.clone()).or_default() += ns - earlier;
            }
        }
        let seconds = seconds.max(1e-9);
        ProductActivity {
            cache_hit_ratio: (hits + misses > 0.0).then(|| hits / (hits + misses)),
            cache_misses_per_sec: misses / seconds,
            cache_refreshes_per_sec: refreshes / seconds,
            db_commands_per_sec: commands / seconds,
            cpu_cores: cpu_ns / 1e9 / seconds,
            run_queue_wait: wait_ns / 1e9 / seconds,
            cpu_cores_by_process: by_process
                .into_iter()
                .map(|(name, ns)| (name, ns / 1e9 / seconds))
                .collect(),
        }
    }
}

/// A running login flood.
pub struct Flood {
    stop: Arc<AtomicBool>,
    handles: Vec<tokio::task::JoinHandle<()>>,
    signed_in: Arc<AtomicU64>,
    started: Instant,
}

impl Flood {
    /// Stops the flood and waits for its workers; returns the successful logins per second.
    pub async fn stop(self) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.handles {
            let _ = h.await;
        }
        self.signed_in.load(Ordering::Relaxed) as f64 / self.started.elapsed().as_secs_f64()
    }
}

fn uuid_like() -> String {
    format!("{:08x}", rand::thread_rng().r#gen::<u32>())
}
