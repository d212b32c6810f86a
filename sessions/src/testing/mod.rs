//! Testing your handlers (feature `testing`): a client that keeps the session like a browser
//! does, over any tower service (and an actix-web app, with feature `actix`), and
//! [`seed`]/[`inspect`] to start a test from a stored session and look at one in an assertion.
//!
//! ```
//! use axum::{Router, routing::post};
//! use sessions::prelude::*;
//! use sessions::testing::TestClient;
//!
//! #[derive(Session, Default)]
//! #[session(name = "cart")]
//! struct Cart { items: Vec<String> }
//!
//! async fn add(mut cart: Typed<Cart>) -> String {
//!     cart.items_mut().push("apple".into());
//!     cart.items().len().to_string()
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let layer = SessionLayer::new(MemoryStore::new()).register::<Cart>();
//! let app = Router::new().route("/cart", post(add)).layer(layer.clone());
//! let mut browser = TestClient::new(app);
//! assert_eq!(browser.post("/cart").await.text(), "1");
//! assert_eq!(browser.post("/cart").await.text(), "2"); // the cookie came back
//! let cart = sessions::testing::inspect::<Cart>(&layer, &browser.session(&layer).unwrap()).await.unwrap();
//! assert_eq!(cart.unwrap().items.len(), 2);
//! # });
//! ```

#[cfg(feature = "actix")]
mod actix;
mod client;
mod jar;
mod seed;
mod tower;

#[cfg(feature = "actix")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
pub use actix::ActixTransport;
pub use client::{TestClient, TestResponse, Transport};
pub use seed::{inspect, seed};
pub use tower::TowerTransport;
