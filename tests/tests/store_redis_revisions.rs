//! `RedisStore` slot revisions and the moving mark, against the shared server at
//! `SESSIONS_TEST_REDIS_URL`: sessions written before revisions existed keep working, and a
//! session a cluster `cycle` froze never comes back.
#![allow(clippy::unwrap_used)]

mod redis_common;

use std::time::Duration;

use sessions::prelude::*;
use sessions::{Changeset, Format, SaveOutcome, SlotChange, StoreError};

use redis_common::{
    PrefixGuard, deadline_in, fresh_key, plain_connection, record, redis_url, revisions, slot,
    store, update,
};

/// A hash written by the release before revisions (no `r:<slot>` entries) loads at revision 1,
/// takes expectations of revision 1, and its saves move the revision on from there.
#[tokio::test]
async fn a_session_stored_before_revisions_starts_at_revision_1() {
    let Some(url) = redis_url() else { return };
    let guard = PrefixGuard::new(&url, "old-layout");
    let store = store(&url, &guard).await;
    let key = fresh_key();
    let original = record(vec![
        slot("cart", 1, Format::Json, &[("a", b"1")]),
        slot("prefs", 1, Format::Json, &[("dark", b"true")]),
    ]);
    store
        .create(&key, &original, deadline_in(600))
        .await
        .unwrap();
    let mut conn = plain_connection(&url).await;
    let removed: i64 = redis::cmd("HDEL")
        .arg(store.redis_key(&key))
        .arg("r:cart")
        .arg("r:prefs")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(removed, 2, "the layout keeps revisions under r:<slot>");

    let stored = store.load(&key).await.unwrap().unwrap();
    assert_eq!(stored.record, original);
    assert_eq!(
        revisions(&stored.record),
        [("cart".to_owned(), 1), ("prefs".to_owned(), 1)]
    );

    let mut stale = update("cart", "a", b"9");
    stale.expect("cart", 0);
    assert!(matches!(
        store.save(&key, &stale, deadline_in(600)).await,
        Err(StoreError::Conflict(_))
    ));
    let mut changes = update("cart", "b", b"2");
    changes.expect("cart", 1);
    changes.expect("prefs", 1);
    assert_eq!(
        store.save(&key, &changes, deadline_in(600)).await.unwrap(),
        SaveOutcome::Saved
    );
    let put: Changeset = [SlotChange::Put(slot(
        "prefs",
        1,
        Format::Json,
        &[("dark", b"false")],
    ))]
    .into_iter()
    .collect();
    store.save(&key, &put, deadline_in(600)).await.unwrap();
    let stored = store.load(&key).await.unwrap().unwrap();
    assert_eq!(
        revisions(&stored.record),
        [("cart".to_owned(), 2), ("prefs".to_owned(), 2)]
    );
    let cart = stored.record.slot("cart").unwrap();
    assert_eq!(cart.field("b").map(|b| &b[..]), Some(&b"2"[..]));
}

/// A session marked as moving (the first step of a cycle on Redis Cluster, left behind by a
/// mover that died) is gone for everyone: loads find nothing, saves and cycles find it
/// missing, and a create on its key is a collision, so it can never come back; it expires by
/// itself.
#[tokio::test]
async fn a_session_being_moved_never_comes_back() {
    let Some(url) = redis_url() else { return };
    let guard = PrefixGuard::new(&url, "moving");
    let store = store(&url, &guard).await;
    let key = fresh_key();
    let original = record(vec![slot("cart", 1, Format::Json, &[("a", b"1")])]);
    store
        .create(&key, &original, deadline_in(600))
        .await
        .unwrap();
    let mut conn = plain_connection(&url).await;
    let redis_key = store.redis_key(&key);
    let _: () = redis::pipe()
        .cmd("HSET")
        .arg(&redis_key)
        .arg("m")
        .arg("elsewhere")
        .ignore()
        .cmd("PEXPIRE")
        .arg(&redis_key)
        .arg(400)
        .ignore()
        .query_async(&mut conn)
        .await
        .unwrap();

    assert!(store.load(&key).await.unwrap().is_none());
    assert_eq!(
        store
            .save(&key, &update("cart", "a", b"2"), deadline_in(600))
            .await
            .unwrap(),
        SaveOutcome::Missing
    );
    let other = fresh_key();
    assert_eq!(
        store
            .cycle(&key, &other, &Changeset::new(), deadline_in(600))
            .await
            .unwrap(),
        SaveOutcome::Missing
    );
    assert!(store.load(&other).await.unwrap().is_none());
    assert!(matches!(
        store.create(&key, &original, deadline_in(600)).await,
        Err(StoreError::Collision)
    ));
    let field: Option<String> = redis::cmd("HGET")
        .arg(&redis_key)
        .arg("f:4:cart:a")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(field.as_deref(), Some("1"), "nothing was written to it");

    tokio::time::sleep(Duration::from_millis(600)).await;
    let exists: i64 = redis::cmd("EXISTS")
        .arg(&redis_key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(exists, 0, "a frozen session expires by itself");
}
