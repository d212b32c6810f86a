//! Typed, versioned HTTP sessions.
//!
//! A session is a plain struct with `#[derive(Session)]`: compile-checked fields instead of a
//! stringly `HashMap<String, Value>`, typed accessors that record exactly which fields a handler
//! changed, a versioned type tag on everything stored, and a compile-checked migration chain
//! from older versions. Only the fields a request changed are written, so two requests that
//! change different fields of one session both survive.
//!
//! This page walks through the pieces in the order an app meets them: the derive, [`Typed`],
//! the [`SessionLayer`], the stores, migrations and expiry. The repository's README has the
//! runnable cart shop (`cargo run -p sessions-examples --bin cart`), a store comparison table,
//! and the concurrency and security details.
//!
//! # 1. Declare a session type
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
//! Fields need only be serde types; the struct itself needs no serde derive, and its `Default`
//! is the value of a new session.
//!
//! ## The derive
//!
//! | attribute | on | meaning |
//! |---|---|---|
//! | `name = "cart"` | struct | the stored type name (`__type__`), required: the data belongs to the name, so renaming the struct keeps it |
//! | `version = 2` | struct | the schema version (`__v__`), 1 or more; default 1 |
//! | `migrate_from = CartV1` | struct | the previous version's type: same `name`, lower `version`, and `Cart: From<CartV1>` |
//! | `crate = path` | struct | where `sessions` is, for a renamed dependency |
//! | `rename = "…"` | field | the stored name of the field |
//! | `default` | field | a field missing from stored data takes its `Default` |
//! | `skip` | field | never stored; `Default` on load |
//! | `owner` | field | the one field that says whose session it is (`user_id: Option<u64>`): `Some(42)` binds the session to owner `"42"`, for [`SessionHandle::owner_sessions`], `revoke_others` and `SessionLayer::sessions_of` |
//!
//! # 2. Read and write through `Typed<T>`
//!
//! For every field `items: T` the derive generates, callable on a [`Typed<Cart>`](Typed):
//! `items() -> &T`, `items_mut() -> &mut T` (marks `items` dirty) and `set_items(T)` (marks
//! `items` dirty). There is no other way to reach the value mutably, so the dirty set is exact:
//! reading marks nothing, and a save carries only what was marked ([`Typed::changes`]).
//!
//! # 3. Put the layer on the router
//!
//! [`SessionLayer`] is a tower layer: it loads a session only when a handler asks for it and
//! saves after the handler only what changed. `Typed<T>` is an axum extractor, and with
//! feature `actix` an actix-web one (the same layer wraps an actix `App`): a new session gets
//! `T::default()`, and `Option<Typed<T>>` (`IfStored<T>` on actix-web) says whether anything
//! is stored. [`SessionHandle`] is the session as a whole: [`cycle_id`](SessionHandle::cycle_id) after
//! login, [`destroy`](SessionHandle::destroy) at logout, and its expiry.
//!
//! ```
//! use sessions::prelude::*;
//! # #[derive(Session, Default)] #[session(name = "cart")] struct Cart { items: Vec<String> }
//! # #[derive(Session, Default)] #[session(name = "account")] struct Account { user: Option<String> }
//!
//! async fn add(mut cart: Typed<Cart>) -> String {
//!     cart.items_mut().push("apple".into());      // saved: the `items` field of `cart`
//!     format!("{} items", cart.items().len())
//! }
//!
//! async fn login(session: SessionHandle, mut account: Typed<Account>) -> &'static str {
//!     account.set_user(Some("ada".into()));       // the `account` slot; `cart` is not rewritten
//!     session.cycle_id();                         // same data, a new id: fixation defence
//!     "welcome"
//! }
//!
//! async fn logout(session: SessionHandle) -> &'static str {
//!     session.destroy();                          // record deleted, cookie cleared
//!     "bye"
//! }
//!
//! let app: axum::Router = axum::Router::new()
//!     .route("/cart", axum::routing::post(add))
//!     .route("/login", axum::routing::post(login))
//!     .route("/logout", axum::routing::post(logout))
//!     .layer(SessionLayer::new(MemoryStore::new()).register::<Cart>().register::<Account>());
//! # let _ = app;
//! ```
//!
//! The cookie defaults are `HttpOnly; Secure; SameSite=Lax; Path=/` ([`CookieConfig`]); ids are
//! 256 bits from the OS CSPRNG and stores see only their SHA-256 ([`SessionId`], [`SessionKey`](store::SessionKey)).
//! Without axum, the [`SessionHandle`] is in each request's extensions.
//!
//! # 4. Pick a store
//!
//! [`SessionLayer::new`] takes any [`SessionStore`] or a [`CookieStore`]:
//!
//! * [`MemoryStore`]: in the process, for tests and single-instance apps;
//! * [`CookieStore`]: the whole session sealed (XChaCha20-Poly1305) into the cookie, with key
//!   rotation; nothing stored server-side, no delta writes;
//! * `SqliteStore` (feature `sqlite`): a file, nothing to run;
//! * `PostgresStore` (feature `postgres`): shared by any number of app instances;
//! * `MySqlStore` (feature `mysql`): MySQL 8 or MariaDB 10.11, like PostgreSQL;
//! * `RedisStore` (feature `redis`): Redis or Valkey, standalone or cluster; the server expires
//!   sessions itself;
//! * `MemcachedStore` (feature `memcached`): memcached 1.6 or later; each session an item that
//!   expires with it (a full cache may evict one, which then reads as logged out).
//!
//! Every server-side store merges a save's changed fields into what is stored and writes the
//! entry atomically (a compare-and-swap), never re-creates a destroyed session and never
//! overwrites one on create; see [`store`] and the conformance
//! suite (feature `conformance`) that each of them passes.
//!
//! ```no_run
//! # #[cfg(feature = "sqlite")]
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use sessions::prelude::*;
//! # #[derive(Session, Default)] #[session(name = "cart")] struct Cart { items: Vec<String> }
//!
//! let store = SqliteStore::open("sessions.db").await?;
//! store.migrate().await?;                       // the tables, once
//! let layer = SessionLayer::new(store).register::<Cart>();
//! # let _ = layer;
//! # Ok(()) }
//! ```
//!
//! # 5. Migrations
//!
//! Each stored slot carries its type name and version. A slot older than the code is decoded as
//! the matching type of the `migrate_from` chain, walked up the `From` impls (v1 → v2 → v3) and
//! written back whole in the new version; [`SessionLayer::migration_counts`] counts how many came
//! from each version, so you know when an old one can go. `migrate_all::<T>()` on the SQL and
//! Redis stores migrates everything stored at once ([`MigrationReport`](migrate::MigrationReport)).
//!
//! A slot *newer* than the code (a deploy rolled back) is [`DecodeError::FutureVersion`](error::DecodeError::FutureVersion): never a
//! panic, and the slot is left untouched for the newer code.
//!
//! ```
//! # use serde::{Deserialize, Serialize};
//! use sessions::prelude::*;
//! use sessions::Format;
//! use sessions::error::{DecodeError, LoadError};
//! use sessions::store::{Record, Registry, Slot};
//! # #[derive(Serialize, Deserialize, Clone)] pub struct Item { sku: String, qty: u32 }
//! # #[derive(Session, Default)] #[session(name = "cart", version = 2, migrate_from = CartV1)]
//! # pub struct Cart { items: Vec<Item>, coupon: Option<String> }
//! # #[derive(Session, Default)] #[session(name = "cart", version = 1)] pub struct CartV1 { skus: Vec<String> }
//! # impl From<CartV1> for Cart {
//! #     fn from(old: CartV1) -> Self {
//! #         Cart { items: old.skus.into_iter().map(|sku| Item { sku, qty: 1 }).collect(), coupon: None }
//! #     }
//! # }
//!
//! let mut registry = Registry::new();
//! registry.register::<Cart>().unwrap();
//!
//! // A version-1 cart, as an older deployment stored it.
//! let mut record = Record::new();
//! record.insert(Slot::new("cart", 1, Format::Json, vec![("skus".into(), r#"["apple"]"#.into())]));
//! let cart = registry.load::<Cart>(&record).unwrap().unwrap();
//! assert_eq!(cart.migrated_from(), Some(1));
//! assert_eq!(cart.items()[0].qty, 1);
//!
//! // A version-3 cart, from a deployment that was rolled back.
//! record.insert(Slot::new("cart", 3, Format::Json, vec![]));
//! let err = registry.load::<Cart>(&record).err().unwrap();
//! assert!(matches!(err, LoadError::Decode(DecodeError::FutureVersion { stored: 3, known: 2, .. })));
//! ```
//!
//! # 6. Expiry
//!
//! [`Expiry`] is enforced server-side (and sealed inside the cookie for [`CookieStore`]): idle
//! (rolling, the default: 24 hours), absolute, both, or a browser-session cookie. A new session
//! starts with a whole idle time; after that the deadline (and the cookie's `Max-Age`) moves
//! only when
//!
//! * the refresh is due: [`refresh_share`](Expiry::refresh_share) of the idle time (default a
//!   quarter) has passed since it last moved, on any request, one that reads or one that saves;
//! * the session gets its own policy ([`SessionHandle::set_expiry`]);
//! * the id changes ([`SessionHandle::cycle_id`]).
//!
//! A save in between writes its fields and leaves the deadline and the cookie alone, so a
//! session used every minute is written about four times per idle time, not on every hit. With
//! [`CookieStore`] the deadline is sealed in the cookie, so there every change re-seals it and
//! moves the deadline too.
//!
//! ```
//! use std::time::Duration;
//! use sessions::prelude::*;
//! use sessions::Expiry;
//! # #[derive(Session, Default)] #[session(name = "cart")] struct Cart { items: Vec<String> }
//!
//! let layer = SessionLayer::new(MemoryStore::new())
//!     .register::<Cart>()
//!     .expiry(Expiry::idle_and_absolute(Duration::from_secs(30 * 60), Duration::from_secs(8 * 3600)));
//! # let _ = layer;
//! ```
//!
//! # Feature flags
//!
//! | feature | gives |
//! |---|---|
//! | `axum` (default) | `Typed<T>`, `Option<Typed<T>>` and `SessionHandle` as axum extractors |
//! | `actix` | the same `SessionLayer` as an actix-web middleware (`App::new().wrap(layer)`); `Typed<T>`, `IfStored<T>` and `SessionHandle` as actix-web extractors (`sessions::actix`) |
//! | `sqlite` | `SqliteStore` (rusqlite, SQLite bundled) |
//! | `postgres` | `PostgresStore` (sqlx) |
//! | `mysql` | `MySqlStore` (sqlx; MySQL 8, MariaDB 10.11) |
//! | `redis` | `RedisStore` (Redis, Valkey, Redis Cluster) |
//! | `memcached` | `MemcachedStore` (async-memcached, meta protocol) |
//! | `bincode` | the compact binary codec ([`Format`]) |
//! | `msgpack` | the MessagePack codec ([`Format`]) |
//! | `metrics` | counters and histograms through the `metrics` facade, all named `sessions_*` |
//! | `testing` | the test kit: a client that keeps the session like a browser, on tower or actix-web, and `seed`/`inspect` (`sessions::testing`) |
//! | `conformance` | the store test suite, for your own [`SessionStore`] |
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "actix")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
pub mod actix;
#[cfg(feature = "axum")]
mod axum;
pub mod census;
mod codec;
mod cookie;
pub mod csrf;
mod dirty;
mod errors;
mod events;
mod expiry;
mod id;
mod layer;
pub mod metrics;
mod record;
mod registry;
mod schema;
mod session;
mod slot_check;
pub mod store;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
mod tower;
mod typed;

