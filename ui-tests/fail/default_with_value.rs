use sessions::prelude::*;

#[derive(Session)]
#[session(name = "cart")]
struct Cart {
    #[session(default = 1)]
    count: u32,
}

fn main() {}
