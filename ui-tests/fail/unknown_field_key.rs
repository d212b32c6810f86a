use sessions::prelude::*;

#[derive(Session)]
struct Cart {
    #[session(alias = "products")]
    items: Vec<String>,
}

fn main() {}
