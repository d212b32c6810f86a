//! `SqliteStore` when it cannot have the database to itself, through a real `Router`: a clear
//! error status in bounded time, never a hang or a panic; reads go on where SQLite allows, and
//! a request that waits for a lock never holds up the others.
//!
//! * Locked: another connection (of this process, or another process) holds `BEGIN
//!   EXCLUSIVE`. In WAL mode (what `open` sets) that stops writers only: a write finds the lock
//!   taken at once, goes to a blocking thread and waits there up to the 5 s busy timeout, then
//!   fails (503); reads go on. Released within the timeout, the write only waits.
//! * Cancelled: a write whose caller stops waiting leaves no transaction open.
//! * Read-only: the tests run as root, where permission bits do not stop writes, so the file is
//!   made immutable with `chattr +i` (skipped, with a line saying so, where `chattr` is missing
//!   or refused): `open` refuses at once.

mod sqlite_common;

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use http::{Method, StatusCode};
use sessions::error::StoreError;
use sessions::prelude::*;
use sessions::store::Record;
use sessions::store::{Entry, Stored};
use sessions::{SessionStore, SqliteStore};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

use sqlite_common::{Reply, TempDb, app, fresh_key, hour_from, key_of, lock, send, unlock};

/// `SqliteStore::open`'s busy timeout.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// A guard against a request that hangs, whatever the fault: far above the busy timeout. No
/// test asserts an upper bound on how long something took (2 cores shared with builds make any
/// such bound flaky): "did not wait" is told by what happened meanwhile or by the status (a
/// write that waited out the busy timeout fails). Lower bounds ("waited the busy timeout")
/// hold however slow the machine is.
const BOUND: Duration = Duration::from_secs(30);
/// The environment variable that makes [`lock_holder`] hold a lock on the file it names.
const HOLD: &str = "SESSIONS_TEST_SQLITE_HOLD_LOCK";

/// Sends a request and measures it; no request may exceed [`BOUND`].
async fn timed(what: &str, request: impl Future<Output = Reply>) -> (Reply, Duration) {
    let started = Instant::now();
    let reply = tokio::time::timeout(BOUND, request)
        .await
        .unwrap_or_else(|_| panic!("{what} hung for more than {BOUND:?}"));
    let took = started.elapsed();
    println!("{what}: {} in {took:?}", reply.status);
    (reply, took)
}

/// A refused write: 503, the layer's message, no cookie.
fn assert_refused(reply: &Reply, message: &str) {
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reply:?}");
    let said = reply.header("x-session-error").unwrap_or_default();
    assert!(said.contains(message), "{reply:?}");
    assert!(reply.set_cookies().is_empty(), "{:?}", reply.set_cookies());
}

