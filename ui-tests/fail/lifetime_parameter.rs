use sessions::prelude::*;

#[derive(Session)]
struct User<'a> {
    name: &'a str,
}

fn main() {}
