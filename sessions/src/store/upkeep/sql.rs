//! What the SQL stores share: times and versions as their columns hold them, and a walk in
//! key order.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::{ScanCursor, ScanPage};
use crate::errors::{RecordError, StoreError};
use crate::id::SessionKey;
use crate::store::{Entry, blob};

/// A time as the SQL stores keep it: milliseconds since the Unix epoch in a signed 64-bit
/// integer (negative before it, saturating at the ends).
pub(crate) fn millis(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

/// A stored time ([`millis`]) back as a `SystemTime`.
pub(crate) fn time(millis: i64) -> Result<SystemTime, RecordError> {
    let offset = Duration::from_millis(millis.unsigned_abs());
    let time = if millis >= 0 {
        UNIX_EPOCH.checked_add(offset)
    } else {
        UNIX_EPOCH.checked_sub(offset)
    };
    time.ok_or_else(|| RecordError::Malformed(format!("stored time {millis} ms is out of range")))
}

/// An entry's version as a signed 64-bit `version` column holds it: the same 64 bits read as
/// signed, so every version has its own column value (versions below 2⁶³, all that a store
/// ever reaches, are stored as themselves).
pub(crate) fn version_column(version: u64) -> i64 {
    version.cast_signed()
}

/// A stored key (the 32 bytes of a [`SessionKey`]) back as a key.
pub(crate) fn key_of(stored: &[u8]) -> Result<SessionKey, RecordError> {
    let digest: [u8; 32] = stored.try_into().map_err(|_| {
        RecordError::Malformed(format!("a stored key of {} bytes, not 32", stored.len()))
    })?;
    Ok(SessionKey::from_digest(digest))
}

/// The key bytes a walk in key order starts after: none at the start, else the ones its
/// cursor holds (in hex; a cursor that is not is an error naming `store`).
pub(crate) fn after_key(cursor: Option<&ScanCursor>, store: &str) -> Result<Vec<u8>, StoreError> {
    let Some(cursor) = cursor else {
        return Ok(Vec::new());
    };
    let text = cursor.as_str().as_bytes();
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    if text.len() % 2 != 0 {
        return Err(cursor.not_ours(store));
    }
    text.chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| cursor.not_ours(store))
}

/// The entry a SQL row holds for `key`, from its `version` column (`None`: not an integer)
/// and its `data`: unreadable, with the version the row compares, when it does not decode
/// or says another version than its column.
pub(crate) fn entry_of_row(
    key: &SessionKey,
    version: Option<i64>,
    data: Result<Vec<u8>, RecordError>,
) -> Result<Entry, RecordError> {
    let Some(version) = version.map(i64::cast_unsigned) else {
        return Err(RecordError::Malformed(
            "the row's version is not an integer".into(),
        ));
    };
    let unreadable = |source| RecordError::Unreadable {
        version,
        source: Box::new(source),
    };
    blob::decode_beside(key, version, Bytes::from(data.map_err(unreadable)?))
}

/// A row as a SQL store reads it for a walk: its stored key, `version` column (`None` when it
/// is not an integer) and `data` (or why it could not be had).
pub(crate) type Row = (Vec<u8>, Option<i64>, Result<Vec<u8>, RecordError>);

/// A page of a walk in key order, from the rows a SQL store read for it: each row's stored
/// key, `version` and `data` columns. `limit` rows were asked for, so a full page has a
/// next one, after its last key. Rows that do not decode are counted and logged, never an
/// error.
pub(crate) fn page_of_rows(rows: Vec<Row>, limit: usize, store: &'static str) -> ScanPage {
    use std::fmt::Write as _;
    let mut page = ScanPage::default();
    if rows.len() >= limit
        && let Some((last, ..)) = rows.last()
    {
        let mut hex = String::with_capacity(last.len() * 2);
        for byte in last {
            let _ = write!(hex, "{byte:02x}");
        }
        page.next = Some(ScanCursor::new(hex));
    }
    let mut bytes = 0;
    for (key, version, data) in rows {
        let size = data.as_ref().map_or(0, |data| data.len() as u64);
        let decoded = key_of(&key).and_then(|key| Ok((entry_of_row(&key, version, data)?, key)));
        match decoded {
            Ok((entry, key)) => {
                bytes += size;
                page.entries.push((key, entry));
            }
            Err(err) => {
                tracing::warn!(target: "sessions::store", store, error = %err, "a stored session does not decode; the walk leaves it as it is");
                page.unreadable += 1;
            }
        }
    }
    page.bytes = Some(bytes);
    page
}

/// A database error as a store error: values the database holds but that do not decode are a
/// broken record; everything else is the backend failing.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) fn db_error(err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            StoreError::Record(RecordError::Malformed(err.to_string()))
        }
        other => StoreError::backend(other),
    }
}
