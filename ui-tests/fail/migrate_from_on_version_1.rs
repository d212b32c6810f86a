use sessions::prelude::*;

#[derive(Session)]
#[session(name = "cart", version = 1)]
struct CartV0 {
    skus: Vec<String>,
}

#[derive(Session)]
#[session(name = "cart", version = 1, migrate_from = CartV0)]
struct Cart {
    items: Vec<String>,
}

impl From<CartV0> for Cart {
    fn from(old: CartV0) -> Self {
        Cart { items: old.skus }
    }
}

fn main() {}
