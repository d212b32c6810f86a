//! The stored form of one session: a [`Record`] of [`Slot`]s, and the [`Changeset`] a save carries.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;

use crate::codec::Format;
use crate::error::{ApplyError, RecordError};
use crate::slot_check::SlotCheck;

/// The name of a stored field or slot: borrowed from a session type, or owned when read from a store.
///
/// ```
/// use std::borrow::Cow;
/// use sessions::Name;
/// let borrowed: Name = "cart".into();
/// let owned: Name = String::from("cart").into();
/// assert_eq!(borrowed, owned);
/// assert!(matches!(borrowed, Cow::Borrowed(_)) && matches!(owned, Cow::Owned(_)));
/// ```
pub type Name = Cow<'static, str>;

/// The stored form of one session type's value: its type tag, version, field format and each
/// field encoded on its own.
///
/// ```
/// use sessions::{Format, Slot};
/// let slot = Slot::new("cart", 2, Format::Json, vec![("items".into(), "[]".into())]);
/// assert_eq!(slot.version(), 2);
/// assert_eq!(slot.field("items").map(|b| &b[..]), Some(&b"[]"[..]));
/// ```
#[derive(Clone)]
pub struct Slot {
    name: Name,
    type_tag: Name,
    version: u32,
    format_tag: u8,
    fields: Vec<(Name, Bytes)>,
    /// The slot's exact text in the JSON record it was read from, written back while unchanged.
    raw_json: Option<Bytes>,
    /// How many saves changed this slot since it was first stored (0: never stored). Kept by
    /// the stores, checked by optimistic concurrency; not part of the encoded record.
    revision: u64,
    /// What is known about the field bytes (see [`SlotCheck`]).
    pub(crate) checked: SlotCheck,
}

impl Slot {
    /// A slot named after its type.
    ///
    /// ```
    /// use sessions::{Format, Slot};
    /// let slot = Slot::new("cart", 1, Format::Json, vec![("n".into(), "3".into())]);
    /// assert_eq!(slot.name(), "cart");
    /// assert_eq!(slot.type_tag(), "cart");
    /// assert_eq!(slot.format(), Some(Format::Json));
    /// ```
    pub fn new(
        name: impl Into<Name>,
        version: u32,
        format: Format,
        fields: Vec<(Name, Bytes)>,
    ) -> Self {
        let name = name.into();
        Self {
            type_tag: name.clone(),
            name,
            version,
            format_tag: format.tag(),
            fields,
            raw_json: None,
            revision: 0,
            checked: SlotCheck::default(),
        }
    }

    /// A slot as read from a store, whose type tag and format tag are taken as found.
    ///
    /// ```
    /// use sessions::Slot;
    /// let slot = Slot::from_parts("cart".into(), "cart".into(), 1, 9, vec![]);
    /// assert_eq!(slot.format(), None); // tag 9 is no format this build knows
    /// ```
    pub fn from_parts(
        name: Name,
        type_tag: Name,
        version: u32,
        format_tag: u8,
        fields: Vec<(Name, Bytes)>,
    ) -> Self {
        Self {
            name,
            type_tag,
            version,
            format_tag,
            fields,
            raw_json: None,
            revision: 0,
            checked: SlotCheck::default(),
        }
    }

    pub(crate) fn with_raw_json(mut self, raw: Bytes) -> Self {
        self.raw_json = Some(raw);
        self
    }

    pub(crate) fn raw_json(&self) -> Option<&Bytes> {
        self.raw_json.as_ref()
    }

    /// The key the slot is stored under (the session type's name).
    ///
    /// ```
    /// use sessions::Slot;
    /// let slot = Slot::from_parts("cart".into(), "cart".into(), 1, 1, vec![]);
    /// assert_eq!(slot.name(), "cart");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The stored `__type__`; equal to [`Slot::name`] unless the data was tampered with.
    ///
    /// ```
    /// use sessions::Slot;
    /// let slot = Slot::from_parts("cart".into(), "admin".into(), 1, 1, vec![]);
    /// assert_ne!(slot.type_tag(), slot.name()); // tampered: stored under `cart`, claims to be `admin`
    /// ```
    pub fn type_tag(&self) -> &str {
        &self.type_tag
    }

