//! `MySqlStore` against the MySQL or MariaDB at `SESSIONS_TEST_MYSQL_URL` (skipped, passing,
//! when it is unset). Every test works on a table of its own, dropped at the end.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sessions::clock::{ManualClock, SystemClock};
use sessions::error::StoreError;
use sessions::prelude::*;
use sessions::store::upkeep::Walk;
use sessions::store::{Deadline, Entry, Owner, Record, SessionKey, Slot, Stored, conformance};
use sessions::{Format, MySqlStore, SessionId};

/// A table of one test, dropped by [`TestTable::drop_table`].
struct TestTable {
    store: MySqlStore,
    name: String,
}

impl TestTable {
    async fn new() -> Option<Self> {
        let Ok(url) = std::env::var("SESSIONS_TEST_MYSQL_URL") else {
            println!("skipped: set SESSIONS_TEST_MYSQL_URL to run the MySQL store tests");
            return None;
        };
        let store = MySqlStore::connect(&url).await.expect("connect to MySQL");
        let name = format!("sessions_t{}", &fresh_key().as_str()[..12]);
        let store = store.table_name(&name);
        store.migrate().await.expect("migrate");
        Some(Self { store, name })
    }

    async fn execute(&self, sql: &str) -> u64 {
        sqlx::query(sql)
            .execute(self.store.pool())
            .await
            .expect(sql)
            .rows_affected()
    }

    async fn rows(&self) -> i64 {
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM `{}`", self.name))
            .fetch_one(self.store.pool())
            .await
            .expect("count")
    }

    async fn drop_table(self) {
        self.execute(&format!("DROP TABLE `{}`", self.name)).await;
    }
}

fn fresh_key() -> SessionKey {
    SessionId::generate().expect("an id").key()
}

/// A deadline from `now` (cut to the millisecond, as stored) to `secs` later.
fn deadline(now: SystemTime, secs: u64) -> Deadline {
    let ms = now
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64;
    let now = UNIX_EPOCH + Duration::from_millis(ms);
    Deadline {
        created_at: now,
        expires_at: now + Duration::from_secs(secs),
    }
}

fn cart(version: u32) -> Record {
    let mut record = Record::new();
    record.insert(Slot::new(
        "cart",
        version,
        Format::Json,
        vec![(Cow::Borrowed("n"), Bytes::from_static(b"7"))],
    ));
    record
}

fn live(record: Record, deadline: Deadline, owner: Option<&str>) -> Entry {
    let mut session = Stored::new(record, deadline);
    session.owner = owner.map(|name| Arc::new(Owner::new(name, deadline.created_at)));
    Entry::Live {
        version: 1,
        session,
    }
}

// The conformance runs take turns, on a server that does not wait for the disk at each commit
// (`innodb_flush_log_at_trx_commit = 2`, set by the run: a test server's setting, global in
// MySQL and MariaDB). 64 writers saving one session ten times each make 640 commits of one row,
// one after another (InnoDB holds the row's lock until the commit is on disk), and each save
// must land within the crate's retry budget (3 s): at this machine's flush times (~4 ms a
// commit when its disk is busy) that alone takes ~2.6 s. What the suite checks (atomic
// compare-and-swap, merges, moves) does not depend on when the log reaches the disk; the other
// tests run at the server's own setting. (The PostgreSQL suite does the same with
// `synchronous_commit = off`.)
static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn run_conformance(clock: Option<ManualClock>) {
    let Some(table) = TestTable::new().await else {
        return;
    };
    let _alone = ALONE.lock().await;
    table
        .execute("SET GLOBAL innodb_flush_log_at_trx_commit = 2")
        .await;
    match clock {
        Some(clock) => {
            conformance::run(table.store.clone().with_clock(clock.clone()), clock).await;
        }
        None => conformance::run(table.store.clone(), SystemClock).await,
    }
    table
        .execute("SET GLOBAL innodb_flush_log_at_trx_commit = 1")
        .await;
    table.drop_table().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    run_conformance(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_with_a_manual_clock() {
    run_conformance(Some(ManualClock::new())).await;
}

/// A binary owner column: `alice` is not `Alice` (a case-insensitive collation would hand one
/// user's sessions to another).
#[tokio::test]
async fn owners_are_compared_byte_for_byte() {
    let Some(table) = TestTable::new().await else {
        return;
    };
    let now = SystemTime::now();
    let (upper, lower) = (fresh_key(), fresh_key());
    let store = &table.store;
    for (key, owner) in [(&upper, "Alice"), (&lower, "alice")] {
        let entry = live(cart(1), deadline(now, 600), Some(owner));
        assert!(store.swap(key, None, Some(entry)).await.expect("create"));
    }
    let listed = store.owned_by("alice").await.expect("listed");
    assert_eq!(
        listed.iter().map(|(key, _)| key).collect::<Vec<_>>(),
        [&lower]
    );
    table.drop_table().await;
}

/// `migrate` twice changes nothing; the schema has the owner column, indexed.
#[tokio::test]
async fn migrate_is_idempotent_and_indexes_the_owner() {
    let Some(table) = TestTable::new().await else {
        return;
    };
    table.store.migrate().await.expect("again");
    let indexed: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT DISTINCT CAST(index_name AS CHAR) FROM information_schema.statistics
         WHERE table_schema = DATABASE() AND table_name = '{}' AND column_name = 'owner'",
        table.name
    ))
    .fetch_all(table.store.pool())
    .await
    .expect("statistics");
    assert_eq!(indexed, [format!("{}_by_owner", table.name)]);
    table.drop_table().await;
}

