//! `#[session(owner)]` on an `Option` of something `Display`.

use sessions::prelude::*;
use sessions::Format;
use sessions::store::{Record, Registry, Slot};

#[derive(Session, Default)]
#[session(name = "auth")]
struct Auth {
    #[session(owner)]
    user_id: Option<u64>,
    email: Option<String>,
}

fn main() {
    let mut registry = Registry::new();
    registry.register::<Auth>().unwrap();
    let mut record = Record::new();
    record.insert(Slot::new(
        "auth",
        1,
        Format::Json,
        vec![("user_id".into(), "42".into()), ("email".into(), "null".into())],
    ));
    assert_eq!(registry.owner_in(&record).unwrap().as_deref(), Some("42"));
}
