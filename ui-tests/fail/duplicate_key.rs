use sessions::prelude::*;

#[derive(Session)]
#[session(name = "cart", version = 2, name = "basket")]
struct Cart {
    items: Vec<String>,
}

fn main() {}
