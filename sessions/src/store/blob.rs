//! One [`Entry`] as bytes, for stores that keep a value per key (SQLite, PostgreSQL, Redis, or
//! your own): [`encode_at`] and [`decode_at`].
//!
//! The layout, every integer big-endian, every time in milliseconds since the Unix epoch:
//!
//! | bytes | what |
//! |---|---|
//! | 1 | `0xE1`: an entry, layout 1 |
//! | 8 | the entry's version |
//! | 1 | its kind: `1` a live session, `2` a forwarding mark; plus `0x10` when the entry is bound to its key |
//!
//! A live session goes on with `created_at`, `expires_at` and `last_seen` (8 bytes each), the
//! owner's name (a 4-byte length, `0xFFFFFFFF` for no owner, then UTF-8) and, with an owner, its
//! `since` (8) and agent (length-prefixed, `0xFFFFFFFF` for none), the slot count (4), and per
//! slot: its name and type tag (length-prefixed; an empty type tag means the same as
//! the name), version (4), format tag (1), revision (8), field count (4), then per field its
//! name and bytes (length-prefixed). A mark goes on with its end (8) and the 32 bytes of the
//! target key's digest. A bound entry ends with the first 8 bytes of the key it is stored
//! under: [`decode_at`] refuses it under any other key, so an entry copied from one session's
//! row into another's is not served there (entries written before the binding have none, and
//! still load).
//!
//! The first [`PREFIX_LEN`] bytes say which version an encoded entry is, so a store can compare
//! versions without decoding (the Redis store's compare-and-swap script does), and so a store
//! can say the version of an entry it cannot decode ([`stored_version`]).
//!
//! What decoding a hostile entry may cost is bounded by its size: every length is checked
//! against the bytes left before anything is allocated, field bytes are slices of the input
//! (not copies), and the work is linear in the input but for a sort of the slot names.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::{Entry, Owner, Stored};
use crate::errors::RecordError;
use crate::expiry::Deadline;
use crate::id::SessionKey;
use crate::record::{Name, Record, Slot};

/// The first byte of every encoded entry.
pub const MARKER: u8 = 0xE1;
/// How many leading bytes name an encoded entry's version: the marker and the version.
pub const PREFIX_LEN: usize = 9;

const LIVE: u8 = 1;
const MOVED: u8 = 2;
/// Added to the kind of an entry that ends with its key's [`binding`].
const BOUND: u8 = 0x10;
const NONE: u32 = u32::MAX;
/// How many bytes of the key a bound entry ends with.
const BINDING_LEN: usize = 8;
/// The fewest bytes a slot takes (two empty names, version, format, revision, field count)
/// and a field (two lengths): what a claimed count is checked against before allocating.
const MIN_SLOT: usize = 4 + 4 + 4 + 1 + 8 + 4;
const MIN_FIELD: usize = 4 + 4;

/// What a bound entry ends with: the first bytes of the key it is stored under.
fn binding(key: &SessionKey) -> [u8; BINDING_LEN] {
    let mut binding = [0u8; BINDING_LEN];
    binding.copy_from_slice(&key.digest()[..BINDING_LEN]);
    binding
}

/// The bytes that start every encoding of an entry of `version`.
///
/// ```
/// use sessions::store::blob;
/// assert_eq!(blob::prefix(1), [0xE1, 0, 0, 0, 0, 0, 0, 0, 1]);
/// ```
pub fn prefix(version: u64) -> [u8; PREFIX_LEN] {
    let mut prefix = [0u8; PREFIX_LEN];
    prefix[0] = MARKER;
    prefix[1..].copy_from_slice(&version.to_be_bytes());
    prefix
}

