//! `rename` changes the stored name; the accessors keep the Rust name.

use sessions::prelude::*;

#[derive(Session, Default)]
#[session(name = "cart", version = 3)]
struct Cart {
    #[session(rename = "i")]
    items: Vec<String>,
    #[session(rename = "coupon-code")]
    coupon: Option<String>,
}

fn main() {
    assert_eq!(Cart::NAME, "cart");
    assert_eq!(Cart::VERSION, 3);
    assert_eq!(Cart::FIELDS, ["i", "coupon-code"]);

    let mut cart = Typed::new(Cart::default());
    cart.set_coupon(Some("WELCOME".into()));
    cart.items_mut().push("apple".into());
    assert_eq!(
        cart.dirty_fields().collect::<Vec<_>>(),
        ["i", "coupon-code"]
    );
}
