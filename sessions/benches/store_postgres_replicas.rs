//! `PostgresStore::read_replicas` under load: W2 (load only) throughput of the primary alone
//! against the primary with one streaming replica whose replay is paused after 10% of the
//! sessions were written (so those 10% are newer on the primary than on the replica), and who
//! answered the loads, counted on the servers; then how long the replica takes to show a write
//! (what waiting for it would cost, against falling back to the primary).
//!
//! Run: `cargo bench -p sessions --all-features --bench store_postgres_replicas` with
//! `SESSIONS_TEST_POSTGRES_URL` (or `SESSIONS_BENCH_POSTGRES_URL`) and
//! `SESSIONS_TEST_POSTGRES_REPLICA_URL` (`bash .ci/replica.sh` makes the replica); without them it
//! prints a `skipped:` line. Settings: `benches/common/load.rs` (`BENCH_ROUNDS`,
//! `BENCH_SAMPLE_MS`, `BENCH_TASKS`, `BENCH_WORKERS`).
//!
//! Contenders, each on a table of its own with the same 1,000 sessions:
//! * **primary alone**: a `PostgresStore` without replicas;
//! * **replica, same instance**: the store that wrote the 10% reads (this process remembers its
//!   writes: their loads go to the primary without asking the replica);
//! * **replica, other instance**: a second store on the same table, which wrote nothing; the
//!   requests carry the read mark the writes handed out (`session_written`), so the 10% are
//!   asked of the replica first, found older than the mark, and read from the primary.
//!
//! Counting: each server's `pg_stat_user_tables` scans of the contender's table over a counting
//! phase of W2, read after every backend involved has been idle past PostgreSQL's statistics
//! flush interval (10 s).

#[allow(dead_code, unused_imports)] // each target uses a part of `common`
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use common::load::{LoadSettings, drive};
use common::{CREATE, Samples, W1, W2, app_sessions, is_bench, postgres_url, sessions_layer};
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderValue, Request, StatusCode, Uri};
use sessions::{Format, PostgresStore};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tower::ServiceExt;

/// Of the sessions, one in this many is written while replay is paused.
const STALE_ONE_IN: usize = 10;

fn main() {
    let settings = LoadSettings::from_env();
    let rt = settings.runtime();
    rt.block_on(run(settings));
}

/// `url` with `application_name` set.
fn named(url: &str, name: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}application_name={name}")
}

/// One request; every `Set-Cookie` pair of the response (the session's, and the read mark).
async fn send(app: &Router, path: &'static str, cookie: Option<&HeaderValue>) -> Vec<String> {
    let mut request = Request::new(Body::empty());
    *request.uri_mut() = Uri::from_static(path);
    if let Some(cookie) = cookie {
        request.headers_mut().insert(COOKIE, cookie.clone());
    }
    let response = app.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK, "{path} failed");
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| value.split(';').next())
        .map(str::to_owned)
        .collect()
}

/// A browser's cookies, kept by name.
#[derive(Clone, Default)]
struct Jar(Vec<(String, String)>);

impl Jar {
    fn take(&mut self, pairs: Vec<String>) {
        for pair in pairs {
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            self.0.retain(|(kept, _)| kept != name);
            self.0.push((name.to_owned(), value.to_owned()));
        }
    }

    /// The `Cookie` header: the session's cookie, and the mark when `with_mark`.
    fn header(&self, with_mark: bool) -> HeaderValue {
        let pairs: Vec<String> = self
            .0
            .iter()
            .filter(|(name, _)| with_mark || !name.ends_with("_written"))
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        HeaderValue::from_str(&pairs.join("; ")).expect("a cookie header")
    }
}

struct Contender {
    name: &'static str,
    app: Router,
    table: String,
    cookies: Arc<Vec<HeaderValue>>,
    rps: Samples,
}

