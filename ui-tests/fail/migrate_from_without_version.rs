use sessions::prelude::*;

#[derive(Session)]
#[session(name = "cart", version = 1)]
struct CartV1 {
    skus: Vec<String>,
}

#[derive(Session)]
#[session(name = "cart", migrate_from = CartV1)]
struct Cart {
    items: Vec<String>,
}

impl From<CartV1> for Cart {
    fn from(old: CartV1) -> Self {
        Cart { items: old.skus }
    }
}

fn main() {}
