//! `PostgresStore` against the PostgreSQL at `SESSIONS_TEST_POSTGRES_URL` (skipped, passing,
//! when it is unset). Every test works on tables of its own, dropped at the end.

mod postgres_common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::StatusCode;
use sessions::clock::{Clock, ManualClock, SystemClock};
use sessions::error::StoreError;
use sessions::prelude::*;
use sessions::store::Deadline;
use sessions::store::{Entry, Owner, blob, conformance};
use sessions::{Format, PostgresStore};

use postgres_common::fixture;
use postgres_common::proxy::Proxy;
use postgres_common::{
    TestTable, app, fresh_key, hour_from, json_slot, key_of, live, must_live, record, send,
};

// The conformance runs have the server to themselves, on connections that do not wait for WAL
// flushes (`TestTable::alone`): 64 writers saving one session ten times each make 640 commits of
// one row, one after another, and each save must land within the crate's retry budget (3 s). At
// this machine's flush times (~4 ms a commit when its disk is busy) that alone takes ~2.6 s.
// What the suite checks (atomic compare-and-swap, merges, moves) does not depend on when the
// WAL reaches the disk; the tests below run at the server's settings.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let Some(table) = TestTable::alone().await else {
        return;
    };
    conformance::run(table.store.clone(), SystemClock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_with_a_manual_clock() {
    let Some(table) = TestTable::alone().await else {
        return;
    };
    let clock = ManualClock::new();
    conformance::run(table.store.clone().with_clock(clock.clone()), clock).await;
}

// ---- one row per session, one statement per call -------------------------------------------

/// Through the layer: a request that reads and saves its session runs two statements (the
/// load, the save: no `BEGIN`/`COMMIT`), a read-only request one, a new session one; each
/// statement is one round trip of the request's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_is_one_round_trip_and_a_save_one() {
    let Some(table) = TestTable::migrated().await else {
        return;
    };
    let (proxy, options) = Proxy::in_front_of(&table.url).await;
    let pool = PostgresStore::pool_options()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("connect through the proxy");
    let app = app(PostgresStore::from_pool(pool).table_name(table.name()));
    // Each statement is prepared on its first use on a connection: a round trip of its own.
    let first = send(&app, "/visit", None).await;
    let cookie = first.cookie.expect("a new session sets its cookie");
    send(&app, "/visit", Some(&cookie)).await;
    send(&app, "/peek", Some(&cookie)).await;
    send(&app, "/visit", None).await;
    for round in 0..3 {
        for (path, cookie, statements, what) in [
            ("/visit", Some(cookie.as_str()), 2, "a load and a save"),
            ("/peek", Some(cookie.as_str()), 1, "a read-only request"),
            ("/visit", None, 1, "a new session"),
        ] {
            let before = proxy.statements();
            let reply = send(&app, path, cookie).await;
            assert_eq!(reply.status, StatusCode::OK, "{what}");
            assert_eq!(
                proxy.statements() - before,
                statements,
                "round {round}: {what}"
            );
        }
    }
}

/// A session is one row: keyed by the 32 bytes of its key (a hash of the id, never the id),
/// with its version, end and owner beside the encoded entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_one_row_under_the_hash_of_its_id() {
    let Some(table) = TestTable::migrated().await else {
        return;
    };
    let app = app(table.store.clone());
    let cookie = send(&app, "/visit", None).await.cookie.expect("cookie");
    send(&app, "/visit", Some(&cookie)).await;
    let id = cookie.split_once('=').map(|(_, id)| id).expect("a pair");
    type Row = (Vec<u8>, i64, i64, Option<String>, Vec<u8>);
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT key, version, expires_at, owner, data FROM \"{}\"",
        table.name()
    ))
    .fetch_all(table.store.pool())
    .await
    .expect("read the table");
    assert_eq!(rows.len(), 1, "one row per session");
    let (key, version, expires_at, owner, data) = &rows[0];
    assert_eq!(&key[..], key_of(&cookie).as_bytes(), "the key's digest");
    assert!(
        !data.windows(id.len()).any(|w| w == id.as_bytes()),
        "the id is stored"
    );
    assert_eq!((*version, owner.as_deref()), (2, None));
    let entry = blob::decode(Bytes::from(data.clone())).expect("the entry's bytes");
    assert_eq!(entry.version(), 2);
    let end = UNIX_EPOCH + Duration::from_millis(u64::try_from(*expires_at).expect("after 1970"));
    assert_eq!(entry.expires_at(), end, "the column is the entry's end");
}

