use sessions::prelude::*;

#[derive(Session)]
#[session(name = "cart", version = 1)]
struct CartV1 {
    skus: Vec<String>,
}

#[derive(Session)]
#[session(name = "cart", version = 2, migrate_from = CartV1)]
struct Cart {
    items: Vec<String>,
}

fn main() {}
