use sessions::prelude::*;

#[derive(Session)]
#[session(name = "cart", skip)]
struct Cart {
    items: Vec<String>,
}

fn main() {}
