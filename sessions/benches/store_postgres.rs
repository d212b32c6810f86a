//! The PostgreSQL store pair: `PostgresStore` (JSON and bincode) against
//! tower-sessions-sqlx-store's `PostgresStore`, on the server at `SESSIONS_BENCH_POSTGRES_URL`
//! (else `SESSIONS_TEST_POSTGRES_URL`, else postgres://postgres@127.0.0.1:5432/test), measured
//! interleaved by `benches/common/load.rs`; then what the server spends on each: CPU time of
//! the contender's connections' backends per request, WAL bytes per save, and the share of
//! updates PostgreSQL made HOT.
//!
//! Run: `cargo bench -p sessions --all-features --bench store_postgres` (settings: see
//! `benches/common/load.rs`; `BENCH_COST_MS` sets how long each server-cost sample runs).
//!
//! tower-sessions-sqlx-store runs twice: on the pool its docs make (`PgPool::connect(url)`:
//! sqlx's defaults, which ping each connection before handing it out), and on
//! `PostgresStore::pool_options()` (no ping before use), so that what the pool settings do and
//! what the store does can be told apart. Each contender has a table (or schema) of its own,
//! dropped at the end. Without a server the bench prints a `skipped:` line.
//!
//! Server CPU is read from `/proc/<pid>/schedstat` of each backend serving the contender (found
//! by its `application_name`), so it is measured only when the server runs on this machine.
//! WAL bytes come from `pg_current_wal_lsn()`, which counts every database of the server: other
//! writers on it at the same time show up in the figure.

#[allow(dead_code, unused_imports)] // each target uses a part of `common`
mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use common::load::{Contender, LoadSettings, drive, measure, report};
use common::{
    Samples, W1, W2, env_usize, is_bench, postgres_url, sessions_postgres, tower_postgres,
};
use cpu_time::ProcessTime;
use sessions::{Format, PostgresStore};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// One contender's place on the server.
struct Place {
    /// Its connections' `application_name`.
    application: String,
    /// Its table, qualified and quoted.
    table: String,
}

fn main() {
    let settings = LoadSettings::from_env();
    let rt = settings.runtime();
    rt.block_on(run(settings));
}

async fn run(settings: LoadSettings) {
    let url = postgres_url();
    let admin = match PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(2))
        .connect(&url)
        .await
    {
        Ok(pool) => pool,
        Err(err) => {
            println!(
                "skipped: no PostgreSQL at {url} ({err}); set SESSIONS_BENCH_POSTGRES_URL to run the PostgreSQL pair"
            );
            return;
        }
    };
    let tag = format!(
        "{}_{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_micros())
    );
    let cleanup = Cleanup {
        url: url.clone(),
        statements: vec![
            format!("DROP TABLE IF EXISTS \"bench_sessions_json_{tag}\""),
            format!("DROP TABLE IF EXISTS \"bench_sessions_bincode_{tag}\""),
            format!("DROP SCHEMA IF EXISTS \"bench_tower_{tag}\" CASCADE"),
            format!("DROP SCHEMA IF EXISTS \"bench_tower_tuned_{tag}\" CASCADE"),
        ],
    };
    let mut apps: Vec<(String, bool, Router, Place)> = Vec::new();
    for (name, format) in [("json", Format::Json), ("bincode", Format::Bincode)] {
        let table = format!("bench_sessions_{name}_{tag}");
        let application = format!("bench-sessions-{name}-{tag}");
        let (_, app) = sessions_postgres(&url, &table, &application, format).await;
        let place = Place {
            application,
            table: format!("\"{table}\""),
        };
        apps.push((format!("sessions {name}"), false, app, place));
    }
    for (name, label, incumbent, options) in [
        (
            "tower",
            "tower-sessions 0.14 sqlx-store (PgPool::connect)",
            true,
            PgPoolOptions::new(),
        ),
        (
            "tower_tuned",
            "tower-sessions 0.14 sqlx-store (our pool options)",
            false,
            PostgresStore::pool_options(),
        ),
    ] {
        let schema = format!("bench_{name}_{tag}");
        let application = format!("bench-{name}-{tag}");
        let (_, app) = tower_postgres(&url, &schema, &application, options).await;
        let place = Place {
            application,
            table: format!("\"{schema}\".\"session\""),
        };
        apps.push((label.to_owned(), incumbent, app, place));
    }
    let mut contenders = Vec::new();
    let mut places = Vec::new();
    for (name, incumbent, app, place) in apps {
        contenders.push(Contender::new(name, incumbent, app, settings.sessions).await);
        places.push(place);
    }
    measure(&mut contenders, &settings).await;
    report("PostgreSQL", &contenders, &settings);
    server_cost(&admin, &contenders, &places, &settings).await;
    admin.close().await;
    drop(cleanup);
}

