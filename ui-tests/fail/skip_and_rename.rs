use sessions::prelude::*;

#[derive(Session)]
struct Cart {
    items: Vec<String>,
    #[session(skip, rename = "c")]
    cache: Vec<String>,
}

fn main() {}
