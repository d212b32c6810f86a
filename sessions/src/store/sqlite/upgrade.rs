//! Converting the layout before issue 13 — three tables, a row per session, per slot and per
//! field, keys as 64-hex text — into the store's one row per session, in place, inside the
//! caller's transaction.
//!
//! The old tables, named after the store's table name `t`:
//!
//! ```sql
//! CREATE TABLE t (key TEXT PRIMARY KEY, created_at INTEGER, expires_at INTEGER) WITHOUT ROWID;
//! CREATE TABLE t_slots (id INTEGER PRIMARY KEY, key TEXT, slot TEXT, type_tag TEXT,
//!     version INTEGER, format_tag INTEGER, revision INTEGER DEFAULT 1, UNIQUE (key, slot));
//! CREATE TABLE t_fields (id INTEGER PRIMARY KEY, key TEXT, slot TEXT, field TEXT,
//!     bytes BLOB, UNIQUE (key, slot, field));
//! ```
//!
//! `id` orders slots and fields as they were first written (the old load read them `ORDER BY
//! sl.id, f.id`); tables of the release before slot revisions have no `revision` column (their
//! slots are at revision 1). Each session becomes an entry of version 1, last seen at its
//! creation, with no owner (the old layout kept none).

use bytes::Bytes;
use rusqlite::{Connection, params};

use super::queries::{Queries, create_table, millis, time};
use crate::expiry::Deadline;
use crate::id::SessionKey;
use crate::record::{Name, Record, Slot};
use crate::store::{Entry, Stored, blob};

/// What [`run`] found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Found {
    /// No table yet, or the current layout: nothing converted.
    Nothing,
    /// The old layout: this many sessions converted, this many left out (unreadable rows).
    Converted { sessions: u64, skipped: u64 },
}

/// Converts the old layout under `sql.table`, if that is what is there. Runs inside the
/// caller's write transaction.
pub(super) fn run(conn: &Connection, sql: &Queries) -> rusqlite::Result<Found> {
    let base = &sql.table;
    let table_columns = columns(conn, base)?;
    if table_columns.is_empty() || table_columns.iter().any(|c| c == "data") {
        return Ok(Found::Nothing);
    }
    if !table_columns.iter().any(|c| c == "created_at") {
        return Ok(Found::Nothing);
    }
    let slots = format!("{base}_slots");
    let fields = format!("{base}_fields");
    let slot_columns = columns(conn, &slots)?;
    let has_fields = !columns(conn, &fields)?.is_empty();
    let next = format!("{base}__v1");
    conn.execute_batch(&format!("DROP TABLE IF EXISTS \"{next}\""))?;
    conn.execute_batch(&create_table(&format!("\"{next}\"")))?;

    let revision = if slot_columns.iter().any(|c| c == "revision") {
        "sl.revision"
    } else {
        "1"
    };
    let mut read_slots = if slot_columns.is_empty() {
        None
    } else if has_fields {
        Some(conn.prepare(&format!(
            "SELECT sl.slot, sl.type_tag, sl.version, sl.format_tag, {revision}, f.field, f.bytes
             FROM \"{slots}\" AS sl
             LEFT JOIN \"{fields}\" AS f ON f.key = sl.key AND f.slot = sl.slot
             WHERE sl.key = ?1 ORDER BY sl.id, f.id"
        ))?)
    } else {
        Some(conn.prepare(&format!(
            "SELECT slot, type_tag, version, format_tag, {revision}, NULL, NULL
             FROM \"{slots}\" AS sl WHERE key = ?1 ORDER BY id"
        ))?)
    };
    let mut insert = conn.prepare(&format!(
        "INSERT INTO \"{next}\" (key, version, expires_at, owner, data) VALUES (?1, 1, ?2, NULL, ?3)"
    ))?;
    let mut sessions = conn.prepare(&format!(
        "SELECT key, created_at, expires_at FROM \"{base}\" ORDER BY key"
    ))?;
    let mut rows = sessions.query([])?;
    let (mut converted, mut skipped) = (0, 0);
    while let Some(row) = rows.next()? {
        let text = match row.get::<_, String>(0) {
            Ok(text) => text,
            Err(err) if unreadable(&err) => {
                tracing::warn!(target: "sessions::migration", store = "sqlite", error = %err, "a stored session of the old layout has no readable key; it is left out of the upgrade");
                skipped += 1;
                continue;
            }
            Err(err) => return Err(err),
        };
        let times = match (row.get::<_, i64>(1), row.get::<_, i64>(2)) {
            (Ok(created_at), Ok(expires_at)) => Ok((created_at, expires_at)),
            (Err(err), _) | (_, Err(err)) if unreadable(&err) => Err(err.to_string()),
            (Err(err), _) | (_, Err(err)) => return Err(err),
        };
        let record = match &mut read_slots {
            Some(read) => read_record(read, &text)?,
            None => Ok(Record::new()),
        };
        let read = times
            .and_then(|(created_at, expires_at)| convert(&text, record, created_at, expires_at));
        let (key, entry) = match read {
            Ok(converted) => converted,
            Err(reason) => {
                tracing::warn!(target: "sessions::migration", store = "sqlite", session_key = text, reason, "a stored session of the old layout cannot be read; it is left out of the upgrade");
                skipped += 1;
                continue;
            }
        };
        insert.execute(params![
            &key.as_bytes()[..],
            millis(entry.expires_at()),
            blob::encode_at(&key, &entry)
        ])?;
        converted += 1;
    }
    drop(rows);
    drop((sessions, insert, read_slots));
    if has_fields {
        conn.execute_batch(&format!("DROP TABLE \"{fields}\""))?;
    }
    if !slot_columns.is_empty() {
        conn.execute_batch(&format!("DROP TABLE \"{slots}\""))?;
    }
    // Dropping the old table drops its indexes; the caller makes the new ones.
    conn.execute_batch(&format!(
        "DROP TABLE \"{base}\"; ALTER TABLE \"{next}\" RENAME TO \"{base}\";"
    ))?;
    Ok(Found::Converted {
        sessions: converted,
        skipped,
    })
}

