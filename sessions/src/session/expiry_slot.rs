//! A session's own expiry policy (`SessionHandle::set_expiry`), stored with the session as the
//! reserved slot `__expiry`, so every store keeps it without a column of its own.

use std::borrow::Cow;
use std::time::Duration;

use crate::codec::Format;
use crate::expiry::Expiry;
use crate::record::{Record, Slot};

const EXPIRY_SLOT: &str = "__expiry";

/// The `__expiry` slot holding a session's own policy.
pub(crate) fn expiry_slot(expiry: &Expiry, format: Format) -> Option<Slot> {
    let secs = |d: Option<Duration>| d.map(|d| d.as_secs());
    let fields = [
        ("idle", format.encode(&secs(expiry.idle_time()))),
        ("absolute", format.encode(&secs(expiry.absolute_time()))),
        ("browser", format.encode(&expiry.is_browser_session())),
    ];
    let fields = fields
        .into_iter()
        .map(|(name, bytes)| bytes.ok().map(|b| (Cow::Borrowed(name), b)))
        .collect::<Option<Vec<_>>>()?;
    Some(Slot::new(EXPIRY_SLOT, 1, format, fields))
}

/// The policy stored in a record's `__expiry` slot, if any and readable.
pub(crate) fn stored_expiry(record: &Record) -> Option<Expiry> {
    let slot = record.slot(EXPIRY_SLOT)?;
    let format = slot.format()?;
    let read = |name: &str| -> Option<Option<u64>> { format.decode(slot.field(name)?).ok() };
    let idle = read("idle")?.map(Duration::from_secs);
    let absolute = read("absolute")?.map(Duration::from_secs);
    let browser: bool = format.decode(slot.field("browser")?).ok()?;
    let expiry = match (idle, absolute, browser) {
        (Some(idle), _, true) => Expiry::browser_session(idle),
        (Some(idle), Some(absolute), false) => Expiry::idle_and_absolute(idle, absolute),
        (Some(idle), None, false) => Expiry::idle(idle),
        (None, Some(absolute), _) => Expiry::absolute(absolute),
        (None, None, _) => return None,
    };
    Some(match absolute {
        Some(absolute) if browser => expiry.with_absolute(absolute),
        _ => expiry,
    })
}
