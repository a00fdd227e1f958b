//! HTTP routes of auth-service and its OpenAPI document.

pub mod me;
pub mod register;
pub mod revoke;
pub mod token;
pub mod well_known;

use axum::Router;
use axum::routing::{get, post};
use shared::openapi::BearerAuth;
use utoipa::OpenApi;

use crate::state::AppState;

/// The OpenAPI document of auth-service.
#[derive(OpenApi)]
#[openapi(
    info(title = "auth-service", description = "Registration, OAuth 2.0 tokens (EdDSA JWT access tokens), revocation and the JWKS. Errors are application/problem+json (RFC 9457) with these types: urn:shop:problem:bad-request, unauthorized, forbidden, not-found, method-not-allowed, conflict, username-taken, payload-too-large, unsupported-media-type, validation, too-many-requests, internal, unavailable; POST /token answers errors in the RFC 6749 format instead."),
    paths(
        register::register,
        token::token,
        revoke::revoke,
        me::me,
        well_known::jwks,
        well_known::metadata,
    ),
    components(schemas(
        shared::problem::ProblemBody,
        shared::FieldError,
        shared::auth::JwkSet,
        shared::auth::Jwk,
    )),
    modifiers(&BearerAuth, &ClientBasic),
)]
pub struct ApiDoc;

/// Declares the `client_basic` scheme: HTTP Basic client authentication at `/token`.
struct ClientBasic;

impl utoipa::Modify for ClientBasic {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "client_basic",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
            );
    }
}

/// The service's routes (without the operations routes, which the application adds).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/register", post(register::register))
        .route("/token", post(token::token))
        .route("/revoke", post(revoke::revoke))
        .route("/me", get(me::me))
        .route("/.well-known/jwks.json", get(well_known::jwks))
        .route(
            "/.well-known/oauth-authorization-server",
            get(well_known::metadata),
        )
        .with_state(state)
        .merge(shared::openapi::docs_routes(ApiDoc::openapi()))
}
