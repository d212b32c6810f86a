//! The expansion of `#[derive(Session)]` is lint-clean: this file denies rustc's warnings and is
//! checked with `cargo clippy -p sessions-ui-tests --all-targets -- -D warnings -W clippy::pedantic`
//! (which trybuild's pass cases cannot be).
#![deny(warnings, unused_qualifications, missing_docs)]
#![deny(unreachable_pub, rust_2018_idioms, clippy::all, clippy::pedantic)]

use serde::{Deserialize, Serialize};
use sessions::Format;
use sessions::prelude::*;
use sessions::store::{Record, Registry, Slot};

/// An item in a cart.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// The stock keeping unit.
    pub sku: String,
    /// How many.
    pub qty: u32,
}

/// The first version of the cart.
#[derive(Session, Default, Debug)]
#[session(name = "cart")]
pub struct CartV1 {
    /// The skus, one per item.
    pub skus: Vec<String>,
}

/// The cart.
#[derive(Session, Default, Debug)]
#[session(name = "cart", version = 2, migrate_from = CartV1)]
pub struct Cart {
    /// The items.
    pub items: Vec<Item>,
    /// A coupon code, stored as `code`.
    #[session(rename = "code")]
    pub coupon: Option<String>,
    /// Visits, zero when missing from stored data.
    #[session(default)]
    pub visits: u64,
    /// Never stored.
    #[session(skip)]
    pub cache: Option<String>,
}

impl From<CartV1> for Cart {
    fn from(old: CartV1) -> Self {
        Cart {
            items: old
                .skus
                .into_iter()
                .map(|sku| Item { sku, qty: 1 })
                .collect(),
            ..Cart::default()
        }
    }
}

/// A generic slot with a bound, a where clause, a `skip` and a `default` field.
#[derive(Session, Default, Debug)]
#[session(name = "pair", version = 2, migrate_from = PairV1<A>)]
pub struct Pair<A: Clone, B>
where
    B: Default,
{
    /// The first.
    pub first: A,
    /// The second, never stored.
    #[session(skip)]
    pub second: B,
    /// A count.
    #[session(default)]
    pub count: u32,
}

/// The first version of [`Pair`].
#[derive(Session, Default, Debug)]
#[session(name = "pair")]
pub struct PairV1<A> {
    /// The first.
    pub first: A,
}

impl<A: Clone, B: Default> From<PairV1<A>> for Pair<A, B> {
    fn from(old: PairV1<A>) -> Self {
        Pair {
            first: old.first,
            second: B::default(),
            count: 1,
        }
    }
}

/// A raw identifier field.
#[derive(Session, Default, Debug)]
#[session(name = "tagged")]
pub struct Tagged {
    /// The kind.
    pub r#type: String,
}

mod inner {
    /// A crate-private session type: its accessors are crate-private too.
    #[derive(sessions::Session, Default)]
    #[session(name = "counter")]
    pub(crate) struct Counter {
        pub(crate) hits: u64,
    }
}

#[test]
fn accessors_under_deny_warnings() {
    let mut cart = Typed::new(Cart::default());
    cart.items_mut().push(Item {
        sku: "apple".into(),
        qty: 2,
    });
    cart.set_coupon(Some("WELCOME".into()));
    *cart.cache_mut() = Some("warm".into());
    assert_eq!(cart.dirty_fields().collect::<Vec<_>>(), ["items", "code"]);
    assert_eq!(cart.items()[0].qty, 2);
    assert_eq!(*cart.visits(), 0);
    assert_eq!(cart.cache().as_deref(), Some("warm"));

    let mut pair: Typed<Pair<String, Vec<u8>>> = Typed::default();
    pair.set_first("a".into());
    pair.second_mut().push(1);
    assert_eq!(pair.first(), "a");
    assert_eq!(pair.dirty_fields().collect::<Vec<_>>(), ["first"]);

    let mut tagged = Typed::new(Tagged::default());
    tagged.set_type("gift".into());
    assert_eq!(tagged.r#type(), "gift");

    let mut counter = Typed::new(inner::Counter::default());
    *counter.hits_mut() += 1;
    assert_eq!(*counter.hits(), 1);
}

#[test]
fn migrations_under_deny_warnings() {
    let mut registry = Registry::new();
    registry.register::<Cart>().expect("register Cart");
    registry
        .register::<Pair<u8, String>>()
        .expect("register Pair");
    let mut record = Record::new();
    record.insert(Slot::new(
        "cart",
        1,
        Format::Json,
        vec![("skus".into(), r#"["apple"]"#.into())],
    ));
    record.insert(Slot::new(
        "pair",
        1,
        Format::Json,
        vec![("first".into(), "9".into())],
    ));
    let cart = registry
        .load::<Cart>(&record)
        .expect("load Cart")
        .expect("a stored Cart");
    assert_eq!(cart.items()[0].sku, "apple");
    assert_eq!(cart.migrated_from(), Some(1));
    let pair = registry
        .load::<Pair<u8, String>>(&record)
        .expect("load Pair")
        .expect("a stored Pair");
    assert_eq!((*pair.first(), *pair.count()), (9, 1));
}