// ---- the upgrade from the earlier layout -------------------------------------------------------

/// The fixture's sessions (written by the earlier store in its three tables) load back exactly
/// after `migrate()`: in place, under the same table name, the old tables gone; and a second
/// `migrate()` changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_earlier_layout_is_converted_in_place() {
    let Some(table) = TestTable::unmigrated().await else {
        return;
    };
    fixture::load_old_tables(&table).await;
    table.store.migrate().await.expect("migrate");
    fixture::check_every_session(&table.store).await;
    let gone: (bool, bool) =
        sqlx::query_as("SELECT to_regclass($1) IS NULL, to_regclass($2) IS NULL")
            .bind(format!("\"{}_slots\"", table.name()))
            .bind(format!("\"{}_fields\"", table.name()))
            .fetch_one(table.store.pool())
            .await
            .expect("look for the old tables");
    assert_eq!(gone, (true, true), "the old tables are dropped");
    assert_eq!(table.count().await, 6);
    table.store.migrate().await.expect("migrate again");
    fixture::check_every_session(&table.store).await;
    // A converted session is saved like any other.
    let key = fixture::manifest()[0].key.clone();
    let (version, session) = must_live(&table.store, &key).await;
    let next = Entry::Live {
        version: version + 1,
        session,
    };
    assert!(
        table
            .store
            .swap(&key, Some(version), Some(next))
            .await
            .expect("swap")
    );
}

/// Several instances starting at once convert the tables once, and all start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_convert_once() {
    let Some(table) = TestTable::unmigrated().await else {
        return;
    };
    fixture::load_old_tables(&table).await;
    let mut runs = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let store = table.store.clone();
        runs.spawn(async move { store.migrate().await });
    }
    while let Some(run) = runs.join_next().await {
        run.expect("no panic").expect("concurrent migrate");
    }
    fixture::check_every_session(&table.store).await;
    // And on a database without the table, several instances create it at once.
    let fresh = table.beside().await;
    let mut runs = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let store = fresh.store.clone();
        runs.spawn(async move { store.migrate().await });
    }
    while let Some(run) = runs.join_next().await {
        run.expect("no panic").expect("concurrent migrate");
    }
}

/// Ended sessions of the earlier layout are not carried over, nor is a session whose rows no
/// record can hold; the others are, and slots of the release before revisions start at 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conversion_leaves_out_ended_and_unreadable_sessions() {
    let Some(table) = TestTable::unmigrated().await else {
        return;
    };
    fixture::load_old_tables(&table).await;
    let t = table.name().to_owned();
    let (ended, broken) = (fresh_key(), fresh_key());
    for statement in [
        format!("INSERT INTO \"{t}\" VALUES ('{}', 1, 2)", ended.as_str()),
        format!(
            "INSERT INTO \"{t}\" VALUES ('{}', 1, 4102444800000)",
            broken.as_str()
        ),
        format!(
            "INSERT INTO \"{t}_slots\" (key, slot, type_tag, version, format_tag) VALUES ('{}', 'cart', 'cart', -1, 1)",
            broken.as_str()
        ),
        format!("INSERT INTO \"{t}\" VALUES ('not-a-key', 1, 4102444800000)"),
        // The release before revisions had no revision column.
        format!("ALTER TABLE \"{t}_slots\" DROP COLUMN revision"),
    ] {
        table.execute(&statement).await;
    }
    table.store.migrate().await.expect("migrate");
    assert_eq!(
        table.count().await,
        6,
        "only the six readable live sessions"
    );
    for key in [&ended, &broken] {
        assert!(table.store.load(key).await.expect("load").is_none());
    }
    let (_, session) = must_live(&table.store, &fixture::manifest()[0].key).await;
    let revisions: Vec<u64> = session.record.slots().map(|slot| slot.revision()).collect();
    assert_eq!(revisions, [1, 1], "slots without a revision start at 1");
}

/// A table of that name that is not a session table is refused, and left as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_table_is_left_alone() {
    let Some(table) = TestTable::unmigrated().await else {
        return;
    };
    table
        .execute(&format!("CREATE TABLE \"{}\" (id INT)", table.name()))
        .await;
    table
        .execute(&format!("INSERT INTO \"{}\" VALUES (7)", table.name()))
        .await;
    let outcome = table.store.migrate().await;
    assert!(
        matches!(outcome, Err(StoreError::Backend(_))),
        "{outcome:?}"
    );
    assert_eq!(table.count().await, 1);
}

