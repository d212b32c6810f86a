//! Where sessions live: the [`SessionStore`] trait and its implementations.
//!
//! A server-side store keeps one [`Entry`] per [`SessionKey`] (a hash of the session id): a
//! live session ([`Stored`]: its [`Record`], deadline and owner) or the mark a `cycle_id()`
//! leaves where the session used to be. A store does two things: [`load`](SessionStore::load)
//! an entry and [`swap`](SessionStore::swap) one for another, only over the version it was given
//! (compare-and-swap). Everything else — saving only the changed fields, never re-creating a
//! destroyed session, never overwriting on create, moving a session to a new id, ending it
//! wherever a move took it — is built once, in this crate, on those two.

pub mod blob;
pub(crate) mod cookie;
mod encrypted;
mod entry;
mod measured;
#[cfg(feature = "memcached")]
mod memcached;
mod memory;
#[cfg(feature = "mysql")]
mod mysql;
pub(crate) mod ops;
#[cfg(feature = "postgres")]
mod postgres;
mod read_mark;
#[cfg(feature = "redis")]
mod redis;
pub(crate) mod seal;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod table_name;
pub mod upkeep;

#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;

pub use cookie::{CookieStore, Key};
pub use encrypted::Encrypted;
pub use entry::{Entry, OwnedEntries, Owner, Stored};
pub(crate) use measured::Measured;
#[allow(unused_imports, reason = "the census sizes records the same way")]
pub(crate) use measured::stored_size;
#[cfg(feature = "memcached")]
pub use memcached::MemcachedStore;
pub use memory::MemoryStore;
#[cfg(feature = "mysql")]
pub use mysql::MySqlStore;
pub use ops::{create_session, migrate_session};
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
pub use read_mark::ReadMark;
#[cfg(feature = "redis")]
pub use redis::RedisStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql")))
)]
pub use table_name::TableNameError;
pub use upkeep::{ScanCursor, ScanPage, Upkeep};

pub use crate::dirty::DirtySet;
pub(crate) use crate::errors::StoreError;
pub use crate::expiry::Deadline;
pub use crate::id::SessionKey;
pub use crate::record::{Changeset, Name, Record, Slot, SlotChange};
pub use crate::registry::Registry;

