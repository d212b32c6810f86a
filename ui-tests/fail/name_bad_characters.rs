use sessions::prelude::*;

#[derive(Session)]
#[session(name = "shopping cart!")]
struct Cart {
    items: Vec<String>,
}

fn main() {}
