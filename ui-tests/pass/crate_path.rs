//! `crate = path` for a renamed dependency: the expansion names only that path.

extern crate sessions as my_sessions;

use my_sessions::Typed;

#[derive(my_sessions::Session, Default)]
#[session(name = "cart")]
#[session(crate = my_sessions)]
struct Cart {
    items: Vec<String>,
}

#[derive(my_sessions::Session, Default)]
#[session(crate = ::my_sessions, name = "prefs", version = 2, migrate_from = PrefsV1)]
struct Prefs {
    dark: bool,
}

#[derive(my_sessions::Session, Default)]
#[session(crate = "my_sessions", name = "prefs")]
struct PrefsV1 {
    theme: String,
}

impl From<PrefsV1> for Prefs {
    fn from(old: PrefsV1) -> Self {
        Prefs {
            dark: old.theme == "dark",
        }
    }
}

// A relative `sessions::..` in the expansion would resolve to this empty module and fail. (An
// absolute `::sessions` would still find the real crate; `sessions-derive`'s unit tests check that
// the expansion names only the given path.)
mod sessions {}

fn main() {
    let mut cart = Typed::new(Cart::default());
    cart.items_mut().push("apple".into());
    assert_eq!(cart.items().len(), 1);
    assert_eq!(<Prefs as my_sessions::Session>::VERSION, 2);
}