/// A server-side session store: entries under keys, loaded and compared-and-swapped.
///
/// A store that passes the conformance suite (feature `conformance`,
/// `sessions::store::conformance::run`) keeps these promises, and the crate builds every
/// session operation on them:
///
/// * `load` returns the entry under `key`, or `None` when there is none or it has ended
///   ([`Entry::is_ended`] by the store's clock);
/// * `swap(key, current, new)` writes `new` (or deletes, for `None`) if and only if the entry
///   stored under `key` is still the one of version `current` and has not ended — or, for
///   `current == None`, if no live entry is stored there (an ended one may be overwritten) — and
///   says whether it wrote. It is atomic: of two swaps over the same version, at most one
///   writes.
///
/// A store keeps what it is given: the entry's version, record (slot revisions included),
/// deadline, owner, last-seen time and agent, and a forwarding mark's target and end.
///
/// # What a 2xx means
///
/// On these two promises the layer keeps one rule: **a response below 500 that comes out of a
/// request which changed the session means those changes are stored** (nothing of a 5xx is
/// written but a logout). In every race we know of:
///
/// * two requests change different fields of one session, or both make the first write of one
///   slot, or both migrate or re-encode it: both are stored, each a compare-and-swap over what
///   is stored when it saves; the same field: the later save wins (optimistic concurrency, when
///   on, refuses the second with a 409 instead);
/// * a save racing a logout: saved before the logout (and then ended with the session), or
///   refused with a **409** ("session ended while the request ran"); never a 200 for a write the
///   logout dropped, and never a session brought back;
/// * a save racing a login (`cycle_id()`): saved before the move and moved with the session, or
///   saved after it where the session went (it follows the forwarding mark); a 200 either way,
///   and no `Set-Cookie` (the login's response carries the new id);
/// * a logout racing a login: the session ends wherever the login moved it;
/// * a write that arrives with an id a login just moved away from (a stale cookie, a second
///   tab): a **409** ("session moved"), rather than a new session whose cookie would replace
///   the login's;
/// * two logins at once: the second follows the first (one new id, not two);
/// * a store that is down, or a save that loses to other writers for 3 s: a **503**; nothing is
///   half-written (every write is one swap).
///
/// And what a response says: a `Set-Cookie` (or the id header) only when the id changes, the
/// session ends, or its deadline moves (the refresh); so a slow response never re-sends an id
/// that a login or logout has replaced meanwhile (except at a refresh point, which a
/// concurrent login can still overtake in the browser).
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use sessions::store::{Entry, Stored};
/// use sessions::{MemoryStore, SessionId, SessionStore};
/// use sessions::store::{Deadline, Record};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let key = SessionId::generate().unwrap().key();
/// let now = SystemTime::now();
/// let deadline = Deadline { created_at: now, expires_at: now + Duration::from_secs(60) };
/// let first = Entry::Live { version: 1, session: Stored::new(Record::new(), deadline) };
/// assert!(store.swap(&key, None, Some(first.clone())).await.unwrap());      // created
/// assert!(!store.swap(&key, None, Some(first)).await.unwrap());             // taken
/// assert!(!store.swap(&key, Some(7), None).await.unwrap());                  // not version 7
/// assert!(store.swap(&key, Some(1), None).await.unwrap());                   // deleted
/// assert!(store.load(&key).await.unwrap().is_none());
/// # });
/// ```
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// The entry filed under `key`, unless there is none or it has ended.
    async fn load(&self, key: &SessionKey) -> Result<Option<Entry>, StoreError>;

    /// Writes `new` under `key` (`None`: deletes) if what is stored there is still the entry of
    /// version `current` (`None`: nothing live); returns whether it wrote.
    async fn swap(
        &self,
        key: &SessionKey,
        current: Option<u64>,
        new: Option<Entry>,
    ) -> Result<bool, StoreError>;

    /// Edits the live session under `key` if it is still the entry of version `version` (the
    /// one the caller holds, `session`), and files the result one version on; returns it, or
    /// `None` (writing nothing) when the stored entry is another one now.
    ///
    /// The default edits `session` and [`swap`](SessionStore::swap)s it in: a store needs to
    /// write nothing else. A store that holds its sessions in memory may instead edit its own
    /// copy in place under its lock (`MemoryStore` does, so a save copies nothing); the
    /// conformance suite runs such a store both ways (`conformance::SwapOnly`).
    async fn update(
        &self,
        key: &SessionKey,
        version: u64,
        mut session: Stored,
        edit: &mut Edit<'_>,
    ) -> Result<Option<Stored>, StoreError> {
        edit(&mut session)?;
        let entry = Entry::Live {
            version: entry::next_version(version)?,
            session: session.clone(),
        };
        Ok(self
            .swap(key, Some(version), Some(entry))
            .await?
            .then_some(session))
    }

    /// The entry a request reads under `key`: what [`load`](Self::load) returns, or, from a
    /// store that answers reads from copies which may lag behind its writes (PostgreSQL read
    /// replicas, [`PostgresStore::read_replicas`](crate::PostgresStore::read_replicas)), a copy
    /// that `mark` accepts ([`ReadMark::accepts`]), else the primary's.
    ///
    /// The layer calls it for a request's load of the session it carried, with the mark its
    /// client's last write handed out; everything else (a save that lost its compare-and-swap
    /// and reads again, a logout, a login, `reload()`, the owner operations) calls `load`, which
    /// must see every write. The default is `load`.
    ///
    /// ```
    /// use sessions::store::ReadMark;
    /// use sessions::{MemoryStore, SessionId, SessionStore};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let key = SessionId::generate().unwrap().key();
    /// let store = MemoryStore::new();
    /// assert!(store.load_for_read(&key, ReadMark::AtLeast(3)).await.unwrap().is_none());
    /// # });
    /// ```
    async fn load_for_read(
        &self,
        key: &SessionKey,
        mark: ReadMark,
    ) -> Result<Option<Entry>, StoreError> {
        let _ = mark;
        self.load(key).await
    }

    /// How long a client keeps the [`ReadMark`] of its last write: `Some` for a store whose
    /// [`load_for_read`](Self::load_for_read) may answer from a copy that lags (the layer then
    /// hands each write's mark out in a companion cookie or header, for that long); `None` (the
    /// default) for a store whose every load sees every write.
    ///
    /// ```
    /// use sessions::{MemoryStore, SessionStore};
    /// assert_eq!(MemoryStore::new().read_mark_ttl(), None);
    /// ```
    fn read_mark_ttl(&self) -> Option<std::time::Duration> {
        None
    }

    /// The live sessions whose [`Stored::owner`] is `owner`, with their keys, in no particular
    /// order: an indexed lookup, not a scan. A store that keeps no owner index says
    /// [`StoreError::Unsupported`] (the default).
    async fn owned_by(&self, owner: &str) -> Result<Vec<(SessionKey, Entry)>, StoreError> {
        let _ = owner;
        Err(StoreError::Unsupported("list the sessions of an owner"))
    }

    /// Whether [`owned_by`](Self::owned_by) works here: `true` unless the store says it keeps
    /// no owner index. A layer on a store that says `false` refuses
    /// [`max_sessions_per_owner`](crate::SessionLayer::max_sessions_per_owner) when it is
    /// built (a cap it could not keep), instead of failing the first login. A store of your
    /// own that leaves `owned_by` at its default should say `false` here.
    ///
    /// ```
    /// use sessions::{MemoryStore, SessionStore};
    /// assert!(MemoryStore::new().lists_owners());
    /// ```
    fn lists_owners(&self) -> bool {
        true
    }

    /// What [`owned_by`](Self::owned_by) lists, and beside it the entries filed under `owner`
    /// that the store cannot decode (each with its error, which says the entry's version when
    /// the store knows it: [`RecordError::stored_version`](crate::error::RecordError::stored_version)),
    /// instead of failing the whole listing on one of them. The owner operations call this
    /// one: a listing skips what it cannot read, and a revocation or the cap ends it too.
    ///
    /// The default is `owned_by` (with nothing unreadable): a store whose `owned_by` fails on
    /// an entry it cannot decode then fails the owner operations (closed, never open).
    ///
    /// ```
    /// use sessions::{MemoryStore, SessionStore};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let found = MemoryStore::new().owned_entries("42").await.unwrap();
    /// assert!(found.entries.is_empty() && found.unreadable.is_empty());
    /// # });
    /// ```
    async fn owned_entries(&self, owner: &str) -> Result<OwnedEntries, StoreError> {
        Ok(OwnedEntries::new(self.owned_by(owner).await?))
    }

    /// One page of a walk of the whole store, for upkeep (eager migration, the census,
    /// re-keying): up to about `limit` entries that have not ended, with their keys, starting
    /// where `cursor` (the [`ScanPage::next`] of the page before; `None`: the start) says.
    /// Entries written or ended during a walk may or may not be seen; one may be seen twice
    /// (a store that reorganizes itself meanwhile); every entry stored for the whole walk is
    /// seen. Entries that do not decode are counted in [`ScanPage::unreadable`], not an error.
    ///
    /// Walk with [`upkeep::Walk`] rather than by hand: it pauses, resumes and reports
    /// progress. A store that cannot list its entries says [`StoreError::Unsupported`] (the
    /// default).
    ///
    /// ```
    /// use sessions::{MemoryStore, SessionStore};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let page = MemoryStore::new().scan(None, 100).await.unwrap();
    /// assert!(page.entries.is_empty());
    /// # });
    /// ```
    async fn scan(
        &self,
        cursor: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<ScanPage, StoreError> {
        let _ = (cursor, limit);
        Err(StoreError::Unsupported("walk its stored sessions"))
    }

    /// Removes the entries that have ended now (their space; they are invisible already);
    /// returns how many. What [`upkeep::spawn_sweeper`] runs. A store that expires entries by
    /// itself (Redis, Memcached) returns `Ok(0)`; one that cannot says
    /// [`StoreError::Unsupported`] (the default: a sweeper on it stops).
    ///
    /// ```
    /// use sessions::{MemoryStore, SessionStore};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// assert_eq!(SessionStore::delete_expired(&MemoryStore::new()).await.unwrap(), 0);
    /// # });
    /// ```
    async fn delete_expired(&self) -> Result<u64, StoreError> {
        Err(StoreError::Unsupported("delete ended sessions"))
    }

    /// The store's name, for metric labels and trace spans (`store="sqlite"`): a fixed word
    /// for the kind of store, never its configuration (no address, no table). The default is
    /// `"custom"`.
    ///
    /// ```
    /// use sessions::{MemoryStore, SessionStore};
    /// assert_eq!(MemoryStore::new().name(), "memory");
    /// ```
    fn name(&self) -> &'static str {
        "custom"
    }

    /// How many live sessions the store holds, where it can count them cheaply (an indexed
    /// count, a map's size): what its sweeper sets the `sessions_live` gauge to (feature
    /// `metrics`). A store that cannot says [`StoreError::Unsupported`] (the default).
    ///
    /// ```
    /// use sessions::{MemoryStore, SessionStore};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// assert_eq!(MemoryStore::new().count_live().await.unwrap(), 0);
    /// # });
    /// ```
    async fn count_live(&self) -> Result<u64, StoreError> {
        Err(StoreError::Unsupported("count its live sessions"))
    }

    /// Whether a session that has ended is still filed under `key` (not swept yet). The layer
    /// asks after a [`load`](Self::load) found nothing, and only when a metrics recorder is
    /// installed or an [`on_event`](crate::SessionLayer::on_event) callback listens: it counts
    /// `sessions_expired_total{seen="load"}` and tells `SessionEvent::Expired`. The default
    /// says `false` (the store cannot tell: Redis forgets an entry at its end).
    ///
    /// ```
    /// use sessions::{MemoryStore, SessionId, SessionStore};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let key = SessionId::generate().unwrap().key();
    /// assert!(!MemoryStore::new().has_ended(&key).await.unwrap());
    /// # });
    /// ```
    async fn has_ended(&self, key: &SessionKey) -> Result<bool, StoreError> {
        let _ = key;
        Ok(false)
    }
}

