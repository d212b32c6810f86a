use sessions::prelude::*;

#[derive(Session)]
struct Cart(Vec<String>);

fn main() {}
