//! On actix-web too, a handler taking `Typed<T>` for a `T` without `Default` is told to take
//! `IfStored<T>` and create the slot with `SessionHandle::insert`, not to derive `Default`.

use actix_web::{App, web};
use sessions::prelude::*;

#[derive(Session)]
#[session(name = "signed_in")]
struct SignedIn {
    user_id: u64,
}

async fn handler(user: Typed<SignedIn>) -> String {
    user.user_id().to_string()
}

fn main() {
    let _app = App::new().route("/", web::get().to(handler));
}
