//! The SQLite store pair: `SqliteStore` (JSON and bincode) against tower-sessions-sqlx-store's
//! `SqliteStore`, each on a file of its own (WAL, `synchronous=NORMAL`), measured interleaved
//! by `benches/common/load.rs`: requests per second with 64 tasks on 2 workers, and the time
//! of a single request, for W1 (read the cart, bump two fields, save) and W2 (read only).
//!
//! `sessions SqliteStore json Encrypted` is the JSON contender wrapped in `Encrypted` (records
//! sealed at rest): compare it with `sessions SqliteStore json`.
//!
//! Run: `cargo bench -p sessions --all-features --bench store_sqlite` (settings in
//! `benches/common/load.rs`: `BENCH_ROUNDS`, `BENCH_SAMPLE_MS`, `BENCH_TASKS`, `BENCH_WORKERS`,
//! `BENCH_SINGLE`). A filter word after `--` keeps the contenders whose name contains it
//! (`-- json tower`; without the incumbent no ratios are printed).
//!
//! `-- cpu` measures instead the process's CPU time per request with the same 64 tasks on 2
//! workers (a fixed `BENCH_REQUESTS`, default 20,000, per sample; rounds interleaved): on a
//! machine shared with other work, CPU time is the steadier figure of what a request costs,
//! context switches and lock hand-offs included.
//!
//! `-- callgrind` runs itself under `valgrind --tool=callgrind` (needs valgrind) once per app
//! and workload: `BENCH_REQUESTS` (default 2,000) requests one after another on a
//! current-thread runtime, after 1,000 sessions are created and read once; callgrind collects
//! only inside the measured loop, on every thread (sqlx's worker threads included). Prints the
//! instructions per request; the files go to `target/callgrind/`.

#[allow(dead_code, unused_imports)] // each target uses a part of `common`
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use common::load::{Contender, LoadSettings, measure, report};
use common::{Samples, TempDir, W1, W2, env_usize, filters, send, sessions_sqlite, tower_sqlite};
use sessions::Format;

/// `requests` requests to `path` from `tasks` tasks; returns (process CPU µs, wall µs) per
/// request.
async fn cpu_per_request(
    contender: &Contender,
    path: &'static str,
    tasks: usize,
    requests: usize,
) -> (f64, f64) {
    let cookies = Arc::new(contender.client.cookies.clone());
    let next = Arc::new(AtomicUsize::new(0));
    let (cpu, wall) = (cpu_time::ProcessTime::now(), Instant::now());
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..tasks {
        let (app, cookies, next) = (contender.client.app.clone(), cookies.clone(), next.clone());
        set.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    return;
                }
                std::hint::black_box(send(&app, path, Some(&cookies[i % cookies.len()])).await);
            }
        });
    }
    while let Some(done) = set.join_next().await {
        done.expect("a load task failed");
    }
    let per = |d: std::time::Duration| d.as_secs_f64() * 1e6 / requests as f64;
    (per(cpu.elapsed()), per(wall.elapsed()))
}

/// The measured part; callgrind collects inside this function only.
#[inline(never)]
fn callgrind_measured_loop(
    rt: &tokio::runtime::Runtime,
    client: &mut common::Client,
    path: &'static str,
    n: usize,
) {
    rt.block_on(client.run(path, n));
}

/// Under callgrind: one app, one workload.
fn callgrind_child(app: &str, path: &'static str, n: usize) {
    let rt = common::runtime();
    let dir = TempDir::new("store-sqlite-callgrind");
    let mut client = rt.block_on(async {
        let app = match app {
            "tower" => tower_sqlite(&dir, "tower.db").await,
            "bincode" => sessions_sqlite(&dir, "bincode.db", Format::Bincode).await,
            _ => sessions_sqlite(&dir, "json.db", Format::Json).await,
        };
        common::Client::new(app, common::SESSIONS).await
    });
    rt.block_on(client.check());
    callgrind_measured_loop(&rt, &mut client, path, n);
}

