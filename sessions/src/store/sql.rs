//! What the SQL stores ([`SqliteStore`](crate::SqliteStore), [`PostgresStore`](crate::PostgresStore))
//! share: table names, time columns, records assembled from rows, the check a field update
//! passes, the eager migration driver and the sweeper.
//!
//! Both stores keep one session in three tables, named after one base name (default
//! `sessions`):
//!
//! | table | one row per | columns |
//! |---|---|---|
//! | `sessions` | session | `key` (the [`SessionKey`](crate::SessionKey), never the id), `created_at`, `expires_at` (ms since the Unix epoch) |
//! | `sessions_slots` | slot | `key`, `slot`, `type_tag`, `version`, `format_tag`, `revision` (see [`Slot::revision`]), and an order column |
//! | `sessions_fields` | field | `key`, `slot`, `field`, `bytes`, and an order column |
//!
//! so a save writes exactly the fields and slots that changed. What a write transaction checks
//! and in which order (create, save, cycle) is in [`transaction`], once for both stores; the
//! statements both run alike, in [`single_statements!`].

mod rows;
mod transaction;
mod write_tx;

pub(crate) use rows::{deadline_of, header_row, scanned, slot_row, slots_of};

pub(crate) use transaction::{Commit, WriteTx, create, cycle, finish, first_revision, save};

pub(crate) use write_tx::single_statements;

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::codec::Format;
use crate::error::{ApplyError, RecordError};
use crate::record::{Changeset, Record, Slot, SlotChange};
use crate::registry::{MigrationReport, migrate_slot};
use crate::schema::Session;
use crate::store::StoreError;

/// The base table name when none is given.
pub(crate) const DEFAULT_TABLE: &str = "sessions";

/// The longest base table name: PostgreSQL cuts identifiers at 63 bytes, and the derived names
/// (`<name>_fields`, `<name>_slots_by_name`…) must stay whole.
const MAX_TABLE_NAME: usize = 40;

/// How many rows one page of a scan (eager migration, sweeping) reads.
pub(crate) const PAGE: i64 = 500;

/// A table name given to `SqliteStore::table_name` or `PostgresStore::table_name` is not a
/// plain SQL identifier.
///
/// A valid name starts with an ASCII letter or `_`, goes on with ASCII letters, digits and `_`,
/// and is at most 40 characters long (the stores derive longer names from it).
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use sessions::SqliteStore;
/// let store = SqliteStore::in_memory().await.unwrap();
/// let err = store.try_table_name("sessions; DROP TABLE users").unwrap_err();
/// assert!(err.to_string().contains("letters, digits and `_`"));
/// # });
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid session table name {name:?}: {reason}")]
pub struct TableNameError {
    name: String,
    reason: &'static str,
}

impl TableNameError {
    /// The refused name.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")] {
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = sessions::SqliteStore::in_memory().await.unwrap();
    /// assert_eq!(store.try_table_name("").unwrap_err().name(), "");
    /// # });
    /// # }
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The names of one store's tables and indexes, each quoted for SQL.
#[derive(Debug, Clone)]
pub(crate) struct Tables {
    /// The base name, unquoted.
    pub(crate) base: String,
    pub(crate) sessions: String,
    pub(crate) slots: String,
    pub(crate) fields: String,
    pub(crate) sessions_by_expiry: String,
    pub(crate) slots_by_name: String,
}

impl Tables {
    /// Checks `base` and derives every name from it.
    pub(crate) fn new(base: &str) -> Result<Self, TableNameError> {
        let refuse = |reason| {
            Err(TableNameError {
                name: base.to_owned(),
                reason,
            })
        };
        let mut bytes = base.bytes();
        match bytes.next() {
            None => return refuse("it is empty"),
            Some(b) if !(b.is_ascii_alphabetic() || b == b'_') => {
                return refuse("it must start with an ASCII letter or `_`");
            }
            Some(_) => {}
        }
        if !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return refuse("only ASCII letters, digits and `_` are allowed");
        }
        if base.len() > MAX_TABLE_NAME {
            return refuse("it is longer than 40 characters");
        }
        let quote = |suffix: &str| format!("\"{base}{suffix}\"");
        Ok(Self {
            base: base.to_owned(),
            sessions: quote(""),
            slots: quote("_slots"),
            fields: quote("_fields"),
            sessions_by_expiry: quote("_by_expiry"),
            slots_by_name: quote("_slots_by_name"),
        })
    }
}

