//! What a server-side store keeps under one key: a live session ([`Stored`]) or the forwarding
//! mark a `cycle_id()` leaves behind ([`Entry::Moved`]), each with the version a
//! compare-and-swap checks.

use std::sync::Arc;
use std::time::SystemTime;

use crate::errors::{RecordError, StoreError};
use crate::expiry::Deadline;
use crate::id::SessionKey;
use crate::record::Record;

/// The version of the entry that replaces one of `version`: one above it. An entry at
/// `u64::MAX` (only damaged or forged data gets there: a load refuses it, see [`writable`]) is
/// an error, never a wrap to 0 or a panic.
pub(crate) fn next_version(version: u64) -> Result<u64, StoreError> {
    version
        .checked_add(1)
        .ok_or_else(|| StoreError::Record(at_maximum(version, "the entry's version")))
}

/// `entry`, unless no write could follow it: its version, or a slot's revision, at
/// `u64::MAX` (damaged or forged data). Such an entry is unreadable data, refused where a store
/// reads it, so that a request starts afresh (and a logout still ends it by its version)
/// instead of failing every write.
pub(crate) fn writable(entry: Entry) -> Result<Entry, RecordError> {
    let version = entry.version();
    if version == u64::MAX {
        return Err(at_maximum(version, "the entry's version"));
    }
    if let Entry::Live { session, .. } = &entry
        && session
            .record
            .slots()
            .any(|slot| slot.revision() == u64::MAX)
    {
        return Err(at_maximum(version, "a slot's revision"));
    }
    Ok(entry)
}

fn at_maximum(version: u64, what: &str) -> RecordError {
    RecordError::Unreadable {
        version,
        source: Box::new(RecordError::Malformed(format!(
            "{what} is at its maximum (u64::MAX): damaged or forged, no write can follow it"
        ))),
    }
}

/// A live session: its data and what is known about it.
///
/// ```
/// use std::time::UNIX_EPOCH;
/// use sessions::store::Stored;
/// use sessions::store::{Deadline, Record};
/// let stored = Stored::new(Record::new(), Deadline { created_at: UNIX_EPOCH, expires_at: UNIX_EPOCH });
/// assert!(stored.record.is_empty() && stored.owner.is_none());
/// assert_eq!(stored.last_seen, UNIX_EPOCH);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stored {
    /// The session's data.
    pub record: Record,
    /// When it was created and when it ends.
    pub deadline: Deadline,
    /// When the session was last seen: its creation, then each move of its deadline (so at
    /// most as often as the expiry refresh: reads stay write-free).
    pub last_seen: SystemTime,
    /// Whose session it is, if anyone's (see `#[session(owner)]`).
    pub owner: Option<Arc<Owner>>,
}

/// Whose session a stored session is: the owner it was bound to, since when, and (if the layer
/// captures it) the user agent of the request that bound it.
///
/// ```
/// use std::time::UNIX_EPOCH;
/// use sessions::store::Owner;
/// let owner = Owner::new("42", UNIX_EPOCH);
/// assert_eq!((owner.name.as_str(), owner.agent.as_deref()), ("42", None));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Owner {
    /// The owner as rendered (`"42"` for `user_id: Some(42)`).
    pub name: String,
    /// When the session was bound to this owner (a login).
    pub since: SystemTime,
    /// The `User-Agent` of the request that bound it, when the layer captures it.
    pub agent: Option<String>,
}

impl Owner {
    /// An owner bound at `since`, with no agent.
    ///
    /// ```
    /// use std::time::UNIX_EPOCH;
    /// let owner = sessions::store::Owner::new("ada", UNIX_EPOCH);
    /// assert_eq!(owner.since, UNIX_EPOCH);
    /// ```
    pub fn new(name: impl Into<String>, since: SystemTime) -> Self {
        Self {
            name: name.into(),
            since,
            agent: None,
        }
    }
}

impl Stored {
    /// A session of `record` ending at `deadline`, last seen when it was created, with no owner.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use sessions::store::Stored;
    /// use sessions::store::{Deadline, Record};
    /// let deadline = Deadline { created_at: UNIX_EPOCH, expires_at: UNIX_EPOCH + Duration::from_secs(9) };
    /// assert_eq!(Stored::new(Record::new(), deadline).deadline, deadline);
    /// ```
    pub fn new(record: Record, deadline: Deadline) -> Self {
        Self {
            record,
            deadline,
            last_seen: deadline.created_at,
            owner: None,
        }
    }
}

impl Stored {
    /// The owner's name, if the session has one.
    ///
    /// ```
    /// use std::time::UNIX_EPOCH;
    /// use sessions::store::{Owner, Stored};
    /// use sessions::store::{Deadline, Record};
    /// let mut stored = Stored::new(Record::new(), Deadline { created_at: UNIX_EPOCH, expires_at: UNIX_EPOCH });
    /// assert_eq!(stored.owner_name(), None);
    /// stored.owner = Some(Owner::new("42", UNIX_EPOCH).into());
    /// assert_eq!(stored.owner_name(), Some("42"));
    /// ```
    pub fn owner_name(&self) -> Option<&str> {
        self.owner.as_deref().map(|owner| owner.name.as_str())
    }
}

