//! A `pub` session struct with `pub` fields in one module, used through its accessors from a
//! sibling module (accessors are as visible as their fields).

mod model {
    use sessions::prelude::*;

    #[derive(Session, Default)]
    #[session(name = "cart")]
    pub struct Cart {
        pub items: Vec<String>,
        pub coupon: Option<String>,
    }
}

mod handlers {
    use sessions::Typed;

    use crate::model::Cart;

    pub fn add(cart: &mut Typed<Cart>, sku: &str) -> usize {
        cart.items_mut().push(sku.to_owned());
        if cart.coupon().is_none() {
            cart.set_coupon(Some("WELCOME".into()));
        }
        cart.items().len()
    }
}

fn main() {
    let mut cart = sessions::Typed::<model::Cart>::default();
    assert_eq!(handlers::add(&mut cart, "apple"), 1);
    assert_eq!(cart.dirty_fields().collect::<Vec<_>>(), ["items", "coupon"]);
}
