//! The errors of the crate, one enum per concern; the public paths are in `sessions::error`.

use crate::codec::CodecError;

/// A `Result` whose error is, unless told otherwise, a [`StoreError`]: what the store calls,
/// [`SessionHandle::save`](crate::SessionHandle::save) and the layer's owner operations return.
///
/// ```
/// fn demo() -> sessions::error::Result<u32> { Ok(1) }
/// assert_eq!(demo().unwrap(), 1);
/// ```
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A field of a session value could not be encoded.
///
/// ```
/// use sessions::Format;
/// use sessions::error::EncodeError;
/// # fn demo(err: EncodeError) { println!("{err}"); }
/// ```
#[derive(Debug, thiserror::Error)]
#[error("cannot encode field `{field}` of session type `{type_name}`: {source}")]
pub struct EncodeError {
    /// The session type's name.
    pub type_name: &'static str,
    /// The stored name of the field.
    pub field: &'static str,
    /// What the codec said.
    #[source]
    pub source: CodecError,
}

/// A stored slot could not be turned into a value of the requested session type.
///
/// Nothing stored is changed when this error is returned.
///
/// ```
/// use sessions::error::DecodeError;
/// let err = DecodeError::FutureVersion { type_name: "cart".into(), stored: 3, known: 2 };
/// assert!(err.to_string().contains("version 3"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The slot was written by newer code (a rollback during a deploy). It is left as it is.
    #[error(
        "session type `{type_name}` is stored at version {stored}, newer than the version {known} this code knows; the slot is left untouched"
    )]
    FutureVersion {
        /// The session type's name.
        type_name: String,
        /// The stored version.
        stored: u32,
        /// The newest version this code knows.
        known: u32,
    },
    /// No type in the `migrate_from` chain has the stored version.
    #[error(
        "session type `{type_name}` is stored at version {stored}, which no type in its migrate_from chain has"
    )]
    UnknownVersion {
        /// The session type's name.
        type_name: String,
        /// The stored version.
        stored: u32,
    },
    /// A field without `#[session(default)]` is missing from the stored slot.
    #[error(
        "session type `{type_name}` v{version}: field `{field}` is missing from the stored slot"
    )]
    MissingField {
        /// The session type's name.
        type_name: &'static str,
        /// The version being decoded.
        version: u32,
        /// The stored name of the field.
        field: &'static str,
    },
    /// A stored field could not be decoded.
    #[error("session type `{type_name}` v{version}: field `{field}` cannot be decoded: {source}")]
    Field {
        /// The session type's name.
        type_name: &'static str,
        /// The version being decoded.
        version: u32,
        /// The stored name of the field.
        field: &'static str,
        /// What the codec said.
        #[source]
        source: CodecError,
    },
    /// The slot's fields are in a format this build cannot read (feature `bincode` off).
    #[error(
        "session type `{type_name}`: the slot is stored in format tag {tag}, which this build does not support"
    )]
    UnsupportedFormat {
        /// The session type's name.
        type_name: String,
        /// The stored format tag.
        tag: u8,
    },
}

/// Stored bytes are not a well-formed record.
///
/// ```
/// use sessions::store::Record;
/// assert!(Record::from_bytes(b"\x07garbage").is_err());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The bytes start with no known format marker.
    #[error("stored record has an unknown format marker")]
    UnknownMarker,
    /// The bytes are a bincode record and this build has no `bincode` feature.
    #[error("stored record is in bincode; enable the `bincode` feature of `sessions` to read it")]
    BincodeDisabled,
    /// The record is malformed.
    #[error("stored record is malformed: {0}")]
    Malformed(String),
    /// A slot is malformed.
    #[error("stored slot `{slot}` is malformed: {reason}")]
    MalformedSlot {
        /// The slot's key.
        slot: String,
        /// What is wrong.
        reason: String,
    },
    /// Encoding a record failed.
    #[error("cannot encode record: {0}")]
    Encode(#[from] CodecError),
    /// The entry stored under a key cannot be read, and the store knows its `version` (the
    /// one its compare-and-swap compares): read as nothing, it can still be ended (a logout or
    /// a revocation swaps it away by that version). See [`RecordError::stored_version`].
    #[error("stored entry (version {version}) cannot be read: {source}")]
    Unreadable {
        /// The version the store compares for this entry.
        version: u64,
        /// Why it cannot be read.
        #[source]
        source: Box<RecordError>,
    },
}

