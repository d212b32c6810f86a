//! The SQL a [`MySqlStore`](super::MySqlStore) runs, written once per table name, in the
//! dialect MySQL 8 and MariaDB 10.11 both accept.

use crate::store::table_name::{self, TableNameError};

/// The table name when none is given.
pub(super) const DEFAULT_TABLE: &str = "sessions";

/// How many rows one batch of a sweep removes.
pub(super) const PAGE: i64 = 500;

/// The statements of one store.
#[derive(Debug)]
pub(super) struct Queries {
    /// The table name, unquoted.
    pub(super) table: String,
    /// Creates the table with its indexes, if it is missing.
    pub(super) schema: String,
    /// key, now → `version`, `data`.
    pub(super) load: String,
    /// key, version, expires_at, owner, data: a new row (a duplicate key fails).
    pub(super) insert: String,
    /// version, expires_at, owner, data, key, now: replaces an ended row.
    pub(super) replace_ended: String,
    /// version, expires_at, owner, data, key, current version, now: writes over the live row
    /// of the current version.
    pub(super) update: String,
    /// key, current version, now: deletes the live row of that version.
    pub(super) delete: String,
    /// key, now → a row when a live one is stored.
    pub(super) live: String,
    /// owner, now → `key`, `version`, `data` of the owner's live rows.
    pub(super) owned_by: String,
    /// now, batch size: removes a batch of ended rows.
    pub(super) delete_expired: String,
    /// after (a key), now, page size → `key`, `version`, `data`, in key order.
    pub(super) scan: String,
}

impl Queries {
    /// The statements for table `base`, if it is a valid name.
    pub(super) fn new(base: &str) -> Result<Self, TableNameError> {
        table_name::check(base)?;
        let t = format!("`{base}`");
        Ok(Self {
            schema: format!(
                "CREATE TABLE IF NOT EXISTS {t} (
                    `key` BINARY(32) NOT NULL,
                    version BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL,
                    owner VARBINARY(1024) NULL,
                    data MEDIUMBLOB NOT NULL,
                    PRIMARY KEY (`key`),
                    INDEX `{base}_by_expiry` (expires_at),
                    INDEX `{base}_by_owner` (owner)
                 ) ENGINE = InnoDB"
            ),
            load: format!("SELECT version, data FROM {t} WHERE `key` = ? AND expires_at > ?"),
            insert: format!(
                "INSERT INTO {t} (`key`, version, expires_at, owner, data) VALUES (?, ?, ?, ?, ?)"
            ),
            replace_ended: format!(
                "UPDATE {t} SET version = ?, expires_at = ?, owner = ?, data = ?
                 WHERE `key` = ? AND expires_at <= ?"
            ),
            update: format!(
                "UPDATE {t} SET version = ?, expires_at = ?, owner = ?, data = ?
                 WHERE `key` = ? AND version = ? AND expires_at > ?"
            ),
            delete: format!("DELETE FROM {t} WHERE `key` = ? AND version = ? AND expires_at > ?"),
            live: format!("SELECT 1 FROM {t} WHERE `key` = ? AND expires_at > ?"),
            owned_by: format!(
                "SELECT `key`, version, data FROM {t} WHERE owner = ? AND expires_at > ?"
            ),
            delete_expired: format!(
                "DELETE FROM {t} WHERE expires_at <= ? ORDER BY expires_at LIMIT ?"
            ),
            scan: format!(
                "SELECT `key`, version, data FROM {t} WHERE `key` > ? AND expires_at > ?
                 ORDER BY `key` LIMIT ?"
            ),
            table: base.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_quoted() {
        let sql = Queries::new("app_sessions").expect("valid");
        assert!(sql.load.contains("FROM `app_sessions` WHERE"));
        assert!(sql.schema.contains("INDEX `app_sessions_by_owner` (owner)"));
        assert!(Queries::new("app`; DROP TABLE users").is_err());
    }
}
