//! The common save — a field update of one slot, no expected revisions — as one batch of
//! statements that sqlx hands to the connection's worker thread at once.
//!
//! The general save sends `BEGIN IMMEDIATE`, the session row's touch, the slot headers' read,
//! the revision bump, one upsert per field and `COMMIT` one at a time, and every statement is a
//! round trip to sqlx's SQLite worker thread (two thread switches, most of a save's cost). The
//! batch is the same transaction in one trip: its checks are in the statements' conditions,
//! and each statement writes only if the one before it changed a row (`changes() = 1`), so the
//! batch writes everything or nothing:
//!
//! 1. the slot's revision moves up only if the slot is stored with this version and format and
//!    the session is live (the checks the general save reads the headers for);
//! 2. the session row's deadline moves;
//! 3. each field is upserted.
//!
//! When the first statement finds nothing to change the batch writes nothing, and the caller
//! runs the general save, which finds out why (a session gone, a slot changed meanwhile).

use sqlx::pool::PoolConnection;
use sqlx::{Executor, Row, Sqlite, SqliteConnection};

use super::SqliteStore;
use crate::expiry::Deadline;
use crate::store::sql::{FieldUpdate, Tables, db_error, millis};
use crate::store::{SaveOutcome, StoreError};

/// Up to how many fields one batch writes (one statement text is kept for each count).
pub(super) const MAX_FIELDS: usize = 8;

/// The batch for `fields` fields (1 ≤ `fields` ≤ [`MAX_FIELDS`]). Its parameters are plain `?`:
/// sqlx binds a batch's arguments statement after statement, in order (see
/// [`SqliteStore::save_in_one_batch`]).
pub(super) fn statement(tables: &Tables, fields: usize) -> String {
    let Tables {
        sessions: s,
        slots: sl,
        fields: f,
        ..
    } = tables;
    let mut batch = format!(
        "BEGIN IMMEDIATE;
         UPDATE {sl} SET revision = revision + 1
          WHERE key = ? AND slot = ? AND version = ? AND format_tag = ?
            AND EXISTS (SELECT 1 FROM {s} WHERE key = ? AND expires_at > ?);
         UPDATE {s} SET created_at = ?, expires_at = ? WHERE key = ? AND changes() = 1;"
    );
    for _ in 0..fields {
        batch.push_str(&format!(
            "
         INSERT INTO {f} (key, slot, field, bytes) SELECT ?, ?, ?, ? WHERE changes() = 1
          ON CONFLICT (key, slot, field) DO UPDATE SET bytes = excluded.bytes;"
        ));
    }
    // Whether the last statement wrote (then every one did), read inside the transaction.
    batch.push_str("\n         SELECT changes();\n         COMMIT;");
    batch
}

impl SqliteStore {
    /// Saves `update` in one batch. `None`: it has more fields than a batch takes, or the batch
    /// wrote nothing; the general save runs.
    pub(super) async fn save_in_one_batch(
        &self,
        key: &str,
        update: FieldUpdate<'_>,
        deadline: Deadline,
        now: i64,
    ) -> Result<Option<SaveOutcome>, StoreError> {
        let FieldUpdate {
            slot,
            version,
            format,
            fields,
        } = update;
        let Some(statement) = fields
            .len()
            .checked_sub(1)
            .and_then(|i| self.sql.one_batch_save.get(i))
        else {
            return Ok(None);
        };
        // Statement by statement, each one's `?` in order.
        let mut query = sqlx::query(statement)
            .bind(key)
            .bind(slot)
            .bind(i64::from(version))
            .bind(i64::from(format.tag()))
            .bind(key)
            .bind(now)
            .bind(millis(deadline.created_at))
            .bind(millis(deadline.expires_at))
            .bind(key);
        for (name, bytes) in &fields {
            query = query.bind(key).bind(slot).bind(*name).bind(*bytes);
        }
        let _turn = self.writer.lock().await;
        let conn = self.pool.acquire().await.map_err(db_error)?;
        let mut conn = InBatch(Some(conn));
        // `fetch_all` runs every statement of the batch (`COMMIT` included); the one row is
        // the `SELECT changes()` (a statement count would not do: SQLite reports the last
        // write's count again for `BEGIN` and `COMMIT`).
        let result = conn.get()?.fetch_all(query).await;
        match result {
            Ok(rows) => {
                conn.release();
                match rows.first().map(|row| row.try_get::<i64, _>(0)) {
                    Some(Ok(1)) => Ok(Some(SaveOutcome::Saved)),
                    Some(Ok(0)) => Ok(None),
                    other => Err(StoreError::backend(std::io::Error::other(format!(
                        "the one-batch save answered {other:?}, not 0 or 1"
                    )))),
                }
            }
            Err(err) => {
                // The batch stopped part way, perhaps inside its transaction: end that (or,
                // when that fails too, `conn` closes the connection as it drops).
                if conn.get()?.execute("ROLLBACK").await.is_ok() {
                    conn.release();
                }
                Err(db_error(err))
            }
        }
    }
}

/// A pooled connection running a batch. Unless released (the batch ran to its end, or was
/// rolled back), dropping it closes the connection instead of returning it to the pool: a
/// request cancelled mid-batch (a client gone) stops sqlx's worker between two statements,
/// perhaps inside the batch's transaction, and closing the connection is what rolls that back.
struct InBatch(Option<PoolConnection<Sqlite>>);

impl InBatch {
    fn get(&mut self) -> Result<&mut SqliteConnection, StoreError> {
        self.0
            .as_deref_mut()
            .ok_or_else(|| StoreError::backend(std::io::Error::other("connection released")))
    }

    /// Back to the pool: no transaction is open on it.
    fn release(&mut self) {
        drop(self.0.take());
    }
}

impl Drop for InBatch {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            drop(conn.detach());
        }
    }
}

#[cfg(test)]
mod tests {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

    use super::*;

    #[tokio::test]
    async fn a_batch_cut_short_closes_its_connection_and_its_transaction_with_it() {
        let path = std::env::temp_dir().join(format!(
            "sessions_one_batch_{}_{}.db",
            std::process::id(),
            line!()
        ));
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .busy_timeout(std::time::Duration::from_millis(200));
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .expect("a pool");
        let mut cut = InBatch(Some(pool.acquire().await.expect("a connection")));
        cut.get()
            .expect("held")
            .execute("BEGIN IMMEDIATE")
            .await
            .expect("begins");
        // The request is cancelled here: the guard drops without being released.
        drop(cut);
        let mut next = pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .expect("the cut batch's write lock is gone");
        sqlx::query("CREATE TABLE t (x INTEGER)")
            .execute(&mut *next)
            .await
            .expect("writes");
        next.commit().await.expect("commits");
        pool.close().await;
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}
