//! Helpers shared by the integration tests: the store → load cycle a session goes through.
#![allow(dead_code)]

use sessions::store::{Changeset, Record, Registry, SlotChange};
use sessions::{Format, Session, Typed};

/// Both codecs; every round-trip test runs in each.
pub(crate) const FORMATS: [Format; 3] = [Format::Json, Format::Bincode, Format::MessagePack];

/// A registry with `T` (and so its migration chain) registered.
pub(crate) fn registry_with<T: Session>() -> Registry {
    let mut registry = Registry::new();
    registry.register::<T>().expect("register");
    registry
}

/// One change as a changeset.
pub(crate) fn changeset(change: SlotChange) -> Changeset {
    std::iter::once(change).collect()
}

/// What a save of a new session holding `value` writes: a whole slot in `format` (a
/// `SlotChange::Rewrite` over nothing), applied to `record`.
pub(crate) fn save_new_into<T: Session + Default>(record: &mut Record, value: T, format: Format) {
    let mut typed = Typed::<T>::default();
    typed.replace(value);
    assert!(typed.is_new());
    let change = typed
        .changes(format)
        .expect("encode")
        .expect("a replaced value has changes");
    // A new slot is a whole-slot rewrite over nothing (base 0), naming every field as changed
    // (`replace` changes them all).
    let SlotChange::Rewrite {
        slot,
        base: 0,
        changed,
    } = &change
    else {
        panic!("a new slot must be written whole over nothing, got {change:?}");
    };
    assert_eq!(changed.iter().count(), T::FIELDS.len());
    assert_eq!(slot.name(), T::NAME);
    assert_eq!(slot.type_tag(), T::NAME);
    assert_eq!(slot.version(), T::VERSION);
    assert_eq!(slot.format(), Some(format));
    assert_eq!(
        slot.fields().map(|(name, _)| name).collect::<Vec<_>>(),
        T::FIELDS
    );
    record.apply(&changeset(change)).expect("apply a new slot");
}

/// A fresh record holding `value` as a new slot written in `format`.
pub(crate) fn save_new<T: Session + Default>(value: T, format: Format) -> Record {
    let mut record = Record::new();
    save_new_into(&mut record, value, format);
    record
}

/// `record` → bytes in `format` → record; the record read back must equal the one written.
pub(crate) fn through_bytes(record: &Record, format: Format) -> Record {
    let bytes = record.to_bytes(format).expect("to_bytes");
    let back = Record::from_bytes(&bytes).expect("from_bytes of to_bytes output");
    assert_eq!(&back, record, "record changed through {format} bytes");
    back
}

/// Loads `T` from a record that must hold it at the current version.
pub(crate) fn load_stored<T: Session>(registry: &Registry, record: &Record) -> Typed<T> {
    let typed = registry
        .load::<T>(record)
        .expect("load")
        .expect("the slot is stored");
    assert!(!typed.is_new());
    assert!(!typed.is_dirty(), "loading must not dirty anything");
    assert_eq!(typed.migrated_from(), None);
    typed
}

/// The full cycle: `Typed` → `changes(format)` → `Record::apply` → `to_bytes(format)` →
/// `from_bytes` → `Registry::load`; returns the loaded value.
pub(crate) fn roundtrip<T: Session + Default>(value: T, format: Format) -> T {
    let record = save_new(value, format);
    let back = through_bytes(&record, format);
    load_stored::<T>(&registry_with::<T>(), &back).into_inner()
}
