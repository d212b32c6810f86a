//! [`RecordingStore`]: a real store (a [`MemoryStore`] unless told otherwise) behind a wrapper
//! that counts what the layer asks of it (`load`, `swap`, `update`), records every write it
//! makes — the key, the entry stored before, the entry after — and can fail like a store that
//! is down. It can also yield before each call, so that concurrent requests on one thread
//! interleave between their store calls as they would on a busy server.
//!
//! With the write records a test says "no store write", "one write", and which fields of which
//! slots a write changed: the promise "only changed fields are written" reads "a save changes
//! only those fields of what is stored now" ([`Write::fields_changed`]).

use std::collections::BTreeSet;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use sessions::error::StoreError;
use sessions::store::{Edit, Entry, Stored};
use sessions::store::{Record, SessionKey};
use sessions::{MemoryStore, SessionStore};

use super::support::{Rng, key_of};

/// How many times each store method was called.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Calls {
    pub(crate) load: usize,
    pub(crate) swap: usize,
    pub(crate) update: usize,
}

impl Calls {
    /// No call at all.
    pub(crate) const NONE: Calls = Calls {
        load: 0,
        swap: 0,
        update: 0,
    };

    /// The calls made since `earlier`.
    pub(crate) fn since(self, earlier: Calls) -> Calls {
        Calls {
            load: self.load - earlier.load,
            swap: self.swap - earlier.swap,
            update: self.update - earlier.update,
        }
    }

    /// The calls that ask to write (whether or not they wrote).
    pub(crate) fn writes(self) -> usize {
        self.swap + self.update
    }
}

/// One write the store made: under `key`, `before` replaced by `after` (`None`: nothing live).
#[derive(Debug, Clone)]
pub(crate) struct Write {
    pub(crate) key: SessionKey,
    pub(crate) before: Option<Entry>,
    pub(crate) after: Option<Entry>,
}

/// What a write did, by the shape of the entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteKind {
    /// A live session where there was none.
    Create,
    /// A live session replaced by itself, changed.
    Update,
    /// A live session replaced by the forwarding mark of a `cycle_id()`.
    Mark,
    /// An entry removed.
    Delete,
    /// Anything else (a mark replaced).
    Other,
}

impl Write {
    pub(crate) fn kind(&self) -> WriteKind {
        match (&self.before, &self.after) {
            (None | Some(Entry::Moved { .. }), Some(Entry::Live { .. })) => WriteKind::Create,
            (Some(Entry::Live { .. }), Some(Entry::Live { .. })) => WriteKind::Update,
            (Some(Entry::Live { .. }), Some(Entry::Moved { .. })) => WriteKind::Mark,
            (Some(_), None) => WriteKind::Delete,
            _ => WriteKind::Other,
        }
    }

    fn record_before(&self) -> Record {
        live_record(self.before.as_ref())
    }

    fn record_after(&self) -> Record {
        live_record(self.after.as_ref())
    }

    /// Every `slot.field` whose stored bytes differ between before and after (a field of a
    /// slot that appeared or went counts), sorted.
    pub(crate) fn fields_changed(&self) -> Vec<String> {
        let (before, after) = (self.record_before(), self.record_after());
        let mut changed = BTreeSet::new();
        for name in slot_names(&before, &after) {
            let (old, new) = (before.slot(&name), after.slot(&name));
            let fields: BTreeSet<&str> = old
                .into_iter()
                .chain(new)
                .flat_map(|slot| slot.fields().map(|(field, _)| field))
                .collect();
            for field in fields {
                if old.and_then(|slot| slot.field(field)) != new.and_then(|slot| slot.field(field))
                {
                    changed.insert(format!("{name}.{field}"));
                }
            }
        }
        changed.into_iter().collect()
    }

    /// The slots this write wrote: added, removed, or stored at a new revision, sorted.
    pub(crate) fn slots_written(&self) -> Vec<String> {
        let (before, after) = (self.record_before(), self.record_after());
        slot_names(&before, &after)
            .into_iter()
            .filter(|name| {
                let revision = |record: &Record| record.slot(name).map(|slot| slot.revision());
                revision(&before) != revision(&after)
            })
            .collect()
    }

