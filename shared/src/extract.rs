//! Extractor wrappers whose rejections are problem+json, as the contract asks:
//! malformed JSON 400, wrong content type 415, oversized body 413, wrong shape or unknown field 422,
//! malformed path parameter 404, bad query 422.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header, request::Parts};
use serde::de::DeserializeOwned;

use crate::problem::{FieldError, Problem};

/// A JSON body. Request types should use `#[serde(deny_unknown_fields)]`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(Problem::unsupported_media_type("application/json"));
        }
        let bytes = read_body(req, state).await?;
        parse_json(&bytes).map(Json)
    }
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Reads the whole body, mapping an oversized one to 413.
pub async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, Problem> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::payload_too_large()
        } else {
            Problem::bad_request("the request body could not be read")
        }
    })
}

/// Whether the request declares a JSON body (`application/json` or `application/*+json`).
pub fn is_json(headers: &HeaderMap) -> bool {
    media_type(headers).is_some_and(|m| {
        m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
    })
}

/// The lower-cased media type of the request body, without parameters.
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next()?.trim().to_ascii_lowercase();
    (!essence.is_empty()).then_some(essence)
}

/// Parses JSON, telling malformed input (400) from input of the wrong shape (422, with the field).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de);
    if value.is_ok()
        && let Err(err) = de.end()
    {
        return Err(Problem::bad_request(format!(
            "the body is not valid JSON: {}",
            strip_position(&err.to_string())
        )));
    }
    value.map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let message = strip_position(&inner.to_string());
                Problem::validation(vec![field_error(&path, &message)])
            }
            _ => Problem::bad_request(format!(
                "the body is not valid JSON: {}",
                strip_position(&inner.to_string())
            )),
        }
    })
}

/// Names the field of a serde data error: unknown and missing fields name themselves.
fn field_error(path: &str, message: &str) -> FieldError {
    let parent = if path == "." { "" } else { path };
    let named = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    let field = match named {
        Some(name) if parent == name || parent.ends_with(&format!(".{name}")) => parent.to_owned(),
        Some(name) if parent.is_empty() => name.to_owned(),
        Some(name) => format!("{parent}.{name}"),
        None if parent.is_empty() => "body".to_owned(),
        None => parent.to_owned(),
    };
    FieldError::new(field, message)
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// Path parameters; anything that does not parse is a 404, as for a missing resource.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Path(v))
            .map_err(|_| Problem::not_found("no such resource"))
    }
}

/// Query parameters; a value of the wrong type or an unknown parameter is a 422.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded_de(query);
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|err| {
                let path = err.path().to_string();
                let message = err.into_inner().to_string();
                Problem::validation(vec![field_error(&path, &message)])
            })
    }
}

fn serde_urlencoded_de(query: &str) -> serde_urlencoded::Deserializer<'_> {
    serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "fields exist to be parsed")]
    struct Body {
        name: String,
        items: Vec<Item>,
    }
    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "fields exist to be parsed")]
    struct Item {
        quantity: u32,
    }

    #[test]
    fn malformed_json_is_400_and_wrong_shape_is_422_with_the_field() {
        let cases: [(&str, u16, &str); 6] = [
            ("{", 400, ""),
            (r#"{"name": "a", "items": []} x"#, 400, ""),
            (r#"{"items": []}"#, 422, "name"),
            (
                r#"{"name": "a", "items": [], "role": "admin"}"#,
                422,
                "role",
            ),
            (
                r#"{"name": "a", "items": [{"quantity": -1}]}"#,
                422,
                "items[0].quantity",
            ),
            (
                r#"{"name": "a", "items": [{"quantity": 1, "x": 1}]}"#,
                422,
                "items[0].x",
            ),
        ];
        for (input, status, field) in cases {
            let err = parse_json::<Body>(input.as_bytes()).unwrap_err();
            assert_eq!(err.status().as_u16(), status, "{input}");
            if status == 422 {
                assert_eq!(err.errors()[0].field, field, "{input}");
            }
        }
    }
}
