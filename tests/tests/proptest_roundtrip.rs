//! Arbitrary session values come back equal through both codecs, and arbitrary stored bytes
//! never panic the record reader.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use sessions::Format;
use sessions::prelude::*;
use sessions::store::{Name, Record, Slot};

use common::{FORMATS, changeset, load_stored, registry_with, roundtrip, save_new, through_bytes};

// ---- arbitrary session values ---------------------------------------------------------------

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
enum Shape {
    Empty,
    Point(i64, i64),
    Named { name: String, tags: Vec<String> },
    Wrapped(Option<Box<Shape>>),
    Group(Vec<Shape>),
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
struct Inner {
    label: String,
    weights: Vec<f64>,
    child: Option<Box<Inner>>,
}

#[derive(Session, Default, Debug, Clone, PartialEq)]
#[session(name = "arb", version = 4)]
struct Arb {
    text: String,
    numbers: Vec<i64>,
    big: u64,
    wide: i128,
    small: i8,
    float: f64,
    flag: bool,
    letter: char,
    bytes: Vec<u8>,
    maybe: Option<Vec<Option<String>>>,
    sorted: BTreeMap<String, Vec<u32>>,
    hashed: HashMap<String, Option<i32>>,
    by_number: BTreeMap<u32, String>,
    shapes: Vec<Shape>,
    inner: Inner,
    pair: (u16, String),
}

fn finite_f64() -> impl Strategy<Value = f64> {
    prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO
}

fn shape() -> impl Strategy<Value = Shape> {
    let leaf = prop_oneof![
        Just(Shape::Empty),
        (any::<i64>(), any::<i64>()).prop_map(|(x, y)| Shape::Point(x, y)),
        (
            any::<String>(),
            prop::collection::vec(any::<String>(), 0..3)
        )
            .prop_map(|(name, tags)| Shape::Named { name, tags }),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::option::of(inner.clone()).prop_map(|s| Shape::Wrapped(s.map(Box::new))),
            prop::collection::vec(inner, 0..4).prop_map(Shape::Group),
        ]
    })
}

fn inner() -> impl Strategy<Value = Inner> {
    let leaf = (any::<String>(), prop::collection::vec(finite_f64(), 0..4)).prop_map(
        |(label, weights)| Inner {
            label,
            weights,
            child: None,
        },
    );
    leaf.prop_recursive(3, 8, 1, |child| {
        (
            any::<String>(),
            prop::collection::vec(finite_f64(), 0..4),
            child,
        )
            .prop_map(|(label, weights, child)| Inner {
                label,
                weights,
                child: Some(Box::new(child)),
            })
    })
}