    /// The slots this write removed, sorted.
    pub(crate) fn slots_removed(&self) -> Vec<String> {
        let (before, after) = (self.record_before(), self.record_after());
        slot_names(&before, &after)
            .into_iter()
            .filter(|name| before.slot(name).is_some() && after.slot(name).is_none())
            .collect()
    }

    /// Whether the write moved the session's deadline.
    pub(crate) fn deadline_moved(&self) -> bool {
        let deadline = |entry: &Option<Entry>| {
            entry
                .as_ref()
                .and_then(Entry::session)
                .map(|session| session.deadline)
        };
        deadline(&self.before) != deadline(&self.after)
    }
}

fn live_record(entry: Option<&Entry>) -> Record {
    entry
        .and_then(Entry::session)
        .map(|session| session.record.clone())
        .unwrap_or_default()
}

fn slot_names(before: &Record, after: &Record) -> BTreeSet<String> {
    before
        .slots()
        .chain(after.slots())
        .map(|slot| slot.name().to_owned())
        .collect()
}

#[derive(Default)]
struct Shared {
    load: AtomicUsize,
    swap: AtomicUsize,
    update: AtomicUsize,
    fail_loads: AtomicBool,
    fail_writes: AtomicBool,
    writes: Mutex<Vec<Write>>,
    /// One write at a time through the wrapper, so that `before` and `after` are exactly what
    /// the write replaced and wrote.
    write_lock: tokio::sync::Mutex<()>,
    /// Yield around each call: `Some(None)` once before, `Some(Some(rng))` before and after, as
    /// `rng` says.
    interleave: Mutex<Option<Option<Rng>>>,
}

/// A real store behind a wrapper that counts, records, fails on demand and interleaves (see
/// the module docs). Clones share everything.
#[derive(Clone)]
pub(crate) struct RecordingStore<S = MemoryStore> {
    inner: S,
    shared: Arc<Shared>,
}

impl RecordingStore {
    /// Over a fresh `MemoryStore`.
    pub(crate) fn memory() -> Self {
        Self::new(MemoryStore::new())
    }
}

impl<S: SessionStore + Clone> RecordingStore<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self {
            inner,
            shared: Arc::default(),
        }
    }

    /// The store underneath, to look at what is really stored.
    pub(crate) fn inner(&self) -> &S {
        &self.inner
    }

    /// From now on every call first yields to the other tasks of the runtime once.
    pub(crate) fn interleaving(self) -> Self {
        *lock(&self.shared.interleave) = Some(None);
        self
    }

    /// From now on every call yields before and after it — 0 to 3 times mostly, up to 40 now
    /// and then — as a random source seeded with `seed` says (the same seed, the same yields).
    pub(crate) fn interleaving_seeded(self, seed: u64) -> Self {
        *lock(&self.shared.interleave) = Some(Some(Rng::new(seed)));
        self
    }

    pub(crate) fn calls(&self) -> Calls {
        Calls {
            load: self.shared.load.load(Ordering::SeqCst),
            swap: self.shared.swap.load(Ordering::SeqCst),
            update: self.shared.update.load(Ordering::SeqCst),
        }
    }

    /// Every write so far, in order.
    pub(crate) fn writes(&self) -> Vec<Write> {
        lock(&self.shared.writes).clone()
    }

    /// The writes made after the first `count` (`writes().len()` taken earlier).
    pub(crate) fn writes_since(&self, count: usize) -> Vec<Write> {
        lock(&self.shared.writes)[count..].to_vec()
    }

    /// From now on, loads fail as they do when the store cannot be reached.
    pub(crate) fn fail_loads(&self, fail: bool) {
        self.shared.fail_loads.store(fail, Ordering::SeqCst);
    }

    /// From now on, writes fail as they do when the store cannot be reached.
    pub(crate) fn fail_writes(&self, fail: bool) {
        self.shared.fail_writes.store(fail, Ordering::SeqCst);
    }

    /// The live session stored for the id `id`, if any.
    pub(crate) async fn stored(&self, id: &str) -> Option<Stored> {
        self.entry(id).await.and_then(Entry::into_session)
    }

    /// The entry stored under the key of the id `id`: a live session, a forwarding mark, or
    /// nothing.
    pub(crate) async fn entry(&self, id: &str) -> Option<Entry> {
        self.inner
            .load(&key_of(id))
            .await
            .expect("the store underneath loads")
    }

    /// Yields before a call: once, or as the seeded source says.
    async fn before_call(&self) {
        let yields = match lock(&self.shared.interleave).as_mut() {
            None => 0,
            Some(None) => 1,
            Some(Some(rng)) => slow_sometimes(rng),
        };
        for _ in 0..yields {
            tokio::task::yield_now().await;
        }
    }

    /// Yields after a call, as the seeded source says (the way back of a round trip: what the
    /// caller does next, say answering its client, comes later).
    async fn after_call(&self) {
        let yields = match lock(&self.shared.interleave).as_mut() {
            Some(Some(rng)) => slow_sometimes(rng),
            _ => 0,
        };
        for _ in 0..yields {
            tokio::task::yield_now().await;
        }
    }

    fn down(&self, flag: &AtomicBool) -> Result<(), StoreError> {
        if flag.load(Ordering::SeqCst) {
            return Err(StoreError::backend(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "connection refused (test store is down)",
            )));
        }
        Ok(())
    }

    fn record(&self, key: &SessionKey, before: Option<Entry>, after: Option<Entry>) {
        lock(&self.shared.writes).push(Write {
            key: key.clone(),
            before,
            after,
        });
    }
}