/// A database with one session (a cart holding an apple), and its cookie.
async fn seeded(what: &str) -> (TempDb, SqliteStore, String) {
    let db = TempDb::new(what);
    let store = db.open().await;
    let reply = send(
        &app(SessionLayer::new(store.clone())),
        Method::POST,
        "/cart/apple",
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let cookie = reply.cookie();
    (db, store, cookie)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_database_serves_reads_fails_writes_after_the_busy_timeout_then_recovers() {
    let (db, store, cookie) = seeded("locked").await;
    let app = app(SessionLayer::new(store.clone()));

    let locker = lock(&db.path).await;
    // WAL: readers are not blocked by a writer's lock.
    let (read, _) = timed(
        "read while locked",
        send(&app, Method::GET, "/cart", Some(&cookie)),
    )
    .await;
    // (A read that waited for the write lock would wait out the busy timeout and fail.)
    assert_eq!(read.status, StatusCode::OK, "{read:?}");
    assert_eq!(read.body, "items=apple coupon=- visits=0");
    // Writers wait out the busy timeout (on a blocking thread), then fail clearly.
    let (save, took) = timed(
        "save while locked",
        send(&app, Method::POST, "/cart/pear", Some(&cookie)),
    )
    .await;
    assert_refused(&save, "not saved");
    assert!(
        took >= BUSY_TIMEOUT - Duration::from_millis(500),
        "failed before the busy timeout: {took:?}"
    );
    let (create, _) = timed(
        "create while locked",
        send(&app, Method::POST, "/cart/pear", None),
    )
    .await;
    assert_refused(&create, "not saved");
    match store.swap(&fresh_key(), Some(1), None).await {
        Err(StoreError::Backend(err)) => assert!(err.to_string().contains("locked"), "{err}"),
        other => panic!("a delete while locked: {other:?}"),
    }

    // Released: the same write goes through.
    unlock(locker).await;
    let (save, _) = timed(
        "save after unlock",
        send(&app, Method::POST, "/cart/pear", Some(&cookie)),
    )
    .await;
    assert_eq!(save.status, StatusCode::OK, "{save:?}");
    assert_eq!(save.body, "items=apple,pear coupon=- visits=0");
    assert_eq!(
        send(&app, Method::GET, "/cart", Some(&cookie)).await.body,
        "items=apple,pear coupon=- visits=0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_released_within_the_busy_timeout_only_delays_the_write() {
    let (db, store, cookie) = seeded("locked-briefly").await;
    let app = app(SessionLayer::new(store));

    let locker = lock(&db.path).await;
    // Released after 1 s, beside the request (joined, not spawned: the connection stays here).
    let release = async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        unlock(locker).await;
    };
    let ((save, took), ()) = tokio::join!(
        timed(
            "save while locked for 1 s",
            send(&app, Method::POST, "/cart/pear", Some(&cookie)),
        ),
        release
    );
    // (It waited for the lock; had it waited out the busy timeout, it would have failed.)
    assert_eq!(save.status, StatusCode::OK, "{save:?}");
    assert_eq!(save.body, "items=apple,pear coupon=- visits=0");
    assert!(took >= Duration::from_millis(900), "{took:?}");
}

/// A write waiting for the lock waits on a blocking thread: the runtime's threads go on
/// serving the other requests meanwhile, even on a runtime of one thread.
#[tokio::test(flavor = "current_thread")]
async fn a_write_waiting_for_the_lock_holds_up_no_other_request() {
    let (db, store, cookie) = seeded("no-stall").await;
    let app = app(SessionLayer::new(store));
    let locker = lock(&db.path).await;
    let waiting = tokio::spawn({
        let (app, cookie) = (app.clone(), cookie.clone());
        async move { send(&app, Method::POST, "/cart/pear", Some(&cookie)).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Twenty reads served on the one runtime thread while the write waits: had the write
    // blocked the thread, none could run before it ended.
    for _ in 0..20 {
        let (read, _) = timed(
            "read beside a waiting write",
            send(&app, Method::GET, "/cart", Some(&cookie)),
        )
        .await;
        assert_eq!(read.status, StatusCode::OK);
    }
    assert!(
        !waiting.is_finished(),
        "the reads were held up until the write ended"
    );
    unlock(locker).await;
    let save = tokio::time::timeout(BOUND, waiting)
        .await
        .expect("the write ends")
        .expect("no panic");
    assert_eq!(save.status, StatusCode::OK, "{save:?}");
}

/// A write whose caller gave up (a dropped request) leaves no transaction open: once the
/// other connection's lock is gone, the database takes a write lock at once, and the store
/// goes on working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_write_leaves_no_transaction_open() {
    let (db, store, cookie) = seeded("cancelled").await;
    let key = key_of(&cookie);
    let Some(entry) = store.load(&key).await.expect("load") else {
        panic!("seeded");
    };
    let locker = lock(&db.path).await;
    let next = Entry::Live {
        version: entry.version() + 1,
        session: entry.session().cloned().expect("live"),
    };
    let cancelled = tokio::time::timeout(
        Duration::from_millis(200),
        store.swap(&key, Some(entry.version()), Some(next)),
    )
    .await;
    assert!(cancelled.is_err(), "the write was waiting for the lock");
    let create = tokio::time::timeout(
        Duration::from_millis(200),
        store.swap(
            &fresh_key(),
            None,
            Some(Entry::Live {
                version: 1,
                session: Stored::new(Record::new(), hour_from(SystemTime::now())),
            }),
        ),
    )
    .await;
    assert!(create.is_err(), "the create was waiting for the lock");
    unlock(locker).await;

    // The abandoned writes finish (or not) on their blocking threads; none holds the lock
    // after it.
    let mut conn = SqliteConnectOptions::new()
        .filename(&db.path)
        .busy_timeout(Duration::from_secs(1))
        .connect()
        .await
        .expect("a connection");
    // (Held, the lock would make this fail after the connection's 1 s busy timeout.)
    sqlx::raw_sql("BEGIN IMMEDIATE; COMMIT")
        .execute(&mut conn)
        .await
        .expect("the write lock is free");
    conn.close().await.expect("close");
    let app = app(SessionLayer::new(store.clone()));
    let (save, _) = timed(
        "save after",
        send(&app, Method::POST, "/cart/pear", Some(&cookie)),
    )
    .await;
    assert_eq!(save.status, StatusCode::OK, "{save:?}");
}

/// Not a test on its own: when [`HOLD`] names a database file, holds `BEGIN EXCLUSIVE` on it
/// for the milliseconds in `SESSIONS_TEST_SQLITE_HOLD_MS`, as another process would (the test
/// below runs this binary again for it).
#[tokio::test]
async fn lock_holder() {
    let Some(path) = std::env::var_os(HOLD) else {
        return;
    };
    let hold = std::env::var("SESSIONS_TEST_SQLITE_HOLD_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(1000);
    let locker = lock(std::path::Path::new(&path)).await;
    println!("locked");
    tokio::time::sleep(Duration::from_millis(hold)).await;
    unlock(locker).await;
}

/// Starts this test binary as another process that holds the write lock for `hold`; returns
/// once it holds it.
fn hold_in_another_process(db: &TempDb, hold: Duration) -> std::process::Child {
    let mut child = Command::new(std::env::current_exe().expect("this test binary"))
        .args(["--exact", "lock_holder", "--nocapture", "--test-threads=1"])
        .env(HOLD, &db.path)
        .env("SESSIONS_TEST_SQLITE_HOLD_MS", hold.as_millis().to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("another process");
    let stdout = child.stdout.take().expect("its stdout");
    let mut lines = BufReader::new(stdout).lines();
    loop {
        match lines.next() {
            // libtest prints `test lock_holder ... ` before it, on the same line.
            Some(Ok(line)) if line.trim_end().ends_with("locked") => break,
            Some(Ok(_)) => {}
            other => panic!("the other process did not take the lock: {other:?}"),
        }
    }
    // Read the rest, so that it can write it.
    std::thread::spawn(move || lines.for_each(drop));
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_by_another_process() {
    let (db, store, cookie) = seeded("other-process").await;
    let app = app(SessionLayer::new(store));

    // Held for 1.5 s: reads go on, a write waits for the lock and then goes through.
    let mut child = hold_in_another_process(&db, Duration::from_millis(1500));
    let (read, _) = timed(
        "read while another process holds the lock",
        send(&app, Method::GET, "/cart", Some(&cookie)),
    )
    .await;
    assert_eq!(read.status, StatusCode::OK, "{read:?}");
    // (It waits for the lock; had it waited out the busy timeout, it would have failed.)
    let (save, _) = timed(
        "save while another process holds the lock",
        send(&app, Method::POST, "/cart/pear", Some(&cookie)),
    )
    .await;
    assert_eq!(save.status, StatusCode::OK, "{save:?}");
    assert_eq!(save.body, "items=apple,pear coupon=- visits=0");
    assert!(child.wait().expect("the other process ends").success());

    // Held past the busy timeout: the write fails with 503, within the bound.
    let mut child = hold_in_another_process(&db, BUSY_TIMEOUT + Duration::from_secs(2));
    let (save, took) = timed(
        "save while another process holds the lock too long",
        send(&app, Method::POST, "/cart/plum", Some(&cookie)),
    )
    .await;
    assert_refused(&save, "not saved");
    assert!(
        took >= BUSY_TIMEOUT - Duration::from_millis(500),
        "{took:?}"
    );
    assert!(child.wait().expect("the other process ends").success());
    let (save, _) = timed(
        "save after",
        send(&app, Method::POST, "/cart/plum", Some(&cookie)),
    )
    .await;
    assert_eq!(save.status, StatusCode::OK, "{save:?}");
}

/// Files made immutable with `chattr +i` (which holds for root): `SqliteStore::open` refuses
/// at once with SQLite's reason. The file is taken out of WAL mode first and made immutable
/// with its directory: an immutable `-shm` file can kill the process with SIGBUS (SQLite maps
/// it and cannot grow it), which no library above SQLite can turn into an error.
#[tokio::test]
async fn an_immutable_file_refuses_to_open() {
    let (db, store, _) = seeded("immutable").await;
    drop(store);
    // Let the store's threads close their connections.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut conn = db.connect().await;
    sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE")
        .execute(&mut conn)
        .await
        .expect("leave WAL");
    conn.close().await.expect("close");
    assert_eq!(db.files(), std::slice::from_ref(&db.path), "WAL files left");
    match Command::new("chattr")
        .arg("+i")
        .args(db.files())
        .arg(&db.dir)
        .output()
    {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            println!(
                "skipped: chattr +i refused ({})",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return;
        }
        Err(err) => {
            println!("skipped: no chattr ({err})");
            return;
        }
    }
    let started = Instant::now();
    let refused = SqliteStore::open(&db.path).await;
    let took = started.elapsed();
    let Err(err) = refused else {
        panic!("an immutable database opened for writing");
    };
    println!("open: {err} in {took:?}");
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
}

#[tokio::test]
async fn a_missing_directory_fails_to_open() {
    let db = TempDb::new("missing");
    let err = SqliteStore::open(db.dir.join("no/such/dir/sessions.db"))
        .await
        .expect_err("no such directory");
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
}