/// A time as stored: milliseconds since the Unix epoch (negative before it, clamped at the ends).
pub(crate) fn millis(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

/// A stored time back as a `SystemTime`.
pub(crate) fn time(millis: i64) -> Result<SystemTime, RecordError> {
    let offset = Duration::from_millis(millis.unsigned_abs());
    let time = if millis >= 0 {
        UNIX_EPOCH.checked_add(offset)
    } else {
        UNIX_EPOCH.checked_sub(offset)
    };
    time.ok_or_else(|| RecordError::Malformed(format!("stored time {millis} ms is out of range")))
}

/// A database error as a store error: values the database holds but that do not decode are a
/// broken record; everything else is the backend failing.
pub(crate) fn db_error(err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            StoreError::Record(RecordError::Malformed(err.to_string()))
        }
        other => StoreError::backend(other),
    }
}

/// A record of the given slots.
pub(crate) fn record_of(slots: Vec<Slot>) -> Record {
    let mut record = Record::new();
    for slot in slots {
        record.insert(slot);
    }
    record
}

/// Whether a save must read the stored slot headers first: to check a field update against
/// its slot, or an expected revision ([`Changeset::expect`]).
pub(crate) fn needs_headers(changes: &Changeset) -> bool {
    changes.expected().len() > 0
        || changes
            .iter()
            .any(|change| matches!(change, SlotChange::Fields { .. }))
}

/// Checks the expected revisions and every change against the stored slot headers (slots
/// without fields), as [`Record::apply`] would: a stale revision is a conflict, a field update
/// whose slot is gone or has another version or format is refused.
pub(crate) fn check(headers: Vec<Slot>, changes: &Changeset) -> Result<(), ApplyError> {
    let stored = record_of(headers);
    stored.check_expected(changes)?;
    changes.iter().try_for_each(|change| stored.check(change))
}

/// The revision as stored (saturating: no slot is saved 2⁶³ times).
pub(crate) fn revision_column(revision: u64) -> i64 {
    i64::try_from(revision).unwrap_or(i64::MAX)
}

/// A slot's fields without repeated names: a repeated name keeps its first place and its last
/// bytes, as [`Slot::set_field`] does.
pub(crate) fn distinct_fields<'a>(
    fields: impl IntoIterator<Item = (&'a str, &'a Bytes)>,
) -> Vec<(&'a str, &'a [u8])> {
    let mut out: Vec<(&str, &[u8])> = Vec::new();
    for (name, bytes) in fields {
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, existing)) => *existing = bytes,
            None => out.push((name, bytes)),
        }
    }
    out
}

/// A save that is one slot's field update without expected revisions: what the stores' one-trip
/// saves (`sqlite/one_batch.rs`, `postgres/one_statement.rs`) take.
pub(crate) struct FieldUpdate<'a> {
    pub(crate) slot: &'a str,
    pub(crate) version: u32,
    pub(crate) format: Format,
    /// At least one; a name given twice keeps its last bytes.
    pub(crate) fields: Vec<(&'a str, &'a [u8])>,
}

