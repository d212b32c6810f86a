//! The stored form of one session: a [`Record`] of [`Slot`]s, and the [`Changeset`] a save carries.

#[cfg(feature = "bincode")]
mod binary;
mod changeset;
mod packed;
mod slot;
mod tson;

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;

use crate::codec::Format;
use crate::errors::{ApplyError, RecordError};

pub use changeset::{Changeset, SlotChange};
pub use slot::Slot;

/// The name of a stored field or slot: borrowed from a session type, or owned when read from a store.
///
/// ```
/// use std::borrow::Cow;
/// use sessions::store::Name;
/// let borrowed: Name = "cart".into();
/// let owned: Name = String::from("cart").into();
/// assert_eq!(borrowed, owned);
/// assert!(matches!(borrowed, Cow::Borrowed(_)) && matches!(owned, Cow::Owned(_)));
/// ```
pub type Name = Cow<'static, str>;

/// The stored form of one whole session: its slots, one per session type.
///
/// ```
/// use sessions::Format;
/// use sessions::store::{Record, Slot};
/// let mut record = Record::new();
/// record.insert(Slot::new("cart", 1, Format::Json, vec![("n".into(), "3".into())]));
/// let bytes = record.to_bytes(Format::Json).unwrap();
/// assert_eq!(&bytes[..], br#"{"cart":{"__type__":"cart","__v__":1,"n":3}}"#);
/// assert_eq!(Record::from_bytes(&bytes).unwrap(), record);
/// ```
#[derive(Clone, Default)]
pub struct Record {
    /// Shared until changed: cloning a record (out of a store, into a request) copies nothing.
    /// `None` while empty, so that an empty record (every request starts with one) allocates
    /// nothing.
    slots: Option<Arc<Slots>>,
}

/// A record's slots: most records hold one, kept in the record's own allocation.
#[derive(Clone)]
enum Slots {
    One(Slot),
    Many(Vec<Slot>),
}

impl Slots {
    fn all(&self) -> &[Slot] {
        match self {
            Slots::One(slot) => std::slice::from_ref(slot),
            Slots::Many(slots) => slots,
        }
    }

    fn all_mut(&mut self) -> &mut [Slot] {
        match self {
            Slots::One(slot) => std::slice::from_mut(slot),
            Slots::Many(slots) => slots,
        }
    }

    fn push(&mut self, slot: Slot) {
        match self {
            Slots::One(_) => {
                let Slots::One(first) = std::mem::replace(self, Slots::Many(Vec::new())) else {
                    unreachable!("matched just above")
                };
                // Records live long in stores (a MemoryStore holds thousands): no spare room.
                let mut slots = Vec::with_capacity(2);
                slots.extend([first, slot]);
                *self = Slots::Many(slots);
            }
            Slots::Many(slots) => {
                slots.reserve_exact(1);
                slots.push(slot);
            }
        }
    }
}

impl PartialEq for Record {
    fn eq(&self, other: &Self) -> bool {
        self.all() == other.all()
    }
}

impl Eq for Record {}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("slots", &self.all())
            .finish()
    }
}

/// The first bytes of a record in the binary form. No JSON text starts with a zero byte, so the
/// first byte of stored bytes tells the two forms apart.
pub(crate) const BINARY_MARKER: [u8; 4] = [0x00, b'S', b'B', 0x01];

impl Record {
    fn all(&self) -> &[Slot] {
        self.slots.as_deref().map_or(&[], Slots::all)
    }

    /// A record of `slots`, whose names are distinct (a store's own copy of a record).
    pub(crate) fn from_distinct_slots(mut slots: Vec<Slot>) -> Record {
        let slots = match slots.len() {
            0 => None,
            1 => slots.pop().map(Slots::One),
            _ => Some(Slots::Many(slots)),
        };
        Record {
            slots: slots.map(Arc::new),
        }
    }

    fn all_mut(&mut self) -> &mut [Slot] {
        match &mut self.slots {
            Some(slots) => Arc::make_mut(slots).all_mut(),
            None => &mut [],
        }
    }

