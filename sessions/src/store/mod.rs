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
mod entry;
mod memory;
pub(crate) mod ops;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
mod postgres;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
mod redis;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql_time;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
mod sqlite;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod table_name;

#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;

pub use cookie::{CookieStore, Key};
pub use entry::{Entry, Owner, Stored};
pub use memory::MemoryStore;
pub use ops::{create_session, migrate_session};
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(feature = "redis")]
pub use redis::RedisStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub use table_name::TableNameError;

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
            version: version + 1,
            session: session.clone(),
        };
        Ok(self
            .swap(key, Some(version), Some(entry))
            .await?
            .then_some(session))
    }

    /// The live sessions whose [`Stored::owner`] is `owner`, with their keys, in no particular
    /// order: an indexed lookup, not a scan. A store that keeps no owner index says
    /// [`StoreError::Unsupported`] (the default).
    async fn owned_by(&self, owner: &str) -> Result<Vec<(SessionKey, Entry)>, StoreError> {
        let _ = owner;
        Err(StoreError::Unsupported("list the sessions of an owner"))
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
    async fn owned_by(&self, owner: &str) -> Result<Vec<(SessionKey, Entry)>, StoreError> {
        (**self).owned_by(owner).await
    }
}

/// How an operation changes a stored session (see [`SessionStore::update`]): in place, or
/// failing with why the change no longer fits (nothing is written then).
pub type Edit<'a> = dyn FnMut(&mut Stored) -> Result<(), StoreError> + Send + 'a;
