//! `RedisStore` against tower-sessions-redis-store 0.16 (fred) on one Redis: the same app,
//! measured interleaved by `benches/common/load.rs` (throughput at 2 workers × 64 tasks, and
//! single-request time), then the exact bytes each sends to Redis per request, counted by a TCP
//! relay, the commands the server ran per request with their server time (`INFO
//! commandstats` deltas), and the CPU per request of this process and of the server (`INFO
//! cpu`); the server figures are exact only on a server nobody else uses.
//!
//! Run: `cargo bench -p sessions --all-features --bench store_redis`. The server:
//! `SESSIONS_BENCH_REDIS_URL`, else `SESSIONS_TEST_REDIS_URL`, else `redis://127.0.0.1:6379`;
//! skipped with a line when it cannot be reached. Contenders:
//!
//! * `sessions json` / `sessions bincode`: `RedisStore::connect` (one multiplexed connection),
//!   key prefix `sessions-bench-<pid>:`;
//! * `sessions json cached` / `sessions bincode cached`: the same with `local_cache(10_000)`;
//! * `tower-sessions redis-store` (the incumbent): tower-sessions 0.14 with
//!   tower-sessions-redis-store 0.16 on one fred `Client`. Its keys are the bare session ids:
//!   the bench deletes the ids it created, as it deletes its own prefix.

#[allow(dead_code, unused_imports)] // each target uses a part of `common`
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use axum::Router;
use http::HeaderValue;
use redis::AsyncCommands;
use sessions::{Format, RedisStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower_sessions_redis_store::fred::prelude::{Client as FredClient, ClientLike, Config};

use common::load::{Contender, LoadSettings, measure, report};
use common::{Client, W1, W2, send, sessions_layer, tower014};

/// Bytes through a relay, each way.
#[derive(Default)]
struct Counted {
    to_redis: AtomicU64,
    from_redis: AtomicU64,
}

/// A TCP relay on 127.0.0.1 to `target` that counts the bytes it carries; returns its address.
async fn relay(target: String, counted: Arc<Counted>) -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let Ok(outbound) = TcpStream::connect(&target).await else {
                continue;
            };
            let (client_read, client_write) = inbound.into_split();
            let (server_read, server_write) = outbound.into_split();
            let (up, down) = (counted.clone(), counted.clone());
            tokio::spawn(pipe(client_read, server_write, move |n| {
                up.to_redis.fetch_add(n, Ordering::Relaxed);
            }));
            tokio::spawn(pipe(server_read, client_write, move |n| {
                down.from_redis.fetch_add(n, Ordering::Relaxed);
            }));
        }
    });
    Ok(addr)
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    count: impl Fn(u64),
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                count(n as u64);
                if to.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown().await;
}

/// `host:port` and the rest (`/db`) of a `redis://` URL.
fn split_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("redis://")?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    (!host.contains('@')).then(|| (host.to_owned(), path.to_owned()))
}

/// `tasks` tasks send `n` requests in all to `path`, round-robin over `cookies`.
async fn pass(
    app: &Router,
    cookies: &Arc<Vec<HeaderValue>>,
    path: &'static str,
    tasks: usize,
    n: usize,
) {
    let next = Arc::new(AtomicUsize::new(0));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..tasks {
        let (app, cookies, next) = (app.clone(), cookies.clone(), next.clone());
        set.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                std::hint::black_box(send(&app, path, Some(&cookies[i % cookies.len()])).await);
            }
        });
    }
    while let Some(done) = set.join_next().await {
        done.expect("a load task failed");
    }
}

/// `INFO commandstats`: command → (calls, usec).
async fn command_stats(conn: &mut redis::aio::MultiplexedConnection) -> Vec<(String, u64, u64)> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap_or_default();
    info.lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let field = |key: &str| {
                rest.split(',')
                    .find_map(|part| part.strip_prefix(key)?.parse::<u64>().ok())
            };
            Some((name.to_owned(), field("calls=")?, field("usec=")?))
        })
        .collect()
}

