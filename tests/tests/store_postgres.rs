//! `PostgresStore` against the PostgreSQL at `SESSIONS_TEST_POSTGRES_URL` (skipped, passing,
//! when it is unset). Every test works on tables of its own, dropped at the end.

mod sql_common;

use std::future::Future;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use sessions::prelude::*;
use sessions::store::conformance;
use sessions::{
    Clock, Format, ManualClock, MigrationReport, PostgresStore, StoreError, SystemClock,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tower::ServiceExt;

use sql_common::{Rows, SqlStore};

const URL_VAR: &str = "SESSIONS_TEST_POSTGRES_URL";

fn url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            println!("skipped: set {URL_VAR} to run the PostgreSQL store tests");
            None
        }
    }
}

/// A store on fresh tables of its own; `None` (test skipped) without a server.
async fn fresh_store() -> Option<PostgresStore> {
    let url = url()?;
    let store = PostgresStore::connect(&url)
        .await
        .expect("connect to SESSIONS_TEST_POSTGRES_URL")
        .table_name(&sql_common::unique_table("sess"));
    store.migrate().await.expect("migrate");
    Some(store)
}

async fn drop_tables(store: &PostgresStore) {
    let t = store.table();
    let sql = format!("DROP TABLE IF EXISTS \"{t}_fields\", \"{t}_slots\", \"{t}\"");
    sqlx::query(&sql)
        .execute(store.pool())
        .await
        .expect("drop test tables");
}

impl SqlStore for PostgresStore {
    fn clocked(self, clock: ManualClock) -> Self {
        self.with_clock(clock)
    }

    fn expire_now(&self) -> impl Future<Output = Result<u64, StoreError>> + Send {
        self.delete_expired()
    }

    fn sweeper(&self, every: Duration) -> JoinHandle<()> {
        self.spawn_sweeper(every)
    }

    fn migrate_every<T: Session>(
        &self,
        format: Format,
    ) -> impl Future<Output = Result<MigrationReport, StoreError>> + Send {
        self.migrate_all::<T>(format)
    }

