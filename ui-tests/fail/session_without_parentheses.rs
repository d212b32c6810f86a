use sessions::prelude::*;

#[derive(Session)]
#[session(name = "cart")]
#[session]
struct Cart {
    items: Vec<String>,
}

fn main() {}
