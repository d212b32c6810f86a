use sessions::prelude::*;

#[derive(Session)]
struct Cart {
    #[session(default = 1)]
    count: u32,
}

fn main() {}
