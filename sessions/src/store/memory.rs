//! [`MemoryStore`]: sessions in this process's memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::expiry::{Clock, Deadline, SystemClock};
use crate::id::SessionKey;
use crate::record::{Changeset, Record};

mod digest;
mod held;
use crate::store::{SaveOutcome, SessionStore, StoreError, Stored};
use digest::{BuildDigestHasher, Digest};
use held::{Held, Shapes};

/// How many independently locked shards the map is split into.
const SHARDS: usize = 16;
/// Every this many writes, one shard is swept of expired sessions.
const SWEEP_EVERY: usize = 1024;

/// Sessions in this process's memory: for tests, single-instance apps, and benchmarks.
///
/// Concurrent (sharded locks, never held across an await), saves merged per field, expired
/// sessions invisible at once and swept as writes go by (or by [`MemoryStore::delete_expired`]).
/// Sessions are lost when the process ends.
///
/// ```
/// use sessions::{MemoryStore, SessionStore};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let key = sessions::SessionId::generate().unwrap().key();
/// assert!(store.load(&key).await.unwrap().is_none());
/// # });
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    shards: Box<[Mutex<Map>]>,
    writes: AtomicUsize,
    clock: Arc<dyn Clock>,
    /// Entries hold records packed ([`MemoryStore::compact`]).
    packed: bool,
    /// The layouts packed entries share.
    shapes: Shapes,
}

type Map = HashMap<Digest, Entry, BuildDigestHasher>;

struct Entry {
    held: Held,
    deadline: Deadline,
}

impl MemoryStore {
    /// An empty store on the system clock.
    ///
    /// ```
    /// use sessions::MemoryStore;
    /// let store = MemoryStore::new();
    /// assert!(store.is_empty());
    /// assert_eq!(store.len(), 0);
    /// ```
    pub fn new() -> Self {
        Self::with_clock(SystemClock)
    }

    /// An empty store on the given clock (a [`ManualClock`](crate::ManualClock) in tests).
    ///
    /// ```
    /// use sessions::{ManualClock, MemoryStore};
    /// let store = MemoryStore::with_clock(ManualClock::new());
    /// assert_eq!(store.len(), 0);
    /// ```
    pub fn with_clock(clock: impl Clock) -> Self {
        Self {
            inner: Arc::new(Inner {
                shards: (0..SHARDS).map(|_| Mutex::new(Map::default())).collect(),
                writes: AtomicUsize::new(0),
                clock: Arc::new(clock),
                packed: false,
                shapes: Shapes::default(),
            }),
        }
    }

    /// An empty store that holds each session packed rather than as a ready record: its field
    /// bytes in one buffer, beside a layout (slot and field names) that every session of the
    /// same types shares. About half the memory per session (100,000 five-item carts in 57 MB
    /// with JSON, 40 MB with bincode: see the README's figures). A load decodes nothing (the
    /// record's fields are slices of the buffer) but builds the record, and a save repacks the
    /// buffer: about a fifth more CPU than the default store on a request that writes, a tenth
    /// on one that only reads.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use sessions::{Deadline, Format, MemoryStore, Record, SessionId, SessionStore, Slot};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::compact();
    /// let key = SessionId::generate().unwrap().key();
    /// let mut record = Record::new();
    /// record.insert(Slot::new("cart", 1, Format::Json, vec![("n".into(), "3".into())]));
    /// let now = SystemTime::now();
    /// let deadline = Deadline { created_at: now, expires_at: now + Duration::from_secs(60) };
    /// store.create(&key, &record, deadline).await.unwrap();
    /// assert_eq!(store.load(&key).await.unwrap().unwrap().record, record);
    /// # });
    /// ```
    pub fn compact() -> Self {
        Self::compact_with_clock(SystemClock)
    }

    /// A compact store ([`MemoryStore::compact`]) on the given clock.
    ///
    /// ```
    /// use sessions::{ManualClock, MemoryStore};
    /// let store = MemoryStore::compact_with_clock(ManualClock::new());
    /// assert!(store.is_empty());
    /// ```
    pub fn compact_with_clock(clock: impl Clock) -> Self {
        let mut store = Self::with_clock(clock);
        if let Some(inner) = Arc::get_mut(&mut store.inner) {
            inner.packed = true;
        }
        store
    }

    /// How many sessions are held, expired ones not yet swept included.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use sessions::{Deadline, MemoryStore, Record, SessionId, SessionStore};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let now = SystemTime::now();
    /// let deadline = Deadline { created_at: now, expires_at: now + Duration::from_secs(60) };
    /// for _ in 0..3 {
    ///     let key = SessionId::generate().unwrap().key();
    ///     store.create(&key, &Record::new(), deadline).await.unwrap();
    /// }
    /// assert_eq!(store.len(), 3);
    /// # });
    /// ```
    pub fn len(&self) -> usize {
        (0..SHARDS).map(|i| self.inner.lock(i).len()).sum()
    }

