//! Helpers shared by the HTTP flow tests: requests through a real axum `Router` (no network),
//! a store wrapper that counts and records what the layer asks of the real `MemoryStore`, the
//! cookies of a response, and captured `tracing` output.
#![allow(dead_code)]

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::routing::{get, post};
use http::{HeaderMap, HeaderName, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use sessions::prelude::*;
use sessions::{Changeset, Deadline, Record, SessionId, SessionKey, StoreError, Stored};
use sessions::{SaveOutcome, SlotChange};
use tower::ServiceExt;

// ---- session types and the app -------------------------------------------------------------

/// A cart: the session type most tests use.
#[derive(Session, Default, Debug, Clone, PartialEq)]
#[session(name = "cart", version = 1)]
pub(crate) struct Cart {
    pub(crate) items: Vec<String>,
    pub(crate) coupon: Option<String>,
    pub(crate) visits: u32,
}

/// A second slot, to show that slots are loaded and saved together.
#[derive(Session, Default, Debug, Clone, PartialEq)]
#[session(name = "prefs", version = 1)]
pub(crate) struct Prefs {
    pub(crate) dark: bool,
    pub(crate) lang: String,
}

/// What `GET /cart` answers when nothing is stored.
pub(crate) const NO_CART: &str = "no cart";

/// How a cart reads in a response body.
pub(crate) fn show(cart: &Cart) -> String {
    format!(
        "items={} coupon={} visits={}",
        cart.items.join(","),
        cart.coupon.as_deref().unwrap_or("-"),
        cart.visits
    )
}

async fn read_cart(cart: Option<Typed<Cart>>) -> String {
    match cart {
        Some(cart) => show(cart.value()),
        None => NO_CART.to_owned(),
    }
}

async fn add_item(mut cart: Typed<Cart>, Path(sku): Path<String>) -> String {
    cart.items_mut().push(sku);
    show(cart.value())
}

async fn set_coupon(mut cart: Typed<Cart>, Path(code): Path<String>) -> String {
    cart.set_coupon(Some(code));
    show(cart.value())
}

async fn nothing() -> &'static str {
    "no session here"
}

/// Extracts two slots and the handle, asks for the id, changes nothing.
async fn read_all(
    cart: Typed<Cart>,
    prefs: Typed<Prefs>,
    session: SessionHandle,
) -> Result<String, sessions::SessionRejection> {
    let id = session.id().await?;
    Ok(format!(
        "{} dark={} lang={} stored={}",
        show(cart.value()),
        prefs.dark(),
        prefs.lang(),
        id.is_some()
    ))
}

/// Writes two slots in one handler.
async fn write_both(mut cart: Typed<Cart>, mut prefs: Typed<Prefs>) -> &'static str {
    cart.items_mut().push("both".to_owned());
    prefs.set_dark(true);
    prefs.set_lang("fr".to_owned());
    "both written"
}

async fn read_prefs(prefs: Option<Typed<Prefs>>) -> String {
    match prefs {
        Some(prefs) => format!("dark={} lang={}", prefs.dark(), prefs.lang()),
        None => "no prefs".to_owned(),
    }
}

async fn login(session: SessionHandle, mut cart: Typed<Cart>) -> &'static str {
    *cart.visits_mut() += 1;
    session.cycle_id();
    "logged in"
}

async fn logout(session: SessionHandle) -> &'static str {
    session.destroy();
    "bye"
}

/// Changes the cart, then fails: the change must not be saved.
async fn add_then_fail(mut cart: Typed<Cart>, Path(sku): Path<String>) -> (StatusCode, String) {
    cart.items_mut().push(sku);
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "the handler failed".to_owned(),
    )
}

