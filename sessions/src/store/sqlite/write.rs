//! [`SqliteStore`](super::SqliteStore)'s write transactions: taking the write lock in turn,
//! and the statements [`sql::create`], [`sql::save`] and [`sql::cycle`] run, one row at a time.

use sqlx::{Sqlite, Transaction};

use crate::record::{Changeset, Slot, SlotChange};
use crate::store::StoreError;
use crate::store::sql::{self, Commit, WriteTx, db_error};

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
    /// Runs a statement binding `key` and `slot`; returns how many rows it changed.
    async fn run(&mut self, statement: &str, key: &str, slot: &str) -> Result<u64, StoreError> {
        Ok(sqlx::query(statement)
            .bind(key)
            .bind(slot)
            .execute(&mut **self.tx)
            .await
            .map_err(db_error)?
            .rows_affected())
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
    sql::single_statements! {
        lock_live: live_session,
        clear: [delete_session_fields, delete_session_slots],
        delete: [delete_session_fields, delete_session_slots, delete_session],
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
}
