//! [`PostgresStore`]: sessions in PostgreSQL (feature `postgres`).

mod circuit;
mod held;
mod queries;
mod replicas;
mod upgrade;

use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::codec::Format;
use crate::errors::RecordError;
use crate::expiry::{Clock, SystemClock};
use crate::id::SessionKey;
use crate::registry::MigrationReport;
use crate::schema::Session;
use crate::store::upkeep::sql::{self, key_of};
use crate::store::upkeep::{self, ScanCursor, ScanPage};
use crate::store::{Entry, OwnedEntries, ReadMark, SessionStore, StoreError, TableNameError, blob};

use self::circuit::Circuit;
use self::held::{Held, Lease};
use self::queries::{DEFAULT_TABLE, PAGE, Queries, SESSION_ROW, Table, millis, version_column};
use self::replicas::Replicas;

/// Sessions in PostgreSQL: one row per session, every call one statement.
///
/// A row holds the whole session, encoded ([`blob`]), beside the columns the store searches
/// by: the key, the entry's version, when it ends, and its owner (see [the schema](#schema)).
/// A load is one `SELECT` by primary key; a save is one `UPDATE` that writes only over the
/// version the request loaded (compare-and-swap), in autocommit: one round trip, no
/// `BEGIN`/`COMMIT`. Which fields a request changed, merging concurrent changes to different
/// fields, never re-creating a destroyed session, moving it on `cycle_id()`: all of that is
/// the crate's, built on these two statements (see [`SessionStore`]).
///
/// Expiry is decided by this store's [clock](PostgresStore::with_clock), not the server's.
/// Ended rows are invisible at once; [`delete_expired`](PostgresStore::delete_expired) or
/// [`spawn_sweeper`](PostgresStore::spawn_sweeper) reclaims them.
///
/// # Connections
///
/// The store keeps the connections of calls that ended cleanly checked out of the pool, for
/// the next call: sqlx's pool checks every connection given back to it with a round trip (a
/// ping), which would double the round trips of a store whose calls are one statement each
/// (and, measured, cost the server about half again what the statement does). Up to
/// `max_connections - 1` are kept, so at least one connection always goes back to the pool for
/// other users of [`pool`](PostgresStore::pool); one unused for a second goes back too (and is
/// checked there), as does every connection at least once a minute. A connection that broke
/// (the server restarted, `pg_terminate_backend`) fails the one call that found it with
/// [`StoreError::Backend`] and is closed, never used again; the other kept ones go back to the
/// pool to be checked.
///
/// # When the server is unreachable
///
/// A call fails with [`StoreError::Backend`] (the layer answers 503), and the store works again
/// as soon as the server does: nothing to restart. The first calls wait for the pool's acquire
/// timeout ([`DEFAULT_ACQUIRE_TIMEOUT`](PostgresStore::DEFAULT_ACQUIRE_TIMEOUT), 2 s, with
/// [`connect`](PostgresStore::connect)); once one has failed to get a connection, calls fail at
/// once for [`DEFAULT_FAIL_FAST`](PostgresStore::DEFAULT_FAIL_FAST) (1 s), after which one
/// call at a time tries the server again: when it connects, every call goes through again;
/// when it does not, calls keep failing at once for another second. So during an outage a
/// request waits for its 503 about a millisecond, and one request every few seconds waits the
/// acquire timeout. [`fail_fast_for`](PostgresStore::fail_fast_for) changes the window or
/// turns this off.
///
/// ```no_run
/// use sessions::prelude::*;
/// use sessions::PostgresStore;
///
/// #[derive(Session, Default)]
/// #[session(name = "cart")]
/// struct Cart { items: Vec<String> }
///
/// # async fn demo() -> Result<(), sessions::error::StoreError> {
/// let store = PostgresStore::connect("postgres://app@localhost/app").await?;
/// store.migrate().await?;
/// let layer = SessionLayer::new(store).register::<Cart>();
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
///
/// # Schema
///
/// With the default table name `sessions` ([`table_name`](PostgresStore::table_name) changes
/// it):
///
/// ```sql
/// CREATE TABLE "sessions" (
///     key BYTEA NOT NULL,          -- the SessionKey's 32 bytes (a SHA-256 of the id), never the id
///     version BIGINT NOT NULL,     -- the entry's version, which every write compares
///     expires_at BIGINT NOT NULL,  -- ms since the Unix epoch
///     owner TEXT COLLATE "C",      -- the session's owner, if any
///     data BYTEA NOT NULL,         -- the entry (sessions::store::blob)
///     CONSTRAINT "sessions_pkey" PRIMARY KEY (key)
/// ) WITH (fillfactor = 80);
/// CREATE INDEX "sessions_by_expiry" ON "sessions" (expires_at);
/// CREATE INDEX "sessions_by_owner" ON "sessions" (owner) WHERE owner IS NOT NULL;
/// ```
///
/// The deadline moves only when the expiry is refreshed, and the owner only at login and
/// logout, so most saves change `version` and `data` alone: neither is indexed, and with the
/// room the fillfactor leaves on each page PostgreSQL updates the row in place (a HOT update:
/// no index entry written, a smaller WAL record).
#[derive(Clone)]
pub struct PostgresStore {
    sql: Arc<Queries>,
    clock: Arc<dyn Clock>,
    circuit: Arc<Circuit>,
    held: Arc<Held>,
    /// The read replicas requests' loads go to (`read_replicas`), if any.
    replicas: Option<Arc<Replicas>>,
}

