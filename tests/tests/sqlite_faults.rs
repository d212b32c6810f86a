//! `SqliteStore` on a database it cannot write, through a real `Router`: a clear error status
//! with a message, in bounded time, never a hang or a panic; reads go on where SQLite allows.
//!
//! * Read-only: the tests run as root, where permission bits (chmod 0444 on the file or its
//!   directory) do not stop writes. So the file is made read-only in two ways that do hold for
//!   root: a pool opened with sqlx's `SqliteConnectOptions::read_only(true)` through
//!   `SqliteStore::from_pool`, and the file made immutable with `chattr +i` (skipped, with a
//!   line saying so, where `chattr` is missing or refused) and opened with `SqliteStore::open`.
//! * Locked: another connection holds `BEGIN EXCLUSIVE` on the file. In WAL mode (what `open`
//!   sets) that stops writers only: writes fail after the 5 s busy timeout, reads go on; in
//!   rollback-journal mode reads fail after the busy timeout too. Both recover once the lock
//!   is released, and a request that starts while the lock is held succeeds if it is released
//!   within the busy timeout.

mod http_common;

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use axum::Router;
use http::StatusCode;
use sessions::prelude::*;
use sessions::{SessionStore, SqliteStore};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{ConnectOptions, Connection, SqliteConnection};

use http_common::{Reply, app, get_with, key_of, post_with};

/// `SqliteStore::open`'s busy timeout.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// No request may take longer than this, whatever the fault.
const BOUND: Duration = Duration::from_secs(10);

/// A database file in a temp directory of its own, removed (immutable flag first) on drop.
struct TempDb {
    dir: PathBuf,
    path: PathBuf,
}

impl TempDb {
    fn new(what: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "sessions-sqlite-faults-{what}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("create a temp dir");
        let path = dir.join("sessions.db");
        Self { dir, path }
    }

