//! `Encrypted` (encryption at rest, issue 21) over every server store against its real server
//! (SQLite files always; PostgreSQL and Redis at `SESSIONS_TEST_POSTGRES_URL` /
//! `SESSIONS_TEST_REDIS_URL`): the conformance suite, a raw dump that shows no stored field
//! (and the same dump without `Encrypted` that does, so the check can fail), a sealed record
//! moved under another session's key that does not open, and a key rotation that loses no
//! session.
#![allow(clippy::unwrap_used)]

#[path = "postgres_common/mod.rs"]
mod postgres_common;
#[path = "redis_common/mod.rs"]
mod redis_common;
mod sqlite_common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::Method;
use sessions::clock::SystemClock;
use sessions::prelude::*;
use sessions::store::{Deadline, Encrypted, Entry, Record, SessionKey, Slot, Stored, conformance};
use sessions::{Format, Key, SessionId};

use sqlite_common::{TempDb, app, key_of, send};

/// What the shopper puts in the cart: it must appear in no dump.
const SECRET_SKU: &str = "zebra-orchid-7731";

fn key(id: u32) -> Key {
    Key::from_bytes(id, [0x40 + id as u8; 32])
}

fn encrypted<S: SessionStore>(store: S, keys: &[u32]) -> Encrypted<S> {
    Encrypted::new(store, keys.iter().map(|&id| key(id))).unwrap()
}

fn fresh_key() -> SessionKey {
    SessionId::generate().unwrap().key()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// What a dump must not show: the item and the stored field names.
fn leaks(dump: &[u8]) -> Vec<&'static str> {
    [SECRET_SKU, "items", "coupon", "visits", "__type__"]
        .into_iter()
        .filter(|needle| contains(dump, needle))
        .collect()
}

/// A shopper logs in and puts the secret item in the cart, through the app, on `store`; the
/// cookie (`name=value`) it ends with.
async fn shop(store: impl SessionStore) -> String {
    let app = app(SessionLayer::new(store));
    let first = send(&app, Method::POST, "/cart/apple", None).await;
    let cookie = first.cookie();
    let login = send(&app, Method::POST, "/login", Some(&cookie)).await;
    let cookie = login.cookie();
    let added = send(
        &app,
        Method::POST,
        &format!("/cart/{SECRET_SKU}"),
        Some(&cookie),
    )
    .await;
    assert_eq!(added.status, 200, "{}", added.body);
    let read = send(&app, Method::GET, "/cart", Some(&cookie)).await;
    assert!(read.body.contains(SECRET_SKU), "{}", read.body);
    cookie
}

fn ms_now() -> SystemTime {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    UNIX_EPOCH + Duration::from_millis(since.as_millis() as u64)
}

fn session() -> Stored {
    let mut record = Record::new();
    record.insert(Slot::new(
        "cart",
        1,
        Format::Json,
        vec![("items".into(), format!("[\"{SECRET_SKU}\"]").into())],
    ));
    let now = ms_now();
    Stored::new(
        record,
        Deadline {
            created_at: now,
            expires_at: now + Duration::from_secs(3600),
        },
    )
}

/// A sealed record copied under another session's key, in the wrapped store itself, does not
/// open there; the original still does.
async fn moved_record_does_not_open<S: SessionStore + Clone>(inner: S) {
    let store = encrypted(inner.clone(), &[1]);
    let (key, other) = (fresh_key(), fresh_key());
    let entry = Entry::Live {
        version: 1,
        session: session(),
    };
    assert!(store.swap(&key, None, Some(entry)).await.unwrap());
    let sealed = inner.load(&key).await.unwrap().unwrap();
    assert!(inner.swap(&other, None, Some(sealed)).await.unwrap());
    assert!(
        store.load(&other).await.is_err(),
        "a record moved to another key opened"
    );
    assert!(store.load(&key).await.unwrap().is_some());
}