/// The routes most tests use; the caller adds the layer (or not).
///
/// | route | does |
/// |---|---|
/// | `GET /cart` | reads the cart (`Option<Typed<Cart>>`), changes nothing |
/// | `POST /cart/{sku}` | pushes an item |
/// | `POST /coupon/{code}` | sets only the coupon |
/// | `GET /nothing` | extracts nothing |
/// | `GET /all` | extracts cart, prefs and the handle, asks for the id, changes nothing |
/// | `POST /all` | writes cart and prefs |
/// | `GET /prefs` | reads prefs (`Option`) |
/// | `POST /login` | bumps visits and cycles the id |
/// | `POST /logout` | destroys the session |
/// | `POST /fail/{sku}` | pushes an item, then answers 500 |
pub(crate) fn routes() -> Router {
    Router::new()
        .route("/cart", get(read_cart))
        .route("/cart/{sku}", post(add_item))
        .route("/coupon/{code}", post(set_coupon))
        .route("/nothing", get(nothing))
        .route("/all", get(read_all).post(write_both))
        .route("/prefs", get(read_prefs))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/fail/{sku}", post(add_then_fail))
}

/// `routes()` behind a layer over `store` with `Cart` and `Prefs` registered.
pub(crate) fn app(layer: SessionLayer) -> Router {
    routes().layer(layer.register::<Cart>().register::<Prefs>())
}

// ---- requests and responses ------------------------------------------------------------------

/// A response, read whole.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Reply {
    /// Every `Set-Cookie` header, as text.
    pub(crate) fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().expect("Set-Cookie is text").to_owned())
            .collect()
    }

    /// The one `Set-Cookie` header; panics when there are none or several.
    pub(crate) fn the_set_cookie(&self) -> String {
        let all = self.set_cookies();
        assert_eq!(all.len(), 1, "expected exactly one Set-Cookie: {all:?}");
        all.into_iter().next().expect("one Set-Cookie")
    }

    /// The session cookie's new value (the one `Set-Cookie`'s value).
    pub(crate) fn cookie(&self) -> String {
        cookie_value(&self.the_set_cookie()).to_owned()
    }

    /// A header as text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("header is text"))
    }
}

/// A request to `path` carrying `cookie` as the `session` cookie.
pub(crate) fn request(method: Method, path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(cookie) = cookie {
        builder = builder.header(header::COOKIE, format!("session={cookie}"));
    }
    builder.body(Body::empty()).expect("a valid request")
}

/// Sends `request` through `app` (a clone: the router is shared) and reads the response.
pub(crate) async fn send(app: &Router, request: Request<Body>) -> Reply {
    let response: Response<Body> = app
        .clone()
        .oneshot(request)
        .await
        .expect("a Router never fails");
    let (parts, body) = response.into_parts();
    let bytes = body
        .collect()
        .await
        .expect("the body is readable")
        .to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// `GET path` with the `session` cookie, when given.
pub(crate) async fn get_with(app: &Router, path: &str, cookie: Option<&str>) -> Reply {
    send(app, request(Method::GET, path, cookie)).await
}

/// `POST path` with the `session` cookie, when given.
pub(crate) async fn post_with(app: &Router, path: &str, cookie: Option<&str>) -> Reply {
    send(app, request(Method::POST, path, cookie)).await
}

/// A request carrying the session id in header `name`.
pub(crate) fn request_with_header(
    method: Method,
    path: &str,
    name: &HeaderName,
    value: Option<&str>,
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(value) = value {
        builder = builder.header(name, value);
    }
    builder.body(Body::empty()).expect("a valid request")
}

/// The value of a `Set-Cookie` line (`name=value; attributes`).
pub(crate) fn cookie_value(set_cookie: &str) -> &str {
    let pair = set_cookie.split(';').next().unwrap_or_default();
    pair.split_once('=').map_or("", |(_, value)| value.trim())
}

/// The attributes of a `Set-Cookie` line, trimmed, in order.
pub(crate) fn attributes(set_cookie: &str) -> Vec<&str> {
    set_cookie.split(';').skip(1).map(str::trim).collect()
}

/// The `Max-Age` of a `Set-Cookie` line, if it has one.
pub(crate) fn max_age(set_cookie: &str) -> Option<u64> {
    attributes(set_cookie).into_iter().find_map(|attribute| {
        let (name, value) = attribute.split_once('=')?;
        name.eq_ignore_ascii_case("max-age")
            .then(|| value.parse().expect("Max-Age is a number"))
    })
}

/// The key the store files the session with this cookie value under.
pub(crate) fn key_of(id: &str) -> SessionKey {
    SessionId::parse(id)
        .expect("the cookie holds a well-formed id")
        .key()
}

// ---- a counting wrapper around the real store --------------------------------------------------

/// How many times each store method was called.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) load: usize,
    pub(crate) create: usize,
    pub(crate) save: usize,
    pub(crate) delete: usize,
}