fn arb() -> impl Strategy<Value = Arb> {
    let scalars = (
        any::<String>(),
        prop::collection::vec(any::<i64>(), 0..8),
        any::<u64>(),
        any::<i128>(),
        any::<i8>(),
        finite_f64(),
        any::<bool>(),
        any::<char>(),
        prop::collection::vec(any::<u8>(), 0..32),
    );
    let nested = (
        prop::option::of(prop::collection::vec(
            prop::option::of(any::<String>()),
            0..4,
        )),
        prop::collection::btree_map(
            any::<String>(),
            prop::collection::vec(any::<u32>(), 0..4),
            0..4,
        ),
        prop::collection::hash_map(any::<String>(), prop::option::of(any::<i32>()), 0..4),
        prop::collection::btree_map(any::<u32>(), any::<String>(), 0..4),
        prop::collection::vec(shape(), 0..4),
        inner(),
        (any::<u16>(), any::<String>()),
    );
    (scalars, nested).prop_map(
        |(
            (text, numbers, big, wide, small, float, flag, letter, bytes),
            (maybe, sorted, hashed, by_number, shapes, inner, pair),
        )| Arb {
            text,
            numbers,
            big,
            wide,
            small,
            float,
            flag,
            letter,
            bytes,
            maybe,
            sorted,
            hashed,
            by_number,
            shapes,
            inner,
            pair,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_value_roundtrips_in_both_codecs(value in arb()) {
        for format in FORMATS {
            prop_assert_eq!(&roundtrip(value.clone(), format), &value, "{}", format);
        }
    }

    #[test]
    fn arbitrary_field_updates_roundtrip(first in arb(), second in arb()) {
        // Stored as `first`, then every field is rewritten to `second` through field updates.
        let registry = registry_with::<Arb>();
        for format in FORMATS {
            let mut record = save_new(first.clone(), format);
            let mut typed = load_stored::<Arb>(&registry, &record);
            typed.replace(second.clone());
            let change = typed.changes(format).unwrap().unwrap();
            record.apply(&changeset(change)).unwrap();
            let back = through_bytes(&record, format);
            let loaded = load_stored::<Arb>(&registry, &back);
            prop_assert_eq!(loaded.value(), &second);
        }
    }

    #[test]
    fn arbitrary_strings_roundtrip_in_a_json_record(key in any::<String>(), text in any::<String>()) {
        // Arbitrary slot and field names and string values survive the TSON framing.
        prop_assume!(!key.starts_with("__"));
        let mut record = Record::new();
        record.insert(Slot::new(
            key.clone(),
            1,
            Format::Json,
            vec![(Name::Owned(key.clone()), Format::Json.encode(&text).unwrap())],
        ));
        let back = through_bytes(&record, Format::Json);
        let field = back.slot(&key).unwrap().field(&key).unwrap();
        prop_assert_eq!(Format::Json.decode::<String>(field).unwrap(), text);
    }
}

// ---- arbitrary stored bytes -----------------------------------------------------------------

/// An arbitrary slot as a store could hold it: any names, any version, any format tag, any
/// field bytes; JSON-tagged slots hold arbitrary JSON values.
fn stored_slot() -> impl Strategy<Value = Slot> {
    let name = prop_oneof![Just("cart".to_owned()), "[a-z_]{0,6}", any::<String>()];
    let json_value = prop_oneof![
        Just("null".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
        prop::collection::vec(any::<u32>(), 0..4).prop_map(|v| serde_json::to_string(&v).unwrap()),
    ];
    let fields = prop::collection::vec((name.clone(), json_value), 0..4);
    let binary_fields = prop::collection::vec(
        (name.clone(), prop::collection::vec(any::<u8>(), 0..8)),
        0..4,
    );
    prop_oneof![
        (name.clone(), any::<u32>(), fields).prop_map(|(name, version, fields)| {
            let mut seen = Vec::new();
            let fields = fields
                .into_iter()
                .filter(|(n, _)| {
                    !n.starts_with("__") && !seen.contains(n) && {
                        seen.push(n.clone());
                        true
                    }
                })
                .map(|(n, v)| (Name::Owned(n), Bytes::from(v)))
                .collect();
            Slot::new(name, version, Format::Json, fields)
        }),
        (name.clone(), name, any::<u32>(), 2u8..=255, binary_fields).prop_map(
            |(name, tag, version, format, fields)| {
                let mut seen = Vec::new();
                let fields = fields
                    .into_iter()
                    .filter(|(n, _)| {
                        !seen.contains(n) && {
                            seen.push(n.clone());
                            true
                        }
                    })
                    .map(|(n, v)| (Name::Owned(n), Bytes::from(v)))
                    .collect();
                Slot::from_parts(name.clone().into(), tag.into(), version, format, fields)
            }
        ),
    ]
}

fn stored_record() -> impl Strategy<Value = Record> {
    prop::collection::vec(stored_slot(), 0..4).prop_map(|slots| {
        let mut record = Record::new();
        for slot in slots {
            record.insert(slot);
        }
        record
    })
}

/// Whatever `from_bytes` accepts must write back, in either format, to bytes that read back
/// as the same record: a save must never turn a readable session into an unreadable one.
fn assert_writes_back(record: &Record) -> Result<(), TestCaseError> {
    for format in FORMATS {
        let bytes = record.to_bytes(format).unwrap();
        let back = Record::from_bytes(&bytes);
        prop_assert!(
            back.is_ok(),
            "a record read from storage wrote back unreadable in {}: {:?}\n{:?}",
            format,
            back.err(),
            String::from_utf8_lossy(&bytes)
        );
        prop_assert_eq!(&back.unwrap(), record);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn from_bytes_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(record) = Record::from_bytes(&bytes) {
            assert_writes_back(&record)?;
        }
    }

    #[test]
    fn from_bytes_never_panics_on_binary_looking_bytes(tail in prop::collection::vec(any::<u8>(), 0..256)) {
        let mut bytes = vec![0x00, b'S', b'B', 0x01];
        bytes.extend_from_slice(&tail);
        if let Ok(record) = Record::from_bytes(&bytes) {
            assert_writes_back(&record)?;
        }
    }

    #[test]
    fn from_bytes_never_panics_on_json_looking_text(text in r#"[{}\[\]":,_a-z0-9 ]{0,64}"#) {
        if let Ok(record) = Record::from_bytes(text.as_bytes()) {
            assert_writes_back(&record)?;
        }
    }

    #[test]
    fn stored_records_roundtrip_in_both_forms(record in stored_record()) {
        for format in FORMATS {
            let bytes = record.to_bytes(format).unwrap();
            prop_assert_eq!(&Record::from_bytes(&bytes).unwrap(), &record);
        }
        assert_writes_back(&record)?;
    }

    #[test]
    fn corrupted_records_never_panic(
        record in stored_record(),
        format in prop::sample::select(FORMATS.to_vec()),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {

        let mut bytes = record.to_bytes(format).unwrap().to_vec();
        if bytes.is_empty() {
            return Ok(());
        }
        for (index, byte) in edits {
            let i = index.index(bytes.len());
            bytes[i] = byte;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        if let Ok(record) = Record::from_bytes(&bytes) {
            assert_writes_back(&record)?;
        }
    }
}

// ---- floats ---------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// JSON has no NaN or infinity (serde_json would write `null`, which does not read back as
    /// the float): a value holding one is refused when it is encoded, and every other float
    /// comes back bit for bit. bincode and MessagePack keep every float, NaN and infinities too.
    #[test]
    fn a_float_is_encoded_in_json_only_when_it_reads_back(x in any::<f64>(), y in any::<f32>()) {
        type Floats = (f64, Option<f32>, Vec<f64>, BTreeMap<String, f64>);
        let value: Floats = (x, Some(y), vec![1.5, x], BTreeMap::from([("k".to_owned(), x)]));
        let json = Format::Json.encode(&value);
        prop_assert_eq!(json.is_ok(), x.is_finite() && y.is_finite(), "{:?}", json);
        if let Ok(bytes) = json {
            let back: Floats = Format::Json.decode(&bytes).unwrap();
            prop_assert_eq!(back.0.to_bits(), x.to_bits());
            prop_assert_eq!(back.1.map(f32::to_bits), Some(y.to_bits()));
        }
        for binary in [Format::Bincode, Format::MessagePack] {
            let bytes = binary.encode(&value).unwrap();
            let back: Floats = binary.decode(&bytes).unwrap();
            prop_assert_eq!(back.0.to_bits(), x.to_bits());
            prop_assert_eq!(back.1.map(f32::to_bits), Some(y.to_bits()));
        }
    }
}
