//! Exactly the fields a handler changed are dirty, and a save carries exactly those.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sessions::error::ApplyError;
use sessions::prelude::*;
use sessions::store::{Changeset, Name, Record, Slot, SlotChange};
use sessions::{Format, Session};

use common::{FORMATS, changeset, load_stored, registry_with, save_new};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Item {
    sku: String,
    qty: u32,
}

#[derive(Session, Default, Debug, Clone, PartialEq)]
#[session(name = "cart", version = 2)]
struct Cart {
    items: Vec<Item>,
    coupon: Option<String>,
    #[session(rename = "visits")]
    count: u64,
    #[session(skip)]
    cache: Vec<String>,
    note: String,
}

fn item(sku: &str, qty: u32) -> Item {
    Item {
        sku: sku.into(),
        qty,
    }
}

fn cart() -> Cart {
    Cart {
        items: vec![item("apple", 2)],
        coupon: Some("C".into()),
        count: 7,
        cache: vec!["not stored".into()],
        note: "n".into(),
    }
}

/// A cart stored in `format` and loaded back: the starting point of a request.
fn stored(format: Format) -> (Record, Typed<Cart>) {
    let record = save_new(cart(), format);
    let typed = load_stored::<Cart>(&registry_with::<Cart>(), &record);
    (record, typed)
}

/// The index of a stored field of `Cart` (what a `SlotChange::Rewrite` names as changed).
fn index_of(field: &str) -> usize {
    Cart::FIELDS
        .iter()
        .position(|name| *name == field)
        .expect("a stored field of Cart")
}

fn dirty(typed: &Typed<impl Session>) -> Vec<&'static str> {
    typed.dirty_fields().collect()
}

fn enc(format: Format, value: &(impl Serialize + ?Sized)) -> Bytes {
    format.encode(value).unwrap()
}

// ---- read-only use --------------------------------------------------------------------------

#[test]
fn reading_everything_dirties_nothing() {
    for format in FORMATS {
        let (_, typed) = stored(format);
        let _ = typed.items().len();
        let _ = typed.coupon().clone();
        let _ = *typed.count();
        let _ = typed.cache().len();
        let _ = typed.note().as_str();
        let value: &Cart = typed.value();
        let _ = value.clone();
        let _ = format!("{typed:?}");
        assert!(typed.dirty_fields().next().is_none());
        assert!(!typed.is_dirty());
        assert!(typed.changes(format).unwrap().is_none());
        assert!(typed.changes(Format::Json).unwrap().is_none());
        assert!(typed.changes(Format::Bincode).unwrap().is_none());
        assert!(!typed.is_new());
    }
}

#[test]
fn new_untouched_value_has_no_changes() {
    let typed = Typed::new(cart());
    for format in FORMATS {
        assert!(typed.changes(format).unwrap().is_none());
    }
    let typed: Typed<Cart> = Typed::default();
    assert!(!typed.is_dirty());
}

// ---- one write, one field -----------------------------------------------------------------------

#[test]
fn items_mut_marks_items_only() {
    for format in FORMATS {
        let (_, mut typed) = stored(format);
        typed.items_mut().push(item("pear", 1));
        assert_eq!(dirty(&typed), ["items"]);
        // Even a `&mut` that is not written through counts: it could have been.
        let (_, mut typed) = stored(format);
        let _ = typed.items_mut();
        assert_eq!(dirty(&typed), ["items"]);
    }
}

#[test]
fn set_marks_that_field_only() {
    let (_, mut typed) = stored(Format::Json);
    typed.set_coupon(None);
    assert_eq!(dirty(&typed), ["coupon"]);
    let (_, mut typed) = stored(Format::Json);
    typed.set_note("same".into());
    assert_eq!(dirty(&typed), ["note"]);
    // Setting a field to the value it has still marks it (the derive does not compare values).
    let (_, mut typed) = stored(Format::Json);
    typed.set_count(7);
    assert_eq!(
        dirty(&typed),
        ["visits"],
        "a renamed field is reported by its stored name"
    );
}

#[test]
fn several_writes_mark_the_union_in_declaration_order() {
    let (_, mut typed) = stored(Format::Json);
    typed.set_note("x".into());
    *typed.count_mut() += 1;
    typed.set_note("y".into());
    assert_eq!(dirty(&typed), ["visits", "note"]);
    typed.items_mut().clear();
    assert_eq!(dirty(&typed), ["items", "visits", "note"]);
}

