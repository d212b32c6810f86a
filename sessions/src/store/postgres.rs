//! [`PostgresStore`]: sessions in PostgreSQL (feature `postgres`).

mod queries;

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};

use crate::codec::Format;
use crate::expiry::{Clock, Deadline, SystemClock};
use crate::id::SessionKey;
use crate::record::{Changeset, Record, Slot, SlotChange};
use crate::registry::MigrationReport;
use crate::schema::Session;
use crate::store::sql::{
    self, DEFAULT_TABLE, Migrated, PAGE, Rewrite, Scanned, SlotRow, TableNameError, Tables,
    db_error, millis,
};
use crate::store::{SaveOutcome, SessionStore, StoreError, Stored};

use self::queries::Queries;

/// How long [`PostgresStore::connect`]'s pool waits for a connection before a call fails.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Sessions in PostgreSQL.
///
/// Each field is a row of its own (see [the schema](#schema)), so a save writes only the fields
/// and slots that changed, in one transaction that first locks the session's row: two
/// concurrent requests that change different fields of one session both survive. Saves only
/// update: a session deleted or expired meanwhile is not re-created. Creates never overwrite
/// a live session (`ON CONFLICT DO NOTHING`).
///
/// When the server is unreachable, calls fail with [`StoreError::Backend`] once the pool's
/// acquire timeout passes (5 s with [`connect`](PostgresStore::connect); the layer answers
/// 503), and the store works again as soon as the server does: nothing to restart.
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
///     format_tag SMALLINT, PRIMARY KEY (key, slot));
/// CREATE TABLE "sessions_fields" (key TEXT COLLATE "C", slot TEXT, field TEXT,
///     pos BIGINT GENERATED ALWAYS AS IDENTITY, bytes BYTEA, PRIMARY KEY (key, slot, field),
///     FOREIGN KEY (key, slot) REFERENCES "sessions_slots" ON DELETE CASCADE);
/// ```
///
/// `key` is the [`SessionKey`] (a SHA-256 of the id), never the id; times are milliseconds
/// since the Unix epoch, compared with this store's [clock](PostgresStore::with_clock), not
/// the server's; `pos` keeps slots and fields in the order they were first written.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    sql: Arc<Queries>,
    clock: Arc<dyn Clock>,
}

type Tx = Transaction<'static, Postgres>;

impl PostgresStore {
    /// Connects a pool (10 connections, a 5 s acquire timeout) to `url`
    /// (`postgres://user:password@host:port/database`).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::StoreError> {
    /// let store = sessions::PostgresStore::connect("postgres://postgres@127.0.0.1/app").await?;
    /// store.migrate().await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(url)
            .await
            .map_err(StoreError::backend)?;
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

