//! The store's checkpoint thread: copies the WAL back into the database file away from the
//! requests, since a checkpoint syncs the file (an `fsync`), which no async thread may wait for.
//!
//! Request connections never checkpoint (`wal_autocheckpoint = 0`). This thread runs a
//! `PASSIVE` checkpoint (it never blocks a reader or a writer) every [`NUDGE_EVERY`] writes or
//! every [`INTERVAL`] in which something was written, and, once an interval passes without a
//! write, a `TRUNCATE` one that empties the WAL file (it waits at most [`TRUNCATE_WAIT`] for
//! readers and keeps writers off only that long). When the store is dropped, the thread
//! checkpoints a last time and closes its connection, the database's last.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::Connection;

/// A checkpoint every this many writes at the latest.
const NUDGE_EVERY: u64 = 1000;
/// A checkpoint this long after a write at the latest.
const INTERVAL: Duration = Duration::from_millis(500);
/// How long the idle-time `TRUNCATE` checkpoint waits for readers and writers.
const TRUNCATE_WAIT: Duration = Duration::from_millis(100);

/// The handle of a running checkpoint thread; dropping it stops the thread.
pub(super) struct Checkpoints {
    shared: Arc<Shared>,
}

struct Shared {
    writes: AtomicU64,
    signal: Mutex<Signal>,
    wake: Condvar,
}

#[derive(Default)]
struct Signal {
    nudged: bool,
    stop: bool,
}

impl Checkpoints {
    /// Opens a connection of its own to `path` and starts the thread.
    pub(super) fn start(path: &Path) -> rusqlite::Result<Self> {
        let conn = Connection::open(path)?;
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0;")?;
        let shared = Arc::new(Shared {
            writes: AtomicU64::new(0),
            signal: Mutex::new(Signal::default()),
            wake: Condvar::new(),
        });
        let thread = shared.clone();
        std::thread::Builder::new()
            .name("sessions-sqlite-checkpoint".into())
            .spawn(move || run(&conn, &thread))
            .map_err(|err| {
                rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
                    Some(format!("cannot start the checkpoint thread: {err}")),
                )
            })?;
        Ok(Self { shared })
    }

    /// Counts one write; every [`NUDGE_EVERY`] writes wakes the thread.
    pub(super) fn wrote(&self) {
        let n = self.shared.writes.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_multiple_of(NUDGE_EVERY) {
            self.shared.signal().nudged = true;
            self.shared.wake.notify_one();
        }
    }
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        self.shared.signal().stop = true;
        self.shared.wake.notify_one();
    }
}

impl Shared {
    fn signal(&self) -> MutexGuard<'_, Signal> {
        self.signal
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn run(conn: &Connection, shared: &Shared) {
    let mut seen = 0;
    // Whether the WAL may hold frames a TRUNCATE checkpoint has not emptied.
    let mut dirty = true;
    loop {
        let stop = {
            let signal = shared.signal();
            let (mut signal, _) = shared
                .wake
                .wait_timeout_while(signal, INTERVAL, |s| !s.nudged && !s.stop)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            signal.nudged = false;
            signal.stop
        };
        let writes = shared.writes.load(Ordering::Relaxed);
        if stop {
            checkpoint(conn, "TRUNCATE", TRUNCATE_WAIT);
            return;
        }
        if writes != seen {
            seen = writes;
            dirty = true;
            checkpoint(conn, "PASSIVE", Duration::ZERO);
        } else if dirty {
            dirty = !checkpoint(conn, "TRUNCATE", TRUNCATE_WAIT);
        }
    }
}

/// Runs one checkpoint; returns whether it copied the whole WAL.
fn checkpoint(conn: &Connection, mode: &str, wait: Duration) -> bool {
    let done = conn.busy_timeout(wait).and_then(|()| {
        conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
            ))
        })
    });
    match done {
        // (busy, frames in the WAL, frames copied)
        Ok((busy, log, copied)) => busy == 0 && log == copied,
        Err(err) => {
            tracing::debug!(target: "sessions", store = "sqlite", mode, error = %err, "checkpoint failed; retried later");
            false
        }
    }
}
