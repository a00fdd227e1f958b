//! Money as integer minor units (cents), never a float.

use std::fmt;

/// Largest amount handled: far above any order total the contract allows (50 lines of 1000 units
/// at 1000000.00), far below overflow.
const MAX_MINOR: i64 = 1_000_000_000_000_000;

/// An amount in minor units of the deployment's one currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Money(i64);

impl Money {
    /// The amount of `minor` minor units.
    pub fn from_minor(minor: i64) -> Self {
        Self(minor)
    }

    /// The amount in minor units.
    pub fn minor(self) -> i64 {
        self.0
    }

    /// Parses a non-negative decimal amount with at most two fraction digits (`"12.50"`, `"3"`),
    /// as product-service answers prices; never through a float.
    pub fn parse(text: &str) -> Option<Self> {
        match shared::money::parse_minor(text, MAX_MINOR) {
            Ok(minor) if minor >= 0 => Some(Self(minor)),
            _ => None,
        }
    }

    /// `self * quantity`, or `None` on overflow.
    pub fn times(self, quantity: u32) -> Option<Self> {
        self.0.checked_mul(i64::from(quantity)).map(Self)
    }

    /// `self + other`, or `None` on overflow.
    pub fn plus(self, other: Self) -> Option<Self> {
        self.0.checked_add(other.0).map(Self)
    }
}

impl fmt::Display for Money {
    /// Exactly two fraction digits, as the contract shows money: `"12.50"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&shared::money::format_minor(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_strings_round_trip_through_minor_units() {
        for (text, minor, shown) in [
            ("12.50", 1250, "12.50"),
            ("0.01", 1, "0.01"),
            ("3", 300, "3.00"),
            ("7.5", 750, "7.50"),
            ("1000000.00", 100_000_000, "1000000.00"),
        ] {
            let money = Money::parse(text).unwrap_or_else(|| panic!("{text} parses"));
            assert_eq!(money.minor(), minor, "{text}");
            assert_eq!(money.to_string(), shown, "{text}");
        }
    }

    #[test]
    fn malformed_amounts_are_refused() {
        for text in ["", "-1.00", "1.234", "abc", "1,00", " 1.00"] {
            assert!(Money::parse(text).is_none(), "{text:?} must not parse");
        }
    }

    #[test]
    fn arithmetic_is_exact() {
        let price = Money::parse("0.10").unwrap();
        let total = price
            .times(3)
            .and_then(|t| t.plus(Money::parse("0.20").unwrap()));
        assert_eq!(total.map(|t| t.to_string()), Some("0.50".to_owned()));
    }
}
