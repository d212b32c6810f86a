//! `sessions` on actix-web against actix-session 0.11, in process, the same cart and handlers
//! as `http.rs`, interleaved.
//!
//! Run: `cargo bench -p sessions --all-features --bench actix` (one pair only: `-- cookie` or
//! `-- redis`; the Redis pair needs Redis at `SESSIONS_BENCH_REDIS_URL`, else
//! `SESSIONS_TEST_REDIS_URL`, else 127.0.0.1:6379, and is skipped when it is not there).
//!
//! Every request goes through `actix_web::test::call_service` on one thread and carries the
//! cookie of one of 1,000 sessions created beforehand, used round-robin; the response body is
//! read whole, and a changed `Set-Cookie` is kept, as a browser does. W0 is the same routes
//! with no session middleware; W1 reads the cart, bumps two fields and saves; W2 reads it.
//!
//! Pairs:
//! * `cookie`: `CookieStore` (the whole session sealed in the cookie, JSON and bincode) against
//!   actix-session's `CookieSessionStore` (its default: the session encrypted in the cookie);
//! * `redis`: `RedisStore` (JSON and bincode) against actix-session's `RedisSessionStore`.
//!
//! Both use a persistent cookie and 24 hours of inactivity, so both set the cookie on W1. The
//! report is `http.rs`'s: per request, CPU time of the thread and wall-clock time, median
//! (min–max) over the rounds, and the overhead ratios (W−W0) round by round.

#[allow(dead_code, unused_imports)] // each target uses a part of `common`
mod common;

use std::time::Duration;

use common::{
    Cpu, Requests, SESSIONS, Settings, Variant, actix, env_usize, filters, is_bench, run, runtime,
};
use sessions::prelude::*;
use sessions::{Format, Key};

fn redis_url() -> String {
    ["SESSIONS_BENCH_REDIS_URL", "SESSIONS_TEST_REDIS_URL"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|url| !url.is_empty()))
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into())
}

fn layer(store: impl sessions::IntoBackend, format: Format) -> SessionLayer {
    common::sessions_layer(store, format)
}

fn main() {
    let bench = is_bench();
    let settings = Settings {
        rounds: if bench {
            env_usize("BENCH_ROUNDS", 20)
        } else {
            1
        },
        sample: Duration::from_millis(if bench {
            env_usize("BENCH_SAMPLE_MS", 150) as u64
        } else {
            1
        }),
        sessions: if bench { SESSIONS } else { 20 },
        cpu: Cpu::Thread,
        targets: None,
    };
    let n = settings.sessions;
    let filters = filters();
    let wanted = |pair: &str| filters.is_empty() || filters.iter().any(|f| pair.contains(f));

    let rt = runtime();
    let local = tokio::task::LocalSet::new();
    let mut variants: Vec<Variant> = Vec::new();
    let mut add = |pair, name, ours, client: Box<dyn Requests>| {
        variants.push(Variant {
            pair,
            name,
            ours,
            client,
        });
    };
    if wanted("cookie") {
        for (name, format) in [
            ("sessions json", Format::Json),
            ("sessions bincode", Format::Bincode),
        ] {
            let store = CookieStore::new([Key::generate(1).expect("a cookie key")]).expect("a key");
            add(
                "cookie",
                name,
                true,
                local.block_on(&rt, actix::sessions(layer(store, format), n)),
            );
        }
        let store = actix_session::storage::CookieSessionStore::default();
        let client = local.block_on(&rt, actix::actix_session(store, n));
        add("cookie", "actix-session cookie", false, client);
    }
    if wanted("redis") {
        let url = redis_url();
        match local.block_on(&rt, redis_variants(&url, n)) {
            Ok(clients) => {
                for (name, ours, client) in clients {
                    add("redis", name, ours, client);
                }
            }
            Err(err) => println!("skipped: the redis pair (no Redis at {url}: {err})"),
        }
    }
    // What each cookie weighs (`name=value`, the session of a created cart).
    for variant in &variants {
        if let Some(cookie) = variant.client.cookies().first() {
            println!(
                "{} {}: cookie of {} bytes",
                variant.pair,
                variant.name,
                cookie.len()
            );
        }
    }
    let Some(first) = variants.first() else {
        eprintln!("no pair matches {filters:?}: the pairs are `cookie` and `redis`");
        return;
    };
    let floor = local.block_on(&rt, actix::floor(&*first.client));
    run(&rt, variants, floor, settings).report();
}

/// `RedisStore` (JSON, bincode) and actix-session's `RedisSessionStore` on the server at `url`.
async fn redis_variants(
    url: &str,
    n: usize,
) -> Result<Vec<(&'static str, bool, Box<dyn Requests>)>, String> {
    let mut clients = Vec::new();
    for (name, format) in [
        ("sessions json", Format::Json),
        ("sessions bincode", Format::Bincode),
    ] {
        let prefix = format!("bench-actix-{}:", std::process::id());
        let store = RedisStore::connect(url)
            .await
            .map_err(|e| e.to_string())?
            .prefix(prefix);
        clients.push((name, true, actix::sessions(layer(store, format), n).await));
    }
    let store = actix_session::storage::RedisSessionStore::new(url)
        .await
        .map_err(|e| e.to_string())?;
    clients.push((
        "actix-session redis",
        false,
        actix::actix_session(store, n).await,
    ));
    Ok(clients)
}
