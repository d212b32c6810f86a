//! How one session is laid out in its Redis hash, and how a hash is read back into a record.
//!
//! One session is one hash (read back by `read.rs`) under `{prefix}{<session key>}`. Its fields:
//!
//! | hash field | value |
//! |---|---|
//! | `c` | `created_at`, milliseconds since the Unix epoch |
//! | `e` | `expires_at`, milliseconds since the Unix epoch (the key also expires then) |
//! | `s` | the slot names, in record order, as a name list |
//! | `h:<slot>` | the slot header: `<version>:<format tag>:<type tag>` |
//! | `o:<slot>` | the slot's field names, in slot order, as a name list |
//! | `r:<slot>` | the slot's revision, a decimal (see [`Slot::revision`]); absent in sessions written before revisions, which read as revision 1 |
//! | `f:<slot length>:<slot>:<field>` | one field's encoded bytes |
//! | `m` | only while a Redis Cluster `cycle` moves the session: the new key (see `cycle.rs`) |
//!
//! `create` writes `r:<slot>` as the slot's revision (at least 1); every save that writes a
//! slot (field update or whole slot) moves it by one, a removed slot loses it. A hash holding
//! `m` is a session on its way out: it loads as absent and every save finds it missing.
//!
//! A name list is each name as `<byte length>:<name>`, concatenated, so any name (with `:`,
//! `{`, newlines…) round-trips. The slot name's length in a field entry keeps `f:` entries of
//! slot `a` apart from those of slot `a:b`. The two lists keep slots and fields in the order
//! [`Record::apply`] gives them, so a record reads back exactly as it was written. The Lua
//! scripts maintain the same layout: `create.lua`, `apply.lua` (the changeset logic that
//! `save.lua`, `cycle.lua` and `freeze.lua` share), `save_fast.lua` (the common field update,
//! ahead of it) and `unfreeze.lua`.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::record::{Record, Slot};

/// A hash's field/value pairs, as `HGETALL` gives them.
pub(super) type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// The hash field holding `created_at`.
pub(super) const CREATED: &str = "c";
/// The hash field holding `expires_at`.
pub(super) const EXPIRES: &str = "e";
/// The hash field holding the slot order.
pub(super) const SLOTS: &str = "s";
/// The hash field that marks a session being moved by a cluster `cycle`.
pub(super) const MOVING: &[u8] = b"m";

/// The Redis key of a session: the session key inside `{}` so that everything of one session
/// hashes to one cluster slot.
pub(super) fn redis_key(prefix: &str, session_key: &str) -> String {
    format!("{prefix}{{{session_key}}}")
}

/// The session key inside a Redis key written by [`redis_key`], if it is one.
pub(super) fn session_key_of<'k>(prefix: &str, redis_key: &'k str) -> Option<&'k str> {
    let inner = redis_key.strip_prefix(prefix)?.strip_prefix('{')?;
    let inner = inner.strip_suffix('}')?;
    (inner.len() == 64
        && inner
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then_some(inner)
}

/// A `SCAN MATCH` pattern for every session under `prefix` (glob characters escaped).
pub(super) fn scan_pattern(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 4);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push_str("{*}");
    pattern
}

pub(super) fn header_key(slot: &str) -> String {
    format!("h:{slot}")
}

pub(super) fn order_key(slot: &str) -> String {
    format!("o:{slot}")
}

pub(super) fn revision_key(slot: &str) -> String {
    format!("r:{slot}")
}

pub(super) fn field_key(slot: &str, field: &str) -> String {
    format!("f:{}:{slot}:{field}", slot.len())
}

/// A slot's header value.
pub(super) fn header(version: u32, format_tag: u8, type_tag: &str) -> String {
    format!("{version}:{format_tag}:{type_tag}")
}

pub(super) fn slot_header(slot: &Slot) -> String {
    header(slot.version(), slot.format_tag(), slot.type_tag())
}

