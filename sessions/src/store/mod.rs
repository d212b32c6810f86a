//! Where sessions live: the [`SessionStore`] trait and its implementations.
//!
//! Server-side stores file a [`Record`] under the [`SessionKey`] (a hash of the session id)
//! with a [`Deadline`]. A save carries only the changed fields and slots ([`Changeset`]), so two
//! concurrent requests that change different fields of one session both survive. A save
//! updates an existing session and never re-creates a destroyed one: a slow request cannot
//! undo a logout. A create never overwrites: an id collision is an error.

mod cookie;
mod memory;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
mod postgres;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
mod redis;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
mod sqlite;

#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::RedisStore;
pub use cookie::{CookieError, CookieStore, Key};
pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::PostgresStore;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub use sql::TableNameError;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::SqliteStore;

use crate::error::{ApplyError, Conflict, RecordError};
use crate::expiry::Deadline;
use crate::id::SessionKey;
use crate::record::{Changeset, Record};

/// A stored session: its record and its deadline.
///
/// ```
/// use std::time::UNIX_EPOCH;
/// use sessions::{Deadline, Record, Stored};
/// let stored = Stored {
///     record: Record::new(),
///     deadline: Deadline { created_at: UNIX_EPOCH, expires_at: UNIX_EPOCH },
/// };
/// assert!(stored.record.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The session's data.
    pub record: Record,
    /// When it was created and when it ends.
    pub deadline: Deadline,
}

/// What a save found.
///
/// ```
/// use sessions::SaveOutcome;
/// assert_ne!(SaveOutcome::Saved, SaveOutcome::Missing);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveOutcome {
    /// The changes were applied.
    Saved,
    /// No such session (destroyed or expired meanwhile): nothing was written.
    Missing,
}

/// A store could not do what was asked.
///
/// ```
/// use sessions::StoreError;
/// let err = StoreError::backend(std::io::Error::other("connection refused"));
/// assert!(err.to_string().contains("connection refused"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// `create` found a session under the key already.
    #[error("a session with this id exists already")]
    Collision,
    /// The backend failed (connection, query, timeout…).
    #[error("session store unavailable: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
    /// Stored data is not a well-formed record.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// A field update no longer fits the stored slot (see [`ApplyError`]).
    #[error(transparent)]
    Apply(ApplyError),
    /// Optimistic concurrency: a slot changed since the request loaded it; nothing was written.
    #[error(transparent)]
    Conflict(#[from] Conflict),
}

impl From<ApplyError> for StoreError {
    /// A conflict stays a conflict; every other apply error is [`StoreError::Apply`].
    ///
    /// ```
    /// use sessions::{ApplyError, Conflict, StoreError};
    /// let conflict = Conflict { slot: "cart".into(), expected: 1, stored: 2 };
    /// assert!(matches!(StoreError::from(ApplyError::from(conflict)), StoreError::Conflict(_)));
    /// let missing = ApplyError::SlotMissing { slot: "cart".into() };
    /// assert!(matches!(StoreError::from(missing), StoreError::Apply(_)));
    /// ```
    fn from(err: ApplyError) -> Self {
        match err {
            ApplyError::Conflict(conflict) => StoreError::Conflict(conflict),
            other => StoreError::Apply(other),
        }
    }
}

impl StoreError {
    /// Wraps a backend's error.
    ///
    /// ```
    /// use sessions::StoreError;
    /// let err = StoreError::backend(std::io::Error::other("timed out"));
    /// assert!(matches!(err, StoreError::Backend(_)));
    /// assert_eq!(err.to_string(), "session store unavailable: timed out");
    /// ```
    pub fn backend(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Backend(Box::new(error))
    }
}

