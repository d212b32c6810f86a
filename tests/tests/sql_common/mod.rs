//! Scenarios both SQL stores run: many clients on one session, eager migrations, expiry and
//! the sweeper, exact round trips, corrupt rows. Each scenario gets a store on tables of its
//! own, so it may count everything in them.
#![allow(dead_code)]

pub(crate) mod revisions;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sessions::{
    ApplyError, Changeset, Clock, Deadline, Format, ManualClock, MigrationReport, Name, Record,
    Registry, SaveOutcome, Session, SessionId, SessionKey, SessionStore, Slot, SlotChange,
    StoreError, Typed,
};

/// What the SQL stores offer beyond `SessionStore`, and a peek at their tables.
pub(crate) trait SqlStore: SessionStore + Clone {
    /// The store, expiring by `clock`.
    fn clocked(self, clock: ManualClock) -> Self;
    /// `delete_expired()`.
    fn expire_now(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// `spawn_sweeper(every)`.
    fn sweeper(&self, every: Duration) -> tokio::task::JoinHandle<()>;
    /// `migrate_all::<T>(format)`.
    fn migrate_every<T: Session>(
        &self,
        format: Format,
    ) -> impl Future<Output = Result<MigrationReport, StoreError>> + Send;
    /// How many rows the session, slots and fields tables hold under `key`.
    fn rows(&self, key: &str) -> impl Future<Output = Rows> + Send;
    /// Sets a stored slot's version column to `version`.
    fn set_version(&self, key: &str, slot: &str, version: i64) -> impl Future<Output = ()> + Send;
    /// `migrate()`: creates or brings up to date the store's tables.
    fn migrate_tables(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Row counts under one key: (sessions, slots, fields).
pub(crate) type Rows = (i64, i64, i64);

/// A table name no other test (or test run) uses.
pub(crate) fn unique_table(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}_{}_{nanos}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

pub(crate) fn fresh_key() -> SessionKey {
    SessionId::generate().expect("random id").key()
}

pub(crate) fn hour_from(now: SystemTime) -> Deadline {
    Deadline {
        created_at: now,
        expires_at: now + Duration::from_secs(3600),
    }
}

pub(crate) fn json_slot(name: &'static str, fields: &[(&'static str, &str)]) -> Slot {
    Slot::new(
        name,
        1,
        Format::Json,
        fields
            .iter()
            .map(|(n, v)| (Name::Borrowed(*n), Bytes::from(v.to_string())))
            .collect(),
    )
}

pub(crate) fn record(slots: impl IntoIterator<Item = Slot>) -> Record {
    let mut record = Record::new();
    for slot in slots {
        record.insert(slot);
    }
    record
}

pub(crate) async fn must_load<S: SessionStore>(store: &S, key: &SessionKey) -> Record {
    store
        .load(key)
        .await
        .expect("load")
        .expect("the session is stored")
        .record
}

/// What a save of a new session holding `value` writes: the whole slot.
pub(crate) fn slot_of<T: Session + Default>(value: T, format: Format) -> Slot {
    let mut typed = Typed::<T>::default();
    typed.replace(value);
    match typed.changes(format).expect("encode") {
        Some(SlotChange::Put(slot)) => slot,
        other => panic!("a new value is written whole, got {other:?}"),
    }
}

// ---- many clients on one session ------------------------------------------------------------

/// How many clients share one session.
pub(crate) const CLIENTS: usize = 64;
/// How many times each client writes its field.
pub(crate) const ROUNDS: usize = 25;

/// 64 clients share one session; each loads it, checks it sees its own last write, and saves
/// a new value of its own field, many times over, all at once. The final record holds every
/// client's last write, the field no client touched, and nothing else.
pub(crate) async fn concurrent_clients<S: SqlStore>(store: S) {
    let key = fresh_key();
    let now = SystemTime::now();
    let initial = record([json_slot("board", &[("untouched", "\"keep\"")])]);
    store
        .create(&key, &initial, hour_from(now))
        .await
        .expect("create");

    let mut clients = tokio::task::JoinSet::new();
    for client in 0..CLIENTS {
        let (store, key) = (store.clone(), key.clone());
        clients.spawn(async move {
            let field = format!("client{client}");
            for round in 0..ROUNDS {
                let seen = must_load(&store, &key).await;
                let mine = seen
                    .slot("board")
                    .and_then(|slot| slot.field(&field))
                    .map(|b| b.to_vec());
                let expected = round.checked_sub(1).map(|r| r.to_string().into_bytes());
                assert_eq!(
                    mine, expected,
                    "client {client} round {round}: does not see its own last write"
                );
                let changes: Changeset = [SlotChange::Fields {
                    slot: "board".into(),
                    version: 1,
                    format: Format::Json,
                    fields: vec![(field.clone().into(), Bytes::from(round.to_string()))],
                }]
                .into_iter()
                .collect();
                let outcome = store
                    .save(&key, &changes, hour_from(now))
                    .await
                    .expect("save");
                assert_eq!(outcome, SaveOutcome::Saved);
            }
        });
    }
    while let Some(done) = clients.join_next().await {
        if let Err(err) = done {
            std::panic::resume_unwind(err.into_panic());
        }
    }

    let stored = must_load(&store, &key).await;
    let board = stored.slot("board").expect("the slot survives");
    let last = (ROUNDS - 1).to_string();
    let survived = (0..CLIENTS)
        .filter(|client| {
            board.field(&format!("client{client}")).map(|b| &b[..]) == Some(last.as_bytes())
        })
        .count();
    assert_eq!(survived, CLIENTS, "every client's last write survives");
    assert_eq!(
        board.field("untouched").map(|b| &b[..]),
        Some(&b"\"keep\""[..])
    );
    assert_eq!(
        board.fields().len(),
        CLIENTS + 1,
        "no field more, none less"
    );
    assert_eq!(
        store.rows(key.as_str()).await,
        (1, 1, CLIENTS as i64 + 1),
        "one row per field, exactly"
    );
    store.delete(&key).await.expect("delete");
    assert_eq!(
        store.rows(key.as_str()).await,
        (0, 0, 0),
        "delete leaves no row behind"
    );
}

// ---- exact round trips, hashed keys, corrupt rows ---------------------------------------------

/// A record comes back exactly as created: slot order, field order, headers, bytes (binary
/// ones too), and the deadline to the millisecond.
pub(crate) async fn exact_round_trip<S: SqlStore>(store: S) {
    let key = fresh_key();
    let now = UNIX_EPOCH + Duration::from_millis(1_900_000_000_123);
    let mut binary = Slot::from_parts("bin".into(), "bin".into(), 7, 2, vec![]);
    binary.set_field("raw".into(), Bytes::from_static(&[0, 159, 146, 150, 255]));
    binary.set_field("empty".into(), Bytes::new());
    let created = record([
        json_slot("zeta", &[("z", "1"), ("a", "2"), ("m", "3")]),
        binary,
        json_slot("alpha", &[]),
        Slot::from_parts("tampered".into(), "other".into(), 1, 1, vec![]),
    ]);
    let deadline = Deadline {
        created_at: now,
        expires_at: now + Duration::from_secs(10 * 365 * 86_400),
    };
    store
        .create(&key, &created, deadline)
        .await
        .expect("create");
    let stored = store.load(&key).await.expect("load").expect("stored");
    assert_eq!(
        stored.record, created,
        "the record comes back as it was written"
    );
    assert_eq!(stored.deadline, deadline);

    // A new field goes last, a changed one keeps its place; a replaced slot keeps its place.
    let mut changes: Changeset = [SlotChange::Fields {
        slot: "zeta".into(),
        version: 1,
        format: Format::Json,
        fields: vec![
            ("new".into(), Bytes::from_static(b"4")),
            ("z".into(), Bytes::from_static(b"10")),
        ],
    }]
    .into_iter()
    .collect();
    changes.push(SlotChange::Put(json_slot("bin", &[("x", "1")])));
    let mut expected = created.clone();
    expected.apply(&changes).expect("applies");
    let outcome = store.save(&key, &changes, deadline).await.expect("save");
    assert_eq!(outcome, SaveOutcome::Saved);
    assert_eq!(must_load(&store, &key).await, expected);

    // The store holds the hash of the id, never the id.
    assert_eq!(store.rows(key.as_str()).await.0, 1);
    let id = SessionId::generate().expect("id");
    store
        .create(&id.key(), &created, deadline)
        .await
        .expect("create");
    assert_eq!(
        store.rows(id.expose()).await,
        (0, 0, 0),
        "a raw id is stored"
    );
    assert_eq!(store.rows(id.key().as_str()).await.0, 1);
}

/// A slot of many fields (more than one statement's worth where a store batches them) is
/// written and changed field by field exactly: order kept, new fields last, a field named twice
/// in one change takes its last bytes.
pub(crate) async fn many_fields<S: SqlStore>(store: S) {
    let key = fresh_key();
    let now = UNIX_EPOCH + Duration::from_millis(1_900_000_000_123);
    let deadline = hour_from(now);
    let fields: Vec<(Name, Bytes)> = (0..150)
        .map(|i| (Name::from(format!("f{i:03}")), Bytes::from(i.to_string())))
        .collect();
    let created = record([Slot::new("wide", 1, Format::Json, fields)]);
    store
        .create(&key, &created, deadline)
        .await
        .expect("create");
    assert_eq!(must_load(&store, &key).await, created);

    // 100 changed fields, then 30 new ones, then `f007` again: 131 names in one change.
    let mut changed: Vec<(Name, Bytes)> = (0..130)
        .map(|i| {
            (
                Name::from(format!("f{:03}", i + 50)),
                Bytes::from(format!("-{i}")),
            )
        })
        .collect();
    changed.insert(3, ("f007".into(), Bytes::from_static(b"1")));
    changed.push(("f007".into(), Bytes::from_static(b"2")));
    let changes: Changeset = [SlotChange::Fields {
        slot: "wide".into(),
        version: 1,
        format: Format::Json,
        fields: changed,
    }]
    .into_iter()
    .collect();
    let mut expected = created.clone();
    expected.apply(&changes).expect("applies");
    let outcome = store.save(&key, &changes, deadline).await.expect("save");
    assert_eq!(outcome, SaveOutcome::Saved);
    let loaded = must_load(&store, &key).await;
    assert_eq!(loaded, expected);
    let wide = loaded.slot("wide").expect("the slot");
    assert_eq!(wide.fields().len(), 180);
    assert_eq!(wide.field("f007").map(|b| &b[..]), Some(&b"2"[..]));
    assert_eq!(wide.fields().last().map(|(name, _)| name), Some("f179"));
}

/// A row that is not a well-formed slot loads as `StoreError::Record`, not as a panic or a
/// backend error, and is left as it is.
pub(crate) async fn corrupt_rows<S: SqlStore>(store: S) {
    let key = fresh_key();
    store
        .create(
            &key,
            &record([json_slot("cart", &[("n", "1")])]),
            hour_from(SystemTime::now()),
        )
        .await
        .expect("create");
    store.set_version(key.as_str(), "cart", 1 << 40).await;
    match store.load(&key).await {
        Err(StoreError::Record(err)) => {
            assert!(err.to_string().contains("cart"), "{err}");
        }
        other => panic!("a corrupt slot loaded as {other:?}"),
    }
    store.set_version(key.as_str(), "cart", -3).await;
    assert!(matches!(store.load(&key).await, Err(StoreError::Record(_))));
    // A field update to it is refused as a broken record, and nothing is written.
    let changes: Changeset = [SlotChange::Fields {
        slot: "cart".into(),
        version: 1,
        format: Format::Json,
        fields: vec![("n".into(), Bytes::from_static(b"2"))],
    }]
    .into_iter()
    .collect();
    let result = store
        .save(&key, &changes, hour_from(SystemTime::now()))
        .await;
    assert!(matches!(result, Err(StoreError::Record(_))), "{result:?}");
    store.set_version(key.as_str(), "cart", 1).await;
    let stored = must_load(&store, &key).await;
    assert_eq!(
        stored
            .slot("cart")
            .and_then(|s| s.field("n"))
            .map(|b| &b[..]),
        Some(&b"1"[..])
    );
}

/// A field update against a slot stored at another version, or a slot that is gone, is
/// refused with the exact `ApplyError`, and nothing of that save is written (not even its
/// other changes or its deadline).
pub(crate) async fn refused_saves_write_nothing<S: SqlStore>(store: S) {
    let key = fresh_key();
    let now = SystemTime::now();
    let created = record([json_slot("cart", &[("a", "1")]), json_slot("prefs", &[])]);
    store
        .create(&key, &created, hour_from(now))
        .await
        .expect("create");
    let later = Deadline {
        created_at: now,
        expires_at: now + Duration::from_secs(99_999),
    };
    let mut changes: Changeset = [SlotChange::Put(json_slot("other", &[("x", "1")]))]
        .into_iter()
        .collect();
    changes.push(SlotChange::Remove {
        slot: "prefs".into(),
    });
    changes.push(SlotChange::Fields {
        slot: "gone".into(),
        version: 1,
        format: Format::Json,
        fields: vec![("a".into(), Bytes::from_static(b"2"))],
    });
    match store.save(&key, &changes, later).await {
        Err(StoreError::Apply(ApplyError::SlotMissing { slot })) => assert_eq!(slot, "gone"),
        other => panic!("expected SlotMissing, got {other:?}"),
    }
    let stored = store.load(&key).await.expect("load").expect("stored");
    assert_eq!(stored.record, created, "a refused save wrote something");
    assert_eq!(
        stored.deadline,
        hour_from(ms(now)),
        "a refused save moved the deadline"
    );

    let changes: Changeset = [SlotChange::Fields {
        slot: "cart".into(),
        version: 2,
        format: Format::Json,
        fields: vec![("a".into(), Bytes::from_static(b"2"))],
    }]
    .into_iter()
    .collect();
    match store.save(&key, &changes, later).await {
        Err(StoreError::Apply(ApplyError::SlotChanged {
            slot,
            expected_version: 2,
            stored_version: 1,
            ..
        })) => assert_eq!(slot, "cart"),
        other => panic!("expected SlotChanged, got {other:?}"),
    }
    assert_eq!(must_load(&store, &key).await, created);
}

/// A time to the millisecond, as the stores keep it.
pub(crate) fn ms(time: SystemTime) -> SystemTime {
    let ms = time
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64;
    UNIX_EPOCH + Duration::from_millis(ms)
}

// ---- eager migrations -------------------------------------------------------------------------

#[derive(Session, Default, Debug, Clone, PartialEq)]
#[session(name = "cart", version = 1)]
pub(crate) struct CartV1 {
    pub(crate) skus: Vec<String>,
}

#[derive(Session, Default, Debug, Clone, PartialEq)]
#[session(name = "cart", version = 2, migrate_from = CartV1)]
pub(crate) struct CartV2 {
    pub(crate) lines: Vec<(String, u32)>,
    pub(crate) coupon: Option<String>,
}

impl From<CartV1> for CartV2 {
    fn from(old: CartV1) -> Self {
        CartV2 {
            lines: old.skus.into_iter().map(|sku| (sku, 1)).collect(),
            coupon: None,
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub(crate) struct Item {
    pub(crate) sku: String,
    pub(crate) qty: u32,
}

#[derive(Session, Default, Debug, Clone, PartialEq)]
#[session(name = "cart", version = 3, migrate_from = CartV2)]
pub(crate) struct Cart {
    pub(crate) items: Vec<Item>,
    pub(crate) coupon: Option<String>,
}

impl From<CartV2> for Cart {
    fn from(old: CartV2) -> Self {
        Cart {
            items: old
                .lines
                .into_iter()
                .map(|(sku, qty)| Item { sku, qty })
                .collect(),
            coupon: old.coupon,
        }
    }
}

fn item(sku: &str, qty: u32) -> Item {
    Item {
        sku: sku.into(),
        qty,
    }
}

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry.register::<Cart>().expect("register");
    registry
}

/// `migrate_all` rewrites v1 and v2 slots as v3 (counted per old version), leaves current ones
/// alone, counts future and undecodable ones as failed without touching them, skips expired
/// sessions, and leaves other slots of the same sessions as they were.
pub(crate) async fn migrate_all_counts<S: SqlStore>(store: S) {
    let clock = ManualClock::new();
    let store = store.clocked(clock.clone());
    let now = clock.now();
    let prefs = json_slot("prefs", &[("dark", "true")]);
    let mut sessions: Vec<(SessionKey, Record, Option<Cart>)> = Vec::new();
    let add =
        |cart: Slot, expected: Option<Cart>| (fresh_key(), record([cart, prefs.clone()]), expected);
    for n in 0..3u32 {
        let v1 = CartV1 {
            skus: vec![format!("a{n}"), format!("b{n}")],
        };
        let expected = Cart {
            items: vec![item(&format!("a{n}"), 1), item(&format!("b{n}"), 1)],
            coupon: None,
        };
        sessions.push(add(slot_of(v1, Format::Json), Some(expected)));
    }
    for n in 0..2u32 {
        let v2 = CartV2 {
            lines: vec![(format!("c{n}"), n + 2)],
            coupon: Some(format!("SAVE{n}")),
        };
        let expected = Cart {
            items: vec![item(&format!("c{n}"), n + 2)],
            coupon: Some(format!("SAVE{n}")),
        };
        sessions.push(add(slot_of(v2, Format::Bincode), Some(expected)));
    }
    for n in 0..4u32 {
        let v3 = Cart {
            items: vec![item(&format!("d{n}"), 9)],
            coupon: None,
        };
        sessions.push(add(slot_of(v3.clone(), Format::Json), Some(v3)));
    }
    let future = Slot::new(
        "cart",
        4,
        Format::Json,
        vec![("things".into(), Bytes::from_static(b"[]"))],
    );
    sessions.push(add(future, None));
    let broken = Slot::new(
        "cart",
        1,
        Format::Json,
        vec![("skus".into(), Bytes::from_static(b"{not json"))],
    );
    sessions.push(add(broken, None));
    for (key, record, _) in &sessions {
        store
            .create(key, record, hour_from(now))
            .await
            .expect("create");
    }
    // An expired v1 cart: skipped, neither counted nor rewritten.
    let expired_key = fresh_key();
    let expired = record([slot_of(
        CartV1 {
            skus: vec!["x".into()],
        },
        Format::Json,
    )]);
    let past = Deadline {
        created_at: now - Duration::from_secs(7200),
        expires_at: now - Duration::from_secs(1),
    };
    store
        .create(&expired_key, &expired, past)
        .await
        .expect("create");

    let report = store
        .migrate_every::<Cart>(Format::Json)
        .await
        .expect("migrate_all");
    assert_eq!(
        report
            .migrated
            .iter()
            .map(|(v, n)| (*v, *n))
            .collect::<Vec<_>>(),
        [(1, 3), (2, 2)],
        "{report:?}"
    );
    assert_eq!(report.current, 4, "{report:?}");
    assert_eq!(report.failed, 2, "{report:?}");

    let registry = registry();
    for (key, created, expected) in &sessions {
        let stored = must_load(&store, key).await;
        assert_eq!(
            stored.slot("prefs"),
            created.slot("prefs"),
            "another slot changed"
        );
        match expected {
            Some(expected) => {
                let slot = stored.slot("cart").expect("cart");
                assert_eq!(slot.version(), 3, "not rewritten as v3");
                let cart = registry
                    .load::<Cart>(&stored)
                    .expect("decodes")
                    .expect("stored");
                assert_eq!(
                    cart.migrated_from(),
                    None,
                    "still needs a migration on load"
                );
                assert_eq!(cart.value(), expected);
            }
            None => assert_eq!(stored, *created, "a failed slot was touched"),
        }
    }
    // The old slots are rewritten in the format asked for.
    let v2_key = &sessions[3].0;
    assert_eq!(
        must_load(&store, v2_key)
            .await
            .slot("cart")
            .and_then(Slot::format),
        Some(Format::Json)
    );
    assert_eq!(
        store.rows(expired_key.as_str()).await,
        (1, 1, 1),
        "the expired session is left to the sweeper"
    );

    let again = store
        .migrate_every::<Cart>(Format::Json)
        .await
        .expect("migrate_all");
    assert!(again.migrated.is_empty(), "{again:?}");
    assert_eq!((again.current, again.failed), (9, 2), "{again:?}");
}

/// `migrate_all` and requests saving field updates to the same v1 slots at the same time:
/// every update either lands before the rewrite (and is in the v3 data) or is refused as
/// `SlotChanged` after it. No update is lost silently, nothing is clobbered.
pub(crate) async fn migrate_all_races_saves<S: SqlStore + 'static>(store: S) {
    const SESSIONS: usize = 40;
    let now = SystemTime::now();
    let mut keys = Vec::new();
    for n in 0..SESSIONS {
        let key = fresh_key();
        let cart = slot_of(
            CartV1 {
                skus: vec![format!("old{n}")],
            },
            Format::Json,
        );
        store
            .create(&key, &record([cart]), hour_from(now))
            .await
            .expect("create");
        keys.push(key);
    }
    let migration = {
        let store = store.clone();
        tokio::spawn(async move { store.migrate_every::<Cart>(Format::Json).await })
    };
    let mut saves = tokio::task::JoinSet::new();
    for (n, key) in keys.iter().enumerate() {
        let (store, key) = (store.clone(), key.clone());
        saves.spawn(async move {
            // Spread the saves over the migration's run, so some land before it and some after.
            tokio::time::sleep(Duration::from_micros(250 * n as u64)).await;
            let skus = Format::Json
                .encode(&vec![format!("new{n}")])
                .expect("encode");
            let changes: Changeset = [SlotChange::Fields {
                slot: "cart".into(),
                version: 1,
                format: Format::Json,
                fields: vec![("skus".into(), skus)],
            }]
            .into_iter()
            .collect();
            (n, store.save(&key, &changes, hour_from(now)).await)
        });
    }
    let report = migration.await.expect("no panic").expect("migrate_all");
    assert_eq!(report.total_migrated(), SESSIONS as u64, "{report:?}");
    let registry = registry();
    let (mut before, mut after) = (0, 0);
    while let Some(done) = saves.join_next().await {
        let (n, outcome) = done.expect("no panic");
        let stored = must_load(&store, &keys[n]).await;
        let cart = registry
            .load::<Cart>(&stored)
            .expect("decodes")
            .expect("stored");
        match outcome {
            Ok(SaveOutcome::Saved) => {
                before += 1;
                assert_eq!(
                    cart.value().items,
                    [item(&format!("new{n}"), 1)],
                    "an update was clobbered"
                );
            }
            Err(StoreError::Apply(ApplyError::SlotChanged {
                stored_version: 3, ..
            })) => {
                after += 1;
                assert_eq!(cart.value().items, [item(&format!("old{n}"), 1)]);
            }
            other => panic!("save {n}: {other:?}"),
        }
    }
    assert_eq!(before + after, SESSIONS);
    println!("saves before the rewrite: {before}, refused after it: {after}");
}

// ---- expiry -----------------------------------------------------------------------------------

/// `delete_expired` removes exactly the expired sessions (all their rows), in batches larger
/// than one page; the sweeper does the same in the background and keeps running.
pub(crate) async fn expiry_and_sweeper<S: SqlStore>(store: S) {
    let clock = ManualClock::new();
    let store = store.clocked(clock.clone());
    let now = clock.now();
    let rec = record([
        json_slot("cart", &[("a", "1"), ("b", "2")]),
        json_slot("p", &[]),
    ]);
    let soon = Deadline {
        created_at: now,
        expires_at: now + Duration::from_secs(10),
    };
    let later = Deadline {
        created_at: now,
        expires_at: now + Duration::from_secs(100),
    };
    let (short, long) = (fresh_key(), fresh_key());
    store.create(&short, &rec, soon).await.expect("create");
    store.create(&long, &rec, later).await.expect("create");
    const MANY: usize = 1100;
    let mut many = Vec::new();
    for _ in 0..MANY {
        let key = fresh_key();
        store
            .create(&key, &record([json_slot("c", &[("n", "1")])]), soon)
            .await
            .expect("create");
        many.push(key);
    }
    assert_eq!(store.expire_now().await.expect("delete_expired"), 0);

    clock.advance(Duration::from_secs(50));
    assert!(
        store.load(&short).await.expect("load").is_none(),
        "expired loads"
    );
    assert_eq!(
        store.expire_now().await.expect("delete_expired"),
        MANY as u64 + 1,
        "every expired session, over several batches"
    );
    assert_eq!(store.rows(short.as_str()).await, (0, 0, 0));
    assert_eq!(store.rows(many[MANY - 1].as_str()).await, (0, 0, 0));
    assert_eq!(
        store.rows(long.as_str()).await,
        (1, 2, 2),
        "a live session was swept"
    );
    assert!(store.load(&long).await.expect("load").is_some());

    clock.advance(Duration::from_secs(100));
    let sweeper = store.sweeper(Duration::from_millis(20));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while store.rows(long.as_str()).await != (0, 0, 0) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sweeper did not remove an expired session"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!sweeper.is_finished(), "the sweeper stopped");
    sweeper.abort();
}

/// Builds the changes a field update of `slot` at v1 JSON makes.
pub(crate) fn field_update(slot: &'static str, field: &str, value: &str) -> Changeset {
    [SlotChange::Fields {
        slot: slot.into(),
        version: 1,
        format: Format::Json,
        fields: vec![(field.to_owned().into(), Bytes::from(value.to_owned()))],
    }]
    .into_iter()
    .collect()
}
