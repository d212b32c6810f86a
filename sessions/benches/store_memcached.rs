//! `MemcachedStore` against `RedisStore`: the same app on each store, measured interleaved by
//! `benches/common/load.rs` (throughput at 2 workers × 64 tasks, and single-request time), for
//! W1 (read the cart, bump two fields, save) and W2 (read only), in JSON and in bincode.
//!
//! Run: `cargo bench -p sessions --all-features --bench store_memcached` (settings in
//! `benches/common/load.rs`). The servers: `SESSIONS_BENCH_MEMCACHED_URL`, else
//! `SESSIONS_TEST_MEMCACHED_URL`, else `memcache://127.0.0.1:11211`; and
//! `SESSIONS_BENCH_REDIS_URL`, else `SESSIONS_TEST_REDIS_URL`, else `redis://127.0.0.1:6379`;
//! skipped with a line when either cannot be reached. `BENCH_MEMCACHED_CONNECTIONS` sets
//! `MemcachedStore::max_connections` (default: the store's, 16).
//!
//! Then the CPU per request of this process and of each server (memcached's `stats` rusage,
//! Redis's `INFO cpu`), exact only on servers nobody else uses meanwhile.
//!
//! Each store is used as its docs show: `MemcachedStore::connect` (a pool of up to 16
//! connections, CAS through the meta protocol) and `RedisStore::connect` (one multiplexed
//! connection, a Lua script per save). The incumbent of each format is the `RedisStore` of
//! that format: two tables of ratios. There is no tower-sessions memcached store to compare
//! with (its store catalog has none). Keys go under a prefix of this run; the Redis keys are
//! deleted at the end, the memcached items expire by themselves (24 h).

#[allow(dead_code, unused_imports)] // each target uses a part of `common`
mod common;

use std::sync::Arc;

use axum::Router;
use common::load::{Contender, LoadSettings, drive, measure, report};
use common::{Samples, W1, W2, app_sessions, env_usize, sessions_layer};
use cpu_time::ProcessTime;
use sessions::{Format, MemcachedStore, RedisStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn main() {
    let settings = LoadSettings::from_env();
    let rt = settings.runtime();
    rt.block_on(run(settings));
}

/// The first of the variables `names` that is set, else `default`.
fn url(names: [&str; 2], default: &str) -> String {
    names
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|url| !url.is_empty()))
        .unwrap_or_else(|| default.into())
}

async fn run(settings: LoadSettings) {
    let memcached_url = url(
        [
            "SESSIONS_BENCH_MEMCACHED_URL",
            "SESSIONS_TEST_MEMCACHED_URL",
        ],
        "memcache://127.0.0.1:11211",
    );
    let redis_url = url(
        ["SESSIONS_BENCH_REDIS_URL", "SESSIONS_TEST_REDIS_URL"],
        "redis://127.0.0.1:6379",
    );
    let prefix = format!("sessions-bench-{}:", std::process::id());
    let connections = env_usize("BENCH_MEMCACHED_CONNECTIONS", 0);
    let memcached = match MemcachedStore::connect(&memcached_url).await {
        Ok(store) if connections > 0 => store.prefix(&prefix).max_connections(connections),
        Ok(store) => store.prefix(&prefix),
        Err(err) => {
            println!(
                "skipped: no memcached at {memcached_url} ({err}); set SESSIONS_BENCH_MEMCACHED_URL"
            );
            return;
        }
    };
    let redis = match RedisStore::connect(redis_url.as_str()).await {
        Ok(store) => store.prefix(&prefix),
        Err(err) => {
            println!("skipped: no Redis at {redis_url} ({err}); set SESSIONS_BENCH_REDIS_URL");
            return;
        }
    };
    let _cleanup = DeletePrefix {
        url: redis_url.clone(),
        pattern: format!("{prefix}*"),
    };
    // Per format: the incumbent (Redis) first, then memcached, so that each half of the list
    // is a pair with its own incumbent.
    let mut contenders = Vec::new();
    for (name, format) in [("json", Format::Json), ("bincode", Format::Bincode)] {
        let apps: [(String, bool, Router); 2] = [
            (
                format!("sessions RedisStore {name}"),
                true,
                app_sessions(sessions_layer(redis.clone(), format)),
            ),
            (
                format!("sessions MemcachedStore {name}"),
                false,
                app_sessions(sessions_layer(memcached.clone(), format)),
            ),
        ];
        for (label, incumbent, app) in apps {
            contenders.push(Contender::new(label, incumbent, app, settings.sessions).await);
        }
    }
    measure(&mut contenders, &settings).await;
    let (json, bincode) = contenders.split_at(2);
    report("Memcached against Redis, JSON", json, &settings);
    report("Memcached against Redis, bincode", bincode, &settings);
    cpu_cost(&contenders, &settings, &memcached_url, &redis_url).await;
}