impl Counts {
    /// No call at all.
    pub(crate) const NONE: Counts = Counts {
        load: 0,
        create: 0,
        save: 0,
        delete: 0,
    };

    /// The calls made since `earlier`.
    pub(crate) fn since(self, earlier: Counts) -> Counts {
        Counts {
            load: self.load - earlier.load,
            create: self.create - earlier.create,
            save: self.save - earlier.save,
            delete: self.delete - earlier.delete,
        }
    }
}

/// One save the layer made: key, changeset, deadline.
pub(crate) type Save = (SessionKey, Changeset, Deadline);

#[derive(Default)]
struct Calls {
    load: AtomicUsize,
    create: AtomicUsize,
    save: AtomicUsize,
    delete: AtomicUsize,
    saves: Mutex<Vec<Save>>,
    fail_loads: AtomicBool,
}

/// The real [`MemoryStore`] behind a wrapper that counts every call the layer makes and keeps
/// every changeset it saves. It can be told to fail loads, as a store that is down does.
#[derive(Clone)]
pub(crate) struct CountingStore {
    inner: MemoryStore,
    calls: Arc<Calls>,
}

type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

impl CountingStore {
    pub(crate) fn new(inner: MemoryStore) -> Self {
        Self {
            inner,
            calls: Arc::default(),
        }
    }

    /// The store underneath, to look at what is really stored.
    pub(crate) fn inner(&self) -> &MemoryStore {
        &self.inner
    }

    pub(crate) fn counts(&self) -> Counts {
        Counts {
            load: self.calls.load.load(Ordering::SeqCst),
            create: self.calls.create.load(Ordering::SeqCst),
            save: self.calls.save.load(Ordering::SeqCst),
            delete: self.calls.delete.load(Ordering::SeqCst),
        }
    }

    /// Every save so far: key, changeset, deadline.
    pub(crate) fn saves(&self) -> MutexGuard<'_, Vec<Save>> {
        self.calls.saves.lock().expect("saves lock")
    }

    /// From now on, loads fail as a store that cannot be reached does.
    pub(crate) fn fail_loads(&self, fail: bool) {
        self.calls.fail_loads.store(fail, Ordering::SeqCst);
    }

    /// What the real store holds under the key of the id `id`.
    pub(crate) async fn stored(&self, id: &str) -> Option<Stored> {
        self.inner
            .load(&key_of(id))
            .await
            .expect("MemoryStore loads")
    }
}

impl SessionStore for CountingStore {
    fn load<'a, 'b, 'c>(&'a self, key: &'b SessionKey) -> StoreFuture<'c, Option<Stored>>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        Box::pin(async move {
            self.calls.load.fetch_add(1, Ordering::SeqCst);
            if self.calls.fail_loads.load(Ordering::SeqCst) {
                return Err(StoreError::backend(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    "connection refused (test store is down)",
                )));
            }
            self.inner.load(key).await
        })
    }

    fn create<'a, 'b, 'c, 'd>(
        &'a self,
        key: &'b SessionKey,
        record: &'c Record,
        deadline: Deadline,
    ) -> StoreFuture<'d, ()>
    where
        'a: 'd,
        'b: 'd,
        'c: 'd,
        Self: 'd,
    {
        Box::pin(async move {
            self.calls.create.fetch_add(1, Ordering::SeqCst);
            self.inner.create(key, record, deadline).await
        })
    }

    fn save<'a, 'b, 'c, 'd>(
        &'a self,
        key: &'b SessionKey,
        changes: &'c Changeset,
        deadline: Deadline,
    ) -> StoreFuture<'d, SaveOutcome>
    where
        'a: 'd,
        'b: 'd,
        'c: 'd,
        Self: 'd,
    {
        Box::pin(async move {
            self.calls.save.fetch_add(1, Ordering::SeqCst);
            self.saves().push((key.clone(), changes.clone(), deadline));
            self.inner.save(key, changes, deadline).await
        })
    }

    fn delete<'a, 'b, 'c>(&'a self, key: &'b SessionKey) -> StoreFuture<'c, ()>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        Box::pin(async move {
            self.calls.delete.fetch_add(1, Ordering::SeqCst);
            self.inner.delete(key).await
        })
    }
}