/// One old session as an entry under its key, or why it cannot be.
fn convert(
    key: &str,
    record: Result<Record, String>,
    created_at: i64,
    expires_at: i64,
) -> Result<(SessionKey, Entry), String> {
    let key = SessionKey::from_stored(key).ok_or("its key is not a session key")?;
    let record = record?;
    let deadline = Deadline {
        created_at: time(created_at).map_err(|err| err.to_string())?,
        expires_at: time(expires_at).map_err(|err| err.to_string())?,
    };
    let session = Stored::new(record, deadline);
    Ok((
        key,
        Entry::Live {
            version: 1,
            session,
        },
    ))
}

/// Whether `err` says a stored value is not of its column's type (a broken row, left out),
/// rather than that the database failed.
fn unreadable(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::IntegralValueOutOfRange(..)
    )
}

/// The columns of `table`, none if there is no such table.
fn columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
    let names = stmt
        .query_map([table], |row| row.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(names)
}

/// One session's slots, in the order they were written, or why they cannot be read.
fn read_record(
    read: &mut rusqlite::Statement<'_>,
    key: &str,
) -> rusqlite::Result<Result<Record, String>> {
    let mut rows = read.query([key])?;
    let mut slots: Vec<(Header, Vec<(Name, Bytes)>)> = Vec::new();
    while let Some(row) = rows.next()? {
        let read = || -> rusqlite::Result<_> {
            let header = Header {
                slot: row.get(0)?,
                type_tag: row.get(1)?,
                version: row.get(2)?,
                format_tag: row.get(3)?,
                revision: row.get(4)?,
            };
            let field: Option<String> = row.get(5)?;
            let bytes: Option<Vec<u8>> = row.get(6)?;
            Ok((header, field, bytes))
        };
        let (header, field, bytes) = match read() {
            Ok(read) => read,
            Err(err) if unreadable(&err) => return Ok(Err(err.to_string())),
            Err(err) => return Err(err),
        };
        if slots.last().map(|(h, _)| &h.slot) != Some(&header.slot) {
            slots.push((header, Vec::new()));
        }
        if let (Some(name), Some((_, fields))) = (field, slots.last_mut()) {
            fields.push((name.into(), Bytes::from(bytes.unwrap_or_default())));
        }
    }
    let mut record = Record::new();
    for (header, fields) in slots {
        match header.into_slot(fields) {
            Ok(slot) => {
                record.insert(slot);
            }
            Err(reason) => return Ok(Err(reason)),
        }
    }
    Ok(Ok(record))
}

/// A slot's header as the old slots table kept it.
struct Header {
    slot: String,
    type_tag: String,
    version: i64,
    format_tag: i64,
    revision: i64,
}

impl Header {
    /// The slot, refusing numbers no slot can have (as the old load did).
    fn into_slot(self, fields: Vec<(Name, Bytes)>) -> Result<Slot, String> {
        let Header {
            slot,
            type_tag,
            version,
            format_tag,
            revision,
        } = self;
        let version = u32::try_from(version)
            .map_err(|_| format!("slot {slot:?}: stored version {version} is out of range"))?;
        let format_tag = u8::try_from(format_tag).map_err(|_| {
            format!("slot {slot:?}: stored format tag {format_tag} is out of range")
        })?;
        let revision = u64::try_from(revision)
            .map_err(|_| format!("slot {slot:?}: stored revision {revision} is out of range"))?;
        Ok(
            Slot::from_parts(slot.into(), type_tag.into(), version, format_tag, fields)
                .with_revision(revision),
        )
    }
}