impl PostgresStore {
    /// How long a pool made by [`connect`](Self::connect) (or from
    /// [`pool_options`](Self::pool_options)) waits for a connection before the call fails:
    /// 2 s.
    ///
    /// It bounds how long a request waits for its 503 when the server has just become
    /// unreachable (sqlx retries a refused connection until then; after that the store fails
    /// fast, see [`DEFAULT_FAIL_FAST`](Self::DEFAULT_FAIL_FAST)). A healthy pool hands out a
    /// connection in well under a millisecond and a call holds it for one statement, so
    /// under normal load nothing comes near it.
    ///
    /// ```
    /// assert_eq!(sessions::PostgresStore::DEFAULT_ACQUIRE_TIMEOUT.as_secs(), 2);
    /// ```
    pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

    /// How long calls fail at once after the pool could not get a connection: 1 s. Then one
    /// call tries the server again (see [the type's docs](Self#when-the-server-is-unreachable)).
    ///
    /// ```
    /// assert_eq!(sessions::PostgresStore::DEFAULT_FAIL_FAST.as_secs(), 1);
    /// ```
    pub const DEFAULT_FAIL_FAST: Duration = Duration::from_secs(1);

    /// A connection that sat idle this long is checked (a round trip) before a call uses it,
    /// so that connections a server restart cut are replaced rather than handed to requests.
    /// Under load connections are never idle that long, and no call pays for the check.
    const CHECK_IDLE_AFTER: Duration = Duration::from_secs(1);

