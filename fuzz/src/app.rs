//! The apps the HTTP targets drive: a small axum `Router` behind the real `SessionLayer`, one
//! request at a time through `tower::ServiceExt::oneshot` on a current-thread runtime built once.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use sessions::prelude::*;
use sessions::{CookieConfig, Expiry, Key};
use sessions::clock::ManualClock;
use tower::ServiceExt;

/// A secret kept in the session; the sealed-cookie target seals a distinct one in every token.
#[derive(Session, Default, Debug, Clone, PartialEq)]
#[session(name = "secret", version = 1)]
pub struct Secret {
    pub text: String,
}

/// A cart, for the server-side target.
#[derive(Session, Default, Debug, Clone, PartialEq)]
#[session(name = "cart", version = 1)]
pub struct Cart {
    pub items: Vec<String>,
    pub visits: u32,
}

/// The time every app of the targets lives at: tokens sealed once stay valid in every run.
pub fn fixed_now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_750_000_000)
}

/// The current-thread runtime every request runs on, built once.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(
        || match tokio::runtime::Builder::new_current_thread().build() {
            Ok(runtime) => runtime,
            Err(err) => panic!("runtime: {err}"),
        },
    )
}

/// A response, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    /// The values every `Set-Cookie` sets.
    pub fn set_cookie_values(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|value| {
                let text = value.to_str().unwrap_or_default();
                let pair = text.split(';').next().unwrap_or_default();
                pair.split_once('=')
                    .map_or("", |(_, value)| value.trim())
                    .to_owned()
            })
            .collect()
    }
}

/// Sends one request through `app` and reads the response.
pub fn send(app: &Router, request: Request<Body>) -> Reply {
    runtime().block_on(async {
        let response = match app.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let (parts, body) = response.into_parts();
        let bytes = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(err) => panic!("body: {err}"),
        };
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    })
}

/// A request with these extra headers (values that are no valid header are skipped).
pub fn request(method: Method, path: &str, headers: &[(HeaderName, Vec<u8>)]) -> Request<Body> {
    let mut request = Request::new(Body::empty());
    *request.method_mut() = method;
    *request.uri_mut() = match path.parse() {
        Ok(uri) => uri,
        Err(err) => panic!("uri {path}: {err}"),
    };
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            request.headers_mut().append(name.clone(), value);
        }
    }
    request
}

// ---- the sealed-cookie app ----------------------------------------------------------------------

/// The key that seals (id 2) and the older one that still opens (id 1).
pub fn current_key() -> Key {
    Key::from_bytes(2, *b"sessions-fuzz-current-key-2-....")
}

pub fn previous_key() -> Key {
    Key::from_bytes(1, *b"sessions-fuzz-previous-key-1-...")
}

/// A key the app does not have.
pub fn foreign_key() -> Key {
    Key::from_bytes(9, *b"sessions-fuzz-foreign-key-9-....")
}

/// Another key under the id of the current one.
pub fn impostor_key() -> Key {
    Key::from_bytes(2, *b"sessions-fuzz-impostor-key-2-...")
}

async fn read_secret(secret: Option<Typed<Secret>>) -> String {
    match secret {
        Some(secret) => format!("stored:{}", secret.text()),
        None => "none".to_owned(),
    }
}

async fn write_secret(mut secret: Typed<Secret>, body: String) -> &'static str {
    secret.set_text(body);
    "written"
}

/// `GET /read` answers `stored:<secret>` or `none`; `POST /write` stores the body as the secret.
/// Behind a `CookieStore` with `keys`, on a clock standing at `now`, with idle expiry `idle`.
pub fn cookie_app(keys: Vec<Key>, cookie_name: &str, now: SystemTime, idle: Duration) -> Router {
    let store = match CookieStore::new(keys) {
        Ok(store) => store,
        Err(err) => panic!("cookie store: {err}"),
    };
    Router::new()
        .route("/read", get(read_secret))
        .route("/write", post(write_secret))
        .layer(
            SessionLayer::new(store)
                .register::<Secret>()
                .cookie(CookieConfig::new().name(cookie_name))
                .clock(ManualClock::at(now))
                .expiry(Expiry::idle(idle)),
        )
}

/// The app the sealed-cookie target attacks: it seals with the current key and opens with the
/// current and the previous one.
pub fn target_cookie_app() -> Router {
    cookie_app(
        vec![current_key(), previous_key()],
        "session",
        fixed_now(),
        Duration::from_secs(24 * 3600),
    )
}

