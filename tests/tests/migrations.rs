//! Stored slots of older versions load as the current version through the `From` chain; newer,
//! unknown and broken versions are refused without touching what is stored.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sessions::error::{DecodeError, LoadError};
use sessions::migrate::MigrationCount;
use sessions::store::{Name, Record, Registry, Slot, SlotChange};
use sessions::{Format, Session};

use common::{FORMATS, changeset, registry_with, through_bytes};

// ---- the chain: v1 → v2 → v3 ----------------------------------------------------------------

#[derive(Session, Default, Debug, Clone, PartialEq)]
#[session(name = "cart", version = 1)]
struct CartV1 {
    skus: Vec<String>,
}

#[derive(Session, Default, Debug, Clone, PartialEq)]
#[session(name = "cart", version = 2, migrate_from = CartV1)]
struct CartV2 {
    lines: Vec<(String, u32)>,
    coupon: Option<String>,
}

impl From<CartV1> for CartV2 {
    fn from(old: CartV1) -> Self {
        CartV2 {
            lines: old.skus.into_iter().map(|sku| (sku, 1)).collect(),
            coupon: None,
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Item {
    sku: String,
    qty: u32,
}

#[derive(Session, Default, Debug, Clone, PartialEq)]
#[session(name = "cart", version = 3, migrate_from = CartV2)]
struct Cart {
    items: Vec<Item>,
    coupon: Option<String>,
    #[session(default)]
    currency: String,
    note: Option<String>,
}

impl From<CartV2> for Cart {
    fn from(old: CartV2) -> Self {
        Cart {
            items: old
                .lines
                .into_iter()
                .map(|(sku, qty)| Item { sku, qty })
                .collect(),
            coupon: old.coupon.map(|c| c.to_uppercase()),
            currency: "EUR".into(),
            note: Some("migrated".into()),
        }
    }
}

// ---- a second type, to see counts are kept per type -----------------------------------------

#[derive(Session, Default, Debug, Clone, PartialEq)]
#[session(name = "prefs", version = 1)]
struct PrefsV1 {
    dark: bool,
}

#[derive(Session, Default, Debug, Clone, PartialEq)]
#[session(name = "prefs", version = 2, migrate_from = PrefsV1)]
struct Prefs {
    theme: String,
}

impl From<PrefsV1> for Prefs {
    fn from(old: PrefsV1) -> Self {
        Prefs {
            theme: if old.dark { "dark" } else { "light" }.into(),
        }
    }
}

// ---- a chain with a gap: v1 → v3 ------------------------------------------------------------

#[derive(Session, Default, Debug, Clone, PartialEq)]
#[session(name = "gap", version = 1)]
struct GapV1 {
    n: u32,
}

#[derive(Session, Default, Debug, Clone, PartialEq)]
#[session(name = "gap", version = 3, migrate_from = GapV1)]
struct Gap {
    n: u64,
}

impl From<GapV1> for Gap {
    fn from(old: GapV1) -> Self {
        Gap {
            n: u64::from(old.n) * 10,
        }
    }
}

// ---- a single-version type ------------------------------------------------------------------

#[derive(Session, Default, Debug, Clone, PartialEq)]
#[session(name = "single")]
struct Single {
    n: u32,
}

// ---- helpers --------------------------------------------------------------------------------

fn field(format: Format, name: &'static str, value: &impl Serialize) -> (Name, Bytes) {
    (name.into(), format.encode(value).unwrap())
}

fn record_of(slot: Slot) -> Record {
    let mut record = Record::new();
    record.insert(slot);
    record
}

fn v1_slot(format: Format) -> Slot {
    Slot::new(
        "cart",
        1,
        format,
        vec![field(format, "skus", &vec!["apple", "pear"])],
    )
}

fn v2_slot(format: Format) -> Slot {
    Slot::new(
        "cart",
        2,
        format,
        vec![
            field(format, "lines", &vec![("apple", 3u32)]),
            field(format, "coupon", &Some("welcome")),
        ],
    )
}

fn item(sku: &str, qty: u32) -> Item {
    Item {
        sku: sku.into(),
        qty,
    }
}

fn decode_err<T: Session>(registry: &Registry, record: &Record) -> DecodeError {
    match registry.load::<T>(record) {
        Err(LoadError::Decode(err)) => err,
        Err(other) => panic!("expected a decode error, got {other:?}"),
        Ok(Some(_)) => panic!("expected a decode error, got a value"),
        Ok(None) => panic!("expected a decode error, got nothing stored"),
    }
}

// ---- migration --------------------------------------------------------------------------------

#[test]
fn v1_slot_loads_as_v3() {
    let registry = registry_with::<Cart>();
    for format in FORMATS {
        let record = through_bytes(&record_of(v1_slot(format)), format);
        let cart = registry.load::<Cart>(&record).unwrap().unwrap();
        assert_eq!(
            cart.value(),
            &Cart {
                items: vec![item("apple", 1), item("pear", 1)],
                coupon: None,
                currency: "EUR".into(),
                note: Some("migrated".into()),
            },
            "{format}"
        );
        assert_eq!(cart.migrated_from(), Some(1));
        assert!(!cart.is_new());
    }
}

#[test]
fn v2_slot_loads_as_v3() {
    let registry = registry_with::<Cart>();
    for format in FORMATS {
        let record = through_bytes(&record_of(v2_slot(format)), format);
        let cart = registry.load::<Cart>(&record).unwrap().unwrap();
        assert_eq!(cart.items(), &[item("apple", 3)]);
        assert_eq!(cart.coupon().as_deref(), Some("WELCOME"));
        assert_eq!(cart.currency(), "EUR");
        assert_eq!(cart.migrated_from(), Some(2));
    }
}

#[test]
fn current_version_is_not_migrated() {
    let registry = registry_with::<Cart>();
    for format in FORMATS {
        let record = common::save_new(
            Cart {
                items: vec![item("x", 9)],
                ..Cart::default()
            },
            format,
        );
        let cart = registry.load::<Cart>(&record).unwrap().unwrap();
        assert_eq!(cart.migrated_from(), None);
        assert!(!cart.is_dirty());
        assert!(cart.changes(format).unwrap().is_none());
        assert!(registry.migration_counts().is_empty());
    }
}

/// Changed meaning (issue 12, bug 1): a migrated value used to be "all dirty", so its write-back
/// replaced the whole slot and a concurrent request's change was lost. Now the dirty set says
/// only what the handler changed (nothing, here), and the write-back is a whole-slot
/// `SlotChange::Rewrite` over the loaded revision with nothing named as changed: a store that
/// finds the slot already migrated by another request drops it instead of overwriting.
#[test]
fn migrated_slot_is_not_dirty_and_is_written_back_whole_at_the_new_version() {
    let registry = registry_with::<Cart>();
    for format in FORMATS {
        let mut record = record_of(v1_slot(format));
        let cart = registry.load::<Cart>(&record).unwrap().unwrap();
        assert!(
            !cart.is_dirty(),
            "a migration is not a change of the handler"
        );
        assert_eq!(cart.dirty_fields().count(), 0);
        assert_eq!(Cart::FIELDS, ["items", "coupon", "currency", "note"]);

        let change = cart.changes(format).unwrap().unwrap();
        let SlotChange::Rewrite {
            slot,
            base,
            changed,
        } = &change
        else {
            panic!("a migrated slot must be written whole, got {change:?}");
        };
        assert_eq!(*base, record.revision_of("cart"));
        assert!(changed.is_empty(), "a pure write-back names no change");
        assert_eq!(slot.name(), "cart");
        assert_eq!(slot.type_tag(), "cart");
        assert_eq!(slot.version(), 3);
        assert_eq!(slot.format(), Some(format));
        assert_eq!(
            slot.fields().map(|(n, _)| n).collect::<Vec<_>>(),
            Cart::FIELDS
        );
        assert_eq!(
            slot.field("items").unwrap(),
            &format.encode(cart.items()).unwrap()
        );
        assert_eq!(
            slot.field("currency").unwrap(),
            &format.encode("EUR").unwrap()
        );
        assert!(
            slot.field("skus").is_none(),
            "old fields are not carried over"
        );

        // Written back, it loads as v3 without migrating again.
        record.apply(&changeset(change)).unwrap();
        let record = through_bytes(&record, format);
        assert_eq!(record.slot("cart").unwrap().version(), 3);
        let again = common::load_stored::<Cart>(&registry, &record);
        assert_eq!(again.value(), cart.value());
    }
}

#[test]
fn migrated_slot_stays_whole_after_further_changes() {
    let registry = registry_with::<Cart>();
    let record = record_of(v2_slot(Format::Json));
    let mut cart = registry.load::<Cart>(&record).unwrap().unwrap();
    cart.set_note(None);
    let change = cart.changes(Format::Json).unwrap().unwrap();
    // Still whole, and now naming the one field the handler changed (`note`).
    assert!(
        matches!(&change, SlotChange::Rewrite { slot, changed, .. }
            if slot.version() == 3 && slot.fields().len() == 4
                && changed.iter().collect::<Vec<_>>() == [3]),
        "{change:?}"
    );
    assert_eq!(cart.dirty_fields().collect::<Vec<_>>(), ["note"]);
}

#[test]
fn migration_counts_per_type_and_version() {
    let mut registry = Registry::new();
    registry
        .register::<Cart>()
        .unwrap()
        .register::<Prefs>()
        .unwrap();
    let v1 = record_of(v1_slot(Format::Json));
    let v2 = record_of(v2_slot(Format::Bincode));
    let prefs_v1 = record_of(Slot::new(
        "prefs",
        1,
        Format::Json,
        vec![field(Format::Json, "dark", &true)],
    ));
    let v3 = common::save_new(Cart::default(), Format::Json);

    assert!(registry.migration_counts().is_empty());
    for _ in 0..3 {
        registry.load::<Cart>(&v1).unwrap().unwrap();
    }
    registry.load::<Cart>(&v2).unwrap().unwrap();
    registry.load::<Cart>(&v3).unwrap().unwrap(); // not a migration
    let prefs = registry.load::<Prefs>(&prefs_v1).unwrap().unwrap();
    assert_eq!(prefs.theme(), "dark");
    // A failed load is not a migration.
    let broken = record_of(Slot::new(
        "cart",
        1,
        Format::Json,
        vec![("skus".into(), Bytes::from_static(b"17"))],
    ));
    assert!(registry.load::<Cart>(&broken).is_err());

    let expected = [
        MigrationCount {
            type_name: "cart",
            from_version: 1,
            to_version: 3,
            count: 3,
        },
        MigrationCount {
            type_name: "cart",
            from_version: 2,
            to_version: 3,
            count: 1,
        },
        MigrationCount {
            type_name: "prefs",
            from_version: 1,
            to_version: 2,
            count: 1,
        },
    ];
    assert_eq!(registry.migration_counts(), expected);

    // A clone shares the counters.
    let clone = registry.clone();
    clone.load::<Cart>(&v2).unwrap().unwrap();
    assert_eq!(registry.migration_counts()[1].count, 2);
    // Another registry counts on its own.
    assert!(registry_with::<Cart>().migration_counts().is_empty());
}

// ---- refused versions -----------------------------------------------------------------------

#[test]
fn future_version_is_refused_and_left_untouched() {
    let registry = registry_with::<Cart>();
    for format in FORMATS {
        let future = Slot::new(
            "cart",
            4,
            format,
            vec![
                field(format, "items", &Vec::<Item>::new()),
                field(format, "brand_new", &"from the future"),
            ],
        );
        let record = through_bytes(&record_of(future), format);
        let before = record.to_bytes(format).unwrap();
        let err = decode_err::<Cart>(&registry, &record);
        assert!(
            matches!(
                err,
                DecodeError::FutureVersion {
                    ref type_name,
                    stored: 4,
                    known: 3
                } if type_name == "cart"
            ),
            "{err:?}"
        );
        assert_eq!(record.to_bytes(format).unwrap(), before);
        assert!(registry.migration_counts().is_empty());
        // And with far-future versions.
        let mut far = record.clone();
        far.insert(Slot::new("cart", u32::MAX, format, vec![]));
        assert!(matches!(
            decode_err::<Cart>(&registry, &far),
            DecodeError::FutureVersion {
                stored: u32::MAX,
                known: 3,
                ..
            }
        ));
    }
}

#[test]
fn future_version_in_json_text_keeps_its_exact_bytes() {
    let registry = registry_with::<Cart>();
    let text = br#"{"cart":{"__v__":9, "__type__":"cart", "items":[ ], "x":{"y":1}}}"#;
    let record = Record::from_bytes(text).unwrap();
    assert!(matches!(
        decode_err::<Cart>(&registry, &record),
        DecodeError::FutureVersion {
            stored: 9,
            known: 3,
            ..
        }
    ));
    assert_eq!(&record.to_bytes(Format::Json).unwrap()[..], &text[..]);
}

#[test]
fn version_missing_from_the_chain_is_unknown() {
    let registry = registry_with::<Gap>();
    for format in FORMATS {
        let v2 = record_of(Slot::new("gap", 2, format, vec![field(format, "n", &5u32)]));
        let err = decode_err::<Gap>(&registry, &v2);
        assert!(
            matches!(err, DecodeError::UnknownVersion { ref type_name, stored: 2 } if type_name == "gap"),
            "{err:?}"
        );
        // v1 is in the chain and migrates.
        let v1 = record_of(Slot::new("gap", 1, format, vec![field(format, "n", &5u32)]));
        let gap = registry.load::<Gap>(&v1).unwrap().unwrap();
        assert_eq!(*gap.n(), 50);
        assert_eq!(gap.migrated_from(), Some(1));
    }
    assert_eq!(
        registry.migration_counts(),
        [MigrationCount {
            type_name: "gap",
            from_version: 1,
            to_version: 3,
            count: FORMATS.len() as u64,
        }]
    );
}

#[test]
fn version_zero_is_an_error() {
    for format in FORMATS {
        let cart = record_of(Slot::new(
            "cart",
            0,
            format,
            vec![field(format, "skus", &vec!["a"])],
        ));
        assert!(matches!(
            decode_err::<Cart>(&registry_with::<Cart>(), &cart),
            DecodeError::UnknownVersion { stored: 0, .. }
        ));
        let single = record_of(Slot::new(
            "single",
            0,
            format,
            vec![field(format, "n", &1u32)],
        ));
        assert!(matches!(
            decode_err::<Single>(&registry_with::<Single>(), &single),
            DecodeError::UnknownVersion { stored: 0, .. }
        ));
    }
    // Also when read from TSON text.
    let record =
        Record::from_bytes(br#"{"single":{"__type__":"single","__v__":0,"n":1}}"#).unwrap();
    assert!(registry_with::<Single>().load::<Single>(&record).is_err());
}

#[test]
fn older_version_of_a_single_version_type_is_unknown() {
    // `Single` is v1 with no chain; a v1 slot loads, nothing older or newer does.
    let registry = registry_with::<Single>();
    let ok = record_of(Slot::new(
        "single",
        1,
        Format::Json,
        vec![field(Format::Json, "n", &3u32)],
    ));
    assert_eq!(*registry.load::<Single>(&ok).unwrap().unwrap().n(), 3);
    let newer = record_of(Slot::new("single", 2, Format::Json, vec![]));
    assert!(matches!(
        decode_err::<Single>(&registry, &newer),
        DecodeError::FutureVersion {
            stored: 2,
            known: 1,
            ..
        }
    ));
}

#[test]
fn broken_old_field_names_its_version() {
    let registry = registry_with::<Cart>();
    for format in FORMATS {
        let bad = record_of(Slot::new(
            "cart",
            1,
            format,
            vec![field(format, "skus", &"not a list")],
        ));
        let err = decode_err::<Cart>(&registry, &bad);
        assert!(
            matches!(
                err,
                DecodeError::Field {
                    type_name: "cart",
                    version: 1,
                    field: "skus",
                    ..
                }
            ),
            "{err:?}"
        );
    }
}

// ---- missing fields ---------------------------------------------------------------------------

#[test]
fn missing_default_field_takes_default_and_missing_option_is_none() {
    let registry = registry_with::<Cart>();
    for format in FORMATS {
        // A v3 slot written before `currency` and `note` existed.
        let slot = Slot::new(
            "cart",
            3,
            format,
            vec![
                field(format, "items", &vec![item("a", 1)]),
                field(format, "coupon", &Some("C")),
            ],
        );
        let cart = common::load_stored::<Cart>(&registry, &record_of(slot));
        assert_eq!(cart.currency(), "", "{format}");
        assert_eq!(cart.note(), &None);
        assert_eq!(cart.items(), &vec![item("a", 1)]);
        assert_eq!(cart.coupon().as_deref(), Some("C"));
    }
}

#[test]
fn missing_option_field_in_an_old_version_is_none() {
    let registry = registry_with::<Cart>();
    for format in FORMATS {
        // A v2 slot without `coupon` (an Option).
        let slot = Slot::new(
            "cart",
            2,
            format,
            vec![field(format, "lines", &vec![("a", 2u32)])],
        );
        let cart = registry.load::<Cart>(&record_of(slot)).unwrap().unwrap();
        assert_eq!(cart.coupon(), &None);
        assert_eq!(cart.items(), &[item("a", 2)]);
    }
}

#[test]
fn missing_required_field_is_an_error() {
    let registry = registry_with::<Cart>();
    for format in FORMATS {
        let v3 = record_of(Slot::new(
            "cart",
            3,
            format,
            vec![field(format, "coupon", &None::<String>)],
        ));
        let err = decode_err::<Cart>(&registry, &v3);
        assert!(
            matches!(
                err,
                DecodeError::MissingField {
                    type_name: "cart",
                    version: 3,
                    field: "items"
                }
            ),
            "{err:?}"
        );
        let v1 = record_of(Slot::new("cart", 1, format, vec![]));
        let err = decode_err::<Cart>(&registry, &v1);
        assert!(
            matches!(
                err,
                DecodeError::MissingField {
                    type_name: "cart",
                    version: 1,
                    field: "skus"
                }
            ),
            "{err:?}"
        );
    }
    assert!(registry.migration_counts().is_empty());
}

#[test]
fn present_default_field_is_decoded_not_defaulted() {
    let registry = registry_with::<Cart>();
    for format in FORMATS {
        let slot = Slot::new(
            "cart",
            3,
            format,
            vec![
                field(format, "items", &Vec::<Item>::new()),
                field(format, "coupon", &None::<String>),
                field(format, "currency", &"USD"),
                field(format, "note", &Some("n")),
            ],
        );
        let cart = common::load_stored::<Cart>(&registry, &record_of(slot));
        assert_eq!(cart.currency(), "USD");
        assert_eq!(cart.note().as_deref(), Some("n"));
        // A broken default field is an error, not silently defaulted.
        let bad = Slot::new(
            "cart",
            3,
            format,
            vec![
                field(format, "items", &Vec::<Item>::new()),
                field(format, "currency", &17u64),
            ],
        );
        assert!(matches!(
            decode_err::<Cart>(&registry, &record_of(bad)),
            DecodeError::Field {
                field: "currency",
                ..
            }
        ));
    }
}

#[test]
fn unknown_extra_fields_in_a_stored_slot_are_ignored_on_load() {
    let registry = registry_with::<Cart>();
    let record = Record::from_bytes(
        br#"{"cart":{"__type__":"cart","__v__":3,"items":[],"coupon":null,"legacy":{"a":1}}}"#,
    )
    .unwrap();
    let cart = common::load_stored::<Cart>(&registry, &record);
    assert!(cart.items().is_empty());
}
