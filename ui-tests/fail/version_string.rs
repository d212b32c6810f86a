use sessions::prelude::*;

#[derive(Session)]
#[session(name = "cart", version = "2")]
struct Cart {
    items: Vec<String>,
}

fn main() {}
