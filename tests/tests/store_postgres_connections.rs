//! `PostgresStore`'s connections, against the PostgreSQL at `SESSIONS_TEST_POSTGRES_URL`
//! (skipped, passing, when it is unset): the connections it keeps between calls (one round trip
//! a call, never more than the pool's size, replaced when the server cuts them, no write lost),
//! and failing fast while the server is unreachable (those need no server). Every test works
//! on tables of its own, dropped at the end.
//!
//! No test asserts how long something took (2 cores shared with builds make any bound flaky):
//! a call that failed fast is told from one that tried the server by its error (the circuit's
//! says "failing fast"), and a wait for something to happen is bounded only by [`HANG_GUARD`].

mod postgres_common;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use http::StatusCode;
use sessions::PostgresStore;
use sessions::error::StoreError;
use sessions::store::{Entry, SessionStore};
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;

use postgres_common::proxy::Proxy;
use postgres_common::{
    TestTable, app, fresh_key, hour_from, live, must_live, record, send, unique_table, url,
};

/// How long a test waits for something to happen (backends to end, connections to go back,
/// the server to be served again) before it calls the test broken: a guard against hanging,
/// not a bound the tests assert.
const HANG_GUARD: Duration = Duration::from_secs(30);

// ---- the connections kept between calls ---------------------------------------------------------

/// A store on `table`'s table, on a pool of `max` connections whose `application_name` is
/// `application` (so that the tests can find, count and cut them on the server).
async fn store_on(table: &TestTable, max: u32, application: &str) -> PostgresStore {
    let options = PgConnectOptions::from_str(&table.url)
        .expect("a PostgreSQL URL")
        .application_name(application);
    let pool = PostgresStore::pool_options()
        .max_connections(max)
        .connect_with(options)
        .await
        .expect("connect to SESSIONS_TEST_POSTGRES_URL");
    PostgresStore::from_pool(pool).table_name(table.name())
}

/// How many connections named `application` the server has.
async fn backends(admin: &PgPool, application: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1")
        .bind(application)
        .fetch_one(admin)
        .await
        .expect("pg_stat_activity")
}

/// Cuts every connection named `application` on the server (`pg_terminate_backend`, as an
/// administrator or a restart would); returns how many, once they are gone.
async fn cut(admin: &PgPool, application: &str) -> i64 {
    // Two statements: in one, the server may call pg_terminate_backend before it filters.
    let pids: Vec<i32> = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()",
    )
    .bind(application)
    .fetch_all(admin)
    .await
    .expect("pg_stat_activity");
    let ended: Vec<bool> =
        sqlx::query_scalar("SELECT pg_terminate_backend(pid) FROM unnest($1::int4[]) AS pid")
            .bind(&pids)
            .fetch_all(admin)
            .await
            .expect("pg_terminate_backend");
    let started = Instant::now();
    loop {
        let left: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)")
                .bind(&pids)
                .fetch_one(admin)
                .await
                .expect("pg_stat_activity");
        if left == 0 {
            return i64::try_from(ended.iter().filter(|ended| **ended).count()).expect("a count");
        }
        assert!(started.elapsed() < HANG_GUARD, "the backends did not end");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs `n` loads of `key` at once on `store`; returns how many failed (each with a backend
/// error: anything else fails the test).
async fn loads_at_once(store: &PostgresStore, key: &sessions::store::SessionKey, n: usize) -> i64 {
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (store, key) = (store.clone(), key.clone());
        calls.spawn(async move { store.load(&key).await });
    }
    let mut failed = 0;
    while let Some(call) = calls.join_next().await {
        match call.expect("a load panicked") {
            Ok(Some(_)) => {}
            Err(StoreError::Backend(err)) => {
                println!("a load failed: {err}");
                failed += 1;
            }
            other => panic!("a load came to {other:?}"),
        }
    }
    failed
}