    /// The database file and its WAL companions that exist.
    fn files(&self) -> Vec<PathBuf> {
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

    /// Opens the file with `SqliteStore::open` (WAL, 5 s busy timeout) and migrates it.
    async fn open(&self) -> SqliteStore {
        let store = SqliteStore::open(&self.path).await.expect("open");
        store.migrate().await.expect("migrate");
        store
    }

    /// A session holding a cart with one item, written through the app; its cookie.
    async fn seed(&self) -> String {
        let store = self.open().await;
        let reply = post_with(&app(SessionLayer::new(store.clone())), "/cart/apple", None).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        // Closing the last connection checkpoints the WAL into the file.
        store.pool().close().await;
        reply.cookie()
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = Command::new("chattr")
            .arg("-i")
            .arg(&self.dir)
            .args(self.files())
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

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

/// A refused write: 503, the layer's message, no cookie, within the bound.
fn assert_refused(reply: &Reply, message: &str) {
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reply:?}");
    assert_eq!(reply.header("x-session-error"), Some(message), "{reply:?}");
    assert!(reply.set_cookies().is_empty(), "{:?}", reply.set_cookies());
}

/// Writes of every kind (save, create, cycle, destroy) refused, reads served, on a store that
/// cannot write; the stored session is intact afterwards.
async fn writes_refused_reads_served(app: &Router, cookie: &str) {
    let (read, took) = timed("read", get_with(app, "/cart", Some(cookie))).await;
    assert_eq!(read.status, StatusCode::OK, "{read:?}");
    assert_eq!(read.body, "items=apple coupon=- visits=0");
    assert!(took < BOUND);

    let (save, _) = timed("save", post_with(app, "/cart/pear", Some(cookie))).await;
    assert_refused(&save, "session not saved");
    let (create, _) = timed("create", post_with(app, "/cart/pear", None)).await;
    assert_refused(&create, "session not saved");
    let (login, _) = timed("cycle_id", post_with(app, "/login", Some(cookie))).await;
    assert_refused(&login, "session not saved");
    let (logout, _) = timed("destroy", post_with(app, "/logout", Some(cookie))).await;
    assert_refused(&logout, "session not destroyed");

    let (read, _) = timed("read after", get_with(app, "/cart", Some(cookie))).await;
    assert_eq!(read.body, "items=apple coupon=- visits=0");
}

#[tokio::test]
async fn read_only_pool_refuses_writes_with_503_and_serves_reads() {
    let db = TempDb::new("read-only-pool");
    let cookie = db.seed().await;
    // Permission bits as well, for a non-root run; as root they change nothing.
    std::fs::set_permissions(&db.path, std::fs::Permissions::from_mode(0o444)).expect("chmod 0444");

    let store = read_only_store(&db.path).await;
    let app = app(SessionLayer::new(store.clone()));
    writes_refused_reads_served(&app, &cookie).await;
    assert!(store.load(&key_of(&cookie)).await.expect("load").is_some());
}

/// A read-only pool on `path` (`SqliteConnectOptions::read_only(true)`, the busy timeout of
/// `open`), through `SqliteStore::from_pool`.
async fn read_only_store(path: &Path) -> SqliteStore {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .busy_timeout(BUSY_TIMEOUT);
    let pool = SqlitePoolOptions::new()
        .connect_with(options)
        .await
        .expect("a read-only pool opens");
    SqliteStore::from_pool(pool)
}

/// Files made immutable with `chattr +i` (which holds for root) before the app starts:
/// `SqliteStore::open` refuses at once with SQLite's reason; a read-only pool serves reads and
/// answers writes with 503.
///
/// The file is taken out of WAL mode first and made immutable with its directory: in WAL mode
/// writes go to the `-wal` file beside the database (it outlives the pool here), so an
/// immutable database file alone still takes writes, piling up in the WAL; and an immutable
/// `-shm` file can kill the process with SIGBUS (SQLite maps it and cannot grow it), which no
/// library above SQLite can turn into an error.
#[tokio::test]
async fn immutable_files_refuse_to_open_for_writing_and_serve_reads() {
    let db = TempDb::new("immutable");
    let cookie = db.seed().await;
    // Back to the rollback journal, so no `-wal` / `-shm` file is left to map.
    let mut conn = SqliteConnectOptions::new()
        .filename(&db.path)
        .connect()
        .await
        .expect("a connection");
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
                "skipped: chattr +i refused ({}); the read-only pool test covers read-only files",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return;
        }
        Err(err) => {
            println!("skipped: no chattr ({err}); the read-only pool test covers read-only files");
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
    assert!(matches!(err, sessions::StoreError::Backend(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("attempt to write a readonly database"),
        "{err}"
    );
    assert!(took < BOUND, "{took:?}");

    let store = read_only_store(&db.path).await;
    let app = app(SessionLayer::new(store.clone()));
    writes_refused_reads_served(&app, &cookie).await;
    store.pool().close().await;
}

/// Holds `BEGIN EXCLUSIVE` on `path` from a connection of its own.
async fn lock(path: &Path) -> SqliteConnection {
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .connect()
        .await
        .expect("a second connection");
    sqlx::raw_sql("BEGIN EXCLUSIVE")
        .execute(&mut conn)
        .await
        .expect("BEGIN EXCLUSIVE");
    conn
}

async fn unlock(mut conn: SqliteConnection) {
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut conn)
        .await
        .expect("ROLLBACK");
    conn.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_database_fails_writes_after_the_busy_timeout_then_recovers() {
    let db = TempDb::new("locked-wal");
    let cookie = db.seed().await;
    let store = db.open().await;
    let app = app(SessionLayer::new(store.clone()));

    let locker = lock(&db.path).await;
    // WAL: readers are not blocked by a writer's lock.
    let (read, took) = timed("read while locked", get_with(&app, "/cart", Some(&cookie))).await;
    assert_eq!(read.status, StatusCode::OK, "{read:?}");
    assert_eq!(read.body, "items=apple coupon=- visits=0");
    assert!(took < BUSY_TIMEOUT, "a read waited for the write lock");
    // Writers wait out the busy timeout, then fail clearly.
    let (save, took) = timed(
        "save while locked",
        post_with(&app, "/cart/pear", Some(&cookie)),
    )
    .await;
    assert_refused(&save, "session not saved");
    assert!(
        took >= BUSY_TIMEOUT - Duration::from_millis(500),
        "failed before the busy timeout: {took:?}"
    );
    let (create, _) = timed("create while locked", post_with(&app, "/cart/pear", None)).await;
    assert_refused(&create, "session not saved");

    // Released: the same write goes through.
    unlock(locker).await;
    let (save, took) = timed(
        "save after unlock",
        post_with(&app, "/cart/pear", Some(&cookie)),
    )
    .await;
    assert_eq!(save.status, StatusCode::OK, "{save:?}");
    assert_eq!(save.body, "items=apple,pear coupon=- visits=0");
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_eq!(
        get_with(&app, "/cart", Some(&cookie)).await.body,
        "items=apple,pear coupon=- visits=0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_released_within_the_busy_timeout_only_delays_the_write() {
    let db = TempDb::new("locked-briefly");
    let cookie = db.seed().await;
    let store = db.open().await;
    let app = app(SessionLayer::new(store.clone()));

    let locker = lock(&db.path).await;
    // Released after 1 s, beside the request (joined, not spawned: the connection stays here).
    let release = async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        unlock(locker).await;
    };
    let ((save, took), ()) = tokio::join!(
        timed(
            "save while locked for 1 s",
            post_with(&app, "/cart/pear", Some(&cookie)),
        ),
        release
    );
    assert_eq!(save.status, StatusCode::OK, "{save:?}");
    assert_eq!(save.body, "items=apple,pear coupon=- visits=0");
    assert!(
        took >= Duration::from_millis(900) && took < BUSY_TIMEOUT,
        "{took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_rollback_journal_database_fails_reads_too_then_recovers() {
    let db = TempDb::new("locked-journal");
    let options = SqliteConnectOptions::new()
        .filename(&db.path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Delete)
        .busy_timeout(BUSY_TIMEOUT);
    let pool = SqlitePoolOptions::new()
        .connect_with(options)
        .await
        .expect("open in rollback-journal mode");
    let store = SqliteStore::from_pool(pool);
    store.migrate().await.expect("migrate");
    let app = app(SessionLayer::new(store.clone()));
    let cookie = post_with(&app, "/cart/apple", None).await.cookie();

    let locker = lock(&db.path).await;
    // The exclusive lock of the rollback journal stops readers too: the load fails, the
    // extractor answers 503 with what is wrong, after the busy timeout.
    let (read, took) = timed("read while locked", get_with(&app, "/cart", Some(&cookie))).await;
    assert_eq!(read.status, StatusCode::SERVICE_UNAVAILABLE, "{read:?}");
    assert!(read.body.contains("unavailable"), "{}", read.body);
    assert!(
        took >= BUSY_TIMEOUT - Duration::from_millis(500),
        "failed before the busy timeout: {took:?}"
    );
    let (save, _) = timed(
        "save while locked",
        post_with(&app, "/cart/pear", Some(&cookie)),
    )
    .await;
    assert_eq!(save.status, StatusCode::SERVICE_UNAVAILABLE, "{save:?}");

    unlock(locker).await;
    let (save, _) = timed(
        "save after unlock",
        post_with(&app, "/cart/pear", Some(&cookie)),
    )
    .await;
    assert_eq!(save.status, StatusCode::OK, "{save:?}");
    assert_eq!(
        get_with(&app, "/cart", Some(&cookie)).await.body,
        "items=apple,pear coupon=- visits=0"
    );
}
