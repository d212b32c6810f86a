//! Conformance checks for slot revisions, optimistic concurrency and the atomic `cycle`.

use std::time::SystemTime;

use bytes::Bytes;

use super::{
    deadline, field, field_change, fresh_key, is_absent, must_delete, must_load, record, slot,
};
use crate::error::Conflict;
use crate::id::SessionKey;
use crate::record::{Changeset, SlotChange};
use crate::store::{SaveOutcome, SessionStore, StoreError};

/// How many writers [`cycle_racing_saves`] runs against one `cycle`.
pub const CYCLE_WRITERS: usize = 16;

async fn create<S: SessionStore>(store: &S, key: &SessionKey, now: SystemTime) {
    store
        .create(
            key,
            &record(vec![
                slot("cart", &[("a", "1")]),
                slot("prefs", &[("x", "1")]),
            ]),
            deadline(now),
        )
        .await
        .expect("conformance: create failed");
}

async fn save<S: SessionStore>(
    store: &S,
    key: &SessionKey,
    changes: &Changeset,
    now: SystemTime,
) -> Result<SaveOutcome, StoreError> {
    store.save(key, changes, deadline(now)).await
}

/// Every stored slot has a revision of 1 or more; each save that changes a slot adds one to
/// it (field updates and whole-slot writes alike) and leaves the other slots' alone.
pub async fn revisions<S: SessionStore>(store: &S, now: SystemTime) {
    let key = fresh_key();
    create(store, &key, now).await;
    let stored = must_load(store, &key, "revisions").await;
    assert_eq!(
        (stored.revision_of("cart"), stored.revision_of("prefs")),
        (1, 1),
        "conformance: revisions: created slots must be at revision 1"
    );
    let changes = field_change("cart", vec![("a".into(), Bytes::from_static(b"2"))]);
    assert_eq!(
        save(store, &key, &changes, now).await.ok(),
        Some(SaveOutcome::Saved)
    );
    let stored = must_load(store, &key, "revisions after a field update").await;
    assert_eq!(
        (stored.revision_of("cart"), stored.revision_of("prefs")),
        (2, 1),
        "conformance: revisions: a field update moves its slot's revision by one, and only its"
    );
    let changes: Changeset = [
        SlotChange::Put(slot("cart", &[("a", "3")])),
        SlotChange::Put(slot("extra", &[("y", "1")])),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        save(store, &key, &changes, now).await.ok(),
        Some(SaveOutcome::Saved)
    );
    let stored = must_load(store, &key, "revisions after whole-slot writes").await;
    assert_eq!(
        (
            stored.revision_of("cart"),
            stored.revision_of("extra"),
            stored.revision_of("prefs")
        ),
        (3, 1, 1),
        "conformance: revisions: a whole-slot write moves a stored slot's revision by one and starts a new slot at 1"
    );
    must_delete(store, &key).await;
}

/// A save that expects a revision the slot no longer has fails with `Conflict` and writes
/// nothing at all, not even its other slots' changes; one whose expectations hold is saved.
pub async fn expected_revisions<S: SessionStore>(store: &S, now: SystemTime) {
    let key = fresh_key();
    create(store, &key, now).await;

    let mut first = field_change("cart", vec![("a".into(), Bytes::from_static(b"2"))]);
    first.expect("cart", 1);
    assert_eq!(
        save(store, &key, &first, now).await.ok(),
        Some(SaveOutcome::Saved),
        "conformance: a save whose expected revision holds must be saved"
    );

    let mut second = field_change("cart", vec![("b".into(), Bytes::from_static(b"9"))]);
    second.push(SlotChange::Put(slot("prefs", &[("x", "9")])));
    second.expect("cart", 1);
    match save(store, &key, &second, now).await {
        Err(StoreError::Conflict(conflict)) => assert_eq!(
            conflict,
            Conflict {
                slot: "cart".into(),
                expected: 1,
                stored: 2
            },
            "conformance: the conflict must name the slot and both revisions"
        ),
        other => {
            panic!("conformance: a stale expected revision returned {other:?}, not Err(Conflict)")
        }
    }
    let stored = must_load(store, &key, "after a conflict").await;
    assert_eq!(
        field(&stored, "cart", "b"),
        None,
        "conformance: a conflicting save wrote a field"
    );
    assert_eq!(
        field(&stored, "prefs", "x"),
        Some(&b"1"[..]),
        "conformance: a conflicting save wrote another slot"
    );
    assert_eq!(
        (stored.revision_of("cart"), stored.revision_of("prefs")),
        (2, 1),
        "conformance: a conflicting save moved a revision"
    );

    // 0 means "not stored": a new slot may be written once, the second writer conflicts.
    let mut put = Changeset::new();
    put.push(SlotChange::Put(slot("extra", &[("y", "1")])));
    put.expect("extra", 0);
    assert_eq!(
        save(store, &key, &put, now).await.ok(),
        Some(SaveOutcome::Saved)
    );
    assert!(
        matches!(
            save(store, &key, &put, now).await,
            Err(StoreError::Conflict(_))
        ),
        "conformance: expecting revision 0 of a slot that is stored must conflict"
    );
    // An expectation on a slot the save does not change is checked too.
    let mut guarded = field_change("cart", vec![("a".into(), Bytes::from_static(b"5"))]);
    guarded.expect("cart", 2);
    guarded.expect("prefs", 7);
    assert!(
        matches!(
            save(store, &key, &guarded, now).await,
            Err(StoreError::Conflict(_))
        ),
        "conformance: an expectation on an unchanged slot was not checked"
    );
    must_delete(store, &key).await;
    assert_eq!(
        save(store, &key, &first, now).await.ok(),
        Some(SaveOutcome::Missing),
        "conformance: a save with expectations on a deleted session must be Missing, not a conflict"
    );
}

