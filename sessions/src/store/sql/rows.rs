//! Reading the SQL stores' rows: slots (with their fields and revisions) and deadlines, the
//! same way for SQLite and PostgreSQL.

use bytes::Bytes;

use crate::error::RecordError;
use crate::expiry::Deadline;
use crate::record::{Name, Slot};
use crate::store::StoreError;

use super::{Scanned, db_error, time};

/// A slot's fields, as [`Slot`] keeps them.
type SlotFields = Vec<(Name, Bytes)>;

/// One row of a slot as read from the slots table joined with the fields table: the slot's
/// header, and one of its fields (none for a slot without fields).
pub(crate) struct SlotRow {
    pub(crate) slot: String,
    pub(crate) type_tag: String,
    pub(crate) version: i64,
    pub(crate) format_tag: i64,
    pub(crate) revision: i64,
    pub(crate) field: Option<(String, Vec<u8>)>,
}

/// A row of either SQL store, read by column name (integers as `BIGINT`/`INTEGER`).
pub(crate) trait Columns {
    /// A text column; `None` for NULL.
    fn text(&self, column: &str) -> Result<Option<String>, sqlx::Error>;
    /// An integer column; `None` for NULL.
    fn int(&self, column: &str) -> Result<Option<i64>, sqlx::Error>;
    /// A blob column; `None` for NULL.
    fn blob(&self, column: &str) -> Result<Option<Vec<u8>>, sqlx::Error>;
}

impl<R> Columns for R
where
    R: sqlx::Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<Vec<u8>>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn text(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
        self.try_get(column)
    }
    fn int(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
        self.try_get(column)
    }
    fn blob(&self, column: &str) -> Result<Option<Vec<u8>>, sqlx::Error> {
        self.try_get(column)
    }
}

/// A column that may not be NULL.
fn required<T>(value: Option<T>, column: &str) -> Result<T, sqlx::Error> {
    value.ok_or_else(|| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: "unexpected NULL".into(),
    })
}

/// A slot's header from a row holding `type_tag`, `version`, `format_tag`, `revision` (and
/// `slot`, unless `slot` names it): `None` when they are NULL (a `LEFT JOIN` without a slot).
pub(crate) fn header_row<R: Columns>(
    row: &R,
    slot: Option<&str>,
) -> Result<Option<SlotRow>, sqlx::Error> {
    let name = match slot {
        Some(name) => Some(name.to_owned()),
        None => row.text("slot")?,
    };
    let (Some(slot), Some(type_tag), Some(version), Some(format_tag)) = (
        name,
        row.text("type_tag")?,
        row.int("version")?,
        row.int("format_tag")?,
    ) else {
        return Ok(None);
    };
    Ok(Some(SlotRow {
        slot,
        type_tag,
        version,
        format_tag,
        revision: required(row.int("revision")?, "revision")?,
        field: None,
    }))
}

/// A slot row of a `LEFT JOIN` of slots and fields (`None` when the session has no slot).
/// `slot` names the slot when the query does not select it.
pub(crate) fn slot_row<R: Columns>(
    row: &R,
    slot: Option<&str>,
) -> Result<Option<SlotRow>, sqlx::Error> {
    let Some(mut header) = header_row(row, slot)? else {
        return Ok(None);
    };
    if let Some(field) = row.text("field")? {
        header.field = Some((field, required(row.blob("bytes")?, "bytes")?));
    }
    Ok(Some(header))
}

/// Slots from rows read by `read` ([`slot_row`] or [`header_row`]), ordered by slot, then field.
pub(crate) fn slots_of<R: Columns>(
    rows: &[R],
    slot: Option<&str>,
    read: fn(&R, Option<&str>) -> Result<Option<SlotRow>, sqlx::Error>,
) -> Result<Vec<Slot>, StoreError> {
    let rows = rows
        .iter()
        .map(|row| read(row, slot))
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_error)?;
    Ok(assemble(rows.into_iter().flatten())?)
}

/// The slots of a stored migration scan.
pub(crate) fn scanned<R: Columns>(rows: &[R]) -> Result<Vec<Scanned>, StoreError> {
    rows.iter()
        .map(|row| {
            Ok(Scanned {
                key: required(row.text("key")?, "key")?,
                type_tag: required(row.text("type_tag")?, "type_tag")?,
                version: required(row.int("version")?, "version")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(db_error)
}

/// A session's deadline from a row holding `created_at` and `expires_at`.
pub(crate) fn deadline_of<R: Columns>(row: &R) -> Result<Deadline, StoreError> {
    let read = |column| {
        row.int(column)
            .and_then(|value| required(value, column))
            .map_err(db_error)
    };
    Ok(Deadline {
        created_at: time(read("created_at")?)?,
        expires_at: time(read("expires_at")?)?,
    })
}

/// A slot from its stored header, refusing numbers no slot can have.
fn slot_from_header(header: SlotRow, fields: SlotFields) -> Result<Slot, RecordError> {
    let SlotRow {
        slot,
        type_tag,
        version,
        format_tag,
        revision,
        ..
    } = header;
    let malformed = |reason: String| RecordError::MalformedSlot {
        slot: slot.clone(),
        reason,
    };
    let version = u32::try_from(version)
        .map_err(|_| malformed(format!("stored version {version} is out of range")))?;
    let format_tag = u8::try_from(format_tag)
        .map_err(|_| malformed(format!("stored format tag {format_tag} is out of range")))?;
    let revision = u64::try_from(revision)
        .map_err(|_| malformed(format!("stored revision {revision} is out of range")))?;
    Ok(
        Slot::from_parts(slot.into(), type_tag.into(), version, format_tag, fields)
            .with_revision(revision),
    )
}

/// Slots from rows ordered by slot, then field: consecutive rows of one slot make one slot.
pub(crate) fn assemble(rows: impl IntoIterator<Item = SlotRow>) -> Result<Vec<Slot>, RecordError> {
    let mut slots = Vec::new();
    let mut current: Option<(SlotRow, SlotFields)> = None;
    for mut row in rows {
        let field = row.field.take();
        let same = current
            .as_ref()
            .is_some_and(|(header, _)| header.slot == row.slot);
        if !same {
            if let Some((header, fields)) = current.take() {
                slots.push(slot_from_header(header, fields)?);
            }
            current = Some((row, Vec::new()));
        }
        if let (Some((_, fields)), Some((name, bytes))) = (current.as_mut(), field) {
            fields.push((name.into(), Bytes::from(bytes)));
        }
    }
    if let Some((header, fields)) = current {
        slots.push(slot_from_header(header, fields)?);
    }
    Ok(slots)
}
