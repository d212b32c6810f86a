//! The stores the store-generic tests run on: one fixture per store, each a fresh store of its
//! own (and whatever must be cleaned up after it).
//!
//! A store plugs in as one function here and one arm in [`store_tests!`](super::store_tests).
//! A server store's function returns `None`, after printing a `skipped: set
//! SESSIONS_TEST_..._URL` line, when its server is not configured:
//!
//! ```text
//! pub(crate) async fn memory() -> Option<Fixture<MemoryStore>>      // always
//! pub(crate) async fn sqlite() -> Option<Fixture<SqliteStore>>      // a temp file, always
//! pub(crate) async fn postgres() -> Option<Fixture<PostgresStore>>  // SESSIONS_TEST_POSTGRES_URL
//! pub(crate) async fn postgres_replica() -> Option<Fixture<PostgresStore>> // + SESSIONS_TEST_POSTGRES_REPLICA_URL
//! pub(crate) async fn redis() -> Option<Fixture<RedisStore>>        // SESSIONS_TEST_REDIS_URL
//! pub(crate) async fn memory_compact() -> Option<Fixture<MemoryStore>> // always
//! pub(crate) async fn redis_cached() -> Option<Fixture<RedisStore>> // SESSIONS_TEST_REDIS_URL
//! pub(crate) async fn mysql() -> Option<Fixture<MySqlStore>>        // SESSIONS_TEST_MYSQL_URL
//! pub(crate) async fn memcached() -> Option<Fixture<MemcachedStore>> // SESSIONS_TEST_MEMCACHED_URL
//! pub(crate) async fn redis_cluster() -> Option<Fixture<RedisStore>> // redis-server, redis-cli
//! ```

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use sessions::{MemcachedStore, MemoryStore, MySqlStore, PostgresStore, RedisStore, SqliteStore};

use super::redis_common::{PrefixGuard, redis_url};

/// A store for one test, and what to clean up after it (on drop, a panicking test too).
pub(crate) struct Fixture<S> {
    pub(crate) store: S,
    /// Dropped with the fixture: a guard that removes a temp file, tables or the keys under a
    /// prefix of a server store.
    _cleanup: Option<Box<dyn std::any::Any>>,
}

impl<S> Fixture<S> {
    /// A fixture with nothing to clean up.
    pub(crate) fn plain(store: S) -> Self {
        Self {
            store,
            _cleanup: None,
        }
    }

    /// A fixture whose `guard` cleans up when dropped (for the server stores' fixtures).
    pub(crate) fn with_cleanup(store: S, guard: impl std::any::Any) -> Self {
        Self {
            store,
            _cleanup: Some(Box::new(guard)),
        }
    }
}

/// A fresh `MemoryStore`.
pub(crate) async fn memory() -> Option<Fixture<MemoryStore>> {
    Some(Fixture::plain(MemoryStore::new()))
}

/// A name no other test or test run uses.
pub(crate) fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}_{}_{nanos}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Removes a SQLite file and its WAL companions when dropped.
struct RemoveDb(PathBuf);

impl Drop for RemoveDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut file = self.0.as_os_str().to_owned();
            file.push(suffix);
            let _ = std::fs::remove_file(file);
        }
    }
}

/// A `SqliteStore` on a temp file of its own, migrated.
pub(crate) async fn sqlite() -> Option<Fixture<SqliteStore>> {
    let path = std::env::temp_dir().join(format!("{}.db", unique_name("sessions_behaviour")));
    let guard = RemoveDb(path.clone());
    let store = SqliteStore::open(&path)
        .await
        .expect("open a temp SQLite file");
    store.migrate().await.expect("migrate");
    Some(Fixture::with_cleanup(store, guard))
}

/// Drops a PostgreSQL table when dropped (on a connection of its own: the test's runtime may
/// be gone).
struct DropTable {
    url: String,
    table: String,
}

impl Drop for DropTable {
    fn drop(&mut self) {
        let (url, table) = (self.url.clone(), self.table.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let pool = sqlx::PgPool::connect(&url).await?;
                sqlx::query(&format!("DROP TABLE IF EXISTS \"{table}\""))
                    .execute(&pool)
                    .await?;
                pool.close().await;
                Ok::<(), sqlx::Error>(())
            })?;
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: table {} not dropped: {dropped:?}", self.table);
        }
    }
}

/// A `PostgresStore` on a table of its own, migrated; `None` (with the skip line) without a
/// server.
pub(crate) async fn postgres() -> Option<Fixture<PostgresStore>> {
    let url = match std::env::var("SESSIONS_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            println!("skipped: set SESSIONS_TEST_POSTGRES_URL to run this test on PostgreSQL");
            return None;
        }
    };
    let table = unique_name("behaviour");
    let guard = DropTable {
        url: url.clone(),
        table: table.clone(),
    };
    let store = PostgresStore::connect(&url)
        .await
        .expect("connect to SESSIONS_TEST_POSTGRES_URL")
        .table_name(&table);
    store.migrate().await.expect("migrate");
    Some(Fixture::with_cleanup(store, guard))
}

