//! `Typed<T>` makes a new slot with `T::default()`: for a type without `Default` the error says
//! what to use instead (axum shows it under `#[axum::debug_handler]`; without it, axum reports
//! only that the handler is not a `Handler`).

use axum::Router;
use axum::routing::get;
use sessions::prelude::*;

#[derive(Session)]
#[session(name = "logged_in")]
struct LoggedIn {
    user_id: u64,
}

#[axum::debug_handler]
async fn handler(user: Typed<LoggedIn>) -> String {
    user.user_id().to_string()
}

fn main() {
    let _app: Router = Router::new().route("/", get(handler));
}
