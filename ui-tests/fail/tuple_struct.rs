use sessions::prelude::*;

#[derive(Session)]
#[session(name = "cart")]
struct Cart(Vec<String>);

fn main() {}
