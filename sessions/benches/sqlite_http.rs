//! `SqliteStore` against tower-sessions-sqlx-store (SQLite), in process, interleaved.
//!
//! Run: `cargo bench -p sessions --all-features --bench sqlite_http`
//! (`BENCH_ROUNDS=20 BENCH_SAMPLE_MS=300 cargo bench ...` for more or longer samples).
//!
//! The same app, handlers and client as `benches/http.rs`: 1,000 sessions created beforehand and
//! used round-robin, one request at a time through `tower::ServiceExt::oneshot` on a
//! current-thread runtime. Each store has its own database file in a new temp directory
//! (removed at the end), opened with WAL, synchronous=NORMAL and a 5 s busy timeout:
//! `SqliteStore::open`'s settings, given to tower-sessions' pool as well.
//!
//! tower-sessions-sqlx-store 0.15, its latest release, implements tower-sessions-core 0.14's
//! store trait, so this pair runs tower-sessions 0.14 (its service code is the same as 0.15's).
//!
//! Time per request is reported in CPU time of the whole process (sqlx runs each SQLite
//! connection on a worker thread of its own) and in wall-clock time.

#[allow(dead_code, unused_imports)] // each target uses a part of `common`
mod common;

use std::time::Duration;

use common::{
    Client, Cpu, SESSIONS, Settings, TempDir, Variant, env_usize, is_bench, run, runtime,
    sessions_sqlite, tower_sqlite,
};
use sessions::Format;

fn main() {
    let bench = is_bench();
    let settings = Settings {
        rounds: if bench {
            env_usize("BENCH_ROUNDS", 15)
        } else {
            1
        },
        sample: Duration::from_millis(if bench {
            env_usize("BENCH_SAMPLE_MS", 200) as u64
        } else {
            1
        }),
        sessions: if bench { SESSIONS } else { 20 },
        cpu: Cpu::Process,
    };
    let rt = runtime();
    let dir = TempDir::new("sqlite");
    let mut variants = Vec::new();
    for (name, ours, app) in [
        (
            "sessions json",
            true,
            rt.block_on(sessions_sqlite(&dir, "json.db", Format::Json)),
        ),
        (
            "sessions bincode",
            true,
            rt.block_on(sessions_sqlite(&dir, "bincode.db", Format::Bincode)),
        ),
        (
            "tower-sessions 0.14 sqlx-store",
            false,
            rt.block_on(tower_sqlite(&dir, "tower.db")),
        ),
    ] {
        let mut client = rt.block_on(Client::new(app, settings.sessions));
        rt.block_on(client.check());
        variants.push(Variant {
            pair: "sqlite",
            name,
            ours,
            client,
        });
    }
    let floor = Client::floor(&variants[0].client);
    run(&rt, variants, floor, settings).report();
    drop(dir);
}
