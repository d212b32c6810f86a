//! [`PostgresStore`]: sessions in PostgreSQL (feature `postgres`).

mod one_statement;
mod queries;
mod write;

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};

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
use self::write::{PgTx, Tx};

/// Sessions in PostgreSQL.
///
/// Each field is a row of its own (see [the schema](#schema)), so a save writes only the fields
/// and slots that changed, in one transaction that first locks the session's row: two
/// concurrent requests that change different fields of one session both survive. Saves only
/// update: a session deleted or expired meanwhile is not re-created. Creates never overwrite
/// a live session (`ON CONFLICT DO NOTHING`).
///
/// When the server is unreachable, calls fail with [`StoreError::Backend`] once the pool's
/// acquire timeout passes ([`DEFAULT_ACQUIRE_TIMEOUT`](PostgresStore::DEFAULT_ACQUIRE_TIMEOUT),
/// 2 s, with [`connect`](PostgresStore::connect); [`connect_with`](PostgresStore::connect_with)
/// sets another; the layer answers 503), and the store works again as soon as the server
/// does: nothing to restart.
///
/// Call [`migrate`](PostgresStore::migrate) once at start-up to create the tables.
///
/// ```no_run
/// use sessions::prelude::*;
/// use sessions::PostgresStore;
///
/// #[derive(Session, Default)]
/// struct Cart { items: Vec<String> }
///
/// # async fn demo() -> Result<(), sessions::StoreError> {
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
/// the prefix of all three):
///
/// ```sql
/// CREATE TABLE "sessions" (key TEXT COLLATE "C" PRIMARY KEY, created_at BIGINT, expires_at BIGINT);
/// CREATE TABLE "sessions_slots" (key TEXT COLLATE "C" REFERENCES "sessions" ON DELETE CASCADE,
///     slot TEXT, pos BIGINT GENERATED ALWAYS AS IDENTITY, type_tag TEXT, version BIGINT,
///     format_tag SMALLINT, revision BIGINT DEFAULT 1, PRIMARY KEY (key, slot));
/// CREATE TABLE "sessions_fields" (key TEXT COLLATE "C", slot TEXT, field TEXT,
///     pos BIGINT GENERATED ALWAYS AS IDENTITY, bytes BYTEA, PRIMARY KEY (key, slot, field),
///     FOREIGN KEY (key, slot) REFERENCES "sessions_slots" ON DELETE CASCADE);
/// ```
///
/// `key` is the [`SessionKey`] (a SHA-256 of the id), never the id; times are milliseconds
/// since the Unix epoch, compared with this store's [clock](PostgresStore::with_clock), not
/// the server's; `pos` keeps slots and fields in the order they were first written; `revision`
/// counts the saves that changed the slot ([`Slot::revision`](crate::Slot::revision)).
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    sql: Arc<Queries>,
    clock: Arc<dyn Clock>,
}

impl PostgresStore {
    /// How long a pool made by [`connect`](Self::connect) (or from
    /// [`pool_options`](Self::pool_options)) waits for a connection before the call fails:
    /// 2 s.
    ///
    /// It bounds how long each request waits for its 503 while the server is unreachable
    /// (sqlx retries a refused connection until then). A healthy pool hands out a connection
    /// in well under a millisecond, and a session transaction holds one for a millisecond or
    /// two, so with 10 connections a request only waits 2 s behind thousands of others: under
    /// normal load nothing comes near it. Raise it for a small pool facing long bursts, lower
    /// it to fail faster.
    ///
    /// ```
    /// assert_eq!(sessions::PostgresStore::DEFAULT_ACQUIRE_TIMEOUT.as_secs(), 2);
    /// ```
    pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