    /// The record as a store keeps it: every slot packed (see [`Slot::detached_clone`]), and
    /// each slot's field names given to `share` (which answers the list to hold instead: an
    /// equal one other sessions hold too). Shares what needs no change.
    pub(crate) fn kept(&mut self, mut share: impl FnMut(&Arc<[Name]>) -> Arc<[Name]>) {
        let mut settled = |slot: &Slot| {
            slot.packed_names()
                .is_some_and(|names| Arc::ptr_eq(names, &share(names)))
        };
        if self.all().iter().all(&mut settled) {
            return;
        }
        for slot in self.all_mut() {
            if slot.packed_names().is_none() {
                *slot = slot.packed();
            }
            if let Some(names) = slot.packed_names() {
                let shared = share(names);
                slot.share_names(&shared);
            }
        }
    }

    /// An empty record.
    ///
    /// ```
    /// use sessions::store::Record;
    /// let record = Record::new();
    /// assert!(record.is_empty());
    /// assert_eq!(record.slots().len(), 0);
    /// ```
    pub const fn new() -> Self {
        Self { slots: None }
    }

    /// Whether the record holds no slot.
    ///
    /// ```
    /// use sessions::Format;
    /// use sessions::store::{Record, Slot};
    /// let mut record = Record::new();
    /// assert!(record.is_empty());
    /// record.insert(Slot::new("cart", 1, Format::Json, vec![]));
    /// assert!(!record.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.all().is_empty()
    }

    /// The slot stored under `name`.
    ///
    /// ```
    /// use sessions::Format;
    /// use sessions::store::{Record, Slot};
    /// let mut record = Record::new();
    /// record.insert(Slot::new("cart", 2, Format::Json, vec![]));
    /// assert_eq!(record.slot("cart").unwrap().version(), 2);
    /// assert!(record.slot("prefs").is_none());
    /// ```
    pub fn slot(&self, name: &str) -> Option<&Slot> {
        self.all().iter().find(|slot| slot.name == name)
    }

    /// The slot stored under `name`, mutably.
    ///
    /// ```
    /// use sessions::Format;
    /// use sessions::store::{Record, Slot};
    /// let mut record = Record::new();
    /// record.insert(Slot::new("cart", 1, Format::Json, vec![("n".into(), "1".into())]));
    /// record.slot_mut("cart").unwrap().set_field("n".into(), "5".into());
    /// assert_eq!(&record.slot("cart").unwrap().field("n").unwrap()[..], b"5");
    /// assert!(record.slot_mut("prefs").is_none());
    /// ```
    pub fn slot_mut(&mut self, name: &str) -> Option<&mut Slot> {
        if !self.all().iter().any(|slot| slot.name == name) {
            return None;
        }
        self.all_mut().iter_mut().find(|slot| slot.name == name)
    }

    /// All slots, in stored order.
    ///
    /// ```
    /// use sessions::Format;
    /// use sessions::store::{Record, Slot};
    /// let mut record = Record::new();
    /// record.insert(Slot::new("cart", 1, Format::Json, vec![]));
    /// record.insert(Slot::new("account", 1, Format::Json, vec![]));
    /// let names: Vec<&str> = record.slots().map(|slot| slot.name()).collect();
    /// assert_eq!(names, ["cart", "account"]);
    /// ```
    pub fn slots(&self) -> impl ExactSizeIterator<Item = &Slot> {
        self.all().iter()
    }

    /// Inserts a slot, replacing one of the same name; returns the replaced one.
    ///
    /// ```
    /// use sessions::Format;
    /// use sessions::store::{Record, Slot};
    /// let mut record = Record::new();
    /// assert!(record.insert(Slot::new("cart", 1, Format::Json, vec![])).is_none());
    /// let replaced = record.insert(Slot::new("cart", 2, Format::Json, vec![])).unwrap();
    /// assert_eq!(replaced.version(), 1);
    /// assert_eq!(record.slot("cart").unwrap().version(), 2);
    /// assert_eq!(record.slots().len(), 1);
    /// ```
    pub fn insert(&mut self, slot: Slot) -> Option<Slot> {
        if let Some(existing) = self.all_mut().iter_mut().find(|s| s.name == slot.name) {
            return Some(std::mem::replace(existing, slot));
        }
        match &mut self.slots {
            Some(slots) => Arc::make_mut(slots).push(slot),
            None => self.slots = Some(Arc::new(Slots::One(slot))),
        }
        None
    }

    /// Removes the slot stored under `name`.
    ///
    /// ```
    /// use sessions::Format;
    /// use sessions::store::{Record, Slot};
    /// let mut record = Record::new();
    /// record.insert(Slot::new("cart", 1, Format::Json, vec![]));
    /// assert_eq!(record.remove("cart").unwrap().name(), "cart");
    /// assert!(record.is_empty());
    /// assert!(record.remove("cart").is_none());
    /// ```
    pub fn remove(&mut self, name: &str) -> Option<Slot> {
        let index = self.all().iter().position(|slot| slot.name == name)?;
        if self.all().len() == 1 {
            // The only slot: the record is empty now.
            return match Arc::try_unwrap(self.slots.take()?) {
                Ok(Slots::One(slot)) => Some(slot),
                Ok(Slots::Many(mut slots)) => slots.pop(),
                Err(shared) => shared.all().first().cloned(),
            };
        }
        match Arc::make_mut(self.slots.as_mut()?) {
            Slots::Many(slots) => Some(slots.remove(index)),
            Slots::One(_) => None,
        }
    }

    /// Applies a changeset: whole slots replaced or removed, rewrites merged (see
    /// [`SlotChange::Rewrite`]), single fields updated. A change that does not fit the record
    /// as it is (a field update whose slot is gone or was rewritten at another version or
    /// format, an expected revision that does not hold) is refused, and the record is left as
    /// it was. Every slot a change writes moves on one revision.
    ///
    /// ```
    /// use sessions::Format;
    /// use sessions::store::{Changeset, Record, Slot, SlotChange};
    /// let mut record = Record::new();
    /// record.insert(Slot::new("cart", 1, Format::Json, vec![("a".into(), "1".into()), ("b".into(), "2".into())]));
    /// let mut changes = Changeset::new();
    /// changes.push(SlotChange::Fields {
    ///     slot: "cart".into(), version: 1, format: Format::Json,
    ///     fields: vec![("b".into(), "5".into())],
    /// });
    /// record.apply(&changes).unwrap();
    /// assert_eq!(&record.slot("cart").unwrap().field("b").unwrap()[..], b"5");
    /// assert_eq!(&record.slot("cart").unwrap().field("a").unwrap()[..], b"1");
    /// ```
    pub fn apply(&mut self, changes: &Changeset) -> Result<(), ApplyError> {
        self.check_expected(changes)?;
        for change in changes.iter() {
            self.check(change)?;
        }
        for change in changes.iter() {
            match change {
                SlotChange::Put(slot) => {
                    // A load refuses a revision at u64::MAX: this never saturates but on
                    // forged data, and then the next load refuses it (never a wrap to 0).
                    let revision = self.revision_of(slot.name()).saturating_add(1);
                    self.insert(slot.detached_clone().with_revision(revision));
                }
                SlotChange::Rewrite {
                    slot,
                    base,
                    changed,
                } => {
                    if self.revision_of(slot.name()) == *base {
                        let revision = base.saturating_add(1);
                        self.insert(slot.detached_clone().with_revision(revision));
                    } else if !changed.is_empty()
                        && let Some(stored) = self.slot_mut(slot.name())
                    {
                        // Another request wrote the slot first, in this version and format
                        // (`check` made sure): only this request's own changes go on top.
                        let fields: Vec<(&Name, &[u8])> = changed
                            .iter()
                            .filter_map(|index| slot.field_at(index))
                            .collect();
                        stored.set_fields(&fields);
                        stored.revision = stored.revision.saturating_add(1);
                    }
                }
                SlotChange::Fields { slot, fields, .. } => {
                    if let Some(stored) = self.slot_mut(slot) {
                        let fields: Vec<(&Name, &[u8])> = fields
                            .iter()
                            .map(|(name, bytes)| (name, &bytes[..]))
                            .collect();
                        stored.set_fields(&fields);
                        stored.revision = stored.revision.saturating_add(1);
                    }
                }
                SlotChange::Remove { slot } => {
                    self.remove(slot);
                }
            }
        }
        Ok(())
    }

    /// The revision of the slot stored under `name`; 0 when there is none.
    ///
    /// ```
    /// use sessions::Format;
    /// use sessions::store::{Record, Slot};
    /// let mut record = Record::new();
    /// record.insert(Slot::new("cart", 1, Format::Json, vec![]).with_revision(4));
    /// assert_eq!(record.revision_of("cart"), 4);
    /// assert_eq!(record.revision_of("prefs"), 0);
    /// ```
    pub fn revision_of(&self, name: &str) -> u64 {
        self.slot(name).map_or(0, Slot::revision)
    }

    /// The record as a store files it on create: a slot that was never stored (revision 0)
    /// gets revision 1, so that a stored slot never looks absent to optimistic concurrency.
    ///
    /// ```
    /// use sessions::Format;
    /// use sessions::store::{Record, Slot};
    /// let mut record = Record::new();
    /// record.insert(Slot::new("cart", 1, Format::Json, vec![]));
    /// record.insert(Slot::new("prefs", 1, Format::Json, vec![]).with_revision(5));
    /// let filed = record.stored_at_least_once();
    /// assert_eq!((filed.revision_of("cart"), filed.revision_of("prefs")), (1, 5));
    /// ```
    pub fn stored_at_least_once(&self) -> Record {
        if self.all().iter().all(|slot| slot.revision > 0) {
            return self.clone();
        }
        let mut record = self.clone();
        for slot in record.all_mut() {
            slot.revision = slot.revision.max(1);
        }
        record
    }

    /// Whether every revision `changes` expects ([`Changeset::expect`]) is the stored one.
    ///
    /// ```
    /// use sessions::Format;
    /// use sessions::store::{Changeset, Record, Slot};
    /// use sessions::error::Conflict;
    /// let mut record = Record::new();
    /// record.insert(Slot::new("cart", 1, Format::Json, vec![]).with_revision(2));
    /// let mut changes = Changeset::new();
    /// changes.expect("cart", 2);
    /// assert!(record.check_expected(&changes).is_ok());
    /// changes.expect("cart", 1);
    /// let err = record.check_expected(&changes).unwrap_err();
    /// assert_eq!(err, Conflict { slot: "cart".into(), expected: 1, stored: 2 }.into());
    /// ```
    pub fn check_expected(&self, changes: &Changeset) -> Result<(), ApplyError> {
        for (slot, expected) in changes.expected() {
            let stored = self.revision_of(slot);
            if stored != expected {
                return Err(ApplyError::Conflict(crate::errors::Conflict {
                    slot: slot.to_owned(),
                    expected,
                    stored,
                }));
            }
        }
        Ok(())
    }

    /// Whether `change` can be applied to this record as it is.
    ///
    /// ```
    /// use sessions::Format;
    /// use sessions::error::ApplyError;
    /// use sessions::store::{Record, Slot, SlotChange};
    /// let mut record = Record::new();
    /// record.insert(Slot::new("cart", 2, Format::Json, vec![]));
    /// let update = |slot: &str, version| SlotChange::Fields {
    ///     slot: slot.to_owned().into(), version, format: Format::Json, fields: vec![],
    /// };
    /// assert!(record.check(&update("cart", 2)).is_ok());
    /// assert!(matches!(record.check(&update("cart", 1)), Err(ApplyError::SlotChanged { .. })));
    /// assert!(matches!(record.check(&update("prefs", 1)), Err(ApplyError::SlotMissing { .. })));
    /// ```
    pub fn check(&self, change: &SlotChange) -> Result<(), ApplyError> {
        let (name, version, format_tag) = match change {
            SlotChange::Put(_) | SlotChange::Remove { .. } => return Ok(()),
            SlotChange::Rewrite {
                slot,
                base,
                changed,
            } => {
                if self.revision_of(slot.name()) == *base || changed.is_empty() {
                    return Ok(());
                }
                (slot.name(), slot.version, slot.format_tag)
            }
            SlotChange::Fields {
                slot,
                version,
                format,
                ..
            } => (&**slot, *version, format.tag()),
        };
        let stored = self.slot(name).ok_or_else(|| ApplyError::SlotMissing {
            slot: name.to_owned(),
        })?;
        if !stored.has_header(version, format_tag) {
            return Err(ApplyError::SlotChanged {
                slot: name.to_owned(),
                expected_version: version,
                expected_format: Format::from_tag(format_tag).unwrap_or(Format::Json),
                stored_version: stored.version,
                stored_format: stored.format_tag,
            });
        }
        Ok(())
    }

    /// Encodes the whole record. `Format::Json` writes the TSON form
    /// `{"cart":{"__type__":"cart","__v__":2,...}}` when every slot's fields are JSON, and the
    /// binary form otherwise (a slot is never transcoded). Slots read from JSON and unchanged
    /// since are written back byte for byte.
    ///
    /// ```
    /// use sessions::Format;
    /// use sessions::store::{Record, Slot};
    /// let mut record = Record::new();
    /// record.insert(Slot::new("cart", 2, Format::Json, vec![("n".into(), "1".into())]));
    /// let bytes = record.to_bytes(Format::Json).unwrap();
    /// assert_eq!(&bytes[..], br#"{"cart":{"__type__":"cart","__v__":2,"n":1}}"#);
    /// ```
    pub fn to_bytes(&self, format: Format) -> Result<Bytes, RecordError> {
        let all_json = self
            .all()
            .iter()
            .all(|slot| slot.format() == Some(Format::Json));
        match format {
            Format::Json if all_json => tson::write_record(self),
            #[cfg(feature = "bincode")]
            _ => binary::write_record(self),
            #[cfg(not(feature = "bincode"))]
            _ => Err(RecordError::BincodeDisabled),
        }
    }

    /// Decodes a record written by [`Record::to_bytes`] in either format (the first byte tells which).
    ///
    /// ```
    /// use sessions::Format;
    /// use sessions::store::Record;
    /// let record = Record::from_bytes(br#"{"cart":{"__type__":"cart","__v__":1,"n":3}}"#).unwrap();
    /// let slot = record.slot("cart").unwrap();
    /// assert_eq!((slot.version(), slot.format()), (1, Some(Format::Json)));
    /// assert_eq!(&slot.field("n").unwrap()[..], b"3");
    /// assert!(Record::from_bytes(b"not a record").is_err());
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<Record, RecordError> {
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => tson::read_record(bytes),
            Some(0) if bytes.starts_with(&BINARY_MARKER) => {
                #[cfg(feature = "bincode")]
                return binary::read_record(&bytes[BINARY_MARKER.len()..]);
                #[cfg(not(feature = "bincode"))]
                return Err(RecordError::BincodeDisabled);
            }
            _ => Err(RecordError::UnknownMarker),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-built slot cannot smuggle keys or slots into TSON text.
    #[test]
    fn json_writer_refuses_field_bytes_that_are_not_one_value() {
        for bad in [
            &b"1},\"admin\":{\"__type__\":\"admin\",\"__v__\":1,\"root\":true"[..],
            b"1, \"x\": 2",
            b"",
            b" 1",
            b"{",
        ] {
            let mut record = Record::new();
            record.insert(Slot::new(
                "cart",
                1,
                Format::Json,
                vec![("n".into(), Bytes::copy_from_slice(bad))],
            ));
            assert!(
                matches!(
                    record.to_bytes(Format::Json),
                    Err(RecordError::MalformedSlot { .. })
                ),
                "accepted {:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
