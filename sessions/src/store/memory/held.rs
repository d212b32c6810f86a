//! What a `MemoryStore` entry holds: the record itself, or (in a compact store) the record's
//! field bytes packed into one buffer beside a [`Shape`] that every session of the same layout
//! shares.
//!
//! A packed entry loads without decoding anything: the loaded record's fields are slices of the
//! entry's buffer (no copy), its names come from the shared shape (no copy for names a session
//! type gave), and its slots share the entry's check bits, so what one request learned about
//! the bytes (see `slot_check`) the next request of the same session knows.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

use crate::errors::RecordError;
use crate::errors::StoreError;
use crate::record::{Name, Record, Slot};
use crate::slot_check::{CheckBits, SlotCheck};

/// How many distinct shapes a store keeps for sharing; past that, an entry keeps its own.
const MAX_SHAPES: usize = 1024;

/// A stored session's data.
pub(super) enum Held {
    /// The record, shared with every request that loads it: a load copies and decodes nothing.
    Record(Record),
    /// The record packed: about half the memory of [`Held::Record`], for a little work per load
    /// and a repack per save.
    Packed(Packed),
}

impl Held {
    /// Holds `record` as the store is configured to; `shape` is the layout the session had
    /// before (most saves keep it).
    pub(super) fn new(
        record: Record,
        packed: bool,
        shapes: &Shapes,
        shape: Option<&Arc<Shape>>,
    ) -> Result<Held, StoreError> {
        if packed {
            Ok(Held::Packed(Packed::pack(&record, shapes, shape)?))
        } else {
            Ok(Held::Record(record))
        }
    }

    /// The record, taken out (a packed one unpacked): the caller puts one back.
    pub(super) fn take_record(&mut self) -> Result<Record, StoreError> {
        match self {
            Held::Record(record) => Ok(std::mem::take(record)),
            Held::Packed(packed) => Ok(packed.unpack()?),
        }
    }

    /// The layout of a packed record.
    pub(super) fn shape(&self) -> Option<&Arc<Shape>> {
        match self {
            Held::Record(_) => None,
            Held::Packed(packed) => Some(&packed.shape),
        }
    }

    /// The record (a shared copy, or unpacked).
    pub(super) fn record(&self) -> Result<Record, RecordError> {
        match self {
            Held::Record(record) => Ok(record.clone()),
            Held::Packed(packed) => packed.unpack(),
        }
    }
}

/// A record as one buffer of field bytes, its layout in a shared [`Shape`].
pub(super) struct Packed {
    shape: Arc<Shape>,
    /// Per slot, in shape order: its revision (u64 LE), then per field its length (u32 LE) and
    /// its bytes.
    bytes: Arc<[u8]>,
    /// Per slot: what is known about its field bytes, shared with every slot loaded from here.
    checks: Arc<[CheckBits]>,
}

/// The layout of a record without its field bytes: slot names, type tags, versions, formats and
/// field names, in order.
#[derive(PartialEq, Eq, Hash)]
pub(super) struct Shape {
    slots: Box<[SlotShape]>,
}

#[derive(PartialEq, Eq, Hash)]
struct SlotShape {
    name: Name,
    type_tag: Name,
    version: u32,
    format_tag: u8,
    fields: Box<[Name]>,
}

impl Shape {
    fn of(record: &Record) -> Shape {
        Shape {
            slots: record
                .slots()
                .map(|slot| {
                    let (name, type_tag) = slot.name_and_type_tag();
                    SlotShape {
                        name: name.clone(),
                        type_tag: type_tag.clone(),
                        version: slot.version(),
                        format_tag: slot.format_tag(),
                        fields: slot.field_names().cloned().collect(),
                    }
                })
                .collect(),
        }
    }

