//! `SqliteStore` against real SQLite databases: temp files (and memory), always run.

mod sqlite_common;

/// The upgrade from the layout before issue 13.
#[path = "sqlite_common/upgrade.rs"]
mod upgrade;

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, StatusCode};
use sessions::clock::{Clock, ManualClock, SystemClock};
use sessions::error::StoreError;
use sessions::prelude::*;
use sessions::store::{Deadline, Record, SessionKey, Slot};
use sessions::store::{Entry, Stored, conformance};
use sessions::{Format, SqliteStore};
use sqlx::Row;

use sqlite_common::{TempDb, app, fresh_key, hour_from, key_of, send};

fn json_slot(name: &'static str, fields: &[(&'static str, &'static str)]) -> Slot {
    Slot::new(
        name,
        1,
        Format::Json,
        fields
            .iter()
            .map(|(n, v)| (Cow::Borrowed(*n), Bytes::from_static(v.as_bytes())))
            .collect(),
    )
}

fn live(version: u64, slots: Vec<Slot>, deadline: Deadline) -> Entry {
    let mut record = Record::new();
    for slot in slots {
        record.insert(slot);
    }
    Entry::Live {
        version,
        session: Stored::new(record, deadline),
    }
}

/// A time as the store keeps it: to the millisecond.
fn ms(time: SystemTime) -> SystemTime {
    let since = time.duration_since(UNIX_EPOCH).expect("after 1970");
    UNIX_EPOCH + Duration::from_millis(since.as_millis() as u64)
}

