//! `RedisStore` against tower-sessions-redis-store on a local Redis, 64 concurrent clients.
//!
//! Run: `cargo bench -p sessions --all-features --bench redis_load`
//! (the server: `SESSIONS_BENCH_REDIS_URL`, else `SESSIONS_TEST_REDIS_URL`, else
//! `redis://127.0.0.1:6379`; skipped with a message when it cannot be reached. Tuning:
//! `BENCH_ROUNDS=5 BENCH_SAMPLE_MS=2000 BENCH_CLIENTS=64`; `BENCH_WORKERS=2` runs the clients on
//! a multi-thread runtime with 2 workers instead of one current-thread runtime).
//!
//! The same app, handlers and client code as `benches/http.rs`: 1,000 sessions created
//! beforehand, then 64 tasks on one current-thread runtime send requests through
//! `tower::ServiceExt::oneshot`, each taking the next session round-robin, for a fixed time per
//! sample; throughput is requests per second. Every round measures W0 (no session layer), then
//! W1 and W2 of each library, in a rotated order.
//!
//! * `sessions`: `RedisStore::connect` (one multiplexed connection), a unique key prefix
//!   `sessions-bench-<pid>:`, JSON and bincode;
//! * tower-sessions 0.14 with tower-sessions-redis-store 0.16 (its latest release, built on
//!   tower-sessions-core 0.14) on one fred `Client` (one pipelined connection). Its keys are
//!   the bare session ids: the bench deletes the ids it created at the end, as it deletes its own
//!   prefix.
//!
//! Bytes sent to Redis per request, two ways:
//! * `INFO stats` `total_net_input_bytes` delta over each throughput sample, divided by its
//!   requests (counts every client of the server: anything else using this Redis inflates it);
//! * exact: a second instance of each app talks to Redis through a counting TCP relay on
//!   127.0.0.1; one pass of 1,000 requests (64 concurrent) is counted, both directions.

#[allow(dead_code, unused_imports)] // each target uses a part of `common`
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use http::HeaderValue;
use redis::AsyncCommands;
use sessions::{Format, RedisStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower_sessions_redis_store::fred::prelude::{Client as FredClient, ClientLike, Config};

use common::{
    Client, SESSIONS, Samples, W1, W2, app_floor, env_usize, is_bench, runtime, send,
    sessions_layer, tower014,
};

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

/// Requests and client-process CPU time of a load run.
struct Load {
    requests: usize,
    elapsed: Duration,
    cpu: Duration,
}

/// `clients` tasks send requests to `path` round-robin over `cookies`, until `duration` has
/// passed or `limit` requests were sent.
async fn load(
    app: &Router,
    cookies: &Arc<Vec<HeaderValue>>,
    path: &'static str,
    clients: usize,
    duration: Duration,
    limit: usize,
) -> Load {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let cpu = cpu_time::ProcessTime::now();
    let stop = start + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (app, cookies, next) = (app.clone(), cookies.clone(), next.clone());
        tasks.spawn(async move {
            let mut done = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= limit || Instant::now() >= stop {
                    break;
                }
                std::hint::black_box(send(&app, path, Some(&cookies[i % cookies.len()])).await);
                done += 1;
            }
            done
        });
    }
    let mut requests = 0;
    while let Some(done) = tasks.join_next().await {
        requests += done.expect("a client task failed");
    }
    Load {
        requests,
        elapsed: start.elapsed(),
        cpu: cpu.elapsed(),
    }
}

/// A section of the server's `INFO`.
async fn info(conn: &mut redis::aio::MultiplexedConnection, section: &str) -> String {
    redis::cmd("INFO")
        .arg(section)
        .query_async(conn)
        .await
        .expect("INFO")
}

