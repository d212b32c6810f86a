//! Connections the store keeps between calls, in front of the sqlx pool.
//!
//! sqlx's pool pings every connection given back to it (a round trip, in a task of its own)
//! before anyone may have it again. For a store whose every call is one statement that is a
//! second round trip per call, during which the connection serves nobody: with 64 concurrent
//! requests on 10 connections, saves of one session then wait in the pool's queue between
//! their load and their compare-and-swap long enough to lose it again and again (the
//! conformance suite's 64 writers ran out of the 3 s retry budget). So a call that ended
//! cleanly leaves its connection here for the next call. Calls take turns in order (a FIFO
//! semaphore, one turn per connection the pool may open), at most `max_connections - 1` are
//! kept (one always goes back, for other users of the pool), and one unused for [`FRESH_FOR`]
//! goes back to the pool, which checks it (a server restart may have cut it).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::MySql;
use sqlx::mysql::MySqlPool;
use sqlx::pool::PoolConnection;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::errors::StoreError;

/// How long a kept connection may sit unused and still be handed out.
const FRESH_FOR: Duration = Duration::from_secs(1);

pub(super) struct Held {
    pool: MySqlPool,
    kept: Mutex<Vec<(PoolConnection<MySql>, Instant)>>,
    turns: Arc<Semaphore>,
    keep: usize,
}

/// A connection lent to one call. [`Lease::finish`] keeps it for the next call when the call
/// ended cleanly; dropped otherwise, it goes back to the pool (which checks it).
pub(super) struct Lease<'h> {
    held: &'h Held,
    conn: Option<PoolConnection<MySql>>,
    _turn: OwnedSemaphorePermit,
}

impl Held {
    pub(super) fn new(pool: MySqlPool) -> Self {
        let max = pool.options().get_max_connections().max(1) as usize;
        Self {
            pool,
            kept: Mutex::new(Vec::with_capacity(max)),
            turns: Arc::new(Semaphore::new(max)),
            keep: max - 1,
        }
    }

    pub(super) fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    /// A connection: a kept one still fresh, else one from the pool.
    pub(super) async fn lease(&self) -> Result<Lease<'_>, StoreError> {
        let turn = self
            .turns
            .clone()
            .acquire_owned()
            .await
            .map_err(StoreError::backend)?;
        let kept = {
            let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
            let mut found = None;
            while let Some((conn, since)) = kept.pop() {
                if since.elapsed() < FRESH_FOR {
                    found = Some(conn);
                    break;
                }
                drop(conn); // back to the pool, which checks it
            }
            found
        };
        let conn = match kept {
            Some(conn) => conn,
            None => self.pool.acquire().await.map_err(StoreError::backend)?,
        };
        Ok(Lease {
            held: self,
            conn: Some(conn),
            _turn: turn,
        })
    }
}

impl Lease<'_> {
    pub(super) fn conn(&mut self) -> &mut PoolConnection<MySql> {
        match self.conn.as_mut() {
            Some(conn) => conn,
            None => unreachable!("a lease holds its connection until it is finished"),
        }
    }

    /// Keeps the connection for the next call if the call's statement was answered (rows, or
    /// an error of the server's such as a duplicate key); otherwise it goes back to the pool.
    pub(super) fn finish<T>(mut self, outcome: &Result<T, sqlx::Error>) {
        let answered = match outcome {
            Ok(_) => true,
            Err(sqlx::Error::Database(_)) => true,
            Err(_) => false,
        };
        let Some(conn) = self.conn.take() else { return };
        if !answered {
            return;
        }
        let mut kept = self.held.kept.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() < self.held.keep {
            kept.push((conn, Instant::now()));
        }
    }
}