/// Once warm, a load is one round trip and a save one: the connection a call used is kept for
/// the next, not given back to sqlx's pool (which pings every connection it is given back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_connection_serves_each_call_in_one_round_trip() {
    let Some(table) = TestTable::migrated().await else {
        return;
    };
    let (proxy, options) = Proxy::in_front_of(&table.url).await;
    let pool = PostgresStore::pool_options()
        .max_connections(2)
        .connect_with(options)
        .await
        .expect("connect through the proxy");
    let store = PostgresStore::from_pool(pool).table_name(table.name());
    let key = fresh_key();
    let deadline = hour_from(SystemTime::now());
    // Each statement is prepared on its first use on a connection: a round trip of its own.
    assert!(
        store
            .swap(&key, None, Some(live(1, record([]), deadline)))
            .await
            .expect("create")
    );
    let (version, _) = must_live(&store, &key).await;
    assert!(
        store
            .swap(&key, Some(version), Some(live(2, record([]), deadline)))
            .await
            .expect("update")
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = proxy.round_trips();
    for version in 2..7 {
        let (loaded, _) = must_live(&store, &key).await;
        assert_eq!(loaded, version);
        let next = live(version + 1, record([]), deadline);
        assert!(
            store
                .swap(&key, Some(version), Some(next))
                .await
                .expect("save")
        );
    }
    // A given-back connection's ping would come after its call: wait for any.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        proxy.round_trips() - before,
        10,
        "5 loads and 5 saves: one round trip each, nothing else"
    );
}

