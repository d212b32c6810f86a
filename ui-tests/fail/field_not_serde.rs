use sessions::prelude::*;

struct Item {
    sku: String,
}

#[derive(Session)]
#[session(name = "cart")]
struct Cart {
    items: Vec<Item>,
}

fn main() {}