#[test]
fn skip_fields_are_never_dirty() {
    for format in FORMATS {
        let (_, mut typed) = stored(format);
        assert!(typed.cache().is_empty(), "a skip field loads as Default");
        typed.cache_mut().push("x".into());
        typed.set_cache(vec!["y".into()]);
        assert!(!typed.is_dirty());
        assert!(typed.changes(format).unwrap().is_none());
        assert_eq!(typed.cache(), &["y".to_owned()]);
        assert!(!Cart::FIELDS.contains(&"cache"));
        assert_eq!(Cart::FIELDS, ["items", "coupon", "visits", "note"]);
    }
}

#[test]
fn replace_marks_all() {
    for format in FORMATS {
        let (_, mut typed) = stored(format);
        let old = typed.replace(Cart::default());
        assert_eq!(
            old,
            Cart {
                cache: Vec::new(),
                ..cart()
            }
        );
        assert_eq!(dirty(&typed), Cart::FIELDS);
        let change = typed.changes(format).unwrap().unwrap();
        let SlotChange::Fields { fields, .. } = &change else {
            panic!("a stored slot changes by fields, got {change:?}");
        };
        assert_eq!(
            fields.iter().map(|(n, _)| &**n).collect::<Vec<_>>(),
            Cart::FIELDS
        );
    }
}

// ---- 70+ fields -----------------------------------------------------------------------------

#[derive(Session, Default, Debug, Clone, PartialEq)]
#[session(name = "wide")]
struct Wide {
    f00: u32,
    f01: u32,
    f02: u32,
    f03: u32,
    f04: u32,
    f05: u32,
    f06: u32,
    f07: u32,
    f08: u32,
    f09: u32,
    f10: u32,
    f11: u32,
    f12: u32,
    f13: u32,
    f14: u32,
    f15: u32,
    f16: u32,
    f17: u32,
    f18: u32,
    f19: u32,
    f20: u32,
    f21: u32,
    f22: u32,
    f23: u32,
    f24: u32,
    f25: u32,
    f26: u32,
    f27: u32,
    f28: u32,
    f29: u32,
    f30: u32,
    f31: u32,
    f32: u32,
    f33: u32,
    f34: u32,
    f35: u32,
    f36: u32,
    f37: u32,
    f38: u32,
    f39: u32,
    f40: u32,
    f41: u32,
    f42: u32,
    f43: u32,
    f44: u32,
    f45: u32,
    f46: u32,
    f47: u32,
    f48: u32,
    f49: u32,
    f50: u32,
    f51: u32,
    f52: u32,
    f53: u32,
    f54: u32,
    f55: u32,
    f56: u32,
    f57: u32,
    f58: u32,
    f59: u32,
    f60: u32,
    f61: u32,
    f62: u32,
    f63: u32,
    f64: u32,
    f65: u32,
    f66: u32,
    f67: u32,
    f68: u32,
    f69: u32,
    f70: u32,
    f71: u32,
}

#[test]
fn wide_struct_marks_field_65_only() {
    assert_eq!(Wide::FIELDS.len(), 72);
    for format in FORMATS {
        let record = save_new(Wide::default(), format);
        let registry = registry_with::<Wide>();
        let mut typed = load_stored::<Wide>(&registry, &record);
        typed.set_f65(65);
        assert_eq!(dirty(&typed), ["f65"]);
        let change = typed.changes(format).unwrap().unwrap();
        assert_eq!(
            change,
            SlotChange::Fields {
                slot: "wide".into(),
                version: 1,
                format,
                fields: vec![("f65".into(), enc(format, &65u32))],
            }
        );
        // Around the word boundaries.
        let mut typed = load_stored::<Wide>(&registry, &record);
        *typed.f63_mut() = 1;
        *typed.f64_mut() = 1;
        typed.set_f71(1);
        typed.set_f00(1);
        assert_eq!(dirty(&typed), ["f00", "f63", "f64", "f71"]);
        let mut record = record.clone();
        record
            .apply(&changeset(typed.changes(format).unwrap().unwrap()))
            .unwrap();
        let back = load_stored::<Wide>(&registry, &common::through_bytes(&record, format));
        assert_eq!(
            (
                *back.f00(),
                *back.f63(),
                *back.f64(),
                *back.f65(),
                *back.f71()
            ),
            (1, 1, 1, 0, 1)
        );
    }
}