    /// Connects a pool ([`pool_options`](Self::pool_options): 10 connections, a 2 s acquire
    /// timeout) to `url` (`postgres://user:password@host:port/database`).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::StoreError> {
    /// let store = sessions::PostgresStore::connect("postgres://postgres@127.0.0.1/app").await?;
    /// store.migrate().await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, Self::pool_options()).await
    }

    /// The pool settings [`connect`](Self::connect) uses: sqlx's defaults (10 connections)
    /// with an acquire timeout of [`DEFAULT_ACQUIRE_TIMEOUT`](Self::DEFAULT_ACQUIRE_TIMEOUT).
    /// Change what you need and pass them to [`connect_with`](Self::connect_with).
    ///
    /// ```
    /// use std::time::Duration;
    /// let options = sessions::PostgresStore::pool_options();
    /// assert_eq!(options.get_acquire_timeout(), Duration::from_secs(2));
    /// ```
    pub fn pool_options() -> PgPoolOptions {
        PgPoolOptions::new().acquire_timeout(Self::DEFAULT_ACQUIRE_TIMEOUT)
    }

    /// Connects a pool with `options` to `url`: for another acquire timeout or pool size.
    /// Fails once the options' acquire timeout passes when the server cannot be reached.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::StoreError> {
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

    /// A store on a pool you configured (size, timeouts, TLS).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sqlx::Error> {
    /// use std::time::Duration;
    /// use sqlx::postgres::PgPoolOptions;
    /// let pool = PgPoolOptions::new()
    ///     .max_connections(20)
    ///     .acquire_timeout(Duration::from_secs(2))
    ///     .connect("postgres://postgres@127.0.0.1/app")
    ///     .await?;
    /// let store = sessions::PostgresStore::from_pool(pool);
    /// # Ok(()) }
    /// ```
    pub fn from_pool(pool: PgPool) -> Self {
        let tables = match Tables::new(DEFAULT_TABLE) {
            Ok(tables) => tables,
            Err(err) => unreachable!("the default table name is valid: {err}"),
        };
        Self {
            pool,
            sql: Arc::new(Queries::new(tables)),
            clock: Arc::new(SystemClock),
        }
    }

    /// Keeps sessions in tables named after `name` (`name`, `name_slots`, `name_fields`)
    /// instead of `sessions`, in the connection's `search_path` schema.
    ///
    /// # Panics
    /// When `name` is not a plain identifier (see [`TableNameError`]): a mistake in the app's
    /// setup. [`try_table_name`](Self::try_table_name) returns it instead.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::StoreError> {
    /// let store = sessions::PostgresStore::connect("postgres://postgres@127.0.0.1/app")
    ///     .await?
    ///     .table_name("shop_sessions");
    /// assert_eq!(store.table(), "shop_sessions");
    /// # Ok(()) }
    /// ```
    pub fn table_name(self, name: &str) -> Self {
        match self.try_table_name(name) {
            Ok(store) => store,
            Err(err) => panic!("{err}"),
        }
    }

    /// Like [`table_name`](Self::table_name), returning an invalid name as an error.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::StoreError> {
    /// let store = sessions::PostgresStore::connect("postgres://postgres@127.0.0.1/app").await?;
    /// assert!(store.try_table_name("app-sessions").is_err());
    /// # Ok(()) }
    /// ```
    pub fn try_table_name(mut self, name: &str) -> Result<Self, TableNameError> {
        self.sql = Arc::new(Queries::new(Tables::new(name)?));
        Ok(self)
    }

    /// The clock expiry is checked with (a [`ManualClock`](crate::ManualClock) in tests; the
    /// system clock by default).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::StoreError> {
    /// let store = sessions::PostgresStore::connect("postgres://postgres@127.0.0.1/app")
    ///     .await?
    ///     .with_clock(sessions::ManualClock::new());
    /// # Ok(()) }
    /// ```
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The base table name.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::StoreError> {
    /// let store = sessions::PostgresStore::connect("postgres://postgres@127.0.0.1/app").await?;
    /// assert_eq!(store.table(), "sessions");
    /// # Ok(()) }
    /// ```
    pub fn table(&self) -> &str {
        &self.sql.tables.base
    }

    /// The connection pool.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::StoreError> {
    /// let store = sessions::PostgresStore::connect("postgres://postgres@127.0.0.1/app").await?;
    /// store.pool().close().await;
    /// # Ok(()) }
    /// ```
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Creates the tables and indexes if they do not exist, and brings tables made by an
    /// earlier release up to date (slots made before revisions existed start at revision 1);
    /// running it again changes nothing. Several instances may run it at once (it takes a
    /// transaction-scoped advisory lock).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::StoreError> {
    /// let store = sessions::PostgresStore::connect("postgres://postgres@127.0.0.1/app").await?;
    /// store.migrate().await?;
    /// store.migrate().await?;
    /// # Ok(()) }
    /// ```
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let result = async {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(advisory_key(&self.sql.tables.base))
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            for statement in &self.sql.schema {
                sqlx::query(statement)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
            }
            Ok(Commit::Yes(()))
        }
        .await;
        sql::finish(tx, result).await
    }

    /// Removes every expired session now, in batches; returns how many. Expired sessions are
    /// invisible anyway; this reclaims their space. Sessions a request holds locked are left
    /// for the next sweep. See also [`spawn_sweeper`](Self::spawn_sweeper).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::StoreError> {
    /// let store = sessions::PostgresStore::connect("postgres://postgres@127.0.0.1/app").await?;
    /// let removed = store.delete_expired().await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete_expired(&self) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let removed = sqlx::query(&self.sql.delete_expired)
                .bind(millis(self.clock.now()))
                .bind(PAGE)
                .execute(&self.pool)
                .await
                .map_err(db_error)?
                .rows_affected();
            total += removed;
            if removed < PAGE as u64 {
                return Ok(total);
            }
        }
    }

    /// Runs [`delete_expired`](Self::delete_expired) every `interval` (at least 1 ms) in a
    /// background task, until the pool is closed or the handle is aborted. Failures (the
    /// server down) are logged with `tracing` and retried at the next tick; the task never
    /// panics. Call it inside a Tokio runtime.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::StoreError> {
    /// let store = sessions::PostgresStore::connect("postgres://postgres@127.0.0.1/app").await?;
    /// let sweeper = store.spawn_sweeper(std::time::Duration::from_secs(300));
    /// # Ok(()) }
    /// ```
    pub fn spawn_sweeper(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        let pool = self.pool.clone();
        sql::spawn_sweeper(
            "postgres",
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
    /// through the `migrate_from` chain and written back in one transaction holding its
    /// session's row lock, so a request's change cannot slip in between and be lost. Slots of a
    /// newer version or that do not decode are counted as failed and left as they are; expired
    /// sessions are skipped.
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
    /// # async fn demo() -> Result<(), sessions::StoreError> {
    /// let store = sessions::PostgresStore::connect("postgres://postgres@127.0.0.1/app").await?;
    /// let report = store.migrate_all::<Cart>(Format::Json).await?;
    /// println!("migrated {} carts, {} failed", report.total_migrated(), report.failed);
    /// # Ok(()) }
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
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let result = self.migrate_in::<T>(&mut tx, &key, now, format).await;
        sql::finish(tx, result).await
    }

    async fn migrate_in<T: Session>(
        &self,
        tx: &mut Tx,
        key: &str,
        now: i64,
        format: Format,
    ) -> Result<Commit<Migrated>, StoreError> {
        if !self.statements(tx).lock_live(key, now).await? {
            return Ok(Commit::No(Migrated::Gone));
        }
        let rows = sqlx::query(&self.sql.load_slot)
            .bind(key)
            .bind(T::NAME)
            .fetch_all(&mut **tx)
            .await
            .map_err(db_error)?;
        let Some(slot) = sql::slots_of(&rows, Some(T::NAME), sql::slot_row)?.pop() else {
            return Ok(Commit::No(Migrated::Gone));
        };
        match sql::rewrite::<T>(key, &slot, format) {
            Rewrite::Keep(outcome) => Ok(Commit::No(outcome)),
            Rewrite::Write { from, slot } => {
                // A rewrite changes the slot: its revision moves one up.
                self.statements(tx).put(key, &[&slot], false).await?;
                Ok(Commit::Yes(Migrated::From(from)))
            }
        }
    }

    /// The statements of this store in `tx`.
    fn statements<'a>(&'a self, tx: &'a mut Tx) -> PgTx<'a> {
        PgTx { tx, sql: &self.sql }
    }
}