fn callgrind_parent() {
    let n = env_usize("BENCH_REQUESTS", 2_000);
    let exe = std::env::current_exe().expect("the bench's own path");
    let dir = exe
        .ancestors()
        .nth(3)
        .map_or_else(std::env::temp_dir, std::path::PathBuf::from)
        .join("callgrind");
    std::fs::create_dir_all(&dir).expect("target/callgrind");
    println!(
        "\nSQLite store pair under callgrind: instructions per request, {n} requests, one at a time"
    );
    println!("| | W1 | W2 |");
    println!("|---|---|---|");
    for app in ["json", "bincode", "tower"] {
        let mut row = Vec::new();
        for workload in ["w1", "w2"] {
            let out = dir.join(format!("callgrind.sqlite.{app}.{workload}.out"));
            let run = std::process::Command::new("valgrind")
                .arg("--tool=callgrind")
                .arg(format!("--callgrind-out-file={}", out.display()))
                .arg("--toggle-collect=*callgrind_measured_loop*")
                .arg(&exe)
                .args(["--bench", "callgrind-child", app, workload, &n.to_string()])
                .output();
            match run {
                Ok(output) if output.status.success() => {}
                Ok(output) => panic!(
                    "callgrind failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                ),
                Err(err) => {
                    println!("skipped: valgrind did not start ({err}); apt-get install valgrind");
                    return;
                }
            }
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            let total: f64 = text
                .lines()
                .find_map(|l| l.strip_prefix("summary: "))
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(f64::NAN);
            row.push(format!("{:.0}", total / n as f64));
        }
        println!("| {app} | {} | {} |", row[0], row[1]);
    }
}

async fn cpu_mode(contenders: &[Contender], settings: &LoadSettings) {
    let requests = if common::is_bench() {
        env_usize("BENCH_REQUESTS", 20_000)
    } else {
        200
    };
    let n = contenders.len();
    let mut cpu = vec![[Samples::default(), Samples::default()]; n];
    let mut wall = vec![[Samples::default(), Samples::default()]; n];
    for round in 0..settings.rounds {
        for k in 0..n {
            let at = (k + round) % n;
            for (w, path) in [W1, W2].into_iter().enumerate() {
                let (c, t) = cpu_per_request(&contenders[at], path, settings.tasks, requests).await;
                cpu[at][w].push(c);
                wall[at][w].push(t);
            }
        }
    }
    println!(
        "\nSQLite store pair, CPU per request: {} rounds of {requests} requests, {} tasks on {} workers",
        settings.rounds, settings.tasks, settings.workers
    );
    println!("| | W1 CPU µs | W2 CPU µs | W1 wall µs | W2 wall µs |");
    println!("|---|---|---|---|---|");
    for (at, contender) in contenders.iter().enumerate() {
        println!(
            "| {} | {} | {} | {} | {} |",
            contender.name,
            cpu[at][0].show(1),
            cpu[at][1].show(1),
            wall[at][0].show(1),
            wall[at][1].show(1)
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "callgrind-child") {
        let app = args.get(at + 1).map_or("json", String::as_str);
        let path = if args.get(at + 2).is_some_and(|w| w == "w2") {
            W2
        } else {
            W1
        };
        let n = args
            .get(at + 3)
            .and_then(|n| n.parse().ok())
            .unwrap_or(2_000);
        callgrind_child(app, path, n);
        return;
    }
    if args.iter().any(|a| a == "callgrind") {
        if common::is_bench() {
            callgrind_parent();
        } else {
            callgrind_child("json", W1, 10);
        }
        return;
    }
    let settings = LoadSettings::from_env();
    let rt = settings.runtime();
    let dir = TempDir::new("store-sqlite");
    let mut filters = filters();
    let cpu = filters.iter().any(|f| f == "cpu");
    filters.retain(|f| f != "cpu");
    let wanted = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f));
    rt.block_on(async {
        let mut contenders = Vec::new();
        for (name, file, format) in [
            ("sessions SqliteStore json", "json.db", Format::Json),
            (
                "sessions SqliteStore bincode",
                "bincode.db",
                Format::Bincode,
            ),
        ] {
            if wanted(name) {
                let app = sessions_sqlite(&dir, file, format).await;
                contenders.push(Contender::new(name, false, app, settings.sessions).await);
            }
        }
        // Encryption at rest: the same store wrapped in `Encrypted` (issue 21: at most 15% of
        // W1's time).
        let name = "sessions SqliteStore json Encrypted";
        if wanted(name) {
            let app = common::sessions_sqlite_encrypted(&dir, "encrypted.db", Format::Json).await;
            contenders.push(Contender::new(name, false, app, settings.sessions).await);
        }
        let incumbent = "tower-sessions-sqlx-store";
        if wanted(incumbent) {
            let app = tower_sqlite(&dir, "tower.db").await;
            contenders.push(Contender::new(incumbent, true, app, settings.sessions).await);
        }
        if cpu {
            cpu_mode(&contenders, &settings).await;
            return;
        }
        measure(&mut contenders, &settings).await;
        report("SQLite store pair", &contenders, &settings);
    });
}