/// More calls at once than the pool has connections all succeed, on no more connections than
/// the pool's size; the pool's other users still get a connection while the store is busy;
/// and once the store is idle, its connections go back to the pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_calls_at_once_than_connections_share_them() {
    let Some(table) = TestTable::migrated().await else {
        return;
    };
    let application = unique_table("pgs_busy");
    let store = store_on(&table, 3, &application).await;
    let admin = table.store.pool();
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..48 {
        let store = store.clone();
        calls.spawn(async move {
            let key = fresh_key();
            let deadline = hour_from(SystemTime::now());
            assert!(
                store
                    .swap(&key, None, Some(live(1, record([]), deadline)))
                    .await?
            );
            for version in 1..6 {
                let (loaded, session) = must_live(&store, &key).await;
                assert_eq!(loaded, version);
                let next = Entry::Live {
                    version: version + 1,
                    session,
                };
                assert!(store.swap(&key, Some(version), Some(next)).await?);
            }
            Ok::<(), StoreError>(())
        });
    }
    let (mut most, mut others) = (0, 0);
    while !calls.is_empty() {
        most = most.max(backends(admin, &application).await);
        // Another user of the store's pool, while the store is busy (it would fail after the
        // acquire timeout).
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(store.pool())
            .await
            .expect("the pool's other users get a connection");
        assert_eq!(one, 1);
        others += 1;
        if let Ok(Some(call)) =
            tokio::time::timeout(Duration::from_millis(20), calls.join_next()).await
        {
            call.expect("no panic").expect("every call succeeds");
        }
    }
    assert!(most <= 3, "{most} connections on a pool of 3");
    println!("48 sessions at once on 3 connections: {most} seen at most; {others} other queries");
    // Idle for more than a second: every connection goes back to the pool.
    let idle = Instant::now();
    while store.pool().num_idle() != store.pool().size() as usize {
        assert!(
            idle.elapsed() < HANG_GUARD,
            "an idle store keeps its connections"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Connections the server cut (`pg_terminate_backend`, as an administrator or a restart does)
/// fail no load (a load that finds its kept connection cut runs again on a checked one) and
/// are never used again: the saves after them succeed, on new connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_the_server_cut_fails_no_load() {
    let Some(table) = TestTable::migrated().await else {
        return;
    };
    let application = unique_table("pgs_cut");
    let store = store_on(&table, 4, &application).await;
    let admin = table.store.pool();
    let key = fresh_key();
    let deadline = hour_from(SystemTime::now());
    assert!(
        store
            .swap(&key, None, Some(live(1, record([]), deadline)))
            .await
            .expect("create")
    );
    for round in 0..3 {
        assert_eq!(loads_at_once(&store, &key, 8).await, 0, "warm-up {round}");
    }
    let mut failed = 0;
    let mut total_cut = 0;
    for round in 0..3 {
        let cut = cut(admin, &application).await;
        assert!(
            cut >= 1,
            "round {round}: the store had no connection to cut"
        );
        total_cut += cut;
        for _ in 0..3 {
            failed += loads_at_once(&store, &key, 8).await;
        }
        for _ in 0..20 {
            must_live(&store, &key).await;
        }
        let (version, session) = must_live(&store, &key).await;
        let next = Entry::Live {
            version: version + 1,
            session,
        };
        assert!(
            store
                .swap(&key, Some(version), Some(next))
                .await
                .expect("a save after the cut")
        );
    }
    println!("{total_cut} connections cut in 3 rounds: {failed} loads failed");
    assert_eq!(
        failed, 0,
        "{failed} loads failed on {total_cut} cut connections"
    );
}

/// Writers racing on one session, while the server cuts the store's connections under them:
/// every save the store acknowledged is in the final version, and no more saves landed than
/// were acknowledged or failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_write_is_lost_when_the_server_cuts_kept_connections() {
    let Some(table) = TestTable::migrated().await else {
        return;
    };
    let application = unique_table("pgs_lost");
    let store = store_on(&table, 4, &application).await;
    let key = fresh_key();
    assert!(
        store
            .swap(
                &key,
                None,
                Some(live(1, record([]), hour_from(SystemTime::now())))
            )
            .await
            .expect("create")
    );
    let acknowledged = Arc::new(AtomicU64::new(0));
    let failed_saves = Arc::new(AtomicU64::new(0));
    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let (store, key) = (store.clone(), key.clone());
        let (acknowledged, failed_saves) = (acknowledged.clone(), failed_saves.clone());
        writers.spawn(async move {
            let started = Instant::now();
            let mut mine = 0;
            while mine < 10 {
                assert!(started.elapsed() < HANG_GUARD, "a writer made no progress");
                let Ok(Some(Entry::Live { version, session })) = store.load(&key).await else {
                    continue;
                };
                let next = Entry::Live {
                    version: version + 1,
                    session,
                };
                match store.swap(&key, Some(version), Some(next)).await {
                    Ok(true) => {
                        mine += 1;
                        acknowledged.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(false) => {}
                    Err(StoreError::Backend(_)) => {
                        failed_saves.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(err) => panic!("a save came to {err}"),
                }
            }
        });
    }
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(60)).await;
        cut(table.store.pool(), &application).await;
    }
    while let Some(writer) = writers.join_next().await {
        writer.expect("a writer panicked");
    }
    let (version, _) = must_live(&store, &key).await;
    let landed = version - 1;
    let (acknowledged, failed_saves) = (
        acknowledged.load(Ordering::SeqCst),
        failed_saves.load(Ordering::SeqCst),
    );
    println!("{landed} saves landed: {acknowledged} acknowledged, {failed_saves} failed");
    assert_eq!(acknowledged, 120);
    assert!(landed >= acknowledged, "an acknowledged save was lost");
    assert!(landed <= acknowledged + failed_saves);
}

/// The last clone of a store may be dropped after the runtime it ran on: its kept connections
/// are closed, without a panic (sqlx gives a connection back on a Tokio task).
#[test]
fn a_store_outliving_its_runtime_drops_cleanly() {
    if url().is_none() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let (table, store) = runtime.block_on(async {
        let table = TestTable::migrated().await.expect("a server");
        let store = table.store.clone();
        let key = fresh_key();
        assert!(
            store
                .swap(
                    &key,
                    None,
                    Some(live(1, record([]), hour_from(SystemTime::now())))
                )
                .await
                .expect("create")
        );
        must_live(&store, &key).await;
        (table, store)
    });
    drop(runtime);
    drop(store);
    drop(table);
}