async fn run(settings: LoadSettings) {
    let primary_url = postgres_url();
    let Some(replica_url) = std::env::var("SESSIONS_TEST_POSTGRES_REPLICA_URL")
        .ok()
        .filter(|url| !url.is_empty())
    else {
        println!(
            "skipped: set SESSIONS_TEST_POSTGRES_REPLICA_URL (bash .ci/replica.sh) to run the read-replica bench"
        );
        return;
    };
    let admin = |url: String| async move {
        PgPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await
            .unwrap_or_else(|err| panic!("connect to {url}: {err}"))
    };
    let (primary, replica) = (
        admin(primary_url.clone()).await,
        admin(replica_url.clone()).await,
    );
    let tag = format!(
        "{}_{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_micros())
    );
    let tables =
        ["primary", "same", "other", "probe"].map(|what| format!("bench_replicas_{what}_{tag}"));
    let _cleanup = Cleanup {
        url: primary_url.clone(),
        tables: tables.to_vec(),
        replica_url: replica_url.clone(),
    };
    let lag = Duration::from_secs(3600);
    let store = |table: &str, app_name: &str, replicas: bool| {
        let (primary_url, replica_url) = (primary_url.clone(), replica_url.clone());
        let (table, app_name) = (table.to_owned(), app_name.to_owned());
        async move {
            let store = PostgresStore::connect(&named(&primary_url, &app_name))
                .await
                .expect("connect to the primary")
                .table_name(&table);
            store.migrate().await.expect("migrate");
            if !replicas {
                return store;
            }
            store
                .read_replicas([named(&replica_url, &app_name)])
                .expect("a replica URL")
                // Replay stays paused for the whole bench: the bound is not what is measured.
                .max_replica_lag(lag)
        }
    };
    let alone = store(&tables[0], "bench_replicas_alone", false).await;
    let same = store(&tables[1], "bench_replicas_same", true).await;
    let writer = store(&tables[2], "bench_replicas_writer", true).await;
    let other = store(&tables[2], "bench_replicas_other", true).await;
    let app = |store: &PostgresStore| app_sessions(sessions_layer(store.clone(), Format::Bincode));
    let (alone_app, same_app, writer_app, other_app) =
        (app(&alone), app(&same), app(&writer), app(&other));

    // The same sessions on each table.
    let n = settings.sessions;
    let mut jars: [Vec<Jar>; 3] = Default::default();
    for (app, jars) in [&alone_app, &same_app, &writer_app]
        .into_iter()
        .zip(&mut jars)
    {
        for _ in 0..n {
            let mut jar = Jar::default();
            jar.take(send(app, CREATE, None).await);
            jars.push(jar);
        }
    }
    caught_up(&primary, &replica).await;
    for store in [&same, &writer, &other] {
        let deadline = Instant::now() + Duration::from_secs(30);
        while store.replicas_in_use() == 0 {
            assert!(Instant::now() < deadline, "the replica is not in use");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    // Replay paused; one session in ten written (W1) through the store that writes.
    pause(&replica).await;
    for i in (0..n).step_by(STALE_ONE_IN) {
        for (app, which) in [(&same_app, 1), (&writer_app, 2)] {
            let jar = &mut jars[which][i];
            let cookie = jar.header(true);
            jar.take(send(app, W1, Some(&cookie)).await);
        }
    }
    let cookies = |jars: &[Jar], with_mark: bool| {
        Arc::new(
            jars.iter()
                .map(|jar| jar.header(with_mark))
                .collect::<Vec<_>>(),
        )
    };
    let mut contenders = [
        Contender {
            name: "primary alone",
            app: alone_app,
            table: tables[0].clone(),
            cookies: cookies(&jars[0], false),
            rps: Samples::default(),
        },
        Contender {
            name: "replica, same instance",
            app: same_app,
            table: tables[1].clone(),
            cookies: cookies(&jars[1], true),
            rps: Samples::default(),
        },
        Contender {
            name: "replica, other instance",
            app: other_app,
            table: tables[2].clone(),
            cookies: cookies(&jars[2], true),
            rps: Samples::default(),
        },
    ];

    for round in 0..settings.rounds {
        for k in 0..contenders.len() {
            let contender = &mut contenders[(k + round) % 3];
            let start = Instant::now();
            let done = drive(
                &contender.app,
                &contender.cookies,
                W2,
                settings.tasks,
                settings.sample,
            )
            .await;
            contender
                .rps
                .push(done as f64 / start.elapsed().as_secs_f64());
        }
    }
    println!(
        "\nW2 with one replica, replay paused after 1 session in {STALE_ONE_IN} was written: {} rounds, {} tasks on {} workers, {} ms samples, {n} sessions",
        settings.rounds,
        settings.tasks,
        settings.workers,
        settings.sample.as_millis()
    );
    println!("| | W2 req/s | against the primary alone (round by round) |");
    println!("|---|---|---|");
    for contender in &contenders {
        let mut ratio = Samples::default();
        for (ours, alone) in contender.rps.0.iter().zip(&contenders[0].rps.0) {
            ratio.push(ours / alone);
        }
        println!(
            "| {} | {} | {}× |",
            contender.name,
            contender.rps.show(0),
            ratio.show(2)
        );
    }

    // Who answered: each server's scans of the contender's table over a counting phase.
    println!("\nwho answered W2's loads, counted on the servers (pg_stat_user_tables scans):");
    println!("| | requests | primary scans | replica scans | primary's share of loads |");
    println!("|---|---|---|---|---|");
    let idle = if is_bench() {
        Duration::from_secs(11)
    } else {
        Duration::from_millis(100)
    };
    for contender in &contenders {
        tokio::time::sleep(idle).await;
        let before = (
            scans(&primary, &contender.table).await,
            scans(&replica, &contender.table).await,
        );
        let requests = drive(
            &contender.app,
            &contender.cookies,
            W2,
            settings.tasks,
            settings.sample,
        )
        .await;
        tokio::time::sleep(idle).await;
        let after = (
            scans(&primary, &contender.table).await,
            scans(&replica, &contender.table).await,
        );
        let (on_primary, on_replica) = (after.0 - before.0, after.1 - before.1);
        println!(
            "| {} | {requests} | {on_primary} | {on_replica} | {:.1}% |",
            contender.name,
            100.0 * on_primary as f64 / requests as f64
        );
    }

    // Waiting for the replica instead of falling back: how long a write takes to show there.
    resume(&replica).await;
    sqlx::query(&format!(
        "CREATE TABLE \"{}\" (k int PRIMARY KEY, v bigint NOT NULL)",
        tables[3]
    ))
    .execute(&primary)
    .await
    .expect("the probe table");
    sqlx::query(&format!("INSERT INTO \"{}\" VALUES (1, 0)", tables[3]))
        .execute(&primary)
        .await
        .expect("the probe row");
    caught_up(&primary, &replica).await;
    let mut delays = Samples::default();
    let mut primary_reads = Samples::default();
    let probes = if is_bench() { 300 } else { 5 };
    for v in 1..=probes {
        sqlx::query(&format!("UPDATE \"{}\" SET v = $1 WHERE k = 1", tables[3]))
            .bind(v as i64)
            .execute(&primary)
            .await
            .expect("a probe write");
        let written = Instant::now();
        loop {
            let seen: i64 =
                sqlx::query_scalar(&format!("SELECT v FROM \"{}\" WHERE k = 1", tables[3]))
                    .fetch_one(&replica)
                    .await
                    .expect("a probe read");
            if seen >= v as i64 {
                break;
            }
        }
        delays.push(written.elapsed().as_secs_f64() * 1e6);
        let read = Instant::now();
        let _: i64 = sqlx::query_scalar(&format!("SELECT v FROM \"{}\" WHERE k = 1", tables[3]))
            .fetch_one(&primary)
            .await
            .expect("a primary read");
        primary_reads.push(read.elapsed().as_secs_f64() * 1e6);
    }
    println!(
        "\nreplay running: a write shows on the replica {} µs after the primary answered it (median; min–max); a read of the primary takes {} µs: falling back costs one primary read, waiting costs the replay delay",
        delays.show(0),
        primary_reads.show(0)
    );
    for store in [&alone, &same, &writer, &other] {
        store.close().await;
    }
}

async fn caught_up(primary: &PgPool, replica: &PgPool) {
    let written: i64 = sqlx::query_scalar("SELECT (pg_current_wal_lsn() - '0/0')::int8")
        .fetch_one(primary)
        .await
        .expect("the primary's WAL position");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let replayed: Option<i64> =
            sqlx::query_scalar("SELECT (pg_last_wal_replay_lsn() - '0/0')::int8")
                .fetch_one(replica)
                .await
                .expect("the replica's replay position");
        if replayed.is_some_and(|replayed| replayed >= written) {
            return;
        }
        assert!(Instant::now() < deadline, "the replica does not replay");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn pause(replica: &PgPool) {
    sqlx::query("SELECT pg_wal_replay_pause()")
        .execute(replica)
        .await
        .expect("pause replay");
    loop {
        let state: String = sqlx::query_scalar("SELECT pg_get_wal_replay_pause_state()")
            .fetch_one(replica)
            .await
            .expect("the pause state");
        if state == "paused" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn resume(replica: &PgPool) {
    sqlx::query("SELECT pg_wal_replay_resume()")
        .execute(replica)
        .await
        .expect("resume replay");
}

async fn scans(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_user_tables WHERE relname = $1",
    )
    .bind(table)
    .fetch_one(pool)
    .await
    .expect("pg_stat_user_tables")
}

/// Drops the bench's tables and resumes replay at the end (a panicking run too).
struct Cleanup {
    url: String,
    replica_url: String,
    tables: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let (url, replica_url, tables) = (
            self.url.clone(),
            self.replica_url.clone(),
            self.tables.clone(),
        );
        let done = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let replica = PgPool::connect(&replica_url).await?;
                sqlx::query("SELECT pg_wal_replay_resume()")
                    .execute(&replica)
                    .await?;
                replica.close().await;
                let pool = PgPool::connect(&url).await?;
                for table in tables {
                    sqlx::query(&format!("DROP TABLE IF EXISTS \"{table}\""))
                        .execute(&pool)
                        .await?;
                }
                pool.close().await;
                Ok::<(), sqlx::Error>(())
            })?;
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if !matches!(done, Ok(Ok(()))) {
            eprintln!("warning: cleanup failed: {done:?}");
        }
    }
}