/// Encodes an entry to be stored under `key`, bound to it ([`decode_at`] refuses it under
/// another key).
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use sessions::store::{Entry, Stored, blob};
/// use sessions::{Format, SessionId};
/// use sessions::store::{Deadline, Record, Slot};
/// let mut record = Record::new();
/// record.insert(Slot::new("cart", 1, Format::Json, vec![("n".into(), "3".into())]).with_revision(2));
/// let deadline = Deadline { created_at: UNIX_EPOCH, expires_at: UNIX_EPOCH + Duration::from_secs(60) };
/// let entry = Entry::Live { version: 4, session: Stored::new(record, deadline) };
/// let (key, other) = (SessionId::generate().unwrap().key(), SessionId::generate().unwrap().key());
/// let bytes = blob::encode_at(&key, &entry);
/// assert_eq!(bytes[..blob::PREFIX_LEN], blob::prefix(4));
/// assert_eq!(blob::decode_at(&key, bytes.clone().into()).unwrap(), entry);
/// let copied = blob::decode_at(&other, bytes.into()).unwrap_err();
/// assert_eq!(copied.stored_version(), Some(4)); // unreadable there, and can be swapped away
/// ```
pub fn encode_at(key: &SessionKey, entry: &Entry) -> Vec<u8> {
    let mut out = write(entry, BOUND);
    out.extend_from_slice(&binding(key));
    out
}

/// Encodes an entry bound to no key, as the release before the binding did: for a store that
/// does not know the key it stores under. A store that does uses [`encode_at`].
///
/// ```
/// use std::time::UNIX_EPOCH;
/// use sessions::SessionId;
/// use sessions::store::{Entry, blob};
/// let to = SessionId::generate().unwrap().key();
/// let mark = Entry::Moved { version: 2, to, until: UNIX_EPOCH };
/// assert_eq!(blob::decode(blob::encode(&mark).into()).unwrap(), mark);
/// ```
pub fn encode(entry: &Entry) -> Vec<u8> {
    write(entry, 0)
}

fn write(entry: &Entry, bound: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(estimate(entry));
    out.extend_from_slice(&prefix(entry.version()));
    match entry {
        Entry::Live { session, .. } => {
            out.push(LIVE | bound);
            put_time(&mut out, session.deadline.created_at);
            put_time(&mut out, session.deadline.expires_at);
            put_time(&mut out, session.last_seen);
            match session.owner.as_deref() {
                Some(owner) => {
                    put_bytes(&mut out, owner.name.as_bytes());
                    put_time(&mut out, owner.since);
                    put_optional(&mut out, owner.agent.as_deref());
                }
                None => out.extend_from_slice(&NONE.to_be_bytes()),
            }
            put_len(&mut out, session.record.slots().len());
            for slot in session.record.slots() {
                put_bytes(&mut out, slot.name().as_bytes());
                let tag = if slot.type_tag() == slot.name() {
                    ""
                } else {
                    slot.type_tag()
                };
                put_bytes(&mut out, tag.as_bytes());
                out.extend_from_slice(&slot.version().to_be_bytes());
                out.push(slot.format_tag());
                out.extend_from_slice(&slot.revision().to_be_bytes());
                put_len(&mut out, slot.fields().len());
                for (name, bytes) in slot.fields() {
                    put_bytes(&mut out, name.as_bytes());
                    put_bytes(&mut out, bytes);
                }
            }
        }
        Entry::Moved { to, until, .. } => {
            out.push(MOVED | bound);
            put_time(&mut out, *until);
            out.extend_from_slice(to.digest());
        }
    }
    out
}

/// The version an encoded entry starts with, if `bytes` start like one (for an entry that
/// does not decode: its version still says what a compare-and-swap compares).
///
/// ```
/// use sessions::store::blob;
/// let mut bytes = blob::prefix(9).to_vec();
/// bytes.extend_from_slice(b"garbage");
/// assert_eq!(blob::stored_version(&bytes), Some(9));
/// assert_eq!(blob::stored_version(b"garbage"), None);
/// ```
pub fn stored_version(bytes: &[u8]) -> Option<u64> {
    match bytes.get(..PREFIX_LEN)? {
        [MARKER, version @ ..] => Some(u64::from_be_bytes(version.try_into().ok()?)),
        _ => None,
    }
}

/// Decodes an entry stored under `key`: [`decode`], and an entry bound to another key is
/// refused as unreadable (an entry bound to no key, written before the binding, is read).
/// Every error after the version says it ([`RecordError::stored_version`]), so the entry can
/// be swapped away.
///
/// ```
/// use sessions::SessionId;
/// use sessions::store::blob;
/// let key = SessionId::generate().unwrap().key();
/// assert!(blob::decode_at(&key, bytes::Bytes::from_static(b"garbage")).is_err());
/// ```
pub fn decode_at(key: &SessionKey, bytes: Bytes) -> Result<Entry, RecordError> {
    let (entry, bound) = read(bytes)?;
    match bound {
        Some(bound) if bound != binding(key) => Err(unreadable(
            entry.version(),
            malformed("bound to another key (copied from another session's entry?)"),
        )),
        _ => Ok(entry),
    }
}

