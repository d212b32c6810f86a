//! Read replicas: request loads answered by streaming replicas, every write (and every load a
//! write makes) by the primary, with read-your-writes per session.
//!
//! # How a request's load is answered
//!
//! [`SessionStore::load_for_read`] gets the [`ReadMark`] the client carried (the version its
//! last write left the entry at, from the companion cookie the layer hands out), and this
//! store adds its own: the version of every entry *this process* wrote, kept until every
//! replica has replayed it (`Recent`). Then:
//!
//! * a mark that needs the primary (a logout of this process, a mark of another id), or a write
//!   of this process the replica is not known to hold yet (made after its fresh point), reads
//!   the primary (`result="primary"`);
//! * no replica usable (down, or lagging past [`PostgresStore::max_replica_lag`], or not
//!   measured yet): the primary (`result="skipped"`);
//! * else one replica (round robin) reads the row; its entry is the answer if the mark accepts
//!   its version (`result="replica"`), and the primary is read otherwise (`result="behind"`) or
//!   when the replica failed the call (`result="failed"`).
//!
//! Falling back at once was measured against waiting a bounded time for the replica: see the
//! README (*Read replicas*).
//!
//! # How lag is measured
//!
//! A task samples the primary's WAL position (`pg_current_wal_lsn()`) every
//! [`CHECK_EVERY`], noting the instant just *before* it asked, and asks each replica how far
//! it replayed (`pg_last_wal_replay_lsn()`). A replica that replayed past the sample taken at
//! instant `t` holds every write acknowledged before `t`: its *fresh point* is the latest such
//! `t`. It is usable while its fresh point is at most `max_replica_lag` old. So a read
//! without a mark is never more than that bound behind any write, and a write's mark is
//! needed only that long (`read_mark_ttl`).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use sqlx::postgres::PgPool;

use super::PostgresStore;
use super::circuit::Circuit;
use super::held::Held;
use crate::id::SessionKey;
use crate::metrics::{ReplicaCounters, ReplicaResult};
use crate::store::{Entry, ReadMark, SessionStore, StoreError};

/// How often the lag task samples the primary and the replicas.
pub(super) const CHECK_EVERY: Duration = Duration::from_millis(100);

/// How long one check of a server, or one replica read, may take before it counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a replica's pool (made by `read_replicas`) waits for a connection.
const REPLICA_ACQUIRE_TIMEOUT: Duration = Duration::from_millis(500);

/// How many shards the map of recent writes is spread over.
const SHARDS: usize = 16;

/// The read replicas of one store (shared by its clones).
pub(super) struct Replicas {
    servers: Vec<Replica>,
    /// The replica the next read starts looking at (round robin).
    next: AtomicUsize,
    /// Nanoseconds: the lag past which a replica is skipped.
    max_lag: AtomicU64,
    /// What every instant below is counted from.
    epoch: Instant,
    /// The primary's WAL position over time: (nanoseconds since `epoch`, LSN), oldest first.
    samples: Mutex<VecDeque<(u64, u64)>>,
    recent: Recent,
    counters: ReplicaCounters,
    /// The lag task, stopped with the last clone of the store.
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// One replica.
struct Replica {
    /// `host:port/database`, for logs (never a password).
    label: String,
    held: Arc<Held>,
    circuit: Circuit,
    /// Nanoseconds since `epoch` of its fresh point; 0: none measured.
    fresh: AtomicU64,
    /// The last check reached it, streaming, at or past where it was before it failed.
    up: AtomicBool,
    /// Where it was when it last failed: it is used again only once it is back there (a
    /// restarted standby may open at an older position than it had replayed).
    floor: AtomicU64,
    /// What the lag task last said about it (logged on a change).
    said: Mutex<Health>,
}

/// A replica's health, as the lag task last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    Unchecked,
    InUse,
    Lagging,
    Down,
    NotStandby,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section below is a few plain assignments: safe to take over.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl Replicas {
    fn new(pools: Vec<PgPool>, max_lag: Duration) -> Self {
        let servers = pools
            .into_iter()
            .map(|pool| {
                let options = pool.connect_options();
                let label = format!(
                    "{}:{}/{}",
                    options.get_host(),
                    options.get_port(),
                    options.get_database().unwrap_or_default()
                );
                Replica {
                    label,
                    held: Arc::new(Held::new(pool)),
                    circuit: Circuit::new(PostgresStore::DEFAULT_FAIL_FAST),
                    fresh: AtomicU64::new(0),
                    up: AtomicBool::new(false),
                    floor: AtomicU64::new(0),
                    said: Mutex::new(Health::Unchecked),
                }
            })
            .collect();
        Self {
            servers,
            next: AtomicUsize::new(0),
            max_lag: AtomicU64::new(nanos(max_lag)),
            epoch: Instant::now(),
            samples: Mutex::default(),
            recent: Recent::new(),
            counters: ReplicaCounters::default(),
            task: Mutex::new(None),
        }
    }

    fn now(&self) -> u64 {
        nanos(self.epoch.elapsed())
    }

    fn max_lag(&self) -> u64 {
        self.max_lag.load(Ordering::Relaxed)
    }

    /// Whether `replica` may answer reads at `now`.
    fn usable(&self, replica: &Replica, now: u64) -> bool {
        let fresh = replica.fresh.load(Ordering::Acquire);
        replica.up.load(Ordering::Acquire)
            && fresh != 0
            && now.saturating_sub(fresh) <= self.max_lag()
    }

    /// A replica that may answer a read now, taking turns.
    fn pick(&self) -> Option<&Replica> {
        let now = self.now();
        let count = self.servers.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..count)
            .map(|offset| &self.servers[(start + offset) % count])
            .find(|replica| self.usable(replica, now))
    }

