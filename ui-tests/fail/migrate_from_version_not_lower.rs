use sessions::prelude::*;

#[derive(Session)]
#[session(name = "cart", version = 3)]
struct CartV3 {
    skus: Vec<String>,
}

#[derive(Session)]
#[session(name = "cart", version = 2, migrate_from = CartV3)]
struct Cart {
    items: Vec<String>,
}

impl From<CartV3> for Cart {
    fn from(old: CartV3) -> Self {
        Cart { items: old.skus }
    }
}

fn main() {}
