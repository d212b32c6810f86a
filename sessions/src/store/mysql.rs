//! [`MySqlStore`]: sessions in MySQL 8 or MariaDB 10.11 (feature `mysql`).

mod held;
mod queries;

use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection;
use sqlx::mysql::{MySqlPool, MySqlPoolOptions};

use crate::codec::Format;
use crate::expiry::{Clock, SystemClock};
use crate::id::SessionKey;
use crate::registry::MigrationReport;
use crate::schema::Session;
use crate::store::upkeep::sql::{self, entry_of_row, key_of, millis, version_column};
use crate::store::upkeep::{self, ScanCursor, ScanPage};
use crate::store::{Entry, OwnedEntries, SessionStore, StoreError, TableNameError, blob};

/// Runs one statement on a connection of the store ([`Held`]): `leased!(self, conn =>
/// query.execute(conn))` is its result, with a database error as a store error.
macro_rules! leased {
    ($store:expr, $conn:ident => $call:expr) => {
        leased_raw!($store, $conn => $call).map_err(sql::db_error)
    };
}

/// [`leased!`] keeping sqlx's error (for a caller that looks at it).
macro_rules! leased_raw {
    ($store:expr, $conn:ident => $call:expr) => {{
        let mut lease = $store.held.lease().await?;
        let $conn = &mut **lease.conn();
        let outcome = $call.await;
        lease.finish(&outcome);
        outcome
    }};
}

use self::held::Held;
use self::queries::{DEFAULT_TABLE, PAGE, Queries};

/// Sessions in MySQL 8 or MariaDB 10.11: one row per session, every call one statement.
///
/// A row holds the whole session, encoded ([`blob`]), beside the columns the store searches
/// by: the key, the entry's version, when it ends, and its owner (see [the schema](#schema)).
/// A load is one `SELECT` by primary key; a save is one `UPDATE` that writes only over the
/// version the request loaded (compare-and-swap: InnoDB locks the row, so of two saves over
/// one version exactly one matches), in autocommit: one round trip. A create is one `INSERT`
/// (a second statement only when the key is taken by an ended row, which it replaces). Which
/// fields a request changed, merging concurrent changes, never re-creating a destroyed
/// session, moving it on `cycle_id()`: all of that is the crate's, built on these statements
/// (see [`SessionStore`]).
///
/// Expiry is decided by this store's [clock](MySqlStore::with_clock), not the server's. Ended
/// rows are invisible at once; [`delete_expired`](MySqlStore::delete_expired) or
/// [`spawn_sweeper`](MySqlStore::spawn_sweeper) reclaims them.
///
/// When the server is unreachable a call fails with [`StoreError::Backend`] once the pool's
/// acquire timeout ([`DEFAULT_ACQUIRE_TIMEOUT`](MySqlStore::DEFAULT_ACQUIRE_TIMEOUT), 2 s)
/// passes (the layer answers 503), and the store works again as soon as the server does.
///
/// ```no_run
/// use sessions::prelude::*;
/// use sessions::MySqlStore;
///
/// #[derive(Session, Default)]
/// #[session(name = "cart")]
/// struct Cart { items: Vec<String> }
///
/// # async fn demo() -> Result<(), sessions::error::StoreError> {
/// let store = MySqlStore::connect("mysql://root@127.0.0.1:3306/app").await?;
/// store.migrate().await?;
/// let layer = SessionLayer::new(store).register::<Cart>();
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
///
/// # Schema
///
/// With the default table name `sessions` ([`table_name`](MySqlStore::table_name) changes it
/// and the index names):
///
/// ```sql
/// CREATE TABLE IF NOT EXISTS `sessions` (
///     `key` BINARY(32) NOT NULL,    -- the SessionKey's 32 bytes (a SHA-256 of the id), never the id
///     version BIGINT NOT NULL,      -- the entry's version, which every write compares
///     expires_at BIGINT NOT NULL,   -- ms since the Unix epoch
///     owner VARBINARY(1024) NULL,   -- the session's owner, compared byte for byte
///     data MEDIUMBLOB NOT NULL,     -- the entry (sessions::store::blob)
///     PRIMARY KEY (`key`),
///     INDEX `sessions_by_expiry` (expires_at),
///     INDEX `sessions_by_owner` (owner)
/// ) ENGINE = InnoDB;
/// ```
///
/// The owner column is binary so that owners compare exactly (a case-insensitive collation
/// would list `Alice`'s sessions for `alice`); an owner longer than 1024 bytes cannot be
/// stored (the write fails with [`StoreError::Backend`]). Most saves change `version` and
/// `data` alone, which no secondary index covers, so InnoDB updates the row in place.
#[derive(Clone)]
pub struct MySqlStore {
    held: Arc<Held>,
    sql: Arc<Queries>,
    clock: Arc<dyn Clock>,
}