#[test]
fn wide_struct_replace_marks_all_72() {
    let mut typed = Typed::new(Wide::default());
    typed.replace(Wide::default());
    assert_eq!(dirty(&typed), Wide::FIELDS);
    let change = typed.changes(Format::Json).unwrap().unwrap();
    let SlotChange::Rewrite {
        slot,
        base: 0,
        changed,
    } = change
    else {
        panic!("a new slot is written whole over nothing");
    };
    assert_eq!(slot.fields().len(), 72);
    assert_eq!(changed.iter().count(), 72, "replace changed every field");
}

// ---- what a save writes ---------------------------------------------------------------------

#[test]
fn stored_slot_change_carries_exactly_the_dirty_fields() {
    for format in FORMATS {
        let (mut record, mut typed) = stored(format);
        typed.items_mut().push(item("pear", 1));
        typed.set_note("changed".into());
        let change = typed.changes(format).unwrap().unwrap();
        let expected_items = vec![item("apple", 2), item("pear", 1)];
        assert_eq!(
            change,
            SlotChange::Fields {
                slot: "cart".into(),
                version: 2,
                format,
                fields: vec![
                    ("items".into(), enc(format, &expected_items)),
                    ("note".into(), enc(format, "changed")),
                ],
            }
        );
        let before = record.slot("cart").unwrap().clone();
        record.apply(&changeset(change)).unwrap();
        let after = record.slot("cart").unwrap();
        assert_eq!(after.field("coupon"), before.field("coupon"));
        assert_eq!(after.field("visits"), before.field("visits"));
        assert_eq!(after.field("items").unwrap(), &enc(format, &expected_items));
        let back = load_stored::<Cart>(
            &registry_with::<Cart>(),
            &common::through_bytes(&record, format),
        );
        assert_eq!(back.items(), &expected_items);
        assert_eq!(back.note(), "changed");
        assert_eq!(back.coupon().as_deref(), Some("C"));
    }
}

#[test]
fn concurrent_changes_to_different_fields_both_survive() {
    for format in FORMATS {
        let (mut record, mut first) = stored(format);
        let (_, mut second) = stored(format);
        first.set_coupon(None);
        second.set_count(100);
        record
            .apply(&changeset(first.changes(format).unwrap().unwrap()))
            .unwrap();
        record
            .apply(&changeset(second.changes(format).unwrap().unwrap()))
            .unwrap();
        let back = load_stored::<Cart>(&registry_with::<Cart>(), &record);
        assert_eq!(back.coupon(), &None);
        assert_eq!(*back.count(), 100);
        assert_eq!(back.items(), &[item("apple", 2)]);
    }
}

#[test]
fn slot_stored_in_another_format_is_written_whole() {
    for (stored_in, saved_in) in [
        (Format::Json, Format::Bincode),
        (Format::Bincode, Format::Json),
    ] {
        let (mut record, mut typed) = stored(stored_in);
        typed.set_note("x".into());
        let change = typed.changes(saved_in).unwrap().unwrap();
        let SlotChange::Rewrite {
            slot,
            base,
            changed,
        } = &change
        else {
            panic!("{stored_in} slot saved in {saved_in} must be written whole, got {change:?}");
        };
        // Over the revision it was loaded at, naming only what the request changed.
        assert_eq!(*base, record.revision_of("cart"));
        assert_eq!(changed.iter().collect::<Vec<_>>(), [index_of("note")]);
        assert_eq!(slot.format(), Some(saved_in));
        assert_eq!(slot.version(), 2);
        assert_eq!(
            slot.fields().map(|(n, _)| n).collect::<Vec<_>>(),
            Cart::FIELDS
        );
        assert_eq!(slot.field("coupon").unwrap(), &enc(saved_in, &Some("C")));
        record.apply(&changeset(change)).unwrap();
        assert_eq!(record.slot("cart").unwrap().format(), Some(saved_in));
        let back = load_stored::<Cart>(&registry_with::<Cart>(), &record);
        assert_eq!(back.note(), "x");
        assert_eq!(back.items(), &[item("apple", 2)]);
    }
}

