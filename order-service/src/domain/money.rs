//! Money as integer minor units (cents), never a float.

use std::fmt;

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

    /// Parses a non-negative decimal string with at most two fraction digits (`"12.50"`, `"3"`),
    /// as product-service answers prices.
    pub fn parse(text: &str) -> Option<Self> {
        let (whole, fraction) = match text.split_once('.') {
            Some((w, f)) => (w, f),
            None => (text, ""),
        };
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || whole.len() > 15 || fraction.len() > 2 {
            return None;
        }
        if !digits(whole) || !digits(fraction) || (text.contains('.') && fraction.is_empty()) {
            return None;
        }
        let whole: i64 = whole.parse().ok()?;
        let cents: i64 = match fraction.len() {
            0 => 0,
            1 => fraction.parse::<i64>().ok()? * 10,
            _ => fraction.parse().ok()?,
        };
        whole.checked_mul(100)?.checked_add(cents).map(Self)
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
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
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
        for text in [
            "", "-1.00", "1.234", "1.", ".5", "1e3", "abc", "1,00", " 1.00",
        ] {
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
