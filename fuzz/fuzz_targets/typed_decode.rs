//! `Registry::load` of a v3 type with a v1 → v2 → v3 `migrate_from` chain, on records read from
//! arbitrary bytes or assembled from arbitrary slots (`Slot::new` / `Slot::from_parts`), fields
//! in JSON, bincode, an unknown format, or raw bytes. It never panics, and what it accepts
//!
//! * was migrated exactly when the stored version is older than 3, and from that version;
//! * writes back (the whole slot, current version, though no field is dirty) and reads back as
//!   the same value, unmigrated, in JSON and in bincode;
//! * agrees with `migrate_slot`, the eager migration the stores run;
//! * loads the same value again from the same bytes (the second load decodes lazily).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessions::Format;
use sessions::store::{Record, Registry, SlotChange};
use sessions::migrate::migrate_slot;
use sessions_fuzz::account::{Account, TypedInput, encode_whole};

fn registry() -> &'static Registry {
    static REGISTRY: std::sync::OnceLock<Registry> = std::sync::OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut registry = Registry::new();
        if let Err(err) = registry.register::<Account>() {
            panic!("register: {err}");
        }
        registry
    })
}

/// Loads `Account` from `record`; panics when it is stored but does not load unmigrated.
fn load_current(record: &Record, what: &str) -> Account {
    match registry().load::<Account>(record) {
        Ok(Some(typed)) => {
            assert_eq!(typed.migrated_from(), None, "{what}: migrated again");
            assert!(!typed.is_dirty(), "{what}: dirty after a plain load");
            typed.into_inner()
        }
        Ok(None) => panic!("{what}: the slot is gone"),
        Err(err) => panic!("{what}: does not load back: {err}"),
    }
}

fuzz_target!(|input: TypedInput| {
    let Some(record) = input.record() else {
        return;
    };
    let loaded = match registry().load::<Account>(&record) {
        Ok(Some(typed)) => typed,
        Ok(None) | Err(_) => return,
    };
    let Some(slot) = record.slot("account") else {
        panic!("loaded from a record without the slot");
    };
    let stored = slot.version();
    assert!((1..=3).contains(&stored), "loaded from version {stored}");
    let migrated = loaded.migrated_from();
    if stored < 3 {
        assert_eq!(migrated, Some(stored));
        // Written back whole on the next save, though no field changed (nothing is dirty: a
        // rewrite names the fields that changed, so a racing write of other fields survives).
        assert!(!loaded.is_dirty(), "a migration marked fields changed");
        assert!(
            matches!(loaded.changes(Format::Json), Ok(Some(SlotChange::Rewrite { .. }))),
            "a migrated slot must be written back"
        );
    } else {
        assert_eq!(migrated, None);
    }

    // A second load of the same bytes trusts the first one's check and decodes field by field
    // (lazily): it must see the same value.
    match registry().load::<Account>(&record) {
        Ok(Some(again)) => assert_eq!(again.value(), loaded.value(), "loaded twice"),
        Ok(None) => panic!("the same bytes loaded once, then found nothing"),
        Err(err) => panic!("the same bytes loaded once, then failed: {err}"),
    }

    for format in [Format::Json, Format::Bincode] {
        // What a save would write applies to the stored record and loads back as the value.
        match loaded.changes(format) {
            Ok(Some(change)) => {
                assert!(
                    matches!(&change, SlotChange::Rewrite { slot, .. } if slot.version() == 3),
                    "a migration must rewrite the whole slot at v3: {change:?}"
                );
                let mut saved = record.clone();
                if let Err(err) = saved.apply(&std::iter::once(change).collect()) {
                    panic!("{format}: the write-back does not apply: {err}");
                }
                assert_eq!(
                    &load_current(&saved, "written back"),
                    loaded.value(),
                    "{format}: written back"
                );
            }
            Ok(None) => assert!(
                migrated.is_none(),
                "{format}: a migration with nothing to write"
            ),
            Err(err) => panic!("{format}: a loaded value cannot be written: {err}"),
        }
        // Every field encoded afresh decodes to the same value.
        let mut fresh = Record::new();
        fresh.insert(encode_whole(loaded.value(), format));
        assert_eq!(
            &load_current(&fresh, "re-encoded"),
            loaded.value(),
            "{format}: re-encoded"
        );
        // The eager migration of the stores gives the same value.
        match migrate_slot::<Account>(slot, format) {
            Ok(Some(new_slot)) => {
                assert!(stored < 3, "migrate_slot rewrote a current slot");
                let mut eager = Record::new();
                eager.insert(new_slot);
                assert_eq!(
                    &load_current(&eager, "migrate_slot"),
                    loaded.value(),
                    "{format}: migrate_slot"
                );
            }
            Ok(None) => assert_eq!(stored, 3, "migrate_slot left an old slot"),
            Err(err) => panic!("{format}: migrate_slot refused what load accepted: {err}"),
        }
    }
});