// ---- bad data -----------------------------------------------------------------------------------

/// Stored bytes that are not an entry load as `StoreError::Record` (never a panic or a backend
/// error); through the layer the request gets a fresh session, and the row is left as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_rows_are_record_errors() {
    let Some(table) = TestTable::migrated().await else {
        return;
    };
    let app = app(table.store.clone());
    let cookie = send(&app, "/visit", None).await.cookie.expect("cookie");
    let key = key_of(&cookie);
    let t = table.name();
    for corrupt in [
        "'\\x00ff01'::bytea",
        "substring(data from 1 for octet_length(data) - 3)",
        "data || '\\x00'::bytea",
    ] {
        table
            .execute(&format!(
                "UPDATE \"{t}\" SET data = {corrupt}, owner = 'o' WHERE key = '\\x{}'",
                key.as_str()
            ))
            .await;
        let outcome = table.store.load(&key).await;
        assert!(
            matches!(outcome, Err(StoreError::Record(_))),
            "{corrupt}: {outcome:?}"
        );
        // The owner's listing skips it (one unreadable session does not fail the listing)
        // and reports it, with its version, so a revocation can end it.
        let listed = table
            .store
            .owned_entries("o")
            .await
            .expect("the listing works");
        assert!(listed.entries.is_empty(), "{corrupt}: {listed:?}");
        assert_eq!(listed.unreadable.len(), 1, "{corrupt}: {listed:?}");
        assert!(
            listed.unreadable[0].1.stored_version().is_some(),
            "{corrupt}"
        );
        let reply = send(&app, "/visit", Some(&cookie)).await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (StatusCode::OK, "1"),
            "{corrupt}"
        );
        let fresh = reply.cookie.expect("a fresh session's cookie");
        assert_ne!(fresh, cookie, "{corrupt}: a fresh session gets a new id");
        assert!(
            matches!(table.store.load(&key).await, Err(StoreError::Record(_))),
            "left as it is"
        );
        table
            .execute(&format!("DELETE FROM \"{t}\" WHERE owner = 'o'"))
            .await;
        table
            .execute(&format!(
                "INSERT INTO \"{t}\" SELECT '\\x{}', version, expires_at, owner, data FROM \"{t}\" WHERE key = '\\x{}'",
                key.as_str(),
                key_of(&fresh).as_str()
            ))
            .await;
    }
    // A key that is not 32 bytes is no session anyone holds: left out of the listing (with a
    // warning), which still works.
    table
        .execute(&format!(
            "INSERT INTO \"{t}\" SELECT '\\x0102', version, expires_at, 'short', data FROM \"{t}\" LIMIT 1"
        ))
        .await;
    let listed = table
        .store
        .owned_entries("short")
        .await
        .expect("the listing works");
    assert!(
        listed.entries.is_empty() && listed.unreadable.is_empty(),
        "{listed:?}"
    );
}

// ---- tables, expiry, sweeping, eager migration --------------------------------------------------

/// Stores on two tables of one database share nothing; a name that is not an identifier is
/// refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_are_isolated() {
    let Some(a) = TestTable::migrated().await else {
        return;
    };
    let b = a.beside().await;
    b.store.migrate().await.expect("migrate");
    let key = fresh_key();
    let now = UNIX_EPOCH + Duration::from_millis(4_000_000_000_000);
    let entry = live(
        1,
        record([json_slot("cart", &[("n", "1")])]),
        hour_from(now),
    );
    assert!(
        a.store
            .swap(&key, None, Some(entry.clone()))
            .await
            .expect("create in a")
    );
    assert!(b.store.load(&key).await.expect("load b").is_none());
    assert!(
        b.store
            .swap(&key, None, Some(entry.clone()))
            .await
            .expect("create in b")
    );
    assert!(
        b.store
            .swap(&key, Some(1), None)
            .await
            .expect("delete in b")
    );
    assert_eq!(a.store.load(&key).await.expect("load a"), Some(entry));
    for bad in ["", "1abc", "a-b", "a\"b", "x;drop", &"a".repeat(41)] {
        assert!(
            a.store.clone().try_table_name(bad).is_err(),
            "{bad:?} accepted"
        );
    }
}