    /// Whether no session is held.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use sessions::{Deadline, MemoryStore, Record, SessionId, SessionStore};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let key = SessionId::generate().unwrap().key();
    /// let now = SystemTime::now();
    /// let deadline = Deadline { created_at: now, expires_at: now + Duration::from_secs(60) };
    /// store.create(&key, &Record::new(), deadline).await.unwrap();
    /// assert!(!store.is_empty());
    /// store.delete(&key).await.unwrap();
    /// assert!(store.is_empty());
    /// # });
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every expired session now; returns how many.
    ///
    /// ```
    /// # use sessions::MemoryStore;
    /// assert_eq!(MemoryStore::new().delete_expired(), 0);
    /// ```
    pub fn delete_expired(&self) -> usize {
        (0..SHARDS).map(|i| self.inner.sweep(i)).sum()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("sessions", &self.len())
            .finish()
    }
}

impl Inner {
    fn shard_of(key: &Digest) -> usize {
        key.shard(SHARDS)
    }

    fn lock(&self, shard: usize) -> MutexGuard<'_, Map> {
        // A panic while holding the lock cannot leave an entry half-written (every write is a
        // single insert or an all-checked apply), so a poisoned lock is safe to take over.
        self.shards[shard]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn sweep(&self, shard: usize) -> usize {
        let now = self.clock.now();
        let mut map = self.lock(shard);
        let before = map.len();
        map.retain(|_, entry| !entry.deadline.is_expired(now));
        before - map.len()
    }

    fn after_write(&self) {
        let n = self.writes.fetch_add(1, Ordering::Relaxed);
        if n % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep((n / SWEEP_EVERY) % SHARDS);
        }
    }
}

#[async_trait::async_trait]
impl SessionStore for MemoryStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<Stored>, StoreError> {
        let key = &Digest::of(key);
        let now = self.inner.clock.now();
        let map = self.inner.lock(Inner::shard_of(key));
        match map.get(key) {
            Some(entry) if !entry.deadline.is_expired(now) => Ok(Some(Stored {
                record: entry.held.record()?,
                deadline: entry.deadline,
            })),
            _ => Ok(None),
        }
    }

    async fn create(
        &self,
        key: &SessionKey,
        record: &Record,
        deadline: Deadline,
    ) -> Result<(), StoreError> {
        let key = &Digest::of(key);
        let now = self.inner.clock.now();
        {
            let mut map = self.inner.lock(Inner::shard_of(key));
            match map.get(key) {
                Some(entry) if !entry.deadline.is_expired(now) => {
                    return Err(StoreError::Collision);
                }
                _ => {
                    let held = Held::new(
                        record.stored_at_least_once(),
                        self.inner.packed,
                        &self.inner.shapes,
                    )?;
                    map.insert(*key, Entry { held, deadline });
                }
            }
        }
        self.inner.after_write();
        Ok(())
    }

    async fn save(
        &self,
        key: &SessionKey,
        changes: &Changeset,
        deadline: Deadline,
    ) -> Result<SaveOutcome, StoreError> {
        let key = &Digest::of(key);
        let now = self.inner.clock.now();
        let outcome = {
            let mut map = self.inner.lock(Inner::shard_of(key));
            match map.get_mut(key) {
                Some(entry) if !entry.deadline.is_expired(now) => {
                    entry.held.apply(changes, &self.inner.shapes)?;
                    entry.deadline = deadline;
                    SaveOutcome::Saved
                }
                Some(_) => {
                    map.remove(key);
                    SaveOutcome::Missing
                }
                None => SaveOutcome::Missing,
            }
        };
        self.inner.after_write();
        Ok(outcome)
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), StoreError> {
        let key = &Digest::of(key);
        self.inner.lock(Inner::shard_of(key)).remove(key);
        Ok(())
    }

    async fn cycle(
        &self,
        from: &SessionKey,
        to: &SessionKey,
        changes: &Changeset,
        deadline: Deadline,
    ) -> Result<SaveOutcome, StoreError> {
        let (from, to) = (&Digest::of(from), &Digest::of(to));
        let now = self.inner.clock.now();
        let (a, b) = (Inner::shard_of(from), Inner::shard_of(to));
        // Both shards stay locked for the whole move (in index order: no lock-order deadlock),
        // so no save or load sees the session half moved.
        let (mut first, mut second) = if a == b {
            (self.inner.lock(a), None)
        } else if a < b {
            let first = self.inner.lock(a);
            (first, Some(self.inner.lock(b)))
        } else {
            let second = self.inner.lock(b);
            (self.inner.lock(a), Some(second))
        };
        let source = match first.get(from) {
            Some(entry) if !entry.deadline.is_expired(now) => entry,
            _ => return Ok(SaveOutcome::Missing),
        };
        let mut record = source.held.record()?;
        record.apply(changes)?;
        let held = Held::new(record, self.inner.packed, &self.inner.shapes)?;
        let target = second.as_deref_mut().unwrap_or(&mut *first);
        if target
            .get(to)
            .is_some_and(|entry| !entry.deadline.is_expired(now))
        {
            return Err(StoreError::Collision);
        }
        target.insert(*to, Entry { held, deadline });
        first.remove(from);
        drop((first, second));
        self.inner.after_write();
        Ok(SaveOutcome::Saved)
    }
}
