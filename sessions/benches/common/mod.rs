//! What the side-by-side benches share: the cart, the handlers for both libraries, a client
//! that keeps 1,000 sessions' cookies and sends requests round-robin through
//! `tower::ServiceExt::oneshot`, and the statistics.
//!
//! Each bench target uses a part of this module.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderValue, Request, StatusCode, Uri};
use serde::{Deserialize, Serialize};
use sessions::prelude::*;
use sessions::{Format, Key};
use tower::ServiceExt;
use tower_sessions::cookie::Key as TowerKey;

#[cfg(feature = "actix")]
pub(crate) mod actix;
pub(crate) mod load;
mod suite;
pub(crate) use suite::*;

/// Sessions pre-created per variant, used round-robin.
pub(crate) const SESSIONS: usize = 1_000;

// ---- the cart ---------------------------------------------------------------------------------

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub(crate) struct Item {
    pub(crate) sku: String,
    pub(crate) qty: u32,
    pub(crate) price_cents: u64,
}

/// The cart as a `sessions` user declares it.
#[derive(Session, Default)]
#[session(name = "cart")]
pub(crate) struct Cart {
    user_id: Option<u64>,
    items: Vec<Item>,
    visits: u64,
    last_seen_unix: i64,
    coupon: Option<String>,
}

/// The same cart as a tower-sessions user declares it: one serde struct under the key "cart".
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub(crate) struct CartPlain {
    pub(crate) user_id: Option<u64>,
    pub(crate) items: Vec<Item>,
    pub(crate) visits: u64,
    pub(crate) last_seen_unix: i64,
    pub(crate) coupon: Option<String>,
}

pub(crate) fn items() -> Vec<Item> {
    (0..5u32)
        .map(|i| Item {
            sku: format!("SKU-{:06}", 1000 + i),
            qty: i + 1,
            price_cents: 1999 + u64::from(i) * 250,
        })
        .collect()
}

pub(crate) fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

pub(crate) fn full_cart() -> Cart {
    Cart {
        user_id: Some(4_200_042),
        items: items(),
        visits: 1,
        last_seen_unix: now_unix(),
        coupon: Some("WELCOME10".into()),
    }
}

pub(crate) fn full_cart_plain() -> CartPlain {
    CartPlain {
        user_id: Some(4_200_042),
        items: items(),
        visits: 1,
        last_seen_unix: now_unix(),
        coupon: Some("WELCOME10".into()),
    }
}

// ---- the apps ---------------------------------------------------------------------------------

/// The routes every app has: `/create` (a new session with a full cart), `/w1`, `/w2`.
pub(crate) const CREATE: &str = "/create";
/// Read the cart, `visits += 1`, set `last_seen_unix`, save.
pub(crate) const W1: &str = "/w1";
/// Read the cart, return `visits`, change nothing.
pub(crate) const W2: &str = "/w2";

async fn floor() -> String {
    17u64.to_string()
}

/// W0: the same routes with no session layer at all.
pub(crate) fn app_floor() -> Router {
    Router::new()
        .route(CREATE, get(floor))
        .route(W1, get(floor))
        .route(W2, get(floor))
}

pub(crate) async fn sessions_create(mut cart: Typed<Cart>) -> String {
    cart.replace(full_cart());
    cart.visits().to_string()
}

pub(crate) async fn sessions_w1(mut cart: Typed<Cart>) -> String {
    *cart.visits_mut() += 1;
    cart.set_last_seen_unix(now_unix());
    cart.visits().to_string()
}

pub(crate) async fn sessions_w2(cart: Typed<Cart>) -> String {
    cart.visits().to_string()
}

/// The `sessions` app over `layer` (a store, the cart registered, the format set).
pub(crate) fn app_sessions(layer: SessionLayer) -> Router {
    Router::new()
        .route(CREATE, get(sessions_create))
        .route(W1, get(sessions_w1))
        .route(W2, get(sessions_w2))
        .layer(layer)
}

/// A `SessionLayer` with the defaults (24 h idle expiry) and the cart registered.
pub(crate) fn sessions_layer(store: impl sessions::IntoBackend, format: Format) -> SessionLayer {
    SessionLayer::new(store).register::<Cart>().format(format)
}