/// Decodes the entry a store keeps under `key` beside `version`, the version its
/// compare-and-swap compares (a SQL store's `version` column): [`decode_at`], and an entry
/// whose own version is another is refused (a hand-edited row, a flipped byte: served, it
/// would make every write miss its compare-and-swap). Every error says `version`, so the row
/// can still be swapped away.
///
/// ```
/// use std::time::UNIX_EPOCH;
/// use sessions::SessionId;
/// use sessions::store::{Entry, blob};
/// let key = SessionId::generate().unwrap().key();
/// let mark = Entry::Moved { version: 2, to: key.clone(), until: UNIX_EPOCH };
/// let bytes = blob::encode_at(&key, &mark);
/// assert_eq!(blob::decode_beside(&key, 2, bytes.clone().into()).unwrap(), mark);
/// let err = blob::decode_beside(&key, 3, bytes.into()).unwrap_err();
/// assert_eq!(err.stored_version(), Some(3));
/// ```
pub fn decode_beside(key: &SessionKey, version: u64, bytes: Bytes) -> Result<Entry, RecordError> {
    let as_stored = |err: RecordError| RecordError::Unreadable {
        version,
        source: Box::new(match err {
            RecordError::Unreadable { source, .. } => *source,
            err => err,
        }),
    };
    let entry = decode_at(key, bytes).map_err(as_stored)?;
    if entry.version() != version {
        return Err(as_stored(malformed(&format!(
            "the entry says version {}, its row {version}",
            entry.version()
        ))));
    }
    Ok(entry)
}

/// Decodes an entry written by [`encode`] or [`encode_at`], without checking which key it is
/// bound to (a store that knows the key uses [`decode_at`]); field bytes are slices of `bytes`
/// (nothing is copied). Anything else is [`RecordError`], never a panic; so is an entry no
/// write could follow (its version or a slot's revision at `u64::MAX`).
///
/// ```
/// use sessions::store::blob;
/// assert!(blob::decode(bytes::Bytes::from_static(b"garbage")).is_err());
/// ```
pub fn decode(bytes: Bytes) -> Result<Entry, RecordError> {
    read(bytes).map(|(entry, _)| entry)
}

/// The entry, and the binding it ends with, if it is bound.
fn read(bytes: Bytes) -> Result<(Entry, Option<[u8; BINDING_LEN]>), RecordError> {
    let mut reader = Reader { bytes, at: 0 };
    if reader.u8()? != MARKER {
        return Err(malformed("not a stored session entry"));
    }
    let version = reader.u64()?;
    let read = read_body(&mut reader, version).map_err(|err| unreadable(version, err))?;
    let entry = super::entry::writable(read.0)?;
    Ok((entry, read.1))
}

fn read_body(
    reader: &mut Reader,
    version: u64,
) -> Result<(Entry, Option<[u8; BINDING_LEN]>), RecordError> {
    let kind = reader.u8()?;
    let entry = match kind & !BOUND {
        LIVE => {
            let created_at = reader.time()?;
            let expires_at = reader.time()?;
            let last_seen = reader.time()?;
            let owner = match reader.optional()? {
                Some(name) => Some(Arc::new(Owner {
                    name,
                    since: reader.time()?,
                    agent: reader.optional()?,
                })),
                None => None,
            };
            let count = reader.count(MIN_SLOT)?;
            let mut slots = Vec::with_capacity(count);
            for _ in 0..count {
                let name = reader.name()?;
                let tag = reader.name()?;
                let type_tag = if tag.is_empty() { name.clone() } else { tag };
                let slot_version = reader.u32()?;
                let format_tag = reader.u8()?;
                let revision = reader.u64()?;
                let fields = reader.count(MIN_FIELD)?;
                let mut values = Vec::with_capacity(fields);
                for _ in 0..fields {
                    values.push((reader.name()?, reader.bytes()?));
                }
                slots.push(
                    Slot::from_parts(name, type_tag, slot_version, format_tag, values)
                        .with_revision(revision),
                );
            }
            let mut names: Vec<&str> = slots.iter().map(Slot::name).collect();
            names.sort_unstable();
            if names.windows(2).any(|pair| pair[0] == pair[1]) {
                return Err(malformed("a slot is stored twice"));
            }
            let mut session = Stored::new(
                Record::from_distinct_slots(slots),
                Deadline {
                    created_at,
                    expires_at,
                },
            );
            session.last_seen = last_seen;
            session.owner = owner;
            Entry::Live { version, session }
        }
        MOVED => {
            let until = reader.time()?;
            Entry::Moved {
                version,
                to: SessionKey::from_digest(reader.array()?),
                until,
            }
        }
        _ => return Err(malformed("an unknown entry kind")),
    };
    let bound = match kind & BOUND {
        0 => None,
        _ => Some(reader.array()?),
    };
    if reader.at != reader.bytes.len() {
        return Err(malformed("bytes after the entry"));
    }
    Ok((entry, bound))
}

