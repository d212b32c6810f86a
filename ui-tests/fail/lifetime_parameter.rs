use sessions::prelude::*;

#[derive(Session)]
#[session(name = "user")]
struct User<'a> {
    name: &'a str,
}

fn main() {}
