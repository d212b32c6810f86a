//! [`ReadMark`]: what a request knows of its session's last write, for a store that answers
//! reads from copies that may lag behind its writes (PostgreSQL read replicas).

/// What a request knows of the last write its client made to its session, handed to
/// [`SessionStore::load_for_read`](super::SessionStore::load_for_read): which copies of the
/// session may answer it.
///
/// The layer reads it from the companion cookie (or header) the response of a write hands out
/// when the store keeps one ([`SessionStore::read_mark_ttl`](super::SessionStore::read_mark_ttl)):
/// the version the write left the entry at, bound to the session's key. What a client sends
/// there only chooses where its own session is read from: a mark higher than any write sends
/// its reads to the primary (what a store without replicas does for every read), a missing or
/// lower one lets a replica answer, at most the replica's lag bound behind.
///
/// ```
/// use sessions::store::ReadMark;
/// assert!(ReadMark::AtLeast(3).accepts(Some(4)));
/// assert!(!ReadMark::AtLeast(3).accepts(Some(2)));
/// assert!(!ReadMark::AtLeast(3).accepts(None));
/// assert!(ReadMark::None.accepts(None));
/// assert!(!ReadMark::Latest.accepts(Some(u64::MAX)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ReadMark {
    /// The client says nothing of a recent write (none, or it is older than the store's lag
    /// bound): any copy the store trusts may answer.
    #[default]
    None,
    /// The client's last write left the entry at this version: a copy that holds this version
    /// or a later one may answer.
    AtLeast(u64),
    /// The client wrote, but which version it left is not known (its mark is of another id: a
    /// response from before a login reached the browser after the login's): only the copy every
    /// write goes to may answer.
    Latest,
}

impl ReadMark {
    /// Whether a copy whose entry under the key has `version` (`None`: no entry) may answer a
    /// read with this mark. [`Latest`](ReadMark::Latest) accepts no copy: only the primary may
    /// answer it.
    ///
    /// ```
    /// use sessions::store::ReadMark;
    /// assert!(ReadMark::None.accepts(Some(1)));
    /// assert!(ReadMark::AtLeast(1).accepts(Some(1)));
    /// ```
    pub fn accepts(self, version: Option<u64>) -> bool {
        match self {
            ReadMark::None => true,
            ReadMark::AtLeast(needed) => version.is_some_and(|version| version >= needed),
            ReadMark::Latest => false,
        }
    }

    /// The stricter of two marks: what a read must see to honour both.
    ///
    /// ```
    /// use sessions::store::ReadMark;
    /// assert_eq!(ReadMark::AtLeast(3).and(ReadMark::AtLeast(5)), ReadMark::AtLeast(5));
    /// assert_eq!(ReadMark::None.and(ReadMark::AtLeast(2)), ReadMark::AtLeast(2));
    /// assert_eq!(ReadMark::AtLeast(9).and(ReadMark::Latest), ReadMark::Latest);
    /// ```
    #[must_use]
    pub fn and(self, other: ReadMark) -> ReadMark {
        match (self, other) {
            (ReadMark::Latest, _) | (_, ReadMark::Latest) => ReadMark::Latest,
            (ReadMark::AtLeast(a), ReadMark::AtLeast(b)) => ReadMark::AtLeast(a.max(b)),
            (ReadMark::AtLeast(a), ReadMark::None) | (ReadMark::None, ReadMark::AtLeast(a)) => {
                ReadMark::AtLeast(a)
            }
            (ReadMark::None, ReadMark::None) => ReadMark::None,
        }
    }
}
