//! `Encrypted` (encryption at rest, issue 21) over every server store against its real server
//! (SQLite files always; PostgreSQL, Redis, MySQL and memcached at `SESSIONS_TEST_POSTGRES_URL`,
//! `SESSIONS_TEST_REDIS_URL`, `SESSIONS_TEST_MYSQL_URL`, `SESSIONS_TEST_MEMCACHED_URL`): the
//! conformance suite, a raw dump that shows no stored field (and the same dump without
//! `Encrypted` that does, so the check can fail), a sealed record moved under another session's
//! key that does not open, a key rotation that loses no session (memcached cannot be walked:
//! `rekey_all` says so, and each session is sealed anew on its next save), and a record that
//! does not open handled as corrupt data (a fresh session, a `warn` line, the bytes left alone).
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
use sessions::store::{
    Deadline, Encrypted, Entry, Owner, Record, SessionKey, Slot, Stored, conformance,
};
use sessions::{Format, Key, SessionId};

use sessions::error::StoreError;
use sessions::{MemcachedStore, MySqlStore};
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

/// Everything `tracing` prints on this thread while the guard lives.
fn capture_logs() -> (
    std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    tracing::subscriber::DefaultGuard,
) {
    struct Writer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Writer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let buffer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || Writer(buffer.clone()))
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}

/// A record that does not open (sealed with a key this store does not hold) is handled as
/// corrupt data: the request gets a fresh session and a `warn` line says why (without the id),
/// and the stored bytes are left as they are (the holder of the key still reads them).
async fn unopenable_is_a_fresh_session_left_as_stored<S: SessionStore + Clone>(inner: S) {
    let cookie = shop(encrypted(inner.clone(), &[1])).await;
    let stored = key_of(&cookie);
    let before = inner.load(&stored).await.unwrap();
    assert!(before.is_some());
    let (logs, guard) = capture_logs();
    let stranger = app(SessionLayer::new(encrypted(inner.clone(), &[2])));
    let read = send(&stranger, Method::GET, "/cart", Some(&cookie)).await;
    drop(guard);
    assert_eq!((read.status.as_u16(), read.body.as_str()), (200, "no cart"));
    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    let id = cookie.split_once('=').unwrap().1;
    assert!(
        logs.lines()
            .any(|line| line.contains(" WARN ") && line.contains("does not open")),
        "no warn line: {logs}"
    );
    assert!(!logs.contains(id), "a log line holds the id");
    assert_eq!(
        inner.load(&stored).await.unwrap(),
        before,
        "the stored bytes changed"
    );
    let owner = app(SessionLayer::new(encrypted(inner.clone(), &[1])));
    let again = send(&owner, Method::GET, "/cart", Some(&cookie)).await;
    assert!(again.body.contains(SECRET_SKU), "{}", again.body);
}

#[tokio::test]
async fn a_record_that_does_not_open_is_a_fresh_session_and_stays_stored() {
    unopenable_is_a_fresh_session_left_as_stored(MemoryStore::new()).await;
    let db = TempDb::new("encrypted-unopenable");
    unopenable_is_a_fresh_session_left_as_stored(db.open().await).await;
    if let Some(table) = postgres_common::TestTable::migrated().await {
        unopenable_is_a_fresh_session_left_as_stored(table.store.clone()).await;
    }
    if let Some(url) = redis_common::redis_url() {
        let guard = redis_common::PrefixGuard::new(&url, "encrypted-unopenable");
        unopenable_is_a_fresh_session_left_as_stored(redis_common::store(&url, &guard).await).await;
    }
    if let Some(table) = MySqlTable::new().await {
        unopenable_is_a_fresh_session_left_as_stored(table.store.clone()).await;
        table.drop_table().await;
    }
    if let Some(url) = memcached_url() {
        unopenable_is_a_fresh_session_left_as_stored(memcached(&url).await).await;
    }
}

// ---- MySQL -------------------------------------------------------------------------------------

/// A MySQL row as stored: key, version, expires_at, owner, data.
type MySqlRow = (Vec<u8>, i64, i64, Option<Vec<u8>>, Vec<u8>);

/// A table of one test, dropped by [`MySqlTable::drop_table`].
struct MySqlTable {
    store: MySqlStore,
    name: String,
}

