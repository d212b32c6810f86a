//! The shop's routes on actix-web: extract, call the shared handler, answer its [`Reply`].
//!
//! The same `SessionLayer` wraps the `App` (`App::new().wrap(layer)`). Where the axum side asks
//! for `Option<Typed<T>>`, this side asks for [`IfStored<T>`]: actix-web's own
//! `Option<T>` extractor turns every error into `None` (see `sessions::actix`).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{App, HttpRequest, HttpResponse, Responder, web};
use sessions::actix::IfStored;
use sessions::prelude::*;
use sessions::{SessionLayer, SessionRejection};

use super::model::{Account, Cart, Flash};
use super::shop::{CouponForm, LoginForm, RevokeForm, SkuForm};
use super::{AppState, Reply, api, ops, shop};

/// The shop on actix-web: every route, wrapped in `layer`.
pub fn app(
    state: AppState,
    layer: SessionLayer,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(web::Data::new(state))
        .wrap(layer)
        .configure(routes)
}

/// The routes (the `App` needs `web::Data<AppState>` and the session layer: see [`app`]).
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/", web::get().to(page))
        .route("/cart/add", web::post().to(add))
        .route("/cart/remove", web::post().to(remove))
        .route("/coupon", web::post().to(coupon))
        .route("/coupon/remove", web::post().to(uncoupon))
        .route("/login", web::post().to(login))
        .route("/logout", web::post().to(logout))
        .route("/sessions", web::get().to(sessions))
        .route("/sessions/revoke", web::post().to(revoke))
        .route("/sessions/revoke-others", web::post().to(revoke_others))
        .route(
            "/api/catalogue",
            web::get().to(|| async { api::catalogue() }),
        )
        .route("/api/cart", web::get().to(api_cart))
        .route("/api/cart/items", web::post().to(api_add))
        .route("/api/cart/items/{sku}", web::delete().to(api_remove))
        .service(
            web::resource("/api/cart/coupon")
                .route(web::put().to(api_coupon))
                .route(web::delete().to(api_uncoupon)),
        )
        .route("/api/login", web::post().to(api_login))
        .route("/api/logout", web::post().to(api_logout))
        .route("/api/sessions", web::get().to(api_sessions))
        // Before `/api/sessions/{reference}`, which a POST would not match anyway.
        .route(
            "/api/sessions/revoke-others",
            web::post().to(api_revoke_others),
        )
        .route("/api/sessions/{reference}", web::delete().to(api_revoke))
        .route("/api/migrations", web::get().to(api_migrations))
        .route(
            "/metrics",
            web::get().to(|app: web::Data<AppState>| async move { ops::metrics(&app) }),
        );
}

impl Responder for Reply {
    type Body = String;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse<String> {
        let (status, header, body) = self.into_parts();
        let status =
            StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = HttpResponse::with_body(status, body);
        if let Some((name, value)) = header {
            response.headers_mut().insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        response
    }
}

type Answer = Result<Reply, SessionRejection>;
type State = web::Data<AppState>;

async fn page(
    app: State,
    session: SessionHandle,
    cart: Typed<Cart>,
    account: IfStored<Account>,
    flash: IfStored<Flash>,
) -> Answer {
    shop::page(
        &app,
        &session,
        cart,
        account.into_inner(),
        flash.into_inner(),
    )
    .await
}

async fn add(cart: Typed<Cart>, flash: Typed<Flash>, form: web::Form<SkuForm>) -> Reply {
    shop::add(cart, flash, &form)
}

async fn remove(cart: Typed<Cart>, flash: Typed<Flash>, form: web::Form<SkuForm>) -> Reply {
    shop::remove(cart, flash, &form)
}

async fn coupon(cart: Typed<Cart>, flash: Typed<Flash>, form: web::Form<CouponForm>) -> Reply {
    shop::coupon(cart, flash, &form)
}

async fn uncoupon(cart: Typed<Cart>) -> Reply {
    shop::uncoupon(cart)
}

async fn login(
    session: SessionHandle,
    account: Typed<Account>,
    flash: Typed<Flash>,
    form: web::Form<LoginForm>,
) -> Reply {
    shop::login(&session, account, flash, &form)
}

async fn logout(session: SessionHandle) -> Answer {
    shop::logout(&session)
}

async fn sessions(
    app: State,
    session: SessionHandle,
    account: IfStored<Account>,
    flash: IfStored<Flash>,
) -> Answer {
    shop::sessions(&app, &session, account.into_inner(), flash.into_inner()).await
}

async fn revoke(
    session: SessionHandle,
    flash: Typed<Flash>,
    form: web::Form<RevokeForm>,
) -> Answer {
    shop::revoke(&session, flash, &form).await
}

async fn revoke_others(session: SessionHandle, flash: Typed<Flash>) -> Answer {
    shop::revoke_others(&session, flash).await
}

async fn api_cart(cart: Typed<Cart>) -> Reply {
    api::get_cart(&cart)
}

async fn api_add(cart: Typed<Cart>, item: web::Json<api::AddItem>) -> Reply {
    api::add(cart, &item)
}

async fn api_remove(cart: Typed<Cart>, sku: web::Path<String>) -> Reply {
    api::remove(cart, &sku)
}

async fn api_coupon(cart: Typed<Cart>, body: web::Json<api::CouponCode>) -> Reply {
    api::put_coupon(cart, &body)
}

async fn api_uncoupon(cart: Typed<Cart>) -> Reply {
    api::delete_coupon(cart)
}

async fn api_login(
    session: SessionHandle,
    account: Typed<Account>,
    body: web::Json<api::User>,
) -> Reply {
    api::login(&session, account, &body)
}

async fn api_logout(session: SessionHandle) -> Reply {
    api::logout(&session)
}

async fn api_sessions(session: SessionHandle) -> Answer {
    api::sessions(&session).await
}

async fn api_revoke(session: SessionHandle, reference: web::Path<String>) -> Answer {
    api::revoke(&session, &reference).await
}

async fn api_revoke_others(session: SessionHandle) -> Answer {
    api::revoke_others(&session).await
}

async fn api_migrations(app: State) -> Reply {
    api::migrations(&app)
}