    /// The stored `__v__`.
    ///
    /// ```
    /// use sessions::{Format, Slot};
    /// assert_eq!(Slot::new("cart", 3, Format::Json, vec![]).version(), 3);
    /// ```
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The format the fields are encoded in, if this build supports it.
    ///
    /// ```
    /// use sessions::{Format, Slot};
    /// assert_eq!(Slot::new("cart", 1, Format::Json, vec![]).format(), Some(Format::Json));
    /// assert_eq!(Slot::from_parts("cart".into(), "cart".into(), 1, 200, vec![]).format(), None);
    /// ```
    pub fn format(&self) -> Option<Format> {
        Format::from_tag(self.format_tag)
    }

    /// The stored format tag.
    ///
    /// ```
    /// use sessions::Slot;
    /// let slot = Slot::from_parts("cart".into(), "cart".into(), 1, 200, vec![]);
    /// assert_eq!(slot.format_tag(), 200);
    /// ```
    pub fn format_tag(&self) -> u8 {
        self.format_tag
    }

    /// How many saves changed this slot since it was first stored; 0 for a slot that was never
    /// stored. Stores keep it (every save that changes the slot adds one); optimistic
    /// concurrency compares it. It is not part of the encoded record.
    ///
    /// ```
    /// use sessions::{Format, Slot};
    /// let slot = Slot::new("cart", 1, Format::Json, vec![]);
    /// assert_eq!(slot.revision(), 0);
    /// assert_eq!(slot.with_revision(7).revision(), 7);
    /// ```
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The slot with its revision set (stores set what they read).
    ///
    /// ```
    /// use sessions::{Format, Slot};
    /// let slot = Slot::new("cart", 1, Format::Json, vec![]).with_revision(3);
    /// assert_eq!(slot.revision(), 3);
    /// ```
    pub fn with_revision(mut self, revision: u64) -> Self {
        self.revision = revision;
        self
    }

    /// One field's encoded bytes.
    ///
    /// ```
    /// use sessions::{Format, Slot};
    /// let slot = Slot::new("cart", 1, Format::Json, vec![("n".into(), "3".into())]);
    /// assert_eq!(&slot.field("n").unwrap()[..], b"3");
    /// assert!(slot.field("missing").is_none());
    /// ```
    pub fn field(&self, name: &str) -> Option<&Bytes> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, bytes)| bytes)
    }

    /// The stored fields in stored order.
    ///
    /// ```
    /// use sessions::{Format, Slot};
    /// let slot = Slot::new("cart", 1, Format::Json, vec![("b".into(), "1".into()), ("a".into(), "2".into())]);
    /// let names: Vec<&str> = slot.fields().map(|(name, _)| name).collect();
    /// assert_eq!(names, ["b", "a"]);
    /// ```
    pub fn fields(&self) -> impl ExactSizeIterator<Item = (&str, &Bytes)> {
        self.fields.iter().map(|(name, bytes)| (&**name, bytes))
    }

    /// Sets one field's bytes.
    ///
    /// ```
    /// use sessions::{Format, Slot};
    /// let mut slot = Slot::new("cart", 1, Format::Json, vec![("n".into(), "1".into())]);
    /// slot.set_field("n".into(), "2".into());      // replaces
    /// slot.set_field("coupon".into(), "null".into()); // appends
    /// assert_eq!(&slot.field("n").unwrap()[..], b"2");
    /// assert_eq!(slot.fields().len(), 2);
    /// ```
    pub fn set_field(&mut self, name: Name, bytes: Bytes) {
        self.raw_json = None;
        match self.fields.iter().position(|(n, _)| *n == name) {
            Some(index) => {
                self.fields[index].1 = bytes;
                self.checked.field_changed(index);
            }
            None => {
                // Records live long in stores (a MemoryStore holds thousands): no spare room.
                self.fields.reserve_exact(1);
                self.fields.push((name, bytes));
            }
        }
    }
}

impl PartialEq for Slot {
    /// Slots are equal when they store the same thing; how a record's text was laid out and the
    /// slot's revision are ignored.
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.type_tag == other.type_tag
            && self.version == other.version
            && self.format_tag == other.format_tag
            && self.fields == other.fields
    }
}