impl RecordError {
    /// The stored entry's version, when the store knows the version of an entry it cannot
    /// read ([`RecordError::Unreadable`]).
    ///
    /// ```
    /// use sessions::error::RecordError;
    /// let err = RecordError::Unreadable { version: 7, source: Box::new(RecordError::UnknownMarker) };
    /// assert_eq!(err.stored_version(), Some(7));
    /// assert_eq!(RecordError::UnknownMarker.stored_version(), None);
    /// ```
    pub fn stored_version(&self) -> Option<u64> {
        match self {
            RecordError::Unreadable { version, .. } => Some(*version),
            _ => None,
        }
    }
}

/// A changeset could not be applied to a record.
///
/// ```
/// use sessions::error::ApplyError;
/// let err = ApplyError::SlotMissing { slot: "cart".into() };
/// assert!(err.to_string().contains("cart"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// A field update targets a slot that is no longer stored.
    #[error("field update for slot `{slot}`, which is no longer stored")]
    SlotMissing {
        /// The slot's key.
        slot: String,
    },
    /// A field update was encoded for another version or format than the stored slot has
    /// (another deployment rewrote the slot meanwhile).
    #[error(
        "field update for slot `{slot}` v{expected_version} ({expected_format}), but the stored slot is v{stored_version} (format tag {stored_format})"
    )]
    SlotChanged {
        /// The slot's key.
        slot: String,
        /// The version the update was encoded for.
        expected_version: u32,
        /// The format the update was encoded in.
        expected_format: crate::Format,
        /// The stored version.
        stored_version: u32,
        /// The stored format tag.
        stored_format: u8,
    },
    /// Optimistic concurrency: the slot changed since the request loaded it.
    #[error(transparent)]
    Conflict(#[from] Conflict),
}

/// Optimistic concurrency (see `SessionLayer::optimistic_concurrency`): another request saved
/// a change to this slot after this request loaded it, so this request's change was refused and
/// nothing of its save was written. Reload and try again, or give up.
///
/// ```
/// use sessions::error::Conflict;
/// let conflict = Conflict { slot: "cart".into(), expected: 3, stored: 4 };
/// assert_eq!(
///     conflict.to_string(),
///     "session slot `cart` was changed by another request (stored revision 4, this request loaded 3)"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "session slot `{slot}` was changed by another request (stored revision {stored}, this request loaded {expected})"
)]
pub struct Conflict {
    /// The slot's key.
    pub slot: String,
    /// The revision the request loaded (0: the slot was not stored).
    pub expected: u64,
    /// The revision stored now (0: the slot is no longer stored).
    pub stored: u64,
}

/// A session type could not be registered.
///
/// ```
/// use sessions::prelude::*;
/// use sessions::store::Registry;
/// use sessions::error::RegistryError;
///
/// #[derive(Session, Default)]
/// #[session(name = "cart")]
/// struct A { n: u32 }
/// #[derive(Session, Default)]
/// #[session(name = "cart")]
/// struct B { m: u32 }
///
/// let mut registry = Registry::new();
/// registry.register::<A>().unwrap();
/// let err = registry.register::<B>().unwrap_err();
/// assert!(matches!(err, RegistryError::DuplicateName { .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Two different Rust types claim one session type name.
    #[error(
        "session type name `{name}` is registered twice: by `{first}` and by `{second}`; give one of them another #[session(name = \"..\")] (an older version belongs in migrate_from, not in register)"
    )]
    DuplicateName {
        /// The contested name.
        name: &'static str,
        /// The Rust type registered first.
        first: &'static str,
        /// The Rust type registered second.
        second: &'static str,
    },
    /// Two registered types both have an `#[session(owner)]` field: a session has one owner.
    #[error(
        "`{first}` and `{second}` both have an #[session(owner)] field, but a session has one owner: keep `owner` on one of them (the one a login sets)"
    )]
    TwoOwners {
        /// The Rust type registered first.
        first: &'static str,
        /// The Rust type registered second.
        second: &'static str,
    },
}

