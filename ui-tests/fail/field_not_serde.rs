use sessions::prelude::*;

struct Item {
    sku: String,
}

#[derive(Session)]
struct Cart {
    items: Vec<Item>,
}

fn main() {}
