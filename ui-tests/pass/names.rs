//! `name` is the stored name, taken as written; without `version`, 1.

use sessions::prelude::*;

#[derive(Session, Default)]
#[session(name = "shopping_cart_v2")]
struct ShoppingCartV2 {
    items: Vec<String>,
}

#[derive(Session, Default)]
#[session(name = "app:cart.v-2")]
struct Punctuated {
    items: Vec<String>,
}

fn main() {
    assert_eq!(ShoppingCartV2::NAME, "shopping_cart_v2");
    assert_eq!(ShoppingCartV2::VERSION, 1);
    assert_eq!(Punctuated::NAME, "app:cart.v-2");
}
