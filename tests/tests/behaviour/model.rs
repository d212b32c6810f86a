//! The session types behind the suite's routes.

use sessions::prelude::*;

/// A cart: the session type most tests use. At version 2; an older deployment stored
/// [`CartV1`], which loads migrated.
#[derive(Session, Default, Debug, Clone, PartialEq)]
#[session(name = "cart", version = 2, migrate_from = CartV1)]
pub(crate) struct Cart {
    pub(crate) items: Vec<String>,
    pub(crate) coupon: Option<String>,
    pub(crate) visits: u32,
}

/// The cart as an older deployment stored it: items only.
#[derive(Session, Default, Debug, Clone, PartialEq)]
#[session(name = "cart", version = 1)]
pub(crate) struct CartV1 {
    pub(crate) items: Vec<String>,
}

impl From<CartV1> for Cart {
    fn from(old: CartV1) -> Self {
        Cart {
            items: old.items,
            ..Cart::default()
        }
    }
}

/// A second slot, to show that slots are loaded and saved together, and apart.
#[derive(Session, Default, Debug, Clone, PartialEq)]
#[session(name = "prefs", version = 1)]
pub(crate) struct Prefs {
    pub(crate) dark: bool,
    pub(crate) lang: String,
}

/// Who is signed in: the session's owner (`#[session(owner)]`), so that a user's sessions can
/// be listed, revoked and capped (issue 15).
#[derive(Session, Default, Debug, Clone, PartialEq)]
#[session(name = "auth")]
pub(crate) struct Auth {
    #[session(owner)]
    pub(crate) user_id: Option<u64>,
}

/// A one-shot message for the next page ("you are signed out").
#[derive(Session, Default, Debug, Clone, PartialEq)]
#[session(name = "flash")]
pub(crate) struct Flash {
    pub(crate) message: String,
}

/// The signed-in user, as a guard extractor: a handler that takes it runs only for a signed-in
/// user; anyone else gets a 401 (a store that is down stays a 503, never a 401). Built on
/// `Option<Typed<Auth>>` (axum, `FromRequestParts` in `axum_app.rs`) and `IfStored<Auth>`
/// (actix-web, `FromRequest` in `actix_app.rs`): the recipe of the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CurrentUser(pub(crate) u64);

/// What a guard answers when nobody is signed in.
pub(crate) const SIGN_IN_FIRST: &str = "sign in first";

/// The randomized history's session: one field per tab of a browser, each written only by its
/// tab, with values that say who wrote them (see `history`).
#[derive(Session, Default, Debug, Clone, PartialEq)]
#[session(name = "tabs", version = 1)]
pub(crate) struct Tabs {
    pub(crate) t0: u64,
    pub(crate) t1: u64,
    pub(crate) t2: u64,
    pub(crate) t3: u64,
}

impl Tabs {
    /// The fields in tab order.
    pub(crate) fn values(&self) -> [u64; 4] {
        [self.t0, self.t1, self.t2, self.t3]
    }
}

/// Sets tab `tab`'s field of `tabs` to `value`; `false` for a tab that does not exist.
pub(crate) fn set_tab(tabs: &mut Typed<Tabs>, tab: usize, value: u64) -> bool {
    match tab {
        0 => tabs.set_t0(value),
        1 => tabs.set_t1(value),
        2 => tabs.set_t2(value),
        3 => tabs.set_t3(value),
        _ => return false,
    }
    true
}

pub(crate) use wide::{Wide, set_wide};

/// Declares `Wide`, a session type with one `u32` field per name, and `set_wide`, which sets
/// the field named so (and only it) to 1.
macro_rules! wide {
    ($(($field:ident, $setter:ident))*) => {
        use sessions::prelude::*;

        /// A hundred fields, for a hundred concurrent requests that each change one.
        #[derive(Session, Default, Debug)]
        #[session(name = "wide")]
        pub(crate) struct Wide {
            $(pub(crate) $field: u32,)*
        }

        /// Sets field `name` of `wide` to 1; `false` for a name that is not a field.
        pub(crate) fn set_wide(wide: &mut Typed<Wide>, name: &str) -> bool {
            match name {
                $(stringify!($field) => wide.$setter(1),)*
                _ => return false,
            }
            true
        }
    };
}

#[allow(
    dead_code,
    reason = "the derive's getters of the hundred fields go unused"
)]
mod wide {
    wide! {
        (f00, set_f00) (f01, set_f01) (f02, set_f02) (f03, set_f03) (f04, set_f04) (f05, set_f05)
        (f06, set_f06) (f07, set_f07) (f08, set_f08) (f09, set_f09) (f10, set_f10) (f11, set_f11)
        (f12, set_f12) (f13, set_f13) (f14, set_f14) (f15, set_f15) (f16, set_f16) (f17, set_f17)
        (f18, set_f18) (f19, set_f19) (f20, set_f20) (f21, set_f21) (f22, set_f22) (f23, set_f23)
        (f24, set_f24) (f25, set_f25) (f26, set_f26) (f27, set_f27) (f28, set_f28) (f29, set_f29)
        (f30, set_f30) (f31, set_f31) (f32, set_f32) (f33, set_f33) (f34, set_f34) (f35, set_f35)
        (f36, set_f36) (f37, set_f37) (f38, set_f38) (f39, set_f39) (f40, set_f40) (f41, set_f41)
        (f42, set_f42) (f43, set_f43) (f44, set_f44) (f45, set_f45) (f46, set_f46) (f47, set_f47)
        (f48, set_f48) (f49, set_f49) (f50, set_f50) (f51, set_f51) (f52, set_f52) (f53, set_f53)
        (f54, set_f54) (f55, set_f55) (f56, set_f56) (f57, set_f57) (f58, set_f58) (f59, set_f59)
        (f60, set_f60) (f61, set_f61) (f62, set_f62) (f63, set_f63) (f64, set_f64) (f65, set_f65)
        (f66, set_f66) (f67, set_f67) (f68, set_f68) (f69, set_f69) (f70, set_f70) (f71, set_f71)
        (f72, set_f72) (f73, set_f73) (f74, set_f74) (f75, set_f75) (f76, set_f76) (f77, set_f77)
        (f78, set_f78) (f79, set_f79) (f80, set_f80) (f81, set_f81) (f82, set_f82) (f83, set_f83)
        (f84, set_f84) (f85, set_f85) (f86, set_f86) (f87, set_f87) (f88, set_f88) (f89, set_f89)
        (f90, set_f90) (f91, set_f91) (f92, set_f92) (f93, set_f93) (f94, set_f94) (f95, set_f95)
        (f96, set_f96) (f97, set_f97) (f98, set_f98) (f99, set_f99)
    }
}
