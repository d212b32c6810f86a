//! A three-step chain v1 → v2 → v3: a stored v1 slot loads as v3.

use sessions::prelude::*;
use sessions::Format;
use sessions::store::{Record, Registry, Slot};

#[derive(Session, Default)]
#[session(name = "cart", version = 1)]
struct CartV1 {
    skus: Vec<String>,
}

#[derive(Session, Default)]
#[session(name = "cart", version = 2, migrate_from = CartV1)]
struct CartV2 {
    items: Vec<(String, u32)>,
}

#[derive(Session, Default)]
#[session(name = "cart", version = 3, migrate_from = CartV2)]
struct Cart {
    items: Vec<(String, u32)>,
    total_qty: u32,
}

impl From<CartV1> for CartV2 {
    fn from(old: CartV1) -> Self {
        CartV2 {
            items: old.skus.into_iter().map(|sku| (sku, 1)).collect(),
        }
    }
}

impl From<CartV2> for Cart {
    fn from(old: CartV2) -> Self {
        let total_qty = old.items.iter().map(|(_, qty)| qty).sum();
        Cart {
            items: old.items,
            total_qty,
        }
    }
}

fn main() {
    let mut registry = Registry::new();
    registry.register::<Cart>().unwrap();

    let mut record = Record::new();
    record.insert(Slot::new(
        "cart",
        1,
        Format::Json,
        vec![("skus".into(), r#"["apple","pear"]"#.into())],
    ));
    let cart = registry.load::<Cart>(&record).unwrap().unwrap();
    assert_eq!(
        cart.items(),
        &[("apple".to_owned(), 1), ("pear".to_owned(), 1)]
    );
    assert_eq!(*cart.total_qty(), 2);
    assert_eq!(cart.migrated_from(), Some(1));
    // A migrated slot is written back whole, in the new version, though nothing is dirty.
    assert!(!cart.is_dirty());
    let Some(sessions::store::SlotChange::Rewrite { slot, .. }) = cart.changes(Format::Json).unwrap() else {
        panic!("a migrated slot is written back whole");
    };
    assert_eq!(slot.version(), 3);

    let mut record = Record::new();
    record.insert(Slot::new(
        "cart",
        2,
        Format::Json,
        vec![("items".into(), r#"[["fig",4]]"#.into())],
    ));
    let cart = registry.load::<Cart>(&record).unwrap().unwrap();
    assert_eq!(*cart.total_qty(), 4);
    assert_eq!(cart.migrated_from(), Some(2));
}
