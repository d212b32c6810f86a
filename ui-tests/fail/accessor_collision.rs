use sessions::prelude::*;

#[derive(Session)]
#[session(name = "cart")]
struct Cart {
    items: Vec<String>,
    items_mut: bool,
}

fn main() {}
