//! Product fields from JSON bodies, read from the literal JSON text of each member so that money
//! and stock are parsed exactly (never through a float) and every field gets its own message.

use std::collections::BTreeMap;

use serde_json::value::RawValue;
use shared::{FieldError, Problem};

use super::{MAX_PRICE_MINOR, MAX_STOCK};

/// A JSON object as member name -> literal JSON text.
pub type RawObject = BTreeMap<String, Box<RawValue>>;

/// The fields of a new product.
#[derive(Debug)]
pub struct NewProduct {
    /// 1..=200 characters.
    pub name: String,
    /// At most 2000 characters.
    pub description: String,
    /// Minor units, 1..=100000000.
    pub price_minor: i64,
    /// 0..=1000000000, default 0.
    pub stock: i64,
    /// Optional, unique.
    pub sku: Option<String>,
}

/// A JSON merge patch of a product: `None` leaves a field alone; `Some(None)` (JSON null)
/// removes an optional one.
#[derive(Debug, Default)]
pub struct ProductPatch {
    /// New name.
    pub name: Option<String>,
    /// New description (null clears it).
    pub description: Option<String>,
    /// New price.
    pub price_minor: Option<i64>,
    /// New absolute stock level.
    pub stock: Option<i64>,
    /// New sku, or `Some(None)` to remove it.
    pub sku: Option<Option<String>>,
}

const FIELDS: [&str; 5] = ["name", "description", "price", "stock", "sku"];

fn unknown_fields(body: &RawObject, errors: &mut Vec<FieldError>) {
    for key in body.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
        errors.push(FieldError::new(
            key.as_str(),
            "is not a field of a product that can be set",
        ));
    }
}

impl NewProduct {
    /// Parses a create request.
    pub fn parse(body: &RawObject) -> Result<Self, Problem> {
        let mut errors = Vec::new();
        unknown_fields(body, &mut errors);
        let field = |name: &str| body.get(name).map(|raw| raw.get());
        let name = match field("name") {
            None => Err(FieldError::new("name", "is required")),
            Some(raw) => parse_name(raw),
        };
        let description = field("description").map_or(Ok(String::new()), |raw| {
            if raw == "null" {
                Ok(String::new())
            } else {
                parse_description(raw)
            }
        });
        let price = match field("price") {
            None => Err(FieldError::new("price", "is required")),
            Some(raw) => parse_price("price", raw),
        };
        let stock = field("stock").map_or(Ok(0), parse_stock);
        let sku = field("sku").map_or(Ok(None), parse_sku);
        let name = name.map_err(|e| errors.push(e)).ok();
        let description = description.map_err(|e| errors.push(e)).ok();
        let price_minor = price.map_err(|e| errors.push(e)).ok();
        let stock = stock.map_err(|e| errors.push(e)).ok();
        let sku = sku.map_err(|e| errors.push(e)).ok();
        match (name, description, price_minor, stock, sku) {
            (Some(name), Some(description), Some(price_minor), Some(stock), Some(sku))
                if errors.is_empty() =>
            {
                Ok(Self {
                    name,
                    description,
                    price_minor,
                    stock,
                    sku,
                })
            }
            _ => Err(Problem::validation(errors)),
        }
    }
}

impl ProductPatch {
    /// Parses a merge patch.
    pub fn parse(body: &RawObject) -> Result<Self, Problem> {
        let mut errors = Vec::new();
        unknown_fields(body, &mut errors);
        let mut patch = ProductPatch::default();
        for (key, raw) in body {
            let raw = raw.get();
            let result = match key.as_str() {
                "name" => parse_name(raw).map(|v| patch.name = Some(v)),
                "description" if raw == "null" => {
                    patch.description = Some(String::new());
                    Ok(())
                }
                "description" => parse_description(raw).map(|v| patch.description = Some(v)),
                "price" => parse_price("price", raw).map(|v| patch.price_minor = Some(v)),
                "stock" => parse_stock(raw).map(|v| patch.stock = Some(v)),
                "sku" => parse_sku(raw).map(|v| patch.sku = Some(v)),
                _ => Ok(()),
            };
            if let Err(e) = result {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            Ok(patch)
        } else {
            Err(Problem::validation(errors))
        }
    }

    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.description.is_none()
            && self.price_minor.is_none()
            && self.stock.is_none()
            && self.sku.is_none()
    }
}

