//! [`SessionLayer`]: the tower middleware that loads sessions lazily and saves what changed.

mod expiry_slot;
mod finish;

pub(crate) use expiry_slot::{expiry_slot, stored_expiry};

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderName, Request, Response};

use crate::codec::Format;
use crate::cookie::CookieConfig;
use crate::error::RegistryError;
use crate::expiry::{Clock, Expiry, SystemClock};
use crate::handle::{Incoming, RequestSession, SessionHandle};
use crate::id::SessionId;
use crate::registry::{MigrationCount, Registry};
use crate::schema::Session;
use crate::store::{CookieStore, SessionStore};

/// Where sessions are kept: a server-side store, or the cookie itself.
#[derive(Clone)]
pub(crate) enum Backend {
    Store(Arc<dyn SessionStore>),
    Cookie(CookieStore),
}

/// What [`SessionLayer::new`] takes: any [`SessionStore`], or a [`CookieStore`].
///
/// The cookie store carries the whole session in the cookie, so it has no id to file a record
/// under; it sits behind the same layer and extractors, not behind the `SessionStore` trait.
///
/// ```
/// use sessions::{IntoBackend, MemoryStore};
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
        BackendBox(Backend::Cookie(self))
    }
}

/// How the session id travels.
#[derive(Clone, Debug)]
pub(crate) enum Transport {
    Cookie,
    Header(HeaderName),
}

/// Everything the layer was configured with.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) backend: Backend,
    pub(crate) registry: Registry,
    pub(crate) cookie: CookieConfig,
    pub(crate) transport: Transport,
    pub(crate) expiry: Expiry,
    pub(crate) format: Format,
    pub(crate) clock: Arc<dyn Clock>,
    /// Saves carry the slot revisions they were made against (see `optimistic_concurrency`).
    pub(crate) optimistic: bool,
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
            }),
        }
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
    /// #[derive(Session, Default)] struct Cart { n: u32 }
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
    /// #[derive(Session, Default)] struct Cart { n: u32 }
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
    /// #[derive(Session, Default)] struct Cart { n: u32 }
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
    /// whole save with a [`Conflict`](crate::Conflict) if another request changed that slot
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
    /// #[derive(Session, Default)] struct Cart { n: u32 }
    /// let layer = SessionLayer::new(MemoryStore::new())
    ///     .register::<Cart>()
    ///     .optimistic_concurrency(true);
    /// # let _ = layer;
    /// ```
    pub fn optimistic_concurrency(mut self, on: bool) -> Self {
        self.config_mut().optimistic = on;
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
    /// #[derive(Session, Default)] struct Cart { n: u32 }
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
    /// let stored = store.load(&id.key()).await.unwrap().unwrap();
    /// assert_eq!(stored.record.slot("cart").unwrap().format(), Some(Format::Json));
    /// # });
    /// ```
    pub fn format(mut self, format: Format) -> Self {
        self.config_mut().format = format;
        self
    }

    /// The clock expiry is computed with (a [`ManualClock`](crate::ManualClock) in tests).
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::time::Duration;
    /// use http::{Request, Response, header::SET_COOKIE};
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use sessions::prelude::*;
    /// use sessions::{Clock, Expiry, ManualClock, SessionId};
    /// #[derive(Session, Default)] struct Cart { n: u32 }
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
    /// let stored = store.load(&key).await.unwrap().unwrap();
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
    /// use sessions::{Deadline, Format, MigrationCount, Record, SessionId, Slot};
    /// #[derive(Session, Default)] #[session(name = "cart", version = 1)] struct CartV1 { n: u32 }
    /// #[derive(Session, Default)] #[session(name = "cart", version = 2, migrate_from = CartV1)] struct Cart { n: u64 }
    /// impl From<CartV1> for Cart { fn from(v1: CartV1) -> Self { Cart { n: v1.n.into() } } }
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// // A session stored by an older deployment, at version 1.
    /// let store = MemoryStore::new();
    /// let id = SessionId::generate().unwrap();
    /// let mut record = Record::new();
    /// record.insert(Slot::new("cart", 1, Format::Json, vec![("n".into(), "2".into())]));
    /// let now = SystemTime::now();
    /// let deadline = Deadline { created_at: now, expires_at: now + Duration::from_secs(60) };
    /// store.create(&id.key(), &record, deadline).await.unwrap();
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
        let incoming = incoming(&self.config, request.headers());
        let session = Arc::new(RequestSession::new(self.config.clone(), incoming));
        request
            .extensions_mut()
            .insert(SessionHandle(session.clone()));
        // The clone is ready only if polled; swap so the instance that was polled is called.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let mut response = inner.call(request).await?;
            if !finish::nothing_to_do(&session, &response) {
                // Boxed: a read-only request's future stays small (and allocates less).
                Box::pin(finish::finish(&session, &mut response)).await;
            }
            Ok(response)
        })
    }
}

/// Reads the session id (or sealed cookie) the request carries.
fn incoming(config: &Config, headers: &http::HeaderMap) -> Incoming {
    let value = match &config.transport {
        Transport::Cookie => config.cookie.find(headers),
        Transport::Header(name) => headers.get(name).and_then(|v| v.to_str().ok()),
    };
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Incoming::Nothing;
    };
    match &config.backend {
        Backend::Cookie(_) => Incoming::Token(value.to_owned()),
        Backend::Store(_) => match SessionId::parse(value) {
            Some(id) => Incoming::Id(id),
            None => {
                tracing::warn!(
                    target: "sessions",
                    length = value.len(),
                    "malformed session id refused; starting a new session"
                );
                Incoming::Nothing
            }
        },
    }
}
