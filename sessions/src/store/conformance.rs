//! The conformance suite every [`SessionStore`] runs (feature `conformance`).
//!
//! Each check creates its own sessions under fresh random ids, so checks can share a store
//! with other data. A failed check panics with a message that names the broken promise:
//! this is test code.
//!
//! ```no_run
//! use sessions::{MemoryStore, SystemClock};
//! # async fn demo() {
//! sessions::store::conformance::run(MemoryStore::new(), SystemClock).await;
//! # }
//! ```

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;

use crate::codec::Format;
use crate::expiry::{Clock, Deadline};
use crate::id::{SessionId, SessionKey};
use crate::record::{Changeset, Record, Slot, SlotChange};
use crate::store::{SaveOutcome, SessionStore, StoreError};

mod revisions;
pub use revisions::{CYCLE_WRITERS, cycle, cycle_racing_saves, expected_revisions, revisions};

/// How many concurrent writers [`concurrent_distinct_fields`] runs.
pub const WRITERS: usize = 64;
/// How many saves each writer makes.
pub const WRITES_EACH: usize = 20;

/// Runs every check against `store`; `clock` must be the clock the store expires by.
pub async fn run<S: SessionStore + Clone>(store: S, clock: impl Clock) {
    let now = || clock.now();
    collision(&store, now()).await;
    update_only(&store, now()).await;
    delta_merge(&store, now()).await;
    expiry(&store, now()).await;
    delete(&store, now()).await;
    field_update_conflict(&store, now()).await;
    concurrent_distinct_fields(&store, now()).await;
    revisions(&store, now()).await;
    expected_revisions(&store, now()).await;
    cycle(&store, now()).await;
    cycle_racing_saves(&store, now()).await;
}

fn fresh_key() -> SessionKey {
    match SessionId::generate() {
        Ok(id) => id.key(),
        Err(err) => panic!("conformance: no random id: {err}"),
    }
}

fn deadline(now: std::time::SystemTime) -> Deadline {
    Deadline {
        created_at: now,
        expires_at: now + Duration::from_secs(3600),
    }
}

fn slot(name: &'static str, fields: &[(&'static str, &'static str)]) -> Slot {
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

fn record(slots: Vec<Slot>) -> Record {
    let mut record = Record::new();
    for slot in slots {
        record.insert(slot);
    }
    record
}

fn field_change(slot: &'static str, fields: Vec<(Cow<'static, str>, Bytes)>) -> Changeset {
    [SlotChange::Fields {
        slot: slot.into(),
        version: 1,
        format: Format::Json,
        fields,
    }]
    .into_iter()
    .collect()
}

async fn must_load<S: SessionStore>(store: &S, key: &SessionKey, what: &str) -> Record {
    match store.load(key).await {
        Ok(Some(stored)) => stored.record,
        Ok(None) => panic!("conformance: {what}: the session is missing"),
        Err(err) => panic!("conformance: {what}: load failed: {err}"),
    }
}

/// Whether nothing loads under `key`.
async fn is_absent<S: SessionStore>(store: &S, key: &SessionKey) -> bool {
    match store.load(key).await {
        Ok(stored) => stored.is_none(),
        Err(err) => panic!("conformance: load failed: {err}"),
    }
}

/// Deletes `key`, which must work.
async fn must_delete<S: SessionStore>(store: &S, key: &SessionKey) {
    if let Err(err) = store.delete(key).await {
        panic!("conformance: delete failed: {err}");
    }
}

fn field<'a>(record: &'a Record, slot: &str, field: &str) -> Option<&'a [u8]> {
    record.slot(slot)?.field(field).map(|b| &b[..])
}

/// `create` never overwrites: the second create under one key fails with `Collision` and the
/// first record stays.
pub async fn collision<S: SessionStore>(store: &S, now: std::time::SystemTime) {
    let key = fresh_key();
    let first = record(vec![slot("cart", &[("n", "1")])]);
    store
        .create(&key, &first, deadline(now))
        .await
        .expect("conformance: first create failed");
    let second = record(vec![slot("cart", &[("n", "2")])]);
    match store.create(&key, &second, deadline(now)).await {
        Err(StoreError::Collision) => {}
        other => panic!(
            "conformance: collision: a second create under one key returned {other:?}, not Err(Collision)"
        ),
    }
    let stored = must_load(store, &key, "collision").await;
    assert_eq!(
        field(&stored, "cart", "n"),
        Some(&b"1"[..]),
        "conformance: collision: create overwrote a session"
    );
    must_delete(store, &key).await;
}