    /// How many replicas reads may go to now.
    pub(super) fn in_use(&self) -> usize {
        let now = self.now();
        self.servers
            .iter()
            .filter(|replica| self.usable(replica, now))
            .count()
    }

    /// A write of this process stored `written` under `key` (`None`: deleted it).
    pub(super) fn wrote(&self, key: &SessionKey, written: Option<u64>) {
        self.recent.note(key, written, self.now());
    }

    /// How long a client's mark of its last write is needed: until every replica that may
    /// answer holds the write (the lag bound), plus a second for the response's way.
    pub(super) fn mark_ttl(&self) -> Duration {
        Duration::from_nanos(self.max_lag()) + Duration::from_secs(1)
    }

    /// A replica failed a read: it is skipped until the lag task reaches it again.
    fn failed(&self, replica: &Replica, err: &dyn std::fmt::Display) {
        if replica.up.swap(false, Ordering::AcqRel) {
            replica
                .floor
                .fetch_max(replica.fresh.load(Ordering::Acquire), Ordering::AcqRel);
            tracing::warn!(target: "sessions::store", store = "postgres", replica = %replica.label, error = %err, "a read replica failed a read; reads go to the primary until it answers again");
        }
    }

    /// The lag task's work for one tick: a sample of the primary, a check of each replica,
    /// and the recent writes every replica has replayed forgotten.
    async fn check(&self, primary: &Arc<Held>) {
        let asked_at = self.now();
        // The primary unreachable: no replica gets fresher (writes fail meanwhile anyway).
        if let Ok(Ok(Some(lsn))) =
            tokio::time::timeout(CALL_TIMEOUT, wal_position(primary, PRIMARY_LSN)).await
        {
            {
                let mut samples = lock(&self.samples);
                samples.push_back((asked_at, lsn));
                // A replica further behind than the oldest sample kept is past the bound
                // anyway (its fresh point stays where it was).
                let keep_from =
                    asked_at.saturating_sub(self.max_lag().saturating_add(nanos(CHECK_EVERY) * 4));
                while samples.len() > 2 && samples.front().is_some_and(|(at, _)| *at < keep_from) {
                    samples.pop_front();
                }
            }
        }
        for replica in &self.servers {
            let seen = match replica.circuit.enter() {
                Ok(pass) => {
                    let seen = tokio::time::timeout(
                        CALL_TIMEOUT,
                        wal_position(&replica.held, REPLAYED_LSN),
                    )
                    .await;
                    let reached = match &seen {
                        Ok(Err(err)) => Err(err),
                        _ => Ok(()),
                    };
                    replica.circuit.after(pass, reached);
                    seen.map_err(|_| "no answer within a second".to_owned())
                        .and_then(|seen| seen.map_err(|err| err.to_string()))
                }
                Err(unreachable) => Err(unreachable.to_string()),
            };
            self.saw(replica, seen);
        }
        self.recent.forget_before(self.prune_before());
    }

