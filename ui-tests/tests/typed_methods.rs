//! The derive refuses a field whose accessor would be shadowed by a method of `Typed` itself
//! (`check.rs`'s `TYPED_METHODS`). This keeps that list and `Typed`'s real methods equal: a
//! method added to `Typed` without adding it to the list fails here.

use std::collections::BTreeSet;

/// The names of the public methods of `Typed<T>` and of its `Deref`/`DerefMut` impls.
fn typed_methods() -> BTreeSet<String> {
    let source = include_str!("../../sessions/src/typed.rs");
    source
        .lines()
        .map(str::trim_start)
        .filter_map(|line| {
            line.strip_prefix("pub fn ")
                .or_else(|| line.strip_prefix("fn deref"))
                .map(|rest| {
                    if line.starts_with("fn deref") {
                        format!("deref{rest}")
                    } else {
                        rest.to_owned()
                    }
                })
        })
        .filter_map(|rest| {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

/// The names in `TYPED_METHODS`.
fn listed() -> BTreeSet<String> {
    let source = include_str!("../../sessions-derive/src/check.rs");
    let start = source
        .find("const TYPED_METHODS")
        .expect("check.rs lists TYPED_METHODS");
    let list = &source[start..];
    let end = list.find("];").expect("the list ends");
    list[..end]
        .lines()
        .skip(1)
        .filter_map(|line| {
            let line = line.trim().trim_end_matches(',');
            line.strip_prefix('"')?.strip_suffix('"').map(str::to_owned)
        })
        .collect()
}

#[test]
fn the_derive_knows_every_method_of_typed() {
    let methods = typed_methods();
    assert!(
        methods.contains("value") && methods.contains("deref_mut"),
        "{methods:?}"
    );
    assert_eq!(
        listed(),
        methods,
        "sessions-derive/src/check.rs TYPED_METHODS differs from Typed's methods in sessions/src/typed.rs"
    );
}
