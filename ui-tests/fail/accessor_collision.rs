use sessions::prelude::*;

#[derive(Session)]
struct Cart {
    items: Vec<String>,
    items_mut: bool,
}

fn main() {}
