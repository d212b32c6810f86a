//! [`PostgresStore`](super::PostgresStore)'s write transactions: the statements
//! [`sql::create`], [`sql::save`] and [`sql::cycle`] run, a batch per kind of change.

use sqlx::{Postgres, Transaction};

use crate::record::{Changeset, Slot, SlotChange};
use crate::store::StoreError;
use crate::store::sql::{self, WriteTx, db_error};

use super::queries::Queries;

pub(super) type Tx = Transaction<'static, Postgres>;

/// One transaction's statements. Rows are locked as they are touched (`UPDATE`,
/// `SELECT … FOR UPDATE`), the session row first.
pub(super) struct PgTx<'a> {
    pub(super) tx: &'a mut Tx,
    pub(super) sql: &'a Queries,
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

impl PgTx<'_> {
    /// Runs a statement binding `key` and `other` (slot names).
    async fn run<T>(&mut self, statement: &str, key: &str, other: T) -> Result<u64, StoreError>
    where
        T: for<'q> sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres> + Send,
    {
        Ok(sqlx::query(statement)
            .bind(key)
            .bind(other)
            .execute(&mut **self.tx)
            .await
            .map_err(db_error)?
            .rows_affected())
    }

    async fn upsert_fields(&mut self, key: &str, fields: &Fields<'_>) -> Result<(), StoreError> {
        if fields.names.is_empty() {
            return Ok(());
        }
        sqlx::query(&self.sql.upsert_fields)
            .bind(key)
            .bind(&fields.slots)
            .bind(&fields.names)
            .bind(&fields.bytes)
            .execute(&mut **self.tx)
            .await
            .map_err(db_error)?;
        Ok(())
    }
}

impl WriteTx for PgTx<'_> {
    // Fields go with their slots, slots with their session row (ON DELETE CASCADE).
    sql::single_statements! {
        lock_live: lock_live_session,
        clear: [delete_session_slots],
        delete: [delete_session],
    }

    async fn put(&mut self, key: &str, slots: &[&Slot], created: bool) -> Result<(), StoreError> {
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
        let revisions: Vec<i64> = slots
            .iter()
            .map(|slot| sql::first_revision(slot, created))
            .collect();
        sqlx::query(&self.sql.upsert_slots)
            .bind(key)
            .bind(&names)
            .bind(&type_tags)
            .bind(&versions)
            .bind(&format_tags)
            .bind(&revisions)
            .execute(&mut **self.tx)
            .await
            .map_err(db_error)?;
        let sql = self.sql;
        self.run(&sql.delete_slots_fields, key, &names).await?;
        let mut fields = Fields::default();
        for slot in slots {
            fields.extend(slot.name(), slot.fields());
        }
        self.upsert_fields(key, &fields).await
    }

    async fn write(&mut self, key: &str, changes: &Changeset) -> Result<(), StoreError> {
        let mut removed: Vec<&str> = Vec::new();
        let mut put: Vec<&Slot> = Vec::new();
        let mut updated: Vec<&str> = Vec::new();
        let mut fields = Fields::default();
        for change in changes.iter() {
            match change {
                SlotChange::Put(slot) => put.push(slot),
                SlotChange::Fields {
                    slot, fields: f, ..
                } => {
                    updated.push(slot);
                    fields.extend(slot, f.iter().map(|(name, bytes)| (&**name, bytes)));
                }
                SlotChange::Remove { slot } => removed.push(slot),
            }
        }
        let sql = self.sql;
        if !removed.is_empty() {
            self.run(&sql.delete_slots, key, &removed).await?;
        }
        self.put(key, &put, false).await?;
        if !updated.is_empty() {
            self.run(&sql.bump_revisions, key, &updated).await?;
        }
        self.upsert_fields(key, &fields).await
    }
}
