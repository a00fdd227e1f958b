//! Response bodies, with money as decimal strings.

use serde::{Deserialize, Serialize};
use shared::money::format_minor;
use utoipa::ToSchema;

use crate::store::{ProductDoc, ReservationDoc};

fn rfc3339(t: bson::DateTime) -> String {
    t.to_chrono()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A product.
#[derive(Serialize, ToSchema)]
pub struct ProductView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Price, e.g. `"12.50"`.
    pub price: String,
    /// Currency code.
    pub currency: String,
    /// Units available.
    pub stock: i64,
    /// Optional stock-keeping unit.
    pub sku: Option<String>,
    /// Owner's user id.
    pub owner_id: String,
    /// Incremented by every write; the ETag is `"<version>"`.
    pub version: i64,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// RFC 3339 UTC.
    pub updated_at: String,
}

impl ProductView {
    /// The view of a stored product.
    pub fn new(p: &ProductDoc, currency: &str) -> Self {
        Self {
            id: p.id.to_hex(),
            name: p.name.clone(),
            description: p.description.clone(),
            price: format_minor(p.price_minor),
            currency: currency.to_owned(),
            stock: p.stock,
            sku: p.sku.clone(),
            owner_id: p.owner_id.clone(),
            version: p.version,
            created_at: rfc3339(p.created_at),
            updated_at: rfc3339(p.updated_at),
        }
    }
}

/// A page of products.
#[derive(Serialize, ToSchema)]
pub struct ProductPage {
    /// Products of this page.
    pub items: Vec<ProductView>,
    /// Cursor of the next page, null on the last.
    pub next_cursor: Option<String>,
}

/// A new product. Unknown fields (`owner_id`, `version`...) are refused with 422.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductCreate {
    /// 1..=200 characters, not only spaces.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: String,
    /// At most 2000 characters.
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// A JSON string or number with at most two fraction digits, 0 < price <= 1000000.00.
    #[schema(
        example = "12.50",
        pattern = "^([1-9][0-9]{0,5}(\\.[0-9]{1,2})?|1000000(\\.0{1,2})?|0\\.([1-9][0-9]?|0[1-9]))$"
    )]
    pub price: String,
    /// 0..=1000000000, default 0.
    #[schema(minimum = 0, maximum = 1_000_000_000, nullable = false)]
    pub stock: Option<i64>,
    /// Unique when present.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub sku: Option<String>,
}

/// A JSON merge patch (RFC 7396) of a product: members present are changed; null removes the
/// description or the sku. Unknown fields are refused with 422.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductPatchBody {
    /// 1..=200 characters, not only spaces.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S", nullable = false)]
    pub name: Option<String>,
    /// At most 2000 characters; null clears it.
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// A JSON string or number with at most two fraction digits, 0 < price <= 1000000.00.
    #[schema(
        example = "12.50",
        nullable = false,
        pattern = "^([1-9][0-9]{0,5}(\\.[0-9]{1,2})?|1000000(\\.0{1,2})?|0\\.([1-9][0-9]?|0[1-9]))$"
    )]
    pub price: Option<String>,
    /// New absolute stock level, 0..=1000000000.
    #[schema(minimum = 0, maximum = 1_000_000_000, nullable = false)]
    pub stock: Option<i64>,
    /// Unique when present; null removes it.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub sku: Option<String>,
}

/// One reserved line.
#[derive(Serialize, ToSchema)]
pub struct ReservedLineView {
    /// Product id.
    pub product_id: String,
    /// Name at reservation time.
    pub name: String,
    /// Unit price at reservation time.
    pub unit_price: String,
    /// Quantity.
    pub quantity: i64,
    /// unit_price x quantity.
    pub line_total: String,
}

/// A reservation.
#[derive(Serialize, ToSchema)]
pub struct ReservationView {
    /// Order id.
    pub order_id: String,
    /// `reserved` or `released`.
    pub status: String,
    /// Lines.
    pub items: Vec<ReservedLineView>,
    /// Sum of the lines.
    pub total: String,
    /// Currency code.
    pub currency: String,
    /// RFC 3339 UTC.
    pub created_at: String,
}

impl From<&ReservationDoc> for ReservationView {
    fn from(r: &ReservationDoc) -> Self {
        Self {
            order_id: r.order_id.clone(),
            status: r.status.clone(),
            items: r
                .items
                .iter()
                .map(|i| ReservedLineView {
                    product_id: i.product_id.clone(),
                    name: i.name.clone(),
                    unit_price: format_minor(i.unit_price_minor),
                    quantity: i.quantity,
                    line_total: format_minor(i.unit_price_minor * i.quantity),
                })
                .collect(),
            total: format_minor(r.total_minor),
            currency: r.currency.clone(),
            created_at: rfc3339(r.created_at),
        }
    }
}
