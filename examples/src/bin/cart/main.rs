//! The cart shop: a small shop whose session is a few typed structs, on axum or actix-web.
//!
//! ```sh
//! cargo run -p sessions-examples --bin cart                         # axum, SQLite file cart-sessions.db
//! cargo run -p sessions-examples --bin cart -- --framework actix    # the same shop on actix-web
//! cargo run -p sessions-examples --bin cart -- --store redis        # or postgres, cookie, memory
//! cargo run -p sessions-examples --bin cart -- seed-v1 3            # old carts, migrated on load
//! cargo run -p sessions-examples --bin cart -- migrate-all          # or migrate them all now
//! cargo test -p sessions-examples                                   # its tests, on both frameworks
//! bash .ci/e2e.sh                                                   # and in headless Chromium
//! ```
//!
//! Open the printed URL: add to the cart, apply a coupon, log in (any name), then log in as
//! the same name in a second browser (or a private window) and open "Your sessions" to see
//! both and sign the other out.
//!
//! The app itself is [`sessions_examples::cart`] (a library module, so that its tests can
//! build it in-process): the session types, handlers written once for both frameworks, the
//! page, the stores. This file is the command line and the server.

use std::io::{IsTerminal, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;

use sessions_examples::cart::cli::{self, Command, Framework, Options};
use sessions_examples::cart::stores::Opened;
use sessions_examples::cart::{AppState, actix_app, axum_app, model, ops};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

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
    let listener = TcpListener::bind(addr)
        .map_err(|e| format!("cannot listen on {addr}: {e} (try --port)"))?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    // The first line is the URL (the browser test reads it); flush so a pipe sees it now.
    println!("cart shop serving on http://{local}");
    println!("sessions: {label}");
    println!("framework: {}", options.framework.name());
    std::io::stdout().flush()?;
    // Metrics through the `metrics` facade: Prometheus, served at /metrics.
    let metrics = ops::install_recorder()?;
    let state = AppState::new(layer.clone(), label, options.framework).with_metrics(metrics);
    match options.framework {
        Framework::Axum => {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            axum::serve(listener, axum_app::app(state, layer))
                .with_graceful_shutdown(shutdown())
                .await?;
        }
        Framework::Actix => {
            // Each worker thread builds its own `App` from clones of the state and the layer
            // (they share one store). Signals are ours, as on the axum side.
            let server =
                actix_web::HttpServer::new(move || actix_app::app(state.clone(), layer.clone()))
                    .disable_signals()
                    .listen(listener)?
                    .run();
            let handle = server.handle();
            tokio::spawn(async move {
                shutdown().await;
                handle.stop(true).await;
            });
            server.await?;
        }
    }
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
