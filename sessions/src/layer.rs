//! [`SessionLayer`]: the tower middleware that loads sessions lazily and saves what changed.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderName, HeaderValue, Request, Response, StatusCode, header};

use crate::codec::Format;
use crate::cookie::CookieConfig;
use crate::error::RegistryError;
use crate::expiry::{Clock, Deadline, Expiry, SystemClock};
use crate::handle::{Action, Incoming, RequestSession, SessionHandle};
use crate::id::SessionId;
use crate::record::{Record, Slot};
use crate::registry::{MigrationCount, Registry};
use crate::schema::Session;
use crate::store::{CookieStore, SaveOutcome, SessionStore, StoreError};

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
            finish(&session, &mut response).await;
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

/// How many times a new session retries after an id collision (2^-256 each: this is for a
/// broken random source, which should fail loudly rather than loop).
const CREATE_ATTEMPTS: usize = 3;

/// After the handler: save what changed, set or clear the cookie, refresh the expiry.
async fn finish<B: Default>(session: &RequestSession, response: &mut Response<B>) {
    let config = &session.config;
    let must_load = {
        let pending = session.pending();
        pending.action == Action::Cycle || !pending.changes.is_empty()
    };
    if must_load {
        // cycle_id() needs the data it moves, and changes made without a load (set_expiry,
        // remove) need the session they change, even if no handler loaded it.
        let _ = session.load().await;
    }
    // Nothing extracted the session: nothing can have changed.
    let Some(Ok(loaded)) = session.loaded() else {
        if session.pending().action == Action::Destroy {
            // destroy() without a load: delete what the request points at.
            destroy(session, response).await;
        } else if let Some(Err(err)) = session.loaded()
            && must_load
            && !response.status().is_server_error()
        {
            // A cycle or change the store could not take must not look successful.
            save_failed(response, err);
        }
        return;
    };
    let (exists, stored_deadline, needs_reseal) =
        (loaded.exists, loaded.deadline, loaded.needs_reseal);

    let taken = {
        let mut pending = session.pending();
        match pending.encode_error.take() {
            Some(err) => Err(err),
            None => {
                // The policy may be stored in the record: read it before taking the record.
                let expiry = session.expiry(&pending);
                Ok((
                    pending.action,
                    std::mem::take(&mut pending.changes),
                    std::mem::take(&mut pending.record),
                    pending.new_id.take(),
                    expiry,
                ))
            }
        }
    };
    let (action, changes, record, new_id, expiry) = match taken {
        Ok(taken) => taken,
        Err(err) => {
            tracing::error!(target: "sessions", error = %err, "session change cannot be encoded; the response becomes a 500");
            fail(
                response,
                StatusCode::INTERNAL_SERVER_ERROR,
                "session change cannot be encoded",
            );
            return;
        }
    };

    if action == Action::Destroy {
        destroy(session, response).await;
        return;
    }
    let now = config.clock.now();
    let created_at = stored_deadline.map_or(now, |d| d.created_at);
    let deadline = expiry.deadline(created_at, now);
    let refresh_due = stored_deadline.is_some_and(|d| expiry.refresh_due(&d, now));
    let server_error = response.status().is_server_error();

    match &config.backend {
        Backend::Cookie(cookies) => {
            let changed = !changes.is_empty() || action == Action::Cycle;
            if server_error || !(changed || (exists && (needs_reseal || refresh_due))) {
                return;
            }
            let deadline = if changed || refresh_due {
                deadline
            } else {
                stored_deadline.unwrap_or(deadline)
            };
            if record.is_empty() {
                clear_cookie(config, response);
                return;
            }
            match cookies.seal(
                config.cookie.cookie_name(),
                &record,
                deadline,
                config.format,
            ) {
                Ok(token) => set_cookie(config, response, &token, &expiry, deadline, now),
                Err(err) => {
                    tracing::error!(target: "sessions", error = %err, "session cookie not set; the response becomes a 500");
                    fail(
                        response,
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "session cookie not set",
                    );
                }
            }
        }
        Backend::Store(store) => {
            let Incoming::Id(old_id) = &session.incoming else {
                if changes.is_empty() || server_error || record.is_empty() {
                    return;
                }
                create(
                    store.as_ref(),
                    config,
                    response,
                    &record,
                    deadline,
                    &expiry,
                    now,
                    None,
                )
                .await;
                return;
            };
            if action == Action::Cycle && !server_error {
                // Move the session as it is stored now, not as this request loaded it: a save
                // another request made meanwhile was acknowledged and must come along, and a
                // session destroyed meanwhile (logout) must not come back under a new id.
                let record = if exists {
                    match current_record(store.as_ref(), old_id, &changes).await {
                        Ok(Some(current)) => current,
                        Ok(None) => {
                            tracing::info!(
                                target: "sessions",
                                session_key = %old_id.key(),
                                "session ended while the request ran (logout or expiry); cycle_id and its changes are dropped"
                            );
                            return;
                        }
                        Err(err) => {
                            save_failed(response, &err);
                            return;
                        }
                    }
                } else {
                    record
                };
                if exists || !record.is_empty() {
                    let created = create(
                        store.as_ref(),
                        config,
                        response,
                        &record,
                        deadline,
                        &expiry,
                        now,
                        new_id,
                    )
                    .await;
                    if created
                        && exists
                        && let Err(err) = store.delete(&old_id.key()).await
                    {
                        tracing::error!(target: "sessions", error = %err, "old session not deleted after cycle_id");
                        fail(
                            response,
                            StatusCode::SERVICE_UNAVAILABLE,
                            "old session not deleted",
                        );
                    }
                }
                return;
            }
            if server_error || (changes.is_empty() && !refresh_due) {
                return;
            }
            if !exists {
                if !changes.is_empty() && !record.is_empty() {
                    create(
                        store.as_ref(),
                        config,
                        response,
                        &record,
                        deadline,
                        &expiry,
                        now,
                        None,
                    )
                    .await;
                }
                return;
            }
            match store.save(&old_id.key(), &changes, deadline).await {
                Ok(SaveOutcome::Saved) => {
                    // A save moves the deadline; a persistent cookie's Max-Age must move with
                    // it, or the browser drops a session the server still keeps alive.
                    let moved = stored_deadline.is_none_or(|d| d.expires_at != deadline.expires_at);
                    if refresh_due || (moved && !expiry.is_browser_session()) {
                        set_id(config, response, old_id, &expiry, deadline, now);
                    }
                }
                Ok(SaveOutcome::Missing) => {
                    tracing::info!(
                        target: "sessions",
                        session_key = %old_id.key(),
                        "session ended while the request ran (logout or expiry); its changes are dropped"
                    );
                }
                Err(err) => save_failed(response, &err),
            }
        }
    }
}

