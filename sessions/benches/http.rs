//! `sessions` against tower-sessions 0.15, in process, same axum app, same handlers, interleaved.
//!
//! Run: `cargo bench -p sessions --all-features --bench http`
//! (one pair only: `... --bench http -- memory` or `-- cookie`; more or longer samples:
//! `BENCH_ROUNDS=40 BENCH_SAMPLE_MS=150 cargo bench ...`).
//!
//! Every request goes through `tower::ServiceExt::oneshot` on a current-thread runtime and
//! carries the cookie of one of 1,000 sessions created beforehand, used round-robin; the
//! response body is read whole, and a changed `Set-Cookie` is kept, as a browser does.
//!
//! * W0: the handler with no session layer at all (the floor);
//! * W1: read the cart, `visits += 1`, set `last_seen_unix`, save;
//! * W2: read the cart, return `visits`, change nothing.
//!
//! Pairs:
//! * `memory`: `MemoryStore` (JSON and bincode) against tower-sessions' `MemoryStore`;
//! * `cookie`: `CookieStore` (the whole session sealed in the cookie, JSON and bincode) against
//!   tower-sessions with a private (encrypted) id cookie and its `MemoryStore`: tower-sessions
//!   has no cookie-only store, so this is the closest equivalent.
//!
//! Both libraries use 24 hours of inactivity as their expiry, so both set the cookie on W1.
//!
//! Every round measures every (variant, workload) once, in a rotated order, each sample about
//! `BENCH_SAMPLE_MS` long. The report gives, per request, the median and min–max over the
//! rounds, the relative interquartile range (noise), and the targets' ratios, both as the ratio
//! of medians and as the median (min–max) of the per-round ratios; once in CPU time of the
//! runtime's thread (all the work runs there; steady on a loaded machine) and once in
//! wall-clock time.

#[allow(dead_code, unused_imports)] // each target uses a part of `common`
mod common;

use std::time::Duration;

use common::{
    Client, Cpu, SESSIONS, Settings, Variant, env_usize, filters, is_bench, run, runtime,
    sessions_cookie, sessions_memory, tower_memory, tower_private_memory,
};
use sessions::Format;

fn main() {
    let bench = is_bench();
    let settings = Settings {
        rounds: if bench {
            env_usize("BENCH_ROUNDS", 30)
        } else {
            1
        },
        sample: Duration::from_millis(if bench {
            env_usize("BENCH_SAMPLE_MS", 100) as u64
        } else {
            1
        }),
        sessions: if bench { SESSIONS } else { 20 },
        cpu: Cpu::Thread,
        targets: Some(["1/10 = 0.100", "1/15 = 0.067"]),
    };
    let filters = filters();
    let wanted = |pair: &str| filters.is_empty() || filters.iter().any(|f| pair.contains(f));

    let rt = runtime();
    let mut variants = Vec::new();
    let mut floor = None;
    let mut add = |pair, name, ours, app| {
        if wanted(pair) {
            let mut client = rt.block_on(Client::new(app, settings.sessions));
            rt.block_on(client.check());
            floor.get_or_insert_with(|| Client::floor(&client));
            variants.push(Variant {
                pair,
                name,
                ours,
                client: Box::new(client),
            });
        }
    };
    add(
        "memory",
        "sessions json",
        true,
        sessions_memory(Format::Json),
    );
    add(
        "memory",
        "sessions bincode",
        true,
        sessions_memory(Format::Bincode),
    );
    add("memory", "tower-sessions 0.15", false, tower_memory());
    add(
        "cookie",
        "sessions json",
        true,
        sessions_cookie(Format::Json),
    );
    add(
        "cookie",
        "sessions bincode",
        true,
        sessions_cookie(Format::Bincode),
    );
    add(
        "cookie",
        "tower-sessions 0.15 private",
        false,
        tower_private_memory(),
    );
    let Some(floor) = floor else {
        eprintln!("no pair matches {filters:?}: the pairs are `memory` and `cookie`");
        return;
    };
    run(&rt, variants, Box::new(floor), settings).report();
}
