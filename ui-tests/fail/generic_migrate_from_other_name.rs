use sessions::prelude::*;

#[derive(Session)]
#[session(name = "wrapper", version = 1)]
struct OldWrapper<T> {
    inner: T,
}

#[derive(Session)]
#[session(name = "box", version = 2, migrate_from = OldWrapper<T>)]
struct Boxed<T> {
    inner: T,
}

impl<T> From<OldWrapper<T>> for Boxed<T> {
    fn from(old: OldWrapper<T>) -> Self {
        Boxed { inner: old.inner }
    }
}

fn main() {
    // A generic link is checked for each instance that is used.
    let mut registry = sessions::store::Registry::new();
    registry.register::<Boxed<u32>>().unwrap();
    let record = sessions::store::Record::new();
    let _ = registry.load::<Boxed<u32>>(&record);
}