impl MySqlStore {
    /// How long a pool made by [`connect`](Self::connect) (or from
    /// [`pool_options`](Self::pool_options)) waits for a connection before the call fails:
    /// 2 s.
    ///
    /// ```
    /// assert_eq!(sessions::MySqlStore::DEFAULT_ACQUIRE_TIMEOUT.as_secs(), 2);
    /// ```
    pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

    /// A connection that sat idle this long is checked (a round trip) before a call uses it;
    /// under load none is idle that long, and no call pays for the check.
    const CHECK_IDLE_AFTER: Duration = Duration::from_secs(1);

    /// Connects a pool ([`pool_options`](Self::pool_options): 10 connections, a 2 s acquire
    /// timeout) to `url` (`mysql://user:password@host:port/database`).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::error::StoreError> {
    /// let store = sessions::MySqlStore::connect("mysql://root@127.0.0.1:3306/test").await?;
    /// store.migrate().await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, Self::pool_options()).await
    }

    /// The pool settings [`connect`](Self::connect) uses: sqlx's defaults (10 connections)
    /// with an acquire timeout of [`DEFAULT_ACQUIRE_TIMEOUT`](Self::DEFAULT_ACQUIRE_TIMEOUT),
    /// and connections checked before use only after they sat idle for a second (sqlx's
    /// default checks every one, a round trip per call).
    ///
    /// ```
    /// let options = sessions::MySqlStore::pool_options();
    /// assert!(!options.get_test_before_acquire());
    /// ```
    pub fn pool_options() -> MySqlPoolOptions {
        MySqlPoolOptions::new()
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
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::error::StoreError> {
    /// use sessions::MySqlStore;
    /// let options = MySqlStore::pool_options().max_connections(20);
    /// let store = MySqlStore::connect_with("mysql://root@127.0.0.1:3306/test", options).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect_with(url: &str, options: MySqlPoolOptions) -> Result<Self, StoreError> {
        let pool = options.connect(url).await.map_err(StoreError::backend)?;
        Ok(Self::from_pool(pool))
    }

    /// A store on a pool you configured (size, timeouts, TLS); start from
    /// [`pool_options`](Self::pool_options) to keep its settings.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let pool = sessions::MySqlStore::pool_options().connect_lazy("mysql://root@127.0.0.1/app").unwrap();
    /// let store = sessions::MySqlStore::from_pool(pool);
    /// assert_eq!(store.table(), "sessions");
    /// # });
    /// ```
    pub fn from_pool(pool: MySqlPool) -> Self {
        let sql = match Queries::new(DEFAULT_TABLE) {
            Ok(sql) => sql,
            Err(err) => unreachable!("the default table name is valid: {err}"),
        };
        Self {
            held: Arc::new(Held::new(pool)),
            sql: Arc::new(sql),
            clock: Arc::new(SystemClock),
        }
    }

    /// Keeps sessions in the table `name` instead of `sessions`.
    ///
    /// # Panics
    /// When `name` is not a plain identifier (see [`TableNameError`]): a mistake in the app's
    /// setup. [`try_table_name`](Self::try_table_name) returns it instead.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let pool = sessions::MySqlStore::pool_options().connect_lazy("mysql://root@127.0.0.1/app").unwrap();
    /// let store = sessions::MySqlStore::from_pool(pool).table_name("shop_sessions");
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
    /// let pool = sessions::MySqlStore::pool_options().connect_lazy("mysql://root@127.0.0.1/app").unwrap();
    /// assert!(sessions::MySqlStore::from_pool(pool).try_table_name("app-sessions").is_err());
    /// # });
    /// ```
    pub fn try_table_name(mut self, name: &str) -> Result<Self, TableNameError> {
        self.sql = Arc::new(Queries::new(name)?);
        Ok(self)
    }

    /// The clock expiry is checked with (a [`ManualClock`](crate::clock::ManualClock) in
    /// tests; the system clock by default).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let pool = sessions::MySqlStore::pool_options().connect_lazy("mysql://root@127.0.0.1/app").unwrap();
    /// let store = sessions::MySqlStore::from_pool(pool).with_clock(sessions::clock::ManualClock::new());
    /// # let _ = store;
    /// # });
    /// ```
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The table name.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let pool = sessions::MySqlStore::pool_options().connect_lazy("mysql://root@127.0.0.1/app").unwrap();
    /// assert_eq!(sessions::MySqlStore::from_pool(pool).table(), "sessions");
    /// # });
    /// ```
    pub fn table(&self) -> &str {
        &self.sql.table
    }

    /// The connection pool.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::error::StoreError> {
    /// let store = sessions::MySqlStore::connect("mysql://root@127.0.0.1:3306/test").await?;
    /// store.pool().close().await;
    /// # Ok(()) }
    /// ```
    pub fn pool(&self) -> &MySqlPool {
        self.held.pool()
    }

    /// Creates the table and its indexes if they do not exist. Running it again changes
    /// nothing.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::error::StoreError> {
    /// let store = sessions::MySqlStore::connect("mysql://root@127.0.0.1:3306/test").await?;
    /// store.migrate().await?;
    /// store.migrate().await?;
    /// # Ok(()) }
    /// ```
    pub async fn migrate(&self) -> Result<(), StoreError> {
        leased!(self, conn => sqlx::query(&self.sql.schema)
            .execute(conn))?;
        Ok(())
    }

    /// Removes every ended session now, in batches; returns how many. Ended sessions are
    /// invisible anyway; this reclaims their space. See also
    /// [`spawn_sweeper`](Self::spawn_sweeper).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::error::StoreError> {
    /// let store = sessions::MySqlStore::connect("mysql://root@127.0.0.1:3306/test").await?;
    /// let removed = store.delete_expired().await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete_expired(&self) -> Result<u64, StoreError> {
        SessionStore::delete_expired(self).await
    }

    /// Runs [`delete_expired`](Self::delete_expired) every `interval` (at least 1 ms) in a
    /// background task, until the pool is closed or the handle is aborted (see
    /// [`upkeep::spawn_sweeper`]). Call it inside a Tokio runtime.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::error::StoreError> {
    /// let store = sessions::MySqlStore::connect("mysql://root@127.0.0.1:3306/test").await?;
    /// let sweeper = store.spawn_sweeper(std::time::Duration::from_secs(300));
    /// # Ok(()) }
    /// ```
    pub fn spawn_sweeper(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        upkeep::spawn_sweeper("mysql", interval, move || {
            (!store.pool().is_closed()).then(|| store.clone())
        })
    }

    /// Rewrites every stored slot of `T` older than `T::VERSION` in the current version, now,
    /// in `format` ([`upkeep::migrate_all`]: one compare-and-swap per session, so a request's
    /// concurrent change is never lost). Slots that cannot be migrated are counted as failed
    /// and left as they are.
    ///
    /// ```no_run
    /// use sessions::prelude::*;
    /// use sessions::Format;
    ///
    /// #[derive(Session, Default)]
    /// #[session(name = "cart")]
    /// struct Cart { n: u64 }
    ///
    /// # async fn demo() -> Result<(), sessions::error::StoreError> {
    /// let store = sessions::MySqlStore::connect("mysql://root@127.0.0.1:3306/test").await?;
    /// let report = store.migrate_all::<Cart>(Format::Json).await?;
    /// println!("migrated {} carts", report.total_migrated());
    /// # Ok(()) }
    /// ```
    pub async fn migrate_all<T: Session>(
        &self,
        format: Format,
    ) -> Result<MigrationReport, StoreError> {
        upkeep::migrate_all::<T, Self>(self, format).await
    }

    /// `(version, expires_at, owner, data)` as a write binds them.
    fn row(key: &SessionKey, entry: &Entry) -> (i64, i64, Option<Vec<u8>>, Vec<u8>) {
        (
            version_column(entry.version()),
            millis(entry.expires_at()),
            entry.owner().map(|owner| owner.as_bytes().to_vec()),
            blob::encode_at(key, entry),
        )
    }

    /// Writes `entry` under `key` unless a live row is stored there.
    async fn create(&self, key: &SessionKey, entry: &Entry, now: i64) -> Result<bool, StoreError> {
        let (version, expires_at, owner, data) = Self::row(key, entry);
        let inserted = leased_raw!(self, conn => sqlx::query(&self.sql.insert)
            .bind(key.as_bytes().as_slice())
            .bind(version)
            .bind(expires_at)
            .bind(&owner)
            .bind(&data)
            .execute(conn));
        match inserted {
            Ok(done) => Ok(done.rows_affected() == 1),
            Err(sqlx::Error::Database(err)) if err.is_unique_violation() => {
                // The key is taken: by an ended row (replaced), or a live one (nothing written).
                let replaced = leased!(self, conn => sqlx::query(&self.sql.replace_ended)
                    .bind(version)
                    .bind(expires_at)
                    .bind(&owner)
                    .bind(&data)
                    .bind(key.as_bytes().as_slice())
                    .bind(now)
                    .execute(conn))?;
                Ok(replaced.rows_affected() == 1)
            }
            Err(err) => Err(sql::db_error(err)),
        }
    }
}

