//! Helpers of `store_postgres.rs`: the server's URL, stores on tables of their own (dropped when
//! the test ends, a panicking one too), entries to write, and the small app the HTTP tests run.
#![allow(dead_code)]

pub(crate) mod fixture;
pub(crate) mod proxy;

use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use sessions::prelude::*;
use sessions::store::{Deadline, Name, Record, SessionKey, Slot};
use sessions::store::{Entry, Stored};
use sessions::{Format, PostgresStore, SessionId};
use sqlx::postgres::PgConnectOptions;
use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};
use tower::ServiceExt;

pub(crate) const URL_VAR: &str = "SESSIONS_TEST_POSTGRES_URL";

/// The server's URL, or `None` (with the skip line) when it is not set.
pub(crate) fn url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            println!("skipped: set {URL_VAR} to run the PostgreSQL store tests");
            None
        }
    }
}

/// A table name no other test (or test run) uses.
pub(crate) fn unique_table(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}_{}_{nanos}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The tests of this binary share the server, but for those that need it to themselves.
static SERVER: LazyLock<Arc<RwLock<()>>> = LazyLock::new(Arc::default);

/// A test's hold on the server.
enum Turn {
    Shared(OwnedRwLockReadGuard<()>),
    Alone(OwnedRwLockWriteGuard<()>),
}

/// A store on a table of its own; the table (and what an upgrade test makes beside it) is
/// dropped when this is dropped.
pub(crate) struct TestTable {
    pub(crate) store: PostgresStore,
    pub(crate) url: String,
    /// `None` for a table made [`beside`](Self::beside) another, under the other's turn.
    _turn: Option<Turn>,
}

impl TestTable {
    /// A store on a fresh, migrated table; `None` (test skipped) without a server.
    pub(crate) async fn migrated() -> Option<Self> {
        let table = Self::unmigrated().await?;
        table.store.migrate().await.expect("migrate");
        Some(table)
    }

    /// A store on a table name nothing uses yet, not migrated.
    pub(crate) async fn unmigrated() -> Option<Self> {
        let url = url()?;
        let turn = Turn::Shared(SERVER.clone().read_owned().await);
        Some(Self::on(url, Some(turn)).await)
    }

    /// Like [`migrated`](Self::migrated), while no other test of this binary uses the server,
    /// on connections with `synchronous_commit = off` (commits do not wait for the WAL flush).
    pub(crate) async fn alone() -> Option<Self> {
        let url = url()?;
        let turn = Turn::Alone(SERVER.clone().write_owned().await);
        let mut table = Self::on(url, Some(turn)).await;
        let options = PgConnectOptions::from_str(&table.url)
            .expect("a PostgreSQL URL")
            .options([("synchronous_commit", "off")]);
        let pool = PostgresStore::pool_options()
            .connect_with(options)
            .await
            .expect("connect to SESSIONS_TEST_POSTGRES_URL");
        table.store = PostgresStore::from_pool(pool).table_name(table.name());
        table.store.migrate().await.expect("migrate");
        Some(table)
    }

    /// Another table, not migrated, used under this one's turn (so drop it first).
    pub(crate) async fn beside(&self) -> Self {
        Self::on(self.url.clone(), None).await
    }

    async fn on(url: String, turn: Option<Turn>) -> Self {
        let store = PostgresStore::connect(&url)
            .await
            .expect("connect to SESSIONS_TEST_POSTGRES_URL")
            .table_name(&unique_table("pgs"));
        Self {
            store,
            url,
            _turn: turn,
        }
    }

    pub(crate) fn name(&self) -> &str {
        self.store.table()
    }

    /// Runs one statement on the store's pool.
    pub(crate) async fn execute(&self, sql: &str) -> u64 {
        sqlx::query(sql)
            .execute(self.store.pool())
            .await
            .unwrap_or_else(|err| panic!("{sql}: {err}"))
            .rows_affected()
    }

    /// How many rows the table holds.
    pub(crate) async fn count(&self) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM \"{}\"", self.name()))
            .fetch_one(self.store.pool())
            .await
            .expect("count rows")
    }
}

impl Drop for TestTable {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name().to_owned());
        // Drop cannot await, and the test's runtime may be gone: a thread and runtime of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the tables");
            runtime.block_on(async {
                let pool = sqlx::PgPool::connect(&url).await?;
                let sql = format!(
                    "DROP TABLE IF EXISTS \"{name}_fields\", \"{name}_slots\", \"{name}_new\", \"{name}\""
                );
                sqlx::query(&sql).execute(&pool).await?;
                pool.close().await;
                Ok::<(), sqlx::Error>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: table {} not dropped: {dropped:?}", self.name());
        }
    }
}

pub(crate) fn fresh_key() -> SessionKey {
    SessionId::generate().expect("random id").key()
}

pub(crate) fn hour_from(now: SystemTime) -> Deadline {
    Deadline {
        created_at: now,
        expires_at: now + Duration::from_secs(3600),
    }
}

pub(crate) fn json_slot(name: &'static str, fields: &[(&'static str, &str)]) -> Slot {
    Slot::new(
        name,
        1,
        Format::Json,
        fields
            .iter()
            .map(|(n, v)| (Name::Borrowed(*n), Bytes::from(v.to_string())))
            .collect(),
    )
}

pub(crate) fn record(slots: impl IntoIterator<Item = Slot>) -> Record {
    let mut record = Record::new();
    for slot in slots {
        record.insert(slot.with_revision(1));
    }
    record
}

/// A live entry of `version` holding `record`, ending at `deadline`.
pub(crate) fn live(version: u64, record: Record, deadline: Deadline) -> Entry {
    Entry::Live {
        version,
        session: Stored::new(record, deadline),
    }
}

/// The live session under `key`.
pub(crate) async fn must_live(store: &PostgresStore, key: &SessionKey) -> (u64, Stored) {
    match store.load(key).await.expect("load") {
        Some(Entry::Live { version, session }) => (version, session),
        other => panic!("expected a live session, found {other:?}"),
    }
}

// ---- the app -----------------------------------------------------------------------------------

#[derive(Session, Default)]
#[session(name = "visits")]
pub(crate) struct Visits {
    count: u64,
    note: String,
}

async fn visit(mut visits: Typed<Visits>) -> String {
    *visits.count_mut() += 1;
    visits.count().to_string()
}

async fn peek(visits: Typed<Visits>) -> String {
    visits.count().to_string()
}

/// `/visit` counts (a save), `/peek` reads (no save).
pub(crate) fn app(store: PostgresStore) -> Router {
    Router::new()
        .route("/visit", get(visit))
        .route("/peek", get(peek))
        .layer(SessionLayer::new(store).register::<Visits>())
}

/// What an app answered.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    /// `name=value` of the `Set-Cookie`, if any.
    pub(crate) cookie: Option<String>,
    pub(crate) body: String,
    pub(crate) took: Duration,
}

pub(crate) async fn send(app: &Router, path: &str, cookie: Option<&str>) -> Reply {
    let mut request = Request::builder().uri(path);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    let request = request.body(Body::empty()).expect("request");
    let started = std::time::Instant::now();
    let response = app.clone().oneshot(request).await.expect("infallible");
    let took = started.elapsed();
    let status = response.status();
    let cookie = response
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Reply {
        status,
        cookie,
        body: String::from_utf8_lossy(&body).into_owned(),
        took,
    }
}

/// The session key behind a `name=value` cookie pair.
pub(crate) fn key_of(cookie: &str) -> SessionKey {
    let value = cookie.split_once('=').map_or(cookie, |(_, value)| value);
    SessionId::parse(value).expect("a session id").key()
}
