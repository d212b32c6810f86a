//! [`SessionLayer`]: the builder of a session configuration, and the tower middleware that
//! wraps it around a service. The request's session itself (`crate::session`) knows no
//! framework; this file only reads a request's headers into it and writes its outcome into the
//! response.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderName, Request, Response, header::COOKIE};

use crate::codec::Format;
use crate::cookie::CookieConfig;
use crate::errors::RegistryError;
use crate::expiry::{Clock, Expiry, SystemClock};
use crate::registry::{MigrationCount, Registry};
use crate::schema::Session;
use crate::session::{
    Backend, Config, OwnedSession, Rejected, RequestSession, SessionHandle, SessionRejection,
    Source, Transport,
};
use crate::store::{CookieStore, SessionStore, StoreError};

/// What [`SessionLayer::new`] takes: any [`SessionStore`], or a [`CookieStore`].
///
/// The cookie store carries the whole session in the cookie, so it has no id to file a record
/// under; it sits behind the same layer and extractors, not behind the `SessionStore` trait.
///
/// ```
/// use sessions::MemoryStore;
/// use sessions::IntoBackend;
/// fn takes(_: impl IntoBackend) {}
/// takes(MemoryStore::new());
/// ```
pub trait IntoBackend {
    #[doc(hidden)]
    fn into_backend(self) -> BackendBox;
}

/// The opaque result of [`IntoBackend`].
#[doc(hidden)]
pub struct BackendBox(pub(crate) Backend);

impl<S: SessionStore> IntoBackend for S {
    fn into_backend(self) -> BackendBox {
        BackendBox(Backend::Store(Arc::new(self)))
    }
}

impl IntoBackend for CookieStore {
    fn into_backend(self) -> BackendBox {
        BackendBox(Backend::Cookie(Arc::new(self)))
    }
}

/// A store chosen at run time: `SessionLayer::new(choice)`, where `choice` is the
/// [`into_backend`](IntoBackend::into_backend) of whichever store the configuration named.
impl IntoBackend for BackendBox {
    fn into_backend(self) -> BackendBox {
        self
    }
}

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
            }),
        }
    }

    /// What the layer was configured with.
    #[cfg(any(feature = "actix", feature = "testing"))]
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// The configuration, shared (each request's session holds it).
    #[cfg(feature = "actix")]
    pub(crate) fn config_arc(&self) -> Arc<Config> {
        self.config.clone()
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
        config.transport = Transport::Cookie;
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
    /// A handler that wants to retry calls [`SessionHandle::save`] itself (then
    /// [`SessionHandle::reload`] on a conflict); a conflict the layer meets after the handler
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
    pub fn optimistic_concurrency(mut self, on: bool) -> Self {
        self.config_mut().optimistic = on;
        self
    }

    /// At most `n` sessions per owner (see `#[session(owner)]`): when a login binds one more,
    /// the oldest logins of that owner are ended, so that the `n` newest stay. Two logins at
    /// the same moment agree on which survive; a login whose own session is not among the `n`
    /// kept (a newer login won) is answered `409 Conflict` ("session ended") with no cookie,
    /// never as signed in. Server-side stores only.
    ///
    /// ```
    /// use sessions::prelude::*;
    /// let layer = SessionLayer::new(MemoryStore::new()).max_sessions_per_owner(3);
    /// # let _ = layer;
    /// ```
    pub fn max_sessions_per_owner(mut self, n: usize) -> Self {
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

    /// The live sessions of `owner` (as rendered: `"42"` for `user_id: Some(42)`), newest login
    /// first: for admin pages and jobs, outside a request. One indexed lookup in every store of
    /// this crate. A clone of the layer kept outside the router reaches the same store.
    ///
    /// ```
    /// use sessions::prelude::*;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let layer = SessionLayer::new(MemoryStore::new());
    /// assert!(layer.sessions_of("42").await.unwrap().is_empty());
    /// # });
    /// ```
    pub async fn sessions_of(&self, owner: &str) -> Result<Vec<OwnedSession>, StoreError> {
        crate::session::list_owned(&self.config, owner).await
    }

    /// Ends every session of `owner` (after an admin resets a password, say); how many ended.
    /// For a `CookieStore` this needs its revocation list (`CookieStore::revocations`).
    ///
    /// ```
    /// use sessions::prelude::*;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let layer = SessionLayer::new(MemoryStore::new());
    /// assert_eq!(layer.revoke_owner("42").await.unwrap(), 0);
    /// # });
    /// ```
    pub async fn revoke_owner(&self, owner: &str) -> Result<usize, StoreError> {
        crate::session::revoke_owned(&self.config, owner).await
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

    /// How many stored slots were migrated, by type and old version (see [`Registry::migration_counts`]).
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::time::{Duration, SystemTime};
    /// use http::{Request, Response, header::COOKIE};
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use sessions::prelude::*;
    /// use sessions::{Format, SessionId};
    /// use sessions::store::{Deadline, Record, Slot};
    /// use sessions::migrate::MigrationCount;
    /// #[derive(Session, Default)] #[session(name = "cart", version = 1)] struct CartV1 { n: u32 }
    /// #[derive(Session, Default)] #[session(name = "cart", version = 2, migrate_from = CartV1)] struct Cart { n: u64 }
    /// impl From<CartV1> for Cart { fn from(v1: CartV1) -> Self { Cart { n: v1.n.into() } } }
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// // A session stored by an older deployment, at version 1.
    /// let store = MemoryStore::new();
    /// let mut record = Record::new();
    /// record.insert(Slot::new("cart", 1, Format::Json, vec![("n".into(), "2".into())]));
    /// let now = SystemTime::now();
    /// let deadline = Deadline { created_at: now, expires_at: now + Duration::from_secs(60) };
    /// let id = sessions::store::create_session(&store, record, deadline).await.unwrap();
    ///
    /// let layer = SessionLayer::new(store).register::<Cart>();
    /// assert!(layer.migration_counts().is_empty());
    /// let app = layer.clone().layer(service_fn(|request: Request<()>| async move {
    ///     let session = request.extensions().get::<SessionHandle>().unwrap().clone();
    ///     assert_eq!(*session.get::<Cart>().await.unwrap().unwrap().n(), 2);
    ///     Ok::<_, Infallible>(Response::new(String::new()))
    /// }));
    /// let request = Request::builder().header(COOKIE, format!("session={}", id.expose())).body(()).unwrap();
    /// app.oneshot(request).await.unwrap();
    /// assert_eq!(
    ///     layer.migration_counts(),
    ///     [MigrationCount { type_name: "cart", from_version: 1, to_version: 2, count: 1 }]
    /// );
    /// # });
    /// ```
    pub fn migration_counts(&self) -> Vec<MigrationCount> {
        self.config.registry.migration_counts()
    }
}

impl<S> tower_layer::Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> SessionService<S> {
        SessionService {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service [`SessionLayer`] wraps around the app.
///
/// ```
/// use std::convert::Infallible;
/// use http::{Request, Response};
/// use tower::{Layer, service_fn};
/// use sessions::prelude::*;
/// use sessions::SessionService;
/// let app = service_fn(|_: Request<()>| async { Ok::<_, Infallible>(Response::new(String::new())) });
/// let service: SessionService<_> = SessionLayer::new(MemoryStore::new()).layer(app);
/// assert_eq!(format!("{service:?}"), "SessionService { .. }");
/// ```
#[derive(Clone)]
pub struct SessionService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> std::fmt::Debug for SessionService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionService").finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> tower_service::Service<Request<ReqBody>> for SessionService<S>
where
    S: tower_service::Service<Request<ReqBody>, Response = Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResBody>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let config = &self.config;
        let headers = request.headers();
        let source = Source::read(
            config,
            headers.get_all(COOKIE).iter().map(|value| value.as_bytes()),
            config
                .id_header()
                .and_then(|name| headers.get(name))
                .map(|value| value.as_bytes()),
        );
        let agent = config
            .capture_agent
            .then(|| headers.get(http::header::USER_AGENT))
            .flatten()
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let session = Arc::new(RequestSession::new(config.clone(), source, agent));
        request
            .extensions_mut()
            .insert(SessionHandle(session.clone()));
        // The clone is ready only if polled; swap so the instance that was polled is called.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let mut response = inner.call(request).await?;
            let config = &session.config;
            let outcome = match session.after(response.status()) {
                Some(work) => Some(work.await),
                None => None,
            };
            if let Some(failure) = outcome.as_ref().and_then(|outcome| outcome.failure) {
                response = with_body(config.rejection_response(&failure.into()));
            } else if config.on_rejection.is_some()
                && let Some(Rejected(rejection)) = response.extensions().get::<Rejected>()
            {
                response = with_body(config.rejection_response(rejection));
            }
            if let Some(outcome) = outcome {
                outcome.write_headers(config, response.headers_mut());
            }
            Ok(response)
        })
    }
}