/// The advisory lock `migrate` takes: one per base table name (FNV-1a), so instances
/// migrating the same tables wait for each other.
fn advisory_key(base: &str) -> i64 {
    let hash = format!("sessions.migrate.{base}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    i64::from_ne_bytes(hash.to_ne_bytes())
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("table", &self.sql.tables.base)
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl SessionStore for PostgresStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<Stored>, StoreError> {
        // One statement: one snapshot of the session, its slots and their fields.
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
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let result = sql::create(
            &mut self.statements(&mut tx),
            key.as_str(),
            record,
            deadline,
            now,
        )
        .await;
        sql::finish(tx, result).await
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
                .save_in_one_statement(key.as_str(), update, deadline, now)
                .await?
        {
            return Ok(outcome);
        }
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let result = sql::save(
            &mut self.statements(&mut tx),
            key.as_str(),
            changes,
            deadline,
            now,
        )
        .await;
        sql::finish(tx, result).await
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), StoreError> {
        // Slots and fields go with the session row (ON DELETE CASCADE), in this one statement.
        sqlx::query(&self.sql.delete_session)
            .bind(key.as_str())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Moves the session in one transaction that locks the old session's row first, as a
    /// save does: a save to `from` committed before is carried over, one waiting for the lock
    /// finds `from` gone.
    async fn cycle(
        &self,
        from: &SessionKey,
        to: &SessionKey,
        changes: &Changeset,
        deadline: Deadline,
    ) -> Result<SaveOutcome, StoreError> {
        let now = millis(self.clock.now());
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let result = sql::cycle(
            &mut self.statements(&mut tx),
            from.as_str(),
            to.as_str(),
            changes,
            deadline,
            now,
        )
        .await;
        sql::finish(tx, result).await
    }
}
