use sessions::prelude::*;

#[derive(Session)]
enum Cart {
    Empty,
    Full(Vec<String>),
}

fn main() {}
