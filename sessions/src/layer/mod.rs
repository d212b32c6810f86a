//! [`SessionLayer`]: the builder of a session configuration. The adapters (`tower.rs`,
//! `actix.rs`) wrap it around an app; the request's session (`crate::session`) does the work.

use std::sync::Arc;

use http::{HeaderName, Response};

mod backend;
mod outside;

pub use backend::{BackendBox, IntoBackend};

use crate::codec::Format;
use crate::cookie::CookieConfig;
use crate::csrf::Csrf;
use crate::errors::RegistryError;
use crate::events::SessionEvent;
use crate::expiry::{Clock, Expiry, SystemClock};
use crate::registry::Registry;
use crate::schema::Session;
use crate::session::{Config, SessionRejection, Transport};
#[cfg(doc)]
use crate::store::{CookieStore, SessionStore};

/// The session middleware: `SessionLayer::new(store).register::<Cart>()`.
///
/// * Lazy: a handler that extracts nothing costs no store call; the record is loaded at most
///   once per request.
/// * After the handler: nothing changed → no store write and no `Set-Cookie` (but for a due
///   expiry refresh); changes and a status below 500 → only the changes are saved, and the
///   cookie is set when needed, with `Cache-Control: no-store` unless the response has its own.
/// * A malformed, unknown or expired id starts a fresh session (and a `tracing` line that never
///   holds the id); a new session always gets a new id, never one the client chose.
/// * When a save fails (store down, cookie too large) the response becomes a 503 or 500: a
///   write the client was told succeeded is never lost silently.
/// * Register every session type a handler extracts ([`register`](Self::register)), in one
///   place; where each group of routes is built, [`expect`](Self::expect) the types its
///   handlers extract, so that a forgotten registration stops the app at start-up rather than
///   answering a 500 on the first request of a rare route.
///
/// ```
/// use sessions::prelude::*;
/// use sessions::{CookieConfig, Expiry, MemoryStore};
/// use std::time::Duration;
///
/// #[derive(Session, Default)]
/// #[session(name = "cart")]
/// struct Cart { items: Vec<String> }
///
/// let layer = SessionLayer::new(MemoryStore::new())
///     .register::<Cart>()
///     .cookie(CookieConfig::new().name("shop"))
///     .expiry(Expiry::idle(Duration::from_secs(3600)));
/// # let _ = layer;
/// ```
#[derive(Clone)]
pub struct SessionLayer {
    config: Arc<Config>,
}

impl SessionLayer {
    /// A layer over `store` (any [`SessionStore`], or a [`CookieStore`]), with the defaults:
    /// cookie `session` (HttpOnly, Secure, SameSite=Lax, Path=/), 24 hours idle expiry, JSON.
    ///
    /// ```
    /// use sessions::prelude::*;
    /// let layer = SessionLayer::new(MemoryStore::new());
    /// assert_eq!(layer.registry().types().count(), 0); // nothing registered yet
    /// ```
    pub fn new(store: impl IntoBackend) -> Self {
        Self {
            config: Arc::new(Config {
                backend: store.into_backend().0,
                registry: Registry::new(),
                cookie: CookieConfig::new(),
                transport: Transport::Cookie,
                expiry: Expiry::default(),
                format: Format::Json,
                clock: Arc::new(SystemClock),
                optimistic: false,
                max_sessions_per_owner: None,
                capture_agent: false,
                on_rejection: None,
                csrf: Csrf::default(),
                events: Default::default(),
                metrics: Default::default(),
            }),
        }
    }

