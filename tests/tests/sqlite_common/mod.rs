//! What the SQLite store's tests share: a temp database file, a small app over a real
//! `Router`, and a second connection (or process) that holds the database's locks.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::Path as UrlPath;
use axum::routing::{get, post};
use http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use sessions::SessionId;
use sessions::prelude::*;
use sessions::store::{Deadline, SessionKey};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, SqliteConnection};
use tower::ServiceExt;

/// A database file in a temp directory of its own, removed (with its WAL files) when dropped.
pub(crate) struct TempDb {
    pub(crate) dir: PathBuf,
    pub(crate) path: PathBuf,
}

impl TempDb {
    pub(crate) fn new(what: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "sessions-sqlite-{what}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("create a temp dir");
        let path = dir.join("sessions.db");
        Self { dir, path }
    }

    /// `SqliteStore::open` on the file, migrated.
    pub(crate) async fn open(&self) -> SqliteStore {
        let store = SqliteStore::open(&self.path).await.expect("open");
        store.migrate().await.expect("migrate");
        store
    }

    /// The database file and its WAL companions that exist.
    pub(crate) fn files(&self) -> Vec<PathBuf> {
        ["", "-wal", "-shm"]
            .into_iter()
            .map(|suffix| {
                let mut file = self.path.clone().into_os_string();
                file.push(suffix);
                PathBuf::from(file)
            })
            .filter(|file| file.exists())
            .collect()
    }

    /// A connection of the test's own that creates the file.
    pub(crate) async fn connect_creating(&self) -> SqliteConnection {
        SqliteConnectOptions::new()
            .filename(&self.path)
            .create_if_missing(true)
            .connect()
            .await
            .expect("a connection")
    }

    /// A connection of the test's own (sqlx), beside the store's.
    pub(crate) async fn connect(&self) -> SqliteConnection {
        SqliteConnectOptions::new()
            .filename(&self.path)
            .connect()
            .await
            .expect("a second connection")
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.dir)
            .args(self.files())
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh random key.
pub(crate) fn fresh_key() -> SessionKey {
    SessionId::generate().expect("an id").key()
}

/// A deadline an hour after `now`.
pub(crate) fn hour_from(now: SystemTime) -> Deadline {
    Deadline {
        created_at: now,
        expires_at: now + Duration::from_secs(3600),
    }
}

/// Holds `BEGIN EXCLUSIVE` on `path` from a connection of its own, until [`unlock`].
pub(crate) async fn lock(path: &Path) -> SqliteConnection {
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .connect()
        .await
        .expect("a locking connection");
    sqlx::raw_sql("BEGIN EXCLUSIVE")
        .execute(&mut conn)
        .await
        .expect("BEGIN EXCLUSIVE");
    conn
}

/// Releases what [`lock`] took.
pub(crate) async fn unlock(mut conn: SqliteConnection) {
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut conn)
        .await
        .expect("ROLLBACK");
    conn.close().await.expect("close");
}

// ---- a small app ------------------------------------------------------------------------------

/// The cart of the app.
#[derive(Session, Default, Debug, Clone, PartialEq)]
#[session(name = "cart", version = 1)]
pub(crate) struct Cart {
    pub(crate) items: Vec<String>,
    pub(crate) coupon: Option<String>,
    pub(crate) visits: u32,
}

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
        None => "no cart".to_owned(),
    }
}

async fn add_item(mut cart: Typed<Cart>, UrlPath(sku): UrlPath<String>) -> String {
    cart.items_mut().push(sku);
    show(cart.value())
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

/// `GET /cart`, `POST /cart/{sku}`, `POST /login` (cycles the id), `POST /logout`, behind
/// `layer` with the cart registered.
pub(crate) fn app(layer: SessionLayer) -> Router {
    Router::new()
        .route("/cart", get(read_cart))
        .route("/cart/{sku}", post(add_item))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .layer(layer.register::<Cart>())
}

/// A response, read whole.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: String,
}

impl Reply {
    /// The `Set-Cookie` values.
    pub(crate) fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }

    /// `name=value` of the one `Set-Cookie`.
    pub(crate) fn cookie(&self) -> String {
        let all = self.set_cookies();
        assert_eq!(all.len(), 1, "one Set-Cookie expected: {all:?}");
        all[0].split(';').next().unwrap_or_default().to_owned()
    }

    /// A header as text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends `method path` with `cookie` through `app`.
pub(crate) async fn send(app: &Router, method: Method, path: &str, cookie: Option<&str>) -> Reply {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    let request = request.body(Body::empty()).expect("a request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// The key of the session a `name=value` cookie names.
pub(crate) fn key_of(cookie: &str) -> SessionKey {
    let value = cookie.split_once('=').map_or(cookie, |(_, v)| v);
    SessionId::parse(value).expect("a session id").key()
}
