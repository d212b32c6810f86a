use sessions::prelude::*;

#[derive(Session)]
#[session(name = "")]
struct Cart {
    items: Vec<String>,
}

fn main() {}
