//! Serving a service's OpenAPI document and its `/docs` page.

use axum::Router;
use serde_json::Value;
use utoipa_swagger_ui::SwaggerUi;

/// `/openapi.json` and the Swagger UI at `/docs` (its assets are vendored: nothing is downloaded
/// at build time).
pub fn docs_routes(openapi: utoipa::openapi::OpenApi) -> Router {
    let mut document = serde_json::to_value(openapi).unwrap_or_default();
    fix_link_keys(&mut document);
    SwaggerUi::new("/docs")
        .external_url_unchecked("/openapi.json", document)
        .into()
}

/// utoipa 5 serialises Link objects with snake_case keys; OpenAPI names them in camelCase
/// (`operationId`, `operationRef`, `requestBody`), and tools ignore links without them.
fn fix_link_keys(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(links)) = map.get_mut("links") {
                for link in links.values_mut() {
                    if let Value::Object(link) = link {
                        for (from, to) in [
                            ("operation_id", "operationId"),
                            ("operation_ref", "operationRef"),
                            ("request_body", "requestBody"),
                        ] {
                            if let Some(v) = link.remove(from) {
                                link.insert(to.to_owned(), v);
                            }
                        }
                    }
                }
            }
            for child in map.values_mut() {
                fix_link_keys(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(fix_link_keys),
        _ => {}
    }
}

/// Declares the `bearer` security scheme (a JWT access token) that the routes' `security`
/// attributes name.
pub struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    Http::builder()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .build(),
                ),
            );
    }
}
