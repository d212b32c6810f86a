//! What a `MemoryStore` entry holds: the record itself, or (in a compact store) its bytes.

use crate::codec::Format;
use crate::error::RecordError;
use crate::record::{Record, Slot};
use crate::store::StoreError;

/// A stored session's data.
pub(super) enum Held {
    /// The record, shared with every request that loads it: a load copies and decodes nothing.
    Record(Record),
    /// The record encoded (`Record::to_bytes`), after the slots' revisions: about a third of the
    /// memory of [`Held::Record`]; each load decodes it.
    Packed(Box<[u8]>),
}

impl Held {
    /// Holds `record` as the store is configured to.
    pub(super) fn new(record: Record, packed: bool) -> Result<Held, StoreError> {
        if packed {
            Ok(Held::Packed(pack(&record)?))
        } else {
            Ok(Held::Record(record))
        }
    }

    /// The record (a shared copy, or decoded).
    pub(super) fn record(&self) -> Result<Record, StoreError> {
        match self {
            Held::Record(record) => Ok(record.clone()),
            Held::Packed(bytes) => Ok(unpack(bytes)?),
        }
    }
}

/// `[slot count: u32 LE][each slot's revision: u64 LE][the record's bytes]`.
fn pack(record: &Record) -> Result<Box<[u8]>, RecordError> {
    let body = record.to_bytes(Format::Json)?;
    let count = u32::try_from(record.slots().len())
        .map_err(|_| RecordError::Malformed("too many slots to hold".into()))?;
    let mut out = Vec::with_capacity(4 + 8 * record.slots().len() + body.len());
    out.extend_from_slice(&count.to_le_bytes());
    for slot in record.slots() {
        out.extend_from_slice(&slot.revision().to_le_bytes());
    }
    out.extend_from_slice(&body);
    Ok(out.into_boxed_slice())
}

fn unpack(bytes: &[u8]) -> Result<Record, RecordError> {
    let broken = || RecordError::Malformed("a compact MemoryStore entry is cut short".into());
    let (count, rest) = bytes.split_first_chunk::<4>().ok_or_else(broken)?;
    let count = usize::try_from(u32::from_le_bytes(*count)).map_err(|_| broken())?;
    let (revisions, body) = rest
        .split_at_checked(count.checked_mul(8).ok_or_else(broken)?)
        .ok_or_else(broken)?;
    let decoded = Record::from_bytes(body)?;
    if decoded.slots().len() != count {
        return Err(broken());
    }
    let mut record = Record::new();
    for (slot, revision) in decoded.slots().zip(revisions.chunks_exact(8)) {
        let revision = u64::from_le_bytes(revision.try_into().map_err(|_| broken())?);
        record.insert(Slot::clone(slot).with_revision(revision));
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_records_come_back_with_their_revisions() {
        let mut record = Record::new();
        record.insert(
            Slot::new("cart", 2, Format::Json, vec![("n".into(), "3".into())]).with_revision(7),
        );
        record.insert(Slot::new("prefs", 1, Format::Json, vec![]).with_revision(1));
        let held = Held::new(record.clone(), true).expect("packs");
        let back = held.record().expect("unpacks");
        assert_eq!(back, record);
        assert_eq!(
            (back.revision_of("cart"), back.revision_of("prefs")),
            (7, 1)
        );
    }

    #[test]
    fn cut_or_garbage_bytes_are_an_error_not_a_panic() {
        let mut record = Record::new();
        record.insert(Slot::new("cart", 1, Format::Json, vec![]).with_revision(1));
        let Ok(Held::Packed(bytes)) = Held::new(record, true) else {
            panic!("a compact store packs");
        };
        for cut in 0..bytes.len() {
            assert!(unpack(&bytes[..cut]).is_err(), "cut at {cut} accepted");
        }
        assert!(unpack(&[255, 255, 255, 255, 1]).is_err());
    }
}