/// `save` only updates: saving to an absent session writes nothing and says `Missing`.
pub async fn update_only<S: SessionStore>(store: &S, now: std::time::SystemTime) {
    let key = fresh_key();
    let changes: Changeset = [SlotChange::Put(slot("cart", &[("n", "1")]))]
        .into_iter()
        .collect();
    let outcome = store
        .save(&key, &changes, deadline(now))
        .await
        .expect("conformance: save failed");
    assert_eq!(
        outcome,
        SaveOutcome::Missing,
        "conformance: update-only: a save to an absent session did not say Missing"
    );
    assert!(
        is_absent(store, &key).await,
        "conformance: update-only: a save re-created an absent session"
    );

    // A destroyed session stays destroyed.
    store
        .create(
            &key,
            &record(vec![slot("cart", &[("n", "1")])]),
            deadline(now),
        )
        .await
        .expect("conformance: create failed");
    must_delete(store, &key).await;
    let changes = field_change("cart", vec![("n".into(), Bytes::from_static(b"2"))]);
    let outcome = store
        .save(&key, &changes, deadline(now))
        .await
        .expect("conformance: save failed");
    assert_eq!(
        outcome,
        SaveOutcome::Missing,
        "conformance: update-only: a save after delete did not say Missing"
    );
    assert!(
        is_absent(store, &key).await,
        "conformance: update-only: a save after delete brought the session back"
    );
}

/// A save writes only what changed: other fields, other slots stay; `Put` replaces a slot
/// whole; `Remove` removes one; the deadline moves.
pub async fn delta_merge<S: SessionStore>(store: &S, now: std::time::SystemTime) {
    let key = fresh_key();
    let initial = record(vec![
        slot("cart", &[("a", "1"), ("b", "2")]),
        slot("prefs", &[("dark", "true")]),
        slot("gone", &[("x", "0")]),
    ]);
    store
        .create(&key, &initial, deadline(now))
        .await
        .expect("conformance: create failed");

    let mut changes = field_change(
        "cart",
        vec![
            ("b".into(), Bytes::from_static(b"20")),
            ("c".into(), Bytes::from_static(b"30")),
        ],
    );
    changes.push(SlotChange::Put(slot("new", &[("y", "\"hi\"")])));
    changes.push(SlotChange::Remove {
        slot: "gone".into(),
    });
    let later = Deadline {
        created_at: now,
        expires_at: now + Duration::from_secs(7200),
    };
    let outcome = store
        .save(&key, &changes, later)
        .await
        .expect("conformance: save failed");
    assert_eq!(
        outcome,
        SaveOutcome::Saved,
        "conformance: delta merge: save to an existing session did not say Saved"
    );

    let stored = store
        .load(&key)
        .await
        .expect("conformance: load failed")
        .expect("conformance: delta merge: session missing");
    let r = &stored.record;
    assert_eq!(
        field(r, "cart", "a"),
        Some(&b"1"[..]),
        "conformance: delta merge: an unchanged field was lost"
    );
    assert_eq!(
        field(r, "cart", "b"),
        Some(&b"20"[..]),
        "conformance: delta merge: a changed field was not written"
    );
    assert_eq!(
        field(r, "cart", "c"),
        Some(&b"30"[..]),
        "conformance: delta merge: a new field was not written"
    );
    assert_eq!(
        field(r, "prefs", "dark"),
        Some(&b"true"[..]),
        "conformance: delta merge: an unchanged slot was lost"
    );
    assert_eq!(
        field(r, "new", "y"),
        Some(&b"\"hi\""[..]),
        "conformance: delta merge: a put slot was not written"
    );
    assert!(
        r.slot("gone").is_none(),
        "conformance: delta merge: a removed slot is still there"
    );
    let cart = r.slot("cart").expect("cart slot");
    assert_eq!(
        (cart.type_tag(), cart.version(), cart.format()),
        ("cart", 1, Some(Format::Json)),
        "conformance: delta merge: slot header changed"
    );
    let drift = stored
        .deadline
        .expires_at
        .duration_since(later.expires_at)
        .unwrap_or_else(|e| e.duration());
    assert!(
        drift <= Duration::from_secs(1),
        "conformance: delta merge: the deadline did not move to the saved one"
    );

    // An empty changeset only moves the deadline.
    let outcome = store
        .save(&key, &Changeset::new(), deadline(now))
        .await
        .expect("conformance: save failed");
    assert_eq!(outcome, SaveOutcome::Saved);
    assert_eq!(
        &must_load(store, &key, "delta merge").await,
        r,
        "conformance: delta merge: an empty save changed the record"
    );
    must_delete(store, &key).await;
}

