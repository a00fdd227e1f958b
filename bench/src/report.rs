//! Resident memory, machine description, targets and the printed table.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::num;

/// Resident memory in MB of each named process (Linux `/proc`).
pub fn rss(pids: &BTreeMap<String, u32>) -> BTreeMap<String, f64> {
    pids.iter()
        .filter_map(|(name, pid)| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let kb: f64 = status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((name.clone(), (kb / 1024.0 * 10.0).round() / 10.0))
        })
        .collect()
}

/// Cores and CPU model.
pub fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    json!({
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "cpu": model,
        "os": std::env::consts::OS,
    })
}

fn figure<'a>(results: &'a Value, section: &str, name: &str) -> Option<&'a Value> {
    let list = match section {
        "references" => results.pointer("/references/figures"),
        _ => results.get("scenarios"),
    }?;
    list.as_array()?.iter().find(|f| f["name"] == name)
}

fn rps(results: &Value, section: &str, name: &str) -> Option<f64> {
    figure(results, section, name).and_then(|f| f["rps"].as_f64())
}

/// Each target of BENCHMARKS.md with the measured value and whether it is met.
pub fn targets(results: &Value) -> Value {
    let mut out = Vec::new();
    let mut ratio = |name: &str, value: Option<f64>, min: f64| {
        out.push(json!({"target": name, "value": value, "bound": format!(">= {min}"), "met": value.map(|v| v >= min)}));
    };
    let by_id = rps(results, "scenarios", "browse: GET /products/{id}");
    let page = rps(results, "scenarios", "browse: GET /products page");
    let driver = rps(results, "references", "ref-b driver find_one");
    let bare = rps(results, "references", "ref-a bare handler + token check");
    let open = rps(results, "references", "ref-a0 bare handler, no token check");
    let login = rps(results, "scenarios", "login");
    let argon = num(results, "/references/argon2_verifications_per_sec");
    let div = |a: Option<f64>, b: Option<f64>| Some(a? / b?);
    ratio(
        "GET /products/{id} rate / driver find_one rate",
        div(by_id, driver),
        0.8,
    );
    ratio(
        "GET /products page rate / driver find_one rate",
        div(page, driver),
        0.8,
    );
    ratio(
        "GET /products/{id} rate / bare handler rate (cached reads)",
        div(by_id, bare),
        0.5,
    );
    ratio(
        "GET /products page rate / bare handler rate (cached reads)",
        div(page, bare),
        0.5,
    );
    // Where both were measured in alternating windows: the median of the windows' ratios (each
    // window against the one next to it), which a window disturbed by something else on the
    // machine does not move.
    let rates = |value: &Value| {
        value
            .as_array()
            .map(|w| w.iter().filter_map(Value::as_f64).collect::<Vec<_>>())
    };
    let windows =
        |section, name| figure(results, section, name).and_then(|f| rates(&f["window_rps"]));
    let bare_windows = median_ratio(
        windows("references", "ref-a bare handler + token check"),
        windows("references", "ref-a0 bare handler, no token check"),
    );
    ratio(
        "bare handler with token check / without (median of windows)",
        bare_windows.or(div(bare, open)),
        0.95,
    );
    let login_windows = median_ratio(
        windows("scenarios", "login"),
        results
            .pointer("/references/argon2_window_rates")
            .and_then(rates),
    );
    ratio(
        "POST /token rate / argon2id rate (median of windows)",
        login_windows.or(div(login, argon)),
        0.8,
    );
    let p99 = |name| figure(results, "scenarios", name).and_then(|f| f["p99_ms"].as_f64());
    let flood = div(p99("browse-during-login-flood"), p99("browse"));
    out.push(json!({"target": "browse p99 during login flood / unloaded browse p99", "value": flood, "bound": "<= 3", "met": flood.map(|v| v <= 3.0)}));
    for (endpoint, max) in [
        ("GET /products/{id}", 1.0),
        ("GET /products", 1.0),
        ("POST /products", 1.0),
        ("POST /token", 3.0),
        ("POST /orders", 6.0),
    ] {
        let value = results
            .pointer("/round_trips")
            .and_then(|r| r.get(endpoint))
            .and_then(Value::as_f64);
        out.push(json!({"target": format!("MongoDB round trips, {endpoint}"), "value": value, "bound": format!("<= {max}"), "met": value.map(|v| v <= max)}));
    }
    for (when, max) in [("idle", 20.0), ("end", 64.0)] {
        if let Some(map) = results
            .pointer(&format!("/rss_mb/{when}"))
            .and_then(Value::as_object)
        {
            // The targets are the services'; the database's figure is for reference.
            for (service, mb) in map.iter().filter(|(name, _)| *name != "database") {
                let mb = mb.as_f64();
                out.push(json!({"target": format!("resident memory {when}, {service} (MB)"), "value": mb, "bound": format!("<= {max}"), "met": mb.map(|v| v <= max)}));
            }
        }
    }
    Value::Array(out)
}

