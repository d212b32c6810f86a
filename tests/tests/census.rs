//! The census (`store.census()`, `SessionLayer::census()`): a store seeded with version-1 and
//! version-2 carts, a session that also holds prefs, one bound to an owner and one that has
//! ended is counted exactly, on every store; a walk in small pages reports its progress and
//! a census resumed from a cursor counts what one pass counts.

#[path = "behaviour/fixtures.rs"]
#[allow(dead_code, reason = "the census uses the fixtures of four stores")]
mod fixtures;
#[path = "redis_common/mod.rs"]
mod redis_common;
#[path = "replica_common/mod.rs"]
mod replica_common;
#[path = "behaviour/shared_cluster.rs"]
#[allow(dead_code, reason = "the fixtures' cluster arm")]
mod shared_cluster;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sessions::prelude::*;
use sessions::store::upkeep::Walk;
use sessions::store::{Deadline, Entry, Owner, Record, Slot, Stored};
use sessions::{Census, Format, SessionId};

/// A whole second `back` seconds ago (stores keep milliseconds).
fn seconds_ago(back: u64) -> SystemTime {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    UNIX_EPOCH + Duration::from_secs(now - back)
}

fn cart_v1(skus: &str) -> Slot {
    Slot::new(
        "cart",
        1,
        Format::Json,
        vec![("skus".into(), skus.to_owned().into())],
    )
}

fn cart_v2(items: &str) -> Slot {
    Slot::new(
        "cart",
        2,
        Format::Json,
        vec![
            ("items".into(), items.to_owned().into()),
            ("coupon".into(), "null".into()),
        ],
    )
}

fn prefs() -> Slot {
    Slot::new(
        "prefs",
        1,
        Format::Json,
        vec![("dark".into(), "true".into())],
    )
}

/// The bytes of a slot's fields' names and values (what the census counts per slot).
fn size(slot: &Slot) -> u64 {
    slot.fields()
        .map(|(name, bytes)| (name.len() + bytes.len()) as u64)
        .sum()
}

/// Files a session holding `slots`, created `age` seconds ago and ending in an hour (or an
/// hour ago, for `ended`), bound to `owner`.
async fn seed(
    store: &impl SessionStore,
    slots: Vec<Slot>,
    age: u64,
    owner: Option<&str>,
    ended: bool,
) {
    let mut record = Record::new();
    for slot in slots {
        record.insert(slot);
    }
    let created_at = seconds_ago(age);
    let expires_at = if ended {
        seconds_ago(3600)
    } else {
        seconds_ago(0) + Duration::from_secs(3600)
    };
    let mut session = Stored::new(
        record,
        Deadline {
            created_at,
            expires_at,
        },
    );
    session.owner = owner.map(|owner| Arc::new(Owner::new(owner, created_at)));
    let key = SessionId::generate().expect("an id").key();
    let entry = Entry::Live {
        version: 1,
        session,
    };
    assert!(store.swap(&key, None, Some(entry)).await.expect("seeded"));
}

