//! HTTP routes of order-service and its OpenAPI document.

pub mod orders;

use axum::Router;
use shared::openapi::BearerAuth;
use utoipa::OpenApi;

use crate::state::AppState;

/// The OpenAPI document of order-service.
#[derive(OpenApi)]
#[openapi(
    info(title = "order-service", description = "Orders that reserve stock at product-service, idempotently, and recover from crashes. Money is a decimal string with two fraction digits. Errors are application/problem+json (RFC 9457) with these types: urn:shop:problem:bad-request, unauthorized, forbidden, not-found, method-not-allowed, conflict, insufficient-stock, idempotency-key-mismatch, idempotency-key-in-flight, invalid-order-state, payload-too-large, unsupported-media-type, validation, too-many-requests, internal, unavailable."),
    paths(
        orders::create::create_order,
        orders::read::list_orders,
        orders::read::get_order,
        orders::cancel::cancel_order,
    ),
    components(schemas(
        shared::problem::ProblemBody,
        shared::FieldError,
        crate::domain::OrderStatus,
        crate::domain::new_order::CreateOrderRequest,
        crate::domain::new_order::OrderItemRequest,
        orders::OrderView,
        orders::OrderItemView,
        orders::OrderPage,
    )),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

/// The service's routes (without the operations routes, which the application adds).
pub fn router(state: AppState) -> Router {
    orders::router()
        .with_state(state)
        .merge(shared::openapi::docs_routes(ApiDoc::openapi()))
}
