//! The suite's routes as an actix-web `App` (see `handlers.rs` for what each does). Where axum
//! asks for `Option<Typed<T>>`, actix-web asks for `IfStored<T>` (actix's own `Option<T>`
//! extractor means something else; see `sessions::actix`).

use actix_web::body::BoxBody;
use actix_web::http::StatusCode;
use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::ErrorUnauthorized;
use actix_web::{App as ActixApp, FromRequest, HttpRequest, HttpResponse, Responder, web};
use sessions::actix::IfStored;
use sessions::prelude::*;
use sessions::testing::{TestClient, Transport};

use super::App;
use super::bad_data as bad;
use super::handlers::{self as h, Answer, Reply};
use super::model::{Auth, Cart, CurrentUser, Prefs, SIGN_IN_FIRST, Tabs, Wide};
use super::support::Gate;

/// The actix-web adapter.
pub(crate) struct Actix;

impl App for Actix {
    const NAME: &'static str = "actix-web";

    async fn serve(
        layer: SessionLayer,
        gate: Gate,
    ) -> TestClient<impl Transport + Clone + 'static> {
        let app = ActixApp::new()
            .app_data(web::Data::new(gate))
            .wrap(layer)
            .configure(routes);
        TestClient::actix(actix_web::test::init_service(app).await)
    }

    async fn serve_without_layer() -> TestClient<impl Transport + Clone + 'static> {
        let app = ActixApp::new()
            .app_data(web::Data::new(Gate::default()))
            .configure(routes);
        TestClient::actix(actix_web::test::init_service(app).await)
    }
}

impl Responder for Reply {
    type Body = BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = HttpResponse::build(status);
        for header in self.headers {
            response.insert_header(header);
        }
        response.body(self.body)
    }
}

type Gated = web::Data<Gate>;
type Param = web::Path<String>;

