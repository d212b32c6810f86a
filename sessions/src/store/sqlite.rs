//! [`SqliteStore`]: sessions in a SQLite database (feature `sqlite`).

mod one_batch;
mod queries;
mod write;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::codec::Format;
use crate::expiry::{Clock, Deadline, SystemClock};
use crate::id::SessionKey;
use crate::record::{Changeset, Record};
use crate::registry::MigrationReport;
use crate::schema::Session;
use crate::store::sql::{
    self, Commit, DEFAULT_TABLE, Migrated, PAGE, Rewrite, Scanned, TableNameError, Tables, WriteTx,
    db_error, millis,
};
use crate::store::{SaveOutcome, SessionStore, StoreError, Stored};

use self::queries::Queries;

/// How long a connection waits for another process's write lock before it gives up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Sessions in a SQLite database: a file (embedded, nothing to run) or memory.
///
/// Each field is a row of its own (see [the schema](#schema)), so a save writes only the fields
/// and slots that changed, in one transaction, and two concurrent requests that change
/// different fields of one session both survive. Saves only update: a session deleted or
/// expired meanwhile is not re-created. Creates never overwrite a live session.
///
/// [`open`](SqliteStore::open) turns on WAL, `synchronous=NORMAL` and a 5 s busy timeout (the
/// default rollback journal caps writes near 400 per second). Writers of one store take turns
/// in the process (a fair queue) before they take SQLite's write lock (`BEGIN IMMEDIATE`), so
/// they never spin on it; readers run beside them.
///
/// Call [`migrate`](SqliteStore::migrate) once at start-up to create the tables.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use sessions::prelude::*;
/// use sessions::SqliteStore;
///
/// #[derive(Session, Default)]
/// struct Cart { items: Vec<String> }
///
/// # let dir = std::env::temp_dir().join(format!("sessions-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// # let path = dir.join("sessions.db");
/// let store = SqliteStore::open(&path).await?;
/// store.migrate().await?;
/// let layer = SessionLayer::new(store).register::<Cart>();
/// # let _ = layer;
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), sessions::StoreError>(())
/// # }).unwrap();
/// ```
///
/// # Schema
///
/// With the default table name `sessions` ([`table_name`](SqliteStore::table_name) changes the
/// prefix of all three):
///
/// ```sql
/// CREATE TABLE "sessions" (key TEXT PRIMARY KEY, created_at INTEGER, expires_at INTEGER) WITHOUT ROWID;
/// CREATE TABLE "sessions_slots" (id INTEGER PRIMARY KEY, key TEXT, slot TEXT, type_tag TEXT,
///     version INTEGER, format_tag INTEGER, revision INTEGER DEFAULT 1, UNIQUE (key, slot));
/// CREATE TABLE "sessions_fields" (id INTEGER PRIMARY KEY, key TEXT, slot TEXT, field TEXT,
///     bytes BLOB, UNIQUE (key, slot, field));
/// ```
///
/// `key` is the [`SessionKey`] (a SHA-256 of the id), never the id; times are milliseconds
/// since the Unix epoch; `id` keeps slots and fields in the order they were first written;
/// `revision` counts the saves that changed the slot ([`Slot::revision`](crate::Slot::revision)).
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    sql: Arc<Queries>,
    clock: Arc<dyn Clock>,
    /// Writers take turns here before they take SQLite's write lock.
    writer: Arc<tokio::sync::Mutex<()>>,
}

