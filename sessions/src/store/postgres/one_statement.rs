//! The common save — a field update of one slot, no expected revisions — as one statement in
//! its transaction: `BEGIN`, the statement, `COMMIT` are three round trips to the server where
//! the general save makes six (`BEGIN`, the session row's touch, the slot headers' read, the
//! revision bump, the field upsert, `COMMIT`).
//!
//! The statement's parts run in the general save's lock order, each fed by the one before it:
//! the session row is touched (locked) only while live, the slot's revision moves only for the
//! touched session and only while the slot is stored at this version and format, and the
//! fields are written only after the bump. It answers how many rows each part changed: no
//! session row is a missing session; no slot bump (the slot is gone or another version
//! rewrote it) rolls back and leaves the answer to the general save, which reads the headers
//! and says why.

use sqlx::Row;

use super::PostgresStore;
use crate::expiry::Deadline;
use crate::store::sql::{self, Commit, FieldUpdate, Tables, db_error, millis};
use crate::store::{SaveOutcome, StoreError};

/// The statement. Parameters: $1 key, $2 `created_at`, $3 `expires_at`, $4 now, $5 slot,
/// $6 version, $7 format tag, $8 field names, $9 field bytes.
pub(super) fn statement(tables: &Tables) -> String {
    let Tables {
        sessions: s,
        slots: sl,
        fields: f,
        ..
    } = tables;
    format!(
        "WITH touched AS (
             UPDATE {s} SET created_at = $2, expires_at = $3
             WHERE key = $1 AND expires_at > $4
             RETURNING key
         ), bumped AS (
             UPDATE {sl} SET revision = revision + 1
             WHERE key = (SELECT key FROM touched) AND slot = $5
               AND version = $6 AND format_tag = $7
             RETURNING key
         ), written AS (
             INSERT INTO {f} (key, slot, field, bytes)
             SELECT $1, $5, u.field, u.bytes
             FROM UNNEST($8::text[], $9::bytea[]) WITH ORDINALITY AS u (field, bytes, n)
             WHERE EXISTS (SELECT 1 FROM bumped)
             ORDER BY u.n
             ON CONFLICT (key, slot, field) DO UPDATE SET bytes = EXCLUDED.bytes
             RETURNING 1
         )
         SELECT (SELECT count(*) FROM touched) AS touched,
                (SELECT count(*) FROM bumped) AS bumped,
                (SELECT count(*) FROM written) AS written"
    )
}

impl PostgresStore {
    /// Saves `update` with the one statement. `None`: the slot did not match (rolled back); the
    /// general save runs.
    pub(super) async fn save_in_one_statement(
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
        let (names, bytes): (Vec<&str>, Vec<&[u8]>) = fields.into_iter().unzip();
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let answer = sqlx::query(&self.sql.one_statement_save)
            .bind(key)
            .bind(millis(deadline.created_at))
            .bind(millis(deadline.expires_at))
            .bind(now)
            .bind(slot)
            .bind(i64::from(version))
            .bind(i16::from(format.tag()))
            .bind(&names)
            .bind(&bytes)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)
            .and_then(|row| {
                let count = |column| row.try_get::<i64, _>(column).map_err(db_error);
                Ok((count("touched")?, count("bumped")?, count("written")?))
            });
        let written = i64::try_from(names.len()).unwrap_or(i64::MAX);
        let result = match answer {
            Ok((0, _, _)) => Ok(Commit::No(Some(SaveOutcome::Missing))),
            Ok((_, 0, _)) => Ok(Commit::No(None)),
            Ok((1, 1, n)) if n == written => Ok(Commit::Yes(Some(SaveOutcome::Saved))),
            Ok(other) => Err(StoreError::backend(std::io::Error::other(format!(
                "the one-statement save changed (session, slot, fields) = {other:?} rows"
            )))),
            Err(err) => Err(err),
        };
        sql::finish(tx, result).await
    }
}
