use sessions::prelude::*;

#[derive(Session)]
struct Cart {
    items: Vec<String>,
    #[session(skip, default)]
    cache: Vec<String>,
}

fn main() {}