/// Seals `secret` through `app` (a `POST /write`) and returns the token.
pub fn seal_through(app: &Router, secret: &str) -> String {
    let mut request = request(Method::POST, "/write", &[]);
    *request.body_mut() = Body::from(secret.to_owned());
    let reply = send(app, request);
    match reply.set_cookie_values().as_slice() {
        [token] if reply.status == StatusCode::OK && !token.is_empty() => token.clone(),
        other => panic!(
            "sealing {secret}: {} {other:?} {}",
            reply.status, reply.body
        ),
    }
}

/// The seed tokens: `(secret, token, may_open)` for tokens sealed by the target app's keys under
/// its name and still valid (`may_open`), and for tokens that must never open there: sealed
/// with a key it does not have, with an impostor key under its key id, under another cookie
/// name, or expired.
pub fn seed_tokens(tag: &str) -> Vec<(String, String, bool)> {
    let day = Duration::from_secs(24 * 3600);
    let mut out = Vec::new();
    let mut seal = |app: &Router, label: &str, may_open: bool| {
        for n in 0..3 {
            let secret = format!("{label}-{tag}-{n}");
            let token = seal_through(app, &secret);
            out.push((secret, token, may_open));
        }
    };
    seal(&target_cookie_app(), "current", true);
    let previous = cookie_app(vec![previous_key()], "session", fixed_now(), day);
    seal(&previous, "previous", true);
    let foreign = cookie_app(vec![foreign_key()], "session", fixed_now(), day);
    seal(&foreign, "foreign", false);
    let impostor = cookie_app(vec![impostor_key()], "session", fixed_now(), day);
    seal(&impostor, "impostor", false);
    let other_name = cookie_app(vec![current_key()], "other", fixed_now(), day);
    seal(&other_name, "othername", false);
    let past = fixed_now() - 2 * day;
    let expired = cookie_app(
        vec![current_key()],
        "session",
        past,
        Duration::from_secs(3600),
    );
    seal(&expired, "expired", false);
    out
}

// ---- the server-side app ------------------------------------------------------------------------

/// The header the header-transport app carries the id in.
pub const ID_HEADER: &str = "x-session-id";

async fn read_cart(cart: Option<Typed<Cart>>, session: SessionHandle) -> String {
    let id = session.id().await.ok().flatten().is_some();
    match cart {
        Some(cart) => format!(
            "items={} visits={} stored={id}",
            cart.items().len(),
            cart.visits()
        ),
        None => format!("none stored={id}"),
    }
}

async fn add_item(mut cart: Typed<Cart>) -> &'static str {
    cart.items_mut().push("item".to_owned());
    "added"
}

async fn login(mut cart: Typed<Cart>, session: SessionHandle) -> &'static str {
    *cart.visits_mut() += 1;
    session.cycle_id();
    "logged in"
}

async fn cycle_only(session: SessionHandle) -> &'static str {
    session.cycle_id();
    "cycled"
}

async fn logout(session: SessionHandle) -> &'static str {
    session.destroy();
    "bye"
}

async fn remember(session: SessionHandle) -> &'static str {
    session.set_expiry(Expiry::idle(Duration::from_secs(7 * 24 * 3600)));
    "remembered"
}

async fn nothing() -> &'static str {
    "nothing"
}

/// The routes of the server-side target, by index.
pub const STORE_ROUTES: [(&str, &str); 7] = [
    ("GET", "/read"),
    ("POST", "/add"),
    ("POST", "/login"),
    ("POST", "/cycle"),
    ("POST", "/logout"),
    ("POST", "/remember"),
    ("GET", "/nothing"),
];

/// The routes behind a layer over `store`, with the id in the cookie or in [`ID_HEADER`].
pub fn store_app(store: MemoryStore, clock: ManualClock, in_header: bool) -> Router {
    let mut layer = SessionLayer::new(store)
        .register::<Cart>()
        .clock(clock)
        .cookie(CookieConfig::new());
    if in_header {
        layer = layer.header(HeaderName::from_static(ID_HEADER));
    }
    Router::new()
        .route("/read", get(read_cart))
        .route("/add", post(add_item))
        .route("/login", post(login))
        .route("/cycle", post(cycle_only))
        .route("/logout", post(logout))
        .route("/remember", post(remember))
        .route("/nothing", get(nothing))
        .layer(layer)
}
