use sessions::prelude::*;

#[derive(Session, Default)]
#[session(name = "auth")]
struct Auth {
    #[session(owner)]
    user_id: u64,
}

fn main() {}