// ---- the server unreachable -------------------------------------------------------------------

/// A URL of a loopback port nothing listens on.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    drop(listener);
    format!("postgres://postgres@127.0.0.1:{port}/test")
}

/// Whether `err` is the circuit's fast failure (the call did not try the server), as opposed
/// to a failure to get a connection (it did).
fn failed_fast(err: &StoreError) -> bool {
    err.to_string().contains("failing fast")
}

/// The backend error a call on `store` comes to (anything else fails the test).
async fn failure(store: PostgresStore, key: sessions::store::SessionKey) -> StoreError {
    match store.load(&key).await {
        Err(err @ StoreError::Backend(_)) => err,
        other => panic!("a load while the server is unreachable: {other:?}"),
    }
}

/// A store whose server cannot be reached (no server needed): the first call tries the server
/// and fails with a backend error (after the acquire timeout), the calls after it fail fast
/// without trying; once the window has passed, one call at a time tries again (the probe)
/// while the rest still fail fast.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_fails_fast_after_the_first_failure() {
    let timeout = Duration::from_millis(600);
    // Long enough that the 21 calls after the first failure fall in it even on a machine
    // stalled by builds: a call after it would be the next probe, not a fast failure.
    let window = Duration::from_secs(2);
    let pool = PostgresStore::pool_options()
        .acquire_timeout(timeout)
        .connect_lazy(&closed_port_url())
        .expect("a lazy pool");
    let store = PostgresStore::from_pool(pool).fail_fast_for(window);
    let key = fresh_key();
    let first = failure(store.clone(), key.clone()).await;
    assert!(!failed_fast(&first), "the first call did not try: {first}");
    for _ in 0..20 {
        let err = failure(store.clone(), key.clone()).await;
        assert!(
            failed_fast(&err),
            "a call while the server is known down tried it: {err}"
        );
    }
    let outcome = store
        .swap(
            &key,
            None,
            Some(live(1, record([]), hour_from(SystemTime::now()))),
        )
        .await;
    let message = match outcome {
        Err(StoreError::Backend(err)) => err.to_string(),
        other => panic!("a save while down: {other:?}"),
    };
    assert!(message.contains("unreachable"), "{message}");
    tokio::time::sleep(window).await;
    let calls: Vec<_> = (0..8)
        .map(|_| tokio::spawn(failure(store.clone(), key.clone())))
        .collect();
    let mut tried = 0;
    for call in calls {
        tried += usize::from(!failed_fast(&call.await.expect("no panic")));
    }
    assert_eq!(tried, 1, "one probe at a time tries the server");
}

/// With failing fast turned off, every call tries the server (and waits the acquire timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_fast_can_be_turned_off() {
    let timeout = Duration::from_millis(300);
    let pool = PostgresStore::pool_options()
        .acquire_timeout(timeout)
        .connect_lazy(&closed_port_url())
        .expect("a lazy pool");
    let store = PostgresStore::from_pool(pool).fail_fast_for(Duration::ZERO);
    for _ in 0..2 {
        let err = failure(store.clone(), fresh_key()).await;
        assert!(!failed_fast(&err), "failed fast: {err}");
    }
}

/// `connect_with` gives up when the acquire timeout it was given fires, and `connect` when the
/// default one does (rather than retrying the refused port for ever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_to_a_closed_port_fails_within_the_acquire_timeout() {
    let url = closed_port_url();
    let short = Duration::from_millis(500);
    let options = PostgresStore::pool_options().acquire_timeout(short);
    gives_up(PostgresStore::connect_with(&url, options)).await;
    gives_up(PostgresStore::connect(&url)).await;
}