/// Three version-1 carts, two version-2 carts (one beside prefs, one bound to owner 42), and
/// an ended version-1 cart that must not be counted.
async fn seed_carts(store: &impl SessionStore) {
    seed(store, vec![cart_v1(r#"["a"]"#)], 7200, None, false).await;
    seed(store, vec![cart_v1(r#"["b","c"]"#)], 60, None, false).await;
    seed(store, vec![cart_v1("[]")], 60, None, false).await;
    seed(store, vec![cart_v2("[]"), prefs()], 30, None, false).await;
    seed(
        store,
        vec![cart_v2(r#"[{"sku":"d"}]"#)],
        10,
        Some("42"),
        false,
    )
    .await;
    seed(store, vec![cart_v1(r#"["gone"]"#)], 9000, None, true).await;
}

/// What the census of [`seed_carts`] is, exactly.
fn check(census: &Census, store: &str) {
    assert_eq!(census.sessions, 5, "{store}: {census:?}");
    assert_eq!(census.with_owner, 1, "{store}: {census:?}");
    assert_eq!(census.moved, 0, "{store}: {census:?}");
    assert_eq!(census.unreadable, 0, "{store}: {census:?}");
    let oldest = census.oldest_created.expect("an oldest session");
    let expected = seconds_ago(7200);
    let off = oldest
        .duration_since(expected)
        .or_else(|_| expected.duration_since(oldest))
        .expect("a duration");
    assert!(
        off <= Duration::from_secs(2),
        "{store}: oldest {oldest:?}, not 2 hours ago"
    );
    assert_eq!(census.sessions_of("cart", 1), 3, "{store}: {census:?}");
    assert_eq!(census.sessions_of("cart", 2), 2, "{store}: {census:?}");
    assert_eq!(census.sessions_of("prefs", 1), 1, "{store}: {census:?}");
    let rows: Vec<(&str, u32, &str, u64, u64)> = census
        .slots
        .iter()
        .map(|slot| {
            (
                slot.name.as_str(),
                slot.version,
                slot.codec.as_str(),
                slot.sessions,
                slot.bytes,
            )
        })
        .collect();
    let v1 = size(&cart_v1(r#"["a"]"#)) + size(&cart_v1(r#"["b","c"]"#)) + size(&cart_v1("[]"));
    let v2 = size(&cart_v2("[]")) + size(&cart_v2(r#"[{"sku":"d"}]"#));
    assert_eq!(
        rows,
        [
            ("cart", 1, "json", 3, v1),
            ("cart", 2, "json", 2, v2),
            ("prefs", 1, "json", 1, size(&prefs())),
        ],
        "{store}"
    );
    assert!(census.bytes >= v1 + v2, "{store}: {census:?}");
    // Debug shows the names and the counts as plain numbers.
    let shown = format!("{census:?}");
    assert!(shown.contains("sessions: 5"), "{shown}");
    assert!(
        shown.contains(r#"name: "cart", version: 1, codec: "json", sessions: 3"#),
        "{shown}"
    );
}

/// The census of a seeded store, through the store itself and through a layer over it, and
/// in pages of two with progress, resumed halfway from the cursor a first walk reported.
async fn census_counts_exactly<S: SessionStore + Clone>(store: S, name: &str) {
    seed_carts(&store).await;
    check(&store.census().await.expect("a census"), name);
    let layer = SessionLayer::new(store.clone());
    check(&layer.census().await.expect("a layer's census"), name);

    let mut reports = Vec::new();
    let walk = Walk::new()
        .page_size(2)
        .on_progress(|progress| reports.push(progress.clone()));
    let paged = store.census_with(walk).await.expect("a paged census");
    check(&paged, name);
    let last = reports.last().expect("progress was reported");
    assert!(last.done, "{name}: {reports:?}");
    assert_eq!(
        last.seen, 5,
        "{name}: every live entry seen once: {reports:?}"
    );
    assert!(reports.len() >= 2, "{name}: pages of two: {reports:?}");

    // A job that stops after its first page and resumes from the cursor counts the same.
    let mut census = Census::default();
    let mut walker = Walk::new().page_size(2).start(&store);
    let first = walker
        .next_page()
        .await
        .expect("a page")
        .expect("not empty");
    census.count_page(&first);
    let _ = walker.next_page().await.expect("the second page");
    let cursor = walker.progress().cursor.clone().expect("more to walk");
    drop(walker);
    let mut walker = Walk::new().page_size(2).resume_from(cursor).start(&store);
    while let Some(page) = walker.next_page().await.expect("a page") {
        census.count_page(&page);
    }
    check(&census, name);
}

#[tokio::test]
async fn census_of_a_memory_store_counts_carts_by_version() {
    let fixture = fixtures::memory().await.expect("always");
    census_counts_exactly(fixture.store.clone(), "memory").await;
}

#[tokio::test]
async fn census_of_a_sqlite_store_counts_carts_by_version() {
    let fixture = fixtures::sqlite().await.expect("always");
    census_counts_exactly(fixture.store.clone(), "sqlite").await;
}

#[tokio::test]
async fn census_of_a_postgres_store_counts_carts_by_version() {
    let Some(fixture) = fixtures::postgres().await else {
        return;
    };
    census_counts_exactly(fixture.store.clone(), "postgres").await;
}

#[tokio::test]
async fn census_of_a_redis_store_counts_carts_by_version() {
    let Some(fixture) = fixtures::redis().await else {
        return;
    };
    census_counts_exactly(fixture.store.clone(), "redis").await;
}

#[tokio::test]
async fn census_of_a_mysql_store_counts_carts_by_version() {
    let Some(fixture) = fixtures::mysql().await else {
        return;
    };
    census_counts_exactly(fixture.store.clone(), "mysql").await;
}

/// A cookie store keeps nothing on the server: its census says so, it does not count zero.
#[tokio::test]
async fn census_of_a_cookie_store_is_unsupported() {
    let key = sessions::Key::generate(1).expect("a key");
    let layer = SessionLayer::new(CookieStore::new([key]).expect("a cookie store"));
    let err = layer.census().await.expect_err("nothing to count");
    assert!(err.to_string().contains("cookies"), "{err}");
}