impl MySqlTable {
    async fn new() -> Option<Self> {
        let Ok(url) = std::env::var("SESSIONS_TEST_MYSQL_URL") else {
            println!("skipped: set SESSIONS_TEST_MYSQL_URL to run the MySQL tests");
            return None;
        };
        let name = format!("sessions_enc{}", &fresh_key().as_str()[..12]);
        let store = MySqlStore::connect(&url).await.unwrap().table_name(&name);
        store.migrate().await.unwrap();
        Some(Self { store, name })
    }

    async fn execute(&self, sql: &str) {
        sqlx::query(sql).execute(self.store.pool()).await.unwrap();
    }

    /// Every column of every row, as stored.
    async fn dump(&self) -> Vec<u8> {
        let rows: Vec<MySqlRow> = sqlx::query_as(&format!(
            "SELECT `key`, version, expires_at, owner, data FROM `{}`",
            self.name
        ))
        .fetch_all(self.store.pool())
        .await
        .unwrap();
        assert!(!rows.is_empty(), "nothing stored");
        rows.into_iter()
            .flat_map(|(key, version, expires, owner, data)| {
                [
                    key,
                    version.to_string().into_bytes(),
                    expires.to_string().into_bytes(),
                    owner.unwrap_or_default(),
                    data,
                ]
                .concat()
            })
            .collect()
    }

    async fn drop_table(self) {
        self.execute(&format!("DROP TABLE `{}`", self.name)).await;
    }
}

