//! [`Slot`]: the stored form of one session type's value.

use std::sync::Arc;

use bytes::Bytes;

use super::Name;
use super::packed::Packed;
use crate::codec::Format;
use crate::slot_check::SlotCheck;

/// The stored form of one session type's value: its type tag, version, field format and each
/// field encoded on its own.
///
/// A slot is built field by field; a record keeps it packed (its field bytes in one buffer,
/// its field names shared: see [`Record::apply`](super::Record::apply)). Both read the same.
///
/// ```
/// use sessions::Format;
/// use sessions::store::Slot;
/// let slot = Slot::new("cart", 2, Format::Json, vec![("items".into(), "[]".into())]);
/// assert_eq!(slot.version(), 2);
/// assert_eq!(slot.field("items").map(|b| &b[..]), Some(&b"[]"[..]));
/// ```
#[derive(Clone)]
pub struct Slot {
    pub(super) name: Name,
    type_tag: Name,
    pub(super) version: u32,
    pub(super) format_tag: u8,
    fields: Fields,
    /// How many saves changed this slot since it was first stored (0: never stored). Kept by
    /// the stores, checked by optimistic concurrency; not part of the encoded record.
    pub(super) revision: u64,
    /// What is known about the field bytes (see [`SlotCheck`]).
    pub(crate) checked: SlotCheck,
}

/// What `fields()` yields at an index past the end (never: the range is the fields').
static NO_NAME: Name = Name::Borrowed("");

/// A slot's fields.
#[derive(Clone)]
enum Fields {
    /// Each field's bytes on their own, as built or as read from a store.
    Listed {
        fields: Vec<(Name, Bytes)>,
        /// The slot's exact text in the JSON record it was read from, written back while
        /// unchanged.
        raw_json: Option<Bytes>,
    },
    /// Packed, as a record keeps them.
    Packed(Packed),
}