fn json_string(field: &str, raw: &str) -> Result<String, FieldError> {
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        Ok(serde_json::Value::Null) => Err(FieldError::new(field, "must not be null")),
        _ => Err(FieldError::new(field, "must be a string")),
    }
}

/// A name is 1..=200 characters as sent, not all of them whitespace, and is stored without the
/// whitespace around it. Whitespace is what the OpenAPI document's pattern (`\S`, an ECMAScript
/// regular expression) calls whitespace, so the schema and this check accept the same names.
fn parse_name(raw: &str) -> Result<String, FieldError> {
    let name = json_string("name", raw)?;
    if name.chars().count() > 200 {
        return Err(FieldError::new("name", "must be at most 200 characters"));
    }
    match name.trim_matches(is_ecmascript_whitespace) {
        "" => Err(FieldError::new("name", "must not be empty")),
        trimmed => Ok(trimmed.to_owned()),
    }
}

/// ECMAScript's `\s`: its WhiteSpace and LineTerminator characters. Unlike Rust's
/// `char::is_whitespace`, it includes U+FEFF and excludes U+0085.
fn is_ecmascript_whitespace(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r' | ' ' | '\u{A0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200A}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202F}'
                | '\u{205F}'
                | '\u{3000}'
                | '\u{FEFF}'
    )
}

fn parse_description(raw: &str) -> Result<String, FieldError> {
    let description = json_string("description", raw)?;
    if description.chars().count() > 2000 {
        return Err(FieldError::new(
            "description",
            "must be at most 2000 characters",
        ));
    }
    Ok(description)
}

fn parse_sku(raw: &str) -> Result<Option<String>, FieldError> {
    if raw == "null" {
        return Ok(None);
    }
    let sku = json_string("sku", raw)?;
    let valid = (1..=64).contains(&sku.len())
        && sku
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid {
        Ok(Some(sku))
    } else {
        Err(FieldError::new(
            "sku",
            "must be 1 to 64 of letters, digits, '-', '_' and '.'",
        ))
    }
}

/// Parses a price from a JSON number or string: 0 < price <= 1000000.00, two fraction digits.
pub fn parse_price(field: &str, raw: &str) -> Result<i64, FieldError> {
    let text = if raw.starts_with('"') {
        json_string(field, raw)?
    } else if raw.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        raw.to_owned()
    } else if raw == "null" {
        return Err(FieldError::new(field, "must not be null"));
    } else {
        return Err(FieldError::new(
            field,
            "must be a number or a decimal string",
        ));
    };
    let minor = shared::money::parse_minor(&text, MAX_PRICE_MINOR).map_err(|m| {
        let message = if m == "is too large" {
            "must be at most 1000000.00"
        } else {
            m
        };
        FieldError::new(field, message)
    })?;
    if minor <= 0 {
        return Err(FieldError::new(field, "must be greater than 0"));
    }
    Ok(minor)
}

fn parse_stock(raw: &str) -> Result<i64, FieldError> {
    match parse_integer("stock", raw, MAX_STOCK)? {
        n if n < 0 => Err(FieldError::new("stock", "must not be negative")),
        n => Ok(n),
    }
}

