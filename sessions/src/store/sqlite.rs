//! [`SqliteStore`]: sessions in a SQLite database (feature `sqlite`).

mod checkpoint;
mod db;
mod queries;
mod upgrade;

use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior, params};

use crate::codec::Format;
use crate::errors::RecordError;
use crate::expiry::{Clock, SystemClock};
use crate::id::SessionKey;
use crate::registry::MigrationReport;
use crate::schema::Session;
use crate::store::upkeep::{self, ScanCursor, ScanPage, sql};
use crate::store::{Entry, OwnedEntries, SessionStore, StoreError, TableNameError, blob};

use self::db::{Db, bytes_of};
use self::queries::{DEFAULT_TABLE, Queries, millis};
use crate::store::upkeep::sql::version_column;

/// How many rows one batch of a sweep or one page of a scan takes.
const PAGE: i64 = 500;

/// Sessions in a SQLite database: a file (embedded, nothing to run) or memory.
///
/// One row per session holds the whole entry ([`blob::encode`]), beside the columns a query
/// needs: the key, the entry's version (what a save compares and swaps), its end (for
/// expiry) and its owner (for [`SessionStore::owned_by`], an index lookup). A load is one
/// point `SELECT`; a create or a delete one statement; a save one `UPDATE` (a second one when
/// the save moves the session's end or owner: the first leaves the indexes alone, and finds
/// nothing to change). Saving only the changed fields,
/// never re-creating a destroyed session, never overwriting on create and moving a session
/// on `cycle_id()` are built on those, once, in the crate (see [`SessionStore`]).
///
/// # Where the SQL runs
///
/// On the calling thread, with no hand-off: a point read or a one-row update with its WAL
/// append costs about what waking another thread and being woken back costs (the README's
/// benchmark notes have the figures).
/// So a call must never wait there, and does not:
///
/// * no `fsync` on the caller's thread: request connections never checkpoint
///   (`wal_autocheckpoint = 0`); a thread of the store runs `PASSIVE` checkpoints as writes
///   go by and a `TRUNCATE` one when writes pause (with `synchronous = NORMAL` a commit in WAL
///   mode writes the WAL and does not sync it);
/// * no busy wait there: request connections have no busy timeout, and a call that finds a
///   lock held by another connection (another process, or a sweep) runs again on a blocking
///   thread (tokio's `spawn_blocking`), where it waits up to 5 s before it fails with
///   [`StoreError::Backend`];
/// * writes of one process take turns on one writer connection (a mutex held for one
///   statement; a write that finds it taken yields to the other tasks of its thread); reads
///   run there too when it is free (its page cache is the current one) and on a small pool
///   of reader connections beside it otherwise (WAL lets readers run beside the writer).
///
/// A call is one statement (or one transaction), so it cannot be cut in half: a request
/// dropped mid-call leaves no transaction open. A call that went to a blocking thread runs to
/// its end even when its caller stops waiting (as a command sent to a database server does).
///
/// Why, measured: every call inline costs a quarter of the CPU per request of every call on
/// `spawn_blocking`, and less than writes on a dedicated writer thread; reading on the writer
/// when it is free, and leaving the indexes alone on a save that keeps the end and the owner,
/// each saved more (the README's benchmark notes have the figures and how they were taken).
///
/// [`open`](SqliteStore::open) turns on WAL and `synchronous=NORMAL` (the default rollback
/// journal caps writes near 400 per second). Call [`migrate`](SqliteStore::migrate) once at
/// start-up: it creates the table, and converts a database of the layout before this one.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use sessions::prelude::*;
/// use sessions::SqliteStore;
///
/// #[derive(Session, Default)]
/// #[session(name = "cart")]
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
/// # Ok::<(), sessions::error::StoreError>(())
/// # }).unwrap();
/// ```
///
/// # Schema
///
/// With the default table name `sessions` ([`table_name`](SqliteStore::table_name) changes it
/// and the index names):
///
/// ```sql
/// CREATE TABLE "sessions" (key BLOB PRIMARY KEY NOT NULL, version INTEGER NOT NULL,
///     expires_at INTEGER NOT NULL, owner TEXT, data BLOB NOT NULL) WITHOUT ROWID;
/// CREATE INDEX "sessions_by_expiry" ON "sessions" (expires_at);
/// CREATE INDEX "sessions_by_owner" ON "sessions" (owner) WHERE owner IS NOT NULL;
/// ```
///
/// `key` is the 32 bytes of the [`SessionKey`] (a SHA-256 of the id), never the id;
/// `expires_at` is in milliseconds since the Unix epoch; `data` is [`blob::encode`] of the
/// entry (record with slot revisions, deadline, owner, last-seen time, agent; or a
/// forwarding mark).
#[derive(Clone)]
pub struct SqliteStore {
    db: Arc<Db>,
    sql: Arc<Queries>,
    clock: Arc<dyn Clock>,
}