/// The record `cycle_id()` moves: the one stored under `id` now, with this request's changes
/// applied as a save would apply them; `None` when the session is gone. A change that no
/// longer fits (the slot was replaced meanwhile) is an error, as it is for a save.
async fn current_record(
    store: &dyn SessionStore,
    id: &SessionId,
    changes: &crate::record::Changeset,
) -> Result<Option<Record>, StoreError> {
    let Some(stored) = store.load(&id.key()).await? else {
        return Ok(None);
    };
    let mut record = stored.record;
    record.apply(changes)?;
    Ok(Some(record))
}

/// Files a new session under a fresh id and sets the cookie; whether it worked.
#[allow(clippy::too_many_arguments)]
async fn create<B: Default>(
    store: &dyn SessionStore,
    config: &Config,
    response: &mut Response<B>,
    record: &Record,
    deadline: Deadline,
    expiry: &Expiry,
    now: std::time::SystemTime,
    mut id: Option<SessionId>,
) -> bool {
    for _ in 0..CREATE_ATTEMPTS {
        let fresh = match id.take().map_or_else(SessionId::generate, Ok) {
            Ok(fresh) => fresh,
            Err(err) => {
                tracing::error!(target: "sessions", error = %err, "no session id");
                fail(response, StatusCode::INTERNAL_SERVER_ERROR, "no session id");
                return false;
            }
        };
        match store.create(&fresh.key(), record, deadline).await {
            Ok(()) => {
                set_id(config, response, &fresh, expiry, deadline, now);
                return true;
            }
            Err(StoreError::Collision) => {
                tracing::warn!(target: "sessions", "session id collision; drawing another");
            }
            Err(err) => {
                save_failed(response, &err);
                return false;
            }
        }
    }
    fail(
        response,
        StatusCode::INTERNAL_SERVER_ERROR,
        "session ids keep colliding: the random source is broken",
    );
    false
}