pub(crate) fn sessions_memory(format: Format) -> Router {
    app_sessions(sessions_layer(MemoryStore::new(), format))
}

/// The same app on a [`MemoryStore::compact`] store (sessions held encoded).
pub(crate) fn sessions_memory_compact(format: Format) -> Router {
    app_sessions(sessions_layer(MemoryStore::compact(), format))
}

pub(crate) fn sessions_cookie(format: Format) -> Router {
    let store = CookieStore::new([Key::generate(1).expect("a cookie key")]).expect("a key");
    app_sessions(sessions_layer(store, format))
}

/// The tower-sessions handlers and app builders, for one version of tower-sessions (0.15 for
/// the memory and cookie pairs; 0.14 for the SQLite and Redis pairs, whose store crates are
/// built on tower-sessions-core 0.14).
macro_rules! tower_app {
    ($module:ident, $ts:ident) => {
        pub(crate) mod $module {
            use super::{CREATE, CartPlain, W1, W2, full_cart_plain, now_unix};
            use axum::Router;
            use axum::routing::get;
            use http::StatusCode;
            use $ts::{Expiry, Session, SessionManagerLayer, SessionStore};

            const KEY: &str = "cart";

            fn internal<E: std::fmt::Display>(err: E) -> StatusCode {
                eprintln!("tower-sessions failed: {err}");
                StatusCode::INTERNAL_SERVER_ERROR
            }

            async fn create(session: Session) -> Result<String, StatusCode> {
                let cart = full_cart_plain();
                session.insert(KEY, &cart).await.map_err(internal)?;
                Ok(cart.visits.to_string())
            }

            async fn w1(session: Session) -> Result<String, StatusCode> {
                let mut cart: CartPlain = session
                    .get(KEY)
                    .await
                    .map_err(internal)?
                    .unwrap_or_default();
                cart.visits += 1;
                cart.last_seen_unix = now_unix();
                session.insert(KEY, &cart).await.map_err(internal)?;
                Ok(cart.visits.to_string())
            }

            async fn w2(session: Session) -> Result<String, StatusCode> {
                let cart: CartPlain = session
                    .get(KEY)
                    .await
                    .map_err(internal)?
                    .unwrap_or_default();
                Ok(cart.visits.to_string())
            }

            pub(crate) fn routes() -> Router {
                Router::new()
                    .route(CREATE, get(create))
                    .route(W1, get(w1))
                    .route(W2, get(w2))
            }

            /// 24 hours on inactivity, as `sessions`' default expiry.
            fn expiry() -> Expiry {
                Expiry::OnInactivity($ts::cookie::time::Duration::hours(24))
            }

            /// The id cookie in clear (tower-sessions' default).
            pub(crate) fn app<S: SessionStore + Clone>(store: S) -> Router {
                routes().layer(layer(store))
            }

            pub(crate) fn layer<S: SessionStore + Clone>(store: S) -> SessionManagerLayer<S> {
                SessionManagerLayer::new(store).with_expiry(expiry())
            }
        }
    };
}

tower_app!(tower015, tower_sessions);
tower_app!(tower014, tower_sessions_014);

pub(crate) fn tower_memory() -> Router {
    tower015::app(tower_sessions::MemoryStore::default())
}

/// The id cookie encrypted (`with_private`, tower-sessions' `private` feature); the data in its
/// `MemoryStore`.
pub(crate) fn tower_private_memory() -> Router {
    tower015::routes().layer(
        tower015::layer(tower_sessions::MemoryStore::default()).with_private(TowerKey::generate()),
    )
}

// ---- the client -------------------------------------------------------------------------------

/// One app and its sessions' cookies, used round-robin.
pub(crate) struct Client {
    pub(crate) app: Router,
    /// `name=value` of each session's cookie.
    pub(crate) cookies: Vec<HeaderValue>,
    next: usize,
}

