use sessions::prelude::*;

#[derive(Session, Default)]
#[session(name = "auth")]
struct Auth {
    #[session(owner, skip)]
    user_id: Option<u64>,
}

fn main() {}