/// Prints the tables: the report is this program's output.
#[expect(clippy::print_stdout, reason = "the table is the benchmark's output")]
pub fn print(results: &Value) {
    let mut lines = vec![
        format!(
            "| {:<40} | {:>9} | {:>8} | {:>8} | {:>8} | {:>8} | {:<16} |",
            "scenario", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors"
        ),
        format!(
            "|{:-<42}|{:->11}|{:->10}|{:->10}|{:->10}|{:->10}|{:-<18}|",
            "", "", "", "", "", "", ""
        ),
    ];
    let rows = results["scenarios"].as_array().into_iter().flatten().chain(
        results
            .pointer("/references/figures")
            .and_then(Value::as_array)
            .into_iter()
            .flatten(),
    );
    for f in rows {
        let errors: Vec<String> = f["errors"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| format!("{k}:{v}")).collect())
            .unwrap_or_default();
        lines.push(format!(
            "| {:<40} | {:>9.0} | {:>8.2} | {:>8.2} | {:>8.2} | {:>8.2} | {:<16} |",
            f["name"].as_str().unwrap_or_default(),
            f["rps"].as_f64().unwrap_or_default(),
            f["p50_ms"].as_f64().unwrap_or_default(),
            f["p90_ms"].as_f64().unwrap_or_default(),
            f["p99_ms"].as_f64().unwrap_or_default(),
            f["max_ms"].as_f64().unwrap_or_default(),
            if errors.is_empty() {
                "-".to_owned()
            } else {
                errors.join(" ")
            },
        ));
    }
    lines.push(String::new());
    lines.push(format!(
        "| {:<40} | {:>11} | {:>9} | {:>11} | {:>13} | {:>9} | {:>10} |",
        "product-service during",
        "cache hits",
        "misses/s",
        "refreshes/s",
        "DB commands/s",
        "CPU used",
        "CPU wait"
    ));
    lines.push(format!(
        "|{:-<42}|{:->13}|{:->11}|{:->13}|{:->15}|{:->11}|{:->12}|",
        "", "", "", "", "", "", ""
    ));
    for f in results["scenarios"].as_array().into_iter().flatten() {
        let Some(activity) = f.get("product_service") else {
            continue;
        };
        let rate = |key: &str| activity[key].as_f64().unwrap_or_default();
        lines.push(format!(
            "| {:<40} | {:>11} | {:>9.0} | {:>11.0} | {:>13.0} | {:>9.2} | {:>10.2} |",
            f["name"].as_str().unwrap_or_default(),
            activity["cache_hit_ratio"]
                .as_f64()
                .map_or("-".to_owned(), |r| format!("{:.1} %", r * 100.0)),
            rate("cache_misses_per_sec"),
            rate("cache_refreshes_per_sec"),
            rate("db_commands_per_sec"),
            rate("cpu_cores"),
            rate("run_queue_wait"),
        ));
    }
    lines.push(String::new());
    let columns: Vec<String> = results["scenarios"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| {
            f.pointer("/product_service/cpu_cores_by_process")?
                .as_object()
        })
        .flat_map(|m| m.keys().cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut header = format!("| {:<40} |", "CPU (cores) during");
    let mut rule = format!("|{:-<42}|", "");
    for c in &columns {
        header.push_str(&format!(" {:>w$} |", c, w = c.len().max(6)));
        rule.push_str(&format!("{:->w$}|", "", w = c.len().max(6) + 2));
    }
    lines.push(header);
    lines.push(rule);
    for f in results["scenarios"].as_array().into_iter().flatten() {
        let Some(cpu) = f.pointer("/product_service/cpu_cores_by_process") else {
            continue;
        };
        let mut line = format!("| {:<40} |", f["name"].as_str().unwrap_or_default());
        for c in &columns {
            line.push_str(&format!(
                " {:>w$.2} |",
                cpu[c].as_f64().unwrap_or_default(),
                w = c.len().max(6)
            ));
        }
        lines.push(line);
    }
    for f in results["scenarios"].as_array().into_iter().flatten() {
        if let Some(rate) = f["flood_logins_per_sec"].as_f64() {
            lines.push(format!(
                "logins/s of the flood during {}: {rate:.1}",
                f["name"].as_str().unwrap_or_default()
            ));
        }
    }
    lines.push(String::new());
    lines.push(format!(
        "argon2id verifications/s (reference c): {:.1}",
        num(results, "/references/argon2_verifications_per_sec").unwrap_or_default()
    ));
    lines.push(String::new());
    lines.push(format!(
        "| {:<62} | {:>10} | {:>8} | {:<4} |",
        "target", "value", "bound", "met"
    ));
    lines.push(format!("|{:-<64}|{:->12}|{:->10}|{:-<6}|", "", "", "", ""));
    for t in results["targets"].as_array().into_iter().flatten() {
        lines.push(format!(
            "| {:<62} | {:>10} | {:>8} | {:<4} |",
            t["target"].as_str().unwrap_or_default(),
            t["value"]
                .as_f64()
                .map_or("n/a".to_owned(), |v| format!("{v:.2}")),
            t["bound"].as_str().unwrap_or_default(),
            match t["met"].as_bool() {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "n/a",
            },
        ));
    }
    for line in lines {
        println!("{line}");
    }
}

/// The median of `a[i] / b[i]`, when both have the same, non-zero number of windows.
fn median_ratio(a: Option<Vec<f64>>, b: Option<Vec<f64>>) -> Option<f64> {
    let (a, b) = (a?, b?);
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let mut ratios: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x / y).collect();
    ratios.sort_by(f64::total_cmp);
    let mid = ratios.len() / 2;
    Some(if ratios.len().is_multiple_of(2) {
        (ratios[mid - 1] + ratios[mid]) / 2.0
    } else {
        ratios[mid]
    })
}
