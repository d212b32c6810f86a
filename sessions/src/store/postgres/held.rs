//! Connections the store keeps between calls, in front of the sqlx pool.
//!
//! # Why
//!
//! sqlx's pool checks every connection it is given back with a round trip of its own (a
//! `Sync`, answered by `ReadyForQuery`: `PoolConnection`'s drop spawns `return_to_pool`, which
//! pings) before anyone may have it again, whatever the pool's options. For a store whose every
//! call is one statement, that is a second round trip per call: the request does not wait for
//! it, but the connection is busy for it, and the server spends on it about half what the
//! statement itself costs. Measured on the local server (one connection, 5000 loads by key):
//! 118–125 µs of backend CPU per load through the pool, 72–78 µs on a connection kept between
//! loads, 32–42 µs per ping. Under load (`benches/store_postgres.rs`, 64 concurrent requests,
//! 10 connections) keeping them took throughput from below tower-sessions-sqlx-store's
//! (which pays the same ping) to 1.6–1.8× it on W1 (load and save) and 1.75–2.0× on W2 (load
//! only).
//!
//! # How
//!
//! A call that ended cleanly (its statement answered, with rows or with a server error such as
//! a unique violation) leaves its connection here, and the next call takes it from here,
//! without the pool. Bounded and fair:
//!
//! - Calls take turns here, in order, one turn per connection the pool may open
//!   (`max_connections`): a call never queues in the pool for a connection this store keeps.
//! - At most `max_connections - 1` connections are kept (none with a pool of one): at least
//!   one always goes back to the pool after each call, so other users of
//!   [`PostgresStore::pool`](super::PostgresStore::pool) get their turn in the pool's queue
//!   even while the store is busy.
//! - A connection goes back to the pool (and through its check, and its `max_lifetime`) when
//!   it sat here unused for [`FRESH_FOR`] (a server restart may have cut it: the pool's check
//!   finds out), after [`KEEP_FOR`] in any case, and when the pool closes. A task returns
//!   those that sat too long, so that an idle store does not hold connections others could use.
//!
//! # When a connection breaks
//!
//! A call whose connection failed (I/O, a `FATAL` from the server such as
//! `pg_terminate_backend`'s, a protocol error) closes that connection (the pool opens another
//! when one is needed) and gives every kept connection back to the pool, which checks each
//! (they are likely cut too: a restart cuts them all). So a broken connection fails at most the
//! one call that found it broken, with a [`StoreError::Backend`](crate::errors::StoreError); the next
//! call gets a checked or new connection. A call that ended otherwise (cancelled mid-statement,
//! a value that did not decode) gives its connection back to the pool, which checks it. Failing
//! fast during an outage stays the circuit's: getting a connection from the pool fails, and
//! opens it.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgDatabaseError, PgPool, PgSeverity, Postgres};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a connection may sit here unused and still be handed out; older ones go back to
/// the pool, which checks them before anyone uses them again. Under load connections are never
/// idle that long.
pub(super) const FRESH_FOR: Duration = Duration::from_secs(1);

/// How long a connection stays here at most, however busy, before it goes back to the pool
/// once (a round trip): the pool's `max_lifetime` is applied then.
pub(super) const KEEP_FOR: Duration = Duration::from_secs(60);

/// The connections kept between calls, and the turns calls take for them.
#[derive(Debug)]
pub(super) struct Held {
    pool: PgPool,
    /// One permit per call at once: the pool's `max_connections`.
    turns: Arc<Semaphore>,
    /// One permit per connection that may be kept: `max_connections - 1`.
    keep: Arc<Semaphore>,
    /// Kept connections, the most recently used last.
    idle: Mutex<Vec<Kept>>,
    /// Whether the task that returns stale connections runs.
    watching: AtomicBool,
}

/// A kept connection.
#[derive(Debug)]
struct Kept {
    conn: PoolConnection<Postgres>,
    right: Right,
    /// When its last call ended.
    since: Instant,
}

/// The right to keep a connection (a permit of [`Held::keep`]), and when it was first kept.
#[derive(Debug)]
struct Right {
    _permit: OwnedSemaphorePermit,
    from: Instant,
}

