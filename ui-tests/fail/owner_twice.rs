use sessions::prelude::*;

#[derive(Session, Default)]
#[session(name = "auth")]
struct Auth {
    #[session(owner)]
    user_id: Option<u64>,
    #[session(owner)]
    admin_id: Option<u64>,
}

fn main() {}
