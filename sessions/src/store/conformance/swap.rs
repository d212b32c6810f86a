//! What a store itself does: keep entries exactly, and compare-and-swap them atomically.

use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::{deadline, fresh_key, live, must_live, must_load, must_swap, record, slot};
use crate::codec::Format;
use crate::expiry::Deadline;
use crate::record::{Record, Slot};
use crate::store::{Entry, Owner, SessionStore, Stored};

/// An entry loads back exactly as it was written: version, every slot (order, type tag,
/// version, format, revision) and field (order, bytes, odd names, empty and large values),
/// deadline to the millisecond, owner, last-seen time and agent.
pub async fn round_trip<S: SessionStore>(store: &S, now: SystemTime) {
    let key = fresh_key();
    let mut record = Record::new();
    record.insert(
        Slot::new(
            "cart",
            3,
            Format::Json,
            vec![
                ("items".into(), Bytes::from_static(br#"["a","b"]"#)),
                ("coupon".into(), Bytes::from_static(b"null")),
                ("{x}:y".into(), Bytes::from_static(b"\"\xc3\xa9\"")),
            ],
        )
        .with_revision(7),
    );
    record.insert(
        Slot::from_parts(
            "bin:slot".into(),
            "bin:slot".into(),
            1,
            2,
            vec![
                ("raw".into(), Bytes::from_static(&[0, 255, 10, 13, 0])),
                ("empty".into(), Bytes::new()),
                ("big".into(), Bytes::from(vec![b'x'; 100_000])),
            ],
        )
        .with_revision(1),
    );
    record.insert(Slot::new("empty-slot", 1, Format::Json, vec![]).with_revision(2));
    let whole = |ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
    let millis = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    };
    let mut session = Stored::new(
        record,
        Deadline {
            created_at: whole(millis(now) - 5_000),
            expires_at: whole(millis(now) + 3_600_000),
        },
    );
    let mut owner = Owner::new("user:42 ✓", whole(millis(now) - 2_000));
    owner.agent = Some("Mozilla/5.0 (X11)".into());
    session.owner = Some(owner.into());
    session.last_seen = whole(millis(now) - 1_000);
    let entry = Entry::Live {
        version: 41,
        session,
    };
    must_swap(store, &key, None, Some(entry.clone()), "create").await;
    let loaded = must_load(store, &key, "round trip").await;
    assert_eq!(
        loaded.as_ref(),
        Some(&entry),
        "conformance: an entry does not load back as it was written"
    );
    let Some(Entry::Live { session, .. }) = loaded else {
        unreachable!()
    };
    let names: Vec<&str> = session.record.slots().map(Slot::name).collect();
    assert_eq!(
        names,
        ["cart", "bin:slot", "empty-slot"],
        "conformance: slot order"
    );
    let revisions: Vec<u64> = session.record.slots().map(Slot::revision).collect();
    assert_eq!(revisions, [7, 1, 2], "conformance: slot revisions");
    let fields: Vec<&str> = session
        .record
        .slot("cart")
        .map(|slot| slot.fields().map(|(name, _)| name).collect())
        .unwrap_or_default();
    assert_eq!(
        fields,
        ["items", "coupon", "{x}:y"],
        "conformance: field order"
    );
}

/// A swap over "nothing live" (`current: None`) creates, and never overwrites a live entry.
pub async fn create_never_overwrites<S: SessionStore>(store: &S, now: SystemTime) {
    let key = fresh_key();
    let first = live(1, record(vec![slot("cart", &[("n", "1")])]), now);
    must_swap(store, &key, None, Some(first.clone()), "create").await;
    let second = live(1, record(vec![slot("cart", &[("n", "2")])]), now);
    match store.swap(&key, None, Some(second)).await {
        Ok(false) => {}
        Ok(true) => panic!("conformance: a create overwrote a live session"),
        Err(err) => panic!("conformance: a create over a live session failed: {err}"),
    }
    assert_eq!(
        must_load(store, &key, "after a refused create").await,
        Some(first),
        "conformance: a refused create changed the stored session"
    );
}

/// A swap writes only over the version it was given: another version, or an absent key,
/// writes nothing; the right version replaces or deletes.
pub async fn swaps_only_over_the_version_given<S: SessionStore>(store: &S, now: SystemTime) {
    let key = fresh_key();
    let absent = fresh_key();
    let one = live(1, record(vec![slot("cart", &[("n", "1")])]), now);
    let two = live(2, record(vec![slot("cart", &[("n", "2")])]), now);
    let three = live(3, record(vec![slot("cart", &[("n", "3")])]), now);
    for (current, what) in [(Some(1), "an update"), (Some(0), "version 0")] {
        match store.swap(&absent, current, Some(two.clone())).await {
            Ok(false) => {}
            Ok(true) => panic!("conformance: {what} of an absent key wrote"),
            Err(err) => panic!("conformance: {what} of an absent key failed: {err}"),
        }
    }
    assert!(
        must_load(store, &absent, "absent key").await.is_none(),
        "conformance: an update created a session"
    );
    must_swap(store, &key, None, Some(one.clone()), "create").await;
    for wrong in [Some(2), Some(0), Some(u64::MAX)] {
        match store.swap(&key, wrong, Some(three.clone())).await {
            Ok(false) => {}
            Ok(true) => panic!("conformance: a swap over version {wrong:?} replaced version 1"),
            Err(err) => panic!("conformance: swap failed: {err}"),
        }
        match store.swap(&key, wrong, None).await {
            Ok(false) => {}
            Ok(true) => panic!("conformance: a delete over version {wrong:?} deleted version 1"),
            Err(err) => panic!("conformance: delete failed: {err}"),
        }
    }
    assert_eq!(
        must_load(store, &key, "after refused swaps").await,
        Some(one)
    );
    must_swap(store, &key, Some(1), Some(two.clone()), "update").await;
    assert_eq!(must_load(store, &key, "after an update").await, Some(two));
    match store.swap(&key, Some(1), Some(three.clone())).await {
        Ok(false) => {}
        Ok(true) => panic!("conformance: a swap over a replaced version wrote"),
        Err(err) => panic!("conformance: swap failed: {err}"),
    }
    must_swap(store, &key, Some(2), None, "delete").await;
    assert!(
        must_load(store, &key, "after a delete").await.is_none(),
        "conformance: a deleted session still loads"
    );
    must_swap(store, &key, None, Some(three), "create after a delete").await;
}

/// An entry past its end is absent: it does not load, no swap writes over its version, and a
/// create may reuse its key.
pub async fn ended_entries_are_absent<S: SessionStore>(store: &S, now: SystemTime) {
    let key = fresh_key();
    let ended = Entry::Live {
        version: 5,
        session: Stored::new(
            record(vec![slot("cart", &[("n", "1")])]),
            Deadline {
                created_at: now - Duration::from_secs(60),
                expires_at: now - Duration::from_secs(1),
            },
        ),
    };
    // Writing an ended entry is allowed (a clock may move); it is simply absent.
    match store.swap(&key, None, Some(ended)).await {
        Ok(_) => {}
        Err(err) => panic!("conformance: writing an ended entry failed: {err}"),
    }
    assert!(
        must_load(store, &key, "ended").await.is_none(),
        "conformance: an ended session loads"
    );
    match store
        .swap(&key, Some(5), Some(live(6, Record::new(), now)))
        .await
    {
        Ok(false) => {}
        Ok(true) => panic!("conformance: a save brought an ended session back"),
        Err(err) => panic!("conformance: swap failed: {err}"),
    }
    let fresh = live(1, record(vec![slot("cart", &[("n", "2")])]), now);
    must_swap(
        store,
        &key,
        None,
        Some(fresh.clone()),
        "create over an ended session",
    )
    .await;
    assert_eq!(must_load(store, &key, "reused key").await, Some(fresh));
}

/// A forwarding mark loads back as written (target, end, version), swaps like any entry, and
/// ends at its end.
pub async fn forwarding_marks<S: SessionStore>(store: &S, now: SystemTime) {
    let key = fresh_key();
    let whole = |t: SystemTime| {
        let ms = t
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
    };
    let mark = Entry::Moved {
        version: 9,
        to: fresh_key(),
        until: whole(now + Duration::from_secs(300)),
    };
    must_swap(store, &key, None, Some(mark.clone()), "write a mark").await;
    assert_eq!(must_load(store, &key, "mark").await, Some(mark));
    must_swap(store, &key, Some(9), None, "delete a mark").await;
    let ended = Entry::Moved {
        version: 1,
        to: fresh_key(),
        until: now - Duration::from_secs(1),
    };
    let other = fresh_key();
    let _ = store.swap(&other, None, Some(ended)).await;
    assert!(
        must_load(store, &other, "ended mark").await.is_none(),
        "conformance: an ended mark loads"
    );
    let _ = deadline(now);
}

/// Of many concurrent swaps over one version, exactly one writes; of many concurrent creates
/// of one key, exactly one writes.
pub async fn one_swap_wins<S: SessionStore + Clone>(store: &S, now: SystemTime) {
    let key = fresh_key();
    must_swap(
        store,
        &key,
        None,
        Some(live(1, Record::new(), now)),
        "create",
    )
    .await;
    let tasks: Vec<_> = (0..super::WRITERS)
        .map(|n| {
            let (store, key) = (store.clone(), key.clone());
            let entry = live(2, record(vec![slot("w", &[("n", "1")])]), now);
            let _ = n;
            tokio::spawn(async move { store.swap(&key, Some(1), Some(entry)).await })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        match task.await {
            Ok(Ok(true)) => won += 1,
            Ok(Ok(false)) => {}
            Ok(Err(err)) => panic!("conformance: concurrent swap failed: {err}"),
            Err(err) => panic!("conformance: a swapping task panicked: {err}"),
        }
    }
    assert_eq!(
        won, 1,
        "conformance: {won} concurrent swaps over one version wrote"
    );
    let (version, _) = must_live(store, &key, "after concurrent swaps").await;
    assert_eq!(version, 2);

    let key = fresh_key();
    let tasks: Vec<_> = (0..super::WRITERS)
        .map(|_| {
            let (store, key) = (store.clone(), key.clone());
            tokio::spawn(async move {
                store
                    .swap(&key, None, Some(live(1, Record::new(), now)))
                    .await
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        match task.await {
            Ok(Ok(true)) => created += 1,
            Ok(Ok(false)) => {}
            Ok(Err(err)) => panic!("conformance: concurrent create failed: {err}"),
            Err(err) => panic!("conformance: a creating task panicked: {err}"),
        }
    }
    assert_eq!(
        created, 1,
        "conformance: {created} concurrent creates of one key wrote"
    );
}

/// The owner index: `owned_by` lists exactly the live sessions bound to an owner, follows
/// rebinding and unbinding, and leaves out deleted, ended and moved ones. A store that keeps no
/// owner index (`Unsupported`) is told so and skips this check.
pub async fn owner_index<S: SessionStore>(store: &S, now: SystemTime) {
    let owner = format!("owner-{}", fresh_key().as_str());
    let other = format!("{owner}-other");
    let bound = |version: u64, owner: Option<&str>| {
        let mut session = Stored::new(record(vec![slot("auth", &[("user", "1")])]), deadline(now));
        session.owner = owner.map(|owner| Owner::new(owner, now).into());
        Entry::Live { version, session }
    };
    let listed = |found: Vec<(crate::id::SessionKey, Entry)>| {
        let mut keys: Vec<String> = found
            .iter()
            .map(|(key, _)| key.as_str().to_owned())
            .collect();
        keys.sort();
        keys
    };
    match store.owned_by(&owner).await {
        Err(crate::errors::StoreError::Unsupported(_)) => {
            println!("conformance: this store keeps no owner index; owner checks skipped");
            return;
        }
        Err(err) => panic!("conformance: owned_by failed: {err}"),
        Ok(found) => assert!(found.is_empty(), "conformance: a new owner has sessions"),
    }
    let keys: Vec<_> = (0..4).map(|_| fresh_key()).collect();
    for key in &keys[..3] {
        must_swap(store, key, None, Some(bound(1, Some(&owner))), "bind").await;
    }
    must_swap(
        store,
        &keys[3],
        None,
        Some(bound(1, Some(&other))),
        "bind another",
    )
    .await;
    let unowned = fresh_key();
    must_swap(store, &unowned, None, Some(bound(1, None)), "no owner").await;
    let mut expected: Vec<String> = keys[..3].iter().map(|k| k.as_str().to_owned()).collect();
    expected.sort();
    let found = store
        .owned_by(&owner)
        .await
        .unwrap_or_else(|err| panic!("conformance: owned_by: {err}"));
    for (key, entry) in &found {
        assert_eq!(
            Some(entry),
            must_load(store, key, "listed").await.as_ref(),
            "conformance: a listed entry is not what is stored"
        );
    }
    assert_eq!(
        listed(found),
        expected,
        "conformance: owned_by lists the wrong sessions"
    );
    // Rebound to another owner, unbound, deleted: no longer listed.
    must_swap(
        store,
        &keys[0],
        Some(1),
        Some(bound(2, Some(&other))),
        "rebind",
    )
    .await;
    must_swap(store, &keys[1], Some(1), Some(bound(2, None)), "unbind").await;
    must_swap(store, &keys[2], Some(1), None, "delete").await;
    let found = store
        .owned_by(&owner)
        .await
        .unwrap_or_else(|err| panic!("conformance: owned_by: {err}"));
    assert!(
        found.is_empty(),
        "conformance: owned_by lists sessions no longer bound: {:?}",
        listed(found)
    );
    let mut others = vec![keys[0].as_str().to_owned(), keys[3].as_str().to_owned()];
    others.sort();
    let found = store
        .owned_by(&other)
        .await
        .unwrap_or_else(|err| panic!("conformance: owned_by: {err}"));
    assert_eq!(
        listed(found),
        others,
        "conformance: a rebound session is not listed for its new owner"
    );
    // Ended, and moved away from: not listed.
    let ended = fresh_key();
    let mut session = Stored::new(
        Record::new(),
        Deadline {
            created_at: now - Duration::from_secs(9),
            expires_at: now - Duration::from_secs(1),
        },
    );
    session.owner = Some(Owner::new(owner.clone(), now).into());
    let _ = store
        .swap(
            &ended,
            None,
            Some(Entry::Live {
                version: 1,
                session,
            }),
        )
        .await;
    must_swap(
        store,
        &keys[3],
        Some(1),
        Some(Entry::Moved {
            version: 2,
            to: fresh_key(),
            until: now + Duration::from_secs(60),
        }),
        "move",
    )
    .await;
    let found = store
        .owned_by(&owner)
        .await
        .unwrap_or_else(|err| panic!("conformance: owned_by: {err}"));
    assert!(found.is_empty(), "conformance: an ended session is listed");
    let found = store
        .owned_by(&other)
        .await
        .unwrap_or_else(|err| panic!("conformance: owned_by: {err}"));
    assert_eq!(
        listed(found),
        vec![keys[0].as_str().to_owned()],
        "conformance: a forwarding mark is listed as a session"
    );
}
