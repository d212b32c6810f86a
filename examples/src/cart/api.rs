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
//! | `GET /api/sessions` | | the signed-in user's sessions (a [`SessionView`] each); 401 when signed out |
//! | `DELETE /api/sessions/{reference}` | | 204, that session signed out; 404 when it is not one of the user's; 409 for the current one (log out instead) |
//! | `POST /api/sessions/revoke-others` | | `{"revoked": 2}`: every other session of the user signed out |
//! | `GET /api/migrations` | | `SessionLayer::migration_counts()` |
//!
//! Like the HTML side, each handler is a plain function of what the extractors gave, answering
//! a [`Reply`]; `axum_app` and `actix_app` route to them.

use std::time::{SystemTime, UNIX_EPOCH};

use http::StatusCode;
use serde::{Deserialize, Serialize};
use sessions::prelude::*;
use sessions::{OwnedSession, SessionRejection};

use super::model::{
    Account, CATALOGUE, Cart, CartError, Totals, add_item, apply_coupon, product, remove_coupon,
    remove_item, totals, user_name,
};
use super::shop::{Found, find};
use super::{AppState, Reply};

impl From<CartError> for Reply {
    fn from(err: CartError) -> Self {
        let status = match err {
            CartError::UnknownProduct(_) => StatusCode::NOT_FOUND,
            CartError::UnknownCoupon(_) | CartError::BadQuantity => StatusCode::BAD_REQUEST,
        };
        Reply::error(status, err.to_string())
    }
}

#[derive(Serialize)]
struct ProductView {
    sku: &'static str,
    name: &'static str,
    price_cents: u32,
}

/// `GET /api/catalogue`.
pub fn catalogue() -> Reply {
    let products: Vec<ProductView> = CATALOGUE
        .iter()
        .map(|p| ProductView {
            sku: p.sku,
            name: p.name,
            price_cents: p.price_cents,
        })
        .collect();
    Reply::ok(&products)
}

/// The cart as the API shows it.
#[derive(Serialize)]
pub struct CartView {
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

    fn reply(cart: &Typed<Cart>) -> Reply {
        Reply::ok(&CartView::of(cart))
    }
}

/// `GET /api/cart`: reads only (a stored v1 or v2 cart is migrated and written back as v3).
pub fn get_cart(cart: &Typed<Cart>) -> Reply {
    CartView::reply(cart)
}

#[derive(Deserialize)]
pub struct AddItem {
    pub sku: String,
    #[serde(default = "one")]
    pub qty: u32,
}

fn one() -> u32 {
    1
}

/// `POST /api/cart/items`: writes `lines` only.
pub fn add(mut cart: Typed<Cart>, item: &AddItem) -> Reply {
    match add_item(&mut cart, &item.sku, item.qty) {
        Ok(()) => CartView::reply(&cart),
        Err(err) => err.into(),
    }
}

/// `DELETE /api/cart/items/{sku}`: writes `lines` only.
pub fn remove(mut cart: Typed<Cart>, sku: &str) -> Reply {
    if !remove_item(&mut cart, sku) {
        return Reply::error(StatusCode::NOT_FOUND, format!("`{sku}` is not in the cart"));
    }
    CartView::reply(&cart)
}

#[derive(Deserialize)]
pub struct CouponCode {
    pub code: String,
}

/// `PUT /api/cart/coupon`: writes `coupon` only.
pub fn put_coupon(mut cart: Typed<Cart>, body: &CouponCode) -> Reply {
    match apply_coupon(&mut cart, &body.code) {
        Ok(_) => CartView::reply(&cart),
        Err(err) => err.into(),
    }
}

/// `DELETE /api/cart/coupon`.
pub fn delete_coupon(mut cart: Typed<Cart>) -> Reply {
    remove_coupon(&mut cart);
    CartView::reply(&cart)
}

#[derive(Deserialize, Serialize)]
pub struct User {
    pub user: String,
}

/// `POST /api/login`: sets the account (binding the session to the user) and cycles the
/// session id (fixation defence).
pub fn login(session: &SessionHandle, mut account: Typed<Account>, body: &User) -> Reply {
    let user = match user_name(&body.user) {
        Ok(user) => user.to_owned(),
        Err(why) => return Reply::error(StatusCode::BAD_REQUEST, why),
    };
    account.set_user(Some(user.clone()));
    session.cycle_id();
    Reply::ok(&User { user })
}

/// `POST /api/logout`: destroys the session (record deleted, cookie cleared).
pub fn logout(session: &SessionHandle) -> Reply {
    session.destroy();
    Reply::NoContent
}

/// One session of the signed-in user. Times are Unix seconds.
#[derive(Serialize)]
pub struct SessionView {
    /// Opaque (not the session id): what `DELETE /api/sessions/{reference}` takes.
    reference: String,
    current: bool,
    /// The login that bound it to the user.
    signed_in_at: u64,
    created_at: u64,
    last_seen: u64,
    expires_at: u64,
    user_agent: Option<String>,
}

fn unix(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl From<OwnedSession> for SessionView {
    fn from(session: OwnedSession) -> Self {
        SessionView {
            current: session.current,
            signed_in_at: unix(session.bound_at),
            created_at: unix(session.created_at),
            last_seen: unix(session.last_seen),
            expires_at: unix(session.expires_at),
            user_agent: session.agent,
            reference: session.reference,
        }
    }
}

fn signed_out() -> Reply {
    Reply::error(StatusCode::UNAUTHORIZED, "sign in first: POST /api/login")
}

/// `GET /api/sessions`: the signed-in user's sessions, newest login first.
pub async fn sessions(session: &SessionHandle) -> Result<Reply, SessionRejection> {
    if session.owner().await?.is_none() {
        return Ok(signed_out());
    }
    let list: Vec<SessionView> = session
        .owner_sessions()
        .await?
        .into_iter()
        .map(SessionView::from)
        .collect();
    Ok(Reply::ok(&list))
}

/// `DELETE /api/sessions/{reference}`: signs one other session of the user out.
pub async fn revoke(session: &SessionHandle, reference: &str) -> Result<Reply, SessionRejection> {
    let not_found = || Reply::error(StatusCode::NOT_FOUND, "no such session of yours");
    Ok(match find(session, reference).await? {
        Found::SignedOut => signed_out(),
        Found::Current => Reply::error(
            StatusCode::CONFLICT,
            "that is this session: POST /api/logout to end it",
        ),
        Found::Nothing => not_found(),
        // `false`: it ended between the lookup and now.
        Found::Other => {
            if session.revoke(reference).await? {
                Reply::NoContent
            } else {
                not_found()
            }
        }
    })
}

/// `POST /api/sessions/revoke-others`: signs every other session of the user out.
pub async fn revoke_others(session: &SessionHandle) -> Result<Reply, SessionRejection> {
    #[derive(Serialize)]
    struct Revoked {
        revoked: usize,
    }
    if session.owner().await?.is_none() {
        return Ok(signed_out());
    }
    let revoked = session.revoke_others().await?;
    Ok(Reply::ok(&Revoked { revoked }))
}

#[derive(Serialize)]
struct Migrations {
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
pub fn migrations(app: &AppState) -> Reply {
    Reply::ok(&Migrations {
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
