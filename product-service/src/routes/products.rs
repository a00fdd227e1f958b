//! `/products` and `/products/{id}`: create, list, read, merge-patch with If-Match, soft delete.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bson::oid::ObjectId;
use serde::Deserialize;
use shared::auth::{AuthUser, Authenticated};
use shared::extract::{Json, Path, Query};
use shared::pagination::{decode_cursor, encode_cursor, limit};
use shared::{ApiError, Problem, Result};
use utoipa::IntoParams;

use super::views::{ProductCreate, ProductPage, ProductPatchBody, ProductView};
use crate::domain::fields::{RawObject, parse_price};
use crate::domain::{MAX_PRICE_MINOR, NewProduct, ProductPatch};
use crate::state::AppState;
use crate::store::products::Position;
use crate::store::{Change, ListQuery, ProductDoc, RenderedProduct, SortOrder};

/// Problem type of a taken sku.
pub const SKU_TAKEN: &str = "urn:shop:problem:sku-taken";

const PROBLEM: &str = "application/problem+json";

/// The strong ETag of a product version.
pub fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// A path id; anything but an ObjectId cannot name a product.
pub fn product_id(raw: &str) -> Result<ObjectId, Problem> {
    ObjectId::parse_str(raw).map_err(|_| Problem::not_found("no such product"))
}

/// Explains why a conditional write on a product matched nothing: 404 when it is gone, 403 when
/// it is someone else's; `None` when neither (the caller's own precondition failed).
pub async fn explain(state: &AppState, id: ObjectId, user: &AuthUser) -> Result<Option<Problem>> {
    Ok(match state.products.find_any(id).await? {
        None => Some(Problem::not_found("no such product")),
        Some(p) if p.deleted => Some(Problem::not_found("no such product")),
        Some(p) if !user.is_admin() && p.owner_id != user.id => Some(Problem::forbidden(
            "only the owner or an admin may change this product",
        )),
        Some(_) => None,
    })
}

fn sku_taken(e: mongodb::error::Error) -> ApiError {
    if shared::mongo::is_duplicate_key(&e) {
        Problem::new(StatusCode::CONFLICT, SKU_TAKEN, "Sku taken")
            .detail("another product already has this sku")
            .into()
    } else {
        e.into()
    }
}

/// The product response with its ETag.
pub fn product_response(status: StatusCode, product: &ProductDoc, state: &AppState) -> Response {
    let mut response = (
        status,
        axum::Json(ProductView::new(product, &state.config.service.currency)),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::ETAG, etag(product.version));
    response
}