    /// What the layer was configured with (each request's session holds a clone).
    pub(crate) fn config(&self) -> &Arc<Config> {
        &self.config
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// Registers a session type (its `migrate_from` chain comes along).
    ///
    /// # Panics
    /// When another type is registered under the same name: a mistake in the app's setup,
    /// reported when the app starts, not at the first request. [`try_register`](Self::try_register)
    /// returns it instead.
    ///
    /// ```
    /// use sessions::prelude::*;
    /// #[derive(Session, Default)] #[session(name = "cart")] struct Cart { n: u32 }
    /// let layer = SessionLayer::new(MemoryStore::new()).register::<Cart>();
    /// assert!(layer.registry().is_registered::<Cart>());
    /// ```
    pub fn register<T: Session>(self) -> Self {
        match self.try_register::<T>() {
            Ok(layer) => layer,
            Err(err) => panic!("{err}"),
        }
    }

    /// Checks, when the app starts, that `T` is registered: call it where the routes that
    /// extract `T` are built, so that a forgotten [`register`](Self::register) stops the app at
    /// start-up instead of answering a 500 on the first request of a rare route.
    ///
    /// # Panics
    /// When `T` is not registered; the message names the fix.
    ///
    /// ```
    /// use sessions::prelude::*;
    /// #[derive(Session, Default)] #[session(name = "cart")] struct Cart { n: u32 }
    /// #[derive(Session, Default)] #[session(name = "flash")] struct Flash { text: String }
    ///
    /// // Where the cart's routes are built: they extract `Typed<Cart>` and `Typed<Flash>`.
    /// fn cart_routes(layer: &SessionLayer) -> axum::Router {
    ///     layer.expect::<Cart>().expect::<Flash>();
    ///     axum::Router::new() // .route("/cart", post(add)) …
    /// }
    ///
    /// let layer = SessionLayer::new(MemoryStore::new()).register::<Cart>().register::<Flash>();
    /// let app = cart_routes(&layer).layer(layer.clone());
    /// # let _ = app;
    /// let forgot = SessionLayer::new(MemoryStore::new()).register::<Cart>();
    /// let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
    ///     forgot.expect::<Flash>();
    /// }));
    /// assert!(started.is_err()); // "… add `.register::<…Flash>()` to the SessionLayer"
    /// ```
    #[track_caller]
    pub fn expect<T: Session>(&self) -> &Self {
        if !self.config.registry.is_registered::<T>() {
            let rejection = SessionRejection::NotRegistered {
                name: T::NAME,
                rust_type: std::any::type_name::<T>(),
            };
            panic!("{rejection}");
        }
        self
    }

    /// Registers a session type, or says why it cannot be.
    ///
    /// ```
    /// # use sessions::prelude::*;
    /// # use sessions::MemoryStore;
    /// #[derive(Session, Default)] #[session(name = "cart")] struct A { n: u32 }
    /// #[derive(Session, Default)] #[session(name = "cart")] struct B { n: u32 }
    /// let layer = SessionLayer::new(MemoryStore::new()).try_register::<A>().unwrap();
    /// assert!(layer.try_register::<B>().is_err());
    /// ```
    pub fn try_register<T: Session>(mut self) -> Result<Self, RegistryError> {
        self.config_mut().registry.register::<T>()?;
        Ok(self)
    }

    /// The cookie's name and attributes.
    ///
    /// # Panics
    /// When the attributes are inconsistent (see [`CookieConfig::validate`]).
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{Request, Response, header::SET_COOKIE};
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use sessions::prelude::*;
    /// use sessions::CookieConfig;
    /// #[derive(Session, Default)] #[session(name = "cart")] struct Cart { n: u32 }
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let layer = SessionLayer::new(MemoryStore::new())
    ///     .register::<Cart>()
    ///     .cookie(CookieConfig::new().name("shop"));
    /// let app = layer.layer(service_fn(|request: Request<()>| async move {
    ///     let session = request.extensions().get::<SessionHandle>().unwrap().clone();
    ///     session.get_or_default::<Cart>().await.unwrap().set_n(1);
    ///     Ok::<_, Infallible>(Response::new(String::new()))
    /// }));
    /// let response = app.oneshot(Request::new(())).await.unwrap();
    /// assert!(response.headers()[SET_COOKIE].to_str().unwrap().starts_with("shop="));
    /// # });
    /// ```
    pub fn cookie(mut self, cookie: CookieConfig) -> Self {
        if let Err(err) = cookie.validate() {
            panic!("invalid session cookie configuration: {err}");
        }
        let config = self.config_mut();
        config.cookie = cookie;
        if matches!(config.transport, Transport::Header(_)) {
            config.transport = Transport::Cookie;
        }
        self
    }

    /// Carries the session id in a request and response header (`x-session-id` style, for
    /// APIs) instead of a cookie. Not for the cookie store.
    ///
    /// The client sends the id in that header; surrounding whitespace is trimmed, anything
    /// malformed or unknown is a fresh session. The response carries the header only when the
    /// id changes: on the response that creates the session, and on the one of a
    /// [`cycle_id()`](crate::SessionHandle::cycle_id) (keep the new value from then on). A
    /// save or an expiry refresh under the same id sends nothing (there is no `Max-Age` to
    /// move), and a [`destroy()`](crate::SessionHandle::destroy) sends the header with an empty
    /// value: forget the id. A flash written after the destroy goes into a new session, whose
    /// id then comes in the header instead of the empty value.
    ///
    /// A browser script reading the header from a cross-origin response needs the server to
    /// list it in `Access-Control-Expose-Headers` (e.g. `tower_http::cors::CorsLayer::
    /// expose_headers([name])`); without it, `fetch()` sees no header and every request starts
    /// a new session.
    ///
    /// ```
    /// # use sessions::prelude::*;
    /// # use sessions::MemoryStore;
    /// let layer = SessionLayer::new(MemoryStore::new())
    ///     .header(http::HeaderName::from_static("x-session-id"));
    /// # let _ = layer;
    /// ```
    pub fn header(mut self, name: HeaderName) -> Self {
        self.config_mut().transport = Transport::Header(name);
        self
    }

    /// One layer for a browser page and an API over the same sessions: a request that sends
    /// the header `name` is an API client's, and its session travels in that header (as with
    /// [`header`](Self::header)); every other request's travels in the cookie (as with
    /// [`cookie`](Self::cookie), whose settings apply). An API client asks for its first
    /// session by sending the header with an empty value.
    ///
    /// Each response answers the way its request came: a request with the header is answered
    /// in the header (never with a `Set-Cookie`), one without it in the cookie. The CSRF
    /// check applies to the cookie's requests only (a header is not sent by a browser on its
    /// own). The two are one session only if a client sends one of them: a browser's cookie
    /// and a script's header are two sessions.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{HeaderName, Request, Response, header::SET_COOKIE};
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use sessions::prelude::*;
    /// #[derive(Session, Default)] #[session(name = "cart")] struct Cart { n: u32 }
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let id_header = HeaderName::from_static("x-session-id");
    /// let layer = SessionLayer::new(MemoryStore::new())
    ///     .register::<Cart>()
    ///     .cookie_or_header(id_header.clone());
    /// let app = layer.layer(service_fn(|request: Request<()>| async move {
    ///     let session = request.extensions().get::<SessionHandle>().unwrap().clone();
    ///     session.get_or_default::<Cart>().await.unwrap().set_n(1);
    ///     Ok::<_, Infallible>(Response::new(String::new()))
    /// }));
    /// // A browser gets a cookie.
    /// let page = app.clone().oneshot(Request::new(())).await.unwrap();
    /// assert!(page.headers().contains_key(SET_COOKIE));
    /// // An API client sends the header (empty at first) and gets its id in it.
    /// let api = Request::builder().header(&id_header, "").body(()).unwrap();
    /// let api = app.oneshot(api).await.unwrap();
    /// assert!(!api.headers().contains_key(SET_COOKIE));
    /// assert!(!api.headers()[&id_header].is_empty());
    /// # });
    /// ```
    pub fn cookie_or_header(mut self, name: HeaderName) -> Self {
        self.config_mut().transport = Transport::CookieOrHeader(name);
        self
    }

    /// The expiry policy.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::time::Duration;
    /// use http::{Request, Response, header::SET_COOKIE};
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use sessions::prelude::*;
    /// use sessions::Expiry;
    /// #[derive(Session, Default)] #[session(name = "cart")] struct Cart { n: u32 }
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let layer = SessionLayer::new(MemoryStore::new())
    ///     .register::<Cart>()
    ///     .expiry(Expiry::idle(Duration::from_secs(3600)));
    /// let app = layer.layer(service_fn(|request: Request<()>| async move {
    ///     let session = request.extensions().get::<SessionHandle>().unwrap().clone();
    ///     session.get_or_default::<Cart>().await.unwrap().set_n(1);
    ///     Ok::<_, Infallible>(Response::new(String::new()))
    /// }));
    /// let response = app.oneshot(Request::new(())).await.unwrap();
    /// assert!(response.headers()[SET_COOKIE].to_str().unwrap().contains("Max-Age=3600"));
    /// # });
    /// ```
    pub fn expiry(mut self, expiry: Expiry) -> Self {
        self.config_mut().expiry = expiry;
        self
    }

    /// Optimistic concurrency, off by default (last writer wins). When on, every save carries
    /// the revision of each slot it changes as the request loaded it, and the store refuses the
    /// whole save with a [`Conflict`](crate::errors::Conflict) if another request changed that slot
    /// meanwhile: of two requests that change one session type concurrently, the second fails.
    /// A handler that wants to retry calls [`SessionHandle::save`](crate::SessionHandle::save) itself (then
    /// [`SessionHandle::reload`](crate::SessionHandle::reload) on a conflict); a conflict the layer meets after the handler
    /// turns the response into a `409 Conflict`. The unit is the slot (one session type): keep
    /// data that is changed independently in separate session types. Server-side stores only;
    /// a [`CookieStore`] session lives in each client's own cookie, so there is nothing shared to
    /// conflict over.
    ///
    /// ```
    /// use sessions::prelude::*;
    /// #[derive(Session, Default)] #[session(name = "cart")] struct Cart { n: u32 }
    /// let layer = SessionLayer::new(MemoryStore::new())
    ///     .register::<Cart>()
    ///     .optimistic_concurrency(true);
    /// # let _ = layer;
    /// ```
    ///
    /// # Panics
    /// On a layer over a [`CookieStore`], when `on`: it cannot be honoured there, and a setting
    /// that silently does nothing is a mistake found in production. The message says so.
    pub fn optimistic_concurrency(mut self, on: bool) -> Self {
        if on && matches!(self.config.backend, crate::session::Backend::Cookie(_)) {
            panic!(
                "optimistic_concurrency(true) cannot be honoured by a CookieStore: each client \
                 holds its own copy of the session in its cookie, so there is nothing shared to \
                 conflict over; remove the call, or use a server-side store"
            );
        }
        self.config_mut().optimistic = on;
        self
    }

    /// At most `n` sessions per owner (see `#[session(owner)]`): when a login binds one more,
    /// the oldest logins of that owner are ended, so that the `n` newest stay. Two logins at
    /// the same moment agree on which survive; a login whose own session is not among the `n`
    /// kept (a newer login won) is answered `409 Conflict` ("session ended") with no cookie,
    /// never as signed in.
    ///
    /// ```
    /// use sessions::prelude::*;
    /// let layer = SessionLayer::new(MemoryStore::new()).max_sessions_per_owner(3);
    /// # let _ = layer;
    /// ```
    ///
    /// On a [`CookieStore`] this needs its revocation list
    /// ([`CookieStore::revocations`]): each login lists its cookie there, and the oldest
    /// cookies beyond `n` stop opening.
    ///
    /// # Panics
    /// On a layer over a [`CookieStore`] without a revocation list, which cannot end a cookie,
    /// or over a store that cannot list the sessions of a user
    /// ([`SessionStore::lists_owners`](crate::SessionStore::lists_owners): `MemcachedStore`):
    /// the message says what to do.
    ///
    /// ```should_panic
    /// use sessions::{CookieStore, Key, SessionLayer};
    /// let cookies = CookieStore::new([Key::generate(1).unwrap()]).unwrap();
    /// let layer = SessionLayer::new(cookies).max_sessions_per_owner(3); // panics: no revocation list
    /// ```
    pub fn max_sessions_per_owner(mut self, n: usize) -> Self {
        if let crate::session::Backend::Cookie(cookies) = &self.config.backend
            && !cookies.revokes()
        {
            panic!(
                "max_sessions_per_owner({n}) cannot be honoured by a CookieStore without a \
                 revocation list (it cannot end a cookie): give the store one with \
                 `CookieStore::revocations(store)` (any server-side store), or use a \
                 server-side store"
            );
        }
        if let crate::session::Backend::Store(store) = &self.config.backend
            && !store.lists_owners()
        {
            panic!(
                "max_sessions_per_owner({n}) cannot be honoured by {} (it cannot list the \
                 sessions of a user: no owner index): use a store that keeps one (SQLite, \
                 PostgreSQL, MySQL, Redis, memory), or leave the cap off",
                store.name()
            );
        }
        self.config_mut().max_sessions_per_owner = Some(n.max(1));
        self
    }

    /// Records the `User-Agent` of the request that binds a session to an owner (a login), for
    /// a "where you are signed in" page. Off by default: the user agent is personal data a
    /// store then keeps for the session's life, and it helps fingerprint a user; turn it on
    /// when you show it to the user.
    ///
    /// ```
    /// use sessions::prelude::*;
    /// let layer = SessionLayer::new(MemoryStore::new()).capture_user_agent(true);
    /// # let _ = layer;
    /// ```
    pub fn capture_user_agent(mut self, on: bool) -> Self {
        self.config_mut().capture_agent = on;
        self
    }

    /// The CSRF protection of the requests whose session travels in the cookie:
    /// [`Csrf::default()`] (what a layer does without this call) refuses an unsafe request
    /// (not `GET`, `HEAD`, `OPTIONS`) that a page of another site sent, unless it carries a
    /// valid [`CsrfToken`](crate::csrf::CsrfToken); see [`sessions::csrf`](crate::csrf). A
    /// session whose id travels in a header ([`header`](Self::header)) is not checked: a page
    /// of another site cannot make a browser send it.
    ///
    /// ```
    /// use sessions::csrf::Csrf;
    /// use sessions::prelude::*;
    /// let layer = SessionLayer::new(MemoryStore::new())
    ///     .csrf(Csrf::default().trusted_origin("https://admin.shop.example").exempt("/webhooks"));
    /// # let _ = layer;
    /// ```
    pub fn csrf(mut self, csrf: Csrf) -> Self {
        self.config_mut().csrf = csrf;
        self
    }

    /// Shapes the response of every session rejection: an extractor's (`Typed<T>`,
    /// `SessionHandle`, …) and the layer's own when a handler's changes could not be stored
    /// ([`SessionRejection::NotSaved`]). The hook gets the rejection (log it, or match on it)
    /// and returns the response; the session's headers (a removal cookie, `Cache-Control`) are
    /// added to it. Without a hook the client gets [`SessionRejection::to_response`]: the status
    /// and a plain sentence, with the details in the log only.
    ///
    /// Under tower the body reaches the client when the service's body type is axum's `Body`,
    /// `String`, `Bytes`, `Vec<u8>` or `http_body_util::Full<Bytes>`; with another body type the
    /// response keeps the hook's status and headers and an empty body. actix-web takes any body.
    ///
    /// ```
    /// use sessions::prelude::*;
    /// use sessions::SessionRejection;
    ///
    /// let layer = SessionLayer::new(MemoryStore::new()).on_rejection(|rejection: &SessionRejection| {
    ///     let mut response = rejection.to_response();
    ///     if rejection.status() == http::StatusCode::SERVICE_UNAVAILABLE {
    ///         *response.body_mut() = "<h1>Back in a minute</h1>".into();
    ///         let html = http::HeaderValue::from_static("text/html; charset=utf-8");
    ///         response.headers_mut().insert(http::header::CONTENT_TYPE, html);
    ///     }
    ///     response
    /// });
    /// # let _ = layer;
    /// ```
    pub fn on_rejection(
        mut self,
        hook: impl Fn(&SessionRejection) -> Response<String> + Send + Sync + 'static,
    ) -> Self {
        self.config_mut().on_rejection = Some(Arc::new(hook));
        self
    }

    /// Calls `f` with what happens to sessions ([`SessionEvent`]: created, a login, a logout,
    /// a revocation, an ended session a request came with, a migration): for an audit log, or
    /// to close a user's websockets when their sessions are revoked. Callbacks add up (each
    /// call adds one).
    ///
    /// `f` never sees a session id. A request's events are told once its response is decided
    /// (after the handler and the save), in the order they happened; those of
    /// [`revoke_owner`](Self::revoke_owner) when it is done. `f` runs on the request's task:
    /// keep it short (send to a channel for slow work). It cannot fail the request: a panic
    /// in `f` is caught and logged at `error`, and the response goes out as decided.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::sync::{Arc, Mutex};
    /// use http::{Request, Response};
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use sessions::prelude::*;
    /// use sessions::SessionEvent;
    /// #[derive(Session, Default)] #[session(name = "cart")] struct Cart { n: u32 }
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let audit = seen.clone();
    /// let layer = SessionLayer::new(MemoryStore::new())
    ///     .register::<Cart>()
    ///     .on_event(move |event: &SessionEvent| audit.lock().unwrap().push(event.clone()));
    /// let app = layer.layer(service_fn(|request: Request<()>| async move {
    ///     let session = request.extensions().get::<SessionHandle>().unwrap().clone();
    ///     session.get_or_default::<Cart>().await.unwrap().set_n(1);
    ///     Ok::<_, Infallible>(Response::new(String::new()))
    /// }));
    /// app.oneshot(Request::new(())).await.unwrap();
    /// assert_eq!(*seen.lock().unwrap(), [SessionEvent::Created]);
    /// # });
    /// ```
    pub fn on_event(mut self, f: impl Fn(&SessionEvent) + Send + Sync + 'static) -> Self {
        self.config_mut().events.push(Arc::new(f));
        self
    }

    /// The codec changed fields are written in. Stored data in the other codec still loads.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{Request, Response, header::SET_COOKIE};
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use sessions::prelude::*;
    /// use sessions::{Format, SessionId};
    /// #[derive(Session, Default)] #[session(name = "cart")] struct Cart { n: u32 }
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let layer = SessionLayer::new(store.clone()).register::<Cart>().format(Format::Json);
    /// let app = layer.layer(service_fn(|request: Request<()>| async move {
    ///     let session = request.extensions().get::<SessionHandle>().unwrap().clone();
    ///     session.get_or_default::<Cart>().await.unwrap().set_n(1);
    ///     Ok::<_, Infallible>(Response::new(String::new()))
    /// }));
    /// let response = app.oneshot(Request::new(())).await.unwrap();
    /// let cookie = response.headers()[SET_COOKIE].to_str().unwrap();
    /// let id = SessionId::parse(&cookie["session=".len()..cookie.find(';').unwrap()]).unwrap();
    /// let stored = store.load(&id.key()).await.unwrap().unwrap().into_session().unwrap();
    /// assert_eq!(stored.record.slot("cart").unwrap().format(), Some(Format::Json));
    /// # });
    /// ```
    pub fn format(mut self, format: Format) -> Self {
        self.config_mut().format = format;
        self
    }

    /// The clock expiry is computed with (a [`ManualClock`](crate::clock::ManualClock) in tests).
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::time::Duration;
    /// use http::{Request, Response, header::SET_COOKIE};
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use sessions::prelude::*;
    /// use sessions::{Expiry, SessionId};
    /// use sessions::clock::{Clock, ManualClock};
    /// #[derive(Session, Default)] #[session(name = "cart")] struct Cart { n: u32 }
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let clock = ManualClock::new();
    /// let store = MemoryStore::with_clock(clock.clone());
    /// let layer = SessionLayer::new(store.clone())
    ///     .register::<Cart>()
    ///     .expiry(Expiry::idle(Duration::from_secs(60)))
    ///     .clock(clock.clone());
    /// let app = layer.layer(service_fn(|request: Request<()>| async move {
    ///     let session = request.extensions().get::<SessionHandle>().unwrap().clone();
    ///     session.get_or_default::<Cart>().await.unwrap().set_n(1);
    ///     Ok::<_, Infallible>(Response::new(String::new()))
    /// }));
    /// let response = app.oneshot(Request::new(())).await.unwrap();
    /// let cookie = response.headers()[SET_COOKIE].to_str().unwrap();
    /// let key = SessionId::parse(&cookie["session=".len()..cookie.find(';').unwrap()]).unwrap().key();
    /// let stored = store.load(&key).await.unwrap().unwrap().into_session().unwrap();
    /// assert_eq!(stored.deadline.expires_at, clock.now() + Duration::from_secs(60));
    /// clock.advance(Duration::from_secs(61));
    /// assert!(store.load(&key).await.unwrap().is_none()); // expired, without sleeping
    /// # });
    /// ```
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.config_mut().clock = Arc::new(clock);
        self
    }

    /// The registered types.
    ///
    /// ```
    /// use sessions::prelude::*;
    /// #[derive(Session, Default)] #[session(name = "cart", version = 3)] struct Cart { n: u32 }
    /// let layer = SessionLayer::new(MemoryStore::new()).register::<Cart>();
    /// assert_eq!(layer.registry().types().collect::<Vec<_>>(), [("cart", 3)]);
    /// ```
    pub fn registry(&self) -> &Registry {
        &self.config.registry
    }
}