#[doc(hidden)]
pub mod __private {
    pub use crate::private::*;
}
mod private;

pub use crate::tower::{SessionFuture, SessionService};
pub use census::Census;
pub use codec::Format;
pub use cookie::{CookieConfig, SameSite};
pub use events::SessionEvent;
pub use expiry::Expiry;
pub use id::SessionId;
pub use layer::{BackendBox, IntoBackend, SessionLayer};
pub use schema::Session;
pub use session::{OwnedSession, SessionHandle, SessionRejection};
pub use store::Key;
pub use stores::*;
pub use typed::{NewSlot, Typed};

/// Every error of the crate, one enum per concern, and [`Result`](error::Result).
///
/// ```
/// use sessions::error::{Result, StoreError};
/// fn check(ok: bool) -> Result<()> {
///     if ok { Ok(()) } else { Err(StoreError::Unsupported("check")) }
/// }
/// assert!(check(true).is_ok());
/// ```
pub mod error {
    pub use crate::codec::CodecError;
    pub use crate::cookie::CookieConfigError;
    pub use crate::errors::{
        ApplyError, Conflict, DecodeError, EncodeError, LoadError, RecordError, RegistryError,
        Result, StoreError,
    };
    pub use crate::id::IdError;
    pub use crate::store::cookie::CookieError;
}