impl std::fmt::Debug for MySqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MySqlStore")
            .field("table", &self.sql.table)
            .field("pool", self.pool())
            .finish_non_exhaustive()
    }
}

/// A row holding a session, not a login's forwarding mark: an entry's kind is its blob's tenth
/// byte (`1` a session, `2` a mark, plus `0x10` when bound to its key; see `store::blob`).
const SESSION_ROW: &str = "(ASCII(SUBSTRING(data, 10, 1)) & 15) = 1";

#[async_trait::async_trait]
impl SessionStore for MySqlStore {
    fn name(&self) -> &'static str {
        "mysql"
    }

    async fn load(&self, key: &SessionKey) -> Result<Option<Entry>, StoreError> {
        let row: Option<(i64, Vec<u8>)> = leased!(self, conn => sqlx::query_as(&self.sql.load)
            .bind(key.as_bytes().as_slice())
            .bind(millis(self.clock.now()))
            .fetch_optional(conn))?;
        match row {
            Some((version, data)) => Ok(Some(entry_of_row(key, Some(version), Ok(data))?)),
            None => Ok(None),
        }
    }

    async fn swap(
        &self,
        key: &SessionKey,
        current: Option<u64>,
        new: Option<Entry>,
    ) -> Result<bool, StoreError> {
        let now = millis(self.clock.now());
        let written = match (current, new) {
            (None, Some(entry)) => return self.create(key, &entry, now).await,
            (Some(current), Some(entry)) => {
                let (version, expires_at, owner, data) = Self::row(key, &entry);
                // The client asks for rows matched, not changed (sqlx sets CLIENT_FOUND_ROWS).
                leased_raw!(self, conn => sqlx::query(&self.sql.update)
                    .bind(version)
                    .bind(expires_at)
                    .bind(owner)
                    .bind(data)
                    .bind(key.as_bytes().as_slice())
                    .bind(version_column(current))
                    .bind(now)
                    .execute(conn))
            }
            (Some(current), None) => {
                leased_raw!(self, conn => sqlx::query(&self.sql.delete)
                    .bind(key.as_bytes().as_slice())
                    .bind(version_column(current))
                    .bind(now)
                    .execute(conn))
            }
            (None, None) => {
                // Nothing live to delete: it "wrote" iff nothing live is there.
                let live: Option<i32> = leased!(self, conn => sqlx::query_scalar(&self.sql.live)
                    .bind(key.as_bytes().as_slice())
                    .bind(now)
                    .fetch_optional(conn))?;
                return Ok(live.is_none());
            }
        };
        Ok(written.map_err(sql::db_error)?.rows_affected() == 1)
    }

    async fn owned_by(&self, owner: &str) -> Result<Vec<(SessionKey, Entry)>, StoreError> {
        Ok(self.owned_entries(owner).await?.entries)
    }

    /// The owner's rows; a row that does not decode is reported beside them with its
    /// `version` column (so a revocation can end it), not an error.
    async fn owned_entries(&self, owner: &str) -> Result<OwnedEntries, StoreError> {
        let rows: Vec<(Vec<u8>, i64, Vec<u8>)> = leased!(self, conn => sqlx::query_as(&self.sql.owned_by)
            .bind(owner.as_bytes())
            .bind(millis(self.clock.now()))
            .fetch_all(conn))?;
        let mut found = OwnedEntries::default();
        for (key, version, data) in rows {
            let Ok(key) = key_of(&key) else {
                tracing::warn!(target: "sessions::store", store = "mysql", "a row whose key is not 32 bytes is left out of an owner's sessions");
                continue;
            };
            match entry_of_row(&key, Some(version), Ok(data)) {
                Ok(entry) => found.entries.push((key, entry)),
                Err(err) => found.unreadable.push((key, err)),
            }
        }
        Ok(found)
    }

    async fn scan(
        &self,
        cursor: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<ScanPage, StoreError> {
        let after = sql::after_key(cursor, "mysql")?;
        let limit = limit.clamp(1, 1 << 20);
        let rows: Vec<(Vec<u8>, i64, Vec<u8>)> = leased!(self, conn => sqlx::query_as(&self.sql.scan)
            .bind(after)
            .bind(millis(self.clock.now()))
            .bind(limit as i64)
            .fetch_all(conn))?;
        let rows = rows
            .into_iter()
            .map(|(key, version, data)| (key, Some(version), Ok(data)))
            .collect();
        Ok(sql::page_of_rows(rows, limit, "mysql"))
    }

    /// Removes the ended rows a batch at a time (one statement each, so that requests' writes
    /// get their rows' locks in between).
    async fn delete_expired(&self) -> Result<u64, StoreError> {
        let now = millis(self.clock.now());
        // The sessions among the rows ended at `now` (not the forwarding marks logins leave),
        // for `sessions_expired_total`: counted before they go (MySQL has no `RETURNING`).
        let sessions = if crate::metrics::recording() {
            let count = format!(
                "SELECT COUNT(*) FROM `{}` WHERE expires_at <= ? AND {SESSION_ROW}",
                self.sql.table
            );
            let ended: i64 =
                leased!(self, conn => sqlx::query_scalar(&count).bind(now).fetch_one(conn))?;
            ended.unsigned_abs()
        } else {
            0
        };
        let mut total = 0;
        loop {
            let removed = leased!(self, conn => sqlx::query(&self.sql.delete_expired)
                .bind(now)
                .bind(PAGE)
                .execute(conn))?
            .rows_affected();
            total += removed;
            if removed < PAGE.unsigned_abs() {
                crate::metrics::expired_swept(sessions);
                return Ok(total);
            }
        }
    }

    /// One count on the expiry index; live sessions only.
    async fn count_live(&self) -> Result<u64, StoreError> {
        let count = format!(
            "SELECT COUNT(*) FROM `{}` WHERE expires_at > ? AND {SESSION_ROW}",
            self.sql.table
        );
        let now = millis(self.clock.now());
        let live: i64 =
            leased!(self, conn => sqlx::query_scalar(&count).bind(now).fetch_one(conn))?;
        Ok(live.unsigned_abs())
    }

    async fn has_ended(&self, key: &SessionKey) -> Result<bool, StoreError> {
        let ended = format!(
            "SELECT COUNT(*) FROM `{}` WHERE `key` = ? AND expires_at <= ? AND {SESSION_ROW}",
            self.sql.table
        );
        let now = millis(self.clock.now());
        let found: i64 = leased!(self, conn => sqlx::query_scalar(&ended)
            .bind(key.as_bytes().as_slice())
            .bind(now)
            .fetch_one(conn))?;
        Ok(found > 0)
    }
}
