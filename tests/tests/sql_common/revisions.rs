//! Slot revisions in tables made by the release before them.

use std::time::{SystemTime, UNIX_EPOCH};

use sessions::{SaveOutcome, SessionKey, StoreError};

use super::{SqlStore, field_update, hour_from, must_load};

/// The statements by which the previous release filed a session under `key` (slots `cart`
/// {a: 1} and `prefs` {x: 1}), in the order they run; `one` is the dialect's literal for the
/// bytes `1`. The key is hex, safe to write inline.
pub(crate) fn old_release_rows(table: &str, key: &SessionKey, one: &str) -> Vec<String> {
    let deadline = hour_from(SystemTime::now());
    let ms = |time: SystemTime| {
        time.duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default()
    };
    let (key, json) = (key.as_str(), super::json_slot("cart", &[]).format_tag());
    vec![
        format!(
            "INSERT INTO \"{table}\" (key, created_at, expires_at) VALUES ('{key}', {}, {})",
            ms(deadline.created_at),
            ms(deadline.expires_at)
        ),
        format!(
            "INSERT INTO \"{table}_slots\" (key, slot, type_tag, version, format_tag)
             VALUES ('{key}', 'cart', 'cart', 1, {json}), ('{key}', 'prefs', 'prefs', 1, {json})"
        ),
        format!(
            "INSERT INTO \"{table}_fields\" (key, slot, field, bytes)
             VALUES ('{key}', 'cart', 'a', {one}), ('{key}', 'prefs', 'x', {one})"
        ),
    ]
}

/// After `migrate()` (run twice: the second changes nothing) on the previous release's tables
/// holding [`old_release_rows`], the session loads whole with every slot at revision 1, and
/// revisions count on from there: optimistic concurrency works on old sessions.
pub(crate) async fn old_rows_load_at_revision_one<S: SqlStore>(store: &S, key: &SessionKey) {
    store.migrate_tables().await.expect("migrate old tables");
    store.migrate_tables().await.expect("migrate again");
    let stored = must_load(store, key).await;
    assert_eq!(
        (stored.revision_of("cart"), stored.revision_of("prefs")),
        (1, 1),
        "slots stored before revisions load at revision 1"
    );
    let field = |slot: &str, name: &str| {
        stored
            .slot(slot)
            .and_then(|s| s.field(name))
            .map(|b| b.to_vec())
    };
    assert_eq!(field("cart", "a").as_deref(), Some(&b"1"[..]));
    assert_eq!(field("prefs", "x").as_deref(), Some(&b"1"[..]));

    let deadline = hour_from(SystemTime::now());
    let mut changes = field_update("cart", "a", "2");
    changes.expect("cart", 1);
    assert_eq!(
        store.save(key, &changes, deadline).await.ok(),
        Some(SaveOutcome::Saved)
    );
    let stored = must_load(store, key).await;
    assert_eq!(
        (stored.revision_of("cart"), stored.revision_of("prefs")),
        (2, 1)
    );
    assert!(
        matches!(
            store.save(key, &changes, deadline).await,
            Err(StoreError::Conflict(_))
        ),
        "a stale expectation on a migrated slot conflicts"
    );
}