    /// Whether `record` has this layout (checked before a save's repack reuses the shape).
    fn fits(&self, record: &Record) -> bool {
        self.slots.len() == record.slots().len()
            && self.slots.iter().zip(record.slots()).all(|(shape, slot)| {
                shape.name == slot.name()
                    && shape.type_tag == slot.type_tag()
                    && shape.version == slot.version()
                    && shape.format_tag == slot.format_tag()
                    && shape.fields.len() == slot.fields().len()
                    && shape
                        .fields
                        .iter()
                        .zip(slot.field_names())
                        .all(|(a, b)| a == b)
            })
    }
}

/// The shapes of a compact store's entries, each kept once (up to [`MAX_SHAPES`]; past that a
/// new shape is not shared, which costs memory, never correctness).
#[derive(Default)]
pub(super) struct Shapes(Mutex<HashSet<Arc<Shape>>>);

impl Shapes {
    fn intern(&self, shape: Shape) -> Arc<Shape> {
        // Inserting is the only write: a poisoned lock still holds a consistent set.
        let mut set = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = set.get(&shape) {
            return found.clone();
        }
        let shape = Arc::new(shape);
        if set.len() < MAX_SHAPES {
            set.insert(shape.clone());
        }
        shape
    }
}

/// The buffer as the owner of the loaded field bytes.
struct SharedBytes(Arc<[u8]>);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

fn cut_short() -> RecordError {
    RecordError::Malformed("a compact MemoryStore entry is cut short".into())
}

impl Packed {
    /// Packs `record`; `shape` is the entry's shape before a save, reused when it still fits.
    fn pack(
        record: &Record,
        shapes: &Shapes,
        shape: Option<&Arc<Shape>>,
    ) -> Result<Packed, RecordError> {
        let shape = match shape {
            Some(shape) if shape.fits(record) => shape.clone(),
            _ => shapes.intern(Shape::of(record)),
        };
        let size = record
            .slots()
            .map(|slot| 8 + slot.fields().map(|(_, b)| 4 + b.len()).sum::<usize>())
            .sum();
        let mut bytes = Vec::with_capacity(size);
        for slot in record.slots() {
            bytes.extend_from_slice(&slot.revision().to_le_bytes());
            for (name, value) in slot.fields() {
                let length = u32::try_from(value.len()).map_err(|_| {
                    RecordError::Malformed(format!("field `{name}` is too large to hold"))
                })?;
                bytes.extend_from_slice(&length.to_le_bytes());
                bytes.extend_from_slice(value);
            }
        }
        let checks = record
            .slots()
            .map(|slot| slot.checked.bits().clone())
            .collect();
        Ok(Packed {
            shape,
            bytes: bytes.into(),
            checks,
        })
    }