/// A rejection's response in the service's body type (see [`SessionLayer::on_rejection`]).
fn with_body<B: Default + 'static>(response: Response<String>) -> Response<B> {
    let (parts, text) = response.into_parts();
    Response::from_parts(parts, body_of(text))
}

/// `text` as a `B`, for the body types that can hold it; an empty `B` for the others.
fn body_of<B: Default + 'static>(text: String) -> B {
    let mut body: Option<B> = None;
    let slot: &mut dyn std::any::Any = &mut body;
    if let Some(slot) = slot.downcast_mut::<Option<String>>() {
        *slot = Some(text);
    } else if let Some(slot) = slot.downcast_mut::<Option<bytes::Bytes>>() {
        *slot = Some(text.into());
    } else if let Some(slot) = slot.downcast_mut::<Option<Vec<u8>>>() {
        *slot = Some(text.into());
    } else {
        dependency_body(slot, text);
    }
    body.unwrap_or_default()
}

/// The body types of the optional dependencies.
fn dependency_body(slot: &mut dyn std::any::Any, text: String) {
    #[cfg(feature = "axum")]
    if let Some(slot) = slot.downcast_mut::<Option<axum::body::Body>>() {
        *slot = Some(text.into());
        return;
    }
    #[cfg(feature = "testing")]
    if let Some(slot) = slot.downcast_mut::<Option<http_body_util::Full<bytes::Bytes>>>() {
        *slot = Some(text.into());
        return;
    }
    let _ = (slot, text);
}

#[cfg(test)]
mod tests {
    use super::body_of;

    #[test]
    fn a_rejection_text_goes_into_the_body_types_that_hold_text() {
        assert_eq!(body_of::<String>("sorry".into()), "sorry");
        assert_eq!(body_of::<bytes::Bytes>("sorry".into()), "sorry");
        assert_eq!(body_of::<Vec<u8>>("sorry".into()), b"sorry");
        // Any other body type gets its empty value: the status and headers still tell.
        body_of::<()>("sorry".into());
    }
}
