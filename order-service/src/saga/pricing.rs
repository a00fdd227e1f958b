//! Pricing an order from its reservation.

use crate::domain::Money;
use crate::products::Reservation;
use crate::store::OrderLine;

/// The order's lines priced from the reservation, and their total; `None` if the reservation
/// does not hold exactly the order's lines or a price is unreadable.
pub fn priced_lines(
    items: &[OrderLine],
    reservation: &Reservation,
) -> Option<(Vec<OrderLine>, Money)> {
    if items.len() != reservation.items.len() {
        return None;
    }
    let mut total = Money::default();
    let mut lines = Vec::with_capacity(items.len());
    for item in items {
        let reserved = reservation
            .items
            .iter()
            .find(|r| r.product_id == item.product_id && r.quantity == item.quantity)?;
        let unit = Money::parse(&reserved.unit_price)?;
        let line_total = unit.times(item.quantity)?;
        total = total.plus(line_total)?;
        lines.push(OrderLine {
            product_id: item.product_id.clone(),
            quantity: item.quantity,
            name: Some(reserved.name.clone()),
            unit_price_minor: Some(unit.minor()),
            line_total_minor: Some(line_total.minor()),
        });
    }
    Some((lines, total))
}
