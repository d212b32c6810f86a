//! The streaming replica of the local PostgreSQL (`.ci/replica.sh`) for the read-replica tests:
//! its URL, waiting for it to replay what the primary wrote, and pausing its replay.
#![allow(dead_code)]

use std::time::Duration;

use sqlx::PgPool;

pub(crate) const PRIMARY_VAR: &str = "SESSIONS_TEST_POSTGRES_URL";
pub(crate) const REPLICA_VAR: &str = "SESSIONS_TEST_POSTGRES_REPLICA_URL";

/// How long a wait for the servers may take before the test fails (a replica that does not
/// replay at all is broken, not slow).
const PATIENCE: Duration = Duration::from_secs(60);

/// The primary's and the replica's URLs, or `None` (with the skip line) when either is unset.
pub(crate) fn urls() -> Option<(String, String)> {
    let var = |name: &str| std::env::var(name).ok().filter(|url| !url.is_empty());
    match (var(PRIMARY_VAR), var(REPLICA_VAR)) {
        (Some(primary), Some(replica)) => Some((primary, replica)),
        _ => {
            println!(
                "skipped: set {PRIMARY_VAR} and {REPLICA_VAR} (bash .ci/replica.sh makes the replica) to run the read-replica tests"
            );
            None
        }
    }
}

/// `url` with `application_name` set (the connections of one store, counted on the servers).
pub(crate) fn named(url: &str, name: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}application_name={name}")
}

/// A connection pool of the test's own to each server, for what the test asks them directly.
#[derive(Clone)]
pub(crate) struct Servers {
    pub(crate) primary: PgPool,
    pub(crate) replica: PgPool,
    pub(crate) replica_url: String,
}

impl Servers {
    pub(crate) async fn connect(primary: &str, replica: &str) -> Self {
        let pool = |url: String| async move {
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(2)
                .connect(&url)
                .await
                .unwrap_or_else(|err| panic!("connect to {url}: {err}"))
        };
        Self {
            primary: pool(primary.to_owned()).await,
            replica: pool(replica.to_owned()).await,
            replica_url: replica.to_owned(),
        }
    }

    /// Waits until the replica has replayed everything the primary wrote so far.
    pub(crate) async fn caught_up(&self) {
        let written: i64 = sqlx::query_scalar("SELECT (pg_current_wal_lsn() - '0/0')::int8")
            .fetch_one(&self.primary)
            .await
            .expect("the primary's WAL position");
        self.wait_for("the replica to replay the primary's writes", || async {
            let replayed: Option<i64> =
                sqlx::query_scalar("SELECT (pg_last_wal_replay_lsn() - '0/0')::int8")
                    .fetch_one(&self.replica)
                    .await
                    .expect("the replica's replay position");
            replayed.is_some_and(|replayed| replayed >= written)
        })
        .await;
    }

    /// Pauses the replica's replay (until the guard is dropped, or `resume`d): what the primary
    /// writes from now on is not on the replica.
    pub(crate) async fn pause(&self) -> Paused {
        let paused = Paused {
            url: self.replica_url.clone(),
            resumed: false,
        };
        sqlx::query("SELECT pg_wal_replay_pause()")
            .execute(&self.replica)
            .await
            .expect("pause the replica's replay");
        self.wait_for("the replica's replay to pause", || async {
            let state: String = sqlx::query_scalar("SELECT pg_get_wal_replay_pause_state()")
                .fetch_one(&self.replica)
                .await
                .expect("the replica's pause state");
            state == "paused"
        })
        .await;
        paused
    }

    /// Polls `done` until it says yes; panics after a minute.
    pub(crate) async fn wait_for<F, Fut>(&self, what: &str, mut done: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !done().await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "waited a minute for {what}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// The replica's replay, paused; resumed when dropped (a failing test too), or by `resume`.
pub(crate) struct Paused {
    url: String,
    resumed: bool,
}

impl Paused {
    pub(crate) async fn resume(mut self, servers: &Servers) {
        sqlx::query("SELECT pg_wal_replay_resume()")
            .execute(&servers.replica)
            .await
            .expect("resume the replica's replay");
        self.resumed = true;
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        if self.resumed {
            return;
        }
        let url = self.url.clone();
        // Drop cannot await, and the test's runtime may be gone: a thread and runtime of its own.
        let resumed = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let pool = PgPool::connect(&url).await?;
                sqlx::query("SELECT pg_wal_replay_resume()")
                    .execute(&pool)
                    .await?;
                pool.close().await;
                Ok::<(), sqlx::Error>(())
            })?;
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if !matches!(resumed, Ok(Ok(()))) {
            eprintln!("warning: the replica's replay was not resumed: {resumed:?}");
        }
    }
}
