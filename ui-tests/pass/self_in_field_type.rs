//! `Self` in a field's type means the session struct, in the accessors too.

use serde::{Deserialize, Serialize};
use sessions::prelude::*;

#[derive(Session, Serialize, Deserialize, Default)]
#[session(name = "node")]
struct Node {
    label: String,
    next: Option<Box<Self>>,
}

#[derive(Session, Serialize, Deserialize, Default)]
#[session(name = "tree")]
struct Tree<T> {
    item: T,
    children: Vec<Self>,
}

#[derive(Session, Default)]
#[session(name = "empty")]
struct Empty {}

fn main() {
    let mut node = Typed::new(Node::default());
    node.set_next(Some(Box::new(Node {
        label: "b".into(),
        next: None,
    })));
    assert_eq!(node.next().as_ref().map(|n| n.label.as_str()), Some("b"));
    let mut tree = Typed::new(Tree::<u8>::default());
    tree.children_mut().push(Tree {
        item: 1,
        children: Vec::new(),
    });
    assert_eq!(tree.children()[0].item, 1);

    assert!(Empty::FIELDS.is_empty());
    let _ = Typed::new(Empty {});
}
