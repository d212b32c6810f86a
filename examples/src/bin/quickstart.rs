//! The smallest useful app: a typed visit counter and cart over `MemoryStore`.
//!
//! `cargo run -p sessions-examples --bin quickstart`, then open the URL it prints.

use std::net::SocketAddr;

use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sessions::prelude::*;

#[derive(Serialize, Deserialize, Clone)]
struct Item {
    sku: String,
    qty: u32,
}

/// One typed slot of the session: every field checked by the compiler, every write tracked.
#[derive(Session, Default)]
#[session(name = "cart", version = 1)]
struct Cart {
    items: Vec<Item>,
    visits: u64,
}

async fn show(mut cart: Typed<Cart>) -> String {
    *cart.visits_mut() += 1; // only `visits` is saved
    format!(
        "visit {} with {} item(s) in the cart; POST /cart {{\"sku\":\"apple\",\"qty\":1}} to add one\n",
        cart.visits(),
        cart.items().len()
    )
}

async fn add(mut cart: Typed<Cart>, Json(item): Json<Item>) -> Json<usize> {
    cart.items_mut().push(item); // only `items` is saved
    Json(cart.items().len())
}

async fn logout(session: SessionHandle) -> &'static str {
    session.destroy();
    "bye\n"
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let sessions = SessionLayer::new(MemoryStore::new())
        .register::<Cart>()
        // The example serves plain HTTP on localhost; keep `Secure` on behind TLS.
        .cookie(sessions::CookieConfig::new().secure(false));
    let app = Router::new()
        .route("/", get(show))
        .route("/cart", post(add))
        .route("/logout", post(logout))
        .layer(sessions);
    let port = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("quickstart serving on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
