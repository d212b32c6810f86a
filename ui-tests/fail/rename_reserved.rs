use sessions::prelude::*;

#[derive(Session)]
struct Cart {
    #[session(rename = "__type__")]
    kind: String,
}

fn main() {}