/// What a server-side store keeps under one key.
///
/// Every write makes a new entry one `version` above the one it replaces (a new key's first
/// entry is version 1); [`SessionStore::swap`](super::SessionStore::swap) writes only over the
/// version it was given, which is how every operation on a session stays atomic in every store.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use sessions::store::{Entry, Stored};
/// use sessions::store::{Deadline, Record};
/// let end = UNIX_EPOCH + Duration::from_secs(60);
/// let entry = Entry::Live { version: 1, session: Stored::new(Record::new(), Deadline { created_at: UNIX_EPOCH, expires_at: end }) };
/// assert_eq!((entry.version(), entry.expires_at()), (1, end));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A live session.
    Live {
        /// The entry's version.
        version: u64,
        /// The session.
        session: Stored,
    },
    /// Where `cycle_id()` moved the session that lived here: a save or a destroy that loaded
    /// the session before the move follows the mark to the new key, so neither is lost. A load
    /// never follows it (the old id must not reach the new session), and it ends at `until`.
    Moved {
        /// The entry's version.
        version: u64,
        /// The key the session lives under now.
        to: SessionKey,
        /// When the mark ends.
        until: SystemTime,
    },
}

impl Entry {
    /// The entry's version.
    ///
    /// ```
    /// use std::time::UNIX_EPOCH;
    /// use sessions::SessionId;
    /// use sessions::store::Entry;
    /// let to = SessionId::generate().unwrap().key();
    /// assert_eq!(Entry::Moved { version: 4, to, until: UNIX_EPOCH }.version(), 4);
    /// ```
    pub fn version(&self) -> u64 {
        match self {
            Entry::Live { version, .. } | Entry::Moved { version, .. } => *version,
        }
    }

    /// When the entry ends: the session's deadline, or the mark's end.
    ///
    /// ```
    /// use std::time::UNIX_EPOCH;
    /// use sessions::SessionId;
    /// use sessions::store::Entry;
    /// let to = SessionId::generate().unwrap().key();
    /// assert_eq!(Entry::Moved { version: 1, to, until: UNIX_EPOCH }.expires_at(), UNIX_EPOCH);
    /// ```
    pub fn expires_at(&self) -> SystemTime {
        match self {
            Entry::Live { session, .. } => session.deadline.expires_at,
            Entry::Moved { until, .. } => *until,
        }
    }

    /// Whether the entry has ended at `now`.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use sessions::SessionId;
    /// use sessions::store::Entry;
    /// let to = SessionId::generate().unwrap().key();
    /// let mark = Entry::Moved { version: 1, to, until: UNIX_EPOCH + Duration::from_secs(1) };
    /// assert!(!mark.is_ended(UNIX_EPOCH) && mark.is_ended(UNIX_EPOCH + Duration::from_secs(1)));
    /// ```
    pub fn is_ended(&self, now: SystemTime) -> bool {
        now >= self.expires_at()
    }

    /// The live session, unless this is a forwarding mark.
    ///
    /// ```
    /// use std::time::UNIX_EPOCH;
    /// use sessions::store::{Entry, Stored};
    /// use sessions::store::{Deadline, Record};
    /// let session = Stored::new(Record::new(), Deadline { created_at: UNIX_EPOCH, expires_at: UNIX_EPOCH });
    /// let entry = Entry::Live { version: 1, session: session.clone() };
    /// assert_eq!(entry.session(), Some(&session));
    /// assert_eq!(entry.into_session(), Some(session));
    /// ```
    pub fn session(&self) -> Option<&Stored> {
        match self {
            Entry::Live { session, .. } => Some(session),
            Entry::Moved { .. } => None,
        }
    }

    /// The live session, owned, unless this is a forwarding mark.
    pub fn into_session(self) -> Option<Stored> {
        match self {
            Entry::Live { session, .. } => Some(session),
            Entry::Moved { .. } => None,
        }
    }

    /// The owner of a live session, if any.
    ///
    /// ```
    /// use std::time::UNIX_EPOCH;
    /// use sessions::store::{Entry, Stored};
    /// use sessions::store::{Deadline, Record};
    /// let mut session = Stored::new(Record::new(), Deadline { created_at: UNIX_EPOCH, expires_at: UNIX_EPOCH });
    /// session.owner = Some(sessions::store::Owner::new("42", UNIX_EPOCH).into());
    /// assert_eq!(Entry::Live { version: 1, session }.owner(), Some("42"));
    /// ```
    pub fn owner(&self) -> Option<&str> {
        match self {
            Entry::Live { session, .. } => session.owner_name(),
            Entry::Moved { .. } => None,
        }
    }
}

/// What a store holds for one owner ([`SessionStore::owned_entries`](super::SessionStore::owned_entries)):
/// the entries it can read, and the ones filed under the owner that it cannot.
///
/// An unreadable entry is never shown, but it is not forgotten either: its error says the
/// version the store compares for it ([`RecordError::stored_version`]) when the store knows
/// it, so a revocation ends it too (a security control must not skip what it cannot read).
///
/// ```
/// use sessions::store::OwnedEntries;
/// let none = OwnedEntries::default();
/// assert!(none.entries.is_empty() && none.unreadable.is_empty());
/// ```
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct OwnedEntries {
    /// The owner's live sessions (and whatever else the store's index still lists: the
    /// crate checks each entry's owner), with their keys.
    pub entries: Vec<(SessionKey, Entry)>,
    /// The entries filed under the owner that do not decode, with their keys and why.
    pub unreadable: Vec<(SessionKey, RecordError)>,
}

impl OwnedEntries {
    /// Entries that all decoded.
    ///
    /// ```
    /// use sessions::store::OwnedEntries;
    /// assert!(OwnedEntries::new(Vec::new()).unreadable.is_empty());
    /// ```
    pub fn new(entries: Vec<(SessionKey, Entry)>) -> Self {
        Self {
            entries,
            unreadable: Vec::new(),
        }
    }
}