impl Slot {
    /// A slot named after its type.
    ///
    /// ```
    /// use sessions::Format;
    /// use sessions::store::Slot;
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
            fields: Fields::Listed {
                fields,
                raw_json: None,
            },
            revision: 0,
            checked: SlotCheck::default(),
        }
    }

    /// A slot as read from a store, whose type tag and format tag are taken as found.
    ///
    /// ```
    /// use sessions::store::Slot;
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
            fields: Fields::Listed {
                fields,
                raw_json: None,
            },
            revision: 0,
            checked: SlotCheck::default(),
        }
    }

    pub(crate) fn with_raw_json(mut self, raw: Bytes) -> Self {
        if let Fields::Listed { raw_json, .. } = &mut self.fields {
            *raw_json = Some(raw);
        }
        self
    }

    /// A copy for a record to keep: its fields packed (a slot read from JSON keeps its text
    /// instead, to be written back byte for byte).
    pub(crate) fn detached_clone(&self) -> Slot {
        match &self.fields {
            Fields::Listed {
                raw_json: Some(_), ..
            } => self.clone(),
            _ => self.packed(),
        }
    }

    /// A copy with its fields packed (unchanged when it is packed already, or when the fields do
    /// not fit a packed buffer: over 4 GiB).
    pub(crate) fn packed(&self) -> Slot {
        let fields = match &self.fields {
            Fields::Listed { fields, .. } => {
                let names: Arc<[Name]> = fields.iter().map(|(name, _)| name.clone()).collect();
                match Packed::new(names, fields.iter().map(|(_, bytes)| &bytes[..])) {
                    Some(packed) => Fields::Packed(packed),
                    None => self.fields.clone(),
                }
            }
            Fields::Packed(_) => self.fields.clone(),
        };
        Slot {
            name: self.name.clone(),
            type_tag: self.type_tag.clone(),
            version: self.version,
            format_tag: self.format_tag,
            fields,
            revision: self.revision,
            checked: self.checked.clone(),
        }
    }

    /// The shared field names of a packed slot.
    pub(crate) fn packed_names(&self) -> Option<&Arc<[Name]>> {
        match &self.fields {
            Fields::Packed(packed) => Some(packed.names()),
            Fields::Listed { .. } => None,
        }
    }

    /// Makes a packed slot hold `names` (equal to its own) as its field names, so that slots of
    /// one layout share one list.
    pub(crate) fn share_names(&mut self, names: &Arc<[Name]>) {
        if let Fields::Packed(packed) = &mut self.fields {
            packed.share_names(names);
        }
    }

    pub(crate) fn raw_json(&self) -> Option<&Bytes> {
        match &self.fields {
            Fields::Listed { raw_json, .. } => raw_json.as_ref(),
            Fields::Packed(_) => None,
        }
    }

    /// How many fields.
    fn len(&self) -> usize {
        match &self.fields {
            Fields::Listed { fields, .. } => fields.len(),
            Fields::Packed(packed) => packed.len(),
        }
    }

    /// The index of the field `name`.
    pub(crate) fn position(&self, name: &str) -> Option<usize> {
        match &self.fields {
            Fields::Listed { fields, .. } => fields.iter().position(|(n, _)| n == name),
            Fields::Packed(packed) => packed.names().iter().position(|n| n == name),
        }
    }

    /// The key the slot is stored under (the session type's name).
    ///
    /// ```
    /// use sessions::store::Slot;
    /// let slot = Slot::from_parts("cart".into(), "cart".into(), 1, 1, vec![]);
    /// assert_eq!(slot.name(), "cart");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The stored `__type__`; equal to [`Slot::name`] unless the data was tampered with.
    ///
    /// ```
    /// use sessions::store::Slot;
    /// let slot = Slot::from_parts("cart".into(), "admin".into(), 1, 1, vec![]);
    /// assert_ne!(slot.type_tag(), slot.name()); // tampered: stored under `cart`, claims to be `admin`
    /// ```
    pub fn type_tag(&self) -> &str {
        &self.type_tag
    }

    /// The stored `__v__`.
    ///
    /// ```
    /// use sessions::Format;
    /// use sessions::store::Slot;
    /// assert_eq!(Slot::new("cart", 3, Format::Json, vec![]).version(), 3);
    /// ```
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The format the fields are encoded in, if this build supports it.
    ///
    /// ```
    /// use sessions::Format;
    /// use sessions::store::Slot;
    /// assert_eq!(Slot::new("cart", 1, Format::Json, vec![]).format(), Some(Format::Json));
    /// assert_eq!(Slot::from_parts("cart".into(), "cart".into(), 1, 200, vec![]).format(), None);
    /// ```
    pub fn format(&self) -> Option<Format> {
        Format::from_tag(self.format_tag)
    }

    /// The stored format tag.
    ///
    /// ```
    /// use sessions::store::Slot;
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
    /// use sessions::Format;
    /// use sessions::store::Slot;
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
    /// use sessions::Format;
    /// use sessions::store::Slot;
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
    /// use sessions::Format;
    /// use sessions::store::Slot;
    /// let slot = Slot::new("cart", 1, Format::Json, vec![("n".into(), "3".into())]);
    /// assert_eq!(slot.field("n"), Some(&b"3"[..]));
    /// assert!(slot.field("missing").is_none());
    /// ```
    pub fn field(&self, name: &str) -> Option<&[u8]> {
        self.field_at(self.position(name)?).map(|(_, bytes)| bytes)
    }

    /// The stored fields in stored order.
    ///
    /// ```
    /// use sessions::Format;
    /// use sessions::store::Slot;
    /// let slot = Slot::new("cart", 1, Format::Json, vec![("b".into(), "1".into()), ("a".into(), "2".into())]);
    /// let names: Vec<&str> = slot.fields().map(|(name, _)| name).collect();
    /// assert_eq!(names, ["b", "a"]);
    /// ```
    pub fn fields(&self) -> impl ExactSizeIterator<Item = (&str, &[u8])> {
        self.entries().map(|(name, bytes)| (&**name, bytes))
    }

    /// The fields with their names as held.
    fn entries(&self) -> impl ExactSizeIterator<Item = (&Name, &[u8])> {
        (0..self.len()).map(|index| self.field_at(index).unwrap_or((&NO_NAME, &[])))
    }

    /// The field names as held, in stored order.
    pub(crate) fn field_names(&self) -> impl ExactSizeIterator<Item = &Name> {
        self.entries().map(|(name, _)| name)
    }

    /// Sets one field's bytes; returns the field's index in stored order.
    ///
    /// ```
    /// use sessions::Format;
    /// use sessions::store::Slot;
    /// let mut slot = Slot::new("cart", 1, Format::Json, vec![("n".into(), "1".into())]);
    /// assert_eq!(slot.set_field("n".into(), "2".into()), 0);          // replaces
    /// assert_eq!(slot.set_field("coupon".into(), "null".into()), 1);  // appends
    /// assert_eq!(slot.field("n"), Some(&b"2"[..]));
    /// assert_eq!(slot.fields().len(), 2);
    /// ```
    pub fn set_field(&mut self, name: Name, bytes: Bytes) -> usize {
        match &mut self.fields {
            Fields::Listed { fields, raw_json } => {
                *raw_json = None;
                match fields.iter().position(|(n, _)| *n == name) {
                    Some(index) => {
                        fields[index].1 = bytes;
                        self.checked.field_changed(index);
                        index
                    }
                    None => {
                        // Records live long in stores (a MemoryStore holds thousands): no
                        // spare room.
                        fields.reserve_exact(1);
                        fields.push((name, bytes));
                        fields.len() - 1
                    }
                }
            }
            Fields::Packed(_) => {
                self.set_fields(&[(&name, &bytes[..])]);
                self.position(&name).unwrap_or(0)
            }
        }
    }

    /// Sets several fields' bytes (a name given twice: the last bytes) as a record keeps them:
    /// the slot is packed (again), once.
    pub(crate) fn set_fields(&mut self, changes: &[(&Name, &[u8])]) {
        if let Fields::Listed { .. } = self.fields {
            *self = self.packed();
        }
        let checked = &mut self.checked;
        if let Fields::Packed(packed) = &mut self.fields
            && let Some(next) = packed.with_changes(changes, |index| checked.field_changed(index))
        {
            *packed = next;
            return;
        }
        // Too large to pack (over 4 GiB): field by field.
        if let Fields::Packed(packed) = &self.fields {
            let fields = packed
                .names()
                .iter()
                .cloned()
                .zip(packed.values().map(Bytes::copy_from_slice))
                .collect();
            self.fields = Fields::Listed {
                fields,
                raw_json: None,
            };
        }
        for (name, bytes) in changes {
            self.set_field((*name).clone(), Bytes::copy_from_slice(bytes));
        }
    }

    /// The field at `index` in stored order, its name as held.
    pub(crate) fn field_at(&self, index: usize) -> Option<(&Name, &[u8])> {
        match &self.fields {
            Fields::Listed { fields, .. } => {
                fields.get(index).map(|(name, bytes)| (name, &bytes[..]))
            }
            Fields::Packed(packed) => Some((packed.names().get(index)?, packed.value(index)?)),
        }
    }

    /// Whether this slot holds fields encoded for `version` in `format`.
    pub(crate) fn has_header(&self, version: u32, format_tag: u8) -> bool {
        self.version == version && self.format_tag == format_tag
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
            && self.len() == other.len()
            && self.entries().eq(other.entries())
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
            .field("fields", &self.field_names().collect::<Vec<_>>())
            .finish()
    }
}
