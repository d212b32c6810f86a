//! `migrate()`: the table made, or a table of the earlier layout converted in place.
//!
//! The earlier layout (before issue 13) kept a session in three tables: `<name>` (key as 64
//! hex digits, `created_at`, `expires_at`), `<name>_slots` (one row per slot: type tag,
//! version, format tag, revision, and an order column `pos`) and `<name>_fields` (one row per
//! field: its bytes and `pos`). The conversion reads them a page of sessions at a time, builds
//! each live session's entry exactly as the earlier store loaded it (slots and fields in `pos`
//! order, revisions, deadline), writes the entries into a new table beside them, drops the
//! three old tables and gives the new one the old name — all in the caller's transaction, so
//! an instance that fails half-way leaves the old tables as they were.

use bytes::Bytes;
use sqlx::{Postgres, Row, Transaction};

use crate::errors::RecordError;
use crate::expiry::Deadline;
use crate::id::SessionKey;
use crate::record::{Record, Slot};
use crate::store::{Entry, StoreError, Stored, blob};

use super::db_error;
use super::queries::{PAGE, Queries, Table, time};

/// Which layout the table has.
enum Layout {
    /// No table of that name.
    Absent,
    /// This store's.
    Current,
    /// The three tables of the earlier store.
    ThreeTables,
}

/// Makes the table (or converts an earlier one) in `tx`, holding the table name's advisory
/// lock until `tx` ends; `now` decides which earlier sessions have ended.
pub(super) async fn migrate(
    tx: &mut Transaction<'_, Postgres>,
    sql: &Queries,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(advisory_key(&sql.table.base))
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    match layout(tx, &sql.table).await? {
        Layout::Absent | Layout::Current => {}
        Layout::ThreeTables => convert(tx, &sql.table, now).await?,
    }
    for statement in Queries::schema(&sql.table) {
        sqlx::query(&statement)
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
    }
    Ok(())
}

