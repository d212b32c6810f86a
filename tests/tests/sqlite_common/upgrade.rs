//! `migrate()` converts the layout before issue 13 (three tables, keys as hex text) in place:
//! the sessions the old code wrote (`tests/fixtures/layout_v0/`) load back exactly.

use std::time::{Duration, UNIX_EPOCH};

use sessions::store::Entry;
use sessions::store::{Deadline, Record, SessionKey, Slot};
use sessions::{SessionStore, SqliteStore};
use sqlx::Row;

use crate::sqlite_common::{TempDb, fresh_key};

/// One session of the fixture's manifest.
#[derive(serde::Deserialize)]
struct Fixture {
    label: String,
    key: String,
    created_ms: u64,
    expires_ms: u64,
    record_b64: String,
    revisions: Vec<(String, u64)>,
}

fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let digits: Vec<u8> = text.bytes().filter(|&c| c != b'=').map(value).collect();
    let mut out = Vec::new();
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, d)| n | (u32::from(*d) << (18 - 6 * i)));
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

fn fixture_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/layout_v0")
}

/// Every session the old code wrote loads back exactly after `migrate()`: record (slot and
/// field order, type tags, versions, formats, bytes), slot revisions and deadline; a second
/// `migrate()` changes nothing; the sessions then save as any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_converts_the_old_layout_in_place() {
    let db = TempDb::new("upgrade");
    std::fs::copy(fixture_dir().join("sessions.db"), &db.path).expect("copy the fixture");
    let manifest: Vec<Fixture> = serde_json::from_slice(
        &std::fs::read(fixture_dir().join("manifest.json")).expect("the manifest"),
    )
    .expect("a manifest");
    assert_eq!(manifest.len(), 6);

    let store = SqliteStore::open(&db.path).await.expect("open");
    store.migrate().await.expect("the upgrade");
    check_fixture(&store, &manifest).await;
    store.migrate().await.expect("a second migrate");
    check_fixture(&store, &manifest).await;

    let mut conn = db.connect().await;
    let tables: Vec<String> =
        sqlx::query("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .fetch_all(&mut conn)
            .await
            .expect("tables")
            .iter()
            .map(|row| row.get(0))
            .collect();
    assert_eq!(tables, ["sessions"], "the old tables are gone");
    let indexes: Vec<String> = sqlx::query(
        "SELECT name FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .expect("indexes")
    .iter()
    .map(|row| row.get(0))
    .collect();
    assert_eq!(indexes, ["sessions_by_expiry", "sessions_by_owner"]);

    // A converted session saves like any other.
    let key =
        SessionKey::from_stored("c2b7a9aeb47e04035a77c25eea4491ab473134cb4fb7b5f6b25bd748fe847d2b")
            .expect("the cart_v1 key");
    let Some(entry @ Entry::Live { .. }) = store.load(&key).await.expect("load") else {
        panic!("gone");
    };
    let Entry::Live { session, .. } = entry else {
        unreachable!()
    };
    let next = Entry::Live {
        version: 2,
        session: session.clone(),
    };
    assert!(store.swap(&key, Some(1), Some(next)).await.expect("save"));
}

async fn check_fixture(store: &SqliteStore, manifest: &[Fixture]) {
    for fixture in manifest {
        let key = SessionKey::from_stored(&fixture.key).expect("a key");
        let Some(Entry::Live { version, session }) = store.load(&key).await.expect("load") else {
            panic!("{}: not converted", fixture.label);
        };
        assert_eq!(version, 1, "{}", fixture.label);
        let expected = Record::from_bytes(&base64(&fixture.record_b64)).expect("the record");
        assert_eq!(session.record, expected, "{}", fixture.label);
        let names: Vec<&str> = session.record.slots().map(Slot::name).collect();
        let want: Vec<&str> = fixture.revisions.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, want, "{}: slot order", fixture.label);
        for (slot, revision) in &fixture.revisions {
            assert_eq!(
                session.record.revision_of(slot),
                *revision,
                "{}: revision of {slot}",
                fixture.label
            );
        }
        assert_eq!(
            session.deadline,
            Deadline {
                created_at: UNIX_EPOCH + Duration::from_millis(fixture.created_ms),
                expires_at: UNIX_EPOCH + Duration::from_millis(fixture.expires_ms),
            },
            "{}",
            fixture.label
        );
        assert_eq!(session.last_seen, session.deadline.created_at);
        assert!(session.owner.is_none());
    }
}

/// Tables of the release before slot revisions (no `revision` column) convert too: their
/// slots are at revision 1. A session whose rows do not make a record (numbers out of range,
/// values of the wrong type) is left out, with a warning; the others convert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_converts_tables_without_revisions() {
    let db = TempDb::new("upgrade-old");
    let mut conn = db.connect_creating().await;
    let good = fresh_key();
    let bad = fresh_key();
    let odd = fresh_key();
    let statements = [
        "CREATE TABLE sessions (key TEXT PRIMARY KEY NOT NULL, created_at INTEGER NOT NULL,
         expires_at INTEGER NOT NULL) WITHOUT ROWID"
            .to_owned(),
        "CREATE INDEX sessions_by_expiry ON sessions (expires_at)".to_owned(),
        "CREATE TABLE sessions_slots (id INTEGER PRIMARY KEY, key TEXT NOT NULL, slot TEXT NOT NULL,
         type_tag TEXT NOT NULL, version INTEGER NOT NULL, format_tag INTEGER NOT NULL,
         UNIQUE (key, slot))"
            .to_owned(),
        "CREATE TABLE sessions_fields (id INTEGER PRIMARY KEY, key TEXT NOT NULL,
         slot TEXT NOT NULL, field TEXT NOT NULL, bytes BLOB NOT NULL, UNIQUE (key, slot, field))"
            .to_owned(),
        format!("INSERT INTO sessions VALUES ('{good}', 1000, 4102444800000)"),
        format!("INSERT INTO sessions_slots VALUES (1, '{good}', 'cart', 'cart', 1, 1)"),
        format!("INSERT INTO sessions_fields VALUES (1, '{good}', 'cart', 'n', X'31')"),
        format!("INSERT INTO sessions_fields VALUES (2, '{good}', 'cart', 'a', X'32')"),
        format!("INSERT INTO sessions VALUES ('{bad}', 1000, 4102444800000)"),
        format!("INSERT INTO sessions_slots VALUES (2, '{bad}', 'cart', 'cart', -1, 1)"),
        // Values of the wrong type: a number for a key, a blob for a type tag.
        "INSERT INTO sessions VALUES (12345, 1000, 4102444800000)".to_owned(),
        format!("INSERT INTO sessions VALUES ('{odd}', 1000, 4102444800000)"),
        format!("INSERT INTO sessions_slots VALUES (3, '{odd}', 'cart', X'FF', 1, 1)"),
    ];
    for statement in &statements {
        sqlx::query(statement)
            .execute(&mut conn)
            .await
            .expect("the old release's tables");
    }
    let store = db.open().await;
    let Some(Entry::Live { session, .. }) = store.load(&good).await.expect("load") else {
        panic!("not converted");
    };
    let slot = session.record.slot("cart").expect("the cart");
    assert_eq!(slot.revision(), 1);
    let fields: Vec<(&str, &[u8])> = slot.fields().collect();
    assert_eq!(
        fields,
        [("n", &b"1"[..]), ("a", &b"2"[..])],
        "field order kept"
    );
    assert!(store.load(&bad).await.expect("load").is_none());
    assert!(store.load(&odd).await.expect("load").is_none());
}