/// A connection one call holds, used as a `PgConnection`; ended with [`finish`](Lease::finish).
/// Dropped unfinished (a cancelled call, a transaction), it goes back to the pool, which checks
/// it.
pub(super) struct Lease {
    conn: PoolConnection<Postgres>,
    right: Option<Right>,
    held: Arc<Held>,
    // Last: the turn ends once the connection is back.
    _turn: OwnedSemaphorePermit,
}

/// What a call's statement came to, for its connection.
#[derive(Debug, PartialEq, Eq)]
enum Ending {
    /// Answered (rows, or an error the server reported and survived): the connection is ready.
    Clean,
    /// The connection is gone or cannot be trusted: close it, and check the others.
    Broken,
    /// Anything else: let the pool check it.
    Unsure,
}

impl Held {
    pub(super) fn new(pool: PgPool) -> Self {
        let max = usize::try_from(pool.options().get_max_connections().max(1)).unwrap_or(1);
        Self {
            turns: Arc::new(Semaphore::new(max)),
            keep: Arc::new(Semaphore::new(max - 1)),
            pool,
            idle: Mutex::default(),
            watching: AtomicBool::new(false),
        }
    }

    pub(super) fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Kept>> {
        // Every change under the lock is a push, a pop or a swap of the whole list: safe to
        // take over.
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A connection for one call: a kept one when there is a fresh one, else one from the pool.
    /// Waits (in order) while as many calls as the pool has connections are under way, the
    /// whole wait bounded by the pool's acquire timeout. `kept: false` skips the kept ones
    /// (the circuit's probe asks the pool itself).
    pub(super) async fn lease(self: &Arc<Self>, kept: bool) -> Result<Lease, sqlx::Error> {
        let deadline = tokio::time::Instant::now() + self.pool.options().get_acquire_timeout();
        let turn = match tokio::time::timeout_at(deadline, self.turns.clone().acquire_owned()).await
        {
            Ok(Ok(turn)) => turn,
            Ok(Err(_)) => return Err(sqlx::Error::PoolClosed),
            Err(_) => return Err(sqlx::Error::PoolTimedOut),
        };
        if kept && let Some(Kept { conn, right, .. }) = self.take() {
            return Ok(Lease {
                conn,
                right: Some(right),
                held: self.clone(),
                _turn: turn,
            });
        }
        let conn = match tokio::time::timeout_at(deadline, self.pool.acquire()).await {
            Ok(conn) => conn?,
            Err(_) => return Err(sqlx::Error::PoolTimedOut),
        };
        self.watch();
        let right = self
            .keep
            .clone()
            .try_acquire_owned()
            .ok()
            .map(|permit| Right {
                _permit: permit,
                from: Instant::now(),
            });
        Ok(Lease {
            conn,
            right,
            held: self.clone(),
            _turn: turn,
        })
    }

    /// The most recently used kept connection, if it is fresh; stale ones go back to the pool.
    fn take(&self) -> Option<Kept> {
        let (fresh, stale) = {
            let mut idle = self.lock();
            match idle.pop() {
                Some(kept) if kept.since.elapsed() < FRESH_FOR => (Some(kept), Vec::new()),
                // The most recently used one is stale: so are all the others.
                Some(stale) => {
                    let mut all = std::mem::take(&mut *idle);
                    all.push(stale);
                    (None, all)
                }
                None => (None, Vec::new()),
            }
        };
        // Outside the lock: giving a connection back spawns the pool's check.
        drop(stale);
        fresh
    }

    /// Gives every kept connection back to the pool, which checks each.
    fn give_back_all(&self) {
        let all = std::mem::take(&mut *self.lock());
        drop(all);
    }

    /// Gives back the kept connections unused for [`FRESH_FOR`].
    fn give_back_stale(&self) {
        let stale: Vec<Kept> = {
            let mut idle = self.lock();
            // Most recently used last: the stale ones are a prefix.
            let fresh = idle.partition_point(|kept| kept.since.elapsed() >= FRESH_FOR);
            idle.drain(..fresh).collect()
        };
        drop(stale);
    }

    /// Once: a task that gives back the connections that sat here too long, and all of them
    /// when the pool closes (its `close()` waits for every connection it handed out). It ends
    /// when the store is dropped.
    fn watch(self: &Arc<Self>) {
        if self.watching.swap(true, Ordering::AcqRel) {
            return;
        }
        let closed = self.pool.close_event();
        let held: Weak<Held> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut closed = std::pin::pin!(closed);
            let mut ticks = tokio::time::interval(FRESH_FOR);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = &mut closed => {
                        if let Some(held) = held.upgrade() {
                            held.give_back_all();
                        }
                        return;
                    }
                    _ = ticks.tick() => match held.upgrade() {
                        Some(held) => held.give_back_stale(),
                        None => return,
                    },
                }
            }
        });
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // A `PoolConnection` given back spawns the pool's check on the current Tokio runtime,
        // and panics without one: the last clone of a store may be dropped after its runtime
        // is gone. Then the connections are closed instead (their slots freed in the pool).
        if tokio::runtime::Handle::try_current().is_err() {
            let idle = std::mem::take(&mut *self.lock());
            for kept in idle {
                drop(kept.conn.detach());
            }
        }
    }
}