/// `cycle` moves the session with the changes applied, refuses a taken key and a stale
/// expectation without changing anything, and answers `Missing` for a session that is gone.
pub async fn cycle<S: SessionStore>(store: &S, now: SystemTime) {
    let (old, new) = (fresh_key(), fresh_key());
    create(store, &old, now).await;
    let changes = field_change("cart", vec![("b".into(), Bytes::from_static(b"2"))]);
    let moved = store.cycle(&old, &new, &changes, deadline(now)).await;
    assert_eq!(
        moved.ok(),
        Some(SaveOutcome::Saved),
        "conformance: cycle of a stored session"
    );
    assert!(
        is_absent(store, &old).await,
        "conformance: cycle left the old key behind"
    );
    let stored = must_load(store, &new, "the cycled session").await;
    assert_eq!(
        field(&stored, "cart", "a"),
        Some(&b"1"[..]),
        "conformance: cycle lost data"
    );
    assert_eq!(
        field(&stored, "cart", "b"),
        Some(&b"2"[..]),
        "conformance: cycle lost its changes"
    );
    assert_eq!(
        field(&stored, "prefs", "x"),
        Some(&b"1"[..]),
        "conformance: cycle lost a slot"
    );
    assert_eq!(
        (stored.revision_of("cart"), stored.revision_of("prefs")),
        (2, 1),
        "conformance: cycle must carry revisions over and move the changed slot's by one"
    );

    let gone = fresh_key();
    let outcome = store.cycle(&old, &gone, &changes, deadline(now)).await;
    assert_eq!(
        outcome.ok(),
        Some(SaveOutcome::Missing),
        "conformance: cycle of a gone session"
    );
    assert!(
        is_absent(store, &gone).await,
        "conformance: cycle of a gone session created one"
    );

    let taken = fresh_key();
    create(store, &taken, now).await;
    let outcome = store
        .cycle(&new, &taken, &Changeset::new(), deadline(now))
        .await;
    assert!(
        matches!(outcome, Err(StoreError::Collision)),
        "conformance: cycle onto a taken key returned {outcome:?}, not Err(Collision)"
    );
    let still = must_load(store, &new, "a session whose cycle collided").await;
    assert_eq!(
        field(&still, "cart", "b"),
        Some(&b"2"[..]),
        "conformance: a refused cycle changed the session"
    );
    let other = must_load(store, &taken, "the session a cycle collided with").await;
    assert_eq!(
        field(&other, "cart", "b"),
        None,
        "conformance: a refused cycle overwrote the taken key"
    );

    let mut stale = field_change("cart", vec![("c".into(), Bytes::from_static(b"3"))]);
    stale.expect("cart", 1);
    let target = fresh_key();
    let outcome = store.cycle(&new, &target, &stale, deadline(now)).await;
    assert!(
        matches!(outcome, Err(StoreError::Conflict(_))),
        "conformance: cycle with a stale expectation returned {outcome:?}, not Err(Conflict)"
    );
    assert!(
        is_absent(store, &target).await,
        "conformance: a conflicting cycle created the new key"
    );
    let still = must_load(store, &new, "a session whose cycle conflicted").await;
    assert_eq!(
        field(&still, "cart", "c"),
        None,
        "conformance: a conflicting cycle wrote"
    );

    for key in [&new, &taken] {
        must_delete(store, key).await;
    }
}

/// [`CYCLE_WRITERS`] writers keep saving their own field while the session is cycled: every
/// save acknowledged as `Saved` is in the moved session, every later one finds it `Missing`,
/// and the old key is gone. A store whose `cycle` is a load, a create and a delete loses the
/// saves that land in between.
pub async fn cycle_racing_saves<S: SessionStore + Clone>(store: &S, now: SystemTime) {
    let (old, new) = (fresh_key(), fresh_key());
    create(store, &old, now).await;
    let mut writers = Vec::with_capacity(CYCLE_WRITERS);
    for writer in 0..CYCLE_WRITERS {
        let store = store.clone();
        let old = old.clone();
        writers.push(tokio::spawn(async move {
            let mut acknowledged = None;
            for round in 0..10_000usize {
                let changes = field_change(
                    "cart",
                    vec![(format!("w{writer}").into(), Bytes::from(round.to_string()))],
                );
                match store.save(&old, &changes, deadline(now)).await {
                    Ok(SaveOutcome::Saved) => acknowledged = Some(round),
                    Ok(SaveOutcome::Missing) => return acknowledged,
                    Err(err) => panic!("conformance: a save racing cycle failed: {err}"),
                }
                tokio::task::yield_now().await;
            }
            panic!("conformance: the session was never cycled away from under writer {writer}");
        }));
    }
    // Let the writers get going, then move the session from under them.
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let moved = store
        .cycle(&old, &new, &Changeset::new(), deadline(now))
        .await;
    assert_eq!(
        moved.ok(),
        Some(SaveOutcome::Saved),
        "conformance: cycle racing saves"
    );
    let stored = must_load(store, &new, "the session cycled while saves ran").await;
    for (writer, task) in writers.into_iter().enumerate() {
        let acknowledged = match task.await {
            Ok(acknowledged) => acknowledged,
            Err(err) => std::panic::resume_unwind(err.into_panic()),
        };
        let found = field(&stored, "cart", &format!("w{writer}"));
        assert_eq!(
            found.map(|b| String::from_utf8_lossy(b).into_owned()),
            acknowledged.map(|round| round.to_string()),
            "conformance: writer {writer}'s last acknowledged save is not what the cycled session holds"
        );
    }
    assert!(
        is_absent(store, &old).await,
        "conformance: the old key came back after cycle"
    );
    must_delete(store, &new).await;
}