    /// Connects a pool ([`pool_options`](Self::pool_options): 10 connections, a 2 s acquire
    /// timeout) to `url` (`postgres://user:password@host:port/database`).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::error::StoreError> {
    /// let store = sessions::PostgresStore::connect("postgres://postgres@127.0.0.1/app").await?;
    /// store.migrate().await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, Self::pool_options()).await
    }

    /// The pool settings [`connect`](Self::connect) uses: sqlx's defaults (10 connections)
    /// with an acquire timeout of [`DEFAULT_ACQUIRE_TIMEOUT`](Self::DEFAULT_ACQUIRE_TIMEOUT),
    /// and connections checked before use only after they sat idle for a second (sqlx's
    /// default checks every one, a round trip per call). Change what you need and pass them
    /// to [`connect_with`](Self::connect_with); setting your own `before_acquire` replaces
    /// the idle check.
    ///
    /// ```
    /// use std::time::Duration;
    /// let options = sessions::PostgresStore::pool_options();
    /// assert_eq!(options.get_acquire_timeout(), Duration::from_secs(2));
    /// assert!(!options.get_test_before_acquire());
    /// ```
    pub fn pool_options() -> PgPoolOptions {
        PgPoolOptions::new()
            .acquire_timeout(Self::DEFAULT_ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= Self::CHECK_IDLE_AFTER {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
    }

    /// Connects a pool with `options` to `url`: for another acquire timeout or pool size.
    /// Fails once the options' acquire timeout passes when the server cannot be reached.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::error::StoreError> {
    /// use std::time::Duration;
    /// use sessions::PostgresStore;
    /// let options = PostgresStore::pool_options()
    ///     .max_connections(20)
    ///     .acquire_timeout(Duration::from_millis(500));
    /// let store = PostgresStore::connect_with("postgres://postgres@127.0.0.1/app", options).await?;
    /// store.migrate().await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect_with(url: &str, options: PgPoolOptions) -> Result<Self, StoreError> {
        let pool = options.connect(url).await.map_err(StoreError::backend)?;
        Ok(Self::from_pool(pool))
    }

    /// A store on a pool you configured (size, timeouts, TLS); start from
    /// [`pool_options`](Self::pool_options) to keep its settings.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let pool = sessions::PostgresStore::pool_options()
    ///     .max_connections(20)
    ///     .connect_lazy("postgres://postgres@127.0.0.1/app")
    ///     .unwrap();
    /// let store = sessions::PostgresStore::from_pool(pool);
    /// assert_eq!(store.table(), "sessions");
    /// # });
    /// ```
    pub fn from_pool(pool: PgPool) -> Self {
        let table = match Table::new(DEFAULT_TABLE) {
            Ok(table) => table,
            Err(err) => unreachable!("the default table name is valid: {err}"),
        };
        Self {
            sql: Arc::new(Queries::new(table)),
            clock: Arc::new(SystemClock),
            circuit: Arc::new(Circuit::new(Self::DEFAULT_FAIL_FAST)),
            held: Arc::new(Held::new(pool)),
            replicas: None,
        }
    }

    /// Keeps sessions in the table `name` instead of `sessions`, in the connection's
    /// `search_path` schema.
    ///
    /// # Panics
    /// When `name` is not a plain identifier (see [`TableNameError`]): a mistake in the app's
    /// setup. [`try_table_name`](Self::try_table_name) returns it instead.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let pool = sessions::PostgresStore::pool_options().connect_lazy("postgres://localhost/app").unwrap();
    /// let store = sessions::PostgresStore::from_pool(pool).table_name("shop_sessions");
    /// assert_eq!(store.table(), "shop_sessions");
    /// # });
    /// ```
    pub fn table_name(self, name: &str) -> Self {
        match self.try_table_name(name) {
            Ok(store) => store,
            Err(err) => panic!("{err}"),
        }
    }

    /// Like [`table_name`](Self::table_name), returning an invalid name as an error.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let pool = sessions::PostgresStore::pool_options().connect_lazy("postgres://localhost/app").unwrap();
    /// assert!(sessions::PostgresStore::from_pool(pool).try_table_name("app-sessions").is_err());
    /// # });
    /// ```
    pub fn try_table_name(mut self, name: &str) -> Result<Self, TableNameError> {
        self.sql = Arc::new(Queries::new(Table::new(name)?));
        Ok(self)
    }

    /// The clock expiry is checked with (a [`ManualClock`](crate::clock::ManualClock) in tests; the
    /// system clock by default).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let pool = sessions::PostgresStore::pool_options().connect_lazy("postgres://localhost/app").unwrap();
    /// let store = sessions::PostgresStore::from_pool(pool).with_clock(sessions::clock::ManualClock::new());
    /// # let _ = store;
    /// # });
    /// ```
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// How long calls fail at once after the pool could not get a connection (default
    /// [`DEFAULT_FAIL_FAST`](Self::DEFAULT_FAIL_FAST)); `Duration::ZERO` turns failing fast
    /// off, so that every call waits the pool's acquire timeout while the server is
    /// unreachable.
    ///
    /// A pool whose every connection stays busy for a whole acquire timeout (a server far
    /// behind its load) looks the same as one that cannot connect: it fails fast too, which
    /// sheds load until a probe gets a connection.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use std::time::Duration;
    /// let pool = sessions::PostgresStore::pool_options().connect_lazy("postgres://localhost/app").unwrap();
    /// let store = sessions::PostgresStore::from_pool(pool).fail_fast_for(Duration::from_millis(250));
    /// # let _ = store;
    /// # });
    /// ```
    pub fn fail_fast_for(mut self, window: Duration) -> Self {
        self.circuit = Arc::new(Circuit::new(window));
        self
    }

    /// The table name.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let pool = sessions::PostgresStore::pool_options().connect_lazy("postgres://localhost/app").unwrap();
    /// assert_eq!(sessions::PostgresStore::from_pool(pool).table(), "sessions");
    /// # });
    /// ```
    pub fn table(&self) -> &str {
        &self.sql.table.base
    }

    /// The connection pool. Between calls the store keeps up to `max_connections - 1` of its
    /// connections checked out (see [Connections](Self#connections)); the pool's other users
    /// always have at least one, and all of them once the store sat idle for a second.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::error::StoreError> {
    /// let store = sessions::PostgresStore::connect("postgres://postgres@127.0.0.1/app").await?;
    /// store.pool().close().await;
    /// # Ok(()) }
    /// ```
    pub fn pool(&self) -> &PgPool {
        self.held.pool()
    }

    /// Creates the table and its indexes if they do not exist, and converts a table of the
    /// earlier layout (a row per session, slot and field in `<name>`, `<name>_slots`,
    /// `<name>_fields`) into this one in place: every live session is kept exactly (slots,
    /// field order, revisions, deadline), under the same table name, in one transaction.
    /// Running it again changes nothing. Several instances may run it at once (it takes a
    /// transaction-scoped advisory lock).
    ///
    /// The conversion skips ended sessions, and sessions whose rows no record can hold (a
    /// number out of range, a key that is not a digest: only a hand-edited table has them;
    /// the earlier release could not load them either), each with a `tracing` warning.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::error::StoreError> {
    /// let store = sessions::PostgresStore::connect("postgres://postgres@127.0.0.1/app").await?;
    /// store.migrate().await?;
    /// store.migrate().await?;
    /// # Ok(()) }
    /// ```
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await.map_err(db_error)?;
        upgrade::migrate(&mut tx, &self.sql, millis(self.clock.now())).await?;
        tx.commit().await.map_err(db_error)
    }

    /// Removes every ended session now, in batches; returns how many. Ended sessions are
    /// invisible anyway; this reclaims their space. Rows a write holds locked are left for the
    /// next sweep. See also [`spawn_sweeper`](Self::spawn_sweeper).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::error::StoreError> {
    /// let store = sessions::PostgresStore::connect("postgres://postgres@127.0.0.1/app").await?;
    /// let removed = store.delete_expired().await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete_expired(&self) -> Result<u64, StoreError> {
        SessionStore::delete_expired(self).await
    }

    /// Runs [`delete_expired`](Self::delete_expired) every `interval` (at least 1 ms) in a
    /// background task, until the pool is closed or the handle is aborted. Failures (the
    /// server down) are logged with `tracing` and retried at the next tick; the task never
    /// panics. Call it inside a Tokio runtime.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::error::StoreError> {
    /// let store = sessions::PostgresStore::connect("postgres://postgres@127.0.0.1/app").await?;
    /// let sweeper = store.spawn_sweeper(std::time::Duration::from_secs(300));
    /// # Ok(()) }
    /// ```
    pub fn spawn_sweeper(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        upkeep::spawn_sweeper("postgres", interval, move || {
            (!store.held.pool().is_closed()).then(|| store.clone())
        })
    }

    /// Rewrites every stored slot of `T` older than `T::VERSION` in the current version, now,
    /// in `format` (instead of on each session's next load). Each session is migrated by one
    /// compare-and-swap save ([`migrate_session`](crate::store::migrate_session)), so a request's change that lands in
    /// between is kept, not overwritten. Slots of a newer version or that do not decode, and
    /// sessions whose stored bytes do not decode, are counted as failed and left as they are;
    /// ended sessions are skipped.
    ///
    /// ```no_run
    /// use sessions::prelude::*;
    /// use sessions::Format;
    ///
    /// #[derive(Session, Default)]
    /// #[session(name = "cart", version = 1)]
    /// struct CartV1 { n: u32 }
    /// #[derive(Session, Default)]
    /// #[session(name = "cart", version = 2, migrate_from = CartV1)]
    /// struct Cart { n: u64 }
    /// impl From<CartV1> for Cart { fn from(v1: CartV1) -> Self { Cart { n: v1.n.into() } } }
    ///
    /// # async fn demo() -> Result<(), sessions::error::StoreError> {
    /// let store = sessions::PostgresStore::connect("postgres://postgres@127.0.0.1/app").await?;
    /// let report = store.migrate_all::<Cart>(Format::Json).await?;
    /// println!("migrated {} carts, {} failed", report.total_migrated(), report.failed);
    /// # Ok(()) }
    /// ```
    pub async fn migrate_all<T: Session>(
        &self,
        format: Format,
    ) -> Result<MigrationReport, StoreError> {
        upkeep::migrate_all::<T, Self>(self, format).await
    }

    /// A connection for one call: one the store kept from an earlier call, or one from the
    /// pool, unless the server is known to be unreachable (see
    /// [`fail_fast_for`](Self::fail_fast_for)).
    async fn conn(&self) -> Result<Lease, StoreError> {
        Self::conn_on(&self.held, &self.circuit).await
    }

    /// A connection to the server of `held` (the primary's, or a replica's), past its
    /// `circuit`.
    async fn conn_on(held: &Arc<Held>, circuit: &Circuit) -> Result<Lease, StoreError> {
        let pass = circuit.enter().map_err(StoreError::backend)?;
        // The probe of an open circuit asks the pool itself.
        let kept = !pass.is_probe();
        match held.lease(kept).await {
            Ok(lease) => {
                circuit.after(pass, Ok(()));
                Ok(lease)
            }
            Err(err) => {
                circuit.after(pass, Err(&err));
                Err(StoreError::backend(err))
            }
        }
    }

    /// The entry under `key` on the server of `held` (the primary's, or a replica's);
    /// `retry`: once more on the next connection when the first was cut (a replica's read is
    /// not retried: the primary answers instead, and a replica that restarted is not read
    /// until its lag is measured again).
    async fn load_on(
        &self,
        held: &Arc<Held>,
        circuit: &Circuit,
        key: &SessionKey,
        retry: bool,
    ) -> Result<Option<Entry>, StoreError> {
        let now = millis(self.clock.now());
        // A connection the server cut while it sat idle (a restart, an administrator's
        // `pg_terminate_backend`) fails the first statement sent on it, and is closed: a read
        // is safe to run again, on the next connection, once per connection the pool may
        // hold (each try closes a cut one; a write is never run twice).
        let mut tries = if retry {
            held.pool().options().get_max_connections().max(1)
        } else {
            1
        };
        let outcome = loop {
            let mut conn = Self::conn_on(held, circuit).await?;
            let outcome = sqlx::query_as(&self.sql.load)
                .bind(key.as_bytes().as_slice())
                .bind(now)
                .fetch_optional(&mut *conn)
                .await;
            tries -= 1;
            if conn.finish(&outcome) && tries > 0 {
                continue;
            }
            break outcome;
        };
        let row: Option<(i64, Vec<u8>)> = outcome.map_err(db_error)?;
        match row {
            Some((version, data)) => Ok(Some(entry_of_row(key, version, data)?)),
            None => Ok(None),
        }
    }
}

