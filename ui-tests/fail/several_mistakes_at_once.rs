// Not one mistake: this case checks that the derive reports every mistake in one go.
use sessions::prelude::*;

#[derive(Session)]
#[session(name = "gift")]
#[session(ttl = 3600, version = 0)]
struct Gift {
    value: u64,
    #[session(skip, default)]
    note: String,
    #[session(alias = "to", rename = "__to")]
    recipient: String,
}

fn main() {}