/// The conformance suite on MySQL as `store_mysql.rs` runs it: commits not waiting for the disk
/// (`innodb_flush_log_at_trx_commit = 2`, a test server's global setting), so that its 64
/// writers on one row land within the retry budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_passes_the_conformance_suite_encrypted() {
    let Some(table) = MySqlTable::new().await else {
        return;
    };
    table
        .execute("SET GLOBAL innodb_flush_log_at_trx_commit = 2")
        .await;
    conformance::run(encrypted(table.store.clone(), &[1]), SystemClock).await;
    table
        .execute("SET GLOBAL innodb_flush_log_at_trx_commit = 1")
        .await;
    table.drop_table().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_table_shows_no_stored_field() {
    let Some(plain) = MySqlTable::new().await else {
        return;
    };
    shop(plain.store.clone()).await;
    assert!(
        leaks(&plain.dump().await).contains(&SECRET_SKU),
        "the control shows nothing"
    );
    plain.drop_table().await;

    let Some(sealed) = MySqlTable::new().await else {
        return;
    };
    shop(encrypted(sealed.store.clone(), &[1])).await;
    assert_eq!(leaks(&sealed.dump().await), Vec::<&str>::new());
    sealed.drop_table().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_sealed_record_moved_to_another_key_does_not_open() {
    let Some(table) = MySqlTable::new().await else {
        return;
    };
    moved_record_does_not_open(table.store.clone()).await;
    table.drop_table().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_key_rotation_loses_no_session() {
    let Some(table) = MySqlTable::new().await else {
        return;
    };
    rotation_loses_nothing(table.store.clone()).await;
    table.drop_table().await;
}

// ---- memcached ---------------------------------------------------------------------------------

fn memcached_url() -> Option<String> {
    let url = std::env::var("SESSIONS_TEST_MEMCACHED_URL").ok();
    if url.is_none() {
        println!("skipped: set SESSIONS_TEST_MEMCACHED_URL to run the memcached tests");
    }
    url
}

/// A store under a prefix no other test uses.
async fn memcached(url: &str) -> MemcachedStore {
    let prefix = format!("enc{}:", &fresh_key().as_str()[..10]);
    MemcachedStore::connect(url).await.unwrap().prefix(prefix)
}

/// A line of the server's text protocol, and what it answers up to `end`.
async fn memcached_ask(url: &str, command: &str, end: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = url.trim_start_matches("memcache://");
    let mut conn = tokio::net::TcpStream::connect(address).await.unwrap();
    conn.write_all(format!("{command}\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 8192];
    while !answer.ends_with(end) {
        let n = conn.read(&mut buf).await.unwrap();
        assert!(n > 0, "memcached closed the connection");
        answer.extend_from_slice(&buf[..n]);
    }
    answer
}

/// Every item under `prefix`, key and value, found by the server's own crawler (`lru_crawler
/// metadump all`: keys percent-encoded) and read with `mg <key> v`.
async fn memcached_dump(url: &str, prefix: &str) -> Vec<u8> {
    let listing = memcached_ask(url, "lru_crawler metadump all", b"END\r\n").await;
    let keys: Vec<String> = String::from_utf8_lossy(&listing)
        .lines()
        .filter_map(|line| line.strip_prefix("key="))
        .filter_map(|rest| rest.split(' ').next())
        .map(percent_decode)
        .filter(|key| key.starts_with(prefix))
        .collect();
    assert!(!keys.is_empty(), "nothing stored");
    let mut dump = Vec::new();
    for key in keys {
        dump.extend_from_slice(key.as_bytes());
        dump.extend_from_slice(&memcached_value(url, &key).await);
    }
    dump
}

/// The value of item `key` (`mg <key> v`: `VA <len>` then the value; `EN` when it is gone).
async fn memcached_value(url: &str, key: &str) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = url.trim_start_matches("memcache://");
    let mut conn = tokio::net::TcpStream::connect(address).await.unwrap();
    conn.write_all(format!("mg {key} v\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(eol) = answer.windows(2).position(|pair| pair == b"\r\n") {
            let head = String::from_utf8_lossy(&answer[..eol]).into_owned();
            let Some(len) = head.strip_prefix("VA ") else {
                return Vec::new();
            };
            let len: usize = len.split(' ').next().unwrap().parse().unwrap();
            let start = eol + 2;
            if answer.len() >= start + len {
                return answer[start..start + len].to_vec();
            }
        }
        let n = conn.read(&mut buf).await.unwrap();
        assert!(n > 0, "memcached closed the connection");
        answer.extend_from_slice(&buf[..n]);
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' && at + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[at + 1..at + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            at += 3;
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memcached_passes_the_conformance_suite_encrypted() {
    let Some(url) = memcached_url() else { return };
    conformance::run(encrypted(memcached(&url).await, &[1]), SystemClock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memcached_items_show_no_stored_field() {
    let Some(url) = memcached_url() else { return };
    let plain = memcached(&url).await;
    let prefix = plain.prefix_str().to_owned();
    shop(plain).await;
    assert!(
        leaks(&memcached_dump(&url, &prefix).await).contains(&SECRET_SKU),
        "the control shows nothing"
    );

    let sealed = memcached(&url).await;
    let prefix = sealed.prefix_str().to_owned();
    shop(encrypted(sealed, &[1])).await;
    assert_eq!(
        leaks(&memcached_dump(&url, &prefix).await),
        Vec::<&str>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memcached_sealed_record_moved_to_another_key_does_not_open() {
    let Some(url) = memcached_url() else { return };
    moved_record_does_not_open(memcached(&url).await).await;
}

/// memcached cannot be walked: `rekey_all` says so (an error, not a count of 0). A rotation
/// still loses no session: with the ring [2, 1] every session sealed with key 1 loads, and
/// each is sealed with key 2 by its next save, after which key 1 can go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memcached_key_rotation_loses_no_session_and_rekey_all_says_it_cannot_walk() {
    let Some(url) = memcached_url() else { return };
    let inner = memcached(&url).await;
    let keys: Vec<SessionKey> = (0..10).map(|_| fresh_key()).collect();
    let old = encrypted(inner.clone(), &[1]);
    for key in &keys {
        let entry = Entry::Live {
            version: 1,
            session: session(),
        };
        assert!(old.swap(key, None, Some(entry)).await.unwrap());
    }
    let rotated = encrypted(inner.clone(), &[2, 1]);
    assert!(
        matches!(rotated.rekey_all().await, Err(StoreError::Unsupported(_))),
        "rekey_all on memcached did not say it cannot walk"
    );
    for key in &keys {
        let Some(Entry::Live { version, session }) = rotated.load(key).await.unwrap() else {
            panic!("a session was lost in the rotation");
        };
        // A save, as the layer makes it.
        let entry = Entry::Live {
            version: version + 1,
            session,
        };
        assert!(rotated.swap(key, Some(version), Some(entry)).await.unwrap());
    }
    let retired = encrypted(inner, &[2]);
    for key in &keys {
        let Some(Entry::Live { session, .. }) = retired.load(key).await.unwrap() else {
            panic!("a session was lost in the rotation");
        };
        assert_eq!(session.record, self::session().record);
    }
}

// ---- owners, hashed --------------------------------------------------------------------------

/// Whose sessions they are: in clear by default (the owner index needs it), a keyed hash with
/// `hash_owners`.
const OWNER: &str = "ada.lovelace@example.org";

/// Stores three sessions of [`OWNER`] through `store` (wrapping `inner`), checks the owner
/// index still lists exactly them, and returns the wrapped store's raw dump.
async fn owned_sessions<S, F, Fut>(store: Encrypted<S>, dump: F) -> Vec<u8>
where
    S: SessionStore + Clone,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Vec<u8>>,
{
    let mut keys = Vec::new();
    for _ in 0..3 {
        let key = fresh_key();
        let mut owned = session();
        owned.owner = Some(std::sync::Arc::new(Owner::new(OWNER, ms_now())));
        let entry = Entry::Live {
            version: 1,
            session: owned,
        };
        assert!(store.swap(&key, None, Some(entry)).await.unwrap());
        keys.push(key);
    }
    let mut listed: Vec<String> = store
        .owned_by(OWNER)
        .await
        .unwrap()
        .into_iter()
        .map(|(key, _)| key.as_str().to_owned())
        .collect();
    let mut expected: Vec<String> = keys.iter().map(|key| key.as_str().to_owned()).collect();
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected, "the owner index lost track");
    dump().await
}

/// With `hash_owners` the owner's name is in no column of the table (the control without it
/// shows it there), and listing the owner's sessions works as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_hashed_owners_are_not_in_the_table_and_still_list() {
    let Some(plain) = postgres_common::TestTable::migrated().await else {
        return;
    };
    let dump = owned_sessions(encrypted(plain.store.clone(), &[1]), || {
        postgres_dump(&plain)
    })
    .await;
    assert!(contains(&dump, OWNER), "the control shows no owner");
    drop(plain);

    let Some(hashed) = postgres_common::TestTable::migrated().await else {
        return;
    };
    let store = encrypted(hashed.store.clone(), &[1]).hash_owners(key(9));
    let dump = owned_sessions(store, || postgres_dump(&hashed)).await;
    assert!(!contains(&dump, OWNER), "the owner's name is stored");
    assert!(
        !contains(&dump, "lovelace"),
        "a part of the owner's name is stored"
    );
    assert_eq!(leaks(&dump), Vec::<&str>::new());
}

/// The same on MySQL (its owner column is binary).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_hashed_owners_are_not_in_the_table_and_still_list() {
    let Some(plain) = MySqlTable::new().await else {
        return;
    };
    let dump = owned_sessions(encrypted(plain.store.clone(), &[1]), || plain.dump()).await;
    assert!(contains(&dump, OWNER), "the control shows no owner");
    plain.drop_table().await;

    let Some(hashed) = MySqlTable::new().await else {
        return;
    };
    let store = encrypted(hashed.store.clone(), &[1]).hash_owners(key(9));
    let dump = owned_sessions(store, || hashed.dump()).await;
    assert!(!contains(&dump, OWNER), "the owner's name is stored");
    assert_eq!(leaks(&dump), Vec::<&str>::new());
    hashed.drop_table().await;
}

/// The same on Redis (the owner index is a set per owner, named after it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_hashed_owners_are_not_in_the_keys_and_still_list() {
    let Some(url) = redis_common::redis_url() else {
        return;
    };
    let plain = redis_common::PrefixGuard::new(&url, "encrypted-owner-plain");
    let store = encrypted(redis_common::store(&url, &plain).await, &[1]);
    let dump = owned_sessions(store, || redis_dump(&url, &plain.prefix)).await;
    assert!(contains(&dump, OWNER), "the control shows no owner");

    let hashed = redis_common::PrefixGuard::new(&url, "encrypted-owner-hashed");
    let store = encrypted(redis_common::store(&url, &hashed).await, &[1]).hash_owners(key(9));
    let dump = owned_sessions(store, || redis_dump(&url, &hashed.prefix)).await;
    assert!(!contains(&dump, OWNER), "the owner's name is stored");
    assert_eq!(leaks(&dump), Vec::<&str>::new());
}
