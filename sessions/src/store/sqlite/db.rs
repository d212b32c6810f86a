//! Where the store's SQL runs: its connections, and the one rule for every call — run it
//! right here, on the calling thread, without waiting for a lock; if SQLite says another
//! connection holds the lock it needs (`SQLITE_BUSY`), run the same call again on a blocking
//! thread, where it may wait out the busy timeout.
//!
//! Writes take turns on the writer connection. A read runs there too when the writer is free
//! (its page cache is the one that is current: a connection's cache is dropped whenever
//! another connection wrote, so a read on a reader after each write re-reads its pages), and
//! on a reader beside it otherwise.
//!
//! A call is one statement in autocommit, or one transaction that rolls back unless it
//! commits, so a call that failed with `SQLITE_BUSY` changed nothing and is safe to run again.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode};

use super::checkpoint::Checkpoints;
use super::queries::Queries;
use crate::errors::RecordError;
use crate::errors::StoreError;

/// How long a call on a blocking thread waits for a lock another connection holds.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Readers opened with the store.
const OPENED_READERS: usize = 2;

/// Idle readers kept for later calls (more are opened when more run at once).
const IDLE_READERS: usize = 8;

/// How often a write yields for its turn at the writer before it waits for it.
const YIELDS: usize = 64;

/// Prepared statements kept per connection (a store's statements, for a few table names).
const STATEMENTS: usize = 64;

/// The connections of one database, shared by every clone of a store and by its table names.
pub(super) struct Db {
    /// Writes of this process take turns here: held only for one call that does not wait
    /// for SQLite's lock, so a turn is short.
    writer: Mutex<Connection>,
    /// Readers beside the writer (WAL). `None` for a database in memory, which lives on the
    /// writer's connection alone.
    readers: Option<Readers>,
    /// The background checkpoints; declared last, so it is dropped after every connection
    /// above is closed and its own connection, closed last, is the one that cleans up.
    checkpoints: Option<Checkpoints>,
}

/// Connections to a file for reads (and for the calls that retry on a blocking thread).
struct Readers {
    path: std::path::PathBuf,
    idle: Mutex<Vec<Connection>>,
}

/// A job: one statement or one transaction on a connection, with the store's statements.
pub(super) trait Job<T>:
    Fn(&Connection, &Queries) -> rusqlite::Result<T> + Send + 'static
{
}
impl<T, F: Fn(&Connection, &Queries) -> rusqlite::Result<T> + Send + 'static> Job<T> for F {}

impl Db {
    /// Opens (or creates) the file at `path` in WAL mode with `synchronous=NORMAL`. Blocking.
    pub(super) fn open(path: &Path) -> rusqlite::Result<Self> {
        let writer = Connection::open(path)?;
        // Setting WAL needs the write lock: wait for it as any blocking call does.
        writer.busy_timeout(BUSY_TIMEOUT)?;
        let mode: String = writer.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                Some(format!(
                    "SQLite could not turn on WAL for this file (journal_mode is {mode})"
                )),
            ));
        }
        configure(&writer)?;
        let checkpoints = Checkpoints::start(path)?;
        let readers = Readers {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
        };
        // Opened here rather than by the first requests (more open later, if need be).
        let opened = (0..OPENED_READERS)
            .map(|_| readers.take())
            .collect::<rusqlite::Result<Vec<_>>>()?;
        opened
            .into_iter()
            .for_each(|reader| readers.give_back(reader));
        Ok(Self {
            writer: Mutex::new(writer),
            readers: Some(readers),
            checkpoints: Some(checkpoints),
        })
    }

    /// A database in memory, on one connection.
    pub(super) fn in_memory() -> rusqlite::Result<Self> {
        let conn = Connection::open_in_memory()?;
        conn.set_prepared_statement_cache_capacity(STATEMENTS);
        Ok(Self {
            writer: Mutex::new(conn),
            readers: None,
            checkpoints: None,
        })
    }

    /// Runs a read.
    pub(super) async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        sql: &Arc<Queries>,
        job: impl Job<T>,
    ) -> Result<T, StoreError> {
        let on_writer = match self.writer.try_lock() {
            Ok(writer) => Some(job(&writer, sql)),
            Err(TryLockError::Poisoned(poisoned)) => Some(job(&poisoned.into_inner(), sql)),
            Err(TryLockError::WouldBlock) => None,
        };
        let first = match (on_writer, &self.readers) {
            (Some(done), _) => done,
            (None, Some(readers)) => {
                let conn = readers.take().map_err(backend)?;
                let result = job(&conn, sql);
                readers.give_back(conn);
                result
            }
            (None, None) => job(&self.lock_writer(), sql),
        };
        match first {
            Err(err) if is_busy(&err) => self.blocking(sql, job).await,
            other => other.map_err(backend),
        }
    }

    /// Runs a write.
    pub(super) async fn write<T: Send + 'static>(
        self: &Arc<Self>,
        sql: &Arc<Queries>,
        job: impl Job<T>,
    ) -> Result<T, StoreError> {
        let first = {
            let writer = self.turn().await;
            job(&writer, sql)
        };
        match first {
            Err(err) if is_busy(&err) => self.blocking(sql, job).await,
            other => {
                self.wrote();
                other.map_err(backend)
            }
        }
    }

    /// Runs `job` on a blocking thread, where it waits up to [`BUSY_TIMEOUT`] for the locks
    /// it needs: the retry of a call that found a lock taken, and the store's long calls
    /// (migrations, sweeps). If the caller stops waiting, the job still runs to its end.
    pub(super) async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        sql: &Arc<Queries>,
        job: impl Job<T>,
    ) -> Result<T, StoreError> {
        let (db, sql) = (self.clone(), sql.clone());
        let result = off_thread(move || match &db.readers {
            Some(readers) => {
                let conn = readers.take()?;
                conn.busy_timeout(BUSY_TIMEOUT)?;
                let result = job(&conn, &sql);
                if conn.busy_timeout(Duration::ZERO).is_ok() {
                    readers.give_back(conn);
                }
                db.wrote();
                result
            }
            None => job(&db.lock_writer(), &sql),
        })
        .await?;
        result.map_err(backend)
    }

    /// The writer, once it is this call's turn. While another thread holds it (for one call
    /// that does not wait), the task yields to the other tasks of its thread rather than put
    /// the thread to sleep; after [`YIELDS`] tries it waits for the lock.
    async fn turn(&self) -> MutexGuard<'_, Connection> {
        for _ in 0..YIELDS {
            match self.writer.try_lock() {
                Ok(writer) => return writer,
                Err(TryLockError::Poisoned(poisoned)) => return poisoned.into_inner(),
                Err(TryLockError::WouldBlock) => {}
            }
            tokio::task::yield_now().await;
        }
        self.lock_writer()
    }

    fn lock_writer(&self) -> MutexGuard<'_, Connection> {
        // A job that panicked left no transaction open (each rolls back on drop), so the
        // connection is safe to take over.
        self.writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts a write towards the next checkpoint.
    fn wrote(&self) {
        if let Some(checkpoints) = &self.checkpoints {
            checkpoints.wrote();
        }
    }
}