/// A typed slot could not be loaded from a record.
///
/// ```
/// use sessions::prelude::*;
/// use sessions::error::LoadError;
/// use sessions::store::{Record, Registry};
///
/// #[derive(Session, Default)]
/// #[session(name = "cart")]
/// struct Cart { n: u32 }
///
/// let err = Registry::new().load::<Cart>(&Record::new()).err().unwrap();
/// assert!(matches!(err, LoadError::NotRegistered { .. }));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The type was never registered, so its slot is never decoded.
    #[error(
        "session type `{rust_type}` (name `{name}`) is not registered; add `.register::<{rust_type}>()` to the session layer"
    )]
    NotRegistered {
        /// The session type's name.
        name: &'static str,
        /// The Rust type.
        rust_type: &'static str,
    },
    /// The slot's `__type__` differs from the key it is stored under.
    #[error("stored slot `{slot}` holds `__type__` `{stored}`; it is left untouched")]
    TypeMismatch {
        /// The slot key.
        slot: String,
        /// The type tag found inside.
        stored: String,
    },
    /// The slot could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The migrated value could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// A store could not do what was asked.
///
/// ```
/// use sessions::error::StoreError;
/// let err = StoreError::backend(std::io::Error::other("connection refused"));
/// assert!(err.to_string().contains("connection refused"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A new session's id is taken already.
    #[error("a session with this id exists already")]
    Collision,
    /// The backend failed (connection, query, timeout…).
    #[error("session store unavailable: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
    /// Stored data is not a well-formed entry.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// A change no longer fits the stored session (see [`ApplyError`]).
    #[error(transparent)]
    Apply(ApplyError),
    /// Optimistic concurrency: a slot changed since the request loaded it; nothing was written.
    #[error(transparent)]
    Conflict(#[from] Conflict),
    /// The session kept changing under this write for longer than a write waits: nothing was
    /// written.
    #[error("session changed by other requests on every attempt; nothing was written")]
    Contended,
    /// This store cannot do what was asked (e.g. list an owner's sessions).
    #[error("this session store cannot {0}")]
    Unsupported(&'static str),
    /// The store is not set up for sessions: its table is missing (`migrate()` was not called
    /// at start-up), say. A mistake in the app's start-up, not an outage: the layer answers a
    /// 500 (not a 503 a client would retry) and logs the fix at `error`.
    #[error("session store not set up: {problem}; {fix}")]
    NotSetUp {
        /// What the store found (the driver's message).
        problem: String,
        /// What to do about it.
        fix: String,
    },
}

impl From<ApplyError> for StoreError {
    /// A conflict stays a conflict; every other apply error is [`StoreError::Apply`].
    ///
    /// ```
    /// use sessions::error::{ApplyError, Conflict, StoreError};
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
    /// use sessions::error::StoreError;
    /// let err = StoreError::backend(std::io::Error::other("timed out"));
    /// assert!(matches!(err, StoreError::Backend(_)));
    /// assert_eq!(err.to_string(), "session store unavailable: timed out");
    /// ```
    pub fn backend(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Backend(Box::new(error))
    }

    /// The store's table is missing: `store` (`"SqliteStore"`, …) was used without its
    /// `migrate()`. The message says to call it at start-up.
    ///
    /// ```
    /// use sessions::error::StoreError;
    /// let err = StoreError::not_migrated("SqliteStore", "no such table: sessions");
    /// assert!(matches!(err, StoreError::NotSetUp { .. }));
    /// assert_eq!(
    ///     err.to_string(),
    ///     "session store not set up: no such table: sessions; call `SqliteStore::migrate()` at start-up"
    /// );
    /// ```
    pub fn not_migrated(store: &str, problem: impl std::fmt::Display) -> Self {
        StoreError::NotSetUp {
            problem: problem.to_string(),
            fix: format!("call `{store}::migrate()` at start-up"),
        }
    }
}
