//! Runnable apps using `sessions`; see the README.
//!
//! * `quickstart`: the smallest useful app, a typed visit counter and cart over `MemoryStore`;
//! * `cart`: a shop with an HTML page, "Your sessions" and a JSON API, on axum or actix-web
//!   (`--framework actix`) from one code base ([`cart`], here so that its tests can build the
//!   app in-process), sessions in SQLite by default (or PostgreSQL, Redis, the cookie store,
//!   memory), a `Cart` at version 3 with its migration chain, and `seed-v1` / `migrate-all`
//!   commands. Its tests are in `tests/`, the browser test among them.

pub mod cart;
