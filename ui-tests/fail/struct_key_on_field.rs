use sessions::prelude::*;

#[derive(Session)]
#[session(name = "cart")]
struct Cart {
    #[session(version = 2)]
    items: Vec<String>,
}

fn main() {}