    /// The record, its field bytes slices of the buffer.
    fn unpack(&self) -> Result<Record, RecordError> {
        let buffer = Bytes::from_owner(SharedBytes(self.bytes.clone()));
        let mut at: usize = 0;
        let mut take = |n: usize| -> Result<std::ops::Range<usize>, RecordError> {
            let end = at
                .checked_add(n)
                .filter(|end| *end <= buffer.len())
                .ok_or_else(cut_short)?;
            let range = at..end;
            at = end;
            Ok(range)
        };
        let mut slots = Vec::with_capacity(self.shape.slots.len());
        for (index, shape) in self.shape.slots.iter().enumerate() {
            let revision = buffer[take(8)?]
                .try_into()
                .map(u64::from_le_bytes)
                .map_err(|_| cut_short())?;
            let mut fields = Vec::with_capacity(shape.fields.len());
            for name in &shape.fields {
                let length = buffer[take(4)?]
                    .try_into()
                    .map(u32::from_le_bytes)
                    .map_err(|_| cut_short())?;
                let length = usize::try_from(length).map_err(|_| cut_short())?;
                fields.push((name.clone(), buffer.slice(take(length)?)));
            }
            let mut slot = Slot::from_parts(
                shape.name.clone(),
                shape.type_tag.clone(),
                shape.version,
                shape.format_tag,
                fields,
            )
            .with_revision(revision);
            slot.checked = SlotCheck::Shared(self.checks.clone(), index);
            slots.push(slot);
        }
        if at != buffer.len() {
            return Err(cut_short());
        }
        Ok(Record::from_distinct_slots(slots))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Format;

    fn record() -> Record {
        let mut record = Record::new();
        record.insert(
            Slot::new(
                "cart",
                2,
                Format::Json,
                vec![("n".into(), "3".into()), ("items".into(), "[]".into())],
            )
            .with_revision(7),
        );
        record.insert(Slot::new("prefs", 1, Format::Bincode, vec![]).with_revision(1));
        record
    }

    #[test]
    fn packed_records_come_back_with_their_revisions() {
        let shapes = Shapes::default();
        let held = Held::new(record(), true, &shapes, None).expect("packs");
        let back = held.record().expect("unpacks");
        assert_eq!(back, record());
        assert_eq!(
            (back.revision_of("cart"), back.revision_of("prefs")),
            (7, 1)
        );
    }

    #[test]
    fn sessions_of_one_layout_share_one_shape_and_saves_keep_it() {
        let shapes = Shapes::default();
        let (Held::Packed(a), Held::Packed(mut b)) = (
            Held::new(record(), true, &shapes, None).expect("packs"),
            Held::new(record(), true, &shapes, None).expect("packs"),
        ) else {
            panic!("a compact store packs");
        };
        assert!(Arc::ptr_eq(&a.shape, &b.shape));
        let mut changed = b.unpack().expect("unpacks");
        changed
            .slot_mut("cart")
            .expect("cart")
            .set_field("n".into(), "4".into());
        b = Packed::pack(&changed, &shapes, Some(&b.shape)).expect("packs");
        assert!(Arc::ptr_eq(&a.shape, &b.shape));
        changed
            .slot_mut("cart")
            .expect("cart")
            .set_field("coupon".into(), "null".into());
        b = Packed::pack(&changed, &shapes, Some(&b.shape)).expect("packs");
        assert!(!Arc::ptr_eq(&a.shape, &b.shape), "a new field: a new shape");
        assert_eq!(b.unpack().expect("unpacks"), changed);
    }

    #[test]
    fn loads_share_what_is_known_about_the_bytes_until_a_field_changes() {
        struct Cart;
        let owner = std::any::TypeId::of::<Cart>();
        let shapes = Shapes::default();
        let held = Held::new(record(), true, &shapes, None).expect("packs");
        let first = held.record().expect("unpacks");
        first
            .slot("cart")
            .expect("cart")
            .checked
            .set_valid(owner, 1);
        let mut second = held.record().expect("unpacks");
        assert!(
            second
                .slot("cart")
                .expect("cart")
                .checked
                .is_valid(owner, 1)
        );
        let cart = second.slot_mut("cart").expect("cart");
        cart.set_field("items".into(), "[1]".into());
        assert!(!cart.checked.is_valid(owner, 1));
        assert!(
            held.record()
                .expect("unpacks")
                .slot("cart")
                .expect("cart")
                .checked
                .is_valid(owner, 1)
        );
    }

    #[test]
    fn a_cut_buffer_is_an_error_not_a_panic() {
        let shapes = Shapes::default();
        let Held::Packed(packed) = Held::new(record(), true, &shapes, None).expect("packs") else {
            panic!("a compact store packs");
        };
        for cut in 0..packed.bytes.len() {
            let broken = Packed {
                shape: packed.shape.clone(),
                bytes: packed.bytes[..cut].into(),
                checks: packed.checks.clone(),
            };
            assert!(broken.unpack().is_err(), "cut at {cut} accepted");
        }
        let mut longer = packed.bytes.to_vec();
        longer.push(0);
        let longer = Packed {
            shape: packed.shape.clone(),
            bytes: longer.into(),
            checks: packed.checks.clone(),
        };
        assert!(longer.unpack().is_err());
    }
}