#[test]
fn new_slot_is_written_whole() {
    let mut typed = Typed::new(Cart::default());
    typed.set_coupon(Some("N".into()));
    assert_eq!(dirty(&typed), ["coupon"]);
    for format in FORMATS {
        let change = typed.changes(format).unwrap().unwrap();
        let SlotChange::Rewrite {
            slot,
            base: 0,
            changed,
        } = &change
        else {
            panic!("a new slot must be written whole over nothing, got {change:?}");
        };
        assert_eq!(slot.fields().len(), Cart::FIELDS.len());
        // The fields the handler changed, so that a request that finds the slot created by
        // another one meanwhile writes only those.
        assert_eq!(changed.iter().collect::<Vec<_>>(), [index_of("coupon")]);
        assert_eq!(
            slot.field("items").unwrap(),
            &enc(format, &Vec::<Item>::new())
        );
    }
}

// ---- changesets -----------------------------------------------------------------------------

fn fields(
    slot: &str,
    version: u32,
    format: Format,
    fields: &[(&'static str, &'static [u8])],
) -> SlotChange {
    SlotChange::Fields {
        slot: Name::Owned(slot.to_owned()),
        version,
        format,
        fields: fields
            .iter()
            .map(|(n, b)| (Name::Borrowed(n), Bytes::from_static(b)))
            .collect(),
    }
}

fn put(slot: &'static str, fields: &[(&'static str, &'static [u8])]) -> SlotChange {
    SlotChange::Put(Slot::new(
        slot,
        1,
        Format::Json,
        fields
            .iter()
            .map(|(n, b)| (Name::Borrowed(n), Bytes::from_static(b)))
            .collect(),
    ))
}

#[test]
fn changeset_merges_field_updates_of_one_slot() {
    let mut changes = Changeset::new();
    changes.push(fields("cart", 1, Format::Json, &[("a", b"1"), ("b", b"2")]));
    changes.push(fields("cart", 1, Format::Json, &[("b", b"3"), ("c", b"4")]));
    assert_eq!(changes.len(), 1);
    assert_eq!(
        changes.iter().next().unwrap(),
        &fields(
            "cart",
            1,
            Format::Json,
            &[("a", b"1"), ("b", b"3"), ("c", b"4")]
        )
    );
}

#[test]
fn changeset_merges_field_updates_into_a_put() {
    let mut changes = Changeset::new();
    changes.push(put("cart", &[("a", b"1"), ("b", b"2")]));
    changes.push(fields("cart", 1, Format::Json, &[("b", b"9"), ("c", b"4")]));
    assert_eq!(changes.len(), 1);
    assert_eq!(
        changes.iter().next().unwrap(),
        &put("cart", &[("a", b"1"), ("b", b"9"), ("c", b"4")])
    );
}

#[test]
fn changeset_later_put_or_remove_replaces() {
    let mut changes = Changeset::new();
    changes.push(fields("cart", 1, Format::Json, &[("a", b"1")]));
    changes.push(put("cart", &[("z", b"0")]));
    assert_eq!(
        changes.iter().collect::<Vec<_>>(),
        [&put("cart", &[("z", b"0")])]
    );
    changes.push(SlotChange::Remove {
        slot: "cart".into(),
    });
    assert_eq!(
        changes.iter().collect::<Vec<_>>(),
        [&SlotChange::Remove {
            slot: "cart".into()
        }]
    );
    changes.push(put("cart", &[("y", b"1")]));
    assert_eq!(
        changes.iter().collect::<Vec<_>>(),
        [&put("cart", &[("y", b"1")])]
    );
}

#[test]
fn changeset_never_merges_fields_of_another_format_or_version() {
    // Merging bincode bytes into a JSON slot (or v1 fields into a v2 slot) would store bytes
    // the slot's own format or version cannot read: the later change must win instead, so that
    // `Record::apply` checks it against what is stored.
    let json_put = put("cart", &[("a", b"1")]);
    let bincode_fields = fields("cart", 1, Format::Bincode, &[("a", b"\x02")]);
    let mut changes = Changeset::new();
    changes.push(json_put.clone());
    changes.push(bincode_fields.clone());
    assert_eq!(changes.iter().collect::<Vec<_>>(), [&bincode_fields]);

    let v2_fields = fields("cart", 2, Format::Json, &[("a", b"2")]);
    let mut changes = Changeset::new();
    changes.push(json_put);
    changes.push(v2_fields.clone());
    assert_eq!(changes.iter().collect::<Vec<_>>(), [&v2_fields]);

    let mut changes = Changeset::new();
    changes.push(fields("cart", 1, Format::Json, &[("a", b"1"), ("b", b"2")]));
    changes.push(bincode_fields.clone());
    assert_eq!(changes.iter().collect::<Vec<_>>(), [&bincode_fields]);

    let mut changes = Changeset::new();
    changes.push(fields("cart", 1, Format::Json, &[("a", b"1")]));
    changes.push(v2_fields.clone());
    assert_eq!(changes.iter().collect::<Vec<_>>(), [&v2_fields]);
}