/// `changes` as a [`FieldUpdate`], if they are one.
pub(crate) fn field_update(changes: &Changeset) -> Option<FieldUpdate<'_>> {
    if changes.expected().len() > 0 || changes.len() != 1 {
        return None;
    }
    let Some(SlotChange::Fields {
        slot,
        version,
        format,
        fields,
    }) = changes.iter().next()
    else {
        return None;
    };
    let fields = distinct_fields(fields.iter().map(|(name, bytes)| (&**name, bytes)));
    (!fields.is_empty()).then_some(FieldUpdate {
        slot,
        version: *version,
        format: *format,
        fields,
    })
}

/// What an eager migration did with one stored slot.
pub(crate) enum Migrated {
    /// The session or the slot is gone (deleted or expired meanwhile): not counted.
    Gone,
    /// The slot is current (already, or rewritten meanwhile by a request).
    Current,
    /// The slot was rewritten from this version.
    From(u32),
    /// The slot cannot be migrated; it is left as it is.
    Failed,
}

/// What to write for a stored slot of `T`, with what it counts as.
pub(crate) enum Rewrite {
    /// Nothing to write.
    Keep(Migrated),
    /// Write this slot whole; it was stored at `from`.
    Write {
        /// The version the stored slot had.
        from: u32,
        /// The slot in the current version.
        slot: Slot,
    },
}

/// Decides what becomes of a stored slot of `T` (read under the session's lock): rewritten in
/// the current version through the `From` chain, or left as it is.
pub(crate) fn rewrite<T: Session>(key: &str, slot: &Slot, format: Format) -> Rewrite {
    let from = slot.version();
    match migrate_slot::<T>(slot, format) {
        Ok(None) => Rewrite::Keep(Migrated::Current),
        Ok(Some(slot)) => Rewrite::Write { from, slot },
        Err(err) => {
            tracing::warn!(
                target: "sessions::migration",
                session_key = key,
                session_type = T::NAME,
                stored_version = from,
                error = %err,
                "stored session slot cannot be migrated; it is left as it is"
            );
            Rewrite::Keep(Migrated::Failed)
        }
    }
}

/// One stored slot of the type being migrated, as a scan finds it.
pub(crate) struct Scanned {
    pub(crate) key: String,
    pub(crate) type_tag: String,
    pub(crate) version: i64,
}

/// Walks every stored slot of `T` in live sessions, a page at a time (`scan(after)` returns
/// the slots whose key follows `after`, in key order), and has `one(key)` rewrite those older
/// than `T::VERSION`, each under its session's lock. Current slots are counted without being
/// read; newer ones are counted as failed and left alone.
pub(crate) async fn migrate_all<T, Scan, ScanFut, One, OneFut>(
    mut scan: Scan,
    mut one: One,
) -> Result<MigrationReport, StoreError>
where
    T: Session,
    Scan: FnMut(String) -> ScanFut,
    ScanFut: Future<Output = Result<Vec<Scanned>, StoreError>>,
    One: FnMut(String) -> OneFut,
    OneFut: Future<Output = Result<Migrated, StoreError>>,
{
    let mut report = MigrationReport::default();
    let mut after = String::new();
    loop {
        let page = scan(after.clone()).await?;
        let Some(last) = page.last() else { break };
        after.clone_from(&last.key);
        let full = page.len() as i64 >= PAGE;
        for found in page {
            let version = u32::try_from(found.version).ok();
            let outcome = match version {
                Some(v) if v == T::VERSION && found.type_tag == T::NAME => Migrated::Current,
                Some(v) if v < T::VERSION => match one(found.key.clone()).await {
                    Ok(outcome) => outcome,
                    Err(StoreError::Record(err)) => {
                        tracing::warn!(
                            target: "sessions::migration",
                            session_key = found.key,
                            session_type = T::NAME,
                            error = %err,
                            "stored session slot is malformed; it is left as it is"
                        );
                        Migrated::Failed
                    }
                    Err(err) => return Err(err),
                },
                _ => {
                    tracing::warn!(
                        target: "sessions::migration",
                        session_key = found.key,
                        session_type = T::NAME,
                        stored_version = found.version,
                        stored_type = found.type_tag,
                        known_version = T::VERSION,
                        "stored session slot is not a migratable version of this type; it is left as it is"
                    );
                    Migrated::Failed
                }
            };
            match outcome {
                Migrated::Gone => {}
                Migrated::Current => report.current += 1,
                Migrated::From(from) => *report.migrated.entry(from).or_default() += 1,
                Migrated::Failed => report.failed += 1,
            }
        }
        if !full {
            break;
        }
    }
    if report.total_migrated() > 0 || report.failed > 0 {
        tracing::info!(
            target: "sessions::migration",
            session_type = T::NAME,
            migrated = report.total_migrated(),
            current = report.current,
            failed = report.failed,
            "eager migration done"
        );
    }
    Ok(report)
}

