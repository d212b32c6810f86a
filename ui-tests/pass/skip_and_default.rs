//! `skip` fields are never stored; `default` fields may be missing from stored data.

use sessions::prelude::*;
use sessions::Format;
use sessions::store::{Record, Registry, Slot};

#[derive(Session, Default)]
#[session(name = "cart")]
struct Cart {
    items: Vec<String>,
    #[session(default)]
    visits: u32,
    #[session(skip)]
    cache: Option<String>,
    coupon: Option<String>,
}

fn main() {
    assert_eq!(Cart::FIELDS, ["items", "visits", "coupon"]);

    let mut registry = Registry::new();
    registry.register::<Cart>().unwrap();
    let mut record = Record::new();
    // `visits` (default) and `coupon` (an Option) are missing: both load.
    record.insert(Slot::new(
        "cart",
        1,
        Format::Json,
        vec![("items".into(), r#"["apple"]"#.into())],
    ));
    let mut cart = registry.load::<Cart>(&record).unwrap().unwrap();
    assert_eq!(cart.items(), &["apple"]);
    assert_eq!(*cart.visits(), 0);
    assert_eq!(*cart.coupon(), None);
    assert_eq!(*cart.cache(), None);

    cart.set_cache(Some("warm".into()));
    *cart.cache_mut() = Some("hot".into());
    assert!(!cart.is_dirty(), "a skip field is never dirty");
    cart.set_visits(1);
    assert_eq!(cart.dirty_fields().collect::<Vec<_>>(), ["visits"]);
}
