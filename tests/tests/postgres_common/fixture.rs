//! `tests/fixtures/layout_v0`: the PostgreSQL tables the earlier layout wrote (a `pg_dump
//! --inserts` of `fixture_v0*`), loaded under a table name of the test's own, and what each
//! session in them holds (`manifest.json`).

use std::time::{Duration, UNIX_EPOCH};

use sessions::store::Entry;
use sessions::store::{Record, SessionKey, Slot};
use sessions::{PostgresStore, SessionStore};

use super::TestTable;

const DUMP: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/layout_v0/postgres.sql"
));
const MANIFEST: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/layout_v0/manifest.json"
));

/// One session of the fixture, as the earlier store loaded it.
pub(crate) struct Expected {
    pub(crate) label: String,
    pub(crate) key: SessionKey,
    pub(crate) record: Record,
    pub(crate) revisions: Vec<(String, u64)>,
    pub(crate) created_ms: u64,
    pub(crate) expires_ms: u64,
}

/// Every session of the fixture.
pub(crate) fn manifest() -> Vec<Expected> {
    let sessions: Vec<serde_json::Value> = serde_json::from_str(MANIFEST).expect("manifest.json");
    sessions
        .iter()
        .map(|session| {
            let text = |name: &str| {
                session[name]
                    .as_str()
                    .unwrap_or_else(|| panic!("manifest: {name}"))
                    .to_owned()
            };
            let number = |name: &str| {
                session[name]
                    .as_u64()
                    .unwrap_or_else(|| panic!("manifest: {name}"))
            };
            let record = Record::from_bytes(&base64(&text("record_b64"))).expect("manifest record");
            let revisions = session["revisions"]
                .as_array()
                .expect("manifest: revisions")
                .iter()
                .map(|pair| {
                    (
                        pair[0].as_str().expect("slot name").to_owned(),
                        pair[1].as_u64().expect("revision"),
                    )
                })
                .collect();
            Expected {
                label: text("label"),
                key: SessionKey::from_stored(text("key")).expect("manifest key"),
                record,
                revisions,
                created_ms: number("created_ms"),
                expires_ms: number("expires_ms"),
            }
        })
        .collect()
}

/// Loads the dump's three tables under `table`'s name (`<name>`, `<name>_slots`,
/// `<name>_fields`), in the connection's `search_path` schema.
pub(crate) async fn load_old_tables(table: &TestTable) {
    let script = DUMP
        .replace("public.fixture_v0", table.name())
        .replace("fixture_v0", table.name());
    sqlx::raw_sql(&script)
        .execute(table.store.pool())
        .await
        .expect("load the fixture's tables");
}

/// Every fixture session loads from `store` exactly as the earlier store loaded it: record
/// (slot and field order, headers, bytes), slot revisions, deadline; as version 1, no owner.
pub(crate) async fn check_every_session(store: &PostgresStore) {
    for expected in manifest() {
        let label = &expected.label;
        let entry = store
            .load(&expected.key)
            .await
            .unwrap_or_else(|err| panic!("{label}: load failed: {err}"));
        let Some(Entry::Live { version, session }) = entry else {
            panic!("{label}: not stored after the upgrade: {entry:?}");
        };
        assert_eq!(version, 1, "{label}: entry version");
        assert_eq!(session.record, expected.record, "{label}: record");
        let names = |record: &Record| {
            record
                .slots()
                .map(Slot::name)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(&session.record),
            names(&expected.record),
            "{label}: slot order"
        );
        let revisions: Vec<(String, u64)> = session
            .record
            .slots()
            .map(|slot| (slot.name().to_owned(), slot.revision()))
            .collect();
        assert_eq!(revisions, expected.revisions, "{label}: revisions");
        let ms = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
        assert_eq!(
            session.deadline.created_at,
            ms(expected.created_ms),
            "{label}: created_at"
        );
        assert_eq!(
            session.deadline.expires_at,
            ms(expected.expires_ms),
            "{label}: expires_at"
        );
        assert_eq!(
            session.last_seen,
            ms(expected.created_ms),
            "{label}: last seen"
        );
        assert_eq!(session.owner, None, "{label}: owner");
    }
}

/// Standard base64 (with padding), as the manifest writes it.
fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("manifest: not base64: {c:?}"),
    };
    let digits: Vec<u8> = text.bytes().filter(|&c| c != b'=').map(value).collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let mut acc = 0u32;
        for (i, d) in chunk.iter().enumerate() {
            acc |= u32::from(*d) << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

#[test]
fn base64_decodes() {
    assert_eq!(base64("aGk="), b"hi");
    assert_eq!(base64("aGVsbG8="), b"hello");
    assert_eq!(base64("YWJj"), b"abc");
}
