//! Wire types of product-service's reservation API (`API.md` section 3).

use serde::{Deserialize, Serialize};

/// `POST /reservations` body.
#[derive(Debug, Serialize)]
pub struct ReserveRequest<'a> {
    /// The order id: the idempotency handle of the reservation.
    pub order_id: &'a str,
    /// The lines.
    pub items: Vec<ReserveItem<'a>>,
}

/// One line of a reservation request.
#[derive(Debug, Serialize)]
pub struct ReserveItem<'a> {
    /// The product.
    pub product_id: &'a str,
    /// Units.
    pub quantity: u32,
}

/// A reservation as product-service answers it. Unknown fields are ignored: product-service may
/// add some without breaking this client.
#[derive(Clone, Debug, Deserialize)]
pub struct Reservation {
    /// The order id.
    pub order_id: String,
    /// `reserved` or `released`.
    pub status: String,
    /// The lines with the names and prices at reservation time.
    #[serde(default)]
    pub items: Vec<ReservedLine>,
    /// Sum of the line totals, decimal string.
    #[serde(default)]
    pub total: Option<String>,
    /// Currency of the amounts.
    #[serde(default)]
    pub currency: Option<String>,
}

impl Reservation {
    /// Whether the stock is held.
    pub fn is_reserved(&self) -> bool {
        self.status == "reserved"
    }
}

/// One reserved line.
#[derive(Clone, Debug, Deserialize)]
pub struct ReservedLine {
    /// The product.
    pub product_id: String,
    /// Its name at reservation time.
    pub name: String,
    /// Its unit price at reservation time, decimal string.
    pub unit_price: String,
    /// Units reserved.
    pub quantity: u32,
}

/// A service token from auth-service's token endpoint.
#[derive(Debug, Deserialize)]
pub struct TokenResponse {
    /// The bearer token.
    pub access_token: String,
    /// Lifetime in seconds.
    pub expires_in: u64,
}
