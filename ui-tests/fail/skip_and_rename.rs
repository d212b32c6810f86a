use sessions::prelude::*;

#[derive(Session)]
#[session(name = "cart")]
struct Cart {
    items: Vec<String>,
    #[session(skip, rename = "c")]
    cache: Vec<String>,
}

fn main() {}
