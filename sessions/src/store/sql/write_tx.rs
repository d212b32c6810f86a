//! The [`WriteTx`](super::WriteTx) methods that run the same statements the same way in both
//! SQL stores, written once as a macro: they differ only in the sqlx database type and in the
//! SQL text, which each store keeps in its `queries.rs`.

/// Expands, inside `impl WriteTx for …`, the methods that run whole statements binding the
/// same values in both stores: `touch`, `lock_live`, `insert_session`, `replace_expired`,
/// `clear`, `headers`, `copy` and `delete`. The store writes the rest (`put`, `write`), its way.
///
/// The implementing type has a field `tx: &mut sqlx::Transaction<'static, _>` and a field
/// `sql` holding the store's queries (`&Queries`), with the strings `touch_session`,
/// `insert_session`, `replace_expired_session`, `slot_headers`, `copy_slots` and
/// `copy_fields`. The arguments name the store's other queries:
///
/// - `lock_live`: the query selecting a live session's row (binding the key and now), locking
///   it where the database locks rows;
/// - `clear`: the statements, in order, removing a session's slots and fields (binding the key);
/// - `delete`: the statements, in order, removing a session entirely (binding the key).
macro_rules! single_statements {
    (
        lock_live: $lock_live:ident,
        clear: [$($clear:ident),+ $(,)?],
        delete: [$($delete:ident),+ $(,)?] $(,)?
    ) => {
        async fn touch(
            &mut self,
            key: &str,
            deadline: $crate::expiry::Deadline,
            now: i64,
        ) -> Result<bool, $crate::store::StoreError> {
            $crate::store::sql::single_statements!(
                @session_row self, touch_session, key, deadline, now
            )
        }

        async fn lock_live(
            &mut self,
            key: &str,
            now: i64,
        ) -> Result<bool, $crate::store::StoreError> {
            let live = ::sqlx::query(&self.sql.$lock_live)
                .bind(key)
                .bind(now)
                .fetch_optional(&mut **self.tx)
                .await
                .map_err($crate::store::sql::db_error)?;
            Ok(live.is_some())
        }

        async fn insert_session(
            &mut self,
            key: &str,
            deadline: $crate::expiry::Deadline,
        ) -> Result<bool, $crate::store::StoreError> {
            $crate::store::sql::single_statements!(
                @session_row self, insert_session, key, deadline
            )
        }

        async fn replace_expired(
            &mut self,
            key: &str,
            deadline: $crate::expiry::Deadline,
            now: i64,
        ) -> Result<bool, $crate::store::StoreError> {
            // Updating the expired leftover locks its row (where the database locks rows).
            $crate::store::sql::single_statements!(
                @session_row self, replace_expired_session, key, deadline, now
            )
        }

        async fn clear(&mut self, key: &str) -> Result<(), $crate::store::StoreError> {
            $crate::store::sql::single_statements!(@execute self, [$($clear),+], key)
        }

        async fn headers(
            &mut self,
            key: &str,
        ) -> Result<Vec<$crate::record::Slot>, $crate::store::StoreError> {
            let rows = ::sqlx::query(&self.sql.slot_headers)
                .bind(key)
                .fetch_all(&mut **self.tx)
                .await
                .map_err($crate::store::sql::db_error)?;
            $crate::store::sql::slots_of(&rows, None, $crate::store::sql::header_row)
        }

        async fn copy(&mut self, from: &str, to: &str) -> Result<(), $crate::store::StoreError> {
            $crate::store::sql::single_statements!(
                @execute self, [copy_slots, copy_fields], from, to
            )
        }

        async fn delete(&mut self, key: &str) -> Result<(), $crate::store::StoreError> {
            $crate::store::sql::single_statements!(@execute self, [$($delete),+], key)
        }
    };

    // Writes a session row with `statement`, binding the key, the deadline and (when given)
    // now; true when a row changed.
    (@session_row $this:ident, $statement:ident, $key:expr, $deadline:expr $(, $now:expr)?) => {
        ::sqlx::query(&$this.sql.$statement)
            .bind($key)
            .bind($crate::store::sql::millis($deadline.created_at))
            .bind($crate::store::sql::millis($deadline.expires_at))
            $(.bind($now))?
            .execute(&mut **$this.tx)
            .await
            .map(|done| done.rows_affected() > 0)
            .map_err($crate::store::sql::db_error)
    };

    // Runs the statements in order, each binding the same values.
    (@execute $this:ident, [$($statement:ident),+], $($value:expr),+) => {{
        for statement in [$(&$this.sql.$statement),+] {
            ::sqlx::query(statement)
                $(.bind($value))+
                .execute(&mut **$this.tx)
                .await
                .map_err($crate::store::sql::db_error)?;
        }
        Ok(())
    }};
}

pub(crate) use single_statements;
