use sessions::prelude::*;

#[derive(Session)]
#[session(name = "gift")]
struct Gift {
    value: u64,
}

fn main() {}