/// Ended rows are invisible, then removed by `delete_expired` and by the sweeper; live ones
/// stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ended_sessions_are_swept_and_live_ones_kept() {
    let Some(table) = TestTable::new().await else {
        return;
    };
    let clock = ManualClock::new();
    let store = table.store.clone().with_clock(clock.clone());
    let now = sessions::clock::Clock::now(&clock);
    let live_key = fresh_key();
    let entry = live(cart(1), deadline(now, 3600), None);
    assert!(
        store
            .swap(&live_key, None, Some(entry.clone()))
            .await
            .expect("create")
    );
    for _ in 0..3 {
        let ended = live(cart(1), deadline(now, 10), None);
        assert!(
            store
                .swap(&fresh_key(), None, Some(ended))
                .await
                .expect("create")
        );
    }
    clock.advance(Duration::from_secs(60));
    assert_eq!(table.rows().await, 4);
    assert_eq!(store.delete_expired().await.expect("swept"), 3);
    assert_eq!(table.rows().await, 1);
    for _ in 0..2 {
        let ended = live(cart(1), deadline(now, 10), None);
        assert!(
            store
                .swap(&fresh_key(), None, Some(ended))
                .await
                .expect("create")
        );
    }
    let sweeper = store.spawn_sweeper(Duration::from_millis(5));
    while table.rows().await > 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sweeper.abort();
    assert_eq!(store.load(&live_key).await.expect("load"), Some(entry));
    table.drop_table().await;
}

/// `migrate_all` rewrites old slots over more than one page, and counts a row that does not
/// decode as failed instead of stopping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_all_rewrites_old_slots_and_skips_broken_rows() {
    #[derive(Session, Default)]
    #[session(name = "cart", version = 1)]
    struct CartV1 {
        n: u32,
    }
    #[derive(Session, Default)]
    #[session(name = "cart", version = 2, migrate_from = CartV1)]
    struct Cart {
        n: u64,
    }
    impl From<CartV1> for Cart {
        fn from(v1: CartV1) -> Self {
            Cart { n: v1.n.into() }
        }
    }
    let Some(table) = TestTable::new().await else {
        return;
    };
    let store = &table.store;
    let now = SystemTime::now();
    for _ in 0..30 {
        let entry = live(cart(1), deadline(now, 600), None);
        assert!(
            store
                .swap(&fresh_key(), None, Some(entry))
                .await
                .expect("create")
        );
    }
    let broken = fresh_key();
    let entry = live(cart(1), deadline(now, 600), None);
    assert!(
        store
            .swap(&broken, None, Some(entry))
            .await
            .expect("create")
    );
    table
        .execute(&format!(
            "UPDATE `{}` SET data = X'00' WHERE `key` = X'{}'",
            table.name,
            broken.as_str()
        ))
        .await;
    let mut pages = 0;
    let walk = Walk::new().page_size(8).on_progress(|p| pages = p.pages);
    let report = store
        .migrate_all_with::<Cart>(Format::Json, walk)
        .await
        .expect("migrated");
    assert_eq!(report.migrated.get(&1), Some(&30));
    assert_eq!(report.failed, 1);
    assert_eq!(pages, 4);
    let again = store
        .migrate_all::<Cart>(Format::Json)
        .await
        .expect("again");
    assert_eq!((again.total_migrated(), again.current), (0, 30));
    assert!(matches!(
        store.load(&broken).await,
        Err(StoreError::Record(_))
    ));
    table.drop_table().await;
}

/// The store's default pool (10 connections) under the conformance suite's 64 writers is the
/// suite's own check; here: a write never waits for the server's clock, and a created row is
/// one row.
#[tokio::test]
async fn one_row_per_session() {
    let Some(table) = TestTable::new().await else {
        return;
    };
    let key = fresh_key();
    let now = SystemTime::now();
    let first = live(cart(1), deadline(now, 600), Some("42"));
    assert!(
        table
            .store
            .swap(&key, None, Some(first.clone()))
            .await
            .expect("create")
    );
    assert!(
        !table
            .store
            .swap(&key, None, Some(first))
            .await
            .expect("taken")
    );
    assert_eq!(table.rows().await, 1);
    let owner: Option<Vec<u8>> = sqlx::query_scalar(&format!(
        "SELECT owner FROM `{}` WHERE `key` = X'{}'",
        table.name,
        key.as_str()
    ))
    .fetch_one(table.store.pool())
    .await
    .expect("owner");
    assert_eq!(owner.as_deref(), Some(&b"42"[..]));
    table.drop_table().await;
}
