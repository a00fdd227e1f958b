//! The stock and order invariants, checked against the databases themselves.
//!
//! For every product: `stock >= 0` and `initial_stock + adjustments = stock + held`, where `held`
//! is what live reservations hold; with order-service's database also: every confirmed order is
//! backed by a live reservation of the same lines, every live reservation by a confirmed order,
//! no order is left pending, and at most one idempotency record exists per (user, key).
//! Products and reservations are read in one snapshot, so the check may run while reservations
//! are still being made.

use std::collections::{BTreeMap, HashMap};

use bson::{Document, doc};
use futures::TryStreamExt;
use mongodb::Database;
use mongodb::error::TRANSIENT_TRANSACTION_ERROR;
use mongodb::options::ReadConcern;

/// What was checked and what is broken.
#[derive(Debug, Default)]
pub struct Report {
    /// Products checked.
    pub products: usize,
    /// Reservations read.
    pub reservations: usize,
    /// Orders read (when an order database was given).
    pub orders: usize,
    /// One line per broken invariant.
    pub violations: Vec<String>,
}

impl Report {
    /// Whether every invariant holds.
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "checked {} products, {} reservations, {} orders: {} violations",
            self.products,
            self.reservations,
            self.orders,
            self.violations.len()
        )?;
        for v in &self.violations {
            writeln!(f, "  - {v}")?;
        }
        Ok(())
    }
}

fn int(doc: &Document, key: &str) -> i64 {
    match doc.get(key) {
        Some(bson::Bson::Int64(n)) => *n,
        Some(bson::Bson::Int32(n)) => i64::from(*n),
        Some(bson::Bson::Double(n)) => *n as i64,
        _ => 0,
    }
}

fn text(doc: &Document, key: &str) -> String {
    match doc.get(key) {
        Some(bson::Bson::String(s)) => s.clone(),
        Some(bson::Bson::ObjectId(id)) => id.to_hex(),
        _ => String::new(),
    }
}

/// Lines of a document's `items` as (product id, quantity), sorted.
fn lines(doc: &Document) -> Vec<(String, i64)> {
    let mut lines: Vec<(String, i64)> = doc
        .get_array("items")
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.as_document())
                .map(|i| (text(i, "product_id"), int(i, "quantity")))
                .collect()
        })
        .unwrap_or_default();
    lines.sort();
    lines
}

async fn all(db: &Database, collection: &str) -> mongodb::error::Result<Vec<Document>> {
    db.collection::<Document>(collection)
        .find(doc! {})
        .await?
        .try_collect()
        .await
}

/// Products and reservations as of one moment: read in one transaction with snapshot read
/// concern, so that a reservation committing meanwhile (it moves stock from the product to the
/// reservation) is seen either whole or not at all, never as stock counted twice or not at all.
async fn stock_snapshot(db: &Database) -> mongodb::error::Result<(Vec<Document>, Vec<Document>)> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        match snapshot_once(db).await {
            Err(e) if attempts < 5 && e.contains_label(TRANSIENT_TRANSACTION_ERROR) => continue,
            outcome => return outcome,
        }
    }
}

async fn snapshot_once(db: &Database) -> mongodb::error::Result<(Vec<Document>, Vec<Document>)> {
    let mut session = db.client().start_session().await?;
    session
        .start_transaction()
        .read_concern(ReadConcern::snapshot())
        .await?;
    let mut read = async |collection: &str| -> mongodb::error::Result<Vec<Document>> {
        let mut cursor = db
            .collection::<Document>(collection)
            .find(doc! {})
            .session(&mut session)
            .await?;
        cursor.stream(&mut session).try_collect().await
    };
    let products = read("products").await?;
    let reservations = read("reservations").await?;
    session.commit_transaction().await?;
    Ok((products, reservations))
}

/// Checks the invariants of product-service's database and, when given, order-service's.
pub async fn check(
    products_db: &Database,
    orders_db: Option<&Database>,
) -> mongodb::error::Result<Report> {
    let mut report = Report::default();
    let (products, reservations) = stock_snapshot(products_db).await?;
    report.products = products.len();
    report.reservations = reservations.len();

    let live: Vec<&Document> = reservations
        .iter()
        .filter(|r| text(r, "status") == "reserved")
        .collect();
    let mut held: HashMap<String, i64> = HashMap::new();
    for reservation in &live {
        for (product, quantity) in lines(reservation) {
            *held.entry(product).or_default() += quantity;
        }
    }
    for product in &products {
        let id = text(product, "_id");
        let stock = int(product, "stock");
        let expected = int(product, "initial_stock") + int(product, "adjustments");
        let holding = held.get(&id).copied().unwrap_or(0);
        if stock < 0 {
            report
                .violations
                .push(format!("product {id}: stock {stock} is negative"));
        }
        if expected != stock + holding {
            report.violations.push(format!(
                "product {id}: initial + adjustments = {expected}, but stock {stock} + held {holding} = {}",
                stock + holding
            ));
        }
    }

    let Some(orders_db) = orders_db else {
        return Ok(report);
    };
    let orders = all(orders_db, "orders").await?;
    report.orders = orders.len();
    let by_id: HashMap<String, &Document> = orders.iter().map(|o| (text(o, "_id"), o)).collect();
    let live_by_order: HashMap<String, &Document> =
        live.iter().map(|r| (text(r, "_id"), *r)).collect();
    for order in &orders {
        let id = text(order, "_id");
        match text(order, "status").as_str() {
            "confirmed" => match live_by_order.get(&id) {
                None => report
                    .violations
                    .push(format!("order {id}: confirmed without a live reservation")),
                Some(r) if lines(r) != lines(order) => {
                    report.violations.push(format!(
                        "order {id}: its lines differ from its reservation's"
                    ));
                }
                Some(_) => {}
            },
            "pending" => report.violations.push(format!("order {id}: still pending")),
            _ => {}
        }
    }
    for reservation in &live {
        let order_id = text(reservation, "_id");
        match by_id.get(&order_id) {
            Some(order) if text(order, "status") == "confirmed" => {}
            Some(order) => report.violations.push(format!(
                "reservation {order_id}: live, but its order is {}",
                text(order, "status")
            )),
            None => report
                .violations
                .push(format!("reservation {order_id}: live without an order")),
        }
    }
    let keys = all(orders_db, "idempotency_keys").await?;
    let mut per_key: BTreeMap<(String, String), usize> = BTreeMap::new();
    for key in &keys {
        *per_key
            .entry((text(key, "user_id"), text(key, "key")))
            .or_default() += 1;
    }
    for ((user, key), n) in per_key.into_iter().filter(|(_, n)| *n > 1) {
        report.violations.push(format!(
            "user {user}: {n} records for Idempotency-Key {key:?}"
        ));
    }
    Ok(report)
}