/// Creates a product owned by the caller.
#[utoipa::path(
    post, path = "/products", tag = "products", operation_id = "createProduct", security(("bearer" = [])),
    request_body = ProductCreate,
    responses(
        (status = 201, description = "Created; Location and ETag set", body = ProductView,
            headers(("Location" = String), ("ETag" = String)),
            links(
                ("GetProduct" = (operation_id = "getProduct", parameters(("id" = "$response.body#/id")))),
                ("PatchProduct" = (operation_id = "patchProduct", parameters(("id" = "$response.body#/id"), ("If-Match" = "$response.header.ETag")))),
                ("AdjustStock" = (operation_id = "adjustStock", parameters(("id" = "$response.body#/id")))),
                ("DeleteProduct" = (operation_id = "deleteProduct", parameters(("id" = "$response.body#/id")))),
            )),
        (status = 400, description = "Malformed JSON", body = shared::problem::ProblemBody, content_type = PROBLEM),
        (status = 401, description = "No valid token", body = shared::problem::ProblemBody, content_type = PROBLEM),
        (status = 403, description = "Service-client token", body = shared::problem::ProblemBody, content_type = PROBLEM),
        (status = 409, description = "Sku taken", body = shared::problem::ProblemBody, content_type = PROBLEM),
        (status = 413, description = "Body too large", body = shared::problem::ProblemBody, content_type = PROBLEM),
        (status = 415, description = "Not JSON", body = shared::problem::ProblemBody, content_type = PROBLEM),
        (status = 422, description = "Invalid or unknown fields", body = shared::problem::ProblemBody, content_type = PROBLEM),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<RawObject>,
) -> Result<Response> {
    let new = NewProduct::parse(&body)?;
    let product = state
        .products
        .insert(new, &user.id)
        .await
        .map_err(sku_taken)?;
    state.cache.invalidate(product.id, Change::Any);
    tracing::info!(product.id = %product.id, user.id = %user.id, "product created");
    let mut response = product_response(StatusCode::CREATED, &product, &state);
    if let Ok(location) = HeaderValue::from_str(&format!("/products/{}", product.id.to_hex())) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Filters of `GET /products`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Case-insensitive substring of the name, matched literally.
    #[param(max_length = 100)]
    pub q: Option<String>,
    /// Lowest price, e.g. `10` or `9.99`.
    #[param(
        pattern = "^([1-9][0-9]{0,5}(\\.[0-9]{1,2})?|1000000(\\.0{1,2})?|0\\.([1-9][0-9]?|0[1-9]))$"
    )]
    pub min_price: Option<String>,
    /// Highest price.
    #[param(
        pattern = "^([1-9][0-9]{0,5}(\\.[0-9]{1,2})?|1000000(\\.0{1,2})?|0\\.([1-9][0-9]?|0[1-9]))$"
    )]
    pub max_price: Option<String>,
    /// `true`: only products in stock; `false`: only sold-out ones.
    pub in_stock: Option<bool>,
    /// `me` or an owner id.
    #[param(min_length = 1, max_length = 64)]
    pub owner: Option<String>,
    /// Order of the list, default `newest`.
    #[param(value_type = Option<SortOrder>)]
    pub sort: Option<String>,
    /// 1..=100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
}

/// A page of live products.
#[utoipa::path(
    get, path = "/products", tag = "products", operation_id = "listProducts", security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "A page", body = ProductPage),
        (status = 401, description = "No valid token", body = shared::problem::ProblemBody, content_type = PROBLEM),
        (status = 422, description = "Bad filter, limit or cursor", body = shared::problem::ProblemBody, content_type = PROBLEM),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Authenticated,
    Query(params): Query<ListParams>,
) -> Result<Response> {
    let query = list_query(params, &caller)?;
    let key = format!("{query:?}");
    let by_stock = query.in_stock.is_some();
    let loader = state.clone();
    let page = state
        .cache
        .page(key, by_stock, move || load_page(loader, query))
        .await?;
    Ok(json_body(page))
}

/// Reads a page from the database and serialises it; also returns the ids of its products.
async fn load_page(
    state: AppState,
    query: ListQuery,
) -> mongodb::error::Result<(Bytes, Vec<ObjectId>)> {
    let mut products = state.products.list(&query).await?;
    let more = products.len() > query.limit as usize;
    products.truncate(query.limit as usize);
    let next_cursor = more
        .then(|| products.last())
        .flatten()
        .map(|last| encode_cursor(&Position::of(query.sort, last)));
    let currency = &state.config.service.currency;
    let page = ProductPage {
        items: products
            .iter()
            .map(|p| ProductView::new(p, currency))
            .collect(),
        next_cursor,
    };
    let ids = products.iter().map(|p| p.id).collect();
    // Plain structs of strings and numbers always serialise.
    Ok((
        Bytes::from(serde_json::to_vec(&page).unwrap_or_default()),
        ids,
    ))
}

/// A 200 with an already serialised JSON body.
fn json_body(body: Bytes) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