impl SqliteStore {
    /// Opens (and creates, if missing) the database file at `path`, in WAL mode with
    /// `synchronous=NORMAL`, a 5 s busy timeout and foreign keys on.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::StoreError> {
    /// let store = sessions::SqliteStore::open("sessions.db").await?;
    /// store.migrate().await?;
    /// # Ok(()) }
    /// ```
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        // A connection to a file cannot drop: no ping before each use (it is a round trip to
        // sqlx's worker thread on every load and save).
        let pool = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(StoreError::backend)?;
        Ok(Self::from_pool(pool))
    }

    /// A database in this process's memory, lost when the store is dropped: for tests.
    ///
    /// It lives on one connection, which is never closed while the store lives.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = sessions::SqliteStore::in_memory().await?;
    /// store.migrate().await?;
    /// # Ok::<(), sessions::StoreError>(())
    /// # }).unwrap();
    /// ```
    pub async fn in_memory() -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .in_memory(true)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(StoreError::backend)?;
        Ok(Self::from_pool(pool))
    }

    /// A store on a pool you configured. The pool's settings are used as they are (sqlx's
    /// default is the rollback journal: consider WAL).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use sqlx::sqlite::SqlitePoolOptions;
    /// let pool = SqlitePoolOptions::new().max_connections(1).connect("sqlite::memory:").await?;
    /// let store = sessions::SqliteStore::from_pool(pool);
    /// # Ok::<(), sqlx::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn from_pool(pool: SqlitePool) -> Self {
        let tables = match Tables::new(DEFAULT_TABLE) {
            Ok(tables) => tables,
            Err(err) => unreachable!("the default table name is valid: {err}"),
        };
        Self {
            pool,
            sql: Arc::new(Queries::new(tables)),
            clock: Arc::new(SystemClock),
            writer: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Keeps sessions in tables named after `name` (`name`, `name_slots`, `name_fields`)
    /// instead of `sessions`.
    ///
    /// # Panics
    /// When `name` is not a plain identifier (see [`TableNameError`]): a mistake in the app's
    /// setup. [`try_table_name`](Self::try_table_name) returns it instead.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = sessions::SqliteStore::in_memory().await?.table_name("shop_sessions");
    /// assert_eq!(store.table(), "shop_sessions");
    /// # Ok::<(), sessions::StoreError>(())
    /// # }).unwrap();
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
    /// let store = sessions::SqliteStore::in_memory().await?;
    /// assert!(store.clone().try_table_name("app_sessions").is_ok());
    /// assert!(store.try_table_name("drop table").is_err());
    /// # Ok::<(), sessions::StoreError>(())
    /// # }).unwrap();
    /// ```
    pub fn try_table_name(mut self, name: &str) -> Result<Self, TableNameError> {
        self.sql = Arc::new(Queries::new(Tables::new(name)?));
        Ok(self)
    }

    /// The clock expiry is checked with (a [`ManualClock`](crate::ManualClock) in tests; the
    /// system clock by default).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = sessions::SqliteStore::in_memory().await?.with_clock(sessions::ManualClock::new());
    /// # Ok::<(), sessions::StoreError>(())
    /// # }).unwrap();
    /// ```
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The base table name.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// assert_eq!(sessions::SqliteStore::in_memory().await?.table(), "sessions");
    /// # Ok::<(), sessions::StoreError>(())
    /// # }).unwrap();
    /// ```
    pub fn table(&self) -> &str {
        &self.sql.tables.base
    }

    /// The connection pool.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = sessions::SqliteStore::in_memory().await?;
    /// store.pool().close().await;
    /// # Ok::<(), sessions::StoreError>(())
    /// # }).unwrap();
    /// ```
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Creates the tables and indexes if they do not exist, and brings tables made by an
    /// earlier release up to date (slots made before revisions existed start at revision 1);
    /// running it again changes nothing.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = sessions::SqliteStore::in_memory().await?;
    /// store.migrate().await?;
    /// store.migrate().await?;
    /// # Ok::<(), sessions::StoreError>(())
    /// # }).unwrap();
    /// ```
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut write = self.begin_write().await?;
        let result = async {
            for statement in &self.sql.schema {
                sqlx::query(statement)
                    .execute(&mut *write.tx)
                    .await
                    .map_err(db_error)?;
            }
            let has_revision: i64 = sqlx::query_scalar(&self.sql.has_revision)
                .bind(&self.sql.slots_table)
                .fetch_one(&mut *write.tx)
                .await
                .map_err(db_error)?;
            if has_revision == 0 {
                sqlx::query(&self.sql.add_revision)
                    .execute(&mut *write.tx)
                    .await
                    .map_err(db_error)?;
            }
            Ok(Commit::Yes(()))
        }
        .await;
        write.finish(result).await
    }

    /// Removes every expired session now; returns how many. Expired sessions are invisible
    /// anyway; this reclaims their space. See also [`spawn_sweeper`](Self::spawn_sweeper).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = sessions::SqliteStore::in_memory().await?;
    /// store.migrate().await?;
    /// assert_eq!(store.delete_expired().await?, 0);
    /// # Ok::<(), sessions::StoreError>(())
    /// # }).unwrap();
    /// ```
    pub async fn delete_expired(&self) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            // One batch per transaction, so requests' writes get the lock in between.
            let now = millis(self.clock.now());
            let mut write = self.begin_write().await?;
            let result = async {
                for statement in &self.sql.delete_expired_children {
                    sqlx::query(statement)
                        .bind(now)
                        .bind(PAGE)
                        .execute(&mut *write.tx)
                        .await
                        .map_err(db_error)?;
                }
                let removed = sqlx::query(&self.sql.delete_expired)
                    .bind(now)
                    .bind(PAGE)
                    .execute(&mut *write.tx)
                    .await
                    .map_err(db_error)?
                    .rows_affected();
                Ok(Commit::Yes(removed))
            }
            .await;
            let removed = write.finish(result).await?;
            total += removed;
            if removed < PAGE as u64 {
                return Ok(total);
            }
        }
    }

    /// Runs [`delete_expired`](Self::delete_expired) every `interval` (at least 1 ms) in a
    /// background task, until the pool is closed or the handle is aborted. Failures are logged
    /// with `tracing` and retried at the next tick; the task never panics. Call it inside a
    /// Tokio runtime.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = sessions::SqliteStore::in_memory().await?;
    /// store.migrate().await?;
    /// let sweeper = store.spawn_sweeper(std::time::Duration::from_secs(300));
    /// sweeper.abort();
    /// # Ok::<(), sessions::StoreError>(())
    /// # }).unwrap();
    /// ```
    pub fn spawn_sweeper(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        let pool = self.pool.clone();
        sql::spawn_sweeper(
            "sqlite",
            interval,
            move || pool.is_closed(),
            move || {
                let store = store.clone();
                async move { store.delete_expired().await }
            },
        )
    }

    /// Rewrites every stored slot of `T` older than `T::VERSION` in the current version, now,
    /// in `format` (instead of on each session's next load). Each slot is read, migrated
    /// through the `migrate_from` chain and written back in one transaction holding the write
    /// lock, so a request's change cannot slip in between and be lost. Slots of a newer
    /// version or that do not decode are counted as failed and left as they are; expired
    /// sessions are skipped.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
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
    /// let store = sessions::SqliteStore::in_memory().await?;
    /// store.migrate().await?;
    /// let report = store.migrate_all::<Cart>(Format::Json).await?;
    /// assert_eq!(report.total_migrated(), 0);
    /// # Ok::<(), sessions::StoreError>(())
    /// # }).unwrap();
    /// ```
    pub async fn migrate_all<T: Session>(
        &self,
        format: Format,
    ) -> Result<MigrationReport, StoreError> {
        sql::migrate_all::<T, _, _, _, _>(
            |after| self.scan::<T>(after),
            |key| self.migrate_one::<T>(key, format),
        )
        .await
    }

    async fn scan<T: Session>(&self, after: String) -> Result<Vec<Scanned>, StoreError> {
        let rows = sqlx::query(&self.sql.scan_slots)
            .bind(T::NAME)
            .bind(after)
            .bind(millis(self.clock.now()))
            .bind(PAGE)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        sql::scanned(&rows)
    }

    async fn migrate_one<T: Session>(
        &self,
        key: String,
        format: Format,
    ) -> Result<Migrated, StoreError> {
        let now = millis(self.clock.now());
        let mut write = self.begin_write().await?;
        let result = self.migrate_in::<T>(&mut write, &key, now, format).await;
        write.finish(result).await
    }

    async fn migrate_in<T: Session>(
        &self,
        write: &mut write::Write,
        key: &str,
        now: i64,
        format: Format,
    ) -> Result<Commit<Migrated>, StoreError> {
        if !write.statements(&self.sql).lock_live(key, now).await? {
            return Ok(Commit::No(Migrated::Gone));
        }
        let rows = sqlx::query(&self.sql.load_slot)
            .bind(key)
            .bind(T::NAME)
            .fetch_all(&mut *write.tx)
            .await
            .map_err(db_error)?;
        let Some(slot) = sql::slots_of(&rows, Some(T::NAME), sql::slot_row)?.pop() else {
            return Ok(Commit::No(Migrated::Gone));
        };
        match sql::rewrite::<T>(key, &slot, format) {
            Rewrite::Keep(outcome) => Ok(Commit::No(outcome)),
            Rewrite::Write { from, slot } => {
                // A rewrite changes the slot: its revision moves one up.
                write
                    .statements(&self.sql)
                    .put(key, &[&slot], false)
                    .await?;
                Ok(Commit::Yes(Migrated::From(from)))
            }
        }
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("table", &self.sql.tables.base)
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl SessionStore for SqliteStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<Stored>, StoreError> {
        let rows = sqlx::query(&self.sql.load)
            .bind(key.as_str())
            .bind(millis(self.clock.now()))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        Ok(Some(Stored {
            deadline: sql::deadline_of(first)?,
            record: sql::record_of(sql::slots_of(&rows, None, sql::slot_row)?),
        }))
    }

    async fn create(
        &self,
        key: &SessionKey,
        record: &Record,
        deadline: Deadline,
    ) -> Result<(), StoreError> {
        let now = millis(self.clock.now());
        let mut write = self.begin_write().await?;
        let mut tx = write.statements(&self.sql);
        let result = sql::create(&mut tx, key.as_str(), record, deadline, now).await;
        write.finish(result).await
    }

    async fn save(
        &self,
        key: &SessionKey,
        changes: &Changeset,
        deadline: Deadline,
    ) -> Result<SaveOutcome, StoreError> {
        let now = millis(self.clock.now());
        if let Some(update) = sql::field_update(changes)
            && let Some(outcome) = self
                .save_in_one_batch(key.as_str(), update, deadline, now)
                .await?
        {
            return Ok(outcome);
        }
        let mut write = self.begin_write().await?;
        let mut tx = write.statements(&self.sql);
        let result = sql::save(&mut tx, key.as_str(), changes, deadline, now).await;
        write.finish(result).await
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), StoreError> {
        let mut write = self.begin_write().await?;
        let result = write.statements(&self.sql).delete(key.as_str()).await;
        write.finish(result.map(Commit::Yes)).await
    }

    /// Moves the session in one transaction under the write lock: a save to `from` either
    /// committed before (and is carried over) or runs after and finds `from` gone.
    async fn cycle(
        &self,
        from: &SessionKey,
        to: &SessionKey,
        changes: &Changeset,
        deadline: Deadline,
    ) -> Result<SaveOutcome, StoreError> {
        let now = millis(self.clock.now());
        let mut write = self.begin_write().await?;
        let mut tx = write.statements(&self.sql);
        let result = sql::cycle(&mut tx, from.as_str(), to.as_str(), changes, deadline, now).await;
        write.finish(result).await
    }
}
