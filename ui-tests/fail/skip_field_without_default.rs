use sessions::prelude::*;

struct Connection {
    port: u16,
}

#[derive(Session)]
#[session(name = "cart")]
struct Cart {
    items: Vec<String>,
    #[session(skip)]
    connection: Connection,
}

fn main() {}