/// Runs `sweep` every `interval` until `stopped()` says the store is closed. Errors are logged,
/// never raised: a store that is down now is swept at the next tick.
pub(crate) fn spawn_sweeper<Stopped, Sweep, SweepFut>(
    store: &'static str,
    interval: Duration,
    stopped: Stopped,
    mut sweep: Sweep,
) -> tokio::task::JoinHandle<()>
where
    Stopped: Fn() -> bool + Send + 'static,
    Sweep: FnMut() -> SweepFut + Send + 'static,
    SweepFut: Future<Output = Result<u64, StoreError>> + Send,
{
    let interval = interval.max(Duration::from_millis(1));
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if stopped() {
                tracing::debug!(target: "sessions", store, "session store closed; the sweeper stops");
                return;
            }
            match sweep().await {
                Ok(0) => {}
                Ok(removed) => {
                    tracing::debug!(target: "sessions", store, removed, "expired sessions removed");
                }
                Err(err) => {
                    tracing::warn!(target: "sessions", store, error = %err, "sweeping expired sessions failed; retrying at the next tick");
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::rows::{SlotRow, assemble};
    use super::*;

    #[test]
    fn table_names() {
        assert!(Tables::new("sessions").is_ok());
        assert!(Tables::new("_app_Sessions2").is_ok());
        for bad in ["", "2sessions", "a-b", "a b", "a\"b", "sessions;drop", "é"] {
            assert!(Tables::new(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(Tables::new(&"a".repeat(40)).is_ok());
        assert!(Tables::new(&"a".repeat(41)).is_err());
        let tables = Tables::new("app").expect("valid");
        assert_eq!(tables.fields, "\"app_fields\"");
    }

    #[test]
    fn times_round_trip() {
        for ms in [0, 1, -1, 1_735_689_600_123, -86_400_000] {
            let t = time(ms).expect("in range");
            assert_eq!(millis(t), ms);
        }
    }

    #[test]
    fn assembles_slots_in_order() {
        let row = |slot: &str, field: Option<(&str, &str)>| SlotRow {
            slot: slot.into(),
            type_tag: slot.into(),
            version: 1,
            format_tag: 1,
            revision: 1,
            field: field.map(|(n, v)| (n.into(), v.as_bytes().to_vec())),
        };
        let slots = assemble([
            row("a", Some(("x", "1"))),
            row("a", Some(("y", "2"))),
            row("b", None),
        ])
        .expect("well-formed");
        assert_eq!(slots.len(), 2);
        assert_eq!(slots[0].fields().len(), 2);
        assert_eq!(slots[1].fields().len(), 0);
        let bad = SlotRow {
            version: -1,
            ..row("c", None)
        };
        assert!(assemble([bad]).is_err());
    }

    #[test]
    fn repeated_fields_keep_first_place_last_bytes() {
        let (a1, b, a2) = (Bytes::from("1"), Bytes::from("2"), Bytes::from("3"));
        let fields = distinct_fields([("a", &a1), ("b", &b), ("a", &a2)]);
        assert_eq!(fields, [("a", &b"3"[..]), ("b", &b"2"[..])]);
    }
}