/// Sessions sealed with key 1; the ring becomes [2, 1]; every session still loads, `rekey_all`
/// seals each with key 2 (reporting how many), and with key 1 retired every one still loads.
async fn rotation_loses_nothing<S: SessionStore + Clone>(inner: S) {
    let keys: Vec<SessionKey> = (0..20).map(|_| fresh_key()).collect();
    let old = encrypted(inner.clone(), &[1]);
    for key in &keys {
        let entry = Entry::Live {
            version: 1,
            session: session(),
        };
        assert!(old.swap(key, None, Some(entry)).await.unwrap());
    }
    let rotated = encrypted(inner.clone(), &[2, 1]);
    for key in &keys {
        assert!(rotated.load(key).await.unwrap().is_some());
    }
    let resealed = rotated.rekey_all().await.unwrap();
    assert!(resealed >= keys.len() as u64, "resealed {resealed}");
    let retired = encrypted(inner.clone(), &[2]);
    for key in &keys {
        let loaded = retired.load(key).await.unwrap();
        let Some(Entry::Live {
            session: loaded, ..
        }) = loaded
        else {
            panic!("a session was lost in the rotation");
        };
        assert_eq!(loaded.record, session().record);
    }
    assert_eq!(
        rotated.rekey_all().await.unwrap(),
        0,
        "a second run found work"
    );
}

// ---- SQLite ------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_passes_the_conformance_suite_encrypted() {
    let db = TempDb::new("encrypted-conformance");
    conformance::run(encrypted(db.open().await, &[1]), SystemClock).await;
}