    /// What the check of `replica` found: its replayed WAL position (`None`: not a standby).
    fn saw(&self, replica: &Replica, seen: Result<Option<u64>, String>) {
        let now = self.now();
        let health = match seen {
            Ok(Some(replayed)) => {
                if let Some(fresh) = self.fresh_point(replayed) {
                    replica.fresh.fetch_max(fresh, Ordering::AcqRel);
                }
                let fresh = replica.fresh.load(Ordering::Acquire);
                if fresh >= replica.floor.load(Ordering::Acquire) {
                    replica.up.store(true, Ordering::Release);
                }
                if self.usable(replica, now) {
                    Health::InUse
                } else {
                    Health::Lagging
                }
            }
            Ok(None) => {
                replica.up.store(false, Ordering::Release);
                Health::NotStandby
            }
            Err(err) => {
                if replica.up.swap(false, Ordering::AcqRel) {
                    replica
                        .floor
                        .fetch_max(replica.fresh.load(Ordering::Acquire), Ordering::AcqRel);
                }
                self.tell(replica, Health::Down, &err);
                return;
            }
        };
        self.tell(replica, health, "");
    }

    /// Logs a change of `replica`'s health.
    fn tell(&self, replica: &Replica, health: Health, why: &str) {
        let before = std::mem::replace(&mut *lock(&replica.said), health);
        if before == health {
            return;
        }
        let label = &replica.label;
        let fresh = replica.fresh.load(Ordering::Acquire);
        let lag_ms = (fresh != 0).then(|| self.now().saturating_sub(fresh) / 1_000_000);
        match health {
            Health::InUse => {
                tracing::info!(target: "sessions::store", store = "postgres", replica = %label, "a read replica is in use");
            }
            Health::Lagging => {
                tracing::warn!(target: "sessions::store", store = "postgres", replica = %label, lag_ms, bound_ms = self.max_lag() / 1_000_000, "a read replica lags past the bound (or has not caught up yet); reads go to the primary until it catches up");
            }
            Health::Down => {
                tracing::warn!(target: "sessions::store", store = "postgres", replica = %label, error = why, "a read replica cannot be reached; reads go to the primary until it answers again");
            }
            Health::NotStandby => {
                tracing::error!(target: "sessions::store", store = "postgres", replica = %label, "a read replica is not a standby (pg_last_wal_replay_lsn() is null: a primary, or promoted): it is not read from");
            }
            Health::Unchecked => {}
        }
    }

    /// The latest sample instant whose WAL position `replayed` covers.
    fn fresh_point(&self, replayed: u64) -> Option<u64> {
        let samples = lock(&self.samples);
        let covered = samples.partition_point(|(_, lsn)| *lsn <= replayed);
        covered.checked_sub(1).map(|last| samples[last].0)
    }

    /// Recent writes older than this are held by every replica that may answer a read (now or
    /// later: a replica becomes usable again only with a fresh point within the bound).
    fn prune_before(&self) -> u64 {
        let floor = self.now().saturating_sub(self.max_lag());
        self.servers
            .iter()
            .map(|replica| replica.fresh.load(Ordering::Acquire).max(floor))
            .min()
            .unwrap_or(floor)
    }
}

impl Drop for Replicas {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
    }
}

/// The primary's WAL position now.
const PRIMARY_LSN: &str = "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::int8";

/// How far a standby replayed (null on a server that is not one).
const REPLAYED_LSN: &str = "SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::int8";

/// Asks the server of `held` for a WAL position (`query`).
async fn wal_position(held: &Arc<Held>, query: &str) -> Result<Option<u64>, sqlx::Error> {
    let mut conn = held.lease(true).await?;
    let outcome = sqlx::query_scalar::<_, Option<i64>>(query)
        .fetch_one(&mut *conn)
        .await;
    conn.finish(&outcome);
    Ok(outcome?.map(i64::unsigned_abs))
}

/// What this process wrote lately: for each key, what a read must see (the version written, or
/// the primary after a delete) and when, until every replica holds it.
struct Recent {
    shards: Vec<Mutex<HashMap<SessionKey, (ReadMark, u64)>>>,
}

impl Recent {
    fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    fn shard(&self, key: &SessionKey) -> MutexGuard<'_, HashMap<SessionKey, (ReadMark, u64)>> {
        let index = usize::from(key.as_bytes()[0]) % SHARDS;
        lock(&self.shards[index])
    }

    fn note(&self, key: &SessionKey, written: Option<u64>, at: u64) {
        // A deleted entry is never filed again under its key: a read must not see it (the
        // primary is asked). Versions only grow.
        let mark = written.map_or(ReadMark::Latest, ReadMark::AtLeast);
        let mut shard = self.shard(key);
        let entry = shard.entry(key.clone()).or_insert((mark, at));
        *entry = (entry.0.and(mark), at);
    }

    /// What a read of `key` must see by this process's writes, and when the last was.
    fn get(&self, key: &SessionKey) -> Option<(ReadMark, u64)> {
        self.shard(key).get(key).copied()
    }

    fn forget_before(&self, before: u64) {
        for shard in &self.shards {
            lock(shard).retain(|_, (_, at)| *at >= before);
        }
    }
}

