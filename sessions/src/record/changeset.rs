//! [`SlotChange`] and [`Changeset`]: what one save changes.

use bytes::Bytes;

use super::{Name, Slot};
use crate::codec::Format;
use crate::dirty::DirtySet;

/// What one save changes in one slot.
///
/// ```
/// use sessions::Format;
/// use sessions::store::{Slot, SlotChange};
/// let put = SlotChange::Put(Slot::new("cart", 1, Format::Json, vec![]));
/// let remove = SlotChange::Remove { slot: "cart".into() };
/// assert_ne!(put, remove);
/// assert_eq!(put.slot_name(), remove.slot_name());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlotChange {
    /// Write the whole slot, replacing whatever is stored under its name.
    Put(Slot),
    /// A whole slot a request made from what it loaded: a new one (nothing was stored), one
    /// migrated from an older version, or one re-encoded in another format.
    ///
    /// Written whole while the stored slot is still the one the request loaded (its revision is
    /// `base`; 0: absent). When another request wrote the slot meanwhile in this version and
    /// format (it made the same first write, migration or re-encoding), only the `changed`
    /// fields are written, so both requests' changes survive. Otherwise the change is refused
    /// ([`ApplyError`](crate::errors::ApplyError)), unless `changed` is empty: then it was only the
    /// write-back of a migration or re-encoding, and it is dropped.
    Rewrite {
        /// The slot as the request would store it.
        slot: Slot,
        /// The revision of the stored slot the request loaded (0: nothing was stored).
        base: u64,
        /// The fields the request changed, by index into `slot`'s fields.
        changed: DirtySet,
    },
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
    /// use sessions::Format;
    /// use sessions::store::SlotChange;
    /// let change = SlotChange::Fields {
    ///     slot: "prefs".into(), version: 1, format: Format::Json, fields: vec![("dark".into(), "true".into())],
    /// };
    /// assert_eq!(change.slot_name(), "prefs");
    /// ```
    pub fn slot_name(&self) -> &str {
        match self {
            SlotChange::Put(slot) | SlotChange::Rewrite { slot, .. } => slot.name(),
            SlotChange::Fields { slot, .. } | SlotChange::Remove { slot } => slot,
        }
    }
}

/// Stands in for a change while it is merged.
const PLACEHOLDER: SlotChange = SlotChange::Remove {
    slot: std::borrow::Cow::Borrowed(""),
};

/// `later` on top of `earlier` (of the same slot), when neither is a field update that merges
/// in place (see [`Changeset::push`]).
fn merged(earlier: SlotChange, later: SlotChange) -> SlotChange {
    match (earlier, later) {
        // Two values of one slot in one request: each one's changed fields survive, the later
        // one's where both changed a field.
        (
            SlotChange::Rewrite {
                slot: earlier_slot,
                changed: earlier_changed,
                ..
            },
            SlotChange::Rewrite {
                mut slot,
                base,
                mut changed,
            },
        ) if earlier_slot.has_header(slot.version, slot.format_tag) => {
            for index in earlier_changed.iter() {
                if !changed.contains(index)
                    && let Some((name, bytes)) = earlier_slot.field_at(index)
                {
                    changed.insert(slot.set_field(name.clone(), Bytes::copy_from_slice(bytes)));
                }
            }
            SlotChange::Rewrite {
                slot,
                base,
                changed,
            }
        }
        // A slot removed, then made anew: the new one replaces whatever is stored.
        (SlotChange::Remove { .. }, SlotChange::Rewrite { slot, .. }) => SlotChange::Put(slot),
        (_, later) => later,
    }
}

/// Everything one save changes: at most one [`SlotChange`] per slot.
///
/// ```
/// use sessions::store::{Changeset, SlotChange};
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
    /// use sessions::store::Changeset;
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
    /// use sessions::Format;
    /// use sessions::store::{Changeset, SlotChange};
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
                SlotChange::Rewrite { slot, changed, .. },
                SlotChange::Fields {
                    version,
                    format,
                    fields,
                    ..
                },
            ) if slot.version == version && slot.format_tag == format.tag() => {
                for (name, bytes) in fields {
                    changed.insert(slot.set_field(name, bytes));
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
            (earlier, change) => *earlier = merged(std::mem::replace(earlier, PLACEHOLDER), change),
        }
    }

    /// Optimistic concurrency: the save must fail with a [`Conflict`](crate::errors::Conflict), writing
    /// nothing, unless slot `slot` is stored at `revision` (0: the slot must be absent). A later
    /// call for the same slot replaces the earlier one.
    ///
    /// ```
    /// use sessions::store::Changeset;
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
    /// use sessions::store::Changeset;
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
    /// use sessions::store::Changeset;
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
    /// use sessions::store::{Changeset, SlotChange};
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
    /// use sessions::store::{Changeset, SlotChange};
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
    /// use sessions::store::{Changeset, SlotChange};
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