/// What the server spends per request, per contender: backend CPU (W1, W2), WAL bytes per W1
/// save, and the share of HOT updates; a few samples each, rotated like the throughput rounds.
async fn server_cost(
    admin: &PgPool,
    contenders: &[Contender],
    places: &[Place],
    settings: &LoadSettings,
) {
    let sample = Duration::from_millis(if is_bench() {
        env_usize("BENCH_COST_MS", 2000) as u64
    } else {
        30
    });
    let rounds = settings.rounds.clamp(1, 3);
    let n = contenders.len();
    let mut cpu = vec![[Samples::default(), Samples::default()]; n];
    let mut client = vec![[Samples::default(), Samples::default()]; n];
    let mut wal = vec![Samples::default(); n];
    let mut measured_cpu = true;
    for round in 0..rounds {
        for k in 0..n {
            let i = (k + round) % n;
            let cookies = Arc::new(contenders[i].client.cookies.clone());
            for (w, path) in [W1, W2].into_iter().enumerate() {
                let pids = backends(admin, &places[i].application).await;
                let cpu_before = backend_cpu(&pids);
                let lsn_before = wal_lsn(admin).await;
                let process_before = ProcessTime::now();
                let requests = drive(
                    &contenders[i].client.app,
                    &cookies,
                    path,
                    settings.tasks,
                    sample,
                )
                .await;
                let process = process_before.elapsed();
                let lsn_after = wal_lsn(admin).await;
                client[i][w].push(process.as_secs_f64() * 1e6 / requests as f64);
                match (cpu_before, backend_cpu(&pids)) {
                    (Some(before), Some(after)) => {
                        cpu[i][w].push((after - before) as f64 / 1e3 / requests as f64)
                    }
                    _ => measured_cpu = false,
                }
                if w == 0 {
                    wal[i].push((lsn_after - lsn_before) as f64 / requests as f64);
                }
            }
        }
    }
    // Table statistics reach the views within PostgreSQL's idle flush interval (10 s).
    if is_bench() {
        tokio::time::sleep(Duration::from_secs(11)).await;
    }
    println!(
        "\nserver cost: {rounds} samples of {} ms each, {} tasks. CPU per request in µs: the server's (its backends serving this contender) and the app's (this process: the layer, the store, the driver); the two together bound what 2 cores serve, whatever else runs on them. WAL bytes per W1 request (each saves once); HOT updates over the whole run.",
        sample.as_millis(),
        settings.tasks
    );
    println!(
        "| | server CPU W1 | server CPU W2 | app CPU W1 | app CPU W2 | WAL bytes per save | HOT updates |"
    );
    println!("|---|---|---|---|---|---|---|");
    let show = |s: &Samples| {
        if measured_cpu {
            s.show(1)
        } else {
            "not measured".into()
        }
    };
    for (i, contender) in contenders.iter().enumerate() {
        let hot = hot_share(admin, &places[i].table).await;
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            contender.name,
            show(&cpu[i][0]),
            show(&cpu[i][1]),
            client[i][0].show(1),
            client[i][1].show(1),
            wal[i].show(0),
            hot
        );
    }
    let Some(incumbent) = contenders.iter().position(|c| c.incumbent) else {
        return;
    };
    // Ratios sample by sample; server and app CPU of one sample added.
    let ratio = |ours: &Samples, theirs: &Samples| {
        let mut r = Samples::default();
        for (a, b) in ours.0.iter().zip(&theirs.0) {
            r.push(a / b);
        }
        r.show(2)
    };
    let total = |i: usize, w: usize| {
        let mut sum = Samples::default();
        for (a, b) in cpu[i][w].0.iter().zip(&client[i][w].0) {
            sum.push(a + b);
        }
        sum
    };
    println!(
        "\nratios against {} (lower is better)",
        contenders[incumbent].name
    );
    println!(
        "| | server CPU W1 | server CPU W2 | server + app CPU W1 | server + app CPU W2 | WAL per save |"
    );
    println!("|---|---|---|---|---|---|");
    for (i, contender) in contenders
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != incumbent)
    {
        println!(
            "| {} | {}× | {}× | {}× | {}× | {}× |",
            contender.name,
            ratio(&cpu[i][0], &cpu[incumbent][0]),
            ratio(&cpu[i][1], &cpu[incumbent][1]),
            ratio(&total(i, 0), &total(incumbent, 0)),
            ratio(&total(i, 1), &total(incumbent, 1)),
            ratio(&wal[i], &wal[incumbent])
        );
    }
}

/// The process ids of the backends whose `application_name` is `application`.
async fn backends(admin: &PgPool, application: &str) -> Vec<i32> {
    sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE application_name = $1")
        .bind(application)
        .fetch_all(admin)
        .await
        .expect("pg_stat_activity")
}

/// The CPU time the processes `pids` have used, in ns; `None` when they are not visible here.
fn backend_cpu(pids: &[i32]) -> Option<u64> {
    let mut total = 0;
    for pid in pids {
        let text = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
        total += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    (!pids.is_empty()).then_some(total)
}

async fn wal_lsn(admin: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")
        .fetch_one(admin)
        .await
        .expect("pg_current_wal_lsn")
}

/// `hot of updates (share)` for `table`.
async fn hot_share(admin: &PgPool, table: &str) -> String {
    let counts: Option<(i64, i64)> = sqlx::query_as(
        "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relid = $1::regclass",
    )
    .bind(table)
    .fetch_optional(admin)
    .await
    .ok()
    .flatten();
    match counts {
        Some((updates, hot)) if updates > 0 => {
            format!(
                "{hot} of {updates} ({:.0}%)",
                100.0 * hot as f64 / updates as f64
            )
        }
        _ => "no updates counted yet".into(),
    }
}

/// Drops the contenders' tables and schemas, a panicking run too.
struct Cleanup {
    url: String,
    statements: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let (url, statements) = (self.url.clone(), std::mem::take(&mut self.statements));
        let done = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let pool = PgPool::connect(&url).await?;
                for statement in &statements {
                    sqlx::query(statement).execute(&pool).await?;
                }
                pool.close().await;
                Ok::<(), sqlx::Error>(())
            })
        })
        .join();
        if !matches!(done, Ok(Ok(()))) {
            eprintln!("warning: the bench's tables were not all dropped: {done:?}");
        }
    }
}
