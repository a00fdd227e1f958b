//! A reservation request, checked: 1..=50 lines, quantities 1..=1000, no product twice.

use std::collections::HashSet;

use bson::oid::ObjectId;
use serde::Deserialize;
use shared::{FieldError, Problem};
use utoipa::ToSchema;

/// Largest quantity of one line.
pub const MAX_QUANTITY: i64 = 1000;
/// Most lines in one reservation.
pub const MAX_LINES: usize = 50;

/// `POST /reservations` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReservationBody {
    /// The order this reservation belongs to; the idempotency handle.
    #[schema(pattern = "^[!-~]{1,128}$")]
    pub order_id: String,
    /// The lines, no product twice.
    #[schema(min_items = 1, max_items = 50)]
    pub items: Vec<LineBody>,
}

/// One requested line.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineBody {
    /// Product id.
    pub product_id: String,
    /// 1..=1000.
    #[schema(minimum = 1, maximum = 1000)]
    pub quantity: i64,
}

/// A checked line. Lines are kept sorted by product id, so equal requests compare equal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReservationLine {
    /// Product id as given.
    pub product_id: String,
    /// Parsed id; `None` when the id is not an ObjectId (such a product cannot exist).
    pub oid: Option<ObjectId>,
    /// Quantity.
    pub quantity: i64,
}

/// A checked reservation request.
#[derive(Clone, Debug)]
pub struct ReservationRequest {
    /// Order id.
    pub order_id: String,
    /// Lines, sorted by product id.
    pub lines: Vec<ReservationLine>,
}

impl ReservationRequest {
    /// Checks a request body.
    pub fn parse(body: ReservationBody) -> Result<Self, Problem> {
        let mut errors = Vec::new();
        let order_id_ok = (1..=128).contains(&body.order_id.len())
            && body.order_id.bytes().all(|b| b.is_ascii_graphic());
        if !order_id_ok {
            errors.push(FieldError::new(
                "order_id",
                "must be 1 to 128 visible ASCII characters",
            ));
        }
        if body.items.is_empty() || body.items.len() > MAX_LINES {
            errors.push(FieldError::new("items", "must hold 1 to 50 lines"));
        }
        let mut seen = HashSet::new();
        for (i, line) in body.items.iter().enumerate() {
            if !(1..=MAX_QUANTITY).contains(&line.quantity) {
                errors.push(FieldError::new(
                    format!("items[{i}].quantity"),
                    "must be between 1 and 1000",
                ));
            }
            if !seen.insert(line.product_id.as_str()) {
                errors.push(FieldError::new(
                    format!("items[{i}].product_id"),
                    "names a product already in the list",
                ));
            }
        }
        if !errors.is_empty() {
            return Err(Problem::validation(errors));
        }
        let mut lines: Vec<ReservationLine> = body
            .items
            .into_iter()
            .map(|l| ReservationLine {
                oid: ObjectId::parse_str(&l.product_id).ok(),
                product_id: l.product_id,
                quantity: l.quantity,
            })
            .collect();
        lines.sort_by(|a, b| a.product_id.cmp(&b.product_id));
        Ok(Self {
            order_id: body.order_id,
            lines,
        })
    }
}
