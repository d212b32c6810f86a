//! `SqliteStore` against real SQLite databases: temp files (and memory), always run.

mod sql_common;

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use sessions::store::conformance;
use sessions::{
    Format, ManualClock, MigrationReport, Session, SessionStore, SqliteStore, StoreError,
    SystemClock,
};
use sqlx::Row;

use sql_common::{Rows, SqlStore, fresh_key, hour_from, json_slot, must_load, record};

/// A database file in the temp dir, removed (with its WAL files) when dropped.
struct TempDb {
    path: PathBuf,
}

impl TempDb {
    fn new() -> Self {
        let name = sql_common::unique_table("sessions_test");
        Self {
            path: std::env::temp_dir().join(format!("{name}.db")),
        }
    }

    async fn open(&self) -> SqliteStore {
        let store = SqliteStore::open(&self.path).await.expect("open");
        store.migrate().await.expect("migrate");
        store
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.path.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

impl SqlStore for SqliteStore {
    fn clocked(self, clock: ManualClock) -> Self {
        self.with_clock(clock)
    }

    fn expire_now(&self) -> impl Future<Output = Result<u64, StoreError>> + Send {
        self.delete_expired()
    }

    fn sweeper(&self, every: Duration) -> tokio::task::JoinHandle<()> {
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
            "SELECT (SELECT count(*) FROM \"{t}\" WHERE key = ?1),
                    (SELECT count(*) FROM \"{t}_slots\" WHERE key = ?1),
                    (SELECT count(*) FROM \"{t}_fields\" WHERE key = ?1)"
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
        let sql = format!("UPDATE \"{t}_slots\" SET version = ?3 WHERE key = ?1 AND slot = ?2");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_a_file() {
    let db = TempDb::new();
    conformance::run(db.open().await, SystemClock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_in_memory() {
    let store = SqliteStore::in_memory().await.expect("in memory");
    store.migrate().await.expect("migrate");
    conformance::run(store, SystemClock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_with_a_manual_clock() {
    let db = TempDb::new();
    let clock = ManualClock::new();
    conformance::run(db.open().await.with_clock(clock.clone()), clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_clients_on_one_session() {
    let db = TempDb::new();
    let started = std::time::Instant::now();
    sql_common::concurrent_clients(db.open().await).await;
    println!(
        "{} clients x {} load+save: {:?}",
        sql_common::CLIENTS,
        sql_common::ROUNDS,
        started.elapsed()
    );
}

/// A database the previous release made (tables without slot revisions, a session in them)
/// keeps working after `migrate()`: its slots load at revision 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_of_the_previous_release_are_migrated() {
    let db = TempDb::new();
    let store = SqliteStore::open(&db.path).await.expect("open");
    let t = store.table().to_owned();
    let old_schema = [
        format!(
            "CREATE TABLE \"{t}\" (key TEXT PRIMARY KEY NOT NULL, created_at INTEGER NOT NULL,
             expires_at INTEGER NOT NULL) WITHOUT ROWID"
        ),
        format!("CREATE INDEX \"{t}_by_expiry\" ON \"{t}\" (expires_at)"),
        format!(
            "CREATE TABLE \"{t}_slots\" (id INTEGER PRIMARY KEY,
             key TEXT NOT NULL REFERENCES \"{t}\" (key) ON DELETE CASCADE, slot TEXT NOT NULL,
             type_tag TEXT NOT NULL, version INTEGER NOT NULL, format_tag INTEGER NOT NULL,
             UNIQUE (key, slot))"
        ),
        format!("CREATE INDEX \"{t}_slots_by_name\" ON \"{t}_slots\" (slot, key)"),
        format!(
            "CREATE TABLE \"{t}_fields\" (id INTEGER PRIMARY KEY, key TEXT NOT NULL,
             slot TEXT NOT NULL, field TEXT NOT NULL, bytes BLOB NOT NULL,
             UNIQUE (key, slot, field),
             FOREIGN KEY (key, slot) REFERENCES \"{t}_slots\" (key, slot) ON DELETE CASCADE)"
        ),
    ];
    let key = fresh_key();
    let old_rows = sql_common::revisions::old_release_rows(&t, &key, "X'31'");
    for statement in old_schema.iter().chain(&old_rows) {
        sqlx::query(statement)
            .execute(store.pool())
            .await
            .expect("the previous release's schema and rows");
    }
    sql_common::revisions::old_rows_load_at_revision_one(&store, &key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_round_trip_exactly_under_hashed_keys() {
    let db = TempDb::new();
    sql_common::exact_round_trip(db.open().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_fields_in_one_slot() {
    let db = TempDb::new();
    sql_common::many_fields(db.open().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_rows_are_record_errors() {
    let db = TempDb::new();
    sql_common::corrupt_rows(db.open().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_saves_write_nothing() {
    let db = TempDb::new();
    sql_common::refused_saves_write_nothing(db.open().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_all_rewrites_old_slots() {
    let db = TempDb::new();
    sql_common::migrate_all_counts(db.open().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_all_never_clobbers_a_concurrent_save() {
    let db = TempDb::new();
    sql_common::migrate_all_races_saves(db.open().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_expired_and_the_sweeper() {
    let db = TempDb::new();
    sql_common::expiry_and_sweeper(db.open().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_reopening_the_file() {
    let db = TempDb::new();
    let key = fresh_key();
    let created = record([
        json_slot("cart", &[("items", "[\"apple\"]"), ("coupon", "null")]),
        json_slot("prefs", &[("dark", "true")]),
    ]);
    let deadline = hour_from(SystemTime::now());
    {
        let store = db.open().await;
        store
            .create(&key, &created, deadline)
            .await
            .expect("create");
        store
            .save(
                &key,
                &sql_common::field_update("prefs", "dark", "false"),
                deadline,
            )
            .await
            .expect("save");
        store.pool().close().await;
    }
    let store = db.open().await;
    let stored = store.load(&key).await.expect("load").expect("still there");
    let mut expected = created;
    expected
        .apply(&sql_common::field_update("prefs", "dark", "false"))
        .expect("applies");
    assert_eq!(stored.record, expected);
    assert_eq!(
        stored.deadline.created_at,
        sql_common::ms(deadline.created_at)
    );
    assert_eq!(
        stored.deadline.expires_at,
        sql_common::ms(deadline.expires_at)
    );
}

#[tokio::test]
async fn open_turns_on_wal_and_synchronous_normal() {
    let db = TempDb::new();
    let store = db.open().await;
    let mut conn = store.pool().acquire().await.expect("connection");
    let mode: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(&mut *conn)
        .await
        .expect("pragma")
        .get(0);
    assert_eq!(mode, "wal");
    let synchronous: i64 = sqlx::query("PRAGMA synchronous")
        .fetch_one(&mut *conn)
        .await
        .expect("pragma")
        .get(0);
    assert_eq!(synchronous, 1, "synchronous=NORMAL");
    let busy: i64 = sqlx::query("PRAGMA busy_timeout")
        .fetch_one(&mut *conn)
        .await
        .expect("pragma")
        .get(0);
    assert!(busy >= 1000, "busy_timeout is {busy} ms");
}

#[tokio::test]
async fn table_names_keep_stores_apart() {
    let db = TempDb::new();
    let base = db.open().await;
    let shop = base.clone().table_name("shop_sessions");
    shop.migrate().await.expect("migrate");
    shop.migrate().await.expect("migrate twice");
    let key = fresh_key();
    let deadline = hour_from(SystemTime::now());
    shop.create(&key, &record([json_slot("cart", &[("n", "1")])]), deadline)
        .await
        .expect("create");
    assert!(base.load(&key).await.expect("load").is_none());
    assert_eq!(
        must_load(&shop, &key).await,
        record([json_slot("cart", &[("n", "1")])])
    );
    // The same key in the other tables is another session.
    base.create(&key, &record([]), deadline)
        .await
        .expect("create");
    assert_eq!(shop.rows(key.as_str()).await, (1, 1, 1));
    assert_eq!(base.rows(key.as_str()).await, (1, 0, 0));

    for bad in [
        "",
        "1abc",
        "a-b",
        "x\"; DROP TABLE sessions; --",
        &"a".repeat(41),
    ] {
        let err = base.clone().try_table_name(bad).expect_err(bad);
        assert_eq!(err.name(), bad);
    }
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        base.clone().table_name("no spaces")
    }));
    assert!(
        panicked.is_err(),
        "an invalid table name is refused at setup"
    );
}

#[tokio::test]
async fn a_store_without_tables_fails_as_a_backend_error() {
    let store = SqliteStore::in_memory().await.expect("in memory");
    match store.load(&fresh_key()).await {
        Err(StoreError::Backend(err)) => {
            assert!(err.to_string().contains("no such table"), "{err}");
        }
        other => panic!("expected a backend error, got {other:?}"),
    }
}