/// The suite's routes; the slow ones wait at the app's `Gate`.
pub(crate) fn routes(config: &mut web::ServiceConfig) {
    config
        .service(web::resource("/cart").route(web::get().to(read_cart)))
        .route(
            "/stats",
            web::get().to(|stats: IfStored<bad::Stats>| async move {
                bad::read_stats(stats.into_inner())
            }),
        )
        .route(
            "/stats/{value}",
            web::post().to(|stats: Typed<bad::Stats>, value: Param| async move {
                bad::set_average(stats, value.into_inner())
            }),
        )
        .route(
            "/policy/{name}",
            web::post().to(|session: SessionHandle, name: Param| async move {
                bad::set_policy(session, name.into_inner())
            }),
        )
        .route("/cart/{sku}", web::post().to(add_item))
        .route("/coupon/{code}", web::post().to(set_coupon))
        .route("/nothing", web::get().to(|| async { h::nothing() }))
        .service(
            web::resource("/all")
                .route(web::get().to(read_all))
                .route(web::post().to(write_both)),
        )
        .route("/prefs", web::get().to(read_prefs))
        .route(
            "/dark",
            web::post().to(|prefs: Typed<Prefs>| async move { h::dark(prefs) }),
        )
        .route("/lang/{lang}", web::post().to(set_lang))
        .route("/login", web::post().to(login))
        .route(
            "/logout",
            web::post().to(|session: SessionHandle| async move { h::logout(session) }),
        )
        .route(
            "/cycle",
            web::post().to(|session: SessionHandle| async move { h::cycle(session) }),
        )
        .route("/fail/{sku}", web::post().to(add_then_fail))
        .route(
            "/forget-cart",
            web::post().to(|session: SessionHandle| async move { h::forget_cart(session) }),
        )
        .route(
            "/remember",
            web::post().to(|session: SessionHandle| async move { h::remember(session) }),
        )
        .route(
            "/remember-then-write",
            web::post().to(h::remember_then_write),
        )
        .route("/login-remember", web::post().to(login_remember))
        .route(
            "/big",
            web::post().to(|cart: Typed<Cart>| async move { h::big(cart) }),
        )
        .route(
            "/cached",
            web::get().to(|cart: Typed<Cart>| async move { h::cached(cart) }),
        )
        .route("/id", web::get().to(h::id))
        .route("/login/token", web::post().to(h::login_token))
        .route("/whoami", web::get().to(whoami))
        .route("/retry/{sku}", web::post().to(retrying_item))
        .route("/slow/coupon/{code}", web::post().to(slow_coupon))
        .route("/slow/cart/{sku}", web::post().to(slow_item))
        .route("/slow/forget-prefs", web::post().to(slow_forget_prefs))
        .route("/slow/login", web::post().to(slow_login))
        .route("/slow/logout", web::post().to(slow_logout))
        .route("/slow/save/{sku}", web::post().to(slow_save))
        .route(
            "/slow/save-carry-on/{sku}",
            web::post().to(slow_save_carrying_on),
        )
        .route("/save-then-wait/{sku}", web::post().to(save_then_wait))
        .route("/wide/{field}", web::post().to(wide))
        .route("/tab/{tab}/{value}", web::post().to(write_tab))
        .route("/tabs", web::get().to(read_tabs))
        .route("/tabs/login", web::post().to(h::history_login))
        .route(
            "/tabs/revoke-others",
            web::post().to(h::history_revoke_others),
        )
        .route(
            "/tabs/signin/{user}",
            web::post().to(|session: SessionHandle, user: web::Path<u64>| async move {
                h::history_sign_in(session, user.into_inner()).await
            }),
        )
        .route(
            "/tabs/logout",
            web::post().to(|session: SessionHandle| async move { h::logout(session) }),
        )
        .route("/auth/login/{user}", web::post().to(sign_in))
        .route("/slow/auth/login/{user}", web::post().to(slow_sign_in))
        .route(
            "/auth/who",
            web::get().to(|auth: IfStored<Auth>| async move { h::who(auth.into_inner()) }),
        )
        .route("/auth/sessions", web::get().to(h::my_sessions))
        .route("/auth/revoke/{reference}", web::post().to(revoke))
        .route("/auth/revoke-others", web::post().to(h::revoke_others))
        .route(
            "/account",
            web::get().to(|user: CurrentUser| async move { h::account(user) }),
        )
        .route("/week/new-id", web::get().to(h::new_id))
        .route("/week/two/{first}", web::post().to(two_values))
        .route(
            "/week/remove-then-drop",
            web::post().to(h::remove_then_drop),
        )
        .route(
            "/week/logout",
            web::post().to(|session: SessionHandle| async move { h::logout_with_flash(session) }),
        )
        .route("/week/flash", web::post().to(h::take_flash))
        .route("/week/clear", web::post().to(h::clear))
        .route(
            "/csrf/token",
            web::get().to(|token: sessions::csrf::CsrfToken| async move { h::csrf_tokens(token) }),
        )
        .route(
            "/csrf/form",
            web::post()
                .to(|cart: Typed<Cart>, body: String| async move { h::csrf_form(cart, body) }),
        );
}

async fn read_cart(cart: IfStored<Cart>) -> String {
    h::read_cart(cart.into_inner())
}

async fn add_item(cart: Typed<Cart>, sku: Param) -> String {
    h::add_item(cart, sku.into_inner())
}

async fn set_coupon(cart: Typed<Cart>, code: Param) -> String {
    h::set_coupon(cart, code.into_inner())
}

async fn read_all(cart: Typed<Cart>, prefs: Typed<Prefs>, session: SessionHandle) -> Answer {
    h::read_all(cart, prefs, session).await
}

async fn write_both(cart: Typed<Cart>, prefs: Typed<Prefs>) -> String {
    h::write_both(cart, prefs)
}

async fn read_prefs(prefs: IfStored<Prefs>) -> String {
    h::read_prefs(prefs.into_inner())
}