    async fn rows(&self, key: &str) -> Rows {
        let t = self.table();
        let sql = format!(
            "SELECT (SELECT count(*) FROM \"{t}\" WHERE key = $1),
                    (SELECT count(*) FROM \"{t}_slots\" WHERE key = $1),
                    (SELECT count(*) FROM \"{t}_fields\" WHERE key = $1)"
        );
        sqlx::query_as(&sql)
            .bind(key)
            .fetch_one(self.pool())
            .await
            .expect("count rows")
    }

    fn migrate_tables(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.migrate()
    }

    async fn set_version(&self, key: &str, slot: &str, version: i64) {
        let t = self.table();
        let sql = format!("UPDATE \"{t}_slots\" SET version = $3 WHERE key = $1 AND slot = $2");
        let done = sqlx::query(&sql)
            .bind(key)
            .bind(slot)
            .bind(version)
            .execute(self.pool())
            .await
            .expect("update");
        assert_eq!(done.rows_affected(), 1);
    }
}

/// Runs `scenario` on a fresh store, then drops its tables.
async fn with_store<F, Fut>(scenario: F)
where
    F: FnOnce(PostgresStore) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(store) = fresh_store().await else {
        return;
    };
    scenario(store.clone()).await;
    drop_tables(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    with_store(|store| conformance::run(store, SystemClock)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_with_a_manual_clock() {
    let clock = ManualClock::new();
    with_store(|store| conformance::run(store.with_clock(clock.clone()), clock)).await;
}

/// Tables the previous release made (without slot revisions, a session in them) keep working
/// after `migrate()`: its slots load at revision 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_of_the_previous_release_are_migrated() {
    let Some(url) = url() else {
        return;
    };
    let store = PostgresStore::connect(&url)
        .await
        .expect("connect to SESSIONS_TEST_POSTGRES_URL")
        .table_name(&sql_common::unique_table("sess"));
    let t = store.table().to_owned();
    let old_schema = [
        format!(
            "CREATE TABLE \"{t}\" (key TEXT COLLATE \"C\" PRIMARY KEY,
             created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL)"
        ),
        format!("CREATE INDEX \"{t}_by_expiry\" ON \"{t}\" (expires_at)"),
        format!(
            "CREATE TABLE \"{t}_slots\" (
             key TEXT COLLATE \"C\" NOT NULL REFERENCES \"{t}\" (key) ON DELETE CASCADE,
             slot TEXT NOT NULL, pos BIGINT GENERATED ALWAYS AS IDENTITY, type_tag TEXT NOT NULL,
             version BIGINT NOT NULL, format_tag SMALLINT NOT NULL, PRIMARY KEY (key, slot))"
        ),
        format!("CREATE INDEX \"{t}_slots_by_name\" ON \"{t}_slots\" (slot, key)"),
        format!(
            "CREATE TABLE \"{t}_fields\" (key TEXT COLLATE \"C\" NOT NULL, slot TEXT NOT NULL,
             field TEXT NOT NULL, pos BIGINT GENERATED ALWAYS AS IDENTITY, bytes BYTEA NOT NULL,
             PRIMARY KEY (key, slot, field),
             FOREIGN KEY (key, slot) REFERENCES \"{t}_slots\" (key, slot) ON DELETE CASCADE)"
        ),
    ];
    let key = sql_common::fresh_key();
    let old_rows = sql_common::revisions::old_release_rows(&t, &key, "'\\x31'::bytea");
    for statement in old_schema.iter().chain(&old_rows) {
        sqlx::query(statement)
            .execute(store.pool())
            .await
            .expect("the previous release's schema and rows");
    }
    sql_common::revisions::old_rows_load_at_revision_one(&store, &key).await;
    drop_tables(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_clients_on_one_session() {
    with_store(|store| async move {
        let started = Instant::now();
        sql_common::concurrent_clients(store).await;
        println!(
            "{} clients x {} load+save: {:?}",
            sql_common::CLIENTS,
            sql_common::ROUNDS,
            started.elapsed()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_round_trip_exactly_under_hashed_keys() {
    with_store(sql_common::exact_round_trip).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_fields_in_one_slot() {
    with_store(sql_common::many_fields).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_rows_are_record_errors() {
    with_store(sql_common::corrupt_rows).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_saves_write_nothing() {
    with_store(sql_common::refused_saves_write_nothing).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_all_rewrites_old_slots() {
    with_store(sql_common::migrate_all_counts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_all_never_clobbers_a_concurrent_save() {
    with_store(sql_common::migrate_all_races_saves).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_expired_and_the_sweeper() {
    with_store(sql_common::expiry_and_sweeper).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_runs_concurrently_and_twice() {
    with_store(|store| async move {
        let mut runs = tokio::task::JoinSet::new();
        for _ in 0..4 {
            let store = store.clone();
            runs.spawn(async move { store.migrate().await });
        }
        while let Some(run) = runs.join_next().await {
            run.expect("no panic").expect("concurrent migrate");
        }
    })
    .await;
}

// ---- the server goes away and comes back -----------------------------------------------------

/// A TCP proxy on 127.0.0.1 in front of the server, that can drop every connection and
/// refuse new ones, then take connections again on the same port.
struct Proxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    acceptor: Mutex<Option<JoinHandle<()>>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    /// A proxy in front of the server at `SESSIONS_TEST_POSTGRES_URL`, and the options that
    /// connect through it.
    async fn in_front_of_the_server() -> (Arc<Self>, PgConnectOptions) {
        let url = url().expect("set");
        let options = PgConnectOptions::from_str(&url).expect("url");
        let upstream = tokio::net::lookup_host((options.get_host(), options.get_port()))
            .await
            .expect("resolve the server")
            .next()
            .expect("an address");
        let proxy = Proxy::start(upstream).await;
        let port = proxy.addr.port();
        (proxy, options.host("127.0.0.1").port(port))
    }

    async fn start(upstream: SocketAddr) -> Arc<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let proxy = Arc::new(Self {
            addr: listener.local_addr().expect("local addr"),
            upstream,
            acceptor: Mutex::new(None),
            connections: Arc::new(Mutex::new(Vec::new())),
        });
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let (upstream, connections) = (self.upstream, self.connections.clone());
        let acceptor = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let relay = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                connections.lock().expect("proxy lock").push(relay);
            }
        });
        *self.acceptor.lock().expect("proxy lock") = Some(acceptor);
    }

    /// Drops every connection and closes the port: new connections are refused.
    fn down(&self) {
        if let Some(acceptor) = self.acceptor.lock().expect("proxy lock").take() {
            acceptor.abort();
        }
        for relay in self.connections.lock().expect("proxy lock").drain(..) {
            relay.abort();
        }
    }

    /// Takes connections on the same port again.
    async fn up(&self) {
        // The acceptor's abort drops the listener on its next poll: wait for the port.
        for _ in 0..100 {
            let socket = TcpSocket::new_v4().expect("socket");
            socket.set_reuseaddr(true).expect("reuseaddr");
            if socket.bind(self.addr).is_ok() {
                let listener = socket.listen(128).expect("listen");
                self.serve(listener);
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the proxy port {} did not come free", self.addr);
    }
}

#[derive(Session, Default)]
#[session(name = "visits")]
struct Visits {
    count: u64,
}

async fn visit(mut visits: Typed<Visits>) -> String {
    *visits.count_mut() += 1;
    visits.count().to_string()
}

async fn send(
    app: &Router,
    cookie: Option<&str>,
) -> (StatusCode, Option<String>, String, Duration) {
    let mut request = Request::builder().uri("/visit");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    let request = request.body(Body::empty()).expect("request");
    let started = Instant::now();
    let response = app.clone().oneshot(request).await.expect("infallible");
    let elapsed = started.elapsed();
    let status = response.status();
    let set_cookie = response
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
    (
        status,
        set_cookie,
        String::from_utf8_lossy(&body).into_owned(),
        elapsed,
    )
}

/// The server goes away under a running app: requests that need the session fail with a 503
/// that says why (within the pool's acquire timeout, no panic); when it is back, the same app
/// serves the same sessions again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_survives_the_server_going_away() {
    let Some(direct) = fresh_store().await else {
        return;
    };
    let (proxy, options) = Proxy::in_front_of_the_server().await;
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(1))
        .connect_with(options)
        .await
        .expect("connect through the proxy");
    let store = PostgresStore::from_pool(pool).table_name(direct.table());
    let sweeper = store.spawn_sweeper(Duration::from_millis(50));
    let app = Router::new()
        .route("/visit", get(visit))
        .layer(SessionLayer::new(store).register::<Visits>());

    let (status, cookie, body, _) = send(&app, None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "1"));
    let cookie = cookie.expect("a new session sets its cookie");
    let (status, _, body, _) = send(&app, Some(&cookie)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "2"));

    proxy.down();
    let (status, _, body, took) = send(&app, Some(&cookie)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body.contains("session store unavailable") && body.contains("Visits"),
        "the rejection says what failed: {body}"
    );
    assert!(took < Duration::from_secs(10), "failing took {took:?}");
    println!("store down: 503 after {took:?}: {body}");
    // A new visitor's session cannot be created either: the response says so, not 200.
    let (status, cookie_set, _, _) = send(&app, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        cookie_set.is_none(),
        "a cookie for a session that was not stored"
    );
    assert!(
        !sweeper.is_finished(),
        "the sweeper died while the store was down"
    );

    proxy.up().await;
    let (status, _, body, _) = send(&app, Some(&cookie)).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "3"),
        "the same session is served again, without restarting the app"
    );
    let (status, _, body, _) = send(&app, None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "1"));
    assert!(!sweeper.is_finished(), "the sweeper stopped");
    sweeper.abort();
    proxy.down();
    drop_tables(&direct).await;
}

#[tokio::test]
async fn a_clock_in_the_store_decides_expiry_not_the_server() {
    with_store(|store| async move {
        let clock = ManualClock::at(SystemTime::UNIX_EPOCH + Duration::from_secs(86_400));
        let store = store.with_clock(clock.clone());
        let key = sql_common::fresh_key();
        let deadline = sql_common::hour_from(clock.now());
        store
            .create(&key, &sql_common::record([]), deadline)
            .await
            .expect("create");
        assert!(store.load(&key).await.expect("load").is_some());
        clock.advance(Duration::from_secs(3600));
        assert!(store.load(&key).await.expect("load").is_none());
    })
    .await;
}

// ---- how long a request waits while the server is unreachable --------------------------------

/// With the server unreachable, a load fails with a backend error once the pool's acquire
/// timeout passes, not later: each request waits about that long for its 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_fails_within_the_acquire_timeout_while_the_server_is_down() {
    let Some(direct) = fresh_store().await else {
        return;
    };
    let (proxy, options) = Proxy::in_front_of_the_server().await;
    let timeout = Duration::from_secs(1);
    let pool = PostgresStore::pool_options()
        .acquire_timeout(timeout)
        .connect_with(options)
        .await
        .expect("connect through the proxy");
    let store = PostgresStore::from_pool(pool).table_name(direct.table());
    let key = sql_common::fresh_key();
    let deadline = sql_common::hour_from(SystemTime::now());
    store
        .create(&key, &sql_common::record([]), deadline)
        .await
        .expect("create");

    proxy.down();
    let started = Instant::now();
    let outcome = store.load(&key).await;
    let took = started.elapsed();
    assert!(
        matches!(outcome, Err(StoreError::Backend(_))),
        "{outcome:?}"
    );
    assert!(
        took < timeout * 3,
        "a load with the server down took {took:?}, the acquire timeout is {timeout:?}"
    );
    println!("server down: the load failed after {took:?} (acquire timeout {timeout:?})");
    drop_tables(&direct).await;
}

/// A port nothing listens on (no server needed): `connect_with` gives up after the acquire
/// timeout it was given, and `connect` after the default one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_to_a_closed_port_fails_within_the_acquire_timeout() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    drop(listener);
    let url = format!("postgres://postgres@127.0.0.1:{port}/test");
    let short = Duration::from_millis(500);
    let options = PostgresStore::pool_options().acquire_timeout(short);
    fails_within(short, PostgresStore::connect_with(&url, options)).await;
    fails_within(
        PostgresStore::DEFAULT_ACQUIRE_TIMEOUT,
        PostgresStore::connect(&url),
    )
    .await;
}

/// `connect` fails with a backend error, within three times `timeout`.
async fn fails_within(
    timeout: Duration,
    connect: impl Future<Output = Result<PostgresStore, StoreError>>,
) {
    let started = Instant::now();
    let outcome = connect.await;
    let took = started.elapsed();
    assert!(
        matches!(outcome, Err(StoreError::Backend(_))),
        "{outcome:?}"
    );
    assert!(
        took < timeout * 3,
        "connecting to a closed port took {took:?}, the acquire timeout is {timeout:?}"
    );
}
