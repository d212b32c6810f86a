use sessions::prelude::*;

#[derive(Session)]
#[session(name = "cart")]
struct Cart {
    #[session(rename = "__type__")]
    kind: String,
}

fn main() {}