/// Expiry follows the store's clock, not the server's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_in_the_store_decides_expiry_not_the_server() {
    let Some(table) = TestTable::migrated().await else {
        return;
    };
    let clock = ManualClock::at(UNIX_EPOCH + Duration::from_secs(86_400));
    let store = table.store.clone().with_clock(clock.clone());
    let key = fresh_key();
    let entry = live(1, record([]), hour_from(clock.now()));
    assert!(store.swap(&key, None, Some(entry)).await.expect("create"));
    assert!(store.load(&key).await.expect("load").is_some());
    clock.advance(Duration::from_secs(3600));
    assert!(store.load(&key).await.expect("load").is_none());
}

/// `delete_expired` removes exactly the ended rows (in pages: more than one page too), and the
/// sweeper does it on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_expired_and_the_sweeper() {
    let Some(table) = TestTable::migrated().await else {
        return;
    };
    let clock = ManualClock::new();
    let store = table.store.clone().with_clock(clock.clone());
    let now = clock.now();
    let soon = Deadline {
        created_at: now,
        expires_at: now + Duration::from_secs(10),
    };
    for deadline in [hour_from(now), hour_from(now), soon, soon] {
        assert!(
            store
                .swap(&fresh_key(), None, Some(live(1, record([]), deadline)))
                .await
                .expect("create")
        );
    }
    table
        .execute(&format!(
            "INSERT INTO \"{}\" SELECT sha256(int4send(n)), 1, 0, NULL, '\\x00' FROM generate_series(1, 1200) AS n",
            table.name()
        ))
        .await;
    assert_eq!(store.delete_expired().await.expect("sweep"), 1200);
    clock.advance(Duration::from_secs(20));
    assert_eq!(store.delete_expired().await.expect("sweep"), 2);
    assert_eq!(table.count().await, 2);
    for _ in 0..3 {
        assert!(
            store
                .swap(&fresh_key(), None, Some(live(1, record([]), soon)))
                .await
                .expect("create")
        );
    }
    let sweeper = store.spawn_sweeper(Duration::from_millis(20));
    let started = Instant::now();
    while table.count().await > 2 && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        table.count().await,
        2,
        "the sweeper removed the ended sessions"
    );
    assert!(!sweeper.is_finished());
    sweeper.abort();
}

#[derive(Session, Default, Debug, Clone, PartialEq)]
#[session(name = "cart", version = 1)]
struct CartV1 {
    skus: Vec<String>,
}

#[derive(Session, Default, Debug, Clone, PartialEq)]
#[session(name = "cart", version = 2, migrate_from = CartV1)]
struct Cart {
    lines: Vec<(String, u32)>,
}

impl From<CartV1> for Cart {
    fn from(old: CartV1) -> Self {
        Cart {
            lines: old.skus.into_iter().map(|sku| (sku, 1)).collect(),
        }
    }
}

fn cart_slot(version: u32, field: &'static str, json: &str) -> sessions::store::Slot {
    sessions::store::Slot::new(
        "cart",
        version,
        Format::Json,
        vec![(field.into(), Bytes::from(json.to_owned()))],
    )
}

