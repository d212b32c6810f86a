//! What a write transaction of a SQL store checks, and in which order: [`create`], [`save`]
//! and [`cycle`], written once over [`WriteTx`], the statements each store runs its own way
//! (SQLite one row at a time under its write lock, PostgreSQL in batches under row locks).

use crate::expiry::Deadline;
use crate::record::{Changeset, Record, Slot};
use crate::store::{SaveOutcome, StoreError};

use super::{check, db_error, needs_headers};

/// Whether a write transaction commits, and what it returns.
pub(crate) enum Commit<R> {
    Yes(R),
    No(R),
}

/// Commits when the body says so; rolls back when it says not to, and on errors (a failed
/// rollback is logged: the error that caused it is the one returned).
pub(crate) async fn finish<DB: sqlx::Database, R>(
    tx: sqlx::Transaction<'static, DB>,
    result: Result<Commit<R>, StoreError>,
) -> Result<R, StoreError> {
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
                tracing::warn!(target: "sessions", database = DB::NAME, error = %rollback, "rollback failed");
            }
            Err(err)
        }
    }
}

/// The revision a whole slot is filed at when its row is new: on create, the revision it
/// carries (at least 1, so that a stored slot never looks absent; a cycled record keeps its
/// revisions); written by a save, 1. A slot that is already stored moves one up instead.
pub(crate) fn first_revision(slot: &Slot, created: bool) -> i64 {
    if created {
        super::revision_column(slot.revision().max(1))
    } else {
        1
    }
}

/// The statements of one open write transaction of a SQL store.
pub(crate) trait WriteTx {
    /// Moves a live session's deadline, which locks its row until the commit; false when the
    /// session is absent or expired.
    async fn touch(&mut self, key: &str, deadline: Deadline, now: i64) -> Result<bool, StoreError>;
    /// Locks a live session's row until the commit; false when it is absent or expired.
    async fn lock_live(&mut self, key: &str, now: i64) -> Result<bool, StoreError>;
    /// Inserts a session row; false when the key is taken.
    async fn insert_session(&mut self, key: &str, deadline: Deadline) -> Result<bool, StoreError>;
    /// Gives an expired session row a new deadline; false when the session is live.
    async fn replace_expired(
        &mut self,
        key: &str,
        deadline: Deadline,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Removes a session's slots and fields, not its row.
    async fn clear(&mut self, key: &str) -> Result<(), StoreError>;
    /// The session's stored slots without their fields, with their revisions.
    async fn headers(&mut self, key: &str) -> Result<Vec<Slot>, StoreError>;
    /// Writes whole slots: their headers (keeping their place when they exist, moving their
    /// revision one up, or at [`first_revision`] when new), and exactly their fields.
    async fn put(&mut self, key: &str, slots: &[&Slot], created: bool) -> Result<(), StoreError>;
    /// Writes changes already checked: whole slots, field updates (each moving its slot's
    /// revision one up) and removals.
    async fn write(&mut self, key: &str, changes: &Changeset) -> Result<(), StoreError>;
    /// Copies a session's slots and fields, in their order and at their revisions, to `to`.
    async fn copy(&mut self, from: &str, to: &str) -> Result<(), StoreError>;
    /// Removes a session: its row, slots and fields.
    async fn delete(&mut self, key: &str) -> Result<(), StoreError>;
}

/// Files a session row under `key`: a new row, or an expired leftover's row with its slots
/// removed. [`StoreError::Collision`] when a live session holds the key.
async fn claim<T: WriteTx>(
    tx: &mut T,
    key: &str,
    deadline: Deadline,
    now: i64,
) -> Result<(), StoreError> {
    if tx.insert_session(key, deadline).await? {
        return Ok(());
    }
    if !tx.replace_expired(key, deadline, now).await? {
        return Err(StoreError::Collision);
    }
    tx.clear(key).await
}

/// Checks `changes` against the stored slots (expected revisions, field updates' slots),
/// then writes them.
async fn apply<T: WriteTx>(tx: &mut T, key: &str, changes: &Changeset) -> Result<(), StoreError> {
    if needs_headers(changes) {
        let headers = tx.headers(key).await?;
        check(headers, changes)?;
    }
    tx.write(key, changes).await
}

/// Creates a session; never overwrites a live one.
pub(crate) async fn create<T: WriteTx>(
    tx: &mut T,
    key: &str,
    record: &Record,
    deadline: Deadline,
    now: i64,
) -> Result<Commit<()>, StoreError> {
    claim(tx, key, deadline, now).await?;
    let slots: Vec<&Slot> = record.slots().collect();
    tx.put(key, &slots, true).await?;
    Ok(Commit::Yes(()))
}

/// Saves `changes` to a live session. The session row first: touching it locks it, so saves
/// to one session run one after the other, and it is what makes a save an update, never an
/// upsert. A stale expectation is a [`StoreError::Conflict`] and the caller rolls back.
pub(crate) async fn save<T: WriteTx>(
    tx: &mut T,
    key: &str,
    changes: &Changeset,
    deadline: Deadline,
    now: i64,
) -> Result<Commit<SaveOutcome>, StoreError> {
    if !tx.touch(key, deadline, now).await? {
        return Ok(Commit::No(SaveOutcome::Missing));
    }
    apply(tx, key, changes).await?;
    Ok(Commit::Yes(SaveOutcome::Saved))
}

/// Moves a live session from `from` to `to` with `changes` applied and `deadline` set. The old
/// row is locked first, as a save locks it: a save to `from` committed before is carried over,
/// one waiting behind the lock finds `from` gone. Any error leaves everything as it was (the
/// caller rolls back).
pub(crate) async fn cycle<T: WriteTx>(
    tx: &mut T,
    from: &str,
    to: &str,
    changes: &Changeset,
    deadline: Deadline,
    now: i64,
) -> Result<Commit<SaveOutcome>, StoreError> {
    if !tx.lock_live(from, now).await? {
        return Ok(Commit::No(SaveOutcome::Missing));
    }
    claim(tx, to, deadline, now).await?;
    tx.copy(from, to).await?;
    tx.delete(from).await?;
    apply(tx, to, changes).await?;
    Ok(Commit::Yes(SaveOutcome::Saved))
}
