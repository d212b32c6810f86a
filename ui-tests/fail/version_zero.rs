use sessions::prelude::*;

#[derive(Session)]
#[session(name = "cart", version = 0)]
struct Cart {
    items: Vec<String>,
}

fn main() {}
