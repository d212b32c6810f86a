use sessions::prelude::*;

#[derive(Session)]
struct Cart {
    #[session(version = 2)]
    items: Vec<String>,
}

fn main() {}