impl SqliteStore {
    /// Opens (and creates, if missing) the database file at `path`, in WAL mode with
    /// `synchronous=NORMAL`; a call that finds the database locked by another connection
    /// waits up to 5 s on a blocking thread.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::error::StoreError> {
    /// let store = sessions::SqliteStore::open("sessions.db").await?;
    /// store.migrate().await?;
    /// # Ok(()) }
    /// ```
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_owned();
        let db = tokio::task::spawn_blocking(move || Db::open(&path))
            .await
            .map_err(StoreError::backend)?
            .map_err(db::backend)?;
        Ok(Self::on(db))
    }

    /// A database in this process's memory, lost when the store (and its last clone) is
    /// dropped: for tests. It lives on one connection.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = sessions::SqliteStore::in_memory().await?;
    /// store.migrate().await?;
    /// # Ok::<(), sessions::error::StoreError>(())
    /// # }).unwrap();
    /// ```
    pub async fn in_memory() -> Result<Self, StoreError> {
        Ok(Self::on(Db::in_memory().map_err(db::backend)?))
    }

    fn on(db: Db) -> Self {
        let sql = match Queries::new(DEFAULT_TABLE) {
            Ok(sql) => sql,
            Err(err) => unreachable!("the default table name is valid: {err}"),
        };
        Self {
            db: Arc::new(db),
            sql: Arc::new(sql),
            clock: Arc::new(SystemClock),
        }
    }

    /// Keeps sessions in the table `name` instead of `sessions` (on the same database and
    /// connections as `self`).
    ///
    /// # Panics
    /// When `name` is not a plain identifier (see [`TableNameError`]): a mistake in the app's
    /// setup. [`try_table_name`](Self::try_table_name) returns it instead.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = sessions::SqliteStore::in_memory().await?.table_name("shop_sessions");
    /// assert_eq!(store.table(), "shop_sessions");
    /// # Ok::<(), sessions::error::StoreError>(())
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
    /// # Ok::<(), sessions::error::StoreError>(())
    /// # }).unwrap();
    /// ```
    pub fn try_table_name(mut self, name: &str) -> Result<Self, TableNameError> {
        self.sql = Arc::new(Queries::new(name)?);
        Ok(self)
    }

    /// The clock expiry is checked with (a [`ManualClock`](crate::clock::ManualClock) in tests; the
    /// system clock by default).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = sessions::SqliteStore::in_memory().await?.with_clock(sessions::clock::ManualClock::new());
    /// # Ok::<(), sessions::error::StoreError>(())
    /// # }).unwrap();
    /// ```
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The table name.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// assert_eq!(sessions::SqliteStore::in_memory().await?.table(), "sessions");
    /// # Ok::<(), sessions::error::StoreError>(())
    /// # }).unwrap();
    /// ```
    pub fn table(&self) -> &str {
        &self.sql.table
    }

    /// Creates the table and its indexes if they do not exist, and converts, in place and in
    /// one transaction, a database written by the layout before this one (three tables
    /// `sessions`, `sessions_slots`, `sessions_fields`): every session keeps its record, slot
    /// revisions and deadline. Running it again changes nothing.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = sessions::SqliteStore::in_memory().await?;
    /// store.migrate().await?;
    /// store.migrate().await?;
    /// # Ok::<(), sessions::error::StoreError>(())
    /// # }).unwrap();
    /// ```
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let found = self
            .db
            .blocking(&self.sql, |conn, sql| {
                let tx = conn_transaction(conn)?;
                let found = upgrade::run(&tx, sql)?;
                tx.execute_batch(&sql.schema)?;
                tx.commit()?;
                Ok(found)
            })
            .await?;
        if let upgrade::Found::Converted { sessions, skipped } = found {
            tracing::info!(target: "sessions::migration", store = "sqlite", table = %self.sql.table, sessions, skipped, "converted the sessions of the old three-table layout");
        }
        Ok(())
    }

    /// Removes every ended session (and forwarding mark) now, a batch at a time; returns how
    /// many. Ended sessions are invisible anyway; this reclaims their space. See also
    /// [`spawn_sweeper`](Self::spawn_sweeper).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = sessions::SqliteStore::in_memory().await?;
    /// store.migrate().await?;
    /// assert_eq!(store.delete_expired().await?, 0);
    /// # Ok::<(), sessions::error::StoreError>(())
    /// # }).unwrap();
    /// ```
    pub async fn delete_expired(&self) -> Result<u64, StoreError> {
        SessionStore::delete_expired(self).await
    }

    /// Runs [`delete_expired`](Self::delete_expired) every `interval` (at least 1 ms) in a
    /// background task, until the handle is aborted or the store (every clone of it) is
    /// dropped. Failures are logged with `tracing` and retried at the next tick; the task never
    /// panics. Call it inside a Tokio runtime.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = sessions::SqliteStore::in_memory().await?;
    /// store.migrate().await?;
    /// let sweeper = store.spawn_sweeper(std::time::Duration::from_secs(300));
    /// sweeper.abort();
    /// # Ok::<(), sessions::error::StoreError>(())
    /// # }).unwrap();
    /// ```
    pub fn spawn_sweeper(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let db: Weak<Db> = Arc::downgrade(&self.db);
        let (sql, clock) = (self.sql.clone(), self.clock.clone());
        upkeep::spawn_sweeper("sqlite", interval, move || {
            let (sql, clock) = (sql.clone(), clock.clone());
            db.upgrade().map(|db| SqliteStore { db, sql, clock })
        })
    }

    /// Rewrites every stored slot of `T` older than `T::VERSION` in the current version, now,
    /// in `format` (instead of on each session's next load), one session at a time with
    /// [`migrate_session`](crate::store::migrate_session) (a compare-and-swap: a request's concurrent change is never lost).
    /// Slots of a newer version or that do not decode are counted as failed and left as they
    /// are; ended sessions are skipped.
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
    /// # Ok::<(), sessions::error::StoreError>(())
    /// # }).unwrap();
    /// ```
    pub async fn migrate_all<T: Session>(
        &self,
        format: Format,
    ) -> Result<MigrationReport, StoreError> {
        upkeep::migrate_all::<T, Self>(self, format).await
    }
}

