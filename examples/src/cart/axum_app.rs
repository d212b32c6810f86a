//! The shop's routes on axum: extract, call the shared handler, answer its [`Reply`].

use axum::extract::{Form, Json, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Router, http};
use sessions::prelude::*;
use sessions::{SessionLayer, SessionRejection};

use super::model::{Account, Cart, Flash};
use super::shop::{CouponForm, LoginForm, RevokeForm, SkuForm};
use super::{AppState, Reply, api, ops, shop};

/// The shop on axum: every route, wrapped in `layer`.
pub fn app(state: AppState, layer: SessionLayer) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/cart/add", post(add))
        .route("/cart/remove", post(remove))
        .route("/coupon", post(coupon))
        .route("/coupon/remove", post(uncoupon))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/sessions", get(sessions))
        .route("/sessions/revoke", post(revoke))
        .route("/sessions/revoke-others", post(revoke_others))
        .route("/api/catalogue", get(|| async { api::catalogue() }))
        .route("/api/cart", get(api_cart))
        .route("/api/cart/items", post(api_add))
        .route("/api/cart/items/{sku}", delete(api_remove))
        .route("/api/cart/coupon", put(api_coupon).delete(api_uncoupon))
        .route("/api/login", post(api_login))
        .route("/api/logout", post(api_logout))
        .route("/api/sessions", get(api_sessions))
        .route("/api/sessions/{reference}", delete(api_revoke))
        .route("/api/sessions/revoke-others", post(api_revoke_others))
        .route("/api/migrations", get(api_migrations))
        .route(
            "/metrics",
            get(|State(app): State<AppState>| async move { ops::metrics(&app) }),
        )
        .with_state(state)
        .layer(layer)
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let (status, header, body) = self.into_parts();
        let mut response = (status, body).into_response();
        if let Some((name, value)) = header {
            response.headers_mut().insert(
                http::HeaderName::from_static(name),
                http::HeaderValue::from_static(value),
            );
        }
        response
    }
}

type Answer = Result<Reply, SessionRejection>;

async fn page(
    State(app): State<AppState>,
    session: SessionHandle,
    cart: Typed<Cart>,
    account: Option<Typed<Account>>,
    flash: Option<Typed<Flash>>,
) -> Answer {
    shop::page(&app, &session, cart, account, flash).await
}

async fn add(cart: Typed<Cart>, flash: Typed<Flash>, Form(form): Form<SkuForm>) -> Reply {
    shop::add(cart, flash, &form)
}

async fn remove(cart: Typed<Cart>, flash: Typed<Flash>, Form(form): Form<SkuForm>) -> Reply {
    shop::remove(cart, flash, &form)
}

async fn coupon(cart: Typed<Cart>, flash: Typed<Flash>, Form(form): Form<CouponForm>) -> Reply {
    shop::coupon(cart, flash, &form)
}

async fn uncoupon(cart: Typed<Cart>) -> Reply {
    shop::uncoupon(cart)
}

async fn login(
    session: SessionHandle,
    account: Typed<Account>,
    flash: Typed<Flash>,
    Form(form): Form<LoginForm>,
) -> Reply {
    shop::login(&session, account, flash, &form)
}

async fn logout(session: SessionHandle) -> Answer {
    shop::logout(&session)
}

async fn sessions(
    State(app): State<AppState>,
    session: SessionHandle,
    account: Option<Typed<Account>>,
    flash: Option<Typed<Flash>>,
) -> Answer {
    shop::sessions(&app, &session, account, flash).await
}

async fn revoke(
    session: SessionHandle,
    flash: Typed<Flash>,
    Form(form): Form<RevokeForm>,
) -> Answer {
    shop::revoke(&session, flash, &form).await
}

async fn revoke_others(session: SessionHandle, flash: Typed<Flash>) -> Answer {
    shop::revoke_others(&session, flash).await
}

async fn api_cart(cart: Typed<Cart>) -> Reply {
    api::get_cart(&cart)
}

async fn api_add(cart: Typed<Cart>, Json(item): Json<api::AddItem>) -> Reply {
    api::add(cart, &item)
}

async fn api_remove(cart: Typed<Cart>, Path(sku): Path<String>) -> Reply {
    api::remove(cart, &sku)
}

async fn api_coupon(cart: Typed<Cart>, Json(body): Json<api::CouponCode>) -> Reply {
    api::put_coupon(cart, &body)
}

async fn api_uncoupon(cart: Typed<Cart>) -> Reply {
    api::delete_coupon(cart)
}

async fn api_login(
    session: SessionHandle,
    account: Typed<Account>,
    Json(body): Json<api::User>,
) -> Reply {
    api::login(&session, account, &body)
}

async fn api_logout(session: SessionHandle) -> Reply {
    api::logout(&session)
}

async fn api_sessions(session: SessionHandle) -> Answer {
    api::sessions(&session).await
}

async fn api_revoke(session: SessionHandle, Path(reference): Path<String>) -> Answer {
    api::revoke(&session, &reference).await
}

async fn api_revoke_others(session: SessionHandle) -> Answer {
    api::revoke_others(&session).await
}

async fn api_migrations(State(app): State<AppState>) -> Reply {
    api::migrations(&app)
}
