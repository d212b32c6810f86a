//! [`Slot`]: the stored form of one session type's value.

use bytes::Bytes;

use super::Name;
use crate::codec::Format;
use crate::slot_check::SlotCheck;

/// The stored form of one session type's value: its type tag, version, field format and each
/// field encoded on its own.
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
    fields: Vec<(Name, Bytes)>,
    /// The slot's exact text in the JSON record it was read from, written back while unchanged.
    raw_json: Option<Bytes>,
    /// How many saves changed this slot since it was first stored (0: never stored). Kept by
    /// the stores, checked by optimistic concurrency; not part of the encoded record.
    pub(super) revision: u64,
    /// What is known about the field bytes (see [`SlotCheck`]).
    pub(crate) checked: SlotCheck,
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
            fields,
            raw_json: None,
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

    /// The slot's name and type tag as held (borrowed from a session type, or owned).
    pub(crate) fn name_and_type_tag(&self) -> (&Name, &Name) {
        (&self.name, &self.type_tag)
    }

    /// A copy whose small field values are copies too (see `record::detached`), for a record
    /// to keep.
    pub(crate) fn detached_clone(&self) -> Slot {
        Slot {
            name: self.name.clone(),
            type_tag: self.type_tag.clone(),
            version: self.version,
            format_tag: self.format_tag,
            fields: self
                .fields
                .iter()
                .map(|(name, bytes)| (name.clone(), super::detached(bytes)))
                .collect(),
            raw_json: self.raw_json.clone(),
            revision: self.revision,
            checked: self.checked.clone(),
        }
    }

    /// The field names as held, in stored order.
    pub(crate) fn field_names(&self) -> impl ExactSizeIterator<Item = &Name> {
        self.fields.iter().map(|(name, _)| name)
    }

    pub(crate) fn raw_json(&self) -> Option<&Bytes> {
        self.raw_json.as_ref()
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
    /// use sessions::Format;
    /// use sessions::store::Slot;
    /// let slot = Slot::new("cart", 1, Format::Json, vec![("b".into(), "1".into()), ("a".into(), "2".into())]);
    /// let names: Vec<&str> = slot.fields().map(|(name, _)| name).collect();
    /// assert_eq!(names, ["b", "a"]);
    /// ```
    pub fn fields(&self) -> impl ExactSizeIterator<Item = (&str, &Bytes)> {
        self.fields.iter().map(|(name, bytes)| (&**name, bytes))
    }

    /// Sets one field's bytes; returns the field's index in stored order.
    ///
    /// ```
    /// use sessions::Format;
    /// use sessions::store::Slot;
    /// let mut slot = Slot::new("cart", 1, Format::Json, vec![("n".into(), "1".into())]);
    /// assert_eq!(slot.set_field("n".into(), "2".into()), 0);          // replaces
    /// assert_eq!(slot.set_field("coupon".into(), "null".into()), 1);  // appends
    /// assert_eq!(&slot.field("n").unwrap()[..], b"2");
    /// assert_eq!(slot.fields().len(), 2);
    /// ```
    pub fn set_field(&mut self, name: Name, bytes: Bytes) -> usize {
        self.raw_json = None;
        match self.fields.iter().position(|(n, _)| *n == name) {
            Some(index) => {
                self.fields[index].1 = bytes;
                self.checked.field_changed(index);
                index
            }
            None => {
                // Records live long in stores (a MemoryStore holds thousands): no spare room.
                self.fields.reserve_exact(1);
                self.fields.push((name, bytes));
                self.fields.len() - 1
            }
        }
    }

    /// The field at `index` in stored order, its name as held.
    pub(crate) fn field_at(&self, index: usize) -> Option<(&Name, &Bytes)> {
        self.fields.get(index).map(|(name, bytes)| (name, bytes))
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
