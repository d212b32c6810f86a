//! The cart shop: an axum app whose session is a few typed structs.
//!
//! ```sh
//! cargo run -p sessions-examples --bin cart                         # SQLite file cart-sessions.db
//! cargo run -p sessions-examples --bin cart -- --store redis        # or postgres, cookie, memory
//! cargo run -p sessions-examples --bin cart -- seed-v1 3            # old carts, migrated on load
//! cargo run -p sessions-examples --bin cart -- migrate-all          # or migrate them all now
//! ```
//!
//! * `model`: the session types (`Cart` v3 with its v1 → v2 → v3 chain, `Account`, `Flash`),
//!   the catalogue and the cart operations;
//! * `web`: the HTML page and its forms; `page`: the HTML itself;
//! * `api`: the same as JSON under `/api`;
//! * `stores`: the store the command line picks, and the `SessionLayer` over it;
//! * `cli`: the command line.

mod api;
mod cli;
mod model;
mod page;
mod stores;
mod web;

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;
use axum::routing::{delete, get, post, put};
use sessions::SessionLayer;

use crate::cli::{Command, Options};
use crate::stores::Opened;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the handlers share: the layer (for its migration counts) and where sessions are kept.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) layer: SessionLayer,
    pub(crate) store: Arc<str>,
}

/// The routes, wrapped in the session layer.
fn app(layer: SessionLayer, store: String) -> Router {
    let state = AppState {
        layer: layer.clone(),
        store: store.into(),
    };
    Router::new()
        .route("/", get(web::page))
        .route("/cart/add", post(web::add))
        .route("/cart/remove", post(web::remove))
        .route("/coupon", post(web::coupon))
        .route("/coupon/remove", post(web::uncoupon))
        .route("/login", post(web::login))
        .route("/logout", post(web::logout))
        .route("/api/catalogue", get(api::catalogue))
        .route("/api/cart", get(api::get_cart))
        .route("/api/cart/items", post(api::add))
        .route("/api/cart/items/{sku}", delete(api::remove))
        .route(
            "/api/cart/coupon",
            put(api::put_coupon).delete(api::delete_coupon),
        )
        .route("/api/login", post(api::login))
        .route("/api/logout", post(api::logout))
        .route("/api/migrations", get(api::migrations))
        .with_state(state)
        .layer(layer)
}

#[tokio::main]
async fn main() -> ExitCode {
    // Logs go to stderr (stdout carries the URL and the commands' output). `RUST_LOG` filters;
    // `sessions::migration` logs each slot migrated on load.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let options = match Options::parse(std::env::args().skip(1), |name| std::env::var(name).ok()) {
        Ok(options) => options,
        Err(err) => {
            eprintln!("cart: {err}\n\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    match run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("cart: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> Result<(), BoxError> {
    if options.command == Command::Help {
        println!("{}", cli::USAGE);
        return Ok(());
    }
    let store = Opened::open(&options).await?;
    let label = store.describe(&options);
    match options.command {
        Command::Help => Ok(()),
        Command::Serve => serve(&options, &store, label).await,
        Command::SeedV1(count) => seed_v1(&options, &store, &label, count).await,
        Command::MigrateAll => {
            let report = store.migrate_all().await?;
            let by_version = report
                .migrated
                .iter()
                .map(|(version, n)| format!("{n} from v{version}"))
                .collect::<Vec<_>>();
            println!(
                "migrate-all cart -> v{} in {label}: {} migrated{}, {} already current, {} failed",
                <model::Cart as sessions::Session>::VERSION,
                report.total_migrated(),
                if by_version.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", by_version.join(", "))
                },
                report.current,
                report.failed
            );
            Ok(())
        }
    }
}

async fn serve(options: &Options, store: &Opened, label: String) -> Result<(), BoxError> {
    let layer = store.layer();
    let addr = SocketAddr::from(([127, 0, 0, 1], options.port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e} (try --port)"))?;
    let local = listener.local_addr()?;
    // The first line is the URL (the browser test reads it); flush so a pipe sees it now.
    println!("cart shop serving on http://{local}");
    println!("sessions: {label}");
    std::io::stdout().flush()?;
    axum::serve(listener, app(layer, label))
        .with_graceful_shutdown(shutdown())
        .await?;
    store.close().await;
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

async fn seed_v1(
    options: &Options,
    store: &Opened,
    label: &str,
    count: usize,
) -> Result<(), BoxError> {
    let seeded = store.seed_v1(count).await?;
    println!(
        "seeded {} version-1 cart(s) into {label}; each is a live session (demo only: never print real ids):",
        seeded.len()
    );
    for (id, skus) in &seeded {
        println!("{}  v1 skus: {}", id.expose(), skus.join(" "));
        println!(
            "  curl --cookie 'session={}' http://127.0.0.1:{}/api/cart",
            id.expose(),
            options.port
        );
    }
    println!(
        "The running app migrates each cart to v{} on its first load (see /api/migrations), \
         or run `cart migrate-all` to migrate them all now.",
        <model::Cart as sessions::Session>::VERSION
    );
    Ok(())
}
