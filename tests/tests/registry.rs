//! Only registered types are decoded; everything else in a record survives byte for byte, and
//! malformed records are errors, never panics.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sessions::Format;
use sessions::error::{LoadError, RecordError, RegistryError};
use sessions::prelude::*;
use sessions::store::{Record, Registry, Slot, SlotChange};

use common::{FORMATS, changeset, registry_with, through_bytes};

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
}

/// Another Rust type claiming the name `cart`.
#[derive(Session, Default, Debug)]
#[session(name = "cart")]
struct OtherCart {
    n: u32,
}

#[derive(Session, Default, Debug)]
#[session(name = "admin")]
struct Admin {
    is_admin: bool,
}

#[derive(Session, Default, Debug)]
#[session(name = "prefs")]
struct Prefs {
    dark: bool,
}

fn item(sku: &str, qty: u32) -> Item {
    Item {
        sku: sku.into(),
        qty,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// ---- unregistered slots -----------------------------------------------------------------------

const ODD_SLOT: &str = "{ \"zeta\" : [ 1,2 , 3 ],\n\t\"__v__\"  :7,\"alpha\":{\"b\":1,\"a\":\"\\u00e9\\n\"}  , \"__type__\":\"future_thing\", \"n\": 1.50e2 }";

fn text_with_odd_slot() -> Vec<u8> {
    format!(
        "{{\"cart\":{{\"__type__\":\"cart\",\"__v__\":2,\"items\":[{{\"sku\":\"apple\",\"qty\":1}}],\"coupon\":null}},\n  \"future_thing\" :  {ODD_SLOT} }}"
    )
    .into_bytes()
}

#[test]
fn unregistered_json_slot_is_written_back_byte_for_byte() {
    let registry = registry_with::<Cart>();
    let mut record = Record::from_bytes(&text_with_odd_slot()).unwrap();
    assert_eq!(record.slot("future_thing").unwrap().version(), 7);

    let mut cart = common::load_stored::<Cart>(&registry, &record);
    cart.items_mut().push(item("pear", 2));
    let change = cart.changes(Format::Json).unwrap().unwrap();
    assert!(matches!(change, SlotChange::Fields { .. }), "{change:?}");
    record.apply(&changeset(change)).unwrap();

    let out = record.to_bytes(Format::Json).unwrap();
    assert!(
        find(&out, format!("\"future_thing\":{ODD_SLOT}").as_bytes()),
        "the unregistered slot's text changed:\n{}",
        String::from_utf8_lossy(&out)
    );
    // And the changed slot is there, readable.
    let back = Record::from_bytes(&out).unwrap();
    let cart = common::load_stored::<Cart>(&registry, &back);
    assert_eq!(cart.items(), &[item("apple", 1), item("pear", 2)]);
    // A second save keeps it too.
    let again = back.to_bytes(Format::Json).unwrap();
    assert!(find(&again, ODD_SLOT.as_bytes()));
}

#[test]
fn unchanged_json_record_is_written_back_slot_for_slot() {
    let text = text_with_odd_slot();
    let record = Record::from_bytes(&text).unwrap();
    let cart = common::load_stored::<Cart>(&registry_with::<Cart>(), &record);
    assert!(cart.changes(Format::Json).unwrap().is_none());
    let out = record.to_bytes(Format::Json).unwrap();
    assert!(find(&out, ODD_SLOT.as_bytes()));
    assert!(find(
        &out,
        br#"{"__type__":"cart","__v__":2,"items":[{"sku":"apple","qty":1}],"coupon":null}"#
    ));
}

#[test]
fn unregistered_json_slot_survives_a_switch_to_bincode_and_back() {
    let registry = registry_with::<Cart>();
    let record = Record::from_bytes(&text_with_odd_slot()).unwrap();
    let before = record.slot("future_thing").unwrap().clone();
    let binary = through_bytes(&record, Format::Bincode);
    let slot = binary.slot("future_thing").unwrap();
    assert_eq!(slot, &before);
    assert_eq!(
        slot.field("zeta").unwrap(),
        &Bytes::from_static(b"[ 1,2 , 3 ]")
    );
    assert_eq!(slot.field("n").unwrap(), &Bytes::from_static(b"1.50e2"));
    // Back to TSON: the slot is rebuilt from its fields, whose text is unchanged.
    let mut again = binary.clone();
    let mut cart = common::load_stored::<Cart>(&registry, &again);
    cart.set_coupon(Some("C".into()));
    again
        .apply(&changeset(cart.changes(Format::Json).unwrap().unwrap()))
        .unwrap();
    let text = again.to_bytes(Format::Json).unwrap();
    let reread = Record::from_bytes(&text).unwrap();
    assert_eq!(reread.slot("future_thing").unwrap(), &before);
}

#[test]
fn unregistered_bincode_slot_is_preserved_byte_for_byte() {
    let registry = registry_with::<Cart>();
    let odd_fields = vec![
        ("raw".into(), Bytes::from_static(&[0xff, 0x00, 0x13, 0x37])),
        ("empty".into(), Bytes::new()),
        (
            "json_ish".into(),
            Bytes::from_static(b"{\"__type__\":\"admin\"}"),
        ),
    ];
    for format in FORMATS {
        let mut record = common::save_new(
            Cart {
                items: vec![item("apple", 1)],
                coupon: None,
            },
            format,
        );
        record.insert(Slot::new(
            "future_thing",
            7,
            Format::Bincode,
            odd_fields.clone(),
        ));
        record.insert(Slot::from_parts(
            "alien".into(),
            "alien".into(),
            1,
            99,
            vec![("x".into(), Bytes::from_static(b"\x01\x02"))],
        ));
        let before_future = record.slot("future_thing").unwrap().clone();
        let before_alien = record.slot("alien").unwrap().clone();

        let mut record = through_bytes(&record, Format::Bincode);
        let mut cart = common::load_stored::<Cart>(&registry, &record);
        cart.set_coupon(Some("C".into()));
        record
            .apply(&changeset(cart.changes(format).unwrap().unwrap()))
            .unwrap();
        for asked in FORMATS {
            let back = through_bytes(&record, asked);
            let future = back.slot("future_thing").unwrap();
            assert_eq!(future, &before_future);
            for (name, bytes) in &odd_fields {
                assert_eq!(future.field(name).unwrap(), bytes);
            }
            assert_eq!(back.slot("alien").unwrap(), &before_alien);
            assert_eq!(back.slot("alien").unwrap().format(), None);
            assert_eq!(back.slot("alien").unwrap().format_tag(), 99);
        }
    }
}

#[test]
fn unregistered_type_is_never_decoded() {
    let record = Record::from_bytes(
        br#"{"admin":{"__type__":"admin","__v__":1,"is_admin":true},"cart":{"__type__":"cart","__v__":2,"items":[],"coupon":null}}"#,
    )
    .unwrap();
    let registry = registry_with::<Cart>();
    let err = registry.load::<Admin>(&record).err().unwrap();
    assert!(
        matches!(
            err,
            LoadError::NotRegistered {
                name: "admin",
                rust_type
            } if rust_type.ends_with("Admin")
        ),
        "{err:?}"
    );
    // Also when nothing is stored: registration is checked first.
    assert!(matches!(
        registry.load::<Prefs>(&Record::new()),
        Err(LoadError::NotRegistered { name: "prefs", .. })
    ));
    assert!(registry.load_or_default::<Admin>(&record).is_err());
    // A type under a registered name, but not the registered Rust type, is not registered either.
    assert!(matches!(
        registry.load::<OtherCart>(&record),
        Err(LoadError::NotRegistered { name: "cart", .. })
    ));
}

#[test]
fn nothing_stored_loads_as_none_or_default() {
    let registry = registry_with::<Cart>();
    assert!(registry.load::<Cart>(&Record::new()).unwrap().is_none());
    let cart = registry.load_or_default::<Cart>(&Record::new()).unwrap();
    assert!(cart.is_new());
    assert!(!cart.is_dirty());
    assert!(cart.items().is_empty());
}

// ---- registration -----------------------------------------------------------------------------

#[test]
fn duplicate_name_is_refused() {
    let mut registry = Registry::new();
    registry.register::<Cart>().unwrap();
    let err = registry.register::<OtherCart>().unwrap_err();
    let RegistryError::DuplicateName {
        name,
        first,
        second,
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(*name, "cart");
    assert!(
        first.ends_with("Cart") && !first.ends_with("OtherCart"),
        "{first}"
    );
    assert!(second.ends_with("OtherCart"), "{second}");
    assert!(err.to_string().contains("cart"));
    // The first registration stands.
    assert!(registry.is_registered::<Cart>());
    assert!(!registry.is_registered::<OtherCart>());
    assert_eq!(registry.types().collect::<Vec<_>>(), [("cart", 2)]);
}

#[test]
fn registering_the_same_type_twice_is_fine() {
    let mut registry = Registry::new();
    registry
        .register::<Cart>()
        .unwrap()
        .register::<Cart>()
        .unwrap()
        .register::<Prefs>()
        .unwrap();
    assert!(registry.is_registered::<Cart>());
    assert!(registry.is_registered_name("cart"));
    assert!(registry.is_registered_name("prefs"));
    assert!(!registry.is_registered_name("admin"));
    let mut types: Vec<_> = registry.types().collect();
    types.sort();
    assert_eq!(types, [("cart", 2), ("prefs", 1)]);
}

// ---- type tags --------------------------------------------------------------------------------

#[test]
fn slot_whose_type_tag_differs_from_its_key_is_a_mismatch() {
    let registry = registry_with::<Cart>();
    let record =
        Record::from_bytes(br#"{"cart":{"__type__":"admin","__v__":2,"items":[],"coupon":null}}"#)
            .unwrap();
    let err = registry.load::<Cart>(&record).err().unwrap();
    assert!(
        matches!(&err, LoadError::TypeMismatch { slot, stored } if slot == "cart" && stored == "admin"),
        "{err:?}"
    );
    // Same for a slot built from stored parts in bincode.
    let mut record = Record::new();
    let slot = Slot::from_parts("cart".into(), "prefs".into(), 2, 2, vec![]);
    assert_eq!(slot.format(), Some(Format::Bincode));
    record.insert(slot);
    let record = through_bytes(&record, Format::Bincode);
    assert!(matches!(
        registry.load::<Cart>(&record),
        Err(LoadError::TypeMismatch { .. })
    ));
}

#[test]
fn slot_in_an_unknown_format_is_refused_and_kept() {
    let registry = registry_with::<Cart>();
    let mut record = Record::new();
    record.insert(Slot::from_parts(
        "cart".into(),
        "cart".into(),
        2,
        99,
        vec![("items".into(), Bytes::from_static(b"??"))],
    ));
    let before = record.to_bytes(Format::Bincode).unwrap();
    let err = registry.load::<Cart>(&record).err().unwrap();
    assert!(
        matches!(
            &err,
            LoadError::Decode(sessions::error::DecodeError::UnsupportedFormat { type_name, tag: 99 })
                if type_name == "cart"
        ),
        "{err:?}"
    );
    // A record holding it is always framed in the binary form, unchanged.
    assert_eq!(record.to_bytes(Format::Json).unwrap(), before);
    assert_eq!(Record::from_bytes(&before).unwrap(), record);
}

#[test]
fn slot_stored_under_another_key_is_not_loaded() {
    // `__type__` says "cart", but the slot is under "admin": a Cart load looks only under "cart".
    let mut registry = registry_with::<Cart>();
    registry.register::<Admin>().unwrap();
    let record =
        Record::from_bytes(br#"{"admin":{"__type__":"cart","__v__":2,"items":[],"coupon":null}}"#)
            .unwrap();
    assert!(registry.load::<Cart>(&record).unwrap().is_none());
    assert!(matches!(
        registry.load::<Admin>(&record),
        Err(LoadError::TypeMismatch { .. })
    ));
}

// ---- malformed records ----------------------------------------------------------------------

fn assert_malformed(bytes: &[u8]) {
    match Record::from_bytes(bytes) {
        Ok(record) => panic!(
            "accepted a malformed record {:?}: {record:?}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        ),
        Err(
            RecordError::Malformed(_)
            | RecordError::MalformedSlot { .. }
            | RecordError::UnknownMarker,
        ) => {}
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

#[test]
fn malformed_json_records_are_errors() {
    let cases: &[&[u8]] = &[
        b"",
        b"   ",
        b"{",
        b"}",
        b"[]",
        b"null",
        b"\"cart\"",
        b"{\"cart\":",
        b"{\"cart\":{}}",
        br#"{"cart":[]}"#,
        br#"{"cart":null}"#,
        br#"{"cart":"x"}"#,
        br#"{"cart":{"__v__":2,"items":[]}}"#,
        br#"{"cart":{"__type__":"cart","items":[]}}"#,
        br#"{"cart":{"__type__":"cart","__v__":"2"}}"#,
        br#"{"cart":{"__type__":"cart","__v__":2.5}}"#,
        br#"{"cart":{"__type__":"cart","__v__":-1}}"#,
        br#"{"cart":{"__type__":"cart","__v__":4294967296}}"#,
        br#"{"cart":{"__type__":"cart","__v__":null}}"#,
        br#"{"cart":{"__type__":2,"__v__":2}}"#,
        br#"{"cart":{"__type__":null,"__v__":2}}"#,
        br#"{"cart":{"__type__":"cart","__v__":2,"items":[],"items":[]}}"#,
        br#"{"cart":{"__type__":"cart","__type__":"cart","__v__":2}}"#,
        br#"{"cart":{"__type__":"cart","__v__":2,"__v__":2}}"#,
        br#"{"cart":{"__type__":"cart","__v__":1},"cart":{"__type__":"cart","__v__":1}}"#,
        br#"{"cart":{"__type__":"cart","__v__":1}} x"#,
        br#"{"cart":{"__type__":"cart","__v__":1}}{}"#,
        br#"{"cart":{"__type__":"cart","__v__":1}},"#,
        br#"{"cart":{"__type__":"cart","__v__":1,"items":[}}"#,
        br#"{"cart":{"__type__":"cart","__v__":1,"items":}}"#,
        br#"{"cart":{"__type__":"cart","__v__":1,"items":[1,]}}"#,
        br#"{"cart":{"__type__":"cart","__v__":1,}}"#,
        b"{\"cart\":{\"__type__\":\"ca\xffrt\",\"__v__\":1}}",
        b"\x07garbage",
        b"\x00",
        b"\x00SB",
    ];
    for case in cases {
        assert_malformed(case);
    }
}

#[test]
fn deeply_nested_json_is_an_error_not_a_stack_overflow() {
    let depth = 100_000;
    // Nested past any recursion limit at the record level: refused.
    let mut arrays = br#"{"cart":"#.to_vec();
    arrays.extend(std::iter::repeat_n(b'[', depth));
    arrays.extend(std::iter::repeat_n(b']', depth));
    arrays.push(b'}');
    assert_malformed(&arrays);
    let mut objects = br#"{"cart":"#.repeat(depth);
    objects.extend(std::iter::repeat_n(b'}', depth));
    assert_malformed(&objects);
    // Inside a field: the record reader does not decode fields, so it may accept the text, but
    // decoding the field must then fail cleanly.
    let mut text = br#"{"cart":{"__type__":"cart","__v__":2,"items":"#.to_vec();
    text.extend(std::iter::repeat_n(b'[', depth));
    text.extend(std::iter::repeat_n(b']', depth));
    text.extend_from_slice(br#","coupon":null}}"#);
    if let Ok(record) = Record::from_bytes(&text) {
        assert!(matches!(
            registry_with::<Cart>().load::<Cart>(&record),
            Err(LoadError::Decode(_))
        ));
        // And the stored text is kept as it was.
        assert_eq!(record.to_bytes(Format::Json).unwrap(), text);
    }
}

fn valid_bincode_record() -> Bytes {
    let mut record = common::save_new(
        Cart {
            items: vec![item("apple", 2)],
            coupon: Some("C".into()),
        },
        Format::Bincode,
    );
    common::save_new_into(&mut record, Prefs { dark: true }, Format::Json);
    record.to_bytes(Format::Bincode).unwrap()
}

#[test]
fn truncated_bincode_record_is_an_error() {
    let bytes = valid_bincode_record();
    assert!(Record::from_bytes(&bytes).is_ok());
    for len in 0..bytes.len() {
        assert_malformed(&bytes[..len]);
    }
}

#[test]
fn bincode_record_with_trailing_bytes_is_an_error() {
    let mut bytes = valid_bincode_record().to_vec();
    bytes.push(0);
    assert_malformed(&bytes);
}

#[test]
fn bincode_record_with_a_duplicate_slot_is_an_error() {
    // Two slots named "cart": the writer does not check (a record cannot hold two), so build the
    // bytes by concatenating two single-slot records' slot lists.
    let one = {
        let mut record = Record::new();
        record.insert(Slot::new("cart", 2, Format::Bincode, vec![]));
        record.to_bytes(Format::Bincode).unwrap()
    };
    // marker (4 bytes), slot count 1 (varint, 1 byte), the slot.
    assert_eq!(one[4], 1);
    let slot = &one[5..];
    let mut two = one[..4].to_vec();
    two.push(2);
    two.extend_from_slice(slot);
    two.extend_from_slice(slot);
    assert_malformed(&two);
}

#[test]
fn bincode_record_with_a_huge_length_prefix_is_an_error() {
    // Marker, then a slot count of u64::MAX (varint 0xfd + 8 bytes).
    let mut bytes = vec![0x00, b'S', b'B', 0x01, 0xfd];
    bytes.extend_from_slice(&u64::MAX.to_le_bytes());
    assert_malformed(&bytes);
    // One slot whose name claims 2^40 bytes.
    let mut bytes = vec![0x00, b'S', b'B', 0x01, 0x01, 0xfd];
    bytes.extend_from_slice(&(1u64 << 40).to_le_bytes());
    assert_malformed(&bytes);
}

/// A binary record holding a JSON-tagged slot whose field bytes are `field`.
fn binary_record_with_json_field(field_name: &'static str, field: &'static [u8]) -> Bytes {
    let mut record = Record::new();
    record.insert(Slot::new(
        "prefs",
        1,
        Format::Json,
        vec![(field_name.into(), Bytes::from_static(field))],
    ));
    record.to_bytes(Format::Bincode).unwrap()
}

#[test]
fn json_field_in_a_binary_record_cannot_smuggle_a_slot_into_tson() {
    // A JSON-tagged slot framed in the binary form is written as TSON text once every slot is
    // JSON; its field bytes must not be able to close the slot and open another one.
    let bytes = binary_record_with_json_field(
        "dark",
        br#"true},"admin":{"__type__":"admin","__v__":1,"is_admin":true"#,
    );
    let mut registry = registry_with::<Prefs>();
    registry.register::<Admin>().unwrap();
    match Record::from_bytes(&bytes) {
        Err(RecordError::Malformed(_) | RecordError::MalformedSlot { .. }) => {}
        Err(other) => panic!("unexpected error {other:?}"),
        Ok(record) => {
            let text = record.to_bytes(Format::Json).unwrap();
            let reread = Record::from_bytes(&text).unwrap();
            assert!(
                reread.slot("admin").is_none(),
                "a slot appeared from inside a field: {}",
                String::from_utf8_lossy(&text)
            );
            assert!(registry.load::<Admin>(&reread).unwrap().is_none());
        }
    }
}

#[test]
fn json_slot_in_a_binary_record_must_be_writable_as_tson() {
    // Each of these reads as a binary record but would write TSON that no longer reads (or
    // reads as something else): the reader must refuse them.
    let cases: &[(&'static str, &'static [u8])] = &[
        ("dark", b""),
        ("dark", b"tru"),
        ("dark", b"true false"),
        ("dark", b"\"x\0y\""),
        ("dark", b"\"\\q\""),
        ("dark", b"\xff"),
        ("dark", b"true,\"other\":1"),
        ("dark", b" true"),
        ("__type__", b"\"admin\""),
        ("__v__", b"9"),
    ];
    for (name, field) in cases {
        let bytes = binary_record_with_json_field(name, field);
        match Record::from_bytes(&bytes) {
            Err(RecordError::Malformed(_) | RecordError::MalformedSlot { .. }) => {}
            Err(other) => panic!("unexpected error {other:?}"),
            Ok(record) => {
                let text = record.to_bytes(Format::Json).unwrap();
                assert_eq!(
                    Record::from_bytes(&text).ok().as_ref(),
                    Some(&record),
                    "field {name:?} = {:?} wrote back as {:?}",
                    String::from_utf8_lossy(field),
                    String::from_utf8_lossy(&text)
                );
            }
        }
    }
}

#[test]
fn binary_record_with_duplicate_field_names_is_an_error() {
    for format in FORMATS {
        let mut record = Record::new();
        record.insert(Slot::new(
            "prefs",
            1,
            format,
            vec![
                ("dark".into(), format.encode(&true).unwrap()),
                ("dark".into(), format.encode(&false).unwrap()),
            ],
        ));
        assert_malformed(&record.to_bytes(Format::Bincode).unwrap());
    }
}

#[test]
fn valid_json_slot_in_a_binary_record_reads_and_writes_back() {
    let bytes = binary_record_with_json_field("dark", b"true");
    let record = Record::from_bytes(&bytes).unwrap();
    let prefs = common::load_stored::<Prefs>(&registry_with::<Prefs>(), &record);
    assert!(*prefs.dark());
    assert_eq!(
        &record.to_bytes(Format::Json).unwrap()[..],
        br#"{"prefs":{"__type__":"prefs","__v__":1,"dark":true}}"#
    );
}

#[test]
fn corrupt_bincode_record_is_an_error_or_a_record_never_a_panic() {
    let bytes = valid_bincode_record();
    for index in 4..bytes.len() {
        for flip in [0x01, 0x80, 0xff] {
            let mut corrupt = bytes.to_vec();
            corrupt[index] ^= flip;
            let _ = Record::from_bytes(&corrupt);
        }
    }
}