/// `migrate_all` rewrites old slots (counted by version), counts current ones, counts a row
/// that does not decode as failed and leaves it, skips ended sessions and sessions without
/// the slot, and keeps the session's other slots; a second run finds everything current.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_all_rewrites_old_slots() {
    let Some(table) = TestTable::migrated().await else {
        return;
    };
    let store = &table.store;
    let now = SystemTime::now();
    let prefs = json_slot("prefs", &[("dark", "true")]);
    let mut old = Vec::new();
    for n in 0..3 {
        let key = fresh_key();
        let slots = [cart_slot(1, "skus", &format!("[\"a{n}\"]")), prefs.clone()];
        assert!(
            store
                .swap(&key, None, Some(live(1, record(slots), hour_from(now))))
                .await
                .expect("create")
        );
        old.push(key);
    }
    let current = record([cart_slot(2, "lines", "[[\"b\",2]]")]);
    let ended = Deadline {
        created_at: now - Duration::from_secs(9),
        expires_at: now - Duration::from_secs(1),
    };
    for (record, deadline) in [
        (current, hour_from(now)),
        (record([prefs.clone()]), hour_from(now)),
        (record([cart_slot(1, "skus", "[]")]), ended),
    ] {
        store
            .swap(&fresh_key(), None, Some(live(1, record, deadline)))
            .await
            .expect("create");
    }
    let corrupt = fresh_key();
    table
        .execute(&format!(
            "INSERT INTO \"{}\" VALUES ('\\x{}', 1, 4102444800000, NULL, '\\x00')",
            table.name(),
            corrupt.as_str()
        ))
        .await;
    let report = store
        .migrate_all::<Cart>(Format::Json)
        .await
        .expect("migrate_all");
    assert_eq!(report.migrated.get(&1), Some(&3), "{report:?}");
    assert_eq!((report.current, report.failed), (1, 1), "{report:?}");
    for (n, key) in old.iter().enumerate() {
        let (version, session) = must_live(store, key).await;
        assert_eq!(version, 2);
        let cart = session.record.slot("cart").expect("the cart");
        assert_eq!((cart.version(), cart.revision()), (2, 2));
        let lines = cart
            .field("lines")
            .map(|b| String::from_utf8_lossy(b).into_owned());
        assert_eq!(lines.as_deref(), Some(format!("[[\"a{n}\",1]]").as_str()));
        assert_eq!(
            session.record.slot("prefs"),
            Some(&prefs),
            "another slot changed"
        );
    }
    let again = store
        .migrate_all::<Cart>(Format::Json)
        .await
        .expect("again");
    assert_eq!(
        (again.total_migrated(), again.current, again.failed),
        (0, 4, 1)
    );
}

/// A request's save racing `migrate_all` is never lost, and the slot ends up migrated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_all_keeps_concurrent_saves() {
    let Some(table) = TestTable::migrated().await else {
        return;
    };
    let app = app(table.store.clone());
    let cookie = send(&app, "/visit", None).await.cookie.expect("cookie");
    let key = key_of(&cookie);
    let (version, mut session) = must_live(&table.store, &key).await;
    session.record.insert(cart_slot(1, "skus", "[\"x\"]"));
    let next = Entry::Live {
        version: version + 1,
        session,
    };
    assert!(
        table
            .store
            .swap(&key, Some(version), Some(next))
            .await
            .expect("add a v1 cart")
    );
    let visits = tokio::spawn(async move {
        for _ in 0..30 {
            assert_eq!(
                send(&app, "/visit", Some(&cookie)).await.status,
                StatusCode::OK
            );
        }
    });
    let store = table.store.clone();
    let migrations = tokio::spawn(async move {
        for _ in 0..30 {
            store
                .migrate_all::<Cart>(Format::Json)
                .await
                .expect("migrate_all");
        }
    });
    visits.await.expect("visits");
    migrations.await.expect("migrations");
    let (_, session) = must_live(&table.store, &key).await;
    let count = session
        .record
        .slot("visits")
        .and_then(|slot| slot.field("count"));
    assert_eq!(count, Some(&b"31"[..]), "every visit was kept");
    assert_eq!(
        session.record.slot("cart").map(|slot| slot.version()),
        Some(2)
    );
}

/// Listing an owner's sessions is an index lookup, not a scan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owned_by_is_an_index_lookup() {
    let Some(table) = TestTable::migrated().await else {
        return;
    };
    let t = table.name();
    table
        .execute(&format!(
            "INSERT INTO \"{t}\" SELECT sha256(int4send(n)), 1, 4102444800000, NULL, '\\x00' FROM generate_series(1, 5000) AS n"
        ))
        .await;
    let now = SystemTime::now();
    for _ in 0..3 {
        let mut entry = live(1, record([]), hour_from(now));
        if let Entry::Live { session, .. } = &mut entry {
            session.owner = Some(Owner::new("ada", now).into());
        }
        assert!(
            table
                .store
                .swap(&fresh_key(), None, Some(entry))
                .await
                .expect("bind")
        );
    }
    table.execute(&format!("ANALYZE \"{t}\"")).await;
    let plan: Vec<String> = sqlx::query_scalar(&format!(
        "EXPLAIN SELECT key, data FROM \"{t}\" WHERE owner = 'ada' AND expires_at > 0"
    ))
    .fetch_all(table.store.pool())
    .await
    .expect("explain");
    assert!(
        plan.iter()
            .any(|line| line.contains(&format!("{t}_by_owner"))),
        "{plan:#?}"
    );
    assert_eq!(
        table.store.owned_by("ada").await.expect("owned_by").len(),
        3
    );
}
