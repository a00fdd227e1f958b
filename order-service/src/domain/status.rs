//! The life cycle of an order.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where an order stands.
///
/// `pending` while its stock is being reserved; `confirmed` once reserved; `cancelled` after the
/// customer cancelled it (its stock is given back); `failed` when the reservation could not be
/// completed (nothing stays reserved).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    /// Recorded, stock not reserved yet.
    Pending,
    /// Stock reserved.
    Confirmed,
    /// Cancelled by the customer; stock released.
    Cancelled,
    /// The reservation failed; nothing is held.
    Failed,
}

impl OrderStatus {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Confirmed => "confirmed",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }
}