/// CPU per request, per contender: this process's (the layer, the store, the client) and its
/// server's (memcached's `stats` rusage; Redis's `INFO cpu`), over a few samples rotated like
/// the throughput rounds. The servers' figures count whatever else uses them meanwhile.
async fn cpu_cost(
    contenders: &[Contender],
    settings: &LoadSettings,
    memcached_url: &str,
    redis_url: &str,
) {
    let Some(memcached_addr) = memcached_url.strip_prefix("memcache://") else {
        return;
    };
    let Ok(client) = redis::Client::open(redis_url) else {
        return;
    };
    let Ok(mut redis_conn) = client.get_multiplexed_async_connection().await else {
        return;
    };
    let rounds = settings.rounds.clamp(1, 3);
    let n = contenders.len();
    let mut app = vec![[Samples::default(), Samples::default()]; n];
    let mut server = vec![[Samples::default(), Samples::default()]; n];
    for round in 0..rounds {
        for k in 0..n {
            let i = (k + round) % n;
            let on_memcached = contenders[i].name.contains("Memcached");
            let cookies = Arc::new(contenders[i].client.cookies.clone());
            for (w, path) in [W1, W2].into_iter().enumerate() {
                let server_before = if on_memcached {
                    memcached_cpu(memcached_addr).await
                } else {
                    redis_cpu(&mut redis_conn).await
                };
                let before = ProcessTime::now();
                let requests = drive(
                    &contenders[i].client.app,
                    &cookies,
                    path,
                    settings.tasks,
                    settings.sample,
                )
                .await as f64;
                let process = before.elapsed();
                let server_after = if on_memcached {
                    memcached_cpu(memcached_addr).await
                } else {
                    redis_cpu(&mut redis_conn).await
                };
                app[i][w].push(process.as_secs_f64() * 1e6 / requests);
                server[i][w].push((server_after - server_before) * 1e6 / requests);
            }
        }
    }
    println!(
        "\nCPU per request in µs, {rounds} samples of {} ms, {} tasks: this process (the app, the store, the client) and the server",
        settings.sample.as_millis(),
        settings.tasks
    );
    println!("| | app W1 | app W2 | server W1 | server W2 |");
    println!("|---|---|---|---|---|");
    for (i, contender) in contenders.iter().enumerate() {
        println!(
            "| {} | {} | {} | {} | {} |",
            contender.name,
            app[i][0].show(1),
            app[i][1].show(1),
            server[i][0].show(1),
            server[i][1].show(1)
        );
    }
}

/// memcached's CPU seconds so far (`rusage_user` + `rusage_system` of `stats`); NaN when it
/// does not answer.
async fn memcached_cpu(addr: &str) -> f64 {
    let stats = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(b"stats\r\n").await?;
        let mut text = Vec::new();
        let mut buf = [0u8; 4096];
        while !text.ends_with(b"END\r\n") {
            let read = stream.read(&mut buf).await?;
            if read == 0 {
                break;
            }
            text.extend_from_slice(&buf[..read]);
        }
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&text).into_owned())
    };
    let Ok(text) = stats.await else {
        return f64::NAN;
    };
    let field = |name: &str| {
        text.lines()
            .find_map(|line| {
                line.strip_prefix("STAT ")?
                    .strip_prefix(name)?
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or(f64::NAN)
    };
    field("rusage_user ") + field("rusage_system ")
}

/// Redis's CPU seconds so far (`used_cpu_user` + `used_cpu_sys` of `INFO cpu`).
async fn redis_cpu(conn: &mut redis::aio::MultiplexedConnection) -> f64 {
    let info: String = redis::cmd("INFO")
        .arg("cpu")
        .query_async(conn)
        .await
        .unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find_map(|line| {
                line.strip_prefix(name)?
                    .strip_prefix(':')?
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or(f64::NAN)
    };
    field("used_cpu_user") + field("used_cpu_sys")
}

/// Deletes the run's Redis keys when dropped, a panicking run too.
struct DeletePrefix {
    url: String,
    pattern: String,
}

impl Drop for DeletePrefix {
    fn drop(&mut self) {
        let Ok(mut conn) = redis::Client::open(self.url.as_str()).and_then(|c| c.get_connection())
        else {
            return;
        };
        let mut cursor = 0u64;
        loop {
            let Ok((next, keys)) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&self.pattern)
                .arg("COUNT")
                .arg(1000)
                .query::<(u64, Vec<String>)>(&mut conn)
            else {
                return;
            };
            if !keys.is_empty() {
                let _ = redis::cmd("DEL").arg(&keys).query::<i64>(&mut conn);
            }
            if next == 0 {
                return;
            }
            cursor = next;
        }
    }
}
