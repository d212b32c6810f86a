//! The session operations of this crate, run on the store: what users rely on.

use std::borrow::Cow;
use std::time::SystemTime;

use bytes::Bytes;

use super::{
    WRITERS, WRITES_EACH, deadline, field, fresh_key, live, must_live, must_load, must_swap,
    record, slot,
};
use crate::codec::Format;
use crate::dirty::DirtySet;
use crate::id::SessionKey;
use crate::record::{Changeset, Slot, SlotChange};
use crate::store::ops::{self, Cycled, Saved};
use crate::store::{Entry, SessionStore, StoreError, Stored};

fn fields(slot: &'static str, fields: &[(&'static str, String)]) -> SlotChange {
    SlotChange::Fields {
        slot: slot.into(),
        version: 1,
        format: Format::Json,
        fields: fields
            .iter()
            .map(|(name, value)| (Cow::Borrowed(*name), Bytes::from(value.clone())))
            .collect(),
    }
}

fn changes(list: Vec<SlotChange>) -> Changeset {
    list.into_iter().collect()
}

/// The save a request makes: `changes` on top of what is stored.
async fn save<S: SessionStore>(
    store: &S,
    key: &SessionKey,
    base: Option<Entry>,
    changes: &Changeset,
) -> Result<Saved, StoreError> {
    ops::save(store, key, base, &mut |session: &mut Stored| {
        session.record.apply(changes)?;
        Ok(())
    })
    .await
}

async fn must_save<S: SessionStore>(
    store: &S,
    key: &SessionKey,
    base: Option<Entry>,
    changes: &Changeset,
    what: &str,
) -> Stored {
    match save(store, key, base, changes).await {
        Ok(Saved::Saved { session, .. }) => session,
        Ok(Saved::Missing) => panic!("conformance: {what}: the session is missing"),
        Err(err) => panic!("conformance: {what}: save failed: {err}"),
    }
}

async fn create<S: SessionStore>(
    store: &S,
    key: &SessionKey,
    slots: Vec<Slot>,
    now: SystemTime,
) -> Entry {
    let entry = live(1, record(slots), now);
    must_swap(store, key, None, Some(entry.clone()), "create").await;
    entry
}

/// Changes made from the same loaded session merge: two saves of different fields (the second
/// made from what the first overwrote) both land; a removed slot goes, a put slot is
/// replaced whole; other slots and fields stay as stored.
pub async fn changes_merge<S: SessionStore>(store: &S, now: SystemTime) {
    let key = fresh_key();
    let loaded = create(
        store,
        &key,
        vec![
            slot("cart", &[("a", "1"), ("b", "2")]),
            slot("prefs", &[("dark", "false")]),
            slot("old", &[("x", "1")]),
        ],
        now,
    )
    .await;
    let first = changes(vec![fields("cart", &[("a", "10".into())])]);
    must_save(store, &key, Some(loaded.clone()), &first, "first save").await;
    // Made from the same loaded session, which is no longer what is stored.
    let second = changes(vec![
        fields("cart", &[("b", "20".into())]),
        SlotChange::Remove { slot: "old".into() },
        SlotChange::Put(slot("new", &[("y", "\"hi\"")])),
    ]);
    must_save(store, &key, Some(loaded), &second, "second save").await;
    let (_, stored) = must_live(store, &key, "after two saves").await;
    let record = &stored.record;
    assert_eq!(
        field(record, "cart", "a"),
        Some(&b"10"[..]),
        "conformance: the first save's field was lost"
    );
    assert_eq!(
        field(record, "cart", "b"),
        Some(&b"20"[..]),
        "conformance: the second save's field was lost"
    );
    assert_eq!(
        field(record, "prefs", "dark"),
        Some(&b"false"[..]),
        "conformance: an untouched slot changed"
    );
    assert!(
        record.slot("old").is_none(),
        "conformance: a removed slot is still stored"
    );
    assert_eq!(field(record, "new", "y"), Some(&b"\"hi\""[..]));
    assert_eq!(
        record.revision_of("cart"),
        3,
        "conformance: each save moves the slot's revision on by one"
    );
    assert_eq!(
        record.revision_of("prefs"),
        1,
        "conformance: an untouched slot's revision moved"
    );
}

