use sessions::prelude::*;

#[derive(Session)]
#[session(name = "basket", version = 1)]
struct BasketV1 {
    skus: Vec<String>,
}

#[derive(Session)]
#[session(name = "cart", version = 2, migrate_from = BasketV1)]
struct Cart {
    items: Vec<String>,
}

impl From<BasketV1> for Cart {
    fn from(old: BasketV1) -> Self {
        Cart { items: old.skus }
    }
}

fn main() {}
