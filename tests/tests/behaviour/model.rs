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

        /// 240 fields, for a burst of 240 concurrent requests that each change one.
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

#[allow(dead_code, reason = "the derive's getters of the 240 fields go unused")]
mod wide {
    wide! {
        (f000, set_f000) (f001, set_f001) (f002, set_f002) (f003, set_f003) (f004, set_f004)
        (f005, set_f005) (f006, set_f006) (f007, set_f007) (f008, set_f008) (f009, set_f009)
        (f010, set_f010) (f011, set_f011) (f012, set_f012) (f013, set_f013) (f014, set_f014)
        (f015, set_f015) (f016, set_f016) (f017, set_f017) (f018, set_f018) (f019, set_f019)
        (f020, set_f020) (f021, set_f021) (f022, set_f022) (f023, set_f023) (f024, set_f024)
        (f025, set_f025) (f026, set_f026) (f027, set_f027) (f028, set_f028) (f029, set_f029)
        (f030, set_f030) (f031, set_f031) (f032, set_f032) (f033, set_f033) (f034, set_f034)
        (f035, set_f035) (f036, set_f036) (f037, set_f037) (f038, set_f038) (f039, set_f039)
        (f040, set_f040) (f041, set_f041) (f042, set_f042) (f043, set_f043) (f044, set_f044)
        (f045, set_f045) (f046, set_f046) (f047, set_f047) (f048, set_f048) (f049, set_f049)
        (f050, set_f050) (f051, set_f051) (f052, set_f052) (f053, set_f053) (f054, set_f054)
        (f055, set_f055) (f056, set_f056) (f057, set_f057) (f058, set_f058) (f059, set_f059)
        (f060, set_f060) (f061, set_f061) (f062, set_f062) (f063, set_f063) (f064, set_f064)
        (f065, set_f065) (f066, set_f066) (f067, set_f067) (f068, set_f068) (f069, set_f069)
        (f070, set_f070) (f071, set_f071) (f072, set_f072) (f073, set_f073) (f074, set_f074)
        (f075, set_f075) (f076, set_f076) (f077, set_f077) (f078, set_f078) (f079, set_f079)
        (f080, set_f080) (f081, set_f081) (f082, set_f082) (f083, set_f083) (f084, set_f084)
        (f085, set_f085) (f086, set_f086) (f087, set_f087) (f088, set_f088) (f089, set_f089)
        (f090, set_f090) (f091, set_f091) (f092, set_f092) (f093, set_f093) (f094, set_f094)
        (f095, set_f095) (f096, set_f096) (f097, set_f097) (f098, set_f098) (f099, set_f099)
        (f100, set_f100) (f101, set_f101) (f102, set_f102) (f103, set_f103) (f104, set_f104)
        (f105, set_f105) (f106, set_f106) (f107, set_f107) (f108, set_f108) (f109, set_f109)
        (f110, set_f110) (f111, set_f111) (f112, set_f112) (f113, set_f113) (f114, set_f114)
        (f115, set_f115) (f116, set_f116) (f117, set_f117) (f118, set_f118) (f119, set_f119)
        (f120, set_f120) (f121, set_f121) (f122, set_f122) (f123, set_f123) (f124, set_f124)
        (f125, set_f125) (f126, set_f126) (f127, set_f127) (f128, set_f128) (f129, set_f129)
        (f130, set_f130) (f131, set_f131) (f132, set_f132) (f133, set_f133) (f134, set_f134)
        (f135, set_f135) (f136, set_f136) (f137, set_f137) (f138, set_f138) (f139, set_f139)
        (f140, set_f140) (f141, set_f141) (f142, set_f142) (f143, set_f143) (f144, set_f144)
        (f145, set_f145) (f146, set_f146) (f147, set_f147) (f148, set_f148) (f149, set_f149)
        (f150, set_f150) (f151, set_f151) (f152, set_f152) (f153, set_f153) (f154, set_f154)
        (f155, set_f155) (f156, set_f156) (f157, set_f157) (f158, set_f158) (f159, set_f159)
        (f160, set_f160) (f161, set_f161) (f162, set_f162) (f163, set_f163) (f164, set_f164)
        (f165, set_f165) (f166, set_f166) (f167, set_f167) (f168, set_f168) (f169, set_f169)
        (f170, set_f170) (f171, set_f171) (f172, set_f172) (f173, set_f173) (f174, set_f174)
        (f175, set_f175) (f176, set_f176) (f177, set_f177) (f178, set_f178) (f179, set_f179)
        (f180, set_f180) (f181, set_f181) (f182, set_f182) (f183, set_f183) (f184, set_f184)
        (f185, set_f185) (f186, set_f186) (f187, set_f187) (f188, set_f188) (f189, set_f189)
        (f190, set_f190) (f191, set_f191) (f192, set_f192) (f193, set_f193) (f194, set_f194)
        (f195, set_f195) (f196, set_f196) (f197, set_f197) (f198, set_f198) (f199, set_f199)
        (f200, set_f200) (f201, set_f201) (f202, set_f202) (f203, set_f203) (f204, set_f204)
        (f205, set_f205) (f206, set_f206) (f207, set_f207) (f208, set_f208) (f209, set_f209)
        (f210, set_f210) (f211, set_f211) (f212, set_f212) (f213, set_f213) (f214, set_f214)
        (f215, set_f215) (f216, set_f216) (f217, set_f217) (f218, set_f218) (f219, set_f219)
        (f220, set_f220) (f221, set_f221) (f222, set_f222) (f223, set_f223) (f224, set_f224)
        (f225, set_f225) (f226, set_f226) (f227, set_f227) (f228, set_f228) (f229, set_f229)
        (f230, set_f230) (f231, set_f231) (f232, set_f232) (f233, set_f233) (f234, set_f234)
        (f235, set_f235) (f236, set_f236) (f237, set_f237) (f238, set_f238) (f239, set_f239)
    }
}
