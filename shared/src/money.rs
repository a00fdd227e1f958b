//! Money: integer minor units inside, decimal strings with two fraction digits outside.
//!
//! Parsing works on the literal text of a JSON number or string, so no value ever passes through
//! a float: `0.1 + 0.2` problems cannot happen, and `"0.001"` is refused instead of rounded.

/// Minor units per major unit (two fraction digits).
const MINOR_PER_MAJOR: i64 = 100;

/// Parses a decimal literal (`12`, `12.5`, `12.50`, `1.2e1`) into minor units, refusing more than
/// two fraction digits and anything beyond `max_minor`. Signs are kept; callers bound them.
/// Surrounding whitespace is refused, as the OpenAPI documents' anchored price patterns do.
pub fn parse_minor(text: &str, max_minor: i64) -> Result<i64, &'static str> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(i) => {
            let exp: i32 = unsigned[i + 1..]
                .trim_start_matches('+')
                .parse()
                .map_err(|_| "must be a decimal number")?;
            (&unsigned[..i], exp)
        }
        None => (unsigned, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty())
        || !all_digits(int_part)
        || !all_digits(frac_part)
        || (mantissa.contains('.') && frac_part.is_empty() && int_part.is_empty())
    {
        return Err("must be a decimal number");
    }
    if exponent.abs() > 30 {
        return Err(if exponent > 0 {
            "is too large"
        } else {
            "must have at most two fraction digits"
        });
    }
    let digits = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    // value = digits * 10^(exponent - frac_len); minor = value * 100
    let shift = exponent - frac_part.len() as i32 + 2;
    let (significant, shift) = if shift < 0 {
        let cut = (-shift) as usize;
        if digits.len() >= cut {
            let (keep, dropped) = digits.split_at(digits.len() - cut);
            if dropped.bytes().any(|b| b != b'0') {
                return Err("must have at most two fraction digits");
            }
            (keep.to_owned(), 0)
        } else if digits.is_empty() {
            (String::new(), 0)
        } else {
            return Err("must have at most two fraction digits");
        }
    } else {
        (digits.to_owned(), shift as u32)
    };
    if significant.len() + shift as usize > 18 {
        return Err("is too large");
    }
    let base: i64 = if significant.is_empty() {
        0
    } else {
        significant.parse().map_err(|_| "is too large")?
    };
    let minor = base.checked_mul(10i64.pow(shift)).ok_or("is too large")?;
    if minor > max_minor {
        return Err("is too large");
    }
    Ok(if negative { -minor } else { minor })
}

/// Formats minor units as a decimal string with exactly two fraction digits.
pub fn format_minor(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    let per = MINOR_PER_MAJOR as u64;
    format!("{sign}{}.{:02}", abs / per, abs % per)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_parse_exactly() {
        let max = 100_000_000;
        for (text, minor) in [
            ("12", 1200),
            ("12.5", 1250),
            ("12.50", 1250),
            ("0.01", 1),
            ("1.2e1", 1200),
            ("1e6", 100_000_000),
            ("0.10", 10),
            ("-1", -100),
            ("12.500", 1250),
            ("0", 0),
        ] {
            assert_eq!(parse_minor(text, max), Ok(minor), "{text}");
        }
        for text in [
            "0.001",
            "abc",
            "",
            ".",
            "1.2.3",
            "1e12",
            "1000000.01",
            "1e-3",
            "--1",
            "1e999999",
            " 12",
            "12\n",
        ] {
            assert!(parse_minor(text, max).is_err(), "{text}");
        }
    }

    #[test]
    fn minor_units_format_with_two_digits() {
        assert_eq!(format_minor(1250), "12.50");
        assert_eq!(format_minor(1), "0.01");
        assert_eq!(format_minor(100_000_000), "1000000.00");
    }
}