fn request(path: &'static str, cookie: Option<&HeaderValue>) -> Request<Body> {
    let mut request = Request::new(Body::empty());
    *request.uri_mut() = Uri::from_static(path);
    if let Some(cookie) = cookie {
        request.headers_mut().insert(COOKIE, cookie.clone());
    }
    request
}

/// `name=value` of a `Set-Cookie` value.
fn cookie_pair(set_cookie: &HeaderValue) -> &[u8] {
    let bytes = set_cookie.as_bytes();
    let end = bytes.iter().position(|&b| b == b';').unwrap_or(bytes.len());
    &bytes[..end]
}

/// Sends one request through `app` and reads the whole body; returns the `Set-Cookie` pair
/// when the response has one.
pub(crate) async fn send(
    app: &Router,
    path: &'static str,
    cookie: Option<&HeaderValue>,
) -> (axum::body::Bytes, Option<HeaderValue>) {
    let response = app
        .clone()
        .oneshot(request(path, cookie))
        .await
        .expect("a Router is infallible");
    assert_eq!(response.status(), StatusCode::OK, "{path} failed");
    let set = response
        .headers()
        .get(SET_COOKIE)
        .map(|value| match cookie {
            Some(old) if old.as_bytes() == cookie_pair(value) => old.clone(),
            _ => HeaderValue::from_bytes(cookie_pair(value)).expect("a cookie pair"),
        });
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .expect("a small body");
    (body, set)
}

impl Client {
    /// Creates `n` sessions through `app`'s `/create` and keeps their cookies.
    pub(crate) async fn new(app: Router, n: usize) -> Self {
        let mut cookies = Vec::with_capacity(n);
        for _ in 0..n {
            let (_, set) = send(&app, CREATE, None).await;
            cookies.push(set.expect("/create sets the session cookie"));
        }
        Self {
            app,
            cookies,
            next: 0,
        }
    }

    /// The floor app, sending the same cookies as `other`.
    pub(crate) fn floor(other: &Client) -> Self {
        Self {
            app: app_floor(),
            cookies: other.cookies.clone(),
            next: 0,
        }
    }

    /// One request to `path` with the next session's cookie; keeps a changed cookie, as a
    /// browser does. Returns the body.
    pub(crate) async fn request(&mut self, path: &'static str) -> axum::body::Bytes {
        let i = self.next;
        self.next = (i + 1) % self.cookies.len();
        let (body, set) = send(&self.app, path, Some(&self.cookies[i])).await;
        if let Some(set) = set
            && set != self.cookies[i]
        {
            self.cookies[i] = set;
        }
        body
    }

    /// `n` requests to `path`.
    pub(crate) async fn run(&mut self, path: &'static str, n: usize) {
        for _ in 0..n {
            std::hint::black_box(self.request(path).await);
        }
    }