fn list_query(params: ListParams, caller: &Authenticated) -> Result<ListQuery, Problem> {
    let sort = match params.sort.as_deref() {
        None | Some("newest") => SortOrder::Newest,
        Some("price_asc") => SortOrder::PriceAsc,
        Some("price_desc") => SortOrder::PriceDesc,
        Some("name") => SortOrder::Name,
        Some(_) => {
            return Err(Problem::invalid_field(
                "sort",
                "must be newest, price_asc, price_desc or name",
            ));
        }
    };
    let after = match params.cursor.as_deref() {
        None => None,
        Some(raw) => {
            let position: Position = decode_cursor(raw)?;
            if position.s != sort {
                return Err(Problem::invalid_field(
                    "cursor",
                    "belongs to another sort order",
                ));
            }
            Some(position)
        }
    };
    let name_pattern = match params.q {
        Some(q) if q.chars().count() > 100 => {
            return Err(Problem::invalid_field(
                "q",
                "must be at most 100 characters",
            ));
        }
        Some(q) if !q.trim().is_empty() => Some(escape_regex(q.trim())),
        _ => None,
    };
    let price = |field: &str, raw: Option<String>| -> Result<Option<i64>, Problem> {
        raw.map(|r| {
            let quoted = serde_json::to_string(&r).unwrap_or_default();
            parse_price(field, &quoted).map_err(|e| Problem::validation(vec![e]))
        })
        .transpose()
    };
    let min_price = price("min_price", params.min_price)?;
    let max_price = price("max_price", params.max_price)?;
    let owner_id = match params.owner.as_deref() {
        None => None,
        Some("me") => Some(
            caller
                .user_id()
                .map(str::to_owned)
                .ok_or_else(|| Problem::invalid_field("owner", "`me` needs a user token"))?,
        ),
        Some(id) if !id.is_empty() && id.len() <= 64 => Some(id.to_owned()),
        Some(_) => return Err(Problem::invalid_field("owner", "must be `me` or a user id")),
    };
    Ok(ListQuery {
        name_pattern,
        min_price: min_price.map(|p| p.min(MAX_PRICE_MINOR)),
        max_price,
        in_stock: params.in_stock,
        owner_id,
        sort,
        after,
        limit: limit(params.limit)?,
    })
}

/// Escapes every regex metacharacter, so user text is matched literally.
fn escape_regex(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if "\\^$.|?*+()[]{}-/#".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// One live product; `If-None-Match` with its ETag gives 304.
#[utoipa::path(
    get, path = "/products/{id}", tag = "products", operation_id = "getProduct", security(("bearer" = [])),
    params(("id" = String, Path, description = "Product id")),
    responses(
        (status = 200, description = "The product", body = ProductView, headers(("ETag" = String)),
            links(
                ("PatchProduct" = (operation_id = "patchProduct", parameters(("id" = "$request.path.id"), ("If-Match" = "$response.header.ETag")))),
            )),
        (status = 304, description = "Not modified"),
        (status = 401, description = "No valid token", body = shared::problem::ProblemBody, content_type = PROBLEM),
        (status = 404, description = "No such product", body = shared::problem::ProblemBody, content_type = PROBLEM),
    )
)]
pub async fn get_one(
    State(state): State<AppState>,
    _caller: Authenticated,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let id = product_id(&id)?;
    let product = state
        .cache
        .product(id, || load_product(state.clone(), id))
        .await?
        .ok_or_else(|| Problem::not_found("no such product"))?;
    let current = etag(product.version);
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || current.to_str().is_ok_and(|c| c == t));
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, current)]).into_response());
    }
    let mut response = json_body(product.body);
    response.headers_mut().insert(header::ETAG, current);
    Ok(response)
}

/// Reads a live product from the database (with the other reads waiting) and serialises it.
async fn load_product(
    state: AppState,
    id: ObjectId,
) -> mongodb::error::Result<Option<RenderedProduct>> {
    let currency = &state.config.service.currency;
    Ok(state.reads.find_live(id).await?.map(|p| RenderedProduct {
        version: p.version,
        // Plain structs of strings and numbers always serialise.
        body: Bytes::from(serde_json::to_vec(&ProductView::new(&p, currency)).unwrap_or_default()),
    }))
}

/// The version an `If-Match` header names; `*` stands for the current one.
fn if_match(headers: &HeaderMap) -> Result<Option<i64>, Problem> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Err(Problem::new(
            StatusCode::PRECONDITION_REQUIRED,
            shared::problem::types::PRECONDITION_REQUIRED,
            "Precondition required",
        )
        .detail("send If-Match with the ETag of the version you read"));
    };
    let text = value.to_str().unwrap_or_default().trim();
    if text == "*" {
        return Ok(None);
    }
    Ok(Some(
        text.strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .and_then(|t| t.parse::<i64>().ok())
            .unwrap_or(-1),
    ))
}