/// The fields a `SlotChange::Fields` updates, by name; `None` for any other change.
pub(crate) fn changed_fields(change: &SlotChange) -> Option<(&str, Vec<&str>)> {
    match change {
        SlotChange::Fields { slot, fields, .. } => Some((
            slot.as_ref(),
            fields.iter().map(|(name, _)| name.as_ref()).collect(),
        )),
        _ => None,
    }
}

// ---- captured logs ------------------------------------------------------------------------------

/// Everything `tracing` printed while the guard of [`capture_logs`] was alive on this thread.
#[derive(Clone, Default)]
pub(crate) struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log lock")).into_owned()
    }

    /// The lines at `level` (`"WARN"`, `"ERROR"`, …).
    pub(crate) fn lines_at(&self, level: &str) -> Vec<String> {
        self.text()
            .lines()
            .filter(|line| line.split_whitespace().nth(1) == Some(level))
            .map(str::to_owned)
            .collect()
    }
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl io::Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Captures every `tracing` event (all levels, all targets) on this thread while the guard lives.
/// Use it in a current-thread test: the request runs on this thread.
pub(crate) fn capture_logs() -> (Logs, tracing::subscriber::DefaultGuard) {
    let logs = Logs::default();
    let buffer = logs.0.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || LogWriter(buffer.clone()))
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    (logs, guard)
}

// ---- a browser ----------------------------------------------------------------------------------

/// A browser's cookie jar for the one `session` cookie, on a test clock: it keeps what
/// `Set-Cookie` says, honours `Max-Age` (0 removes), and stops sending an expired cookie.
pub(crate) struct Browser<C: sessions::Clock> {
    clock: C,
    cookie: Option<(String, Option<std::time::SystemTime>)>,
}

impl<C: sessions::Clock> Browser<C> {
    pub(crate) fn new(clock: C) -> Self {
        Self {
            clock,
            cookie: None,
        }
    }

    /// The cookie the browser would send now.
    pub(crate) fn cookie(&self) -> Option<&str> {
        let (value, expires) = self.cookie.as_ref()?;
        match expires {
            Some(expires) if self.clock.now() >= *expires => None,
            _ => Some(value),
        }
    }

    /// Sends a request with the cookie (if it has one that is alive) and keeps what the
    /// response sets.
    pub(crate) async fn send(&mut self, app: &Router, method: Method, path: &str) -> Reply {
        let reply = send(app, request(method, path, self.cookie())).await;
        for set_cookie in reply.set_cookies() {
            let value = cookie_value(&set_cookie).to_owned();
            match max_age(&set_cookie) {
                Some(0) => self.cookie = None,
                _ if value.is_empty() => self.cookie = None,
                Some(seconds) => {
                    let expires = self.clock.now() + std::time::Duration::from_secs(seconds);
                    self.cookie = Some((value, Some(expires)));
                }
                None => self.cookie = Some((value, None)),
            }
        }
        reply
    }

    pub(crate) async fn get(&mut self, app: &Router, path: &str) -> Reply {
        self.send(app, Method::GET, path).await
    }

    pub(crate) async fn post(&mut self, app: &Router, path: &str) -> Reply {
        self.send(app, Method::POST, path).await
    }
}
