use sessions::prelude::*;

#[derive(Session)]
struct Visits;

fn main() {}