/// `connect` fails with a backend error, the pool's timeout (the guard only stops a hang).
async fn gives_up(connect: impl Future<Output = Result<PostgresStore, StoreError>>) {
    let outcome = tokio::time::timeout(HANG_GUARD, connect)
        .await
        .expect("connecting gave up");
    match outcome {
        Err(StoreError::Backend(err)) => {
            assert!(err.to_string().contains("timed out"), "{err}");
        }
        other => panic!("{other:?}"),
    }
}

/// Everything `tracing` prints on this thread while the guard lives (the app test runs on one
/// thread): how a request's failure is told apart without timing it.
fn capture_logs() -> (
    Arc<std::sync::Mutex<Vec<u8>>>,
    tracing::subscriber::DefaultGuard,
) {
    #[derive(Clone)]
    struct Writer(Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Writer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Arc::new(std::sync::Mutex::new(Vec::new()));
    let writer = Writer(buffer.clone());
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    (buffer, tracing::subscriber::set_default(subscriber))
}

/// The server goes away under a running app: requests that need the session get a 503 that
/// says why — after the first, without trying the server (the log says it failed fast); the
/// sweeper keeps running; when the server is back, the same app serves the same sessions
/// again without a restart.
#[tokio::test]
async fn the_app_survives_the_server_going_away() {
    let Some(table) = TestTable::migrated().await else {
        return;
    };
    let (proxy, options) = Proxy::in_front_of(&table.url).await;
    let timeout = Duration::from_secs(1);
    let window = Duration::from_secs(2);
    let pool = PostgresStore::pool_options()
        .max_connections(4)
        .acquire_timeout(timeout)
        .connect_with(options)
        .await
        .expect("connect through the proxy");
    let store = PostgresStore::from_pool(pool)
        .table_name(table.name())
        .fail_fast_for(window);
    let sweeper = store.spawn_sweeper(Duration::from_millis(50));
    let app = app(store);
    let reply = send(&app, "/visit", None).await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "1"));
    let cookie = reply.cookie.expect("a new session sets its cookie");
    assert_eq!(send(&app, "/visit", Some(&cookie)).await.body, "2");

    let (logs, guard) = capture_logs();
    proxy.down();
    let mut tried = 0;
    for _ in 0..10 {
        let seen = logs.lock().expect("log lock").len();
        let reply = send(&app, "/visit", Some(&cookie)).await;
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            reply.body
        );
        assert!(
            reply.body.contains("session store unavailable"),
            "says what failed: {}",
            reply.body
        );
        let logged = String::from_utf8_lossy(&logs.lock().expect("log lock")[seen..]).into_owned();
        // The layer's line of this request (the sweeper logs its own failures meanwhile).
        let rejection: Vec<&str> = logged
            .lines()
            .filter(|line| line.contains("session rejection"))
            .collect();
        assert_eq!(rejection.len(), 1, "one rejection per request: {logged}");
        tried += usize::from(!rejection[0].contains("failing fast"));
    }
    drop(guard);
    assert!(tried <= 1, "{tried} of 10 requests tried the server");
    println!("server down: 10 requests answered 503, {tried} of them after trying the server");
    let new_visitor = send(&app, "/visit", None).await;
    assert_eq!(new_visitor.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        new_visitor.cookie.is_none(),
        "a cookie for a session that was not stored"
    );
    assert!(
        !sweeper.is_finished(),
        "the sweeper died while the store was down"
    );

    proxy.up().await;
    let back = Instant::now();
    let reply = loop {
        let reply = send(&app, "/visit", Some(&cookie)).await;
        if reply.status == StatusCode::OK || back.elapsed() > HANG_GUARD {
            break reply;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "3"),
        "the same session is served again, without restarting the app"
    );
    println!("server back: served again after {:?}", back.elapsed());
    assert_eq!(send(&app, "/visit", None).await.body, "1");
    assert!(!sweeper.is_finished(), "the sweeper stopped");
    sweeper.abort();
}
