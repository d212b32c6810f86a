//! The table name a [`PostgresStore`](super::PostgresStore) is given, and the SQL it runs,
//! written once per table name.

use crate::store::table_name::{self, TableNameError};

/// The table name when none is given.
pub(super) const DEFAULT_TABLE: &str = "sessions";

/// How many rows one page of a scan (sweeping, eager migration, the upgrade) handles.
pub(super) const PAGE: i64 = 500;

/// How much of each heap page inserts leave free (`fillfactor`, in percent), so that the
/// update of a session finds room for its new version on the same page: most saves change
/// only `version` and `data`, which no index covers, so PostgreSQL writes them as HOT updates
/// (no index entry, and a smaller WAL record). See the store's docs for the measurements.
pub(super) const FILLFACTOR: u8 = 80;

/// Whether a row holds a live session (not a forwarding mark): its entry's kind, the tenth
/// byte, is `1`, or `0x11` when bound to its key (see `store::blob`). A row too short to have
/// one (damaged) is not a session, and no error: `get_byte` would fail the whole statement.
pub(super) const SESSION_ROW: &str =
    "substring(data from 10 for 1) IN ('\\x01'::bytea, '\\x11'::bytea)";

/// A checked table name, and the quoted names derived from it.
#[derive(Debug, Clone)]
pub(super) struct Table {
    /// The name as given, unquoted.
    pub(super) base: String,
}

impl Table {
    /// Checks `base`.
    pub(super) fn new(base: &str) -> Result<Self, TableNameError> {
        table_name::check(base)?;
        Ok(Self {
            base: base.to_owned(),
        })
    }

    /// `"<base><suffix>"`, quoted for SQL (the base is a checked identifier: nothing to escape).
    pub(super) fn quoted(&self, suffix: &str) -> String {
        format!("\"{}{suffix}\"", self.base)
    }
}

/// The statements of one store, written once for its table name.
#[derive(Debug)]
pub(super) struct Queries {
    pub(super) table: Table,
    /// `$1` key, `$2` now: the entry's version column and bytes.
    pub(super) load: String,
    /// `$1` key, `$2` version, `$3` expires_at, `$4` owner, `$5` data, `$6` now: writes unless
    /// a live entry is stored.
    pub(super) create: String,
    /// `$1` key, `$2` current version, `$3` version, `$4` expires_at, `$5` owner, `$6` data,
    /// `$7` now: writes over the live entry of the current version.
    pub(super) update: String,
    /// `$1` key, `$2` current version, `$3` now: deletes the live entry of that version.
    pub(super) delete: String,
    /// `$1` key, `$2` now: removes an ended entry; says whether no live one is stored.
    pub(super) clear_ended: String,
    /// `$1` owner, `$2` now: key, version column and bytes of the owner's live sessions.
    pub(super) owned_by: String,
    /// `$1` now, `$2` page: removes a page of ended entries → per entry, whether it held a
    /// session (not a login's forwarding mark: the blob's tenth byte is its kind).
    pub(super) delete_expired: String,
    /// `$1` after key, `$2` now, `$3` page: the next page of live keys, versions and bytes, in
    /// key order.
    pub(super) scan: String,
}

impl Queries {
    pub(super) fn new(table: Table) -> Self {
        let t = table.quoted("");
        Self {
            load: format!("SELECT version, data FROM {t} WHERE key = $1 AND expires_at > $2"),
            create: format!(
                "INSERT INTO {t} AS t (key, version, expires_at, owner, data)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (key) DO UPDATE SET version = EXCLUDED.version,
                    expires_at = EXCLUDED.expires_at, owner = EXCLUDED.owner, data = EXCLUDED.data
                 WHERE t.expires_at <= $6"
            ),
            update: format!(
                "UPDATE {t} SET version = $3, expires_at = $4, owner = $5, data = $6
                 WHERE key = $1 AND version = $2 AND expires_at > $7"
            ),
            delete: format!("DELETE FROM {t} WHERE key = $1 AND version = $2 AND expires_at > $3"),
            clear_ended: format!(
                "WITH ended AS (DELETE FROM {t} WHERE key = $1 AND expires_at <= $2)
                 SELECT NOT EXISTS (SELECT 1 FROM {t} WHERE key = $1 AND expires_at > $2)"
            ),
            owned_by: format!(
                "SELECT key, version, data FROM {t} WHERE owner = $1 AND expires_at > $2"
            ),
            delete_expired: format!(
                "DELETE FROM {t} WHERE key IN (
                    SELECT key FROM {t} WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED
                 ) AND expires_at <= $1
                 RETURNING {SESSION_ROW}"
            ),
            scan: format!(
                "SELECT key, version, data FROM {t} WHERE key > $1 AND expires_at > $2 ORDER BY key LIMIT $3"
            ),
            table,
        }
    }

    /// The statements that make `table` and its indexes (if they are not there).
    pub(super) fn schema(table: &Table) -> [String; 3] {
        let t = table.quoted("");
        let pkey = table.quoted("_pkey");
        let by_expiry = table.quoted("_by_expiry");
        let by_owner = table.quoted("_by_owner");
        [
            format!(
                "CREATE TABLE IF NOT EXISTS {t} (
                    key BYTEA NOT NULL,
                    version BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL,
                    owner TEXT COLLATE \"C\",
                    data BYTEA NOT NULL,
                    CONSTRAINT {pkey} PRIMARY KEY (key)
                 ) WITH (fillfactor = {FILLFACTOR})"
            ),
            format!("CREATE INDEX IF NOT EXISTS {by_expiry} ON {t} (expires_at)"),
            format!("CREATE INDEX IF NOT EXISTS {by_owner} ON {t} (owner) WHERE owner IS NOT NULL"),
        ]
    }
}

pub(super) use crate::store::upkeep::sql::{millis, time, version_column};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names() {
        assert!(Table::new("sessions").is_ok());
        assert!(Table::new("_app_Sessions2").is_ok());
        for bad in ["", "2sessions", "a-b", "a b", "a\"b", "sessions;drop", "é"] {
            assert!(Table::new(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(Table::new(&"a".repeat(40)).is_ok());
        assert!(Table::new(&"a".repeat(41)).is_err());
        let table = Table::new("app").expect("valid");
        assert_eq!(table.quoted("_by_owner"), "\"app_by_owner\"");
    }

    #[test]
    fn times_round_trip() {
        for ms in [0, 1, -1, 1_735_689_600_123, -86_400_000] {
            let t = time(ms).expect("in range");
            assert_eq!(millis(t), ms);
        }
    }

    #[test]
    fn every_version_has_its_own_column_value() {
        for v in [0, 1, i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX] {
            assert_eq!(version_column(v).cast_unsigned(), v);
        }
        assert_ne!(version_column(u64::MAX), version_column(1));
    }
}
