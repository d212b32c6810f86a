//! The SQL [`SqliteStore`](super::SqliteStore) runs, written once per table name.

use super::one_batch;
use crate::store::sql::Tables;

/// The statements of one store, written once for its table names.
pub(super) struct Queries {
    pub(super) tables: Tables,
    pub(super) schema: Vec<String>,
    pub(super) has_revision: String,
    pub(super) add_revision: String,
    pub(super) slots_table: String,
    pub(super) load: String,
    pub(super) insert_session: String,
    pub(super) replace_expired_session: String,
    pub(super) touch_session: String,
    pub(super) slot_headers: String,
    pub(super) upsert_slot: String,
    pub(super) bump_revision: String,
    pub(super) copy_slots: String,
    pub(super) copy_fields: String,
    pub(super) upsert_field: String,
    pub(super) delete_slot_fields: String,
    pub(super) delete_slot: String,
    pub(super) delete_session_fields: String,
    pub(super) delete_session_slots: String,
    pub(super) delete_session: String,
    pub(super) delete_expired_children: [String; 2],
    pub(super) delete_expired: String,
    pub(super) live_session: String,
    pub(super) scan_slots: String,
    pub(super) load_slot: String,
    /// The one-batch save for 1, 2, … [`one_batch::MAX_FIELDS`] fields.
    pub(super) one_batch_save: Vec<String>,
}

impl Queries {
    pub(super) fn new(tables: Tables) -> Self {
        let Tables {
            sessions: s,
            slots: sl,
            fields: f,
            sessions_by_expiry,
            slots_by_name,
            ..
        } = &tables;
        // The expiry index holds (expires_at, key): the batch is read off it in order, and the
        // three deletes of one transaction see the same batch.
        let expired_batch =
            format!("SELECT key FROM {s} WHERE expires_at <= ?1 ORDER BY expires_at, key LIMIT ?2");
        Self {
            schema: vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS {s} (
                        key TEXT PRIMARY KEY NOT NULL,
                        created_at INTEGER NOT NULL,
                        expires_at INTEGER NOT NULL
                    ) WITHOUT ROWID"
                ),
                format!("CREATE INDEX IF NOT EXISTS {sessions_by_expiry} ON {s} (expires_at)"),
                format!(
                    "CREATE TABLE IF NOT EXISTS {sl} (
                        id INTEGER PRIMARY KEY,
                        key TEXT NOT NULL REFERENCES {s} (key) ON DELETE CASCADE,
                        slot TEXT NOT NULL,
                        type_tag TEXT NOT NULL,
                        version INTEGER NOT NULL,
                        format_tag INTEGER NOT NULL,
                        revision INTEGER NOT NULL DEFAULT 1,
                        UNIQUE (key, slot)
                    )"
                ),
                format!("CREATE INDEX IF NOT EXISTS {slots_by_name} ON {sl} (slot, key)"),
                format!(
                    "CREATE TABLE IF NOT EXISTS {f} (
                        id INTEGER PRIMARY KEY,
                        key TEXT NOT NULL,
                        slot TEXT NOT NULL,
                        field TEXT NOT NULL,
                        bytes BLOB NOT NULL,
                        UNIQUE (key, slot, field),
                        FOREIGN KEY (key, slot) REFERENCES {sl} (key, slot) ON DELETE CASCADE
                    )"
                ),
            ],
            // Tables made before slots had revisions get the column (their slots start at 1).
            has_revision: "SELECT count(*) FROM pragma_table_info(?1) WHERE name = 'revision'"
                .to_owned(),
            add_revision: format!(
                "ALTER TABLE {sl} ADD COLUMN revision INTEGER NOT NULL DEFAULT 1"
            ),
            slots_table: format!("{}_slots", tables.base),
            load: format!(
                "SELECT s.created_at, s.expires_at, sl.slot, sl.type_tag, sl.version,
                        sl.format_tag, sl.revision, f.field, f.bytes
                 FROM {s} AS s
                 LEFT JOIN {sl} AS sl ON sl.key = s.key
                 LEFT JOIN {f} AS f ON f.key = sl.key AND f.slot = sl.slot
                 WHERE s.key = ?1 AND s.expires_at > ?2
                 ORDER BY sl.id, f.id"
            ),
            insert_session: format!(
                "INSERT INTO {s} (key, created_at, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO NOTHING"
            ),
            replace_expired_session: format!(
                "UPDATE {s} SET created_at = ?2, expires_at = ?3 WHERE key = ?1 AND expires_at <= ?4"
            ),
            touch_session: format!(
                "UPDATE {s} SET created_at = ?2, expires_at = ?3 WHERE key = ?1 AND expires_at > ?4"
            ),
            slot_headers: format!(
                "SELECT slot, type_tag, version, format_tag, revision FROM {sl} WHERE key = ?1"
            ),
            upsert_slot: format!(
                "INSERT INTO {sl} (key, slot, type_tag, version, format_tag, revision)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (key, slot) DO UPDATE SET
                    type_tag = excluded.type_tag, version = excluded.version,
                    format_tag = excluded.format_tag, revision = {sl}.revision + 1"
            ),
            bump_revision: format!(
                "UPDATE {sl} SET revision = revision + 1 WHERE key = ?1 AND slot = ?2"
            ),
            copy_slots: format!(
                "INSERT INTO {sl} (key, slot, type_tag, version, format_tag, revision)
                 SELECT ?2, slot, type_tag, version, format_tag, revision
                 FROM {sl} WHERE key = ?1 ORDER BY id"
            ),
            copy_fields: format!(
                "INSERT INTO {f} (key, slot, field, bytes)
                 SELECT ?2, slot, field, bytes FROM {f} WHERE key = ?1 ORDER BY id"
            ),
            upsert_field: format!(
                "INSERT INTO {f} (key, slot, field, bytes) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (key, slot, field) DO UPDATE SET bytes = excluded.bytes"
            ),
            delete_slot_fields: format!("DELETE FROM {f} WHERE key = ?1 AND slot = ?2"),
            delete_slot: format!("DELETE FROM {sl} WHERE key = ?1 AND slot = ?2"),
            delete_session_fields: format!("DELETE FROM {f} WHERE key = ?1"),
            delete_session_slots: format!("DELETE FROM {sl} WHERE key = ?1"),
            delete_session: format!("DELETE FROM {s} WHERE key = ?1"),
            delete_expired_children: [
                format!("DELETE FROM {f} WHERE key IN ({expired_batch})"),
                format!("DELETE FROM {sl} WHERE key IN ({expired_batch})"),
            ],
            delete_expired: format!("DELETE FROM {s} WHERE key IN ({expired_batch})"),
            live_session: format!("SELECT 1 FROM {s} WHERE key = ?1 AND expires_at > ?2"),
            scan_slots: format!(
                "SELECT sl.key, sl.type_tag, sl.version
                 FROM {sl} AS sl JOIN {s} AS s ON s.key = sl.key
                 WHERE sl.slot = ?1 AND sl.key > ?2 AND s.expires_at > ?3
                 ORDER BY sl.key LIMIT ?4"
            ),
            load_slot: format!(
                "SELECT sl.type_tag, sl.version, sl.format_tag, sl.revision, f.field, f.bytes
                 FROM {sl} AS sl
                 LEFT JOIN {f} AS f ON f.key = sl.key AND f.slot = sl.slot
                 WHERE sl.key = ?1 AND sl.slot = ?2
                 ORDER BY f.id"
            ),
            one_batch_save: (1..=one_batch::MAX_FIELDS)
                .map(|fields| one_batch::statement(&tables, fields))
                .collect(),
            tables,
        }
    }
}