impl Lease {
    /// Ends the call, given what its statement came to: the connection is kept for the next
    /// call when the statement was answered; it is closed when the connection broke (and the
    /// kept ones are checked); it goes back to the pool, which checks it, otherwise. Returns
    /// whether the connection broke.
    pub(super) fn finish<T>(self, outcome: &Result<T, sqlx::Error>) -> bool {
        let Lease {
            mut conn,
            right,
            held,
            _turn,
        } = self;
        let ending = ending(outcome);
        let broke = ending == Ending::Broken;
        match ending {
            Ending::Clean => match right {
                Some(right) if right.from.elapsed() < KEEP_FOR && !held.pool.is_closed() => {
                    held.lock().push(Kept {
                        conn,
                        right,
                        since: Instant::now(),
                    });
                }
                _ => drop(conn),
            },
            Ending::Broken => {
                conn.close_on_drop();
                drop(conn);
                held.give_back_all();
            }
            Ending::Unsure => drop(conn),
        }
        broke
    }
}

/// What `outcome` says about the connection it ran on.
fn ending<T>(outcome: &Result<T, sqlx::Error>) -> Ending {
    match outcome {
        Ok(_) => Ending::Clean,
        Err(sqlx::Error::Database(db)) => {
            let fatal = db
                .try_downcast_ref::<PgDatabaseError>()
                .is_some_and(|pg| matches!(pg.severity(), PgSeverity::Fatal | PgSeverity::Panic));
            // 08: connection exception; 57P: the server shutting down or cancelling sessions.
            let code = db.code();
            let lost = code
                .as_deref()
                .is_some_and(|code| code.starts_with("08") || code.starts_with("57P"));
            if fatal || lost {
                Ending::Broken
            } else {
                Ending::Clean
            }
        }
        Err(
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed,
        ) => Ending::Broken,
        Err(_) => Ending::Unsure,
    }
}

impl Deref for Lease {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.conn
    }
}

impl DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.conn
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    /// An error the server reported with `code` (not a `FATAL` one: those are tested on the
    /// real server, `pg_terminate_backend`).
    #[derive(Debug, thiserror::Error)]
    #[error("server error {0}")]
    struct ServerError(&'static str);

    impl sqlx::error::DatabaseError for ServerError {
        fn message(&self) -> &str {
            self.0
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    fn server_error(code: &'static str) -> Result<(), sqlx::Error> {
        Err(sqlx::Error::Database(Box::new(ServerError(code))))
    }

    #[test]
    fn answered_statements_keep_the_connection_and_lost_ones_close_it() {
        assert_eq!(ending(&Ok::<(), sqlx::Error>(())), Ending::Clean);
        // A unique violation: the statement was answered; the connection is fine.
        assert_eq!(ending(&server_error("23505")), Ending::Clean);
        // pg_terminate_backend's code, a connection failure.
        assert_eq!(ending(&server_error("57P01")), Ending::Broken);
        assert_eq!(ending(&server_error("08006")), Ending::Broken);
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(ending::<()>(&Err(sqlx::Error::Io(reset))), Ending::Broken);
        assert_eq!(ending::<()>(&Err(sqlx::Error::RowNotFound)), Ending::Unsure);
    }
}