    /// Creates the tables and indexes if they do not exist; running it again changes nothing.
    /// Several instances may run it at once (it takes a transaction-scoped advisory lock).
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
        finish(tx, result).await
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
        rows.iter()
            .map(|row| {
                Ok(Scanned {
                    key: row.try_get("key")?,
                    type_tag: row.try_get("type_tag")?,
                    version: row.try_get("version")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(db_error)
    }

    async fn migrate_one<T: Session>(
        &self,
        key: String,
        format: Format,
    ) -> Result<Migrated, StoreError> {
        let now = millis(self.clock.now());
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let result = self.migrate_in::<T>(&mut tx, &key, now, format).await;
        finish(tx, result).await
    }

    async fn migrate_in<T: Session>(
        &self,
        tx: &mut Tx,
        key: &str,
        now: i64,
        format: Format,
    ) -> Result<Commit<Migrated>, StoreError> {
        let live = sqlx::query(&self.sql.lock_live_session)
            .bind(key)
            .bind(now)
            .fetch_optional(&mut **tx)
            .await
            .map_err(db_error)?;
        if live.is_none() {
            return Ok(Commit::No(Migrated::Gone));
        }
        let rows = sqlx::query(&self.sql.load_slot)
            .bind(key)
            .bind(T::NAME)
            .fetch_all(&mut **tx)
            .await
            .map_err(db_error)?;
        let rows = rows
            .iter()
            .map(|row| slot_row(row, Some(T::NAME)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_error)?;
        let Some(slot) = sql::assemble(rows.into_iter().flatten())?.pop() else {
            return Ok(Commit::No(Migrated::Gone));
        };
        match sql::rewrite::<T>(key, &slot, format) {
            Rewrite::Keep(outcome) => Ok(Commit::No(outcome)),
            Rewrite::Write { from, slot } => {
                self.put(tx, key, &[&slot]).await?;
                Ok(Commit::Yes(Migrated::From(from)))
            }
        }
    }

    /// Writes whole slots: their headers (keeping their place when they exist), and exactly
    /// their fields.
    async fn put(&self, tx: &mut Tx, key: &str, slots: &[&Slot]) -> Result<(), StoreError> {
        if slots.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = slots.iter().map(|slot| slot.name()).collect();
        let type_tags: Vec<&str> = slots.iter().map(|slot| slot.type_tag()).collect();
        let versions: Vec<i64> = slots.iter().map(|slot| i64::from(slot.version())).collect();
        let format_tags: Vec<i16> = slots
            .iter()
            .map(|slot| i16::from(slot.format_tag()))
            .collect();
        sqlx::query(&self.sql.upsert_slots)
            .bind(key)
            .bind(&names)
            .bind(&type_tags)
            .bind(&versions)
            .bind(&format_tags)
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
        sqlx::query(&self.sql.delete_slots_fields)
            .bind(key)
            .bind(&names)
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
        let mut fields = Fields::default();
        for slot in slots {
            fields.extend(slot.name(), slot.fields());
        }
        self.upsert_fields(tx, key, &fields).await
    }

    async fn upsert_fields(
        &self,
        tx: &mut Tx,
        key: &str,
        fields: &Fields<'_>,
    ) -> Result<(), StoreError> {
        if fields.names.is_empty() {
            return Ok(());
        }
        sqlx::query(&self.sql.upsert_fields)
            .bind(key)
            .bind(&fields.slots)
            .bind(&fields.names)
            .bind(&fields.bytes)
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn create_in(
        &self,
        tx: &mut Tx,
        key: &str,
        record: &Record,
        deadline: Deadline,
        now: i64,
    ) -> Result<Commit<()>, StoreError> {
        let (created_at, expires_at) = (millis(deadline.created_at), millis(deadline.expires_at));
        let inserted = sqlx::query(&self.sql.insert_session)
            .bind(key)
            .bind(created_at)
            .bind(expires_at)
            .execute(&mut **tx)
            .await
            .map_err(db_error)?
            .rows_affected();
        if inserted == 0 {
            // The key is taken: only an expired leftover may be replaced (its row is locked now).
            let replaced = sqlx::query(&self.sql.replace_expired_session)
                .bind(key)
                .bind(created_at)
                .bind(expires_at)
                .bind(now)
                .execute(&mut **tx)
                .await
                .map_err(db_error)?
                .rows_affected();
            if replaced == 0 {
                return Err(StoreError::Collision);
            }
            sqlx::query(&self.sql.delete_session_slots)
                .bind(key)
                .execute(&mut **tx)
                .await
                .map_err(db_error)?;
        }
        let slots: Vec<&Slot> = record.slots().collect();
        self.put(tx, key, &slots).await?;
        Ok(Commit::Yes(()))
    }

    async fn save_in(
        &self,
        tx: &mut Tx,
        key: &str,
        changes: &Changeset,
        deadline: Deadline,
        now: i64,
    ) -> Result<Commit<SaveOutcome>, StoreError> {
        // The session row first: updating it locks it until the commit, so saves to one
        // session run one after the other, and it is what makes a save an update, never an
        // upsert.
        let updated = sqlx::query(&self.sql.touch_session)
            .bind(key)
            .bind(millis(deadline.created_at))
            .bind(millis(deadline.expires_at))
            .bind(now)
            .execute(&mut **tx)
            .await
            .map_err(db_error)?
            .rows_affected();
        if updated == 0 {
            return Ok(Commit::No(SaveOutcome::Missing));
        }
        if sql::has_field_updates(changes) {
            let rows = sqlx::query(&self.sql.slot_headers)
                .bind(key)
                .fetch_all(&mut **tx)
                .await
                .map_err(db_error)?;
            let headers = rows
                .iter()
                .map(|row| {
                    let header = (
                        row.try_get("slot")?,
                        row.try_get("type_tag")?,
                        row.try_get("version")?,
                        i64::from(row.try_get::<i16, _>("format_tag")?),
                    );
                    Ok::<_, sqlx::Error>(header)
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_error)?
                .into_iter()
                .map(|(slot, type_tag, version, format_tag)| {
                    sql::slot_from_header(slot, type_tag, version, format_tag, Vec::new())
                })
                .collect::<Result<Vec<_>, _>>()?;
            sql::check(headers, changes)?;
        }
        let mut removed: Vec<&str> = Vec::new();
        let mut put: Vec<&Slot> = Vec::new();
        let mut fields = Fields::default();
        for change in changes.iter() {
            match change {
                SlotChange::Put(slot) => put.push(slot),
                SlotChange::Fields {
                    slot, fields: f, ..
                } => fields.extend(slot, f.iter().map(|(name, bytes)| (&**name, bytes))),
                SlotChange::Remove { slot } => removed.push(slot),
            }
        }
        if !removed.is_empty() {
            sqlx::query(&self.sql.delete_slots)
                .bind(key)
                .bind(&removed)
                .execute(&mut **tx)
                .await
                .map_err(db_error)?;
        }
        self.put(tx, key, &put).await?;
        self.upsert_fields(tx, key, &fields).await?;
        Ok(Commit::Yes(SaveOutcome::Saved))
    }
}

/// Fields to write, as the three arrays one `UNNEST` insert takes.
#[derive(Default)]
struct Fields<'a> {
    slots: Vec<&'a str>,
    names: Vec<&'a str>,
    bytes: Vec<&'a [u8]>,
}

impl<'a> Fields<'a> {
    /// Adds one slot's fields (without repeated names: one insert may not touch a row twice).
    fn extend(
        &mut self,
        slot: &'a str,
        fields: impl IntoIterator<Item = (&'a str, &'a bytes::Bytes)>,
    ) {
        for (name, bytes) in sql::distinct_fields(fields) {
            self.slots.push(slot);
            self.names.push(name);
            self.bytes.push(bytes);
        }
    }
}

/// Whether a transaction commits, and what it returns.
enum Commit<R> {
    Yes(R),
    No(R),
}

/// Commits when the body says so; rolls back when it says not to, and on errors.
async fn finish<R>(tx: Tx, result: Result<Commit<R>, StoreError>) -> Result<R, StoreError> {
    match result {
        Ok(Commit::Yes(value)) => {
            tx.commit().await.map_err(db_error)?;
            Ok(value)
        }
        Ok(Commit::No(value)) => {
            tx.rollback().await.map_err(db_error)?;
            Ok(value)
        }
        Err(err) => {
            if let Err(rollback) = tx.rollback().await {
                tracing::warn!(target: "sessions", error = %rollback, "postgres rollback failed");
            }
            Err(err)
        }
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

/// A slot row of a `LEFT JOIN` (`None` when the session has no slot). `slot` names the slot
/// when the query does not select it.
fn slot_row(row: &PgRow, slot: Option<&str>) -> Result<Option<SlotRow>, sqlx::Error> {
    let name: Option<String> = match slot {
        Some(name) => Some(name.to_owned()),
        None => row.try_get("slot")?,
    };
    let (Some(name), Some(type_tag), Some(version), Some(format_tag)) = (
        name,
        row.try_get::<Option<String>, _>("type_tag")?,
        row.try_get::<Option<i64>, _>("version")?,
        row.try_get::<Option<i16>, _>("format_tag")?,
    ) else {
        return Ok(None);
    };
    let field = match row.try_get::<Option<String>, _>("field")? {
        Some(field) => Some((field, row.try_get::<Vec<u8>, _>("bytes")?)),
        None => None,
    };
    Ok(Some(SlotRow {
        slot: name,
        type_tag,
        version,
        format_tag: i64::from(format_tag),
        field,
    }))
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
        let created_at: i64 = first.try_get("created_at").map_err(db_error)?;
        let expires_at: i64 = first.try_get("expires_at").map_err(db_error)?;
        let rows = rows
            .iter()
            .map(|row| slot_row(row, None))
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_error)?;
        let slots = sql::assemble(rows.into_iter().flatten())?;
        Ok(Some(Stored {
            record: sql::record_of(slots),
            deadline: Deadline {
                created_at: sql::time(created_at)?,
                expires_at: sql::time(expires_at)?,
            },
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
        let result = self
            .create_in(&mut tx, key.as_str(), record, deadline, now)
            .await;
        finish(tx, result).await
    }

    async fn save(
        &self,
        key: &SessionKey,
        changes: &Changeset,
        deadline: Deadline,
    ) -> Result<SaveOutcome, StoreError> {
        let now = millis(self.clock.now());
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let result = self
            .save_in(&mut tx, key.as_str(), changes, deadline, now)
            .await;
        finish(tx, result).await
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
}
