//! The MySQL store pair: `MySqlStore` (JSON, bincode and MessagePack) against
//! tower-sessions-sqlx-store's `MySqlStore`, on the server at `SESSIONS_BENCH_MYSQL_URL` (else
//! `SESSIONS_TEST_MYSQL_URL`, else mysql://root@127.0.0.1:3306/test; MariaDB or MySQL),
//! measured interleaved by `benches/common/load.rs`: requests per second with 64 tasks on 2
//! workers, and the time of a single request, for W1 (read the cart, bump two fields, save)
//! and W2 (read only).
//!
//! Run: `cargo bench -p sessions --all-features --bench store_mysql` (settings in
//! `benches/common/load.rs`: `BENCH_ROUNDS`, `BENCH_SAMPLE_MS`, `BENCH_TASKS`, `BENCH_WORKERS`,
//! `BENCH_SINGLE`). A filter word after `--` keeps the contenders whose name contains it
//! (`-- json tower`; without the incumbent no ratios are printed).
//!
//! tower-sessions-sqlx-store runs twice: on the pool its docs make (`MySqlPool::connect(url)`:
//! sqlx's defaults, which ping each connection before handing it out) — the incumbent — and on
//! `MySqlStore::pool_options()` (no ping before use), so that what the pool settings do and
//! what the store does can be told apart. Both libraries get sqlx's default pool size (10).
//! Each contender has a table (tower: a database) of its own, dropped at the end. The server's
//! `innodb_flush_log_at_trx_commit` is printed before and after: it decides what a commit costs
//! (the conformance tests set it to 2 while they run), and it is the same for every contender
//! of a round. Without a server the bench prints a `skipped:` line.

#[allow(dead_code, unused_imports)] // each target uses a part of `common`
mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use common::load::{Contender, LoadSettings, measure, report};
use common::{app_sessions, filters, sessions_layer, tower014};
use sessions::{Format, MySqlStore};
use sqlx::MySqlPool;
use sqlx::mysql::MySqlPoolOptions;

fn main() {
    let settings = LoadSettings::from_env();
    let rt = settings.runtime();
    rt.block_on(run(settings));
}

/// The server the pair runs against: `SESSIONS_BENCH_MYSQL_URL`, else
/// `SESSIONS_TEST_MYSQL_URL`, else the local server.
fn mysql_url() -> String {
    ["SESSIONS_BENCH_MYSQL_URL", "SESSIONS_TEST_MYSQL_URL"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|url| !url.is_empty()))
        .unwrap_or_else(|| "mysql://root@127.0.0.1:3306/test".into())
}

/// `MySqlStore` (its own pool settings) on the new table `table`.
async fn sessions_mysql(url: &str, table: &str, format: Format) -> Router {
    let store = MySqlStore::connect_with(url, MySqlStore::pool_options())
        .await
        .expect("connect to MySQL")
        .table_name(table);
    store.migrate().await.expect("create the table");
    app_sessions(sessions_layer(store, format))
}

/// tower-sessions-sqlx-store's `MySqlStore` in the new database `schema` (its table `session`),
/// on a pool made with `options` (its docs' `MySqlPool::connect(url)` is
/// `MySqlPoolOptions::new()`).
async fn tower_mysql(url: &str, schema: &str, options: MySqlPoolOptions) -> Router {
    let pool = options.connect(url).await.expect("connect to MySQL");
    let store = tower_sessions_sqlx_store::MySqlStore::new(pool)
        .with_schema_name(schema)
        .expect("a schema name");
    store
        .migrate()
        .await
        .expect("create the database and table");
    tower014::app(store)
}

/// The server's version and `innodb_flush_log_at_trx_commit`.
async fn server_settings(admin: &MySqlPool) -> String {
    let version: String = sqlx::query_scalar("SELECT VERSION()")
        .fetch_one(admin)
        .await
        .unwrap_or_default();
    let flush: String =
        sqlx::query_scalar("SELECT CAST(@@GLOBAL.innodb_flush_log_at_trx_commit AS CHAR)")
            .fetch_one(admin)
            .await
            .unwrap_or_else(|err| format!("unknown ({err})"));
    format!("server {version}, innodb_flush_log_at_trx_commit={flush}")
}

async fn run(settings: LoadSettings) {
    let url = mysql_url();
    let admin = match MySqlPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(2))
        .connect(&url)
        .await
    {
        Ok(pool) => pool,
        Err(err) => {
            println!(
                "skipped: no MySQL at {url} ({err}); set SESSIONS_BENCH_MYSQL_URL to run the MySQL pair"
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
    let formats = [
        ("json", Format::Json),
        ("bincode", Format::Bincode),
        ("msgpack", Format::MessagePack),
    ];
    let mut statements: Vec<String> = formats
        .iter()
        .map(|(name, _)| format!("DROP TABLE IF EXISTS `bench_sessions_{name}_{tag}`"))
        .collect();
    for name in ["tower", "tower_tuned"] {
        statements.push(format!("DROP DATABASE IF EXISTS `bench_{name}_{tag}`"));
    }
    let cleanup = Cleanup {
        url: url.clone(),
        statements,
    };
    println!("{}", server_settings(&admin).await);
    let keep = filters();
    let wanted = |name: &str| keep.is_empty() || keep.iter().any(|k| name.contains(k.as_str()));
    let mut contenders = Vec::new();
    for (name, format) in formats {
        let label = format!("sessions MySqlStore {name}");
        if wanted(&label) {
            let app = sessions_mysql(&url, &format!("bench_sessions_{name}_{tag}"), format).await;
            contenders.push(Contender::new(label, false, app, settings.sessions).await);
        }
    }
    for (name, label, incumbent, options) in [
        (
            "tower",
            "tower-sessions 0.14 sqlx-store MySqlStore (MySqlPool::connect)",
            true,
            MySqlPoolOptions::new(),
        ),
        (
            "tower_tuned",
            "tower-sessions 0.14 sqlx-store MySqlStore (our pool options)",
            false,
            MySqlStore::pool_options(),
        ),
    ] {
        if wanted(label) {
            let app = tower_mysql(&url, &format!("bench_{name}_{tag}"), options).await;
            contenders.push(Contender::new(label, incumbent, app, settings.sessions).await);
        }
    }
    measure(&mut contenders, &settings).await;
    report("MySQL", &contenders, &settings);
    println!("after the run: {}", server_settings(&admin).await);
    admin.close().await;
    drop(cleanup);
}

/// Drops the contenders' tables and databases, a panicking run too.
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
                let pool = MySqlPool::connect(&url).await?;
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
