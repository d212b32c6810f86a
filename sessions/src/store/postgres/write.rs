//! [`PostgresStore`](super::PostgresStore)'s write transactions: the statements
//! [`sql::create`], [`sql::save`] and [`sql::cycle`] run, a batch per kind of change.

use sqlx::{Postgres, Transaction};

use crate::expiry::Deadline;
use crate::record::{Changeset, Slot, SlotChange};
use crate::store::StoreError;
use crate::store::sql::{self, WriteTx, db_error, millis};

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
    /// Runs a statement binding `key` and `other` (a second key, or slot names).
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
    async fn touch(&mut self, key: &str, deadline: Deadline, now: i64) -> Result<bool, StoreError> {
        let sql = self.sql;
        self.session_row(&sql.touch_session, key, deadline, Some(now))
            .await
    }

    async fn lock_live(&mut self, key: &str, now: i64) -> Result<bool, StoreError> {
        let live = sqlx::query(&self.sql.lock_live_session)
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
        // Updating the expired leftover locks its row.
        let sql = self.sql;
        self.session_row(&sql.replace_expired_session, key, deadline, Some(now))
            .await
    }

    async fn clear(&mut self, key: &str) -> Result<(), StoreError> {
        // Fields go with their slots (ON DELETE CASCADE).
        sqlx::query(&self.sql.delete_session_slots)
            .bind(key)
            .execute(&mut **self.tx)
            .await
            .map_err(db_error)?;
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

    async fn copy(&mut self, from: &str, to: &str) -> Result<(), StoreError> {
        let sql = self.sql;
        for statement in [&sql.copy_slots, &sql.copy_fields] {
            self.run(statement, from, to).await?;
        }
        Ok(())
    }

    async fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        // Slots and fields go with the session row (ON DELETE CASCADE).
        sqlx::query(&self.sql.delete_session)
            .bind(key)
            .execute(&mut **self.tx)
            .await
            .map_err(db_error)?;
        Ok(())
    }
}