/// A server-side session store.
///
/// Every store runs the conformance suite (feature `conformance`,
/// `sessions::store::conformance::run`); a store that passes it keeps these promises:
///
/// * `load` returns `None` for a key that is absent or expired;
/// * `create` fails with [`StoreError::Collision`] when the key exists, and never overwrites;
/// * `save` applies only the changed fields and slots, atomically, and only to a session that
///   still exists; it returns [`SaveOutcome::Missing`] otherwise. It sets the new deadline;
/// * `delete` removes the session; deleting an absent one is not an error.
///
/// ```
/// use sessions::{MemoryStore, SessionStore};
/// fn takes(_: impl SessionStore) {}
/// takes(MemoryStore::new());
/// ```
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// The session filed under `key`, unless it is absent or expired.
    async fn load(&self, key: &SessionKey) -> Result<Option<Stored>, StoreError>;

    /// Files a new session; [`StoreError::Collision`] if `key` is taken.
    async fn create(
        &self,
        key: &SessionKey,
        record: &Record,
        deadline: Deadline,
    ) -> Result<(), StoreError>;

    /// Applies `changes` (possibly none) and sets `deadline`, if the session still exists.
    async fn save(
        &self,
        key: &SessionKey,
        changes: &Changeset,
        deadline: Deadline,
    ) -> Result<SaveOutcome, StoreError>;

    /// Removes the session.
    async fn delete(&self, key: &SessionKey) -> Result<(), StoreError>;

    /// Moves the session filed under `from` to `to` (`cycle_id` after a login), applying
    /// `changes` and setting `deadline` on the way, and returns [`SaveOutcome::Missing`]
    /// without writing anything when `from` is absent or expired (a logout won the race).
    /// [`StoreError::Collision`] when `to` is taken, [`StoreError::Conflict`] when an expected
    /// revision does not hold; in both cases nothing changes.
    ///
    /// Every store of this crate does it atomically: a save to `from` that succeeded before the
    /// move is carried over, one that comes after finds `from` gone, and the session is never
    /// under both keys or under none. This default, for stores written elsewhere, is a load,
    /// a create and a delete: a save landing between the load and the delete is lost.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use sessions::{Changeset, Deadline, MemoryStore, Record, SaveOutcome, SessionId, SessionStore};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let (old, new) = (SessionId::generate().unwrap().key(), SessionId::generate().unwrap().key());
    /// let now = SystemTime::now();
    /// let deadline = Deadline { created_at: now, expires_at: now + Duration::from_secs(60) };
    /// store.create(&old, &Record::new(), deadline).await.unwrap();
    /// let moved = store.cycle(&old, &new, &Changeset::new(), deadline).await.unwrap();
    /// assert_eq!(moved, SaveOutcome::Saved);
    /// assert!(store.load(&old).await.unwrap().is_none());
    /// assert!(store.load(&new).await.unwrap().is_some());
    /// # });
    /// ```
    async fn cycle(
        &self,
        from: &SessionKey,
        to: &SessionKey,
        changes: &Changeset,
        deadline: Deadline,
    ) -> Result<SaveOutcome, StoreError> {
        let Some(stored) = self.load(from).await? else {
            return Ok(SaveOutcome::Missing);
        };
        let mut record = stored.record;
        record.apply(changes)?;
        self.create(to, &record, deadline).await?;
        self.delete(from).await?;
        Ok(SaveOutcome::Saved)
    }
}

#[async_trait::async_trait]
impl<S: SessionStore + ?Sized> SessionStore for std::sync::Arc<S> {
    async fn load(&self, key: &SessionKey) -> Result<Option<Stored>, StoreError> {
        (**self).load(key).await
    }
    async fn create(
        &self,
        key: &SessionKey,
        record: &Record,
        deadline: Deadline,
    ) -> Result<(), StoreError> {
        (**self).create(key, record, deadline).await
    }
    async fn save(
        &self,
        key: &SessionKey,
        changes: &Changeset,
        deadline: Deadline,
    ) -> Result<SaveOutcome, StoreError> {
        (**self).save(key, changes, deadline).await
    }
    async fn delete(&self, key: &SessionKey) -> Result<(), StoreError> {
        (**self).delete(key).await
    }
    async fn cycle(
        &self,
        from: &SessionKey,
        to: &SessionKey,
        changes: &Changeset,
        deadline: Deadline,
    ) -> Result<SaveOutcome, StoreError> {
        (**self).cycle(from, to, changes, deadline).await
    }
}
