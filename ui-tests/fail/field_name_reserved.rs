//! Field names starting with `__` are the derive's own (the accessor type's codec consts).

use sessions::prelude::*;

#[derive(Session, Default)]
#[session(name = "cart")]
struct Cart {
    __FIELD_0: u32,
}

fn main() {}