/// The lag task: a check every [`CHECK_EVERY`], until the store is dropped or its pool closed.
async fn watch(replicas: Weak<Replicas>, primary: Arc<Held>) {
    let mut ticks = tokio::time::interval(CHECK_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(replicas) = replicas.upgrade() else {
            return;
        };
        if primary.pool().is_closed() {
            return;
        }
        replicas.check(&primary).await;
    }
}

impl PostgresStore {
    /// The lag past which a replica is skipped (reads go to the primary) by default: 2 s.
    ///
    /// ```
    /// assert_eq!(sessions::PostgresStore::DEFAULT_MAX_REPLICA_LAG.as_secs(), 2);
    /// ```
    pub const DEFAULT_MAX_REPLICA_LAG: Duration = Duration::from_secs(2);

    /// Answers requests' loads from these streaming replicas of the primary (`urls`: any
    /// iterator of URL strings); every write, and every load a write makes, stays on the
    /// primary. Call it after [`connect`](Self::connect), inside a Tokio runtime.
    ///
    /// **Read-your-writes per session**: a request never sees its session older than the last
    /// write its client was answered for. The response of each write hands the client the
    /// entry's version in a short-lived companion cookie (`<cookie name>_written`, or the
    /// `<id header>-written` header an API client sends back), and a replica's copy answers a
    /// load only if it is at least that version (else the primary does); this process also
    /// remembers the versions it wrote until every replica replayed them. Every save stays a
    /// compare-and-swap on the primary: a request that read a replica's older copy (another
    /// client's write not replayed yet) and saves on top of it loses the swap, reads the
    /// primary and applies its change there — no write is lost and no 409 is added.
    ///
    /// A replica that cannot be reached, or lags past
    /// [`max_replica_lag`](Self::max_replica_lag), is skipped (a `warn` and
    /// `sessions_replica_total{result="skipped"}`) and used again once it has caught up, by
    /// itself. A read without a mark (another client's, another device's) is at most that
    /// bound behind. See the README (*Read replicas*) for what it costs and the measurements.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when a URL is not a PostgreSQL URL. A replica that is down is
    /// no error: it is skipped until it answers.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::error::StoreError> {
    /// let store = sessions::PostgresStore::connect("postgres://app@primary/app")
    ///     .await?
    ///     .read_replicas(["postgres://app@replica-1/app", "postgres://app@replica-2/app"])?;
    /// store.migrate().await?;
    /// # Ok(()) }
    /// ```
    pub fn read_replicas<I>(self, urls: I) -> Result<Self, StoreError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let options = Self::pool_options().acquire_timeout(REPLICA_ACQUIRE_TIMEOUT);
        let pools = urls
            .into_iter()
            .map(|url| options.clone().connect_lazy(url.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::backend)?;
        Ok(self.read_replica_pools(pools))
    }

    /// Like [`read_replicas`](Self::read_replicas), on pools you configured (start from
    /// [`pool_options`](Self::pool_options); a short acquire timeout makes a replica that went
    /// down cost the first reads that find it less).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use sessions::PostgresStore;
    /// let primary = PostgresStore::pool_options().connect_lazy("postgres://localhost/app").unwrap();
    /// let replica = PostgresStore::pool_options().connect_lazy("postgres://replica/app").unwrap();
    /// let store = PostgresStore::from_pool(primary).read_replica_pools([replica]);
    /// assert_eq!(store.replicas_in_use(), 0); // none measured yet
    /// # });
    /// ```
    pub fn read_replica_pools(mut self, pools: impl IntoIterator<Item = PgPool>) -> Self {
        let pools: Vec<PgPool> = pools.into_iter().collect();
        if pools.is_empty() {
            self.replicas = None;
            return self;
        }
        let max_lag = self
            .replicas
            .as_ref()
            .map_or(Self::DEFAULT_MAX_REPLICA_LAG, |replicas| {
                Duration::from_nanos(replicas.max_lag())
            });
        let replicas = Arc::new(Replicas::new(pools, max_lag));
        let task = tokio::spawn(watch(Arc::downgrade(&replicas), self.held.clone()));
        *lock(&replicas.task) = Some(task);
        self.replicas = Some(replicas);
        self
    }

