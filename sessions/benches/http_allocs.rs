//! Heap allocations per request, `sessions` against tower-sessions, through a counting global
//! allocator (`stats_alloc`), for the memory, cookie and SQLite pairs.
//!
//! Run: `cargo bench -p sessions --all-features --bench http_allocs`
//!
//! The same apps, handlers and client as `benches/http.rs` (and `sqlite_http.rs`): 1,000
//! sessions round-robin, one request at a time through `oneshot` on a current-thread runtime.
//! After two warm-up passes, one pass of 1,000 requests per workload is counted. The count covers
//! the whole request as the client sends it (building the request, the app, reading the body);
//! W0, the same request without a session layer, is the floor, so `− W0` is what the session
//! library adds. SQLite counts include what sqlx's connection worker threads allocate for the
//! request. Allocation counts are deterministic; the timing benches use the system allocator
//! without counting.

#[allow(dead_code, unused_imports)] // each target uses a part of `common`
mod common;

use std::alloc::System;

use common::{
    Client, SESSIONS, TempDir, W1, W2, is_bench, runtime, sessions_cookie, sessions_memory,
    sessions_sqlite, tower_memory, tower_private_memory, tower_sqlite,
};
use sessions::Format;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocations and bytes allocated per request over `n` requests to `path`.
fn count(
    rt: &tokio::runtime::Runtime,
    client: &mut Client,
    path: &'static str,
    n: usize,
) -> (f64, f64) {
    for _ in 0..2 {
        rt.block_on(client.run(path, n));
    }
    let region = Region::new(GLOBAL);
    rt.block_on(client.run(path, n));
    let stats = region.change();
    let allocs = (stats.allocations + stats.reallocations) as f64 / n as f64;
    (allocs, stats.bytes_allocated as f64 / n as f64)
}

fn main() {
    let sessions = if is_bench() { SESSIONS } else { 20 };
    let rt = runtime();
    let dir = TempDir::new("allocs");
    let variants: Vec<(&str, &str, axum::Router)> = vec![
        ("memory", "sessions json", sessions_memory(Format::Json)),
        (
            "memory",
            "sessions bincode",
            sessions_memory(Format::Bincode),
        ),
        ("memory", "tower-sessions 0.15", tower_memory()),
        ("cookie", "sessions json", sessions_cookie(Format::Json)),
        (
            "cookie",
            "sessions bincode",
            sessions_cookie(Format::Bincode),
        ),
        (
            "cookie",
            "tower-sessions 0.15 private",
            tower_private_memory(),
        ),
        (
            "sqlite",
            "sessions json",
            rt.block_on(sessions_sqlite(&dir, "json.db", Format::Json)),
        ),
        (
            "sqlite",
            "sessions bincode",
            rt.block_on(sessions_sqlite(&dir, "bincode.db", Format::Bincode)),
        ),
        (
            "sqlite",
            "tower-sessions 0.14 sqlx-store",
            rt.block_on(tower_sqlite(&dir, "tower.db")),
        ),
    ];
    let mut first = None;
    let mut rows = Vec::new();
    for (pair, name, app) in variants {
        let mut client = rt.block_on(Client::new(app, sessions));
        rt.block_on(client.check());
        if first.is_none() {
            let mut floor = Client::floor(&client);
            first = Some(count(&rt, &mut floor, W1, sessions));
        }
        let w1 = count(&rt, &mut client, W1, sessions);
        let w2 = count(&rt, &mut client, W2, sessions);
        rows.push((pair, name, w1, w2));
    }
    let (floor_allocs, floor_bytes) = first.expect("measured");
    println!();
    println!("heap allocations per request (allocations + reallocations), and bytes allocated");
    println!("W0 (no session layer): {floor_allocs:.1} allocations, {floor_bytes:.0} bytes");
    println!();
    println!(
        "| pair | variant | W1 allocs | W1 − W0 | W1 bytes | W2 allocs | W2 − W0 | W2 bytes |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (pair, name, (a1, b1), (a2, b2)) in rows {
        println!(
            "| {pair} | {name} | {a1:.1} | {:.1} | {b1:.0} | {a2:.1} | {:.1} | {b2:.0} |",
            a1 - floor_allocs,
            a2 - floor_allocs
        );
    }
}