/// How many times to yield: 0 to 3 mostly, and one time in ten up to 40 (a slow round trip,
/// long enough for another request to run all the way meanwhile).
fn slow_sometimes(rng: &mut Rng) -> usize {
    if rng.below(10) == 0 {
        rng.below(41)
    } else {
        rng.below(4)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[async_trait::async_trait]
impl<S: SessionStore + Clone> SessionStore for RecordingStore<S> {
    async fn load(&self, key: &SessionKey) -> Result<Option<Entry>, StoreError> {
        self.before_call().await;
        self.shared.load.fetch_add(1, Ordering::SeqCst);
        self.down(&self.shared.fail_loads)?;
        let loaded = self.inner.load(key).await;
        self.after_call().await;
        loaded
    }

    /// A request's read, counted as a load: the inner store's (a replica's copy, on a
    /// `PostgresStore` with read replicas).
    async fn load_for_read(
        &self,
        key: &SessionKey,
        mark: sessions::store::ReadMark,
    ) -> Result<Option<Entry>, StoreError> {
        self.before_call().await;
        self.shared.load.fetch_add(1, Ordering::SeqCst);
        self.down(&self.shared.fail_loads)?;
        let loaded = self.inner.load_for_read(key, mark).await;
        self.after_call().await;
        loaded
    }

    fn read_mark_ttl(&self) -> Option<std::time::Duration> {
        self.inner.read_mark_ttl()
    }

    async fn swap(
        &self,
        key: &SessionKey,
        current: Option<u64>,
        new: Option<Entry>,
    ) -> Result<bool, StoreError> {
        self.before_call().await;
        self.shared.swap.fetch_add(1, Ordering::SeqCst);
        self.down(&self.shared.fail_writes)?;
        let one_at_a_time = self.shared.write_lock.lock().await;
        let before = self.inner.load(key).await?;
        let wrote = self.inner.swap(key, current, new).await?;
        if wrote {
            let after = self.inner.load(key).await?;
            self.record(key, before, after);
        }
        drop(one_at_a_time);
        self.after_call().await;
        Ok(wrote)
    }

    async fn update(
        &self,
        key: &SessionKey,
        version: u64,
        session: Stored,
        edit: &mut Edit<'_>,
    ) -> Result<Option<Stored>, StoreError> {
        self.before_call().await;
        self.shared.update.fetch_add(1, Ordering::SeqCst);
        self.down(&self.shared.fail_writes)?;
        let one_at_a_time = self.shared.write_lock.lock().await;
        let before = self.inner.load(key).await?;
        let updated = self.inner.update(key, version, session, edit).await?;
        if updated.is_some() {
            let after = self.inner.load(key).await?;
            self.record(key, before, after);
        }
        drop(one_at_a_time);
        self.after_call().await;
        Ok(updated)
    }

    async fn owned_by(&self, owner: &str) -> Result<Vec<(SessionKey, Entry)>, StoreError> {
        self.inner.owned_by(owner).await
    }
}
