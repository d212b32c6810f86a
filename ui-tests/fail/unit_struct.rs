use sessions::prelude::*;

#[derive(Session)]
#[session(name = "visits")]
struct Visits;

fn main() {}
