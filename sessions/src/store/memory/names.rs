//! The field-name lists a `MemoryStore`'s sessions share: every session of one session type
//! holds the same names, so the store keeps each list once.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use crate::record::{Name, Record};

/// How many distinct lists a store keeps for sharing; past that, a session keeps its own (which
/// costs memory, never correctness).
const MAX_LISTS: usize = 1024;

/// The lists, each kept once (up to [`MAX_LISTS`]).
#[derive(Default)]
pub(super) struct SharedNames(Mutex<HashSet<Arc<[Name]>>>);

impl SharedNames {
    /// The list to hold instead of `names`: an equal one the store holds already, else `names`,
    /// kept from now on.
    pub(super) fn share(&self, names: &Arc<[Name]>) -> Arc<[Name]> {
        // Inserting is the only write: a poisoned lock still holds a consistent set.
        let mut lists = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = lists.get(&**names) {
            return found.clone();
        }
        if lists.len() < MAX_LISTS {
            lists.insert(names.clone());
        }
        names.clone()
    }
}

/// The name lists `record`'s packed slots hold (a save keeps them: a session's names are
/// looked up in the store's set only when they change).
#[derive(Default)]
pub(super) struct Held([Option<Arc<[Name]>>; 4]);

impl Held {
    pub(super) fn of(record: &Record) -> Held {
        let mut held = Held::default();
        let names = record.slots().filter_map(|slot| slot.packed_names());
        for (place, names) in held.0.iter_mut().zip(names) {
            *place = Some(names.clone());
        }
        held
    }

    /// The list to hold instead of `names`: one of these when equal, else the store's.
    pub(super) fn share(&self, names: &Arc<[Name]>, store: &SharedNames) -> Arc<[Name]> {
        let held = self.0.iter().flatten();
        if let Some(same) = held.clone().find(|held| Arc::ptr_eq(held, names)) {
            return same.clone();
        }
        match held.clone().find(|held| ***held == **names) {
            Some(equal) => equal.clone(),
            None => store.share(names),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Format;
    use crate::record::Slot;

    fn record(fields: &[&'static str]) -> Record {
        let mut record = Record::new();
        let fields = fields
            .iter()
            .map(|name| (Name::Borrowed(*name), "1".into()))
            .collect();
        let slot = Slot::new("cart", 1, Format::Json, fields);
        record.insert(slot.detached_clone());
        record
    }

    fn names_of(record: &Record) -> Arc<[Name]> {
        let slot = record.slots().next().expect("a slot");
        slot.packed_names().expect("packed").clone()
    }

    #[test]
    fn sessions_of_one_layout_share_one_list() {
        let store = SharedNames::default();
        let (mut a, mut b) = (record(&["n", "items"]), record(&["n", "items"]));
        assert!(!Arc::ptr_eq(&names_of(&a), &names_of(&b)));
        a.kept(|names| store.share(names));
        b.kept(|names| store.share(names));
        assert!(Arc::ptr_eq(&names_of(&a), &names_of(&b)));
        let mut c = record(&["n", "coupon"]);
        c.kept(|names| store.share(names));
        assert!(!Arc::ptr_eq(&names_of(&a), &names_of(&c)));
        // A save that keeps the layout keeps the list without asking the store.
        let held = Held::of(&a);
        let mut saved = record(&["n", "items"]);
        saved.kept(|names| held.share(names, &SharedNames::default()));
        assert!(Arc::ptr_eq(&names_of(&a), &names_of(&saved)));
    }
}