async fn set_lang(prefs: Typed<Prefs>, lang: Param) -> String {
    h::set_lang(prefs, lang.into_inner())
}

async fn login(session: SessionHandle, cart: Typed<Cart>) -> String {
    h::login(session, cart)
}

async fn add_then_fail(cart: Typed<Cart>, sku: Param) -> Reply {
    h::add_then_fail(cart, sku.into_inner())
}

async fn login_remember(session: SessionHandle, prefs: Typed<Prefs>) -> String {
    h::login_remember(session, prefs)
}

async fn whoami(session: SessionHandle, cart: IfStored<Cart>) -> Answer {
    h::whoami(session, cart.into_inner()).await
}

async fn retrying_item(gate: Gated, session: SessionHandle, sku: Param) -> Answer {
    h::retrying_item(&gate, session, sku.into_inner()).await
}

async fn slow_coupon(gate: Gated, cart: Typed<Cart>, code: Param) -> String {
    h::slow_coupon(&gate, cart, code.into_inner()).await
}

async fn slow_forget_prefs(gate: Gated, session: SessionHandle, prefs: IfStored<Prefs>) -> String {
    h::slow_forget_prefs(&gate, session, prefs.into_inner()).await
}

async fn slow_item(gate: Gated, cart: Typed<Cart>, sku: Param) -> String {
    h::slow_item(&gate, cart, sku.into_inner()).await
}

async fn slow_login(gate: Gated, session: SessionHandle, cart: Typed<Cart>) -> String {
    h::slow_login(&gate, session, cart).await
}

async fn slow_logout(gate: Gated, session: SessionHandle) -> String {
    h::slow_logout(&gate, session).await
}

async fn slow_save(gate: Gated, session: SessionHandle, sku: Param) -> Answer {
    h::slow_save(&gate, session, sku.into_inner()).await
}

async fn slow_save_carrying_on(gate: Gated, session: SessionHandle, sku: Param) -> Answer {
    h::slow_save_carrying_on(&gate, session, sku.into_inner()).await
}

async fn save_then_wait(gate: Gated, session: SessionHandle, sku: Param) -> Answer {
    h::save_then_wait(&gate, session, sku.into_inner()).await
}

async fn wide(wide: Typed<Wide>, field: Param) -> Reply {
    h::wide(wide, &field)
}

async fn write_tab(tabs: Typed<Tabs>, path: web::Path<(usize, u64)>) -> Reply {
    let (tab, value) = path.into_inner();
    h::write_tab(tabs, tab, value)
}

async fn read_tabs(tabs: IfStored<Tabs>) -> String {
    h::read_tabs(tabs.into_inner())
}

async fn sign_in(session: SessionHandle, auth: Typed<Auth>, user: web::Path<u64>) -> String {
    h::sign_in(session, auth, user.into_inner())
}

async fn slow_sign_in(
    gate: Gated,
    session: SessionHandle,
    auth: Typed<Auth>,
    user: web::Path<u64>,
) -> String {
    h::slow_sign_in(&gate, session, auth, user.into_inner()).await
}

async fn revoke(session: SessionHandle, reference: Param) -> Answer {
    h::revoke(session, reference.into_inner()).await
}

async fn two_values(session: SessionHandle, first: Param) -> Answer {
    h::two_values(session, first.into_inner()).await
}

/// The guard, as the README shows it: `IfStored<Auth>` says whether anyone is signed in (and a
/// store failure stays the session's rejection, a 503: never "nobody").
impl FromRequest for CurrentUser {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let auth = IfStored::<Auth>::from_request(request, payload);
        Box::pin(async move {
            match auth.await?.into_inner().and_then(|auth| *auth.user_id()) {
                Some(id) => Ok(CurrentUser(id)),
                None => Err(ErrorUnauthorized(SIGN_IN_FIRST)),
            }
        })
    }
}
