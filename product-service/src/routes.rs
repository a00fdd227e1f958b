//! HTTP routes of product-service and its OpenAPI document.

pub mod products;
pub mod reservations;
pub mod stock;
pub mod views;

use axum::Router;
use axum::routing::{get, post};
use shared::openapi::BearerAuth;
use utoipa::OpenApi;

use crate::state::AppState;

/// The OpenAPI document of product-service.
#[derive(OpenApi)]
#[openapi(
    info(title = "product-service", description = "Product catalogue with optimistic concurrency (ETag / If-Match), stock, and all-or-nothing idempotent stock reservations for order-service. Errors are application/problem+json (RFC 9457); types: urn:shop:problem:bad-request, unauthorized, forbidden, not-found, method-not-allowed, conflict, sku-taken, insufficient-stock, reservation-conflict, precondition-failed, precondition-required, payload-too-large, unsupported-media-type, validation, internal, unavailable."),
    paths(
        products::create, products::list, products::get_one, products::patch, products::delete,
        stock::adjust,
        reservations::reserve, reservations::get_one, reservations::release,
    ),
    components(schemas(
        shared::problem::ProblemBody, shared::FieldError,
        views::ProductView, views::ProductPage, views::ReservationView, views::ReservedLineView,
        crate::domain::reservation::ReservationBody, crate::domain::reservation::LineBody,
        stock::StockDelta, views::ProductCreate, views::ProductPatchBody, crate::store::SortOrder,
    )),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

/// The service's routes (the operations routes are added by the application).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/products", post(products::create).get(products::list))
        .route(
            "/products/{id}",
            get(products::get_one)
                .patch(products::patch)
                .delete(products::delete),
        )
        .route("/products/{id}/stock", post(stock::adjust))
        .route("/reservations", post(reservations::reserve))
        .route(
            "/reservations/{order_id}",
            get(reservations::get_one).delete(reservations::release),
        )
        .with_state(state)
        .merge(shared::openapi::docs_routes(ApiDoc::openapi()))
}