#[test]
fn changeset_keeps_one_change_per_slot_in_order() {
    let changes: Changeset = [
        put("b", &[("x", b"1")]),
        fields("a", 1, Format::Json, &[("x", b"1")]),
        fields("b", 1, Format::Json, &[("y", b"2")]),
        SlotChange::Remove { slot: "c".into() },
    ]
    .into_iter()
    .collect();
    assert_eq!(
        changes
            .iter()
            .map(SlotChange::slot_name)
            .collect::<Vec<_>>(),
        ["b", "a", "c"]
    );
    assert!(!changes.is_empty());
    assert!(Changeset::new().is_empty());
}

// ---- applying -------------------------------------------------------------------------------

fn two_slot_record() -> Record {
    let mut record = Record::new();
    record.insert(Slot::new(
        "cart",
        2,
        Format::Json,
        vec![("a".into(), "1".into())],
    ));
    record.insert(Slot::new(
        "prefs",
        1,
        Format::Json,
        vec![("dark".into(), "true".into())],
    ));
    record
}

#[test]
fn apply_refuses_fields_for_a_missing_slot_and_changes_nothing() {
    let mut record = two_slot_record();
    let before = record.clone();
    let before_bytes = record.to_bytes(Format::Json).unwrap();
    let changes: Changeset = [
        put("other", &[("x", b"1")]),
        fields("prefs", 1, Format::Json, &[("dark", b"false")]),
        fields("gone", 2, Format::Json, &[("a", b"2")]),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        record.apply(&changes),
        Err(ApplyError::SlotMissing {
            slot: "gone".into()
        })
    );
    assert_eq!(record, before);
    assert_eq!(record.to_bytes(Format::Json).unwrap(), before_bytes);
}

#[test]
fn apply_refuses_fields_for_a_slot_at_another_version_or_format() {
    let mut record = two_slot_record();
    let before_bytes = record.to_bytes(Format::Json).unwrap();
    let err = record
        .apply(&changeset(fields("cart", 1, Format::Json, &[("a", b"2")])))
        .unwrap_err();
    assert!(
        matches!(
            &err,
            ApplyError::SlotChanged {
                slot,
                expected_version: 1,
                stored_version: 2,
                ..
            } if slot == "cart"
        ),
        "{err:?}"
    );
    let err = record
        .apply(&changeset(SlotChange::Fields {
            slot: "cart".into(),
            version: 2,
            format: Format::Bincode,
            fields: vec![("a".into(), enc(Format::Bincode, &2u32))],
        }))
        .unwrap_err();
    assert!(
        matches!(
            &err,
            ApplyError::SlotChanged {
                expected_format: Format::Bincode,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(record.to_bytes(Format::Json).unwrap(), before_bytes);
    assert_eq!(record.check(&fields("cart", 2, Format::Json, &[])), Ok(()));
}

#[test]
fn apply_of_a_stale_field_update_after_migration_is_refused() {
    // Request A loads the v2 slot; request B (a newer deployment) rewrites it at v3. A's field
    // update for v2 must not land on the v3 slot.
    for format in FORMATS {
        let (mut record, mut typed) = stored(format);
        typed.set_note("stale".into());
        let stale = typed.changes(format).unwrap().unwrap();
        record.insert(Slot::new("cart", 3, format, vec![]));
        let before = record.clone();
        assert!(matches!(
            record.apply(&changeset(stale)),
            Err(ApplyError::SlotChanged {
                expected_version: 2,
                stored_version: 3,
                ..
            })
        ));
        assert_eq!(record, before);
    }
}

#[test]
fn apply_of_remove_and_put() {
    let mut record = two_slot_record();
    let changes: Changeset = [
        SlotChange::Remove {
            slot: "prefs".into(),
        },
        SlotChange::Remove {
            slot: "never_there".into(),
        },
        put("cart", &[("b", b"5")]),
    ]
    .into_iter()
    .collect();
    record.apply(&changes).unwrap();
    assert!(record.slot("prefs").is_none());
    let cart = record.slot("cart").unwrap();
    assert_eq!(cart.version(), 1);
    assert!(cart.field("a").is_none());
    assert_eq!(cart.field("b").unwrap(), b"5");
}