/// Every byte of the database file and its WAL: the item and the field names are nowhere;
/// without `Encrypted` they are (the check can fail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_bytes_show_no_stored_field() {
    async fn dump(db: &TempDb) -> Vec<u8> {
        db.files()
            .iter()
            // The WAL and its index are gone once the last connection closed (checkpointed).
            .filter_map(|file| std::fs::read(file).ok())
            .flatten()
            .collect()
    }
    let plain = TempDb::new("encrypted-dump-plain");
    shop(plain.open().await).await;
    assert!(
        leaks(&dump(&plain).await).contains(&SECRET_SKU),
        "the control shows nothing"
    );

    let sealed = TempDb::new("encrypted-dump");
    let store = encrypted(sealed.open().await, &[1]);
    shop(store).await;
    assert_eq!(leaks(&dump(&sealed).await), Vec::<&str>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_sealed_record_moved_to_another_key_does_not_open() {
    let db = TempDb::new("encrypted-moved");
    moved_record_does_not_open(db.open().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_key_rotation_loses_no_session() {
    let db = TempDb::new("encrypted-rotation");
    rotation_loses_nothing(db.open().await).await;
}

// ---- PostgreSQL --------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_passes_the_conformance_suite_encrypted() {
    // Alone on the server, commits not waiting for the disk, as `store_postgres.rs` runs the
    // suite: its 64 writers on one row each land within the retry budget only so.
    let Some(table) = postgres_common::TestTable::alone().await else {
        return;
    };
    conformance::run(encrypted(table.store.clone(), &[1]), SystemClock).await;
}

/// The table as stored: every column of every row (`data` as its raw bytes).
async fn postgres_dump(table: &postgres_common::TestTable) -> Vec<u8> {
    let name = table.name();
    let rows: Vec<(Vec<u8>, Option<String>, Vec<u8>)> =
        sqlx::query_as(&format!("SELECT key, owner, data FROM \"{name}\""))
            .fetch_all(table.store.pool())
            .await
            .unwrap();
    assert!(!rows.is_empty(), "nothing stored");
    rows.into_iter()
        .flat_map(|(key, owner, data)| [key, owner.unwrap_or_default().into_bytes(), data].concat())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_table_shows_no_stored_field() {
    let Some(plain) = postgres_common::TestTable::migrated().await else {
        return;
    };
    shop(plain.store.clone()).await;
    assert!(
        leaks(&postgres_dump(&plain).await).contains(&SECRET_SKU),
        "the control shows nothing"
    );
    drop(plain);

    let Some(sealed) = postgres_common::TestTable::migrated().await else {
        return;
    };
    shop(encrypted(sealed.store.clone(), &[1])).await;
    assert_eq!(leaks(&postgres_dump(&sealed).await), Vec::<&str>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sealed_record_moved_to_another_key_does_not_open() {
    let Some(table) = postgres_common::TestTable::migrated().await else {
        return;
    };
    moved_record_does_not_open(table.store.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_key_rotation_loses_no_session() {
    let Some(table) = postgres_common::TestTable::migrated().await else {
        return;
    };
    rotation_loses_nothing(table.store.clone()).await;
}

// ---- Redis -------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_passes_the_conformance_suite_encrypted() {
    let Some(url) = redis_common::redis_url() else {
        return;
    };
    let guard = redis_common::PrefixGuard::new(&url, "encrypted-conformance");
    let store = redis_common::store(&url, &guard).await;
    conformance::run(encrypted(store, &[1]), SystemClock).await;
}

/// Every key under the store's prefix, with every value it holds, whatever its type.
async fn redis_dump(url: &str, prefix: &str) -> Vec<u8> {
    let mut conn = redis_common::plain_connection(url).await;
    let keys: Vec<Vec<u8>> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!keys.is_empty(), "nothing stored");
    let mut dump = Vec::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let values: Vec<Vec<u8>> = match kind.as_str() {
            "string" => vec![
                redis::cmd("GET")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .unwrap(),
            ],
            "set" => redis::cmd("SMEMBERS")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap(),
            "zset" => redis::cmd("ZRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .query_async(&mut conn)
                .await
                .unwrap(),
            "hash" => redis::cmd("HGETALL")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap(),
            "list" => redis::cmd("LRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .query_async(&mut conn)
                .await
                .unwrap(),
            other => panic!("a key of type {other}: dump it too"),
        };
        dump.extend_from_slice(&key);
        for value in values {
            dump.extend_from_slice(&value);
        }
    }
    dump
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_keys_show_no_stored_field() {
    let Some(url) = redis_common::redis_url() else {
        return;
    };
    let plain = redis_common::PrefixGuard::new(&url, "encrypted-dump-plain");
    shop(redis_common::store(&url, &plain).await).await;
    assert!(
        leaks(&redis_dump(&url, &plain.prefix).await).contains(&SECRET_SKU),
        "the control shows nothing"
    );

    let sealed = redis_common::PrefixGuard::new(&url, "encrypted-dump");
    shop(encrypted(redis_common::store(&url, &sealed).await, &[1])).await;
    assert_eq!(
        leaks(&redis_dump(&url, &sealed.prefix).await),
        Vec::<&str>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sealed_record_moved_to_another_key_does_not_open() {
    let Some(url) = redis_common::redis_url() else {
        return;
    };
    let guard = redis_common::PrefixGuard::new(&url, "encrypted-moved");
    moved_record_does_not_open(redis_common::store(&url, &guard).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_key_rotation_loses_no_session() {
    let Some(url) = redis_common::redis_url() else {
        return;
    };
    let guard = redis_common::PrefixGuard::new(&url, "encrypted-rotation");
    rotation_loses_nothing(redis_common::store(&url, &guard).await).await;
}

// ---- memory ------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_passes_the_conformance_suite_encrypted() {
    conformance::run(encrypted(MemoryStore::new(), &[1]), SystemClock).await;
    conformance::run(
        encrypted(MemoryStore::new(), &[1]).hash_owners(key(9)),
        SystemClock,
    )
    .await;
}

/// A record that does not open (sealed with a key this store does not hold) is handled as
/// corrupt data: the request gets a fresh session, and the stored bytes are left as they are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_does_not_open_is_a_fresh_session_and_stays_stored() {
    let memory = MemoryStore::new();
    let cookie = shop(encrypted(memory.clone(), &[1])).await;
    let stored = key_of(&cookie);
    let before = memory.load(&stored).await.unwrap();
    assert!(before.is_some());
    let stranger = app(SessionLayer::new(encrypted(memory.clone(), &[2])));
    let read = send(&stranger, Method::GET, "/cart", Some(&cookie)).await;
    assert_eq!((read.status.as_u16(), read.body.as_str()), (200, "no cart"));
    assert_eq!(
        memory.load(&stored).await.unwrap(),
        before,
        "the stored bytes changed"
    );
}