/// `(version, format tag, type tag)` of a header value.
pub(super) fn parse_header(value: &str) -> Option<(u32, u8, &str)> {
    let (version, rest) = value.split_once(':')?;
    let (format, type_tag) = rest.split_once(':')?;
    if !is_decimal(version) || !is_decimal(format) {
        return None;
    }
    Some((version.parse().ok()?, format.parse().ok()?, type_tag))
}

/// Whether `text` is a non-empty run of ASCII digits.
pub(super) fn is_decimal(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// Names as a name list (`<length>:<name>` each), duplicates dropped.
pub(super) fn join<'n>(names: impl IntoIterator<Item = &'n str>) -> String {
    let mut seen: Vec<&str> = Vec::new();
    let mut out = String::new();
    for name in names {
        if !seen.contains(&name) {
            seen.push(name);
            out.push_str(&name.len().to_string());
            out.push(':');
            out.push_str(name);
        }
    }
    out
}

/// The names of a name list; `None` when it is malformed.
pub(super) fn split(list: &str) -> Option<Vec<&str>> {
    let mut names = Vec::new();
    let mut rest = list;
    while !rest.is_empty() {
        let (length, tail) = rest.split_once(':')?;
        if !is_decimal(length) {
            return None;
        }
        let length: usize = length.parse().ok()?;
        names.push(tail.get(..length)?);
        rest = tail.get(length..)?;
    }
    Some(names)
}

/// Milliseconds since the Unix epoch (0 before it).
pub(super) fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The hash fields and values `create` writes for a record (everything but the deadline).
pub(super) fn record_entries(record: &Record) -> Vec<(String, Bytes)> {
    let mut entries = vec![(
        SLOTS.to_owned(),
        Bytes::from(join(record.slots().map(Slot::name))),
    )];
    for slot in record.slots() {
        entries.push((header_key(slot.name()), Bytes::from(slot_header(slot))));
        entries.push((
            order_key(slot.name()),
            Bytes::from(join(slot.fields().map(|(name, _)| name))),
        ));
        entries.push((
            revision_key(slot.name()),
            Bytes::from(slot.revision().max(1).to_string()),
        ));
        for (name, bytes) in slot.fields() {
            entries.push((field_key(slot.name(), name), bytes.clone()));
        }
    }
    entries
}

/// Whether a hash read back (`HGETALL`) is a session being moved by a cluster `cycle`.
pub(super) fn is_moving(entries: &Entries) -> bool {
    entries.iter().any(|(name, _)| name == MOVING)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_lists_round_trip_any_name() {
        let names = ["cart", "a:b", "", "{x}", "ünï\ncode", "12:3"];
        let list = join(names);
        assert_eq!(split(&list), Some(names.to_vec()));
        assert_eq!(split(""), Some(vec![]));
        assert_eq!(join(["a", "a"]), "1:a");
    }

    #[test]
    fn malformed_name_lists_are_refused() {
        for bad in ["x", "3:ab", "-1:a", "1a", ":", "1:é"] {
            assert_eq!(split(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn headers_parse_strictly() {
        assert_eq!(parse_header("2:1:cart"), Some((2, 1, "cart")));
        assert_eq!(parse_header("2:1:a:b"), Some((2, 1, "a:b")));
        for bad in ["", "2:1", "x:1:cart", "2:+1:cart", "2:300:cart", ":1:cart"] {
            assert_eq!(parse_header(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn keys_carry_the_session_key_as_hash_tag() {
        let hex = "ab".repeat(32);
        let key = redis_key("sessions:", &hex);
        assert_eq!(key, format!("sessions:{{{hex}}}"));
        assert_eq!(session_key_of("sessions:", &key), Some(&*hex));
        assert_eq!(session_key_of("sessions:", "sessions:{zz}"), None);
        assert_eq!(session_key_of("other:", &key), None);
        assert_eq!(scan_pattern("a*b?[c]\\:"), "a\\*b\\?\\[c\\]\\\\:{*}");
    }

    #[test]
    fn field_entries_of_similar_slot_names_stay_apart() {
        assert_ne!(field_key("a", "b:c"), field_key("a:b", "c"));
    }
}
