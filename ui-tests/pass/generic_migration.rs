//! A generic type migrating from a generic older version.

use sessions::prelude::*;
use sessions::Format;
use sessions::store::{Record, Registry, Slot};

#[derive(Session, Default)]
#[session(name = "wrapper", version = 1)]
struct WrapperV1<T> {
    inner: T,
}

#[derive(Session, Default)]
#[session(name = "wrapper", version = 2, migrate_from = WrapperV1<T>)]
struct Wrapper<T> {
    inner: Vec<T>,
}

impl<T> From<WrapperV1<T>> for Wrapper<T> {
    fn from(old: WrapperV1<T>) -> Self {
        Wrapper {
            inner: vec![old.inner],
        }
    }
}

fn main() {
    let mut registry = Registry::new();
    registry.register::<Wrapper<u32>>().unwrap();
    let mut record = Record::new();
    record.insert(Slot::new(
        "wrapper",
        1,
        Format::Json,
        vec![("inner".into(), "7".into())],
    ));
    let wrapper = registry.load::<Wrapper<u32>>(&record).unwrap().unwrap();
    assert_eq!(wrapper.inner(), &[7]);
    assert_eq!(wrapper.migrated_from(), Some(1));
}