    /// Checks that every session is live: W2 answers `visits >= 1` for each.
    pub(crate) async fn check(&mut self) {
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

/// A current-thread runtime with IO and timers.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

// ---- command line -----------------------------------------------------------------------------

/// Whether `cargo bench` runs this target (it passes `--bench`); under `cargo test` the
/// targets run a short smoke pass instead.
pub(crate) fn is_bench() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// A number from the environment, or `default`.
pub(crate) fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The filter words given after `--` (arguments that do not start with `-`).
pub(crate) fn filters() -> Vec<String> {
    std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect()
}

// ---- SQLite -----------------------------------------------------------------------------------

/// A directory under the system's temp dir, removed when dropped.
pub(crate) struct TempDir(pub(crate) std::path::PathBuf);

impl TempDir {
    pub(crate) fn new(label: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "sessions-bench-{label}-{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `SqliteStore::open` (WAL, synchronous=NORMAL) on a new file in `dir`.
#[cfg(feature = "sqlite")]
pub(crate) async fn sessions_sqlite(dir: &TempDir, name: &str, format: Format) -> Router {
    let store = SqliteStore::open(dir.0.join(name))
        .await
        .expect("open the SQLite file");
    store.migrate().await.expect("create the tables");
    app_sessions(sessions_layer(store, format))
}

/// [`sessions_sqlite`] with the store wrapped in `Encrypted` (one key).
#[cfg(feature = "sqlite")]
pub(crate) async fn sessions_sqlite_encrypted(dir: &TempDir, name: &str, format: Format) -> Router {
    let store = SqliteStore::open(dir.0.join(name))
        .await
        .expect("open the SQLite file");
    store.migrate().await.expect("create the tables");
    app_sessions(sessions_layer(encrypted(store), format))
}

/// `store` wrapped in `Encrypted`, with a fixed bench key.
pub(crate) fn encrypted<S: SessionStore>(store: S) -> sessions::store::Encrypted<S> {
    sessions::store::Encrypted::new(store, [Key::from_bytes(1, [0x5E; 32])]).expect("one key")
}

/// tower-sessions-sqlx-store's `SqliteStore` on a new file in `dir`, with the pool set up as
/// `SqliteStore::open` sets up its own: WAL, synchronous=NORMAL, a 5 s busy timeout.
#[cfg(feature = "sqlite")]
pub(crate) async fn tower_sqlite(dir: &TempDir, name: &str) -> Router {
    use sqlx::sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
    };
    let options = SqliteConnectOptions::new()
        .filename(dir.0.join(name))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .connect_with(options)
        .await
        .expect("open the SQLite file");
    let store = tower_sessions_sqlx_store::SqliteStore::new(pool);
    store.migrate().await.expect("create the table");
    tower014::app(store)
}

// ---- PostgreSQL -------------------------------------------------------------------------------

/// The server the PostgreSQL pair runs against: `SESSIONS_BENCH_POSTGRES_URL`, else
/// `SESSIONS_TEST_POSTGRES_URL`, else the local server.
pub(crate) fn postgres_url() -> String {
    ["SESSIONS_BENCH_POSTGRES_URL", "SESSIONS_TEST_POSTGRES_URL"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|url| !url.is_empty()))
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// `options` with `BENCH_PG_CONNECTIONS` connections at most, when it is set (both libraries'
/// default is sqlx's, 10).
#[cfg(feature = "postgres")]
fn postgres_pool_size(options: sqlx::postgres::PgPoolOptions) -> sqlx::postgres::PgPoolOptions {
    match std::env::var("BENCH_PG_CONNECTIONS")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        Some(n) => options.max_connections(n),
        None => options,
    }
}

/// `PostgresStore` (its own pool settings, `PostgresStore::connect_with`) on the new table
/// `table`, its connections named `application_name`.
#[cfg(feature = "postgres")]
pub(crate) async fn sessions_postgres(
    url: &str,
    table: &str,
    application_name: &str,
    format: Format,
) -> (PostgresStore, Router) {
    use std::str::FromStr;
    let options = sqlx::postgres::PgConnectOptions::from_str(url)
        .expect("a PostgreSQL URL")
        .application_name(application_name);
    let pool = postgres_pool_size(PostgresStore::pool_options())
        .connect_with(options)
        .await
        .expect("connect to PostgreSQL");
    let store = PostgresStore::from_pool(pool).table_name(table);
    store.migrate().await.expect("create the table");
    (store.clone(), app_sessions(sessions_layer(store, format)))
}

/// tower-sessions-sqlx-store's `PostgresStore` on the new schema `schema` (its table
/// `session`), on a pool made with `options` (its docs' `PgPool::connect(url)` is
/// `PgPoolOptions::new()`), its connections named `application_name`.
#[cfg(feature = "postgres")]
pub(crate) async fn tower_postgres(
    url: &str,
    schema: &str,
    application_name: &str,
    options: sqlx::postgres::PgPoolOptions,
) -> (sqlx::PgPool, Router) {
    use std::str::FromStr;
    let connect = sqlx::postgres::PgConnectOptions::from_str(url)
        .expect("a PostgreSQL URL")
        .application_name(application_name);
    let pool = postgres_pool_size(options)
        .connect_with(connect)
        .await
        .expect("connect to PostgreSQL");
    let store = tower_sessions_sqlx_store::PostgresStore::new(pool.clone())
        .with_schema_name(schema)
        .expect("a schema name");
    store.migrate().await.expect("create the schema and table");
    (pool, tower014::app(store))
}