impl Readers {
    fn take(&self) -> rusqlite::Result<Connection> {
        let idle = self.idle().pop();
        match idle {
            Some(conn) => Ok(conn),
            None => {
                let conn = Connection::open(&self.path)?;
                configure(&conn)?;
                Ok(conn)
            }
        }
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self.idle();
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Connection>> {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What every connection to a file gets: `synchronous=NORMAL`, no checkpoints of its own (the
/// store's checkpoint thread does them: a checkpoint syncs the file), no busy wait (a call
/// that must wait goes to a blocking thread).
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0;")?;
    conn.busy_timeout(Duration::ZERO)?;
    conn.set_prepared_statement_cache_capacity(STATEMENTS);
    Ok(())
}

/// Runs `f` on a blocking thread: tokio's pool inside a Tokio runtime, a thread of its own
/// outside one.
async fn off_thread<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StoreError> {
    let joined = match tokio::runtime::Handle::try_current() {
        Ok(runtime) => runtime.spawn_blocking(f).await.map_err(|err| {
            StoreError::backend(std::io::Error::other(format!(
                "the SQLite call on a blocking thread failed: {err}"
            )))
        }),
        Err(_) => {
            let (send, receive) = tokio::sync::oneshot::channel();
            std::thread::Builder::new()
                .name("sessions-sqlite".into())
                .spawn(move || {
                    let _ = send.send(f());
                })
                .map_err(StoreError::backend)?;
            receive.await.map_err(|_| {
                StoreError::backend(std::io::Error::other(
                    "the SQLite call on a thread of its own failed",
                ))
            })
        }
    }?;
    Ok(joined)
}

/// Whether SQLite refused because another connection holds a lock.
fn is_busy(err: &rusqlite::Error) -> bool {
    err.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
}

/// A SQLite error as a store error: a missing table is a store used without `migrate()` (the
/// app's setup, a 500 that names the fix); the rest is the backend failing.
pub(super) fn backend(err: rusqlite::Error) -> StoreError {
    match &err {
        rusqlite::Error::SqliteFailure(_, Some(message))
            if message.starts_with("no such table") =>
        {
            StoreError::not_migrated("SqliteStore", err)
        }
        _ => StoreError::backend(err),
    }
}

/// Bytes of a stored `data` value; a value of another type is a broken entry.
pub(super) fn bytes_of(value: rusqlite::types::ValueRef<'_>) -> Result<Vec<u8>, RecordError> {
    match value {
        rusqlite::types::ValueRef::Blob(bytes) => Ok(bytes.to_vec()),
        other => Err(RecordError::Malformed(format!(
            "stored entry: a {} where a blob belongs",
            other.data_type()
        ))),
    }
}