/// [`WRITERS`] concurrent writers, each saving its own field of one session [`WRITES_EACH`]
/// times: every writer's last write is in the final record.
pub async fn concurrent_distinct_fields<S: SessionStore + Clone>(store: &S, now: SystemTime) {
    let key = fresh_key();
    create(store, &key, vec![slot("cart", &[])], now).await;
    let tasks: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (store, key) = (store.clone(), key.clone());
            tokio::spawn(async move {
                let name: &'static str = Box::leak(format!("w{writer}").into_boxed_str());
                for n in 0..WRITES_EACH {
                    let change = changes(vec![fields("cart", &[(name, n.to_string())])]);
                    match save(&store, &key, None, &change).await {
                        Ok(Saved::Saved { .. }) => {}
                        Ok(Saved::Missing) => panic!("conformance: concurrent save: missing"),
                        Err(err) => panic!("conformance: concurrent save failed: {err}"),
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        if let Err(err) = task.await {
            panic!("conformance: a writer panicked: {err}");
        }
    }
    let (_, stored) = must_live(store, &key, "after concurrent saves").await;
    let last = (WRITES_EACH - 1).to_string();
    for writer in 0..WRITERS {
        assert_eq!(
            field(&stored.record, "cart", &format!("w{writer}")),
            Some(last.as_bytes()),
            "conformance: writer {writer}'s last save was lost"
        );
    }
    assert_eq!(
        stored.record.revision_of("cart"),
        1 + (WRITERS * WRITES_EACH) as u64,
        "conformance: a save was applied twice or not at all"
    );
}

/// Whole-slot writes made from what a request loaded ([`SlotChange::Rewrite`]: a new slot, a
/// migrated one, one re-encoded in another format) merge as field updates do when another
/// request wrote the slot first: of two first writes of a slot, two migrations, or two
/// re-encodings, each request's changed fields survive. A pure write-back over a slot that
/// changed meanwhile is dropped; a rewrite with changes over a slot another version rewrote is
/// refused and writes nothing.
pub async fn rewrites_merge<S: SessionStore>(store: &S, now: SystemTime) {
    let rewrite = |version: u32, tag: u8, base: u64, values: [&'static str; 2], changed: usize| {
        let slot = Slot::from_parts(
            "cart".into(),
            "cart".into(),
            version,
            tag,
            vec![
                ("items".into(), Bytes::from_static(values[0].as_bytes())),
                ("coupon".into(), Bytes::from_static(values[1].as_bytes())),
            ],
        );
        let mut dirty = DirtySet::default();
        if changed < 2 {
            dirty.insert(changed);
        }
        changes(vec![SlotChange::Rewrite {
            slot,
            base,
            changed: dirty,
        }])
    };
    let json = Format::Json.tag();
    // The new slot: both requests saw no cart. One adds an item, the other sets a coupon.
    let key = fresh_key();
    let loaded = create(
        store,
        &key,
        vec![slot("account", &[("user", "\"ada\"")])],
        now,
    )
    .await;
    let a = rewrite(1, json, 0, [r#"["apple"]"#, "null"], 0);
    let b = rewrite(1, json, 0, ["[]", r#""WELCOME""#], 1);
    must_save(
        store,
        &key,
        Some(loaded.clone()),
        &a,
        "first write of a new slot",
    )
    .await;
    must_save(
        store,
        &key,
        Some(loaded),
        &b,
        "second first write of a new slot",
    )
    .await;
    let (_, stored) = must_live(store, &key, "new slot").await;
    assert_eq!(
        field(&stored.record, "cart", "items"),
        Some(&br#"["apple"]"#[..]),
        "conformance: two first writes of a slot: the first one's field was lost"
    );
    assert_eq!(
        field(&stored.record, "cart", "coupon"),
        Some(&br#""WELCOME""#[..]),
        "conformance: two first writes of a slot: the second one's field was lost"
    );
    // A migration (v1 → v2) and a codec switch (tag 1 → tag 2), each by two requests at once.
    for (version, tag, what) in [(2, json, "a migration"), (1, 2, "a codec switch")] {
        let key = fresh_key();
        let loaded = create(store, &key, vec![slot("cart", &[("skus", "[]")])], now).await;
        let a = rewrite(version, tag, 1, [r#"["apple"]"#, "null"], 0);
        let b = rewrite(version, tag, 1, ["[]", r#""WELCOME""#], 1);
        must_save(store, &key, Some(loaded.clone()), &a, what).await;
        must_save(store, &key, Some(loaded.clone()), &b, what).await;
        let (_, stored) = must_live(store, &key, what).await;
        let slot = stored.record.slot("cart");
        assert_eq!(
            slot.map(|s| (s.version(), s.format_tag())),
            Some((version, tag)),
            "conformance: {what}: the slot was not rewritten"
        );
        assert_eq!(
            field(&stored.record, "cart", "items"),
            Some(&br#"["apple"]"#[..]),
            "conformance: {what} by two requests: the first one's field was lost"
        );
        assert_eq!(
            field(&stored.record, "cart", "coupon"),
            Some(&br#""WELCOME""#[..]),
            "conformance: {what} by two requests: the second one's field was lost"
        );
        assert!(
            field(&stored.record, "cart", "skus").is_none(),
            "conformance: {what}: the old version's field stayed"
        );
        // A write-back of the same migration, made from the old slot, changes nothing more.
        let write_back = rewrite(version, tag, 1, ["[]", "null"], 2);
        must_save(store, &key, Some(loaded), &write_back, "write-back").await;
        let (_, again) = must_live(store, &key, what).await;
        assert_eq!(
            again.record, stored.record,
            "conformance: a write-back over a rewritten slot changed it"
        );
    }
    // A change made on v1 while another request rewrote the slot at v2 is refused.
    let key = fresh_key();
    let loaded = create(store, &key, vec![slot("cart", &[("skus", "[]")])], now).await;
    must_save(
        store,
        &key,
        Some(loaded.clone()),
        &rewrite(2, json, 1, ["[]", "null"], 2),
        "migration",
    )
    .await;
    let stale = changes(vec![fields("cart", &[("skus", r#"["x"]"#.into())])]);
    match save(store, &key, Some(loaded), &stale).await {
        Err(StoreError::Apply(_)) => {}
        other => {
            panic!("conformance: a field update for a slot another version rewrote: {other:?}")
        }
    }
}

/// A save never re-creates a session that was destroyed, or that ended, meanwhile.
pub async fn saves_never_resurrect<S: SessionStore>(store: &S, now: SystemTime) {
    let key = fresh_key();
    let loaded = create(store, &key, vec![slot("cart", &[("n", "1")])], now).await;
    if let Err(err) = ops::destroy(store, &key).await {
        panic!("conformance: destroy failed: {err}");
    }
    let change = changes(vec![fields("cart", &[("n", "2".into())])]);
    for base in [Some(loaded), None] {
        match save(store, &key, base, &change).await {
            Ok(Saved::Missing) => {}
            other => panic!("conformance: a save after a destroy: {other:?}"),
        }
    }
    assert!(
        must_load(store, &key, "after a destroy").await.is_none(),
        "conformance: a save brought a destroyed session back"
    );
    let never = fresh_key();
    match save(store, &never, None, &change).await {
        Ok(Saved::Missing) => {}
        other => panic!("conformance: a save of a session never stored: {other:?}"),
    }
    assert!(
        must_load(store, &never, "never stored").await.is_none(),
        "conformance: a save created a session"
    );
    if let Err(err) = ops::destroy(store, &never).await {
        panic!("conformance: destroying an absent session failed: {err}");
    }
}

/// Optimistic concurrency: a save expecting a revision the slot no longer has fails with
/// `Conflict` and writes nothing at all; one whose expectations hold is saved.
pub async fn expected_revisions<S: SessionStore>(store: &S, now: SystemTime) {
    let key = fresh_key();
    let loaded = create(
        store,
        &key,
        vec![slot("cart", &[("n", "1")]), slot("prefs", &[("x", "1")])],
        now,
    )
    .await;
    let mut first = changes(vec![fields("cart", &[("n", "2".into())])]);
    first.expect("cart", 1);
    must_save(
        store,
        &key,
        Some(loaded.clone()),
        &first,
        "expected revision holds",
    )
    .await;
    let mut stale = changes(vec![
        fields("cart", &[("n", "3".into())]),
        fields("prefs", &[("x", "9".into())]),
    ]);
    stale.expect("cart", 1);
    match save(store, &key, Some(loaded), &stale).await {
        Err(StoreError::Conflict(conflict)) => {
            assert_eq!((conflict.expected, conflict.stored), (1, 2));
        }
        other => panic!("conformance: a save expecting a stale revision: {other:?}"),
    }
    let (_, stored) = must_live(store, &key, "after a conflict").await;
    assert_eq!(field(&stored.record, "cart", "n"), Some(&b"2"[..]));
    assert_eq!(
        field(&stored.record, "prefs", "x"),
        Some(&b"1"[..]),
        "conformance: a refused save wrote another slot"
    );
    let mut absent = changes(vec![SlotChange::Put(slot("extra", &[("y", "1")]))]);
    absent.expect("extra", 0);
    must_save(store, &key, None, &absent, "expecting an absent slot").await;
}

async fn cycle<S: SessionStore>(
    store: &S,
    from: &SessionKey,
    to: &SessionKey,
    base: Option<Entry>,
    changes: &Changeset,
    now: SystemTime,
) -> Result<Cycled, StoreError> {
    ops::cycle(store, from, to, base, now, &mut |session: &mut Stored| {
        session.record.apply(changes)?;
        session.deadline = deadline(now);
        Ok(())
    })
    .await
}

/// `cycle` moves the session with its changes and leaves a mark: the old key loads as the
/// mark, a save through it lands in the moved session, a cycle to a taken key changes nothing,
/// and a cycle of an absent session leaves nothing behind.
pub async fn cycle_moves<S: SessionStore>(store: &S, now: SystemTime) {
    let (from, to) = (fresh_key(), fresh_key());
    let loaded = create(store, &from, vec![slot("cart", &[("n", "1")])], now).await;
    let login = changes(vec![fields("cart", &[("user", "\"ada\"".into())])]);
    match cycle(store, &from, &to, Some(loaded.clone()), &login, now).await {
        Ok(Cycled::Moved { .. }) => {}
        other => panic!("conformance: cycle: {other:?}"),
    }
    let (_, moved) = must_live(store, &to, "the moved session").await;
    assert_eq!(field(&moved.record, "cart", "n"), Some(&b"1"[..]));
    assert_eq!(field(&moved.record, "cart", "user"), Some(&b"\"ada\""[..]));
    match must_load(store, &from, "the old key").await {
        Some(Entry::Moved { to: target, .. }) => {
            assert_eq!(target, to, "conformance: the mark points elsewhere")
        }
        other => panic!("conformance: the old key after a cycle holds {other:?}"),
    }
    // A save that loaded the session before the move follows it.
    let late = changes(vec![fields("cart", &[("n", "2".into())])]);
    match save(store, &from, Some(loaded), &late).await {
        Ok(Saved::Saved { moved_to, .. }) => assert_eq!(
            moved_to.as_deref(),
            Some(&to),
            "conformance: the save did not say where it landed"
        ),
        other => panic!("conformance: a save through the old key: {other:?}"),
    }
    let (_, moved) = must_live(store, &to, "after a late save").await;
    assert_eq!(
        field(&moved.record, "cart", "n"),
        Some(&b"2"[..]),
        "conformance: a save racing a cycle was lost"
    );
    // A taken key: nothing changes.
    let (source, taken) = (fresh_key(), fresh_key());
    create(store, &source, vec![slot("cart", &[("n", "1")])], now).await;
    let other = create(store, &taken, vec![slot("cart", &[("n", "9")])], now).await;
    match cycle(store, &source, &taken, None, &Changeset::new(), now).await {
        Err(StoreError::Collision) => {}
        outcome => panic!("conformance: a cycle to a taken key: {outcome:?}"),
    }
    assert_eq!(
        must_load(store, &taken, "the taken key").await,
        Some(other),
        "conformance: a cycle overwrote another session"
    );
    must_live(store, &source, "the session that could not move").await;
    // An absent session: nothing is created.
    let (gone, target) = (fresh_key(), fresh_key());
    match cycle(store, &gone, &target, None, &Changeset::new(), now).await {
        Ok(Cycled::Missing) => {}
        outcome => panic!("conformance: a cycle of an absent session: {outcome:?}"),
    }
    assert!(
        must_load(store, &target, "target of a missing cycle")
            .await
            .is_none(),
        "conformance: a cycle of nothing created a session"
    );
}

/// Writers keep saving their own fields through the old key while the session is cycled:
/// every save acknowledged is in the moved session, and nothing is left live under the old key.
pub async fn cycle_racing_saves<S: SessionStore + Clone>(store: &S, now: SystemTime) {
    let (from, to) = (fresh_key(), fresh_key());
    let loaded = create(store, &from, vec![slot("cart", &[])], now).await;
    let tasks: Vec<_> = (0..8)
        .map(|writer| {
            let (store, from, base) = (store.clone(), from.clone(), loaded.clone());
            tokio::spawn(async move {
                let name: &'static str = Box::leak(format!("w{writer}").into_boxed_str());
                let mut acknowledged = None;
                for n in 0..WRITES_EACH {
                    let change = changes(vec![fields("cart", &[(name, n.to_string())])]);
                    let base = (n == 0).then(|| base.clone());
                    match save(&store, &from, base, &change).await {
                        Ok(Saved::Saved { .. }) => acknowledged = Some(n),
                        Ok(Saved::Missing) => {
                            panic!("conformance: a save racing a cycle found no session")
                        }
                        Err(err) => panic!("conformance: a save racing a cycle failed: {err}"),
                    }
                    tokio::task::yield_now().await;
                }
                (name, acknowledged)
            })
        })
        .collect();
    tokio::task::yield_now().await;
    match cycle(store, &from, &to, None, &Changeset::new(), now).await {
        Ok(Cycled::Moved { .. }) => {}
        other => panic!("conformance: a cycle racing saves: {other:?}"),
    }
    let mut last = Vec::new();
    for task in tasks {
        match task.await {
            Ok(result) => last.push(result),
            Err(err) => panic!("conformance: a writer panicked: {err}"),
        }
    }
    let (_, moved) = must_live(store, &to, "after a cycle racing saves").await;
    for (name, acknowledged) in last {
        if let Some(n) = acknowledged {
            assert_eq!(
                field(&moved.record, "cart", name),
                Some(n.to_string().as_bytes()),
                "conformance: an acknowledged save racing a cycle was lost ({name})"
            );
        }
    }
    assert!(
        !matches!(
            must_load(store, &from, "old key").await,
            Some(Entry::Live { .. })
        ),
        "conformance: the session is live under its old key too"
    );
}

/// A destroy through the old key of a cycled session ends the session where it went, and the
/// mark too.
pub async fn destroy_follows_a_cycle<S: SessionStore>(store: &S, now: SystemTime) {
    let (from, to) = (fresh_key(), fresh_key());
    create(store, &from, vec![slot("cart", &[("n", "1")])], now).await;
    match cycle(store, &from, &to, None, &Changeset::new(), now).await {
        Ok(Cycled::Moved { .. }) => {}
        other => panic!("conformance: cycle: {other:?}"),
    }
    if let Err(err) = ops::destroy(store, &from).await {
        panic!("conformance: destroy through the old key failed: {err}");
    }
    assert!(
        must_load(store, &to, "moved session").await.is_none(),
        "conformance: a logout with the old id left the moved session alive"
    );
    assert!(
        must_load(store, &from, "old key").await.is_none(),
        "conformance: the mark outlived the destroy"
    );
}

/// A destroy and a cycle of one session at the same time: whichever wins, no live session is
/// left under either key.
pub async fn destroy_racing_cycles<S: SessionStore + Clone>(store: &S, now: SystemTime) {
    for _ in 0..20 {
        let (from, to) = (fresh_key(), fresh_key());
        let loaded = create(store, &from, vec![slot("cart", &[("n", "1")])], now).await;
        let login = {
            let (store, from, to) = (store.clone(), from.clone(), to.clone());
            tokio::spawn(async move {
                cycle(&store, &from, &to, Some(loaded), &Changeset::new(), now).await
            })
        };
        let logout = {
            let (store, from) = (store.clone(), from.clone());
            tokio::spawn(async move { ops::destroy(&store, &from).await })
        };
        match logout.await {
            Ok(Ok(())) => {}
            other => panic!("conformance: a destroy racing a cycle: {other:?}"),
        }
        match login.await {
            Ok(Ok(Cycled::Moved { .. } | Cycled::Missing)) => {}
            other => panic!("conformance: a cycle racing a destroy: {other:?}"),
        }
        for key in [&from, &to] {
            assert!(
                !matches!(
                    must_load(store, key, "after the race").await,
                    Some(Entry::Live { .. })
                ),
                "conformance: a session lives on after a logout that raced a login"
            );
        }
    }
}
