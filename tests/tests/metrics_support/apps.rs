//! The shop's routes in both frameworks, behind one layer: a cart, a login (the owner field
//! and a new id), a slow write that waits at a gate, "sign out my other sessions", a logout,
//! and a route that asks for a type the app forgot to register.

use std::sync::Arc;

use sessions::SessionRejection;
use sessions::clock::ManualClock;
use sessions::prelude::*;
use sessions::testing::{TestClient, Transport};
use tokio::sync::Notify;

/// The cart, at version 2; an older deployment stored [`CartV1`].
#[derive(Session, Default, Debug)]
#[session(name = "cart", version = 2, migrate_from = CartV1)]
pub(crate) struct Cart {
    pub(crate) items: Vec<String>,
}

#[derive(Session, Default, Debug)]
#[session(name = "cart", version = 1)]
pub(crate) struct CartV1 {
    pub(crate) items: Vec<String>,
}

impl From<CartV1> for Cart {
    fn from(old: CartV1) -> Self {
        Cart { items: old.items }
    }
}

/// Who is signed in.
#[derive(Session, Default, Debug)]
#[session(name = "auth")]
pub(crate) struct Auth {
    #[session(owner)]
    pub(crate) user_id: Option<u64>,
}

/// A type no layer registers.
#[derive(Session, Default, Debug)]
#[session(name = "forgotten")]
pub(crate) struct Forgotten {
    pub(crate) n: u32,
}

/// The shop's layer over `store`: optimistic concurrency on (a lost race is a 409), on `clock`.
pub(crate) fn layer(store: impl sessions::IntoBackend, clock: ManualClock) -> SessionLayer {
    SessionLayer::new(store)
        .register::<Cart>()
        .register::<Auth>()
        .optimistic_concurrency(true)
        .clock(clock)
}

/// Where the slow write waits: it says when it has loaded the cart, and goes on when told.
#[derive(Clone, Default)]
pub(crate) struct Gate(Arc<(Notify, Notify)>);

impl Gate {
    pub(crate) async fn loaded(&self) {
        self.0.0.notified().await;
    }

    pub(crate) fn go(&self) {
        self.0.1.notify_one();
    }

    async fn wait(&self) {
        self.0.0.notify_one();
        self.0.1.notified().await;
    }
}

/// A framework serving the routes.
pub(crate) trait Framework {
    /// A browser (a cookie jar of its own) of the routes behind `layer`; the slow route waits
    /// at `gate`.
    fn serve(
        layer: SessionLayer,
        gate: Gate,
    ) -> impl Future<Output = TestClient<impl Transport + Clone + 'static>>;
}

fn show(cart: Option<Typed<Cart>>) -> String {
    cart.map_or_else(|| "no cart".to_owned(), |cart| cart.items().join(","))
}

fn add(mut cart: Typed<Cart>, sku: String) -> String {
    cart.items_mut().push(sku);
    "added".to_owned()
}

fn login(session: SessionHandle, mut auth: Typed<Auth>, user: u64) -> String {
    auth.set_user_id(Some(user));
    session.cycle_id();
    "signed in".to_owned()
}

async fn slow(gate: Gate, mut cart: Typed<Cart>, sku: String) -> String {
    gate.wait().await;
    cart.items_mut().push(sku);
    "added".to_owned()
}

async fn revoke_others(session: SessionHandle) -> Result<String, SessionRejection> {
    Ok(session.revoke_others().await?.to_string())
}

fn logout(session: SessionHandle) -> String {
    session.destroy();
    "bye".to_owned()
}

/// axum.
pub(crate) struct Axum;

impl Framework for Axum {
    async fn serve(
        layer: SessionLayer,
        gate: Gate,
    ) -> TestClient<impl Transport + Clone + 'static> {
        use axum::extract::Path;
        use axum::routing::{get, post};
        let router = axum::Router::new()
            .route(
                "/cart",
                get(|cart: Option<Typed<Cart>>| async move { show(cart) }),
            )
            .route(
                "/cart/{sku}",
                post(|cart: Typed<Cart>, Path(sku): Path<String>| async move { add(cart, sku) }),
            )
            .route(
                "/login/{user}",
                post(
                    |session: SessionHandle, auth: Typed<Auth>, Path(user): Path<u64>| async move {
                        login(session, auth, user)
                    },
                ),
            )
            .route(
                "/slow/{sku}",
                post(move |cart: Typed<Cart>, Path(sku): Path<String>| {
                    let gate = gate.clone();
                    async move { slow(gate, cart, sku).await }
                }),
            )
            .route("/revoke-others", post(revoke_others))
            .route(
                "/logout",
                post(|session: SessionHandle| async move { logout(session) }),
            )
            .route(
                "/unregistered",
                get(|forgotten: Typed<Forgotten>| async move { forgotten.n().to_string() }),
            );
        TestClient::new(router.layer(layer))
    }
}

/// actix-web.
pub(crate) struct Actix;

impl Framework for Actix {
    async fn serve(
        layer: SessionLayer,
        gate: Gate,
    ) -> TestClient<impl Transport + Clone + 'static> {
        use actix_web::web;
        use sessions::actix::IfStored;
        type Param<T> = web::Path<T>;
        let app = actix_web::App::new()
            .app_data(web::Data::new(gate))
            .wrap(layer)
            .route(
                "/cart",
                web::get().to(|cart: IfStored<Cart>| async move { show(cart.0) }),
            )
            .route(
                "/cart/{sku}",
                web::post().to(|cart: Typed<Cart>, sku: Param<String>| async move {
                    add(cart, sku.into_inner())
                }),
            )
            .route(
                "/login/{user}",
                web::post().to(
                    |session: SessionHandle, auth: Typed<Auth>, user: Param<u64>| async move {
                        login(session, auth, user.into_inner())
                    },
                ),
            )
            .route(
                "/slow/{sku}",
                web::post().to(
                    |gate: web::Data<Gate>, cart: Typed<Cart>, sku: Param<String>| async move {
                        slow(gate.get_ref().clone(), cart, sku.into_inner()).await
                    },
                ),
            )
            .route("/revoke-others", web::post().to(revoke_others))
            .route(
                "/logout",
                web::post().to(|session: SessionHandle| async move { logout(session) }),
            )
            .route(
                "/unregistered",
                web::get()
                    .to(|forgotten: Typed<Forgotten>| async move { forgotten.n().to_string() }),
            );
        TestClient::actix(actix_web::test::init_service(app).await)
    }
}