fn ms_deadline(deadline: Deadline) -> Deadline {
    Deadline {
        created_at: ms(deadline.created_at),
        expires_at: ms(deadline.expires_at),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_a_file() {
    let db = TempDb::new("conformance");
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
    let db = TempDb::new("conformance-clock");
    let clock = ManualClock::new();
    conformance::run(db.open().await.with_clock(clock.clone()), clock).await;
}

/// One row per session, holding what the entry's columns say.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_row_per_session() {
    let db = TempDb::new("one-row");
    let store = db.open().await;
    let key = fresh_key();
    let deadline = hour_from(SystemTime::now());
    let first = live(1, vec![json_slot("cart", &[("n", "1")])], deadline);
    assert!(store.swap(&key, None, Some(first)).await.expect("create"));
    let mut second = live(2, vec![json_slot("cart", &[("n", "2")])], deadline);
    if let Entry::Live { session, .. } = &mut second {
        session.owner = Some(sessions::store::Owner::new("42", SystemTime::now()).into());
    }
    assert!(store.swap(&key, Some(1), Some(second)).await.expect("save"));
    let mut conn = db.connect().await;
    let rows = sqlx::query("SELECT key, version, expires_at, owner FROM sessions")
        .fetch_all(&mut conn)
        .await
        .expect("rows");
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.get::<Vec<u8>, _>(0), key.as_bytes().to_vec());
    assert_eq!(row.get::<i64, _>(1), 2);
    assert_eq!(
        row.get::<i64, _>(2),
        deadline
            .expires_at
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_millis() as i64
    );
    assert_eq!(row.get::<Option<String>, _>(3).as_deref(), Some("42"));
    // Listing an owner is an index lookup.
    let plan: Vec<String> = sqlx::query(
        "EXPLAIN QUERY PLAN SELECT key, data FROM sessions INDEXED BY sessions_by_owner
         WHERE owner = ?1 AND expires_at > ?2",
    )
    .bind("42")
    .bind(0i64)
    .fetch_all(&mut conn)
    .await
    .expect("plan")
    .iter()
    .map(|row| row.get::<String, _>(3))
    .collect();
    assert!(
        plan.iter()
            .any(|step| step.contains("USING INDEX sessions_by_owner (owner=?)")),
        "{plan:?}"
    );
    assert_eq!(store.owned_by("42").await.expect("owned_by").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_reopening_the_file() {
    let db = TempDb::new("reopen");
    let key = fresh_key();
    let deadline = hour_from(SystemTime::now());
    let entry = live(
        3,
        vec![
            json_slot("cart", &[("items", "[\"apple\"]"), ("coupon", "null")]),
            json_slot("prefs", &[("dark", "true")]).with_revision(4),
        ],
        deadline,
    );
    {
        let store = db.open().await;
        assert!(
            store
                .swap(&key, None, Some(entry.clone()))
                .await
                .expect("create")
        );
    }
    let store = db.open().await;
    let Some(Entry::Live { version, session }) = store.load(&key).await.expect("load") else {
        panic!("the session is gone after reopening");
    };
    let Entry::Live { session: was, .. } = entry else {
        unreachable!()
    };
    assert_eq!(version, 3);
    assert_eq!(session.record, was.record);
    assert_eq!(session.record.revision_of("prefs"), 4);
    assert_eq!(session.deadline, ms_deadline(deadline));
}

#[tokio::test]
async fn open_turns_on_wal() {
    let db = TempDb::new("wal");
    let _store = db.open().await;
    let mut conn = db.connect().await;
    let mode: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .expect("pragma")
        .get(0);
    assert_eq!(mode, "wal");
}

/// The store's own thread checkpoints: once writes pause, the WAL is copied back and emptied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_is_emptied_once_writes_pause() {
    let db = TempDb::new("checkpoint");
    let store = db.open().await;
    let deadline = hour_from(SystemTime::now());
    for _ in 0..50 {
        let entry = live(1, vec![json_slot("cart", &[("n", "1")])], deadline);
        assert!(
            store
                .swap(&fresh_key(), None, Some(entry))
                .await
                .expect("create")
        );
    }
    let wal = db.path.with_extension("db-wal");
    let size = || std::fs::metadata(&wal).map_or(0, |m| m.len());
    assert!(size() > 0, "the writes are in the WAL");
    let started = std::time::Instant::now();
    while size() > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the WAL still holds {} bytes",
            size()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut conn = db.connect().await;
    let count: i64 = sqlx::query("SELECT count(*) FROM sessions")
        .fetch_one(&mut conn)
        .await
        .expect("count")
        .get(0);
    assert_eq!(count, 50, "every write is in the database file");
}

#[tokio::test]
async fn table_names_keep_stores_apart() {
    let db = TempDb::new("tables");
    let base = db.open().await;
    let shop = base.clone().table_name("shop_sessions");
    shop.migrate().await.expect("migrate");
    shop.migrate().await.expect("migrate twice");
    let key = fresh_key();
    let deadline = hour_from(SystemTime::now());
    let cart = live(1, vec![json_slot("cart", &[("n", "1")])], deadline);
    assert!(
        shop.swap(&key, None, Some(cart.clone()))
            .await
            .expect("create")
    );
    assert!(base.load(&key).await.expect("load").is_none());
    // The same key in the other table is another session.
    let empty = live(1, vec![], deadline);
    assert!(base.swap(&key, None, Some(empty)).await.expect("create"));
    let Some(Entry::Live { session, .. }) = shop.load(&key).await.expect("load") else {
        panic!("the shop's session is gone");
    };
    assert_eq!(session.record.slots().len(), 1);
    assert!(base.swap(&key, Some(1), None).await.expect("delete"));
    assert!(shop.load(&key).await.expect("load").is_some());

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
async fn a_store_without_its_table_fails_as_not_set_up() {
    let store = SqliteStore::in_memory().await.expect("in memory");
    match store.load(&fresh_key()).await {
        Err(err @ StoreError::NotSetUp { .. }) => {
            assert!(err.to_string().contains("no such table"), "{err}");
            assert!(err.to_string().contains("migrate()"), "{err}");
        }
        other => panic!("expected a not-set-up error, got {other:?}"),
    }
}

/// Stored bytes that are not an entry are a record error, never a panic; through the layer
/// the request gets a fresh session and the stored row is left as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_rows_are_record_errors() {
    let db = TempDb::new("corrupt");
    let store = db.open().await;
    let app = app(SessionLayer::new(store.clone()));
    let cookie = send(&app, Method::POST, "/cart/apple", None).await.cookie();
    let key = key_of(&cookie);
    let mut conn = db.connect().await;
    let good: Vec<u8> = sqlx::query("SELECT data FROM sessions WHERE key = ?1")
        .bind(key.as_bytes().to_vec())
        .fetch_one(&mut conn)
        .await
        .expect("the row")
        .get(0);
    let corruptions: Vec<(&str, String)> = vec![
        ("garbage", "X'00010203'".into()),
        ("cut short", format!("X'{}'", hex(&good[..good.len() / 2]))),
        ("text", "'hello'".into()),
        ("an integer", "7".into()),
        ("empty", "X''".into()),
    ];
    for (what, value) in corruptions {
        sqlx::query(&format!(
            "UPDATE sessions SET data = {value} WHERE key = ?1"
        ))
        .bind(key.as_bytes().to_vec())
        .execute(&mut conn)
        .await
        .expect("corrupt the row");
        match store.load(&key).await {
            Err(StoreError::Record(_)) => {}
            other => panic!("{what}: expected a record error, got {other:?}"),
        }
        let reply = send(&app, Method::GET, "/cart", Some(&cookie)).await;
        assert_eq!(reply.status, StatusCode::OK, "{what}: {reply:?}");
        assert_eq!(reply.body, "no cart", "{what}: a fresh session");
    }
    let count: i64 = sqlx::query("SELECT count(*) FROM sessions WHERE key = ?1")
        .bind(key.as_bytes().to_vec())
        .fetch_one(&mut conn)
        .await
        .expect("count")
        .get(0);
    assert_eq!(count, 1, "what was stored is not destroyed");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_expired_and_the_sweeper() {
    let db = TempDb::new("sweep");
    let clock = ManualClock::new();
    let store = db.open().await.with_clock(clock.clone());
    let now = clock.now();
    let short = Deadline {
        created_at: now,
        expires_at: now + Duration::from_secs(10),
    };
    let keys: Vec<SessionKey> = (0..1_200).map(|_| fresh_key()).collect();
    for (i, key) in keys.iter().enumerate() {
        let deadline = if i % 2 == 0 { short } else { hour_from(now) };
        assert!(
            store
                .swap(key, None, Some(live(1, vec![], deadline)))
                .await
                .expect("create")
        );
    }
    assert_eq!(store.delete_expired().await.expect("sweep"), 0);
    clock.advance(Duration::from_secs(10));
    assert!(store.load(&keys[0]).await.expect("load").is_none(), "ended");
    // More than one batch.
    assert_eq!(store.delete_expired().await.expect("sweep"), 600);
    assert!(store.load(&keys[1]).await.expect("load").is_some());

    // The sweeper does the same on its own, and stops when the store is dropped.
    let ended = fresh_key();
    let deadline = Deadline {
        created_at: clock.now(),
        expires_at: clock.now() + Duration::from_secs(1),
    };
    assert!(
        store
            .swap(&ended, None, Some(live(1, vec![], deadline)))
            .await
            .expect("create")
    );
    clock.advance(Duration::from_secs(2));
    let sweeper = store.spawn_sweeper(Duration::from_millis(20));
    let mut conn = db.connect().await;
    let started = std::time::Instant::now();
    loop {
        let left: i64 = sqlx::query("SELECT count(*) FROM sessions WHERE key = ?1")
            .bind(ended.as_bytes().to_vec())
            .fetch_one(&mut conn)
            .await
            .expect("count")
            .get(0);
        if left == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the sweeper did not sweep"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(store);
    tokio::time::timeout(Duration::from_secs(5), sweeper)
        .await
        .expect("the sweeper stops once the store is dropped")
        .expect("the sweeper never panics");
}

#[derive(Session, Default, Debug)]
#[session(name = "cart", version = 1)]
struct CartV1 {
    n: u32,
}

#[derive(Session, Default, Debug)]
#[session(name = "cart", version = 2, migrate_from = CartV1)]
struct CartV2 {
    n: u64,
    note: String,
}

impl From<CartV1> for CartV2 {
    fn from(v1: CartV1) -> Self {
        CartV2 {
            n: u64::from(v1.n) * 10,
            note: "migrated".into(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_all_rewrites_old_slots() {
    let db = TempDb::new("migrate-all");
    let store = db.open().await;
    let deadline = hour_from(SystemTime::now());
    let mut old = Vec::new();
    // More than one page of sessions.
    for i in 0..520 {
        let key = fresh_key();
        let slots = if i % 4 == 3 {
            vec![json_slot("prefs", &[("dark", "true")])]
        } else {
            vec![json_slot("cart", &[("n", "3")]).with_revision(2)]
        };
        assert!(
            store
                .swap(&key, None, Some(live(1, slots, deadline)))
                .await
                .expect("create")
        );
        if i % 4 != 3 {
            old.push(key);
        }
    }
    // A slot of a newer version, and a row that does not decode: failed, left as they are.
    let newer = fresh_key();
    let v3 = Slot::new("cart", 3, Format::Json, vec![("n".into(), "1".into())]);
    assert!(
        store
            .swap(&newer, None, Some(live(1, vec![v3], deadline)))
            .await
            .expect("create")
    );
    let broken = fresh_key();
    assert!(
        store
            .swap(&broken, None, Some(live(1, vec![], deadline)))
            .await
            .expect("create")
    );
    let mut conn = db.connect().await;
    sqlx::query("UPDATE sessions SET data = X'00' WHERE key = ?1")
        .bind(broken.as_bytes().to_vec())
        .execute(&mut conn)
        .await
        .expect("corrupt");

    let report = store
        .migrate_all::<CartV2>(Format::Json)
        .await
        .expect("migrate_all");
    assert_eq!(report.migrated.get(&1), Some(&390));
    assert_eq!(report.failed, 2);
    let Some(Entry::Live { session, .. }) = store.load(&old[0]).await.expect("load") else {
        panic!("gone");
    };
    let slot = session.record.slot("cart").expect("the cart");
    assert_eq!(slot.version(), 2);
    assert_eq!(slot.revision(), 3, "a rewrite moves the revision up");
    assert_eq!(slot.field("n"), Some(&b"30"[..]));
    let again = store
        .migrate_all::<CartV2>(Format::Json)
        .await
        .expect("again");
    assert_eq!(again.total_migrated(), 0);
    assert_eq!(again.current, 390);
}

/// `migrate_all` racing requests that change another slot of the same sessions: every
/// request's change survives, and every cart is migrated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_all_never_clobbers_a_concurrent_save() {
    let db = TempDb::new("migrate-race");
    let store = db.open().await;
    let deadline = hour_from(SystemTime::now());
    let keys: Vec<SessionKey> = (0..50).map(|_| fresh_key()).collect();
    for key in &keys {
        let slots = vec![
            json_slot("cart", &[("n", "3")]),
            json_slot("visits", &[("n", "0")]),
        ];
        assert!(
            store
                .swap(key, None, Some(live(1, slots, deadline)))
                .await
                .expect("create")
        );
    }
    const BUMPS: u64 = 20;
    let bumps = tokio::spawn({
        let (store, keys) = (store.clone(), keys.clone());
        async move {
            for _ in 0..BUMPS {
                for key in &keys {
                    // A request's save: load, change one slot, swap over the version loaded.
                    loop {
                        let Some(Entry::Live {
                            version,
                            mut session,
                        }) = store.load(key).await.expect("load")
                        else {
                            panic!("gone");
                        };
                        let visits = session.record.slot("visits").expect("visits");
                        let n: u64 = std::str::from_utf8(visits.field("n").expect("n"))
                            .expect("text")
                            .parse()
                            .expect("a number");
                        let revision = visits.revision();
                        let bumped = Slot::new(
                            "visits",
                            1,
                            Format::Json,
                            vec![("n".into(), Bytes::from((n + 1).to_string()))],
                        )
                        .with_revision(revision + 1);
                        session.record.insert(bumped);
                        let next = Entry::Live {
                            version: version + 1,
                            session,
                        };
                        if store
                            .swap(key, Some(version), Some(next))
                            .await
                            .expect("swap")
                        {
                            break;
                        }
                    }
                }
            }
        }
    });
    let report = store
        .migrate_all::<CartV2>(Format::Json)
        .await
        .expect("migrate_all");
    bumps.await.expect("the saves");
    assert_eq!(report.migrated.get(&1), Some(&50), "{report:?}");
    for key in &keys {
        let Some(Entry::Live { session, .. }) = store.load(key).await.expect("load") else {
            panic!("gone");
        };
        let cart = session.record.slot("cart").expect("the cart");
        assert_eq!(cart.version(), 2, "migrated");
        let visits = session.record.slot("visits").expect("visits");
        assert_eq!(
            visits.field("n"),
            Some(BUMPS.to_string().as_bytes()),
            "every save survived"
        );
    }
}
