use sessions::prelude::*;

#[derive(Session)]
#[session]
struct Cart {
    items: Vec<String>,
}

fn main() {}
