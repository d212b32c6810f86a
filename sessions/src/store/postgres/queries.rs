//! The SQL [`PostgresStore`](super::PostgresStore) runs, written once per table name.

use super::one_statement;
use crate::store::sql::Tables;

/// The statements of one store, written once for its table names.
pub(super) struct Queries {
    pub(super) tables: Tables,
    pub(super) schema: Vec<String>,
    pub(super) load: String,
    pub(super) insert_session: String,
    pub(super) replace_expired_session: String,
    pub(super) touch_session: String,
    pub(super) slot_headers: String,
    pub(super) upsert_slots: String,
    pub(super) bump_revisions: String,
    pub(super) copy_slots: String,
    pub(super) copy_fields: String,
    pub(super) upsert_fields: String,
    pub(super) delete_slots_fields: String,
    pub(super) delete_slots: String,
    pub(super) delete_session_slots: String,
    pub(super) delete_session: String,
    pub(super) delete_expired: String,
    pub(super) lock_live_session: String,
    pub(super) scan_slots: String,
    pub(super) load_slot: String,
    /// The common save in one statement (see `one_statement.rs`).
    pub(super) one_statement_save: String,
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
        Self {
            schema: vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS {s} (
                        key TEXT COLLATE \"C\" PRIMARY KEY,
                        created_at BIGINT NOT NULL,
                        expires_at BIGINT NOT NULL
                    )"
                ),
                format!("CREATE INDEX IF NOT EXISTS {sessions_by_expiry} ON {s} (expires_at)"),
                format!(
                    "CREATE TABLE IF NOT EXISTS {sl} (
                        key TEXT COLLATE \"C\" NOT NULL REFERENCES {s} (key) ON DELETE CASCADE,
                        slot TEXT NOT NULL,
                        pos BIGINT GENERATED ALWAYS AS IDENTITY,
                        type_tag TEXT NOT NULL,
                        version BIGINT NOT NULL,
                        format_tag SMALLINT NOT NULL,
                        revision BIGINT NOT NULL DEFAULT 1,
                        PRIMARY KEY (key, slot)
                    )"
                ),
                // Tables made before slots had revisions get the column (their slots start at 1).
                format!("ALTER TABLE {sl} ADD COLUMN IF NOT EXISTS revision BIGINT NOT NULL DEFAULT 1"),
                format!("CREATE INDEX IF NOT EXISTS {slots_by_name} ON {sl} (slot, key)"),
                format!(
                    "CREATE TABLE IF NOT EXISTS {f} (
                        key TEXT COLLATE \"C\" NOT NULL,
                        slot TEXT NOT NULL,
                        field TEXT NOT NULL,
                        pos BIGINT GENERATED ALWAYS AS IDENTITY,
                        bytes BYTEA NOT NULL,
                        PRIMARY KEY (key, slot, field),
                        FOREIGN KEY (key, slot) REFERENCES {sl} (key, slot) ON DELETE CASCADE
                    )"
                ),
            ],
            load: format!(
                "SELECT s.created_at, s.expires_at, sl.slot, sl.type_tag, sl.version,
                        sl.format_tag::bigint AS format_tag, sl.revision, f.field, f.bytes
                 FROM {s} AS s
                 LEFT JOIN {sl} AS sl ON sl.key = s.key
                 LEFT JOIN {f} AS f ON f.key = sl.key AND f.slot = sl.slot
                 WHERE s.key = $1 AND s.expires_at > $2
                 ORDER BY sl.pos, f.pos"
            ),
            insert_session: format!(
                "INSERT INTO {s} (key, created_at, expires_at) VALUES ($1, $2, $3)
                 ON CONFLICT (key) DO NOTHING"
            ),
            replace_expired_session: format!(
                "UPDATE {s} SET created_at = $2, expires_at = $3 WHERE key = $1 AND expires_at <= $4"
            ),
            touch_session: format!(
                "UPDATE {s} SET created_at = $2, expires_at = $3 WHERE key = $1 AND expires_at > $4"
            ),
            slot_headers: format!(
                "SELECT slot, type_tag, version, format_tag::bigint AS format_tag, revision
                 FROM {sl} WHERE key = $1"
            ),
            upsert_slots: format!(
                "INSERT INTO {sl} (key, slot, type_tag, version, format_tag, revision)
                 SELECT $1, u.slot, u.type_tag, u.version, u.format_tag, u.revision
                 FROM UNNEST($2::text[], $3::text[], $4::bigint[], $5::smallint[], $6::bigint[])
                      WITH ORDINALITY AS u (slot, type_tag, version, format_tag, revision, n)
                 ORDER BY u.n
                 ON CONFLICT (key, slot) DO UPDATE SET
                    type_tag = EXCLUDED.type_tag, version = EXCLUDED.version,
                    format_tag = EXCLUDED.format_tag, revision = {sl}.revision + 1"
            ),
            bump_revisions: format!(
                "UPDATE {sl} SET revision = revision + 1 WHERE key = $1 AND slot = ANY($2::text[])"
            ),
            copy_slots: format!(
                "INSERT INTO {sl} (key, slot, type_tag, version, format_tag, revision)
                 SELECT $2, slot, type_tag, version, format_tag, revision
                 FROM {sl} WHERE key = $1 ORDER BY pos"
            ),
            copy_fields: format!(
                "INSERT INTO {f} (key, slot, field, bytes)
                 SELECT $2, slot, field, bytes FROM {f} WHERE key = $1 ORDER BY pos"
            ),
            upsert_fields: format!(
                "INSERT INTO {f} (key, slot, field, bytes)
                 SELECT $1, u.slot, u.field, u.bytes
                 FROM UNNEST($2::text[], $3::text[], $4::bytea[]) WITH ORDINALITY AS u (slot, field, bytes, n)
                 ORDER BY u.n
                 ON CONFLICT (key, slot, field) DO UPDATE SET bytes = EXCLUDED.bytes"
            ),
            delete_slots_fields: format!(
                "DELETE FROM {f} WHERE key = $1 AND slot = ANY($2::text[])"
            ),
            delete_slots: format!("DELETE FROM {sl} WHERE key = $1 AND slot = ANY($2::text[])"),
            delete_session_slots: format!("DELETE FROM {sl} WHERE key = $1"),
            delete_session: format!("DELETE FROM {s} WHERE key = $1"),
            delete_expired: format!(
                "DELETE FROM {s} WHERE key IN (
                    SELECT key FROM {s} WHERE expires_at <= $1
                    ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED
                 )"
            ),
            lock_live_session: format!(
                "SELECT 1 AS live FROM {s} WHERE key = $1 AND expires_at > $2 FOR UPDATE"
            ),
            scan_slots: format!(
                "SELECT sl.key, sl.type_tag, sl.version
                 FROM {sl} AS sl JOIN {s} AS s ON s.key = sl.key
                 WHERE sl.slot = $1 AND sl.key > $2 AND s.expires_at > $3
                 ORDER BY sl.key LIMIT $4"
            ),
            load_slot: format!(
                "SELECT sl.type_tag, sl.version, sl.format_tag::bigint AS format_tag, sl.revision,
                        f.field, f.bytes
                 FROM {sl} AS sl
                 LEFT JOIN {f} AS f ON f.key = sl.key AND f.slot = sl.slot
                 WHERE sl.key = $1 AND sl.slot = $2
                 ORDER BY f.pos"
            ),
            one_statement_save: one_statement::statement(&tables),
            tables,
        }
    }
}
