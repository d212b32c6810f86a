//! [`MemoryStore`]: sessions in this process's memory.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use std::time::SystemTime;

use crate::expiry::{Clock, SystemClock};
use crate::id::SessionKey;

mod digest;
mod names;
use crate::errors::RecordError;
use crate::expiry::Deadline;
use crate::record::Record;
use crate::store::entry::{next_version, writable};
use crate::store::upkeep::{ScanCursor, ScanPage};
use crate::store::{Edit, Entry, OwnedEntries, Owner, SessionStore, StoreError, Stored};
use digest::{BuildDigestHasher, Digest};
use names::SharedNames;

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
/// Each session is held as the record a load hands out (shared, so a load copies and decodes
/// nothing), its fields packed: a slot's field bytes in one buffer, its field names in one list
/// that every session of the same type shares. The README has the bytes per session.
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
    /// The field-name lists sessions share.
    names: SharedNames,
    /// Owner → the keys of sessions bound to that owner. Members may be stale (the session
    /// ended, or was bound to someone else since); listing checks each, and a set is pruned as
    /// it grows.
    owners: Mutex<HashMap<String, HashSet<Digest>>>,
}

type Map = HashMap<Digest, Kept, BuildDigestHasher>;

/// One entry as the map keeps it.
struct Kept {
    version: u64,
    body: Body,
}

enum Body {
    Live(Live),
    /// (Rare: boxed, so that live entries take no room for it.)
    Moved(Box<Moved>),
}

/// A live session.
struct Live {
    /// Packed, its field names shared ([`Record::kept`]).
    record: Record,
    deadline: Deadline,
    last_seen: SystemTime,
    owner: Option<Arc<Owner>>,
}

/// A forwarding mark.
struct Moved {
    to: SessionKey,
    until: SystemTime,
}

impl Kept {
    /// `entry` as the map keeps it; `previous` is the entry it replaces, if live (whose field
    /// names it shares).
    fn new(entry: Entry, previous: Option<&Kept>, inner: &Inner) -> Kept {
        match entry {
            Entry::Live { version, session } => {
                let held = match previous.map(|kept| &kept.body) {
                    Some(Body::Live(live)) => names::Held::of(&live.record),
                    _ => names::Held::default(),
                };
                let mut record = session.record;
                record.kept(|names| held.share(names, &inner.names));
                Kept {
                    version,
                    body: Body::Live(Live {
                        record,
                        deadline: session.deadline,
                        last_seen: session.last_seen,
                        owner: session.owner,
                    }),
                }
            }
            Entry::Moved { version, to, until } => Kept {
                version,
                body: Body::Moved(Box::new(Moved { to, until })),
            },
        }
    }

    fn expires_at(&self) -> SystemTime {
        match &self.body {
            Body::Live(live) => live.deadline.expires_at,
            Body::Moved(moved) => moved.until,
        }
    }

    /// The entry as a load returns it: one no write could follow (its version or a slot's
    /// revision at `u64::MAX`, given to `swap` by damaged or forged data) is unreadable, as in
    /// every store, with its version (so a logout still ends it).
    fn entry(&self) -> Result<Entry, RecordError> {
        let unreadable = |err: RecordError| match err {
            err @ RecordError::Unreadable { .. } => err,
            err => RecordError::Unreadable {
                version: self.version,
                source: Box::new(err),
            },
        };
        writable(self.read().map_err(unreadable)?)
    }

    fn read(&self) -> Result<Entry, RecordError> {
        Ok(match &self.body {
            Body::Live(live) => Entry::Live {
                version: self.version,
                session: Stored {
                    record: live.record.clone(),
                    deadline: live.deadline,
                    last_seen: live.last_seen,
                    owner: live.owner.clone(),
                },
            },
            Body::Moved(moved) => Entry::Moved {
                version: self.version,
                to: moved.to.clone(),
                until: moved.until,
            },
        })
    }

    fn is_live(&self, now: SystemTime) -> bool {
        now < self.expires_at()
    }

    fn owner(&self) -> Option<&str> {
        match &self.body {
            Body::Live(live) => live.owner.as_deref().map(|owner| owner.name.as_str()),
            Body::Moved(_) => None,
        }
    }
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

