use sessions::prelude::*;

#[derive(Session)]
#[session(name = "cart", ttl = 3600)]
struct Cart {
    items: Vec<String>,
}

fn main() {}
