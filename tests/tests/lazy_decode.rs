//! Lazy, per-field decoding: the first load of a slot's bytes checks every field (a corrupt one
//! is an error, as always); later loads of the same shared bytes (a `MemoryStore` hands every
//! request the same record) decode only the fields a handler touches. Whatever the handler
//! does, it sees the same values, dirty sets and changes as with an eager load.
#![allow(clippy::unwrap_used)]

use std::cell::Cell;

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize};
use sessions::Format;
use sessions::error::{DecodeError, LoadError};
use sessions::prelude::*;
use sessions::store::{Changeset, Record, Registry, Slot, SlotChange};

thread_local! {
    /// How many `Counted` values this thread decoded.
    static DECODED: Cell<usize> = const { Cell::new(0) };
}

/// The number of decodes since the last call.
fn decoded() -> usize {
    DECODED.with(|count| count.replace(0))
}

/// A number that counts its decodes.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Default)]
struct Counted(u64);

impl<'de> Deserialize<'de> for Counted {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        DECODED.with(|count| count.set(count.get() + 1));
        u64::deserialize(deserializer).map(Counted)
    }
}

#[derive(Session, Default, Debug, Clone, PartialEq)]
#[session(name = "profile")]
struct Profile {
    visits: Counted,
    seen: Counted,
    /// Three values: decoding the field counts 3.
    items: Vec<Counted>,
    #[session(default)]
    note: Option<String>,
}

/// Another Rust type reading the same slot, with another idea of `items`.
#[derive(Session, Default, Debug)]
#[session(name = "profile")]
struct StrictProfile {
    visits: Counted,
    seen: Counted,
    items: Vec<String>,
}

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry.register::<Profile>().unwrap();
    registry
}

fn stored(format: Format) -> Record {
    let value = Profile {
        visits: Counted(1),
        seen: Counted(2),
        items: vec![Counted(10), Counted(11), Counted(12)],
        note: None,
    };
    let mut record = Record::new();
    record.insert(whole_slot(&value, format));
    decoded();
    record
}

fn whole_slot(value: &Profile, format: Format) -> Slot {
    let fields = (0..Profile::FIELDS.len())
        .map(|index| {
            (
                Profile::FIELDS[index].into(),
                value.encode_field(index, format).unwrap(),
            )
        })
        .collect();
    Slot::new("profile", 1, format, fields)
}

fn formats() -> [Format; 2] {
    [Format::Json, Format::Bincode]
}

/// Replaces one field's bytes in the record, as a save does.
fn store_field(record: &mut Record, format: Format, field: &'static str, bytes: Bytes) {
    let mut changes = Changeset::new();
    changes.push(SlotChange::Fields {
        slot: "profile".into(),
        version: 1,
        format,
        fields: vec![(field.into(), bytes)],
    });
    record.apply(&changes).unwrap();
}

#[test]
fn the_first_load_decodes_every_field_and_later_loads_only_what_is_read() {
    for format in formats() {
        let registry = registry();
        let record = stored(format);
        let first = registry.load::<Profile>(&record).unwrap().unwrap();
        assert_eq!(
            decoded(),
            5,
            "{format:?}: the first load checks every field"
        );
        assert_eq!(first.visits().0, 1);
        assert_eq!(decoded(), 0, "{format:?}: checked fields are kept");
        drop(first);

        // The same shared bytes again (what every request of a MemoryStore session gets).
        let shared = record.clone();
        let cart = registry.load::<Profile>(&shared).unwrap().unwrap();
        assert_eq!(
            decoded(),
            0,
            "{format:?}: checked bytes are not decoded on load"
        );
        assert_eq!(cart.visits().0, 1);
        assert_eq!(
            decoded(),
            1,
            "{format:?}: reading `visits` decodes `visits` only"
        );
        assert_eq!(cart.visits().0, 1);
        assert_eq!(cart.note(), &None);
        assert_eq!(decoded(), 0, "{format:?}: decoded once");
        assert!(!cart.is_dirty());
        assert!(cart.changes(format).unwrap().is_none());
        assert_eq!(decoded(), 0);
    }
}

#[test]
fn a_corrupt_field_is_an_error_on_every_load_never_a_panic() {
    for format in formats() {
        let registry = registry();
        let mut record = stored(format);
        store_field(&mut record, format, "items", Bytes::new());
        for _ in 0..2 {
            match registry.load::<Profile>(&record) {
                Err(LoadError::Decode(DecodeError::Field { field, .. })) => {
                    assert_eq!(field, "items", "{format:?}")
                }
                other => panic!("{format:?}: {other:?}"),
            }
        }
    }
}

#[test]
fn a_field_that_changed_after_the_check_is_checked_again() {
    for format in formats() {
        let registry = registry();
        let mut record = stored(format);
        drop(registry.load::<Profile>(&record).unwrap());
        decoded();

        // A save brings new, valid bytes for `seen`: only `seen` is checked on the next load.
        let bytes = Counted(7).encode_field_bytes(format);
        store_field(&mut record, format, "seen", bytes);
        let cart = registry.load::<Profile>(&record).unwrap().unwrap();
        assert_eq!(decoded(), 1, "{format:?}");
        assert_eq!(cart.seen().0, 7);
        assert_eq!(decoded(), 0, "{format:?}: decoded by the check already");
        drop(cart);

        // Then garbage for `visits`: the next load fails again, even though `visits` was fine.
        store_field(&mut record, format, "visits", Bytes::new());
        let err = registry.load::<Profile>(&record).unwrap_err();
        assert!(
            matches!(
                err,
                LoadError::Decode(DecodeError::Field {
                    field: "visits",
                    ..
                })
            ),
            "{format:?}: {err:?}"
        );
    }
}