/// A number field of an `INFO` section.
fn field(info: &str, name: &str) -> f64 {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

/// What the server has done so far: bytes received and CPU seconds used.
#[derive(Clone, Copy)]
struct Server {
    net_input: f64,
    cpu_s: f64,
}

async fn server(conn: &mut redis::aio::MultiplexedConnection) -> Server {
    let stats = info(conn, "stats").await;
    let cpu = info(conn, "cpu").await;
    Server {
        net_input: field(&stats, "total_net_input_bytes"),
        cpu_s: field(&cpu, "used_cpu_user") + field(&cpu, "used_cpu_sys"),
    }
}

/// Calls per command, from `INFO commandstats`.
async fn command_calls(conn: &mut redis::aio::MultiplexedConnection) -> Vec<(String, f64)> {
    info(conn, "commandstats")
        .await
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest
                .strip_prefix("calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

/// `after − before`, per request, for the commands that changed.
fn calls_per_request(before: &[(String, f64)], after: &[(String, f64)], n: f64) -> String {
    after
        .iter()
        .filter_map(|(name, calls)| {
            let was = before
                .iter()
                .find(|(b, _)| b == name)
                .map_or(0.0, |(_, c)| *c);
            let per = (calls - was) / n;
            (per >= 0.01 && name != "info").then(|| format!("{name} {per:.2}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One library configuration: an app straight to Redis, and one through the counting relay.
struct Variant {
    name: &'static str,
    direct: Client,
    relayed: Client,
    counted: Arc<Counted>,
    /// Per throughput sample: requests per second, client and server CPU µs per request, and
    /// bytes per request by `INFO`, for W1 and W2.
    rps: [Samples; 2],
    cpu_us: [Samples; 2],
    server_us: [Samples; 2],
    info_bytes: [Samples; 2],
}

async fn sessions_app(url: &str, prefix: &str, format: Format) -> Result<Router, String> {
    let store = RedisStore::connect(url)
        .await
        .map_err(|e| e.to_string())?
        .prefix(prefix);
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

fn main() {
    let bench = is_bench();
    let rounds = if bench {
        env_usize("BENCH_ROUNDS", 5)
    } else {
        1
    };
    let sample = Duration::from_millis(if bench {
        env_usize("BENCH_SAMPLE_MS", 2000) as u64
    } else {
        50
    });
    let clients = if bench {
        env_usize("BENCH_CLIENTS", 64)
    } else {
        4
    };
    let sessions = if bench { SESSIONS } else { 20 };
    let url = std::env::var("SESSIONS_BENCH_REDIS_URL")
        .or_else(|_| std::env::var("SESSIONS_TEST_REDIS_URL"))
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let workers = env_usize("BENCH_WORKERS", 0);
    let rt = if workers == 0 {
        runtime()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
            .expect("a tokio runtime")
    };
    let runtime_label = if workers == 0 {
        "one current-thread runtime".to_owned()
    } else {
        format!("a multi-thread runtime of {workers} workers")
    };
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
        let Some((host, db)) = split_url(&url) else {
            println!("skipped: the relay needs a plain redis://host:port URL, not {url}");
            return;
        };
        let prefix = format!("sessions-bench-{}:", std::process::id());
        let result = measure(
            &url, &host, &db, &prefix, &mut admin, rounds, sample, clients, sessions,
        )
        .await;
        cleanup(&mut admin, &prefix, &result).await;
        match result {
            Ok(variants) => report(&variants, rounds, sample, clients, sessions, &runtime_label),
            Err(err) => println!("failed: {err}"),
        }
    });
}

#[allow(clippy::too_many_arguments)]
async fn measure(
    url: &str,
    host: &str,
    db: &str,
    prefix: &str,
    admin: &mut redis::aio::MultiplexedConnection,
    rounds: usize,
    sample: Duration,
    clients: usize,
    sessions: usize,
) -> Result<Vec<Variant>, String> {
    let mut variants = Vec::new();
    for (name, format) in [
        ("sessions json", Some(Format::Json)),
        ("sessions bincode", Some(Format::Bincode)),
        ("tower-sessions 0.14 redis-store 0.16", None),
    ] {
        let counted = Arc::new(Counted::default());
        let via = relay(host.to_owned(), counted.clone())
            .await
            .map_err(|e| e.to_string())?;
        let relayed_url = format!("redis://{via}{db}");
        let (direct, relayed) = match format {
            Some(format) => (
                sessions_app(url, prefix, format).await?,
                sessions_app(&relayed_url, prefix, format).await?,
            ),
            None => (tower_app(url).await?, tower_app(&relayed_url).await?),
        };
        let mut direct = Client::new(direct, sessions).await;
        direct.check().await;
        let mut relayed = Client::new(relayed, sessions).await;
        relayed.check().await;
        variants.push(Variant {
            name,
            direct,
            relayed,
            counted,
            rps: Default::default(),
            cpu_us: Default::default(),
            server_us: Default::default(),
            info_bytes: Default::default(),
        });
    }

    // Warm-up: one pass of W1 and W2 each.
    for v in &variants {
        let cookies = Arc::new(v.direct.cookies.clone());
        for path in [W1, W2] {
            load(&v.direct.app, &cookies, path, clients, sample, sessions).await;
        }
    }

    // Throughput, interleaved: W0, then W1 and W2 of each variant, the order rotated.
    let floor = app_floor();
    let floor_cookies = Arc::new(variants[0].direct.cookies.clone());
    let mut floor_rps = Samples::default();
    let slots: Vec<(usize, usize)> = (0..variants.len()).flat_map(|v| [(v, 0), (v, 1)]).collect();
    for round in 0..rounds {
        let l = load(&floor, &floor_cookies, W1, clients, sample, usize::MAX).await;
        floor_rps.push(l.requests as f64 / l.elapsed.as_secs_f64());
        for k in 0..slots.len() {
            let (vi, wi) = slots[(round + k) % slots.len()];
            let v = &mut variants[vi];
            let path = [W1, W2][wi];
            let cookies = Arc::new(v.direct.cookies.clone());
            let before = server(admin).await;
            let l = load(&v.direct.app, &cookies, path, clients, sample, usize::MAX).await;
            let after = server(admin).await;
            let n = l.requests as f64;
            v.rps[wi].push(n / l.elapsed.as_secs_f64());
            v.cpu_us[wi].push(l.cpu.as_secs_f64() * 1e6 / n);
            v.server_us[wi].push((after.cpu_s - before.cpu_s) * 1e6 / n);
            v.info_bytes[wi].push((after.net_input - before.net_input) / n);
        }
    }
    println!();
    println!(
        "W0 (no session layer), {clients} clients: {} requests/s",
        floor_rps.show(0)
    );

    // Exact bytes: one counted pass per workload through the relay.
    for v in &mut variants {
        let cookies = Arc::new(v.relayed.cookies.clone());
        for path in [W1, W2] {
            v.counted.to_redis.store(0, Ordering::Relaxed);
            v.counted.from_redis.store(0, Ordering::Relaxed);
            let before = command_calls(admin).await;
            let l = load(
                &v.relayed.app,
                &cookies,
                path,
                clients,
                Duration::from_secs(600),
                sessions,
            )
            .await;
            let n = l.requests as f64;
            let after = command_calls(admin).await;
            println!(
                "exact, {} {}: {:.0} bytes to Redis, {:.0} bytes from Redis per request \
                 ({} requests); commands per request: {}",
                v.name,
                &path[1..],
                v.counted.to_redis.load(Ordering::Relaxed) as f64 / n,
                v.counted.from_redis.load(Ordering::Relaxed) as f64 / n,
                l.requests,
                calls_per_request(&before, &after, n),
            );
        }
    }
    Ok(variants)
}

/// Deletes what the bench wrote: its prefix (`sessions`) and the ids it created (tower-sessions).
async fn cleanup(
    admin: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
    result: &Result<Vec<Variant>, String>,
) {
    let mut keys: Vec<String> = Vec::new();
    {
        let mut iter: redis::AsyncIter<'_, String> =
            match admin.scan_match(format!("{prefix}*")).await {
                Ok(iter) => iter,
                Err(err) => {
                    eprintln!("cleanup: SCAN failed: {err}");
                    return;
                }
            };
        while let Some(key) = iter.next_item().await {
            match key {
                Ok(key) => keys.push(key),
                Err(err) => {
                    eprintln!("cleanup: SCAN failed: {err}");
                    break;
                }
            }
        }
    }
    if let Ok(variants) = result {
        for v in variants.iter().filter(|v| v.name.starts_with("tower")) {
            for cookie in v.direct.cookies.iter().chain(&v.relayed.cookies) {
                if let Some(id) = cookie.to_str().ok().and_then(|c| c.strip_prefix("id=")) {
                    keys.push(id.to_owned());
                }
            }
        }
    }
    let mut deleted = 0usize;
    for chunk in keys.chunks(500) {
        match admin.del::<_, usize>(chunk).await {
            Ok(n) => deleted += n,
            Err(err) => eprintln!("cleanup: DEL failed: {err}"),
        }
    }
    eprintln!("cleanup: deleted {deleted} keys");
}

fn report(
    variants: &[Variant],
    rounds: usize,
    sample: Duration,
    clients: usize,
    sessions: usize,
    runtime_label: &str,
) {
    println!();
    println!(
        "{rounds} rounds, samples of {} ms, {clients} concurrent clients on {runtime_label}, \
         {sessions} sessions round-robin; median (min–max) over rounds",
        sample.as_millis()
    );
    println!();
    println!(
        "| variant | W1 requests/s | W1 client CPU µs/req | W1 Redis CPU µs/req | W1 bytes/req (INFO) | W2 requests/s | W2 client CPU µs/req | W2 Redis CPU µs/req | W2 bytes/req (INFO) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for v in variants {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            v.name,
            v.rps[0].show(0),
            v.cpu_us[0].show(1),
            v.server_us[0].show(1),
            v.info_bytes[0].show(0),
            v.rps[1].show(0),
            v.cpu_us[1].show(1),
            v.server_us[1].show(1),
            v.info_bytes[1].show(0),
        );
    }
    let Some(theirs) = variants.iter().find(|v| v.name.starts_with("tower")) else {
        return;
    };
    println!();
    for v in variants.iter().filter(|v| v.name.starts_with("sessions")) {
        let per_round = Samples(
            v.rps[0]
                .0
                .iter()
                .zip(&theirs.rps[0].0)
                .map(|(a, b)| a / b)
                .collect(),
        );
        println!(
            "- W1 throughput {} / {}: {:.2} (per round: {}); target ≥ 2",
            v.name,
            theirs.name,
            v.rps[0].median() / theirs.rps[0].median(),
            per_round.show(2)
        );
    }
}