/// The clocks a layer reads its time from: [`SystemClock`](clock::SystemClock) by default,
/// [`ManualClock`](clock::ManualClock) in tests that move time by hand.
///
/// ```
/// use std::time::Duration;
/// use sessions::clock::{Clock, ManualClock};
/// let clock = ManualClock::new();
/// let start = clock.now();
/// clock.advance(Duration::from_secs(60));
/// assert!(clock.now() > start);
/// ```
pub mod clock {
    pub use crate::expiry::{Clock, ManualClock, SystemClock};
}

/// Migrations between versions of a session type, and the report of a migration of a store.
///
/// ```
/// use sessions::migrate::MigrationReport;
/// let report = MigrationReport::default();
/// assert_eq!(report.total_migrated(), 0);
/// ```
pub mod migrate {
    pub use crate::registry::{MigrationCount, MigrationReport, migrate_slot};
    pub use crate::schema::NoPrevious;
}

/// `#[derive(Session)]`: see the [crate docs](crate#the-derive) for its attributes.
pub use sessions_derive::Session;

/// The stores, each behind its feature: re-exported at the crate root and in the prelude.
mod stores {
    #[cfg(feature = "memcached")]
    #[cfg_attr(docsrs, doc(cfg(feature = "memcached")))]
    pub use crate::store::MemcachedStore;
    #[cfg(feature = "mysql")]
    #[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
    pub use crate::store::MySqlStore;
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub use crate::store::PostgresStore;
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub use crate::store::RedisStore;
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    pub use crate::store::SqliteStore;
    pub use crate::store::{CookieStore, MemoryStore, SessionStore};
}

/// Everything a user needs: `use sessions::prelude::*;`.
///
/// ```
/// use sessions::prelude::*;
/// #[derive(Session, Default)]
/// #[session(name = "prefs")]
/// struct Prefs { dark: bool }
/// let prefs: Typed<Prefs> = Typed::default();
/// assert!(!prefs.dark());
/// ```
pub mod prelude {
    pub use crate::store::Upkeep;
    pub use crate::stores::*;
    pub use crate::{Session, SessionHandle, SessionLayer, Typed};
}

#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