fn unreadable(version: u64, err: RecordError) -> RecordError {
    match err {
        err @ RecordError::Unreadable { .. } => err,
        err => RecordError::Unreadable {
            version,
            source: Box::new(err),
        },
    }
}

fn malformed(what: &str) -> RecordError {
    RecordError::Malformed(format!("stored entry: {what}"))
}

fn estimate(entry: &Entry) -> usize {
    match entry {
        Entry::Live { session, .. } => {
            64 + BINDING_LEN
                + session
                    .record
                    .slots()
                    .map(|slot| {
                        32 + slot.name().len()
                            + slot
                                .fields()
                                .map(|(name, bytes)| 8 + name.len() + bytes.len())
                                .sum::<usize>()
                    })
                    .sum::<usize>()
        }
        Entry::Moved { .. } => 50 + BINDING_LEN,
    }
}

fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn put_time(out: &mut Vec<u8>, time: SystemTime) {
    out.extend_from_slice(&millis(time).to_be_bytes());
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX - 1).to_be_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

fn put_optional(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(text) => put_bytes(out, text.as_bytes()),
        None => out.extend_from_slice(&NONE.to_be_bytes()),
    }
}

struct Reader {
    bytes: Bytes,
    at: usize,
}

impl Reader {
    fn take(&mut self, n: usize) -> Result<Bytes, RecordError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| malformed("cut short"))?;
        let taken = self.bytes.slice(self.at..end);
        self.at = end;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RecordError> {
        let taken = self.take(N)?;
        let mut array = [0u8; N];
        array.copy_from_slice(&taken);
        Ok(array)
    }

    fn u8(&mut self) -> Result<u8, RecordError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, RecordError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, RecordError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn len(&mut self) -> Result<usize, RecordError> {
        usize::try_from(self.u32()?).map_err(|_| malformed("a length too large"))
    }

    /// A count of things each at least `least` bytes long, checked against the bytes left
    /// (so what is allocated for them is bounded by the input's size).
    fn count(&mut self, least: usize) -> Result<usize, RecordError> {
        let count = self.len()?;
        let left = self.bytes.len() - self.at;
        if count > left / least {
            return Err(malformed("a count larger than the bytes left"));
        }
        Ok(count)
    }

    fn time(&mut self) -> Result<SystemTime, RecordError> {
        UNIX_EPOCH
            .checked_add(Duration::from_millis(self.u64()?))
            .ok_or_else(|| malformed("a time out of range"))
    }

    fn bytes(&mut self) -> Result<Bytes, RecordError> {
        let len = self.len()?;
        self.take(len)
    }

    fn text(&mut self, len: usize) -> Result<String, RecordError> {
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| malformed("a name that is not UTF-8"))
    }

    fn name(&mut self) -> Result<Name, RecordError> {
        let len = self.len()?;
        Ok(Cow::Owned(self.text(len)?))
    }

    fn optional(&mut self) -> Result<Option<String>, RecordError> {
        let len = self.u32()?;
        if len == NONE {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| malformed("a length too large"))?;
        self.text(len).map(Some)
    }
}

#[cfg(test)]
mod tests;