async fn destroy<B: Default>(session: &RequestSession, response: &mut Response<B>) {
    let config = &session.config;
    if let (Backend::Store(store), Incoming::Id(id)) = (&config.backend, &session.incoming)
        && let Err(err) = store.delete(&id.key()).await
    {
        tracing::error!(target: "sessions", error = %err, "session not destroyed");
        fail(
            response,
            StatusCode::SERVICE_UNAVAILABLE,
            "session not destroyed",
        );
        return;
    }
    if !matches!(session.incoming, Incoming::Nothing) {
        clear_cookie(config, response);
    }
}

fn save_failed<B: Default>(response: &mut Response<B>, err: &StoreError) {
    let status = match err {
        StoreError::Backend(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    tracing::error!(target: "sessions", error = %err, "session not saved; the response becomes a {}", status.as_u16());
    fail(response, status, "session not saved");
}

/// Replaces the response with an error: the handler's work was not saved, so it must not
/// look successful. `message` is fixed text for the client, never a backend's error (that
/// goes to the log).
fn fail<B: Default>(response: &mut Response<B>, status: StatusCode, message: &'static str) {
    let mut failed = Response::new(B::default());
    *failed.status_mut() = status;
    failed.headers_mut().insert(
        HeaderName::from_static("x-session-error"),
        HeaderValue::from_static(message),
    );
    *response = failed;
}

fn set_id<B>(
    config: &Config,
    response: &mut Response<B>,
    id: &SessionId,
    expiry: &Expiry,
    deadline: Deadline,
    now: std::time::SystemTime,
) {
    set_cookie(config, response, id.expose(), expiry, deadline, now);
}

fn set_cookie<B>(
    config: &Config,
    response: &mut Response<B>,
    value: &str,
    expiry: &Expiry,
    deadline: Deadline,
    now: std::time::SystemTime,
) {
    let headers = response.headers_mut();
    match &config.transport {
        Transport::Header(name) => {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(name.clone(), value);
            }
        }
        Transport::Cookie => {
            let max_age = (!expiry.is_browser_session())
                .then(|| deadline.remaining(now).max(Duration::from_secs(1)));
            headers.append(header::SET_COOKIE, config.cookie.set_cookie(value, max_age));
        }
    }
    no_store(headers);
}

fn clear_cookie<B>(config: &Config, response: &mut Response<B>) {
    let headers = response.headers_mut();
    match &config.transport {
        Transport::Header(name) => {
            headers.insert(name.clone(), HeaderValue::from_static(""));
        }
        Transport::Cookie => {
            headers.append(header::SET_COOKIE, config.cookie.removal());
        }
    }
    no_store(headers);
}

/// Responses that carry a session token must not be cached by shared caches.
fn no_store(headers: &mut http::HeaderMap) {
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

// ---- a session's own expiry policy, stored as the reserved slot `__expiry` ----------------

const EXPIRY_SLOT: &str = "__expiry";

/// The `__expiry` slot holding a session's own policy.
pub(crate) fn expiry_slot(expiry: &Expiry, format: Format) -> Option<Slot> {
    let secs = |d: Option<Duration>| d.map(|d| d.as_secs());
    let fields = [
        ("idle", format.encode(&secs(expiry.idle_time()))),
        ("absolute", format.encode(&secs(expiry.absolute_time()))),
        ("browser", format.encode(&expiry.is_browser_session())),
    ];
    let fields = fields
        .into_iter()
        .map(|(name, bytes)| bytes.ok().map(|b| (Cow::Borrowed(name), b)))
        .collect::<Option<Vec<_>>>()?;
    Some(Slot::new(EXPIRY_SLOT, 1, format, fields))
}

/// The policy stored in a record's `__expiry` slot, if any and readable.
pub(crate) fn stored_expiry(record: &Record) -> Option<Expiry> {
    let slot = record.slot(EXPIRY_SLOT)?;
    let format = slot.format()?;
    let read = |name: &str| -> Option<Option<u64>> { format.decode(slot.field(name)?).ok() };
    let idle = read("idle")?.map(Duration::from_secs);
    let absolute = read("absolute")?.map(Duration::from_secs);
    let browser: bool = format.decode(slot.field("browser")?).ok()?;
    let expiry = match (idle, absolute, browser) {
        (Some(idle), _, true) => Expiry::browser_session(idle),
        (Some(idle), Some(absolute), false) => Expiry::idle_and_absolute(idle, absolute),
        (Some(idle), None, false) => Expiry::idle(idle),
        (None, Some(absolute), _) => Expiry::absolute(absolute),
        (None, None, _) => return None,
    };
    Some(match absolute {
        Some(absolute) if browser => expiry.with_absolute(absolute),
        _ => expiry,
    })
}