/// Parses a JSON integer literal within `-bound..=bound`. As in JSON Schema, an integral number
/// written with a zero fraction (`3.0`) is an integer; `1.5`, strings and exponents are not.
pub fn parse_integer(field: &str, raw: &str, bound: i64) -> Result<i64, FieldError> {
    if raw.starts_with('"') {
        return Err(FieldError::new(field, "must be an integer, not a string"));
    }
    if raw == "null" {
        return Err(FieldError::new(field, "must not be null"));
    }
    let (whole, fraction) = raw.split_once('.').unwrap_or((raw, ""));
    let digits = whole.strip_prefix('-').unwrap_or(whole);
    let integral = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b == b'0')
        && (fraction.is_empty() != raw.contains('.'));
    if !integral {
        return Err(FieldError::new(field, "must be a whole number"));
    }
    let negative = whole.starts_with('-');
    match whole.parse::<i64>() {
        Ok(n) if (-bound..=bound).contains(&n) => Ok(n),
        _ if negative => Err(FieldError::new(field, format!("must be at least -{bound}"))),
        _ => Err(FieldError::new(field, format!("must be at most {bound}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> RawObject {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn bad_input_gets_a_message_per_case() {
        let cases = [
            (
                r#"{"name":"a","price":-1}"#,
                "price",
                "must be greater than 0",
            ),
            (
                r#"{"name":"a","price":0}"#,
                "price",
                "must be greater than 0",
            ),
            (
                r#"{"name":"a","price":"0.001"}"#,
                "price",
                "must have at most two fraction digits",
            ),
            (
                r#"{"name":"a","price":1e12}"#,
                "price",
                "must be at most 1000000.00",
            ),
            (
                r#"{"name":"a","price":"abc"}"#,
                "price",
                "must be a decimal number",
            ),
            (r#"{"name":"a","price":null}"#, "price", "must not be null"),
            (
                r#"{"name":"a","price":true}"#,
                "price",
                "must be a number or a decimal string",
            ),
            (
                r#"{"name":"a","price":1,"stock":-1}"#,
                "stock",
                "must not be negative",
            ),
            (
                r#"{"name":"a","price":1,"stock":1.5}"#,
                "stock",
                "must be a whole number",
            ),
            (
                r#"{"name":"a","price":1,"stock":10000000000}"#,
                "stock",
                "must be at most 1000000000",
            ),
            (
                r#"{"name":"a","price":1,"stock":"3"}"#,
                "stock",
                "must be an integer, not a string",
            ),
            (r#"{"name":"","price":1}"#, "name", "must not be empty"),
            (
                r#"{"name":"a","price":1,"owner_id":"x"}"#,
                "owner_id",
                "is not a field of a product that can be set",
            ),
        ];
        for (json, field, message) in cases {
            let err = NewProduct::parse(&body(json)).unwrap_err();
            assert_eq!(err.errors()[0].field, field, "{json}");
            assert_eq!(err.errors()[0].message, message, "{json}");
        }
        let ok = NewProduct::parse(&body(r#"{"name":" Lamp ","price":"12.5","stock":3}"#)).unwrap();
        assert_eq!(
            (ok.name.as_str(), ok.price_minor, ok.stock),
            ("Lamp", 1250, 3)
        );
        let ok = NewProduct::parse(&body(r#"{"name":"Lamp","price":0.1}"#)).unwrap();
        assert_eq!(ok.price_minor, 10);
    }

    /// The OpenAPI document says a name matches `\S` (ECMAScript) and has 1..=200 characters;
    /// the check must accept and refuse exactly what that schema does.
    #[test]
    fn names_follow_the_schema_whitespace_and_length_rules() {
        let name = |n: &str| {
            let json = serde_json::json!({"name": n, "price": 1}).to_string();
            NewProduct::parse(&body(&json)).map(|p| p.name)
        };
        for blank in [" ", "\t\n", "\u{A0}", "\u{2028}", "\u{3000}", "\u{FEFF}"] {
            let err = name(blank).unwrap_err();
            assert_eq!(err.errors()[0].message, "must not be empty", "{blank:?}");
        }
        // Not whitespace for ECMAScript, though Rust's `char::is_whitespace` says U+0085 is.
        assert_eq!(name("\u{85}").unwrap(), "\u{85}");
        assert_eq!(name("\u{1C}").unwrap(), "\u{1C}");
        assert_eq!(name("\u{FEFF}Lamp\u{3000}").unwrap(), "Lamp");
        // The 200-character bound applies to the name as sent, as the schema's maxLength does.
        assert_eq!(name(&"é".repeat(200)).unwrap().chars().count(), 200);
        let padded = format!("{} ", "a".repeat(200));
        assert_eq!(
            name(&padded).unwrap_err().errors()[0].message,
            "must be at most 200 characters"
        );
    }
}
