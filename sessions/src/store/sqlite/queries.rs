//! The table a [`SqliteStore`](super::SqliteStore) keeps, and the SQL it runs, written once per
//! table name.

use crate::store::table_name::{self, TableNameError};

/// The table name when none is given.
pub(super) const DEFAULT_TABLE: &str = "sessions";

/// The statement that creates the table `quoted` (a quoted name) if it is missing.
pub(super) fn create_table(quoted: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {quoted} (
            key BLOB PRIMARY KEY NOT NULL,
            version INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            owner TEXT,
            data BLOB NOT NULL
        ) WITHOUT ROWID"
    )
}

pub(super) use crate::store::upkeep::sql::{millis, time};

/// The statements of one store, written once for its table name. Parameters are numbered as
/// the store binds them; every time is milliseconds since the Unix epoch.
#[derive(Debug)]
pub(super) struct Queries {
    /// The table name, unquoted.
    pub(super) table: String,
    /// Creates the table and its indexes if missing.
    pub(super) schema: String,
    /// `?1` key, `?2` now → `version`, `data`.
    pub(super) load: String,
    /// `?1` key, `?2` version, `?3` expires_at, `?4` owner, `?5` data, `?6` now: inserts, or
    /// replaces an ended row.
    pub(super) insert: String,
    /// `?1` key, `?2` current version, `?3` now, `?4` version, `?5` expires_at, `?6` owner,
    /// `?7` data: replaces a row whose end and owner stay as they are, leaving the indexes
    /// alone (an `UPDATE` that sets an indexed column rewrites its index entry even to the
    /// same value: one more page in the WAL, a fifth of a save's CPU time).
    pub(super) update_data: String,
    /// The same parameters: replaces the row, its end and owner with it.
    pub(super) update: String,
    /// `?1` key, `?2` current version, `?3` now.
    pub(super) delete: String,
    /// `?1` owner, `?2` now → `key`, `version`, `data`.
    pub(super) owned_by: String,
    /// `?1` now, `?2` batch size: deletes a batch of ended rows → per row, whether it held a
    /// session (not a login's forwarding mark: the blob's tenth byte is its kind).
    pub(super) delete_expired: String,
    /// `?1` after (a key), `?2` now, `?3` page size → `key`, `version`, `data`, in key order.
    pub(super) scan: String,
}

impl Queries {
    /// The statements for table `base`, if it is a valid name.
    pub(super) fn new(base: &str) -> Result<Self, TableNameError> {
        table_name::check(base)?;
        let t = format!("\"{base}\"");
        let by_expiry = format!("\"{base}_by_expiry\"");
        let by_owner = format!("\"{base}_by_owner\"");
        Ok(Self {
            schema: format!(
                "{};
                CREATE INDEX IF NOT EXISTS {by_expiry} ON {t} (expires_at);
                CREATE INDEX IF NOT EXISTS {by_owner} ON {t} (owner) WHERE owner IS NOT NULL;",
                create_table(&t)
            ),
            load: format!("SELECT version, data FROM {t} WHERE key = ?1 AND expires_at > ?2"),
            insert: format!(
                "INSERT INTO {t} (key, version, expires_at, owner, data) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (key) DO UPDATE SET version = excluded.version,
                    expires_at = excluded.expires_at, owner = excluded.owner, data = excluded.data
                 WHERE {t}.expires_at <= ?6"
            ),
            update_data: format!(
                "UPDATE {t} SET version = ?4, data = ?7
                 WHERE key = ?1 AND version = ?2 AND expires_at > ?3
                    AND expires_at = ?5 AND owner IS ?6"
            ),
            update: format!(
                "UPDATE {t} SET version = ?4, expires_at = ?5, owner = ?6, data = ?7
                 WHERE key = ?1 AND version = ?2 AND expires_at > ?3"
            ),
            delete: format!("DELETE FROM {t} WHERE key = ?1 AND version = ?2 AND expires_at > ?3"),
            owned_by: format!(
                "SELECT key, version, data FROM {t} INDEXED BY {by_owner}
                 WHERE owner = ?1 AND expires_at > ?2"
            ),
            delete_expired: format!(
                "DELETE FROM {t} WHERE key IN
                    (SELECT key FROM {t} WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2)
                 RETURNING substr(data, 10, 1) IN (x'01', x'11')"
            ),
            scan: format!(
                "SELECT key, version, data FROM {t} WHERE key > ?1 AND expires_at > ?2 ORDER BY key LIMIT ?3"
            ),
            table: base.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names() {
        assert!(Queries::new("sessions").is_ok());
        assert!(Queries::new("_app_Sessions2").is_ok());
        for bad in ["", "2sessions", "a-b", "a b", "a\"b", "sessions;drop", "é"] {
            assert!(Queries::new(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(Queries::new(&"a".repeat(40)).is_ok());
        assert!(Queries::new(&"a".repeat(41)).is_err());
    }

    #[test]
    fn times_round_trip() {
        for ms in [0, 1, -1, 1_735_689_600_123, -86_400_000] {
            let t = time(ms).expect("in range");
            assert_eq!(millis(t), ms);
        }
    }
}