/// The server's CPU seconds so far (user + system), from `INFO cpu`.
async fn server_cpu(conn: &mut redis::aio::MultiplexedConnection) -> f64 {
    let info: String = redis::cmd("INFO")
        .arg("cpu")
        .query_async(conn)
        .await
        .unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find_map(|l| {
                l.strip_prefix(name)?
                    .strip_prefix(':')?
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or(f64::NAN)
    };
    field("used_cpu_user") + field("used_cpu_sys")
}

/// The commands that ran between `before` and `after`, per request, with their µs per call.
fn per_request(before: &[(String, u64, u64)], after: &[(String, u64, u64)], n: f64) -> String {
    after
        .iter()
        .filter_map(|(name, calls, usec)| {
            let (was_calls, was_usec) = before
                .iter()
                .find(|(b, ..)| b == name)
                .map_or((0, 0), |(_, c, u)| (*c, *u));
            let dc = calls.saturating_sub(was_calls);
            let per = dc as f64 / n;
            (per >= 0.01 && name != "info").then(|| {
                format!(
                    "{name} {per:.2} × {:.2} µs",
                    usec.saturating_sub(was_usec) as f64 / dc as f64
                )
            })
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn sessions_app(
    url: &str,
    prefix: &str,
    (format, cached, encrypted): (Format, bool, bool),
) -> Result<Router, String> {
    let mut store = RedisStore::connect(url)
        .await
        .map_err(|e| e.to_string())?
        .prefix(prefix);
    if cached {
        store = store.local_cache(10_000).await.map_err(|e| e.to_string())?;
    }
    if encrypted {
        let store = common::encrypted(store);
        return Ok(common::app_sessions(sessions_layer(store, format)));
    }
    Ok(common::app_sessions(sessions_layer(store, format)))
}

async fn tower_app(url: &str) -> Result<Router, String> {
    let config = Config::from_url(url).map_err(|e| e.to_string())?;
    let client = FredClient::new(config, None, None, None);
    client.init().await.map_err(|e| e.to_string())?;
    Ok(tower014::app(tower_sessions_redis_store::RedisStore::new(
        client,
    )))
}

/// A sessions app's (format, local cache, wrapped in `Encrypted`); `None` is tower-sessions.
type Variant = Option<(Format, bool, bool)>;

/// The apps compared; the last is encryption at rest (issue 21: at most 15% of W1's time), to
/// compare with `sessions json`.
const VARIANTS: [(&str, Variant); 6] = [
    ("tower-sessions redis-store", None),
    ("sessions json", Some((Format::Json, false, false))),
    ("sessions bincode", Some((Format::Bincode, false, false))),
    ("sessions json cached", Some((Format::Json, true, false))),
    (
        "sessions bincode cached",
        Some((Format::Bincode, true, false)),
    ),
    ("sessions json Encrypted", Some((Format::Json, false, true))),
];

async fn app_of(url: &str, prefix: &str, variant: Variant) -> Result<Router, String> {
    match variant {
        Some(variant) => sessions_app(url, prefix, variant).await,
        None => tower_app(url).await,
    }
}

/// `STORE_REDIS_PROFILE=<variant>:<w1|w2>`: only `profiled_requests` of that variant, on a
/// current-thread runtime, for `valgrind --tool=callgrind --collect-atstart=no
/// --toggle-collect=*profiled_requests*` (client instructions per request; the server is
/// another process and not counted).
fn profile(spec: &str, url: &str) {
    let Some((variant, path)) = spec.split_once(':') else {
        println!("STORE_REDIS_PROFILE is <variant>:<w1|w2>");
        return;
    };
    let Some((_, variant)) = VARIANTS
        .iter()
        .find(|(name, _)| name.replace(' ', "-") == variant)
    else {
        println!(
            "no variant {variant}: {:?}",
            VARIANTS.map(|(n, _)| n.replace(' ', "-"))
        );
        return;
    };
    let path = if path == "w2" { W2 } else { W1 };
    let rt = common::runtime();
    let prefix = format!("sessions-bench-{}:", std::process::id());
    let mut client = rt.block_on(async {
        let app = app_of(url, &prefix, *variant).await.expect("an app");
        let mut client = Client::new(app, 100).await;
        client.run(path, 500).await;
        client
    });
    const N: usize = 2_000;
    profiled_requests(&rt, &mut client, path, N);
    println!("profiled {N} requests");
    rt.block_on(async {
        let admin = match redis::Client::open(url) {
            Ok(client) => client.get_multiplexed_async_connection().await,
            Err(err) => Err(err),
        };
        match admin {
            Ok(mut admin) => {
                let tower = if variant.is_none() {
                    client.cookies.clone()
                } else {
                    Vec::new()
                };
                cleanup(&mut admin, &prefix, &tower).await;
            }
            Err(err) => eprintln!("cleanup: no connection: {err}"),
        }
    });
}

#[inline(never)]
fn profiled_requests(
    rt: &tokio::runtime::Runtime,
    client: &mut Client,
    path: &'static str,
    n: usize,
) {
    rt.block_on(client.run(path, n));
}

fn main() {
    let settings = LoadSettings::from_env();
    let url = std::env::var("SESSIONS_BENCH_REDIS_URL")
        .or_else(|_| std::env::var("SESSIONS_TEST_REDIS_URL"))
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    if let Ok(spec) = std::env::var("STORE_REDIS_PROFILE") {
        return profile(&spec, &url);
    }
    let rt = settings.runtime();
    rt.block_on(async {
        let mut admin = match redis::Client::open(url.as_str()) {
            Ok(client) => match client.get_multiplexed_async_connection().await {
                Ok(conn) => conn,
                Err(err) => {
                    println!("skipped: no Redis at {url} ({err}); set SESSIONS_BENCH_REDIS_URL");
                    return;
                }
            },
            Err(err) => {
                println!("skipped: bad Redis URL {url} ({err})");
                return;
            }
        };
        let prefix = format!("sessions-bench-{}:", std::process::id());
        let mut tower_cookies: Vec<HeaderValue> = Vec::new();
        let result = run(&url, &prefix, &mut admin, &settings, &mut tower_cookies).await;
        cleanup(&mut admin, &prefix, &tower_cookies).await;
        if let Err(err) = result {
            println!("failed: {err}");
        }
    });
}

async fn run(
    url: &str,
    prefix: &str,
    admin: &mut redis::aio::MultiplexedConnection,
    settings: &LoadSettings,
    tower_cookies: &mut Vec<HeaderValue>,
) -> Result<(), String> {
    let mut contenders = Vec::new();
    for (name, variant) in VARIANTS {
        let app = app_of(url, prefix, variant).await?;
        let contender = Contender::new(name, variant.is_none(), app, settings.sessions).await;
        if variant.is_none() {
            tower_cookies.extend(contender.client.cookies.iter().cloned());
        }
        contenders.push(contender);
    }
    measure(&mut contenders, settings).await;
    report(
        &format!("RedisStore vs tower-sessions-redis-store on {url}"),
        &contenders,
        settings,
    );

    // Exact bytes and commands per request: one pass of W1 and W2 per variant through a
    // counting relay (64 concurrent tasks, one request per session).
    let Some((host, db)) = split_url(url) else {
        println!("\n(bytes not counted: the relay needs a plain redis://host:port URL)");
        return Ok(());
    };
    println!(
        "\nper request, one pass of {} requests ({} tasks) through a counting relay:",
        settings.sessions, settings.tasks
    );
    println!(
        "| | bytes to Redis | bytes from Redis | client CPU µs | server CPU µs | commands per request × server µs per call |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, variant) in VARIANTS {
        let counted = Arc::new(Counted::default());
        let via = relay(host.clone(), counted.clone())
            .await
            .map_err(|e| e.to_string())?;
        let relayed = app_of(&format!("redis://{via}{db}"), prefix, variant).await?;
        let mut relayed = Client::new(relayed, settings.sessions).await;
        relayed.check().await;
        // CPU is measured on an app of its own, straight to Redis (the relay runs in this
        // process and would count its own copying).
        let mut direct = Client::new(app_of(url, prefix, variant).await?, settings.sessions).await;
        direct.check().await;
        if variant.is_none() {
            tower_cookies.extend(relayed.cookies.iter().chain(&direct.cookies).cloned());
        }
        let relayed_cookies = Arc::new(relayed.cookies.clone());
        let direct_cookies = Arc::new(direct.cookies.clone());
        for path in [W1, W2] {
            let n = settings.sessions;
            // Warm: a cached variant's first pass fills its cache.
            pass(&relayed.app, &relayed_cookies, path, settings.tasks, n).await;
            pass(&direct.app, &direct_cookies, path, settings.tasks, n).await;
            counted.to_redis.store(0, Ordering::Relaxed);
            counted.from_redis.store(0, Ordering::Relaxed);
            let before = command_stats(admin).await;
            pass(&relayed.app, &relayed_cookies, path, settings.tasks, n).await;
            let after = command_stats(admin).await;
            const CPU_PASSES: usize = 5;
            let cpu_before = server_cpu(admin).await;
            let client_cpu = cpu_time::ProcessTime::now();
            for _ in 0..CPU_PASSES {
                pass(&direct.app, &direct_cookies, path, settings.tasks, n).await;
            }
            let client_cpu = client_cpu.elapsed();
            let cpu_after = server_cpu(admin).await;
            let per = |x: f64| x / n as f64;
            let cpu_n = (n * CPU_PASSES) as f64;
            println!(
                "| {name} {} | {:.0} | {:.0} | {:.1} | {:.1} | {} |",
                &path[1..],
                per(counted.to_redis.load(Ordering::Relaxed) as f64),
                per(counted.from_redis.load(Ordering::Relaxed) as f64),
                client_cpu.as_secs_f64() * 1e6 / cpu_n,
                (cpu_after - cpu_before) * 1e6 / cpu_n,
                per_request(&before, &after, n as f64)
            );
        }
    }
    Ok(())
}

/// Deletes what the bench wrote: its prefix (`sessions`) and the ids it created (tower).
async fn cleanup(
    admin: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
    tower: &[HeaderValue],
) {
    let mut keys: Vec<String> = Vec::new();
    if let Ok(mut iter) = admin.scan_match::<_, String>(format!("{prefix}*")).await {
        while let Some(Ok(key)) = iter.next_item().await {
            keys.push(key);
        }
    }
    for cookie in tower {
        if let Some(id) = cookie.to_str().ok().and_then(|c| c.strip_prefix("id=")) {
            keys.push(id.to_owned());
        }
    }
    let mut deleted = 0usize;
    for chunk in keys.chunks(500) {
        deleted += admin.del::<_, usize>(chunk).await.unwrap_or(0);
    }
    eprintln!("cleanup: deleted {deleted} keys");
}
