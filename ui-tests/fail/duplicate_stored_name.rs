use sessions::prelude::*;

#[derive(Session)]
struct Cart {
    items: Vec<String>,
    #[session(rename = "items")]
    saved_items: Vec<String>,
}

fn main() {}
