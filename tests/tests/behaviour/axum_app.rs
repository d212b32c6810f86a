//! The suite's routes as an axum `Router` (see `handlers.rs` for what each does).

use axum::extract::{FromRequestParts, OptionalFromRequestParts, Path};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use http::{HeaderName, HeaderValue, StatusCode};
use sessions::prelude::*;
use sessions::testing::{TestClient, Transport};

use super::App;
use super::bad_data as bad;
use super::handlers::{self as h, Answer, Reply};
use super::model::{Auth, Cart, CurrentUser, Prefs, SIGN_IN_FIRST, Tabs, Wide};
use super::support::Gate;

/// The tower adapter, through axum.
pub(crate) struct Axum;

impl App for Axum {
    const NAME: &'static str = "axum";

    async fn serve(
        layer: SessionLayer,
        gate: Gate,
    ) -> TestClient<impl Transport + Clone + 'static> {
        TestClient::new(router(gate).layer(layer))
    }

    async fn serve_without_layer() -> TestClient<impl Transport + Clone + 'static> {
        TestClient::new(router(Gate::default()))
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, self.body).into_response();
        for (name, value) in self.headers {
            response.headers_mut().insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        response
    }
}

/// The suite's routes; the slow ones wait at `gate`. The caller adds the session layer (or
/// not).
pub(crate) fn router(gate: Gate) -> Router {
    Router::new()
        .route("/cart", get(read_cart))
        .route(
            "/stats",
            get(|stats: Option<Typed<bad::Stats>>| async move { bad::read_stats(stats) }),
        )
        .route(
            "/stats/{value}",
            post(
                |stats: Typed<bad::Stats>, Path(value): Path<String>| async move {
                    bad::set_average(stats, value)
                },
            ),
        )
        .route(
            "/policy/{name}",
            post(
                |session: SessionHandle, Path(name): Path<String>| async move {
                    bad::set_policy(session, name)
                },
            ),
        )
        .route("/cart/{sku}", post(add_item))
        .route("/coupon/{code}", post(set_coupon))
        .route("/nothing", get(|| async { h::nothing() }))
        .route("/all", get(read_all).post(write_both))
        .route("/prefs", get(read_prefs))
        .route(
            "/dark",
            post(|prefs: Typed<Prefs>| async move { h::dark(prefs) }),
        )
        .route("/lang/{lang}", post(set_lang))
        .route("/login", post(login))
        .route(
            "/logout",
            post(|session: SessionHandle| async move { h::logout(session) }),
        )
        .route(
            "/cycle",
            post(|session: SessionHandle| async move { h::cycle(session) }),
        )
        .route("/fail/{sku}", post(add_then_fail))
        .route(
            "/forget-cart",
            post(|session: SessionHandle| async move { h::forget_cart(session) }),
        )
        .route(
            "/remember",
            post(|session: SessionHandle| async move { h::remember(session) }),
        )
        .route("/remember-then-write", post(h::remember_then_write))
        .route("/login-remember", post(login_remember))
        .route(
            "/big",
            post(|cart: Typed<Cart>| async move { h::big(cart) }),
        )
        .route(
            "/cached",
            get(|cart: Typed<Cart>| async move { h::cached(cart) }),
        )
        .route("/id", get(h::id))
        .route("/login/token", post(h::login_token))
        .route("/whoami", get(whoami))
        .route("/retry/{sku}", post(retrying_item))
        .route("/slow/coupon/{code}", post(slow_coupon))
        .route("/slow/cart/{sku}", post(slow_item))
        .route("/slow/forget-prefs", post(slow_forget_prefs))
        .route("/slow/login", post(slow_login))
        .route("/slow/logout", post(slow_logout))
        .route("/slow/save/{sku}", post(slow_save))
        .route("/slow/save-carry-on/{sku}", post(slow_save_carrying_on))
        .route("/save-then-wait/{sku}", post(save_then_wait))
        .route("/wide/{field}", post(wide))
        .route("/tab/{tab}/{value}", post(write_tab))
        .route("/tabs", get(read_tabs))
        .route("/tabs/login", post(h::history_login))
        .route("/tabs/revoke-others", post(h::history_revoke_others))
        .route(
            "/tabs/signin/{user}",
            post(|session: SessionHandle, Path(user): Path<u64>| async move {
                h::history_sign_in(session, user).await
            }),
        )
        .route(
            "/tabs/logout",
            post(|session: SessionHandle| async move { h::logout(session) }),
        )
        .route("/auth/login/{user}", post(sign_in))
        .route("/slow/auth/login/{user}", post(slow_sign_in))
        .route(
            "/auth/who",
            get(|auth: Option<Typed<Auth>>| async move { h::who(auth) }),
        )
        .route("/auth/sessions", get(h::my_sessions))
        .route("/auth/revoke/{reference}", post(revoke))
        .route("/auth/revoke-others", post(h::revoke_others))
        .route(
            "/account",
            get(|user: CurrentUser| async move { h::account(user) }),
        )
        .route("/week/new-id", get(h::new_id))
        .route("/week/two/{first}", post(two_values))
        .route("/week/remove-then-drop", post(h::remove_then_drop))
        .route(
            "/week/logout",
            post(|session: SessionHandle| async move { h::logout_with_flash(session) }),
        )
        .route("/week/flash", post(h::take_flash))
        .route("/week/clear", post(h::clear))
        .route(
            "/csrf/token",
            get(|token: sessions::csrf::CsrfToken| async move { h::csrf_tokens(token) }),
        )
        .route(
            "/csrf/form",
            post(|cart: Typed<Cart>, body: String| async move { h::csrf_form(cart, body) }),
        )
        .layer(Extension(gate))
}

