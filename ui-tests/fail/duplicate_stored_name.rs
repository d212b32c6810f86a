use sessions::prelude::*;

#[derive(Session)]
#[session(name = "cart")]
struct Cart {
    items: Vec<String>,
    #[session(rename = "items")]
    saved_items: Vec<String>,
}

fn main() {}
