//! [`SqliteStore`](super::SqliteStore)'s write transactions: taking the write lock in turn,
//! and the statements [`sql::create`], [`sql::save`] and [`sql::cycle`] run, one row at a time.

use sqlx::{Sqlite, Transaction};

use crate::expiry::Deadline;
use crate::record::{Changeset, Slot, SlotChange};
use crate::store::StoreError;
use crate::store::sql::{self, Commit, WriteTx, db_error, millis};

use super::SqliteStore;
use super::queries::Queries;

pub(super) type Tx = Transaction<'static, Sqlite>;

/// A write transaction, and this store's write turn (released after the transaction ends).
/// Fields drop in order: a transaction dropped unfinished (a cancelled request) queues its
/// rollback before the turn passes on.
pub(super) struct Write {
    pub(super) tx: Tx,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

impl Write {
    /// Commits when the body says so; rolls back when it says not to, and on errors.
    pub(super) async fn finish<R>(
        self,
        result: Result<Commit<R>, StoreError>,
    ) -> Result<R, StoreError> {
        let Write { tx, _turn } = self;
        sql::finish(tx, result).await
    }

    /// The statements of `sql` in this transaction.
    pub(super) fn statements<'a>(&'a mut self, sql: &'a Queries) -> SqliteTx<'a> {
        SqliteTx {
            tx: &mut self.tx,
            sql,
        }
    }
}

impl SqliteStore {
    /// Starts a write transaction: in turn with this store's other writers, holding SQLite's
    /// write lock from the start (`BEGIN IMMEDIATE`), so a read in it never has to be upgraded.
    pub(super) async fn begin_write(&self) -> Result<Write, StoreError> {
        let turn = self.writer.clone().lock_owned().await;
        let tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_error)?;
        Ok(Write { _turn: turn, tx })
    }
}

/// One write transaction's statements. SQLite's write lock, held from `BEGIN IMMEDIATE`, is
/// the lock on every session row.
pub(super) struct SqliteTx<'a> {
    tx: &'a mut Tx,
    sql: &'a Queries,
}

impl SqliteTx<'_> {
    /// Runs a statement binding `key` and `other` (a slot, or a second key); returns how many
    /// rows it changed.
    async fn run(&mut self, statement: &str, key: &str, other: &str) -> Result<u64, StoreError> {
        Ok(sqlx::query(statement)
            .bind(key)
            .bind(other)
            .execute(&mut **self.tx)
            .await
            .map_err(db_error)?
            .rows_affected())
    }

    async fn session_row(
        &mut self,
        statement: &str,
        key: &str,
        deadline: Deadline,
        now: Option<i64>,
    ) -> Result<bool, StoreError> {
        let mut query = sqlx::query(statement)
            .bind(key)
            .bind(millis(deadline.created_at))
            .bind(millis(deadline.expires_at));
        if let Some(now) = now {
            query = query.bind(now);
        }
        let changed = query
            .execute(&mut **self.tx)
            .await
            .map_err(db_error)?
            .rows_affected();
        Ok(changed > 0)
    }

    async fn upsert_fields<'f>(
        &mut self,
        key: &str,
        slot: &str,
        fields: impl IntoIterator<Item = (&'f str, &'f bytes::Bytes)>,
    ) -> Result<(), StoreError> {
        for (field, bytes) in sql::distinct_fields(fields) {
            sqlx::query(&self.sql.upsert_field)
                .bind(key)
                .bind(slot)
                .bind(field)
                .bind(bytes)
                .execute(&mut **self.tx)
                .await
                .map_err(db_error)?;
        }
        Ok(())
    }
}

impl WriteTx for SqliteTx<'_> {
    async fn touch(&mut self, key: &str, deadline: Deadline, now: i64) -> Result<bool, StoreError> {
        let sql = self.sql;
        self.session_row(&sql.touch_session, key, deadline, Some(now))
            .await
    }

    async fn lock_live(&mut self, key: &str, now: i64) -> Result<bool, StoreError> {
        let live = sqlx::query(&self.sql.live_session)
            .bind(key)
            .bind(now)
            .fetch_optional(&mut **self.tx)
            .await
            .map_err(db_error)?;
        Ok(live.is_some())
    }

    async fn insert_session(&mut self, key: &str, deadline: Deadline) -> Result<bool, StoreError> {
        let sql = self.sql;
        self.session_row(&sql.insert_session, key, deadline, None)
            .await
    }

    async fn replace_expired(
        &mut self,
        key: &str,
        deadline: Deadline,
        now: i64,
    ) -> Result<bool, StoreError> {
        let sql = self.sql;
        self.session_row(&sql.replace_expired_session, key, deadline, Some(now))
            .await
    }

    async fn clear(&mut self, key: &str) -> Result<(), StoreError> {
        for statement in [
            &self.sql.delete_session_fields,
            &self.sql.delete_session_slots,
        ] {
            sqlx::query(statement)
                .bind(key)
                .execute(&mut **self.tx)
                .await
                .map_err(db_error)?;
        }
        Ok(())
    }

    async fn headers(&mut self, key: &str) -> Result<Vec<Slot>, StoreError> {
        let rows = sqlx::query(&self.sql.slot_headers)
            .bind(key)
            .fetch_all(&mut **self.tx)
            .await
            .map_err(db_error)?;
        sql::slots_of(&rows, None, sql::header_row)
    }

    async fn put(&mut self, key: &str, slots: &[&Slot], created: bool) -> Result<(), StoreError> {
        let sql = self.sql;
        for slot in slots {
            sqlx::query(&sql.upsert_slot)
                .bind(key)
                .bind(slot.name())
                .bind(slot.type_tag())
                .bind(i64::from(slot.version()))
                .bind(i64::from(slot.format_tag()))
                .bind(sql::first_revision(slot, created))
                .execute(&mut **self.tx)
                .await
                .map_err(db_error)?;
            self.run(&sql.delete_slot_fields, key, slot.name()).await?;
            self.upsert_fields(key, slot.name(), slot.fields()).await?;
        }
        Ok(())
    }

    async fn write(&mut self, key: &str, changes: &Changeset) -> Result<(), StoreError> {
        let sql = self.sql;
        for change in changes.iter() {
            match change {
                SlotChange::Put(slot) => self.put(key, &[slot], false).await?,
                SlotChange::Fields { slot, fields, .. } => {
                    self.run(&sql.bump_revision, key, slot).await?;
                    let fields = fields.iter().map(|(name, bytes)| (&**name, bytes));
                    self.upsert_fields(key, slot, fields).await?;
                }
                SlotChange::Remove { slot } => {
                    for statement in [&sql.delete_slot_fields, &sql.delete_slot] {
                        self.run(statement, key, slot).await?;
                    }
                }
            }
        }
        Ok(())
    }

    async fn copy(&mut self, from: &str, to: &str) -> Result<(), StoreError> {
        let sql = self.sql;
        for statement in [&sql.copy_slots, &sql.copy_fields] {
            self.run(statement, from, to).await?;
        }
        Ok(())
    }

    async fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        self.clear(key).await?;
        sqlx::query(&self.sql.delete_session)
            .bind(key)
            .execute(&mut **self.tx)
            .await
            .map_err(db_error)?;
        Ok(())
    }
}
