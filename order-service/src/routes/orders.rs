//! `/orders`: placing, listing, reading and cancelling orders, and how an order is shown.

pub mod cancel;
pub mod create;
pub mod read;

use axum::Router;
use axum::routing::{get, post};
use bson::oid::ObjectId;
use serde::Serialize;
use shared::Problem;
use utoipa::ToSchema;

use crate::domain::{Money, OrderStatus};
use crate::state::AppState;
use crate::store::Order;

/// The `/orders` routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orders", post(create::create_order).get(read::list_orders))
        .route("/orders/{id}", get(read::get_order))
        .route("/orders/{id}/cancel", post(cancel::cancel_order))
}

/// Parses an order id from a path; a malformed one is a 404, like a missing order.
pub fn parse_id(raw: &str) -> Result<ObjectId, Problem> {
    ObjectId::parse_str(raw).map_err(|_| Problem::not_found("no such order"))
}

/// An order as shown to clients.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    /// Id.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// `pending`, `confirmed`, `cancelled` or `failed`.
    pub status: OrderStatus,
    /// Lines, in the order they were requested.
    pub items: Vec<OrderItemView>,
    /// Sum of the line totals, e.g. `"25.00"`; `null` while the order is not priced (an order
    /// whose reservation failed is never priced).
    pub total: Option<String>,
    /// Currency of the amounts.
    pub currency: String,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// RFC 3339 UTC.
    pub updated_at: String,
}

/// One line of an order: names and prices as product-service reserved them.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderItemView {
    /// The product.
    pub product_id: String,
    /// Its name when reserved (`null` if never priced).
    pub name: Option<String>,
    /// Unit price when reserved, e.g. `"12.50"` (`null` if never priced).
    pub unit_price: Option<String>,
    /// Units.
    pub quantity: u32,
    /// `unit_price * quantity` (`null` if never priced).
    pub line_total: Option<String>,
}

/// A page of orders.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderPage {
    /// Newest first.
    pub items: Vec<OrderView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl From<&Order> for OrderView {
    fn from(order: &Order) -> Self {
        let money = |minor: Option<i64>| minor.map(|m| Money::from_minor(m).to_string());
        let time = |t: bson::DateTime| {
            t.to_chrono()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        };
        Self {
            id: order.id.to_hex(),
            user_id: order.user_id.clone(),
            status: order.status,
            items: order
                .items
                .iter()
                .map(|line| OrderItemView {
                    product_id: line.product_id.clone(),
                    name: line.name.clone(),
                    unit_price: money(line.unit_price_minor),
                    quantity: line.quantity,
                    line_total: money(line.line_total_minor),
                })
                .collect(),
            total: money(order.total_minor),
            currency: order.currency.clone(),
            created_at: time(order.created_at),
            updated_at: time(order.updated_at),
        }
    }
}