/// A write transaction that takes the write lock at once (`BEGIN IMMEDIATE`) and rolls back
/// when dropped uncommitted.
fn conn_transaction(conn: &Connection) -> rusqlite::Result<rusqlite::Transaction<'_>> {
    rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("table", &self.sql.table)
            .finish_non_exhaustive()
    }
}

/// A row holding a session, not a login's forwarding mark (see [`blob`]'s layout: the kind is
/// the tenth byte).
const SESSION_ROW: &str = "substr(data, 10, 1) IN (x'01', x'11')";

#[async_trait::async_trait]
impl SessionStore for SqliteStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<Entry>, StoreError> {
        let bytes = *key.as_bytes();
        let now = millis(self.clock.now());
        let row = self
            .db
            .read(&self.sql, move |conn, sql| {
                let mut stmt = conn.prepare_cached(&sql.load)?;
                let mut rows = stmt.query(params![&bytes[..], now])?;
                match rows.next()? {
                    Some(row) => Ok(Some(Row::read(row, 0)?)),
                    None => Ok(None),
                }
            })
            .await?;
        match row {
            Some(row) => Ok(Some(row.entry(key)?)),
            None => Ok(None),
        }
    }

    async fn swap(
        &self,
        key: &SessionKey,
        current: Option<u64>,
        new: Option<Entry>,
    ) -> Result<bool, StoreError> {
        let key = *key.as_bytes();
        let now = millis(self.clock.now());
        let Some(entry) = new else {
            let Some(current) = current else {
                // Nothing live to delete: it "wrote" iff nothing live is there.
                return Ok(!self.load_raw_exists(key, now).await?);
            };
            let current = version_column(current);
            return self
                .db
                .write(&self.sql, move |conn, sql| {
                    let mut stmt = conn.prepare_cached(&sql.delete)?;
                    Ok(stmt.execute(params![&key[..], current, now])? == 1)
                })
                .await;
        };
        let version = version_column(entry.version());
        let expires_at = millis(entry.expires_at());
        let owner = entry.owner().map(str::to_owned);
        let data = blob::encode_at(&SessionKey::from_digest(key), &entry);
        match current {
            Some(current) => {
                let current = version_column(current);
                self.db
                    .write(&self.sql, move |conn, sql| {
                        let values =
                            params![&key[..], current, now, version, expires_at, owner, data];
                        // Most saves keep the end and the owner: then the indexes stay as
                        // they are. Otherwise (or when the swap loses), the whole row.
                        if conn.prepare_cached(&sql.update_data)?.execute(values)? == 1 {
                            return Ok(true);
                        }
                        Ok(conn.prepare_cached(&sql.update)?.execute(values)? == 1)
                    })
                    .await
            }
            None => {
                self.db
                    .write(&self.sql, move |conn, sql| {
                        let mut stmt = conn.prepare_cached(&sql.insert)?;
                        let changed =
                            stmt.execute(params![&key[..], version, expires_at, owner, data, now])?;
                        Ok(changed == 1)
                    })
                    .await
            }
        }
    }

    async fn scan(
        &self,
        cursor: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<ScanPage, StoreError> {
        let after = sql::after_key(cursor, "sqlite")?;
        let (now, limit) = (millis(self.clock.now()), limit.clamp(1, 1 << 20));
        let rows = self
            .db
            .read(&self.sql, move |conn, sql| {
                let mut stmt = conn.prepare_cached(&sql.scan)?;
                let rows = stmt
                    .query_map(params![after, now, limit as i64], |row| {
                        let (key, row) = (row.get::<_, Vec<u8>>(0)?, Row::read(row, 1)?);
                        Ok((key, row.version, row.data))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await?;
        Ok(sql::page_of_rows(rows, limit, "sqlite"))
    }

    /// Removes the ended rows a batch at a time (one statement each, so requests' writes get
    /// the lock in between).
    async fn delete_expired(&self) -> Result<u64, StoreError> {
        let now = millis(self.clock.now());
        let (removed, sessions) = self
            .db
            .blocking(&self.sql, move |conn, sql| {
                let (mut total, mut sessions) = (0, 0);
                loop {
                    let mut stmt = conn.prepare_cached(&sql.delete_expired)?;
                    // Each removed row says whether it held a session (not a login's mark).
                    let kinds = stmt.query_map(params![now, PAGE], |row| row.get::<_, bool>(0))?;
                    let mut removed = 0;
                    for was_session in kinds {
                        removed += 1;
                        sessions += u64::from(was_session?);
                    }
                    total += removed;
                    if (removed as i64) < PAGE {
                        return Ok((total, sessions));
                    }
                }
            })
            .await?;
        crate::metrics::expired_swept(sessions);
        Ok(removed)
    }

    fn name(&self) -> &'static str {
        "sqlite"
    }

    /// One count on the expiry index; live sessions only (an entry's kind is its blob's tenth
    /// byte: `1` a session, `2` a login's forwarding mark, plus `0x10` when bound to its key).
    async fn count_live(&self) -> Result<u64, StoreError> {
        let now = millis(self.clock.now());
        let count = format!(
            "SELECT count(*) FROM \"{}\" WHERE expires_at > ?1 AND {SESSION_ROW}",
            self.sql.table
        );
        let live = self
            .db
            .read(&self.sql, move |conn, _| {
                conn.query_row(&count, params![now], |row| row.get::<_, i64>(0))
            })
            .await?;
        Ok(live.unsigned_abs())
    }

    async fn has_ended(&self, key: &SessionKey) -> Result<bool, StoreError> {
        let bytes = *key.as_bytes();
        let now = millis(self.clock.now());
        let ended = format!(
            "SELECT 1 FROM \"{}\" WHERE key = ?1 AND expires_at <= ?2 AND {SESSION_ROW}",
            self.sql.table
        );
        self.db
            .read(&self.sql, move |conn, _| {
                conn.prepare_cached(&ended)?
                    .exists(params![&bytes[..], now])
            })
            .await
    }

    async fn owned_by(&self, owner: &str) -> Result<Vec<(SessionKey, Entry)>, StoreError> {
        Ok(self.owned_entries(owner).await?.entries)
    }

    /// The owner's rows; a row that does not decode is reported beside them with its `version`
    /// column (so a revocation can end it), not an error.
    async fn owned_entries(&self, owner: &str) -> Result<OwnedEntries, StoreError> {
        let owner = owner.to_owned();
        let now = millis(self.clock.now());
        let rows = self
            .db
            .read(&self.sql, move |conn, sql| {
                let mut stmt = conn.prepare_cached(&sql.owned_by)?;
                let rows = stmt
                    .query_map(params![owner, now], |row| {
                        Ok((row.get::<_, Vec<u8>>(0)?, Row::read(row, 1)?))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await?;
        let mut found = OwnedEntries::default();
        for (key, row) in rows {
            let Ok(key) = sql::key_of(&key) else {
                tracing::warn!(target: "sessions::store", store = "sqlite", "a row whose key is not 32 bytes is left out of an owner's sessions");
                continue;
            };
            match row.entry(&key) {
                Ok(entry) => found.entries.push((key, entry)),
                Err(err) => found.unreadable.push((key, err)),
            }
        }
        Ok(found)
    }
}

/// A row as read: its `version` column (`None` when it is not an integer) and its `data`.
struct Row {
    version: Option<i64>,
    data: Result<Vec<u8>, RecordError>,
}

impl Row {
    /// The `version` and `data` columns from column `at` on.
    fn read(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Row> {
        Ok(Row {
            version: row.get_ref(at)?.as_i64().ok(),
            data: bytes_of(row.get_ref(at + 1)?),
        })
    }

    /// The entry the row holds for `key` ([`sql::entry_of_row`]).
    fn entry(self, key: &SessionKey) -> Result<Entry, RecordError> {
        sql::entry_of_row(key, self.version, self.data)
    }
}

impl SqliteStore {
    /// Whether a live row is stored under `key`.
    async fn load_raw_exists(&self, key: [u8; 32], now: i64) -> Result<bool, StoreError> {
        self.db
            .read(&self.sql, move |conn, sql| {
                let mut stmt = conn.prepare_cached(&sql.load)?;
                stmt.exists(params![&key[..], now])
            })
            .await
    }
}
