//! The actix-web side of the benches: the same cart and routes on actix-web, served by
//! `sessions` (`App::new().wrap(layer)`) and by actix-session 0.11, and a client that keeps
//! 1,000 sessions' cookies and calls the app in process (`actix_web::test::call_service`). The
//! `sessions` handlers are `http.rs`'s: a handler taking `Typed<Cart>` is one on both frameworks.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use actix_session::storage::SessionStore as ActixStore;
use actix_session::{Session as ActixSession, SessionMiddleware, config::PersistentSession};
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::{COOKIE, HeaderValue, SET_COOKIE};
use actix_web::{App, Error, test, web};
use sessions::prelude::*;

use super::suite::Requests;
use super::{
    CREATE, CartPlain, W1, W2, full_cart_plain, now_unix, sessions_create, sessions_w1, sessions_w2,
};

// ---- the sessions app -------------------------------------------------------------------------

/// A client of the cart routes on actix-web behind `layer`, with `n` sessions created.
pub(crate) async fn sessions(layer: SessionLayer, n: usize) -> Box<dyn Requests> {
    let app = test::init_service(
        App::new()
            .wrap(layer)
            .route(CREATE, web::get().to(sessions_create))
            .route(W1, web::get().to(sessions_w1))
            .route(W2, web::get().to(sessions_w2)),
    )
    .await;
    Box::new(ActixClient::new(app, n).await)
}

// ---- the actix-session app --------------------------------------------------------------------

const KEY: &str = "cart";

async fn actix_create(session: ActixSession) -> Result<String, Error> {
    let cart = full_cart_plain();
    session.insert(KEY, &cart)?;
    Ok(cart.visits.to_string())
}

async fn actix_w1(session: ActixSession) -> Result<String, Error> {
    let mut cart: CartPlain = session.get(KEY)?.unwrap_or_default();
    cart.visits += 1;
    cart.last_seen_unix = now_unix();
    session.insert(KEY, &cart)?;
    Ok(cart.visits.to_string())
}

async fn actix_w2(session: ActixSession) -> Result<String, Error> {
    let cart: CartPlain = session.get(KEY)?.unwrap_or_default();
    Ok(cart.visits.to_string())
}

/// A client of the cart routes on actix-web behind actix-session over `store`, its defaults
/// (a private, encrypted cookie) but for the lifecycle: a persistent cookie and 24 hours of
/// inactivity, as `sessions`' default expiry (so both set the cookie on W1).
pub(crate) async fn actix_session<S: ActixStore + 'static>(
    store: S,
    n: usize,
) -> Box<dyn Requests> {
    let lifecycle =
        PersistentSession::default().session_ttl(actix_web::cookie::time::Duration::hours(24));
    let middleware = SessionMiddleware::builder(store, actix_web::cookie::Key::generate())
        .session_lifecycle(lifecycle)
        .build();
    let app = test::init_service(
        App::new()
            .wrap(middleware)
            .route(CREATE, web::get().to(actix_create))
            .route(W1, web::get().to(actix_w1))
            .route(W2, web::get().to(actix_w2)),
    )
    .await;
    Box::new(ActixClient::new(app, n).await)
}

/// W0: the same routes with no session middleware, sent the cookies of `other`.
pub(crate) async fn floor(other: &dyn Requests) -> Box<dyn Requests> {
    let cookies = other
        .cookies()
        .iter()
        .map(|c| HeaderValue::from_bytes(c).expect("a cookie pair"))
        .collect();
    async fn answer() -> String {
        17u64.to_string()
    }
    let app = test::init_service(
        App::new()
            .route(CREATE, web::get().to(answer))
            .route(W1, web::get().to(answer))
            .route(W2, web::get().to(answer)),
    )
    .await;
    Box::new(ActixClient {
        app: Rc::new(app),
        cookies,
        next: 0,
    })
}

// ---- the client -------------------------------------------------------------------------------

/// One actix app and its sessions' cookies, used round-robin.
pub(crate) struct ActixClient<S> {
    app: Rc<S>,
    /// `name=value` of each session's cookie.
    pub(crate) cookies: Vec<HeaderValue>,
    next: usize,
}

/// `name=value` of a `Set-Cookie` value.
fn cookie_pair(set_cookie: &HeaderValue) -> HeaderValue {
    let bytes = set_cookie.as_bytes();
    let end = bytes.iter().position(|&b| b == b';').unwrap_or(bytes.len());
    HeaderValue::from_bytes(&bytes[..end]).expect("a cookie pair")
}

impl<S, B> ActixClient<S>
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    /// Creates `n` sessions through `app`'s `/create` and keeps their cookies.
    async fn new(app: S, n: usize) -> Self {
        let mut client = Self {
            app: Rc::new(app),
            cookies: Vec::with_capacity(n),
            next: 0,
        };
        for _ in 0..n {
            let (_, set) = client.send(CREATE, None).await;
            client
                .cookies
                .push(set.expect("/create sets the session cookie"));
        }
        client.check().await;
        client
    }

    /// Sends one request and reads the whole body; returns the `Set-Cookie` pair, if any.
    async fn send(
        &self,
        path: &'static str,
        cookie: Option<&HeaderValue>,
    ) -> (web::Bytes, Option<HeaderValue>) {
        let mut request = test::TestRequest::get().uri(path);
        if let Some(cookie) = cookie {
            request = request.insert_header((COOKIE, cookie.clone()));
        }
        let response = test::call_service(&*self.app, request.to_request()).await;
        assert!(response.status().is_success(), "{path} failed");
        let set = response.headers().get(SET_COOKIE).map(cookie_pair);
        (test::read_body(response).await, set)
    }

    /// One request to `path` with the next session's cookie; keeps a changed cookie.
    async fn request(&mut self, path: &'static str) -> web::Bytes {
        let i = self.next;
        self.next = (i + 1) % self.cookies.len();
        let (body, set) = self.send(path, Some(&self.cookies[i])).await;
        if let Some(set) = set
            && set != self.cookies[i]
        {
            self.cookies[i] = set;
        }
        body
    }

    /// Checks that every session is live: W2 answers `visits >= 1` for each.
    async fn check(&mut self) {
        for _ in 0..self.cookies.len() {
            let body = self.request(W2).await;
            let visits: u64 = std::str::from_utf8(&body)
                .ok()
                .and_then(|s| s.parse().ok())
                .expect("W2 answers a number");
            assert!(visits >= 1, "a pre-created session was not found");
        }
    }
}

impl<S, B> Requests for ActixClient<S>
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    fn run<'a>(
        &'a mut self,
        path: &'static str,
        n: usize,
    ) -> Pin<Box<dyn Future<Output = ()> + 'a>> {
        Box::pin(async move {
            for _ in 0..n {
                std::hint::black_box(self.request(path).await);
            }
        })
    }

    fn cookies(&self) -> Vec<Vec<u8>> {
        self.cookies.iter().map(|c| c.as_bytes().to_vec()).collect()
    }
}
