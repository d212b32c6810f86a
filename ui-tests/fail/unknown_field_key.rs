use sessions::prelude::*;

#[derive(Session)]
#[session(name = "cart")]
struct Cart {
    #[session(alias = "products")]
    items: Vec<String>,
}

fn main() {}
