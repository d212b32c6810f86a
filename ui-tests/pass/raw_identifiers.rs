//! Raw identifiers: stored and accessed under the plain name.

use sessions::prelude::*;

#[derive(Session, Default)]
#[session(name = "match")]
struct r#Match {
    r#type: String,
    r#loop: u32,
}

fn main() {
    assert_eq!(r#Match::NAME, "match");
    assert_eq!(r#Match::FIELDS, ["type", "loop"]);
    let mut m = Typed::new(r#Match::default());
    m.set_type("final".into());
    *m.loop_mut() += 1;
    assert_eq!(m.r#type(), "final");
    assert_eq!(*m.r#loop(), 1);
    assert_eq!(m.dirty_fields().collect::<Vec<_>>(), ["type", "loop"]);
}