impl Eq for Slot {}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("name", &self.name)
            .field("type_tag", &self.type_tag)
            .field("version", &self.version)
            .field("format_tag", &self.format_tag)
            .field("revision", &self.revision)
            .field(
                "fields",
                &self.fields.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The stored form of one whole session: its slots, one per session type.
///
/// ```
/// use sessions::{Format, Record, Slot};
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
    slots: Option<Arc<Vec<Slot>>>,
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

impl Record {
    fn all(&self) -> &[Slot] {
        self.slots.as_deref().map_or(&[], Vec::as_slice)
    }

    fn all_mut(&mut self) -> &mut Vec<Slot> {
        Arc::make_mut(self.slots.get_or_insert_with(Default::default))
    }

    /// An empty record.
    ///
    /// ```
    /// use sessions::Record;
    /// let record = Record::new();
    /// assert!(record.is_empty());
    /// assert_eq!(record.slots().len(), 0);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the record holds no slot.
    ///
    /// ```
    /// use sessions::{Format, Record, Slot};
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
    /// use sessions::{Format, Record, Slot};
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
    /// use sessions::{Format, Record, Slot};
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
    /// use sessions::{Format, Record, Slot};
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
    /// use sessions::{Format, Record, Slot};
    /// let mut record = Record::new();
    /// assert!(record.insert(Slot::new("cart", 1, Format::Json, vec![])).is_none());
    /// let replaced = record.insert(Slot::new("cart", 2, Format::Json, vec![])).unwrap();
    /// assert_eq!(replaced.version(), 1);
    /// assert_eq!(record.slot("cart").unwrap().version(), 2);
    /// assert_eq!(record.slots().len(), 1);
    /// ```
    pub fn insert(&mut self, slot: Slot) -> Option<Slot> {
        let slots = self.all_mut();
        match slots.iter_mut().find(|s| s.name == slot.name) {
            Some(existing) => Some(std::mem::replace(existing, slot)),
            None => {
                // Records live long in stores (a MemoryStore holds thousands): no spare room.
                slots.reserve_exact(1);
                slots.push(slot);
                None
            }
        }
    }

    /// Removes the slot stored under `name`.
    ///
    /// ```
    /// use sessions::{Format, Record, Slot};
    /// let mut record = Record::new();
    /// record.insert(Slot::new("cart", 1, Format::Json, vec![]));
    /// assert_eq!(record.remove("cart").unwrap().name(), "cart");
    /// assert!(record.is_empty());
    /// assert!(record.remove("cart").is_none());
    /// ```
    pub fn remove(&mut self, name: &str) -> Option<Slot> {
        let index = self.all().iter().position(|slot| slot.name == name)?;
        Some(self.all_mut().remove(index))
    }

    /// Applies a changeset: whole slots replaced or removed, single fields updated. A field
    /// update whose slot is gone or was rewritten at another version or format is refused, and
    /// the record is left as it was.
    ///
    /// ```
    /// use sessions::{Changeset, Format, Record, Slot, SlotChange};
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
                    let revision = self.revision_of(slot.name()) + 1;
                    self.insert(slot.clone().with_revision(revision));
                }
                SlotChange::Fields { slot, fields, .. } => {
                    if let Some(stored) = self.slot_mut(slot) {
                        for (name, bytes) in fields {
                            stored.set_field(name.clone(), bytes.clone());
                        }
                        stored.revision += 1;
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
    /// use sessions::{Format, Record, Slot};
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
    /// use sessions::{Format, Record, Slot};
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
    /// use sessions::{Changeset, Conflict, Format, Record, Slot};
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
                return Err(ApplyError::Conflict(crate::error::Conflict {
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
    /// use sessions::{ApplyError, Format, Record, Slot, SlotChange};
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
        let SlotChange::Fields {
            slot,
            version,
            format,
            ..
        } = change
        else {
            return Ok(());
        };
        let stored = self.slot(slot).ok_or_else(|| ApplyError::SlotMissing {
            slot: slot.to_string(),
        })?;
        if stored.version != *version || stored.format_tag != format.tag() {
            return Err(ApplyError::SlotChanged {
                slot: slot.to_string(),
                expected_version: *version,
                expected_format: *format,
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
    /// use sessions::{Format, Record, Slot};
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
            Format::Json if all_json => crate::codec::json::write_record(self),
            #[cfg(feature = "bincode")]
            _ => crate::codec::bincode::write_record(self),
            #[cfg(not(feature = "bincode"))]
            _ => Err(RecordError::BincodeDisabled),
        }
    }

    /// Decodes a record written by [`Record::to_bytes`] in either format (the first byte tells which).
    ///
    /// ```
    /// use sessions::{Format, Record};
    /// let record = Record::from_bytes(br#"{"cart":{"__type__":"cart","__v__":1,"n":3}}"#).unwrap();
    /// let slot = record.slot("cart").unwrap();
    /// assert_eq!((slot.version(), slot.format()), (1, Some(Format::Json)));
    /// assert_eq!(&slot.field("n").unwrap()[..], b"3");
    /// assert!(Record::from_bytes(b"not a record").is_err());
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<Record, RecordError> {
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => crate::codec::json::read_record(bytes),
            Some(0) if bytes.starts_with(&crate::codec::BINARY_MARKER) => {
                #[cfg(feature = "bincode")]
                return crate::codec::bincode::read_record(
                    &bytes[crate::codec::BINARY_MARKER.len()..],
                );
                #[cfg(not(feature = "bincode"))]
                return Err(RecordError::BincodeDisabled);
            }
            _ => Err(RecordError::UnknownMarker),
        }
    }
}

/// What one save changes in one slot.
///
/// ```
/// use sessions::{Format, Slot, SlotChange};
/// let put = SlotChange::Put(Slot::new("cart", 1, Format::Json, vec![]));
/// let remove = SlotChange::Remove { slot: "cart".into() };
/// assert_ne!(put, remove);
/// assert_eq!(put.slot_name(), remove.slot_name());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlotChange {
    /// Write the whole slot (new, migrated, replaced, or re-encoded in another format).
    Put(Slot),
    /// Update these fields of a stored slot that has this version and format.
    Fields {
        /// The slot's key.
        slot: Name,
        /// The version the fields were encoded for.
        version: u32,
        /// The format the fields are encoded in.
        format: Format,
        /// The changed fields.
        fields: Vec<(Name, Bytes)>,
    },
    /// Remove the slot.
    Remove {
        /// The slot's key.
        slot: Name,
    },
}

impl SlotChange {
    /// The key of the slot this change is about.
    ///
    /// ```
    /// use sessions::{Format, SlotChange};
    /// let change = SlotChange::Fields {
    ///     slot: "prefs".into(), version: 1, format: Format::Json, fields: vec![("dark".into(), "true".into())],
    /// };
    /// assert_eq!(change.slot_name(), "prefs");
    /// ```
    pub fn slot_name(&self) -> &str {
        match self {
            SlotChange::Put(slot) => slot.name(),
            SlotChange::Fields { slot, .. } | SlotChange::Remove { slot } => slot,
        }
    }
}

/// Everything one save changes: at most one [`SlotChange`] per slot.
///
/// ```
/// use sessions::{Changeset, SlotChange};
/// let mut changes = Changeset::new();
/// assert!(changes.is_empty());
/// changes.push(SlotChange::Remove { slot: "cart".into() });
/// assert_eq!(changes.len(), 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changeset {
    changes: Vec<SlotChange>,
    /// Optimistic concurrency: the slot revisions the changes were made against.
    expected: Vec<(Name, u64)>,
}

impl Changeset {
    /// An empty changeset.
    ///
    /// ```
    /// use sessions::Changeset;
    /// let changes = Changeset::new();
    /// assert!(changes.is_empty());
    /// assert_eq!(changes.len(), 0);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a change; a later change to the same slot is merged into the earlier one when it
    /// updates fields of the same version and format, and replaces it otherwise.
    ///
    /// ```
    /// use sessions::{Changeset, Format, SlotChange};
    /// let update = |field: &'static str| SlotChange::Fields {
    ///     slot: "cart".into(), version: 1, format: Format::Json, fields: vec![(field.into(), "1".into())],
    /// };
    /// let mut changes = Changeset::new();
    /// changes.push(update("a"));
    /// changes.push(update("b")); // same slot, version and format: merged
    /// assert_eq!(changes.len(), 1);
    /// let Some(SlotChange::Fields { fields, .. }) = changes.iter().next() else { panic!() };
    /// assert_eq!(fields.len(), 2);
    /// changes.push(SlotChange::Remove { slot: "cart".into() }); // replaces
    /// assert!(matches!(changes.iter().next(), Some(SlotChange::Remove { .. })));
    /// ```
    pub fn push(&mut self, change: SlotChange) {
        let Some(index) = self
            .changes
            .iter()
            .position(|c| c.slot_name() == change.slot_name())
        else {
            self.changes.push(change);
            return;
        };
        let earlier = &mut self.changes[index];
        // Field updates merge only into a change of the same version and format: bytes of
        // another format or version would be unreadable there. Anything else replaces.
        match (earlier, change) {
            (
                SlotChange::Put(slot),
                SlotChange::Fields {
                    version,
                    format,
                    fields,
                    ..
                },
            ) if slot.version == version && slot.format_tag == format.tag() => {
                for (name, bytes) in fields {
                    slot.set_field(name, bytes);
                }
            }
            (
                SlotChange::Fields {
                    version: earlier_version,
                    format: earlier_format,
                    fields: earlier_fields,
                    ..
                },
                SlotChange::Fields {
                    version,
                    format,
                    fields,
                    ..
                },
            ) if *earlier_version == version && *earlier_format == format => {
                for (name, bytes) in fields {
                    match earlier_fields.iter_mut().find(|(n, _)| *n == name) {
                        Some((_, slot)) => *slot = bytes,
                        None => earlier_fields.push((name, bytes)),
                    }
                }
            }
            (earlier, change) => *earlier = change,
        }
    }

    /// Optimistic concurrency: the save must fail with a [`Conflict`](crate::Conflict), writing
    /// nothing, unless slot `slot` is stored at `revision` (0: the slot must be absent). A later
    /// call for the same slot replaces the earlier one.
    ///
    /// ```
    /// use sessions::Changeset;
    /// let mut changes = Changeset::new();
    /// changes.expect("cart", 3);
    /// changes.expect("cart", 4);
    /// assert_eq!(changes.expected().collect::<Vec<_>>(), [("cart", 4)]);
    /// assert!(changes.is_empty()); // an expectation alone changes nothing
    /// ```
    pub fn expect(&mut self, slot: impl Into<Name>, revision: u64) {
        let slot = slot.into();
        match self.expected.iter_mut().find(|(name, _)| *name == slot) {
            Some((_, expected)) => *expected = revision,
            None => self.expected.push((slot, revision)),
        }
    }

    /// Whether the save expects slot `slot` at some revision.
    ///
    /// ```
    /// use sessions::Changeset;
    /// let mut changes = Changeset::new();
    /// changes.expect("cart", 0);
    /// assert!(changes.expects("cart") && !changes.expects("prefs"));
    /// ```
    pub fn expects(&self, slot: &str) -> bool {
        self.expected.iter().any(|(name, _)| name == slot)
    }

    /// The slot revisions the save expects, as `(slot, revision)`.
    ///
    /// ```
    /// use sessions::Changeset;
    /// let mut changes = Changeset::new();
    /// changes.expect("cart", 2);
    /// changes.expect("prefs", 0);
    /// assert_eq!(changes.expected().collect::<Vec<_>>(), [("cart", 2), ("prefs", 0)]);
    /// ```
    pub fn expected(&self) -> impl ExactSizeIterator<Item = (&str, u64)> {
        self.expected
            .iter()
            .map(|(name, revision)| (&**name, *revision))
    }

    /// Whether nothing changes.
    ///
    /// ```
    /// use sessions::{Changeset, SlotChange};
    /// let mut changes = Changeset::new();
    /// assert!(changes.is_empty());
    /// changes.push(SlotChange::Remove { slot: "cart".into() });
    /// assert!(!changes.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// How many slots change.
    ///
    /// ```
    /// use sessions::{Changeset, SlotChange};
    /// let mut changes = Changeset::new();
    /// changes.push(SlotChange::Remove { slot: "cart".into() });
    /// changes.push(SlotChange::Remove { slot: "prefs".into() });
    /// changes.push(SlotChange::Remove { slot: "cart".into() }); // same slot again
    /// assert_eq!(changes.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.changes.len()
    }

    /// The changes, one per slot.
    ///
    /// ```
    /// use sessions::{Changeset, SlotChange};
    /// let changes: Changeset = ["cart", "prefs"]
    ///     .into_iter()
    ///     .map(|name| SlotChange::Remove { slot: name.into() })
    ///     .collect();
    /// let names: Vec<&str> = changes.iter().map(|c| c.slot_name()).collect();
    /// assert_eq!(names, ["cart", "prefs"]);
    /// ```
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &SlotChange> {
        self.changes.iter()
    }
}

impl Changeset {
    /// Adds every change and expectation of `later` as if pushed after these.
    pub(crate) fn extend(&mut self, later: Changeset) {
        for change in later.changes {
            self.push(change);
        }
        for (slot, revision) in later.expected {
            if !self.expects(&slot) {
                self.expected.push((slot, revision));
            }
        }
    }
}

impl FromIterator<SlotChange> for Changeset {
    fn from_iter<I: IntoIterator<Item = SlotChange>>(iter: I) -> Self {
        let mut changes = Changeset::new();
        for change in iter {
            changes.push(change);
        }
        changes
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
