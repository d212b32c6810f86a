//! The expansion is warning-free, even under `unused_qualifications` and `missing_docs`.
#![deny(
    warnings,
    unused_qualifications,
    missing_docs,
    unreachable_pub,
    rust_2018_idioms
)]

use sessions::prelude::*;

/// A documented cart.
#[derive(Session, Default)]
#[session(name = "cart", version = 2, migrate_from = CartV1)]
pub struct Cart {
    /// The items.
    pub items: Vec<String>,
    /// Never stored.
    #[session(skip)]
    pub cache: Option<String>,
}

/// The first version.
#[derive(Session, Default)]
#[session(name = "cart")]
pub struct CartV1 {
    /// The skus.
    pub skus: Vec<String>,
}

impl From<CartV1> for Cart {
    fn from(old: CartV1) -> Self {
        Cart {
            items: old.skus,
            cache: None,
        }
    }
}

/// A documented generic slot.
#[derive(Session, Default)]
#[session(name = "pair")]
pub struct Pair<A, B> {
    /// The first.
    pub first: A,
    /// The second.
    #[session(default)]
    pub second: B,
}

fn main() {
    let mut cart = Typed::new(Cart::default());
    cart.items_mut().push("apple".into());
    cart.set_cache(None);
    let mut pair: Typed<Pair<u8, String>> = Typed::default();
    pair.set_first(1);
    assert_eq!(*pair.first(), 1);
    assert!(pair.second().is_empty());
}
