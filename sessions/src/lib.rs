//! Typed, versioned HTTP sessions.
//!
//! A session is a plain struct with `#[derive(Session)]`: compile-checked fields instead of a
//! stringly `HashMap<String, Value>`, typed accessors that record exactly which fields a handler
//! changed, a versioned type tag on everything stored, and a compile-checked migration chain
//! from older versions.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use sessions::prelude::*;
//!
//! #[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
//! pub struct Item { sku: String, qty: u32 }
//!
//! #[derive(Session, Default)]
//! #[session(name = "cart", version = 2, migrate_from = CartV1)]
//! pub struct Cart {
//!     items: Vec<Item>,
//!     coupon: Option<String>,
//! }
//!
//! #[derive(Session, Default)]
//! #[session(name = "cart", version = 1)]
//! pub struct CartV1 { skus: Vec<String> }
//!
//! impl From<CartV1> for Cart {
//!     fn from(old: CartV1) -> Self {
//!         let items = old.skus.into_iter().map(|sku| Item { sku, qty: 1 }).collect();
//!         Cart { items, coupon: None }
//!     }
//! }
//!
//! let mut cart = Typed::new(Cart::default());
//! cart.items_mut().push(Item { sku: "apple".into(), qty: 2 });   // marks `items`, nothing else
//! if cart.coupon().is_none() {
//!     cart.set_coupon(Some("WELCOME".into()));
//! }
//! assert_eq!(cart.dirty_fields().collect::<Vec<_>>(), ["items", "coupon"]);
//! ```
//!
//! # The derive
//!
//! | attribute | on | meaning |
//! |---|---|---|
//! | `name = "cart"` | struct | the stored type name (`__type__`); default: the struct name in snake_case |
//! | `version = 2` | struct | the schema version (`__v__`), 1 or more; default 1 |
//! | `migrate_from = CartV1` | struct | the previous version's type: same `name`, lower `version`, and `Cart: From<CartV1>` |
//! | `crate = path` | struct | where `sessions` is, for a renamed dependency |
//! | `rename = "…"` | field | the stored name of the field |
//! | `default` | field | a field missing from stored data takes its `Default` |
//! | `skip` | field | never stored; `Default` on load |
//!
//! For every field `items: T` the derive generates, callable on a `Typed<Cart>`:
//! `items() -> &T`, `items_mut() -> &mut T` (marks `items` dirty) and `set_items(T)` (marks
//! `items` dirty).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "axum")]
mod axum;
mod codec;
mod cookie;
mod dirty;
mod error;
mod expiry;
mod handle;
mod id;
mod layer;
mod record;
mod registry;
mod schema;
pub mod store;
mod typed;

#[doc(hidden)]
pub mod __private {
    pub use crate::private::*;
}
mod private;

pub use codec::{CodecError, Format};
pub use cookie::{CookieConfig, CookieConfigError, SameSite};
pub use dirty::DirtySet;
pub use error::{ApplyError, DecodeError, EncodeError, LoadError, RecordError, RegistryError};
pub use expiry::{Clock, Deadline, Expiry, ManualClock, SystemClock};
pub use handle::{SessionHandle, SessionRejection};
pub use id::{IdError, SessionId, SessionKey};
pub use layer::{BackendBox, IntoBackend, SessionLayer, SessionService};
pub use record::{Changeset, Name, Record, Slot, SlotChange};
pub use registry::{MigrationCount, MigrationReport, Registry, migrate_slot};
pub use schema::{NoPrevious, Session};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use store::PostgresStore;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use store::RedisStore;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use store::SqliteStore;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub use store::TableNameError;
pub use store::{CookieError, CookieStore, Key};
pub use store::{MemoryStore, SaveOutcome, SessionStore, StoreError, Stored};
pub use typed::Typed;

/// `#[derive(Session)]`: see the [crate docs](crate#the-derive) for its attributes.
pub use sessions_derive::Session;

/// Everything a user needs: `use sessions::prelude::*;`.
///
/// ```
/// use sessions::prelude::*;
/// #[derive(Session, Default)]
/// struct Prefs { dark: bool }
/// let prefs: Typed<Prefs> = Typed::default();
/// assert!(!prefs.dark());
/// ```
pub mod prelude {
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub use crate::PostgresStore;
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub use crate::RedisStore;
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    pub use crate::SqliteStore;
    pub use crate::{CookieStore, MemoryStore, SessionStore};
    pub use crate::{Session, SessionHandle, SessionLayer, Typed};
}

#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
