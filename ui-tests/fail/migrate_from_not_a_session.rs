use sessions::prelude::*;

struct CartV1 {
    skus: Vec<String>,
}

#[derive(Session)]
#[session(name = "cart", version = 2, migrate_from = CartV1)]
struct Cart {
    items: Vec<String>,
}

impl From<CartV1> for Cart {
    fn from(old: CartV1) -> Self {
        Cart { items: old.skus }
    }
}

fn main() {}