/// The advisory lock `migrate` takes: one per table name (FNV-1a), so instances migrating the
/// same table wait for each other.
fn advisory_key(base: &str) -> i64 {
    let hash = format!("sessions.migrate.{base}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    hash.cast_signed()
}

/// The columns of the table named `quoted` in the `search_path`, empty when there is none.
async fn columns(
    tx: &mut Transaction<'_, Postgres>,
    quoted: &str,
) -> Result<Vec<String>, StoreError> {
    sqlx::query_scalar(
        "SELECT attname::text FROM pg_attribute
         WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped",
    )
    .bind(quoted)
    .fetch_all(&mut **tx)
    .await
    .map_err(db_error)
}

async fn layout(tx: &mut Transaction<'_, Postgres>, table: &Table) -> Result<Layout, StoreError> {
    let columns = columns(tx, &table.quoted("")).await?;
    let has = |name: &str| columns.iter().any(|c| c == name);
    Ok(if columns.is_empty() {
        Layout::Absent
    } else if has("data") && has("version") {
        Layout::Current
    } else if has("created_at") && has("expires_at") {
        Layout::ThreeTables
    } else {
        return Err(StoreError::backend(std::io::Error::other(format!(
            "table {} is not a session table this store knows (columns {columns:?}); it is left as it is",
            table.quoted("")
        ))));
    })
}

/// Converts the three tables of the earlier layout into one of this layout, in place.
async fn convert(
    tx: &mut Transaction<'_, Postgres>,
    table: &Table,
    now: i64,
) -> Result<(), StoreError> {
    let (t, slots, fields) = (
        table.quoted(""),
        table.quoted("_slots"),
        table.quoted("_fields"),
    );
    for (name, what) in [(&slots, "slots"), (&fields, "fields")] {
        if columns(tx, name).await?.is_empty() {
            return Err(StoreError::backend(std::io::Error::other(format!(
                "table {t} has the earlier layout but its {what} table {name} is missing; nothing converted"
            ))));
        }
    }
    // The new table is made beside the old ones under names of its own, then renamed.
    let new = Table {
        base: format!("{}_new", table.base),
    };
    if !columns(tx, &new.quoted("")).await?.is_empty() {
        return Err(StoreError::backend(std::io::Error::other(format!(
            "cannot convert {t}: a table {} exists already",
            new.quoted("")
        ))));
    }
    let statements = [
        // Slots of the release before revisions start at revision 1 (as that release's own
        // migrate made them).
        format!("ALTER TABLE {slots} ADD COLUMN IF NOT EXISTS revision BIGINT NOT NULL DEFAULT 1"),
    ]
    .into_iter()
    .chain(Queries::schema(&new));
    for statement in statements {
        sqlx::query(&statement)
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
    }
    let (mut converted, mut skipped) = (0u64, 0u64);
    let mut after = String::new();
    loop {
        let sessions = sqlx::query(&format!(
            "SELECT key, created_at, expires_at FROM {t}
             WHERE key > $1 AND expires_at > $2 ORDER BY key LIMIT $3"
        ))
        .bind(&after)
        .bind(now)
        .bind(PAGE)
        .fetch_all(&mut **tx)
        .await
        .map_err(db_error)?;
        let Some(last) = sessions.last() else { break };
        after = last.try_get("key").map_err(db_error)?;
        let keys: Vec<String> = sessions
            .iter()
            .map(|row| row.try_get("key"))
            .collect::<Result<_, _>>()
            .map_err(db_error)?;
        let slot_rows = sqlx::query(&format!(
            "SELECT sl.key, sl.slot, sl.type_tag, sl.version, sl.format_tag::bigint AS format_tag,
                    sl.revision, f.field, f.bytes
             FROM {slots} AS sl LEFT JOIN {fields} AS f ON f.key = sl.key AND f.slot = sl.slot
             WHERE sl.key = ANY($1)
             ORDER BY sl.key, sl.pos, f.pos"
        ))
        .bind(&keys)
        .fetch_all(&mut **tx)
        .await
        .map_err(db_error)?;
        let mut slot_rows = slot_rows.iter().peekable();
        let mut batch = Batch::default();
        for session in &sessions {
            let key: String = session.try_get("key").map_err(db_error)?;
            let mut own = Vec::new();
            while let Some(row) =
                slot_rows.next_if(|row| row.try_get::<&str, _>("key").is_ok_and(|of| of == key))
            {
                own.push(row);
            }
            match entry_of(session, &own) {
                Ok((digest, expires_at, entry)) => {
                    batch.keys.push(digest.to_vec());
                    batch.expires_at.push(expires_at);
                    let key = SessionKey::from_digest(digest);
                    batch.data.push(blob::encode_at(&key, &entry));
                    converted += 1;
                }
                Err(err) => {
                    tracing::warn!(target: "sessions::migration", store = "postgres", session_key = key, error = %err, "a session of the earlier layout cannot be converted; it is dropped");
                    skipped += 1;
                }
            }
        }
        sqlx::query(&format!(
            "INSERT INTO {} (key, version, expires_at, owner, data)
             SELECT k, 1, e, NULL, d FROM UNNEST($1::bytea[], $2::bigint[], $3::bytea[]) AS u (k, e, d)",
            new.quoted("")
        ))
        .bind(&batch.keys)
        .bind(&batch.expires_at)
        .bind(&batch.data)
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
        if sessions.len() < PAGE.unsigned_abs() as usize {
            break;
        }
    }
    let renames = [
        format!("DROP TABLE {fields}, {slots}, {t}"),
        format!("ALTER TABLE {} RENAME TO {t}", new.quoted("")),
    ]
    .into_iter()
    .chain(["_pkey", "_by_expiry", "_by_owner"].map(|index| {
        format!(
            "ALTER INDEX {} RENAME TO {}",
            new.quoted(index),
            table.quoted(index)
        )
    }));
    for statement in renames {
        sqlx::query(&statement)
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
    }
    tracing::info!(target: "sessions::migration", store = "postgres", table = table.base, converted, skipped, "sessions of the earlier layout converted");
    Ok(())
}

/// One page of converted rows, as the columns `UNNEST` takes.
#[derive(Default)]
struct Batch {
    keys: Vec<Vec<u8>>,
    expires_at: Vec<i64>,
    data: Vec<Vec<u8>>,
}

/// A session of the earlier layout as an entry: its session row and its slot rows (one per
/// field, in order; a slot without fields has one row without a field).
fn entry_of(
    session: &sqlx::postgres::PgRow,
    slot_rows: &[&sqlx::postgres::PgRow],
) -> Result<([u8; 32], i64, Entry), StoreError> {
    let key: String = session.try_get("key").map_err(db_error)?;
    let digest = *SessionKey::from_stored(&key)
        .ok_or_else(|| RecordError::Malformed("a key that is not 64 lowercase hex digits".into()))?
        .as_bytes();
    let created_at: i64 = session.try_get("created_at").map_err(db_error)?;
    let expires_at: i64 = session.try_get("expires_at").map_err(db_error)?;
    let deadline = Deadline {
        created_at: time(created_at)?,
        expires_at: time(expires_at)?,
    };
    let mut slots: Vec<Slot> = Vec::new();
    let mut current: Option<OpenSlot> = None;
    for row in slot_rows {
        let name: String = row.try_get("slot").map_err(db_error)?;
        let field: Option<String> = row.try_get("field").map_err(db_error)?;
        let bytes: Option<Vec<u8>> = row.try_get("bytes").map_err(db_error)?;
        if current.as_ref().is_none_or(|(open, ..)| *open != name) {
            if let Some(done) = current.take() {
                slots.push(slot_of(done)?);
            }
            current = Some((name, Header::of(row)?, Vec::new()));
        }
        if let (Some((.., fields)), Some(field)) = (current.as_mut(), field) {
            fields.push((field, Bytes::from(bytes.unwrap_or_default())));
        }
    }
    if let Some(done) = current {
        slots.push(slot_of(done)?);
    }
    let mut record = Record::new();
    for slot in slots {
        record.insert(slot);
    }
    let session = Stored::new(record, deadline);
    Ok((
        digest,
        expires_at,
        Entry::Live {
            version: 1,
            session,
        },
    ))
}

/// A slot being read: its name, header and the fields read so far.
type OpenSlot = (String, Header, Vec<(String, Bytes)>);

/// A slot's header as the earlier layout stored it.
struct Header {
    type_tag: String,
    version: i64,
    format_tag: i64,
    revision: i64,
}

impl Header {
    fn of(row: &sqlx::postgres::PgRow) -> Result<Self, StoreError> {
        Ok(Self {
            type_tag: row.try_get("type_tag").map_err(db_error)?,
            version: row.try_get("version").map_err(db_error)?,
            format_tag: row.try_get("format_tag").map_err(db_error)?,
            revision: row.try_get("revision").map_err(db_error)?,
        })
    }
}

/// A slot from its stored header and fields, refusing numbers no slot can have.
fn slot_of((name, header, fields): OpenSlot) -> Result<Slot, RecordError> {
    let malformed = |reason: String| RecordError::MalformedSlot {
        slot: name.clone(),
        reason,
    };
    let version = u32::try_from(header.version)
        .map_err(|_| malformed(format!("stored version {} is out of range", header.version)))?;
    let format_tag = u8::try_from(header.format_tag).map_err(|_| {
        malformed(format!(
            "stored format tag {} is out of range",
            header.format_tag
        ))
    })?;
    let revision = u64::try_from(header.revision).map_err(|_| {
        malformed(format!(
            "stored revision {} is out of range",
            header.revision
        ))
    })?;
    let fields = fields
        .into_iter()
        .map(|(field, bytes)| (field.into(), bytes))
        .collect();
    Ok(Slot::from_parts(
        name.clone().into(),
        header.type_tag.into(),
        version,
        format_tag,
        fields,
    )
    .with_revision(revision))
}