/// A database error as a store error: values the database holds but that do not decode are a
/// broken record; a missing table (`undefined_table`, 42P01) is a store used without
/// `migrate()` (the app's setup, a 500 that names the fix); everything else is the backend
/// failing.
fn db_error(err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            StoreError::Record(RecordError::Malformed(err.to_string()))
        }
        sqlx::Error::Database(ref db) if db.code().as_deref() == Some("42P01") => {
            StoreError::not_migrated("PostgresStore", err)
        }
        other => StoreError::backend(other),
    }
}

/// The entry a row holds for `key` ([`sql::entry_of_row`]: unreadable, with the row's version,
/// when it does not decode or says another version than its column).
fn entry_of_row(key: &SessionKey, version: i64, data: Vec<u8>) -> Result<Entry, RecordError> {
    sql::entry_of_row(key, Some(version), Ok(data))
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("table", &self.sql.table.base)
            .field("pool", self.held.pool())
            .field("fail_fast", &self.circuit.window())
            .field("replicas_in_use", &self.replicas_in_use())
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl SessionStore for PostgresStore {
    /// On the primary, always: what every write reads.
    async fn load(&self, key: &SessionKey) -> Result<Option<Entry>, StoreError> {
        self.load_on(&self.held, &self.circuit, key, true).await
    }

    /// With [`read_replicas`](PostgresStore::read_replicas): a replica's copy when `mark` and
    /// this process's own recent writes accept it, else the primary's. Without: `load`.
    async fn load_for_read(
        &self,
        key: &SessionKey,
        mark: ReadMark,
    ) -> Result<Option<Entry>, StoreError> {
        match &self.replicas {
            Some(replicas) => self.load_from_replicas(replicas, key, mark).await,
            None => self.load(key).await,
        }
    }

    fn read_mark_ttl(&self) -> Option<Duration> {
        self.replicas.as_ref().map(|replicas| replicas.mark_ttl())
    }

    async fn swap(
        &self,
        key: &SessionKey,
        current: Option<u64>,
        new: Option<Entry>,
    ) -> Result<bool, StoreError> {
        let now = millis(self.clock.now());
        let written = new.as_ref().map(Entry::version);
        let row = new.as_ref().map(|entry| {
            (
                version_column(entry.version()),
                millis(entry.expires_at()),
                entry.owner(),
                blob::encode_at(key, entry),
            )
        });
        let session_key = key;
        let key = key.as_bytes().as_slice();
        let mut conn = self.conn().await?;
        let outcome = match (current, row) {
            (Some(current), Some((version, expires_at, owner, data))) => {
                sqlx::query(&self.sql.update)
                    .bind(key)
                    .bind(version_column(current))
                    .bind(version)
                    .bind(expires_at)
                    .bind(owner)
                    .bind(data)
                    .bind(now)
                    .execute(&mut *conn)
                    .await
                    .map(|done| done.rows_affected() == 1)
            }
            (None, Some((version, expires_at, owner, data))) => sqlx::query(&self.sql.create)
                .bind(key)
                .bind(version)
                .bind(expires_at)
                .bind(owner)
                .bind(data)
                .bind(now)
                .execute(&mut *conn)
                .await
                .map(|done| done.rows_affected() == 1),
            (Some(current), None) => sqlx::query(&self.sql.delete)
                .bind(key)
                .bind(version_column(current))
                .bind(now)
                .execute(&mut *conn)
                .await
                .map(|done| done.rows_affected() == 1),
            (None, None) => {
                sqlx::query_scalar(&self.sql.clear_ended)
                    .bind(key)
                    .bind(now)
                    .fetch_one(&mut *conn)
                    .await
            }
        };
        conn.finish(&outcome);
        let wrote = outcome.map_err(db_error)?;
        if wrote
            && (current.is_some() || written.is_some())
            && let Some(replicas) = &self.replicas
        {
            // Until every replica replayed it, this process's reads of `key` need this write.
            replicas.wrote(session_key, written);
        }
        Ok(wrote)
    }

    async fn scan(
        &self,
        cursor: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<ScanPage, StoreError> {
        let after = sql::after_key(cursor, "postgres")?;
        let limit = limit.clamp(1, 1 << 20);
        let mut conn = self.conn().await?;
        let outcome = sqlx::query_as(&self.sql.scan)
            .bind(after)
            .bind(millis(self.clock.now()))
            .bind(limit as i64)
            .fetch_all(&mut *conn)
            .await;
        conn.finish(&outcome);
        let rows: Vec<(Vec<u8>, i64, Vec<u8>)> = outcome.map_err(db_error)?;
        let rows = rows
            .into_iter()
            .map(|(key, version, data)| (key, Some(version), Ok(data)))
            .collect();
        Ok(sql::page_of_rows(rows, limit, "postgres"))
    }

    /// Removes the ended rows in batches; rows a write holds locked are left for the next
    /// sweep.
    async fn delete_expired(&self) -> Result<u64, StoreError> {
        let (mut total, mut sessions) = (0, 0);
        loop {
            let now = millis(self.clock.now());
            let mut conn = self.conn().await?;
            // Each removed row says whether it held a session (not a login's mark).
            let outcome = sqlx::query_scalar::<_, bool>(&self.sql.delete_expired)
                .bind(now)
                .bind(PAGE)
                .fetch_all(&mut *conn)
                .await;
            conn.finish(&outcome);
            let kinds = outcome.map_err(db_error)?;
            let removed = kinds.len() as u64;
            total += removed;
            sessions += kinds.into_iter().filter(|was_session| *was_session).count() as u64;
            if removed < PAGE.unsigned_abs() {
                crate::metrics::expired_swept(sessions);
                return Ok(total);
            }
        }
    }

    fn name(&self) -> &'static str {
        "postgres"
    }

    /// One count on the expiry index; live sessions only (an entry's kind is its blob's tenth
    /// byte: `1` a session, `2` a login's forwarding mark, plus `0x10` when bound to its key).
    async fn count_live(&self) -> Result<u64, StoreError> {
        let now = millis(self.clock.now());
        let count = format!(
            "SELECT count(*) FROM {} WHERE expires_at > $1 AND {SESSION_ROW}",
            self.sql.table.quoted("")
        );
        let mut conn = self.conn().await?;
        let outcome = sqlx::query_scalar::<_, i64>(&count)
            .bind(now)
            .fetch_one(&mut *conn)
            .await;
        conn.finish(&outcome);
        Ok(outcome.map_err(db_error)?.unsigned_abs())
    }

    async fn has_ended(&self, key: &SessionKey) -> Result<bool, StoreError> {
        let now = millis(self.clock.now());
        let ended = format!(
            "SELECT count(*) FROM {} WHERE key = $1 AND expires_at <= $2 AND {SESSION_ROW}",
            self.sql.table.quoted("")
        );
        let mut conn = self.conn().await?;
        let outcome = sqlx::query_scalar::<_, i64>(&ended)
            .bind(&key.as_bytes()[..])
            .bind(now)
            .fetch_one(&mut *conn)
            .await;
        conn.finish(&outcome);
        Ok(outcome.map_err(db_error)? > 0)
    }

    async fn owned_by(&self, owner: &str) -> Result<Vec<(SessionKey, Entry)>, StoreError> {
        Ok(self.owned_entries(owner).await?.entries)
    }

    /// The owner's rows; a row that does not decode is reported beside them with its `version`
    /// column (so a revocation can end it), not an error.
    async fn owned_entries(&self, owner: &str) -> Result<OwnedEntries, StoreError> {
        let now = millis(self.clock.now());
        let mut conn = self.conn().await?;
        let outcome = sqlx::query_as(&self.sql.owned_by)
            .bind(owner)
            .bind(now)
            .fetch_all(&mut *conn)
            .await;
        conn.finish(&outcome);
        let rows: Vec<(Vec<u8>, i64, Vec<u8>)> = outcome.map_err(db_error)?;
        let mut found = OwnedEntries::default();
        for (key, version, data) in rows {
            let Ok(key) = key_of(&key) else {
                tracing::warn!(target: "sessions::store", store = "postgres", "a row whose key is not 32 bytes is left out of an owner's sessions");
                continue;
            };
            match entry_of_row(&key, version, data) {
                Ok(entry) => found.entries.push((key, entry)),
                Err(err) => found.unreadable.push((key, err)),
            }
        }
        Ok(found)
    }
}
