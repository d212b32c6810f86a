use sessions::prelude::*;

#[derive(Session)]
struct Gift {
    value: u64,
}

fn main() {}