    /// An empty store on the given clock (a [`ManualClock`](crate::clock::ManualClock) in tests).
    ///
    /// ```
    /// use sessions::MemoryStore;
    /// use sessions::clock::ManualClock;
    /// let store = MemoryStore::with_clock(ManualClock::new());
    /// assert_eq!(store.len(), 0);
    /// ```
    pub fn with_clock(clock: impl Clock) -> Self {
        Self {
            inner: Arc::new(Inner {
                shards: (0..SHARDS).map(|_| Mutex::new(Map::default())).collect(),
                writes: AtomicUsize::new(0),
                clock: Arc::new(clock),
                names: SharedNames::default(),
                owners: Mutex::default(),
            }),
        }
    }

    /// The same store as [`MemoryStore::new`]: kept for code written when the default store
    /// held each session's fields one by one and this one packed them. Every `MemoryStore`
    /// packs them now, at no cost to a load (the README has the figures).
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use sessions::{Format, MemoryStore, SessionId, SessionStore};
    /// use sessions::store::{Deadline, Record, Slot};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::compact();
    /// let mut record = Record::new();
    /// record.insert(Slot::new("cart", 1, Format::Json, vec![("n".into(), "3".into())]));
    /// let now = SystemTime::now();
    /// let deadline = Deadline { created_at: now, expires_at: now + Duration::from_secs(60) };
    /// let id = sessions::store::create_session(&store, record.clone(), deadline).await.unwrap();
    /// let stored = store.load(&id.key()).await.unwrap().unwrap().into_session().unwrap();
    /// assert_eq!(stored.record, record);
    /// # });
    /// ```
    pub fn compact() -> Self {
        Self::new()
    }

    /// The same store as [`MemoryStore::with_clock`] (see [`MemoryStore::compact`]).
    ///
    /// ```
    /// use sessions::MemoryStore;
    /// use sessions::clock::ManualClock;
    /// let store = MemoryStore::compact_with_clock(ManualClock::new());
    /// assert!(store.is_empty());
    /// ```
    pub fn compact_with_clock(clock: impl Clock) -> Self {
        Self::with_clock(clock)
    }

