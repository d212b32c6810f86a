//! The same shop as a small JSON API under `/api`, over the same sessions.
//!
//! | method and path | body | answer |
//! |---|---|---|
//! | `GET /api/catalogue` | | the products |
//! | `GET /api/cart` | | the cart (a [`CartView`]) |
//! | `POST /api/cart/items` | `{"sku":"apple","qty":2}` (`qty` defaults to 1) | the cart; 404 for an unknown SKU |
//! | `DELETE /api/cart/items/{sku}` | | the cart; 404 when the line is not there |
//! | `PUT /api/cart/coupon` | `{"code":"WELCOME10"}` | the cart; 400 for an unknown code |
//! | `DELETE /api/cart/coupon` | | the cart |
//! | `POST /api/login` | `{"user":"ada"}` | `{"user":"ada"}`, and a new session id |
//! | `POST /api/logout` | | 204, the session destroyed |
//! | `GET /api/migrations` | | `SessionLayer::migration_counts()` |

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sessions::prelude::*;

use crate::AppState;
use crate::model::{
    Account, CATALOGUE, Cart, CartError, Totals, add_item, apply_coupon, product, remove_coupon,
    remove_item, totals,
};
use crate::web::MAX_USER;

/// An error answer: `{"error": "..."}` with a status.
pub(crate) struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Body {
            error: String,
        }
        (self.0, Json(Body { error: self.1 })).into_response()
    }
}

impl From<CartError> for ApiError {
    fn from(err: CartError) -> Self {
        let status = match err {
            CartError::UnknownProduct(_) => StatusCode::NOT_FOUND,
            CartError::UnknownCoupon(_) | CartError::BadQuantity => StatusCode::BAD_REQUEST,
        };
        ApiError(status, err.to_string())
    }
}

#[derive(Serialize)]
pub(crate) struct ProductView {
    sku: &'static str,
    name: &'static str,
    price_cents: u32,
}

/// `GET /api/catalogue`.
pub(crate) async fn catalogue() -> Json<Vec<ProductView>> {
    Json(
        CATALOGUE
            .iter()
            .map(|p| ProductView {
                sku: p.sku,
                name: p.name,
                price_cents: p.price_cents,
            })
            .collect(),
    )
}

/// The cart as the API shows it.
#[derive(Serialize)]
pub(crate) struct CartView {
    /// The cart type's current version (3).
    version: u32,
    /// The stored version this request migrated the cart from, if it did.
    migrated_from: Option<u32>,
    lines: Vec<LineView>,
    coupon: Option<String>,
    #[serde(flatten)]
    totals: Totals,
}

#[derive(Serialize)]
struct LineView {
    sku: String,
    name: String,
    qty: u32,
    unit_cents: u32,
    line_cents: u32,
}

impl CartView {
    fn of(cart: &Typed<Cart>) -> Self {
        let value = cart.value();
        CartView {
            version: <Cart as Session>::VERSION,
            migrated_from: cart.migrated_from(),
            lines: value
                .lines
                .iter()
                .map(|line| LineView {
                    sku: line.sku.clone(),
                    name: product(&line.sku).map_or_else(|| line.sku.clone(), |p| p.name.into()),
                    qty: line.qty,
                    unit_cents: line.unit_cents,
                    line_cents: line.qty * line.unit_cents,
                })
                .collect(),
            coupon: value.coupon.clone(),
            totals: totals(value),
        }
    }
}

/// `GET /api/cart`: reads only (a stored v1 or v2 cart is migrated and written back as v3).
pub(crate) async fn get_cart(cart: Typed<Cart>) -> Json<CartView> {
    Json(CartView::of(&cart))
}

#[derive(Deserialize)]
pub(crate) struct AddItem {
    sku: String,
    #[serde(default = "one")]
    qty: u32,
}

fn one() -> u32 {
    1
}

/// `POST /api/cart/items`: writes `lines` only.
pub(crate) async fn add(
    mut cart: Typed<Cart>,
    Json(item): Json<AddItem>,
) -> Result<Json<CartView>, ApiError> {
    add_item(&mut cart, &item.sku, item.qty)?;
    Ok(Json(CartView::of(&cart)))
}

/// `DELETE /api/cart/items/{sku}`: writes `lines` only.
pub(crate) async fn remove(
    mut cart: Typed<Cart>,
    Path(sku): Path<String>,
) -> Result<Json<CartView>, ApiError> {
    if !remove_item(&mut cart, &sku) {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("`{sku}` is not in the cart"),
        ));
    }
    Ok(Json(CartView::of(&cart)))
}

#[derive(Deserialize)]
pub(crate) struct CouponCode {
    code: String,
}

/// `PUT /api/cart/coupon`: writes `coupon` only.
pub(crate) async fn put_coupon(
    mut cart: Typed<Cart>,
    Json(body): Json<CouponCode>,
) -> Result<Json<CartView>, ApiError> {
    apply_coupon(&mut cart, &body.code)?;
    Ok(Json(CartView::of(&cart)))
}

/// `DELETE /api/cart/coupon`.
pub(crate) async fn delete_coupon(mut cart: Typed<Cart>) -> Json<CartView> {
    remove_coupon(&mut cart);
    Json(CartView::of(&cart))
}

#[derive(Deserialize, Serialize)]
pub(crate) struct User {
    user: String,
}

/// `POST /api/login`: sets the account and cycles the session id (fixation defence).
pub(crate) async fn login(
    session: SessionHandle,
    mut account: Typed<Account>,
    Json(body): Json<User>,
) -> Result<Json<User>, ApiError> {
    let user = body.user.trim().to_owned();
    if user.is_empty() || user.chars().count() > MAX_USER {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "a user name is 1 to 40 characters".into(),
        ));
    }
    account.set_user(Some(user.clone()));
    session.cycle_id();
    Ok(Json(User { user }))
}

/// `POST /api/logout`: destroys the session (record deleted, cookie cleared).
pub(crate) async fn logout(session: SessionHandle) -> StatusCode {
    session.destroy();
    StatusCode::NO_CONTENT
}

#[derive(Serialize)]
pub(crate) struct Migrations {
    store: String,
    counts: Vec<MigrationView>,
}

#[derive(Serialize)]
struct MigrationView {
    type_name: &'static str,
    from_version: u32,
    to_version: u32,
    count: u64,
}

/// `GET /api/migrations`: how many stored slots this process migrated, by type and version.
pub(crate) async fn migrations(State(app): State<AppState>) -> Json<Migrations> {
    Json(Migrations {
        store: app.store.to_string(),
        counts: app
            .layer
            .migration_counts()
            .into_iter()
            .map(|c| MigrationView {
                type_name: c.type_name,
                from_version: c.from_version,
                to_version: c.to_version,
                count: c.count,
            })
            .collect(),
    })
}