/// An expired session is absent: `load` says `None`, `save` says `Missing`, and `create`
/// may reuse the key.
pub async fn expiry<S: SessionStore>(store: &S, now: std::time::SystemTime) {
    let key = fresh_key();
    let past = Deadline {
        created_at: now - Duration::from_secs(7200),
        expires_at: now - Duration::from_secs(10),
    };
    let r = record(vec![slot("cart", &[("n", "1")])]);
    store
        .create(&key, &r, past)
        .await
        .expect("conformance: create failed");
    assert!(
        is_absent(store, &key).await,
        "conformance: expiry: an expired session loaded"
    );
    let changes = field_change("cart", vec![("n".into(), Bytes::from_static(b"2"))]);
    let outcome = store
        .save(&key, &changes, deadline(now))
        .await
        .expect("conformance: save failed");
    assert_eq!(
        outcome,
        SaveOutcome::Missing,
        "conformance: expiry: a save revived an expired session"
    );
    store
        .create(&key, &r, deadline(now))
        .await
        .expect("conformance: expiry: create over an expired session failed");

    // A save with a deadline in the past ends the session.
    let outcome = store
        .save(&key, &Changeset::new(), past)
        .await
        .expect("conformance: save failed");
    assert_eq!(outcome, SaveOutcome::Saved);
    assert!(
        is_absent(store, &key).await,
        "conformance: expiry: a session saved with a past deadline still loads"
    );
    must_delete(store, &key).await;
}

/// `delete` removes the session, and deleting an absent one is fine.
pub async fn delete<S: SessionStore>(store: &S, now: std::time::SystemTime) {
    let key = fresh_key();
    store
        .create(
            &key,
            &record(vec![slot("cart", &[("n", "1")])]),
            deadline(now),
        )
        .await
        .expect("conformance: create failed");
    must_delete(store, &key).await;
    assert!(
        is_absent(store, &key).await,
        "conformance: delete: the session still loads"
    );
    store
        .delete(&key)
        .await
        .expect("conformance: delete: deleting an absent session failed");
}

/// A field update encoded for another slot version is refused and writes nothing.
pub async fn field_update_conflict<S: SessionStore>(store: &S, now: std::time::SystemTime) {
    let key = fresh_key();
    store
        .create(
            &key,
            &record(vec![slot("cart", &[("a", "1")])]),
            deadline(now),
        )
        .await
        .expect("conformance: create failed");
    let changes: Changeset = [SlotChange::Fields {
        slot: "cart".into(),
        version: 2,
        format: Format::Json,
        fields: vec![("a".into(), Bytes::from_static(b"2"))],
    }]
    .into_iter()
    .collect();
    let result = store.save(&key, &changes, deadline(now)).await;
    assert!(
        matches!(result, Err(StoreError::Apply(_))),
        "conformance: a field update for another slot version returned {result:?}, not Err(Apply)"
    );
    let stored = must_load(store, &key, "field update conflict").await;
    assert_eq!(
        field(&stored, "cart", "a"),
        Some(&b"1"[..]),
        "conformance: a refused field update was written"
    );
    must_delete(store, &key).await;
}

/// [`WRITERS`] concurrent writers, each saving its own field of one session
/// [`WRITES_EACH`] times: every writer's last write is in the final record.
pub async fn concurrent_distinct_fields<S: SessionStore + Clone>(
    store: &S,
    now: std::time::SystemTime,
) {
    let key = fresh_key();
    let fields: Vec<(&'static str, &'static str)> = vec![];
    store
        .create(&key, &record(vec![slot("cart", &fields)]), deadline(now))
        .await
        .expect("conformance: create failed");
    let mut tasks = Vec::with_capacity(WRITERS);
    for writer in 0..WRITERS {
        let store = store.clone();
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..WRITES_EACH {
                let changes = field_change(
                    "cart",
                    vec![(format!("w{writer}").into(), Bytes::from(round.to_string()))],
                );
                let outcome = store.save(&key, &changes, deadline(now)).await;
                assert!(
                    matches!(outcome, Ok(SaveOutcome::Saved)),
                    "conformance: concurrent writer {writer} round {round}: {outcome:?}"
                );
            }
        }));
    }
    for task in tasks {
        if let Err(err) = task.await {
            std::panic::resume_unwind(err.into_panic());
        }
    }
    let stored = must_load(store, &key, "concurrent distinct fields").await;
    let last = (WRITES_EACH - 1).to_string();
    let survived = (0..WRITERS)
        .filter(|writer| field(&stored, "cart", &format!("w{writer}")) == Some(last.as_bytes()))
        .count();
    assert_eq!(
        survived, WRITERS,
        "conformance: concurrent distinct fields: only {survived} of {WRITERS} writers' last writes survived"
    );
    must_delete(store, &key).await;
}