    /// How many sessions are held, expired ones not yet swept included.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use sessions::{MemoryStore, SessionId, SessionStore};
    /// use sessions::store::{Deadline, Record};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let now = SystemTime::now();
    /// let deadline = Deadline { created_at: now, expires_at: now + Duration::from_secs(60) };
    /// for _ in 0..3 {
    ///     sessions::store::create_session(&store, Record::new(), deadline).await.unwrap();
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
    /// use sessions::{MemoryStore, SessionId, SessionStore};
    /// use sessions::store::{Deadline, Record};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let now = SystemTime::now();
    /// let deadline = Deadline { created_at: now, expires_at: now + Duration::from_secs(60) };
    /// let id = sessions::store::create_session(&store, Record::new(), deadline).await.unwrap();
    /// assert!(!store.is_empty());
    /// assert!(store.swap(&id.key(), Some(1), None).await.unwrap());
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
        // Sessions that ended (not the forwarding marks logins leave), for the metrics.
        let mut sessions = 0;
        map.retain(|_, kept| {
            let live = kept.is_live(now);
            if !live && matches!(kept.body, Body::Live(_)) {
                sessions += 1;
            }
            live
        });
        let removed = before - map.len();
        drop(map);
        crate::metrics::expired_swept(sessions);
        removed
    }

    /// The live sessions (not the forwarding marks), shard by shard.
    fn count_live(&self) -> u64 {
        let now = self.clock.now();
        (0..SHARDS)
            .map(|shard| {
                let map = self.lock(shard);
                map.values()
                    .filter(|kept| kept.is_live(now) && matches!(kept.body, Body::Live(_)))
                    .count() as u64
            })
            .sum()
    }

    /// A page of the walk ([`SessionStore::scan`]): shard by shard, each in key order; the
    /// cursor is `<shard>:<last key>`.
    fn scan(&self, cursor: Option<&ScanCursor>, limit: usize) -> Result<ScanPage, StoreError> {
        let (mut shard, mut after) = match cursor {
            None => (0, None),
            Some(cursor) => cursor
                .as_str()
                .split_once(':')
                .and_then(|(shard, key)| {
                    let after = match key {
                        "" => None,
                        key => Some(Digest::of(&SessionKey::from_stored(key)?)),
                    };
                    Some((shard.parse::<usize>().ok()?, after))
                })
                .ok_or_else(|| cursor.not_ours("memory"))?,
        };
        let (now, mut page) = (self.clock.now(), ScanPage::default());
        while shard < SHARDS && page.entries.len() < limit {
            let map = self.lock(shard);
            let mut keys: Vec<[u8; 32]> = map
                .iter()
                .filter(|(key, kept)| {
                    kept.is_live(now) && after.is_none_or(|after| key.bytes() > after.bytes())
                })
                .map(|(key, _)| key.bytes())
                .collect();
            let room = limit - page.entries.len();
            let complete = keys.len() <= room;
            if !complete {
                keys.select_nth_unstable(room);
                keys.truncate(room);
            }
            keys.sort_unstable();
            for bytes in &keys {
                let key = SessionKey::from_digest(*bytes);
                match map.get(&Digest::of(&key)).map(Kept::entry) {
                    Some(Ok(entry)) => page.entries.push((key, entry)),
                    _ => page.unreadable += 1,
                }
            }
            match keys.last() {
                Some(last) if !complete => {
                    let last = SessionKey::from_digest(*last);
                    page.next = Some(ScanCursor::new(format!("{shard}:{}", last.as_str())));
                    return Ok(page);
                }
                _ => (shard, after) = (shard + 1, None),
            }
        }
        page.next = (shard < SHARDS).then(|| ScanCursor::new(format!("{shard}:")));
        Ok(page)
    }

    fn owners(&self) -> MutexGuard<'_, HashMap<String, HashSet<Digest>>> {
        self.owners
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds `key` to `owner`'s set, pruning the set when it has grown past twice what was live
    /// at the last pruning.
    fn index(&self, owner: String, key: Digest) {
        let members: Vec<Digest> = {
            let mut owners = self.owners();
            let set = owners.entry(owner.clone()).or_default();
            set.insert(key);
            if set.len() < 16 || !set.len().is_power_of_two() {
                return;
            }
            set.iter().copied().collect()
        };
        let stale: Vec<Digest> = members
            .into_iter()
            .filter(|member| self.owner_of(member).as_deref() != Some(owner.as_str()))
            .collect();
        if let Some(set) = self.owners().get_mut(&owner) {
            for member in &stale {
                set.remove(member);
            }
        }
    }

    /// The owner of the live session under `key`.
    fn owner_of(&self, key: &Digest) -> Option<String> {
        let now = self.clock.now();
        let map = self.lock(Inner::shard_of(key));
        map.get(key)
            .filter(|kept| kept.is_live(now))
            .and_then(Kept::owner)
            .map(str::to_owned)
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
    async fn load(&self, key: &SessionKey) -> Result<Option<Entry>, StoreError> {
        let key = &Digest::of(key);
        let now = self.inner.clock.now();
        let map = self.inner.lock(Inner::shard_of(key));
        match map.get(key) {
            Some(kept) if kept.is_live(now) => Ok(Some(kept.entry()?)),
            _ => Ok(None),
        }
    }

    /// Edits the stored session in place under the shard's lock: a save copies nothing.
    async fn update(
        &self,
        key: &SessionKey,
        version: u64,
        session: Stored,
        edit: &mut Edit<'_>,
    ) -> Result<Option<Stored>, StoreError> {
        // The caller's copy shares the stored record: let it go, so the edit is in place.
        drop(session);
        let next = next_version(version)?;
        let key = &Digest::of(key);
        let now = self.inner.clock.now();
        let (edited, bound) = {
            let mut map = self.inner.lock(Inner::shard_of(key));
            let Some(kept) = map.get_mut(key).filter(|kept| kept.is_live(now)) else {
                return Ok(None);
            };
            if kept.version != version {
                return Ok(None);
            }
            let Body::Live(live) = &mut kept.body else {
                return Ok(None);
            };
            let held = names::Held::of(&live.record);
            let mut session = Stored {
                record: std::mem::take(&mut live.record),
                deadline: live.deadline,
                last_seen: live.last_seen,
                owner: live.owner.take(),
            };
            let was = session.owner_name().map(str::to_owned);
            let result = edit(&mut session);
            // A failed edit changed nothing (every edit checks before it changes): either way
            // the session goes back, edited or not.
            session
                .record
                .kept(|names| held.share(names, &self.inner.names));
            live.record = session.record.clone();
            live.deadline = session.deadline;
            live.owner = session.owner.clone();
            live.last_seen = session.last_seen;
            result?;
            kept.version = next;
            let bound = session
                .owner_name()
                .filter(|owner| Some(*owner) != was.as_deref())
                .map(str::to_owned);
            (session, bound)
        };
        if let Some(owner) = bound {
            self.inner.index(owner, *key);
        }
        self.inner.after_write();
        Ok(Some(edited))
    }

    async fn scan(
        &self,
        cursor: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<ScanPage, StoreError> {
        self.inner.scan(cursor, limit.max(1))
    }

    async fn delete_expired(&self) -> Result<u64, StoreError> {
        Ok(MemoryStore::delete_expired(self) as u64)
    }

    fn name(&self) -> &'static str {
        "memory"
    }

    async fn count_live(&self) -> Result<u64, StoreError> {
        Ok(self.inner.count_live())
    }

    async fn has_ended(&self, key: &SessionKey) -> Result<bool, StoreError> {
        let key = &Digest::of(key);
        let now = self.inner.clock.now();
        let map = self.inner.lock(Inner::shard_of(key));
        Ok(map
            .get(key)
            .is_some_and(|kept| !kept.is_live(now) && matches!(kept.body, Body::Live(_))))
    }

    async fn owned_by(&self, owner: &str) -> Result<Vec<(SessionKey, Entry)>, StoreError> {
        Ok(self.owned_entries(owner).await?.entries)
    }

    async fn owned_entries(&self, owner: &str) -> Result<OwnedEntries, StoreError> {
        let members: Vec<Digest> = match self.inner.owners().get(owner) {
            Some(set) => set.iter().copied().collect(),
            None => return Ok(OwnedEntries::default()),
        };
        let now = self.inner.clock.now();
        let mut found = OwnedEntries::default();
        let mut stale = Vec::new();
        // Members a login moved since the set was read: the marks are followed (below).
        let mut moved = Vec::new();
        for member in members {
            let map = self.inner.lock(Inner::shard_of(&member));
            match map.get(&member) {
                Some(kept) if kept.is_live(now) && kept.owner() == Some(owner) => {
                    let key = SessionKey::from_digest(member.bytes());
                    match kept.entry() {
                        Ok(entry) => found.entries.push((key, entry)),
                        Err(err) => found.unreadable.push((key, err)),
                    }
                }
                Some(kept) if kept.is_live(now) => {
                    if let Ok(Entry::Moved { to, .. }) = kept.entry() {
                        moved.push(to);
                    }
                    stale.push(member);
                }
                _ => stale.push(member),
            }
        }
        for to in moved {
            // (A chain of marks ends in a live session within a few hops.)
            let mut at = to;
            for _ in 0..16 {
                let member = Digest::of(&at);
                let map = self.inner.lock(Inner::shard_of(&member));
                let next = match map.get(&member).filter(|kept| kept.is_live(now)) {
                    Some(kept) => kept.entry(),
                    None => break,
                };
                drop(map);
                match next {
                    Ok(Entry::Moved { to, .. }) => at = to,
                    Ok(entry) if entry.owner() == Some(owner) => {
                        if !found.entries.iter().any(|(key, _)| *key == at) {
                            found.entries.push((at, entry));
                        }
                        break;
                    }
                    _ => break,
                }
            }
        }
        if !stale.is_empty()
            && let Some(set) = self.inner.owners().get_mut(owner)
        {
            for member in &stale {
                set.remove(member);
            }
        }
        Ok(found)
    }

    async fn swap(
        &self,
        key: &SessionKey,
        current: Option<u64>,
        new: Option<Entry>,
    ) -> Result<bool, StoreError> {
        let key = &Digest::of(key);
        let now = self.inner.clock.now();
        let bound = {
            let mut map = self.inner.lock(Inner::shard_of(key));
            let stored = map.get(key).filter(|kept| kept.is_live(now));
            if stored.map(|kept| kept.version) != current {
                return Ok(false);
            }
            match new {
                Some(entry) => {
                    let was = stored.and_then(Kept::owner).map(str::to_owned);
                    let kept = Kept::new(entry, stored, &self.inner);
                    let bound = kept.owner().filter(|owner| Some(*owner) != was.as_deref());
                    let bound = bound.map(str::to_owned);
                    map.insert(*key, kept);
                    bound
                }
                None => {
                    map.remove(key);
                    None
                }
            }
        };
        if let Some(owner) = bound {
            self.inner.index(owner, *key);
        }
        self.inner.after_write();
        Ok(true)
    }
}