#[async_trait::async_trait]
impl<S: SessionStore + ?Sized> SessionStore for std::sync::Arc<S> {
    async fn load(&self, key: &SessionKey) -> Result<Option<Entry>, StoreError> {
        (**self).load(key).await
    }
    async fn swap(
        &self,
        key: &SessionKey,
        current: Option<u64>,
        new: Option<Entry>,
    ) -> Result<bool, StoreError> {
        (**self).swap(key, current, new).await
    }
    async fn update(
        &self,
        key: &SessionKey,
        version: u64,
        session: Stored,
        edit: &mut Edit<'_>,
    ) -> Result<Option<Stored>, StoreError> {
        (**self).update(key, version, session, edit).await
    }
    async fn load_for_read(
        &self,
        key: &SessionKey,
        mark: ReadMark,
    ) -> Result<Option<Entry>, StoreError> {
        (**self).load_for_read(key, mark).await
    }
    fn read_mark_ttl(&self) -> Option<std::time::Duration> {
        (**self).read_mark_ttl()
    }
    async fn owned_by(&self, owner: &str) -> Result<Vec<(SessionKey, Entry)>, StoreError> {
        (**self).owned_by(owner).await
    }
    async fn owned_entries(&self, owner: &str) -> Result<OwnedEntries, StoreError> {
        (**self).owned_entries(owner).await
    }
    async fn scan(
        &self,
        cursor: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<ScanPage, StoreError> {
        (**self).scan(cursor, limit).await
    }
    async fn delete_expired(&self) -> Result<u64, StoreError> {
        (**self).delete_expired().await
    }
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn lists_owners(&self) -> bool {
        (**self).lists_owners()
    }
    async fn count_live(&self) -> Result<u64, StoreError> {
        (**self).count_live().await
    }
    async fn has_ended(&self, key: &SessionKey) -> Result<bool, StoreError> {
        (**self).has_ended(key).await
    }
}

/// How an operation changes a stored session (see [`SessionStore::update`]): in place, or
/// failing with why the change no longer fits (nothing is written then).
pub type Edit<'a> = dyn FnMut(&mut Stored) -> Result<(), StoreError> + Send + 'a;