async fn read_cart(cart: Option<Typed<Cart>>) -> String {
    h::read_cart(cart)
}

async fn add_item(cart: Typed<Cart>, Path(sku): Path<String>) -> String {
    h::add_item(cart, sku)
}

async fn set_coupon(cart: Typed<Cart>, Path(code): Path<String>) -> String {
    h::set_coupon(cart, code)
}

async fn read_all(cart: Typed<Cart>, prefs: Typed<Prefs>, session: SessionHandle) -> Answer {
    h::read_all(cart, prefs, session).await
}

async fn write_both(cart: Typed<Cart>, prefs: Typed<Prefs>) -> String {
    h::write_both(cart, prefs)
}

async fn read_prefs(prefs: Option<Typed<Prefs>>) -> String {
    h::read_prefs(prefs)
}

async fn set_lang(prefs: Typed<Prefs>, Path(lang): Path<String>) -> String {
    h::set_lang(prefs, lang)
}

async fn login(session: SessionHandle, cart: Typed<Cart>) -> String {
    h::login(session, cart)
}

async fn add_then_fail(cart: Typed<Cart>, Path(sku): Path<String>) -> Reply {
    h::add_then_fail(cart, sku)
}

async fn login_remember(session: SessionHandle, prefs: Typed<Prefs>) -> String {
    h::login_remember(session, prefs)
}

async fn whoami(session: SessionHandle, cart: Option<Typed<Cart>>) -> Answer {
    h::whoami(session, cart).await
}

async fn retrying_item(
    Extension(gate): Extension<Gate>,
    session: SessionHandle,
    Path(sku): Path<String>,
) -> Answer {
    h::retrying_item(&gate, session, sku).await
}

async fn slow_coupon(
    Extension(gate): Extension<Gate>,
    cart: Typed<Cart>,
    Path(code): Path<String>,
) -> String {
    h::slow_coupon(&gate, cart, code).await
}

async fn slow_forget_prefs(
    Extension(gate): Extension<Gate>,
    session: SessionHandle,
    prefs: Option<Typed<Prefs>>,
) -> String {
    h::slow_forget_prefs(&gate, session, prefs).await
}

async fn slow_item(
    Extension(gate): Extension<Gate>,
    cart: Typed<Cart>,
    Path(sku): Path<String>,
) -> String {
    h::slow_item(&gate, cart, sku).await
}

async fn slow_login(
    Extension(gate): Extension<Gate>,
    session: SessionHandle,
    cart: Typed<Cart>,
) -> String {
    h::slow_login(&gate, session, cart).await
}

async fn slow_logout(Extension(gate): Extension<Gate>, session: SessionHandle) -> String {
    h::slow_logout(&gate, session).await
}

async fn slow_save(
    Extension(gate): Extension<Gate>,
    session: SessionHandle,
    Path(sku): Path<String>,
) -> Answer {
    h::slow_save(&gate, session, sku).await
}

async fn slow_save_carrying_on(
    Extension(gate): Extension<Gate>,
    session: SessionHandle,
    Path(sku): Path<String>,
) -> Answer {
    h::slow_save_carrying_on(&gate, session, sku).await
}

async fn save_then_wait(
    Extension(gate): Extension<Gate>,
    session: SessionHandle,
    Path(sku): Path<String>,
) -> Answer {
    h::save_then_wait(&gate, session, sku).await
}

async fn wide(wide: Typed<Wide>, Path(field): Path<String>) -> Reply {
    h::wide(wide, &field)
}

async fn write_tab(tabs: Typed<Tabs>, Path((tab, value)): Path<(usize, u64)>) -> Reply {
    h::write_tab(tabs, tab, value)
}

async fn read_tabs(tabs: Option<Typed<Tabs>>) -> String {
    h::read_tabs(tabs)
}

async fn sign_in(session: SessionHandle, auth: Typed<Auth>, Path(user): Path<u64>) -> String {
    h::sign_in(session, auth, user)
}

async fn slow_sign_in(
    Extension(gate): Extension<Gate>,
    session: SessionHandle,
    auth: Typed<Auth>,
    Path(user): Path<u64>,
) -> String {
    h::slow_sign_in(&gate, session, auth, user).await
}

async fn revoke(session: SessionHandle, Path(reference): Path<String>) -> Answer {
    h::revoke(session, reference).await
}

async fn two_values(session: SessionHandle, Path(first): Path<String>) -> Answer {
    h::two_values(session, first).await
}

/// The guard, as the README shows it: `Option<Typed<Auth>>` says whether anyone is signed in
/// (and a store failure stays the session's rejection, a 503: never "nobody").
impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let auth = <Typed<Auth> as OptionalFromRequestParts<S>>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        match auth.and_then(|auth| *auth.user_id()) {
            Some(id) => Ok(CurrentUser(id)),
            None => Err((StatusCode::UNAUTHORIZED, SIGN_IN_FIRST).into_response()),
        }
    }
}
