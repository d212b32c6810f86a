//! One [`Entry`] as bytes, for stores that keep a value per key (SQLite, PostgreSQL, Redis, or
//! your own): [`encode`] and [`decode`].
//!
//! The layout, every integer big-endian, every time in milliseconds since the Unix epoch:
//!
//! | bytes | what |
//! |---|---|
//! | 1 | `0xE1`: an entry, layout 1 |
//! | 8 | the entry's version |
//! | 1 | `1`: a live session, `2`: a forwarding mark |
//!
//! A live session goes on with `created_at`, `expires_at` and `last_seen` (8 bytes each), the
//! owner's name (a 4-byte length, `0xFFFFFFFF` for no owner, then UTF-8) and, with an owner, its
//! `since` (8) and agent (length-prefixed, `0xFFFFFFFF` for none), the slot count (4), and per
//! slot: its name and type tag (length-prefixed; an empty type tag means the same as
//! the name), version (4), format tag (1), revision (8), field count (4), then per field its
//! name and bytes (length-prefixed). A mark goes on with its end (8) and the 32 bytes of the
//! target key's digest.
//!
//! The first [`PREFIX_LEN`] bytes say which version an encoded entry is, so a store can compare
//! versions without decoding (the Redis store's compare-and-swap script does).

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
const NONE: u32 = u32::MAX;

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

/// Encodes an entry.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use sessions::store::{Entry, Stored, blob};
/// use sessions::Format;
/// use sessions::store::{Deadline, Record, Slot};
/// let mut record = Record::new();
/// record.insert(Slot::new("cart", 1, Format::Json, vec![("n".into(), "3".into())]).with_revision(2));
/// let deadline = Deadline { created_at: UNIX_EPOCH, expires_at: UNIX_EPOCH + Duration::from_secs(60) };
/// let entry = Entry::Live { version: 4, session: Stored::new(record, deadline) };
/// let bytes = blob::encode(&entry);
/// assert_eq!(bytes[..blob::PREFIX_LEN], blob::prefix(4));
/// assert_eq!(blob::decode(bytes.into()).unwrap(), entry);
/// ```
pub fn encode(entry: &Entry) -> Vec<u8> {
    let mut out = Vec::with_capacity(estimate(entry));
    out.extend_from_slice(&prefix(entry.version()));
    match entry {
        Entry::Live { session, .. } => {
            out.push(LIVE);
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
            out.push(MOVED);
            put_time(&mut out, *until);
            out.extend_from_slice(to.digest());
        }
    }
    out
}

/// Decodes an entry written by [`encode`]; field bytes are slices of `bytes` (nothing is
/// copied). Anything else is [`RecordError::Malformed`], never a panic.
///
/// ```
/// use sessions::store::blob;
/// assert!(blob::decode(bytes::Bytes::from_static(b"garbage")).is_err());
/// ```
pub fn decode(bytes: Bytes) -> Result<Entry, RecordError> {
    let mut reader = Reader { bytes, at: 0 };
    if reader.u8()? != MARKER {
        return Err(malformed("not a stored session entry"));
    }
    let version = reader.u64()?;
    let entry = match reader.u8()? {
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
            let count = reader.len()?;
            let mut slots = Vec::with_capacity(count.min(1024));
            for _ in 0..count {
                let name = reader.name()?;
                let tag = reader.name()?;
                let type_tag = if tag.is_empty() { name.clone() } else { tag };
                let slot_version = reader.u32()?;
                let format_tag = reader.u8()?;
                let revision = reader.u64()?;
                let fields = reader.len()?;
                let mut values = Vec::with_capacity(fields.min(1024));
                for _ in 0..fields {
                    values.push((reader.name()?, reader.bytes()?));
                }
                if slots.iter().any(|slot: &Slot| slot.name() == name) {
                    return Err(malformed("a slot is stored twice"));
                }
                slots.push(
                    Slot::from_parts(name, type_tag, slot_version, format_tag, values)
                        .with_revision(revision),
                );
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
            let digest: [u8; 32] = reader
                .take(32)?
                .as_ref()
                .try_into()
                .map_err(|_| malformed("a short key"))?;
            Entry::Moved {
                version,
                to: SessionKey::from_digest(digest),
                until,
            }
        }
        _ => return Err(malformed("an unknown entry kind")),
    };
    if reader.at != reader.bytes.len() {
        return Err(malformed("bytes after the entry"));
    }
    Ok(entry)
}

fn malformed(what: &str) -> RecordError {
    RecordError::Malformed(format!("stored entry: {what}"))
}

fn estimate(entry: &Entry) -> usize {
    match entry {
        Entry::Live { session, .. } => {
            64 + session
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
        Entry::Moved { .. } => 50,
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
mod tests {
    use super::*;

    fn entry() -> Entry {
        let mut record = Record::new();
        record.insert(
            Slot::new(
                "cart",
                2,
                crate::Format::Json,
                vec![("items".into(), Bytes::from_static(b"[1]"))],
            )
            .with_revision(3),
        );
        record.insert(Slot::from_parts(
            "x".into(),
            "tampered".into(),
            1,
            9,
            vec![("".into(), Bytes::new())],
        ));
        let mut session = Stored::new(
            record,
            Deadline {
                created_at: UNIX_EPOCH + Duration::from_millis(5),
                expires_at: UNIX_EPOCH + Duration::from_millis(90_000),
            },
        );
        session.owner = Some(Arc::new(Owner {
            name: "42".into(),
            since: UNIX_EPOCH + Duration::from_millis(7),
            agent: Some("curl".into()),
        }));
        Entry::Live {
            version: 7,
            session,
        }
    }

    #[test]
    fn round_trips_keeping_revisions_and_type_tags() {
        let entry = entry();
        let decoded = decode(encode(&entry).into()).expect("decodes");
        assert_eq!(decoded, entry);
        let Entry::Live { session, .. } = decoded else {
            panic!("live")
        };
        assert_eq!(session.record.revision_of("cart"), 3);
        assert_eq!(
            session.record.slot("x").map(Slot::type_tag),
            Some("tampered")
        );
    }

    #[test]
    fn every_cut_and_every_flipped_byte_is_an_error_or_another_entry_never_a_panic() {
        let bytes = encode(&entry());
        for cut in 0..bytes.len() {
            assert!(
                decode(Bytes::copy_from_slice(&bytes[..cut])).is_err(),
                "cut at {cut}"
            );
        }
        for at in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0xFF;
            let _ = decode(flipped.into());
        }
    }
}