fn stale() -> Problem {
    metrics::counter!("product_write_conflicts_total").increment(1);
    Problem::new(
        StatusCode::PRECONDITION_FAILED,
        shared::problem::types::PRECONDITION_FAILED,
        "Precondition failed",
    )
    .detail("the product changed since you read it; read it again and retry")
}

/// Applies a JSON merge patch if `If-Match` names the current version.
#[utoipa::path(
    patch, path = "/products/{id}", tag = "products", operation_id = "patchProduct", security(("bearer" = [])),
    params(("id" = String, Path, description = "Product id"),
           ("If-Match" = String, Header, description = "ETag of the version read")),
    request_body(content = ProductPatchBody, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "Updated", body = ProductView, headers(("ETag" = String))),
        (status = 400, description = "Malformed JSON", body = shared::problem::ProblemBody, content_type = PROBLEM),
        (status = 401, description = "No valid token", body = shared::problem::ProblemBody, content_type = PROBLEM),
        (status = 403, description = "Not the owner or an admin", body = shared::problem::ProblemBody, content_type = PROBLEM),
        (status = 404, description = "No such product", body = shared::problem::ProblemBody, content_type = PROBLEM),
        (status = 409, description = "Sku taken", body = shared::problem::ProblemBody, content_type = PROBLEM),
        (status = 413, description = "Body too large", body = shared::problem::ProblemBody, content_type = PROBLEM),
        (status = 412, description = "Stale If-Match", body = shared::problem::ProblemBody, content_type = PROBLEM),
        (status = 415, description = "Not JSON", body = shared::problem::ProblemBody, content_type = PROBLEM),
        (status = 422, description = "Invalid fields", body = shared::problem::ProblemBody, content_type = PROBLEM),
        (status = 428, description = "If-Match missing", body = shared::problem::ProblemBody, content_type = PROBLEM),
    )
)]
pub async fn patch(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<RawObject>,
) -> Result<Response> {
    let id = product_id(&id)?;
    let expected = if_match(&headers)?;
    let patch = ProductPatch::parse(&body)?;
    let current = state.products.find_any(id).await?;
    let current = match current {
        Some(p) if !p.deleted => p,
        _ => return Err(Problem::not_found("no such product").into()),
    };
    if !user.is_admin() && current.owner_id != user.id {
        return Err(
            Problem::forbidden("only the owner or an admin may change this product").into(),
        );
    }
    let expected = expected.unwrap_or(current.version);
    if expected != current.version {
        return Err(stale().into());
    }
    if patch.is_empty() {
        return Ok(product_response(StatusCode::OK, &current, &state));
    }
    let updated = state
        .products
        .patch(id, expected, user.owner_filter(), &patch, current.stock)
        .await
        .map_err(sku_taken)?;
    state.cache.invalidate(id, Change::Any);
    match updated {
        Some(product) => {
            tracing::info!(product.id = %id, version = product.version, "product updated");
            Ok(product_response(StatusCode::OK, &product, &state))
        }
        None => Err(explain(&state, id, &user)
            .await?
            .unwrap_or_else(stale)
            .into()),
    }
}

/// Soft-deletes a product: later reads answer 404; orders keep their history.
#[utoipa::path(
    delete, path = "/products/{id}", tag = "products", operation_id = "deleteProduct", security(("bearer" = [])),
    params(("id" = String, Path, description = "Product id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid token", body = shared::problem::ProblemBody, content_type = PROBLEM),
        (status = 403, description = "Not the owner or an admin", body = shared::problem::ProblemBody, content_type = PROBLEM),
        (status = 404, description = "No such product", body = shared::problem::ProblemBody, content_type = PROBLEM),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let id = product_id(&id)?;
    let deleted = state.products.soft_delete(id, user.owner_filter()).await?;
    state.cache.invalidate(id, Change::Any);
    if deleted {
        tracing::info!(product.id = %id, "product deleted");
        return Ok(StatusCode::NO_CONTENT);
    }
    Err(explain(&state, id, &user)
        .await?
        .unwrap_or_else(|| Problem::not_found("no such product"))
        .into())
}