#[test]
fn another_type_checks_the_bytes_for_itself() {
    for format in formats() {
        let record = stored(format);
        drop(registry().load::<Profile>(&record).unwrap());
        let mut strict = Registry::new();
        strict.register::<StrictProfile>().unwrap();
        // `items` decoded as `Vec<Counted>` for `Profile`; that says nothing about `Vec<String>`.
        for _ in 0..2 {
            let err = strict.load::<StrictProfile>(&record).unwrap_err();
            assert!(
                matches!(
                    err,
                    LoadError::Decode(DecodeError::Field { field: "items", .. })
                ),
                "{format:?}: {err:?}"
            );
        }
        // And `Profile` still loads lazily.
        decoded();
        let cart = registry().load::<Profile>(&record).unwrap().unwrap();
        assert_eq!(decoded(), 0, "{format:?}");
        assert_eq!(cart.items().len(), 3);
    }
}

#[test]
fn writes_mark_exactly_their_fields_and_the_save_carries_only_them() {
    for format in formats() {
        let registry = registry();
        let record = stored(format);
        drop(registry.load::<Profile>(&record).unwrap());
        decoded();

        let mut cart = registry.load::<Profile>(&record).unwrap().unwrap();
        cart.visits_mut().0 += 1;
        cart.set_seen(Counted(99));
        assert_eq!(
            decoded(),
            1,
            "{format:?}: `set_seen` decodes nothing, `visits_mut` one"
        );
        assert_eq!(cart.dirty_fields().collect::<Vec<_>>(), ["visits", "seen"]);
        let Some(SlotChange::Fields { fields, .. }) = cart.changes(format).unwrap() else {
            panic!("{format:?}: a stored slot in the same format changes field by field");
        };
        let names: Vec<&str> = fields.iter().map(|(name, _)| &**name).collect();
        assert_eq!(names, ["visits", "seen"]);
        assert_eq!(fields[0].1, Counted(2).encode_field_bytes(format));
        assert_eq!(fields[1].1, Counted(99).encode_field_bytes(format));
        assert_eq!(decoded(), 0, "{format:?}: `items` was never decoded");
    }
}

#[test]
fn value_and_into_inner_see_every_change() {
    for format in formats() {
        let registry = registry();
        let record = stored(format);
        drop(registry.load::<Profile>(&record).unwrap());

        let mut cart = registry.load::<Profile>(&record).unwrap().unwrap();
        cart.visits_mut().0 += 1;
        cart.items_mut().push(Counted(13));
        cart.set_note(Some("hi".into()));
        let expected = Profile {
            visits: Counted(2),
            seen: Counted(2),
            items: vec![Counted(10), Counted(11), Counted(12), Counted(13)],
            note: Some("hi".into()),
        };
        assert_eq!(cart.value(), &expected, "{format:?}");
        assert!(format!("{cart:?}").contains("Counted(13)"));

        // A write after `value()` goes to the same value, and reads see it.
        cart.set_seen(Counted(5));
        cart.items_mut().clear();
        assert_eq!(cart.seen().0, 5);
        assert_eq!(cart.value().seen.0, 5);
        assert!(cart.value().items.is_empty());
        assert_eq!(
            cart.dirty_fields().collect::<Vec<_>>(),
            ["visits", "seen", "items", "note"]
        );

        let mut cart = registry.load::<Profile>(&record).unwrap().unwrap();
        *cart.visits_mut() = Counted(40);
        let value = cart.into_inner();
        assert_eq!(value.visits.0, 40);
        assert_eq!(value.items.len(), 3);
        assert_eq!(value.seen.0, 2);
    }
}

#[test]
fn reads_after_value_and_replace_agree() {
    for format in formats() {
        let registry = registry();
        let record = stored(format);
        drop(registry.load::<Profile>(&record).unwrap());

        let mut cart = registry.load::<Profile>(&record).unwrap().unwrap();
        assert_eq!(cart.value().visits.0, 1);
        assert_eq!(cart.visits().0, 1);
        assert!(!cart.is_dirty());

        let old = cart.replace(Profile::default());
        assert_eq!(old.items.len(), 3, "{format:?}");
        assert_eq!(cart.items().len(), 0);
        assert_eq!(cart.dirty_fields().count(), Profile::FIELDS.len());
    }
}

#[test]
fn a_lazy_value_saved_in_another_format_is_written_whole() {
    let registry = registry();
    let record = stored(Format::Json);
    drop(registry.load::<Profile>(&record).unwrap());

    let mut cart = registry.load::<Profile>(&record).unwrap().unwrap();
    cart.visits_mut().0 += 1;
    let Some(SlotChange::Rewrite { slot, .. }) = cart.changes(Format::Bincode).unwrap() else {
        panic!("a slot stored in JSON is rewritten whole in bincode");
    };
    let mut rewritten = Record::new();
    rewritten.insert(slot);
    let reloaded = registry.load::<Profile>(&rewritten).unwrap().unwrap();
    assert_eq!(reloaded.visits().0, 2);
    assert_eq!(reloaded.items().len(), 3);
}

/// Encodes a value the way a field is stored.
trait FieldBytes {
    fn encode_field_bytes(&self, format: Format) -> Bytes;
}

impl FieldBytes for Counted {
    fn encode_field_bytes(&self, format: Format) -> Bytes {
        let profile = Profile {
            visits: *self,
            ..Profile::default()
        };
        profile.encode_field(0, format).unwrap()
    }
}