/// A `PostgresStore` reading from the streaming replica of `.ci/replica.sh` (loads of requests
/// on the replica, everything else on the primary), on a table of its own the replica already
/// holds, once the replica is in use; `None` (with the skip line) without both servers.
pub(crate) async fn postgres_replica() -> Option<Fixture<PostgresStore>> {
    let (url, replica) = super::replica_common::urls()?;
    let table = unique_name("behaviour_replica");
    let guard = DropTable {
        url: url.clone(),
        table: table.clone(),
    };
    let store = PostgresStore::connect(&url)
        .await
        .expect("connect to SESSIONS_TEST_POSTGRES_URL")
        .table_name(&table);
    store.migrate().await.expect("migrate");
    let servers = super::replica_common::Servers::connect(&url, &replica).await;
    servers.caught_up().await;
    let store = store
        .read_replicas([replica])
        .expect("SESSIONS_TEST_POSTGRES_REPLICA_URL is a PostgreSQL URL");
    let ready = store.clone();
    servers
        .wait_for("the replica to be in use", || {
            let ready = ready.clone();
            async move { ready.replicas_in_use() == 1 }
        })
        .await;
    servers.primary.close().await;
    servers.replica.close().await;
    Some(Fixture::with_cleanup(store, guard))
}

/// A `RedisStore` under a key prefix of its own; `None` (with the skip line) without a server.
pub(crate) async fn redis() -> Option<Fixture<RedisStore>> {
    let url = redis_url()?;
    // `unique_name`'s counter keeps the prefixes of one run's concurrent tests apart.
    let guard = PrefixGuard::new(&url, &unique_name("behaviour"));
    let store = RedisStore::connect(url.as_str())
        .await
        .expect("connect to SESSIONS_TEST_REDIS_URL")
        .prefix(&guard.prefix);
    Some(Fixture::with_cleanup(store, guard))
}

/// Drops a MySQL table when dropped (on a connection of its own: the test's runtime may be
/// gone).
struct DropMySqlTable {
    url: String,
    table: String,
}

impl Drop for DropMySqlTable {
    fn drop(&mut self) {
        let (url, table) = (self.url.clone(), self.table.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let pool = sqlx::MySqlPool::connect(&url).await?;
                sqlx::query(&format!("DROP TABLE IF EXISTS `{table}`"))
                    .execute(&pool)
                    .await?;
                pool.close().await;
                Ok::<(), sqlx::Error>(())
            })?;
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: table {} not dropped: {dropped:?}", self.table);
        }
    }
}

/// A `MySqlStore` on a table of its own, migrated; `None` (with the skip line) without a
/// server.
pub(crate) async fn mysql() -> Option<Fixture<MySqlStore>> {
    let url = match std::env::var("SESSIONS_TEST_MYSQL_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            println!("skipped: set SESSIONS_TEST_MYSQL_URL to run this test on MySQL");
            return None;
        }
    };
    let table = unique_name("behaviour");
    let guard = DropMySqlTable {
        url: url.clone(),
        table: table.clone(),
    };
    let store = MySqlStore::connect(&url)
        .await
        .expect("connect to SESSIONS_TEST_MYSQL_URL")
        .table_name(&table);
    store.migrate().await.expect("migrate");
    Some(Fixture::with_cleanup(store, guard))
}

/// A `MemcachedStore` under a key prefix of its own (its items expire by themselves); `None`
/// (with the skip line) without a server.
pub(crate) async fn memcached() -> Option<Fixture<MemcachedStore>> {
    let url = match std::env::var("SESSIONS_TEST_MEMCACHED_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            println!("skipped: set SESSIONS_TEST_MEMCACHED_URL to run this test on memcached");
            return None;
        }
    };
    let store = MemcachedStore::connect(&url)
        .await
        .expect("connect to SESSIONS_TEST_MEMCACHED_URL")
        .prefix(format!("{}:", unique_name("behaviour")));
    Some(Fixture::plain(store))
}

/// A `MemoryStore::compact()` (records held packed).
pub(crate) async fn memory_compact() -> Option<Fixture<MemoryStore>> {
    Some(Fixture::plain(MemoryStore::compact()))
}

/// A `RedisStore` with its coherent local cache (`local_cache`), under a key prefix of its
/// own; `None` (with the skip line) without a server.
pub(crate) async fn redis_cached() -> Option<Fixture<RedisStore>> {
    let url = redis_url()?;
    let guard = PrefixGuard::new(&url, &unique_name("behaviour"));
    let store = RedisStore::connect(url.as_str())
        .await
        .expect("connect to SESSIONS_TEST_REDIS_URL")
        .prefix(&guard.prefix)
        .local_cache(10_000)
        .await
        .expect("a local cache");
    Some(Fixture::with_cleanup(store, guard))
}

/// A `RedisStore` in cluster mode (`connect_cluster`) on the test binary's own three-node
/// Redis Cluster (`shared_cluster`: started by the first test that asks, shared by the rest),
/// under a key prefix of its own; the keys go with the cluster when the binary exits. `None`
/// (with the skip line) without `redis-server` and `redis-cli`.
pub(crate) async fn redis_cluster() -> Option<Fixture<RedisStore>> {
    let urls = super::shared_cluster::urls()?;
    let store = RedisStore::connect_cluster(urls)
        .await
        .expect("connect to the test binary's Redis Cluster")
        .prefix(format!("{}:", unique_name("behaviour")));
    assert!(store.is_cluster());
    Some(Fixture::plain(store))
}
