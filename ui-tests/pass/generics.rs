//! Type parameters: plain, bounded, in a `skip` field, in a `default` field, and a where clause.

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sessions::prelude::*;

#[derive(Session, Default)]
#[session(name = "plain")]
struct Plain<T> {
    value_of: T,
}

#[derive(Session, Default)]
#[session(name = "bounded")]
struct Bounded<T: Clone + Debug, U = u8> {
    first: T,
    second: Vec<U>,
}

#[derive(Default)]
struct Cache<C>(Option<C>);

#[derive(Session, Default)]
#[session(name = "with_skip")]
struct WithSkip<C> {
    hits: u64,
    #[session(skip)]
    cache: Cache<C>,
}

#[derive(Session, Default)]
#[session(name = "with_default")]
struct WithDefault<D> {
    #[session(default)]
    later: D,
}

#[derive(Session)]
#[session(name = "with_where")]
struct WithWhere<K, V>
where
    K: Ord + Serialize + DeserializeOwned,
    V: Clone,
{
    entries: std::collections::BTreeMap<K, V>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Item {
    sku: String,
}

fn main() {
    let mut plain = Typed::new(Plain { value_of: 3u32 });
    plain.set_value_of(4);
    assert_eq!(*plain.value_of(), 4);

    let mut bounded: Typed<Bounded<Item>> = Typed::new(Bounded {
        first: Item { sku: "a".into() },
        second: vec![1, 2],
    });
    bounded.second_mut().push(3);
    assert_eq!(bounded.first().sku, "a");
    assert_eq!(bounded.dirty_fields().collect::<Vec<_>>(), ["second"]);

    // `C` is neither Serialize nor Deserialize: a `skip` field only needs `Default`.
    #[derive(Default)]
    struct NotSerde;
    let mut skip: Typed<WithSkip<NotSerde>> = Typed::default();
    skip.cache_mut().0 = Some(NotSerde);
    assert!(!skip.is_dirty());
    assert_eq!(WithSkip::<NotSerde>::FIELDS, ["hits"]);

    let with_default: Typed<WithDefault<String>> = Typed::default();
    assert!(with_default.later().is_empty());

    let mut map = Typed::new(WithWhere::<String, u32> {
        entries: Default::default(),
    });
    map.entries_mut().insert("a".into(), 1);
    assert_eq!(map.entries().len(), 1);
}
