//! The body of `POST /orders`, and the order it asks for once validated.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared::{FieldError, Problem};
use utoipa::ToSchema;

/// Most lines one order may have (product-service reserves at most 50 at once).
pub const MAX_LINES: usize = 50;
/// Longest product id accepted (ids are opaque, but not unbounded).
pub const MAX_PRODUCT_ID_LEN: usize = 64;

/// `POST /orders` request. Prices, names, totals, status and owner are never taken from the
/// client: any field but `items` is refused with 422.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrderRequest {
    /// 1..=50 lines, each product at most once.
    #[schema(min_items = 1, max_items = 50)]
    pub items: Vec<OrderItemRequest>,
}

/// One requested line.
#[derive(Debug, Deserialize, Serialize, ToSchema, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OrderItemRequest {
    /// The product's id.
    #[schema(pattern = "^[!-~]{1,64}$")]
    pub product_id: String,
    /// 1..=1000 (or the configured maximum) units; a JSON integer.
    #[schema(minimum = 1, maximum = 1000)]
    pub quantity: u64,
}

/// A number of units on one line: 1..=the configured maximum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Quantity(u32);

impl Quantity {
    /// Parses a requested quantity.
    pub fn parse(raw: u64, max: u32) -> Result<Self, String> {
        match u32::try_from(raw) {
            Ok(q) if (1..=max).contains(&q) => Ok(Self(q)),
            _ => Err(format!("must be an integer from 1 to {max}")),
        }
    }

    /// The number of units.
    pub fn get(self) -> u32 {
        self.0
    }
}

/// A validated order request: 1..=50 distinct products with valid quantities.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewOrder {
    items: Vec<(String, Quantity)>,
}

impl NewOrder {
    /// Validates a request, naming every invalid field.
    pub fn parse(request: CreateOrderRequest, max_quantity: u32) -> Result<Self, Problem> {
        let mut errors = Vec::new();
        if request.items.is_empty() {
            errors.push(FieldError::new("items", "must hold at least one line"));
        }
        if request.items.len() > MAX_LINES {
            errors.push(FieldError::new(
                "items",
                format!("must hold at most {MAX_LINES} lines"),
            ));
        }
        let mut seen = HashSet::new();
        let mut items = Vec::with_capacity(request.items.len());
        for (i, item) in request.items.into_iter().enumerate() {
            let id_ok = (1..=MAX_PRODUCT_ID_LEN).contains(&item.product_id.len())
                && item.product_id.bytes().all(|b| b.is_ascii_graphic());
            if !id_ok {
                errors.push(FieldError::new(
                    format!("items[{i}].product_id"),
                    format!("must be 1 to {MAX_PRODUCT_ID_LEN} visible ASCII characters"),
                ));
            } else if !seen.insert(item.product_id.clone()) {
                errors.push(FieldError::new(
                    format!("items[{i}].product_id"),
                    "names a product already on another line",
                ));
            }
            match Quantity::parse(item.quantity, max_quantity) {
                Ok(q) => items.push((item.product_id, q)),
                Err(message) => {
                    errors.push(FieldError::new(format!("items[{i}].quantity"), message))
                }
            }
        }
        if errors.is_empty() {
            Ok(Self { items })
        } else {
            Err(Problem::validation(errors))
        }
    }

    /// The lines, in request order.
    pub fn items(&self) -> &[(String, Quantity)] {
        &self.items
    }

    /// A fingerprint of what was asked, to tell a replay from a different request under the same
    /// `Idempotency-Key`. Formatting of the JSON body does not matter; the content does.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        for (product_id, quantity) in &self.items {
            hasher.update(product_id.as_bytes());
            hasher.update([0]);
            hasher.update(quantity.get().to_be_bytes());
        }
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(items: &[(&str, u64)]) -> CreateOrderRequest {
        CreateOrderRequest {
            items: items
                .iter()
                .map(|(p, q)| OrderItemRequest {
                    product_id: (*p).to_owned(),
                    quantity: *q,
                })
                .collect(),
        }
    }

    #[test]
    fn invalid_requests_name_the_field() {
        let long_id = "x".repeat(65);
        type Case<'a> = (Vec<(&'a str, u64)>, &'a str, &'a str);
        let cases: Vec<Case> = vec![
            (vec![], "items", "no lines"),
            (vec![("p1", 0)], "items[0].quantity", "zero"),
            (vec![("p1", 1001)], "items[0].quantity", "over the maximum"),
            (vec![("p1", 1 << 40)], "items[0].quantity", "over u32"),
            (vec![("", 1)], "items[0].product_id", "empty id"),
            (vec![(&long_id, 1)], "items[0].product_id", "long id"),
            (vec![("p1", 1), ("p1", 2)], "items[1].product_id", "twice"),
        ];
        for (items, field, why) in cases {
            let err = NewOrder::parse(request(&items), 1000).expect_err(why);
            assert_eq!(err.status().as_u16(), 422, "{why}");
            assert_eq!(err.errors()[0].field, field, "{why}");
        }
        let many: Vec<(String, u64)> = (0..51).map(|i| (format!("p{i}"), 1)).collect();
        let many: Vec<(&str, u64)> = many.iter().map(|(p, q)| (p.as_str(), *q)).collect();
        assert!(NewOrder::parse(request(&many), 1000).is_err(), "51 lines");
    }

    #[test]
    fn the_fingerprint_depends_on_content_only() {
        let a = NewOrder::parse(request(&[("p1", 2), ("p2", 1)]), 1000).unwrap();
        let b = NewOrder::parse(request(&[("p1", 2), ("p2", 1)]), 1000).unwrap();
        let c = NewOrder::parse(request(&[("p1", 3), ("p2", 1)]), 1000).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
    }
}