    /// Skips a replica whose lag passes `bound` (default
    /// [`DEFAULT_MAX_REPLICA_LAG`](Self::DEFAULT_MAX_REPLICA_LAG)): reads go to the primary
    /// until it is back within it. The bound is also how stale a read without a mark may be
    /// (another client's write), and how long a write's mark cookie lives (`bound` + 1 s).
    /// Call it after [`read_replicas`](Self::read_replicas); the store's clones share it.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use std::time::Duration;
    /// use sessions::{PostgresStore, SessionStore};
    /// let primary = PostgresStore::pool_options().connect_lazy("postgres://localhost/app").unwrap();
    /// let replica = PostgresStore::pool_options().connect_lazy("postgres://replica/app").unwrap();
    /// let store = PostgresStore::from_pool(primary)
    ///     .read_replica_pools([replica])
    ///     .max_replica_lag(Duration::from_millis(500));
    /// assert_eq!(store.read_mark_ttl(), Some(Duration::from_millis(1500)));
    /// # });
    /// ```
    pub fn max_replica_lag(self, bound: Duration) -> Self {
        if let Some(replicas) = &self.replicas {
            replicas.max_lag.store(nanos(bound), Ordering::Relaxed);
        }
        self
    }

    /// How many replicas reads go to now (0 without replicas, or while none is reachable and
    /// within the lag bound): for a health check.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let pool = sessions::PostgresStore::pool_options().connect_lazy("postgres://localhost/app").unwrap();
    /// assert_eq!(sessions::PostgresStore::from_pool(pool).replicas_in_use(), 0);
    /// # });
    /// ```
    pub fn replicas_in_use(&self) -> usize {
        self.replicas
            .as_ref()
            .map_or(0, |replicas| replicas.in_use())
    }

    /// Closes the primary's pool and every replica's (waiting for their connections to come
    /// back, each closed then), for a clean shutdown; the lag task stops. Calls fail after it.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::error::StoreError> {
    /// let store = sessions::PostgresStore::connect("postgres://app@primary/app")
    ///     .await?
    ///     .read_replicas(["postgres://app@replica/app"])?;
    /// store.close().await;
    /// # Ok(()) }
    /// ```
    pub async fn close(&self) {
        let pools = std::iter::once(self.held.pool()).chain(
            self.replicas
                .iter()
                .flat_map(|replicas| replicas.servers.iter().map(|replica| replica.held.pool())),
        );
        for pool in pools {
            pool.close().await;
            // sqlx 0.8's `close` returns once every connection is back, but one that came back
            // while it waited (a connection given back to the pool, checked, then filed idle)
            // is left open: the second call closes what is idle.
            pool.close().await;
        }
    }

    /// A request's load: from a replica whose copy `mark` (and this process's own recent
    /// writes) accepts, else from the primary.
    pub(super) async fn load_from_replicas(
        &self,
        replicas: &Replicas,
        key: &SessionKey,
        mark: ReadMark,
    ) -> Result<Option<Entry>, StoreError> {
        let recent = replicas.recent.get(key);
        let mark = mark.and(recent.map_or(ReadMark::None, |(mark, _)| mark));
        if mark == ReadMark::Latest {
            replicas.counters.count(ReplicaResult::Primary);
            return self.load(key).await;
        }
        let Some(replica) = replicas.pick() else {
            replicas.counters.count(ReplicaResult::Skipped);
            return self.load(key).await;
        };
        // This process wrote the entry after the replica's fresh point: it is not known to
        // hold the write yet, and asking it would most likely cost a round trip for nothing.
        if recent.is_some_and(|(_, at)| at >= replica.fresh.load(Ordering::Acquire)) {
            replicas.counters.count(ReplicaResult::Primary);
            return self.load(key).await;
        }
        let read = tokio::time::timeout(
            CALL_TIMEOUT,
            self.load_on(&replica.held, &replica.circuit, key, false),
        )
        .await;
        match read {
            Ok(Ok(found)) if mark.accepts(found.as_ref().map(Entry::version)) => {
                replicas.counters.count(ReplicaResult::Replica);
                Ok(found)
            }
            Ok(Ok(_)) => {
                replicas.counters.count(ReplicaResult::Behind);
                self.load(key).await
            }
            // The row does not decode there, or the table is not there yet (a migration not
            // replayed): the primary may hold what the replica lacks.
            Ok(Err(StoreError::Record(_) | StoreError::NotSetUp { .. })) => {
                replicas.counters.count(ReplicaResult::Behind);
                self.load(key).await
            }
            Ok(Err(err)) => {
                replicas.failed(replica, &err);
                replicas.counters.count(ReplicaResult::Failed);
                self.load(key).await
            }
            Err(_) => {
                replicas.failed(replica, &"no answer within a second");
                replicas.counters.count(ReplicaResult::Failed);
                self.load(key).await
            }
        }
    }
}

#[cfg(test)]
mod tests;
