//! The layout before issue 13 (a hash per session), read once to convert it: a session stored
//! by an older release answers `WRONGTYPE` to the `GET` of a load, is read with `HGETALL`,
//! converted here, and replaced by its entry in the new layout (`convert.lua`, only if the hash
//! is still what was read).
//!
//! The old hash's fields:
//!
//! | hash field | value |
//! |---|---|
//! | `c`, `e` | `created_at`, `expires_at`, ms since the Unix epoch |
//! | `s` | the slot names, in record order, as a name list (`<byte length>:<name>` each) |
//! | `h:<slot>` | the slot header: `<version>:<format tag>:<type tag>` |
//! | `o:<slot>` | the slot's field names, in order, as a name list |
//! | `r:<slot>` | the slot's revision (absent before revisions: revision 1) |
//! | `f:<slot length>:<slot>:<field>` | one field's bytes |
//! | `m` | only while an old Redis Cluster `cycle` moved the session: it is gone |
//!
//! What is broken in a slot (its header, its field list, or one of its listed fields missing or
//! malformed) drops that slot only, with a warning, as the SQL stores lose only a broken slot;
//! a broken deadline or slot list makes the whole hash [`RecordError::Malformed`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::errors::RecordError;
use crate::expiry::Deadline;
use crate::record::{Name, Record, Slot};
use crate::store::Stored;

/// A hash's field/value pairs, as `HGETALL` gives them.
pub(super) type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// What an old hash holds.
#[derive(Debug)]
pub(super) enum Legacy {
    /// A session, and the names of the slots that were dropped because they were broken.
    Session {
        stored: Stored,
        dropped: Vec<String>,
    },
    /// A session an old cluster `cycle` was moving away: gone.
    Moving,
}

fn malformed(reason: impl Into<String>) -> RecordError {
    RecordError::Malformed(format!("old-layout session hash: {}", reason.into()))
}

fn is_decimal(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// The names of a name list; `None` when it is malformed.
fn split(list: &str) -> Option<Vec<&str>> {
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

/// `(version, format tag, type tag)` of a header value.
fn parse_header(value: &str) -> Option<(u32, u8, &str)> {
    let (version, rest) = value.split_once(':')?;
    let (format, type_tag) = rest.split_once(':')?;
    if !is_decimal(version) || !is_decimal(format) {
        return None;
    }
    Some((version.parse().ok()?, format.parse().ok()?, type_tag))
}

fn find<'p>(pairs: &'p Pairs, name: &[u8]) -> Option<&'p [u8]> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
}

fn text<'p>(pairs: &'p Pairs, name: &str) -> Result<&'p str, String> {
    let value = find(pairs, name.as_bytes()).ok_or_else(|| format!("`{name}` is missing"))?;
    std::str::from_utf8(value).map_err(|_| format!("`{name}` is not UTF-8"))
}

fn time(pairs: &Pairs, name: &str) -> Result<SystemTime, RecordError> {
    let ms: u64 = text(pairs, name)
        .map_err(malformed)?
        .parse()
        .map_err(|_| malformed(format!("`{name}` is not a time in ms")))?;
    UNIX_EPOCH
        .checked_add(Duration::from_millis(ms))
        .ok_or_else(|| malformed(format!("`{name}` is out of range")))
}

/// One slot read from the hash; `Err` says why it is broken.
fn slot(pairs: &Pairs, name: &str) -> Result<Slot, String> {
    let header = text(pairs, &format!("h:{name}"))?;
    let (version, format_tag, type_tag) =
        parse_header(header).ok_or_else(|| format!("header `{header}` is malformed"))?;
    let order = text(pairs, &format!("o:{name}"))?;
    let fields = split(order).ok_or("the field list is malformed")?;
    let revision = match find(pairs, format!("r:{name}").as_bytes()) {
        None => 1,
        Some(value) => std::str::from_utf8(value)
            .ok()
            .filter(|text| is_decimal(text))
            .and_then(|text| text.parse().ok())
            .ok_or("the revision is not a number")?,
    };
    let mut values: Vec<(Name, Bytes)> = Vec::with_capacity(fields.len());
    for field in fields {
        if values.iter().any(|(n, _)| n == field) {
            return Err(format!("field `{field}` is listed twice"));
        }
        let key = format!("f:{}:{name}:{field}", name.len());
        let bytes =
            find(pairs, key.as_bytes()).ok_or_else(|| format!("field `{field}` is missing"))?;
        values.push((field.to_owned().into(), Bytes::copy_from_slice(bytes)));
    }
    Ok(Slot::from_parts(
        name.to_owned().into(),
        type_tag.to_owned().into(),
        version,
        format_tag,
        values,
    )
    .with_revision(revision))
}

/// Reads an old-layout hash.
pub(super) fn parse(pairs: &Pairs) -> Result<Legacy, RecordError> {
    if find(pairs, b"m").is_some() {
        return Ok(Legacy::Moving);
    }
    let deadline = Deadline {
        created_at: time(pairs, "c")?,
        expires_at: time(pairs, "e")?,
    };
    let list = text(pairs, "s").map_err(malformed)?;
    let names = split(list).ok_or_else(|| malformed("the slot list is malformed"))?;
    let mut record = Record::new();
    let mut dropped = Vec::new();
    for name in names {
        if record.slot(name).is_some() {
            continue;
        }
        match slot(pairs, name) {
            Ok(slot) => {
                record.insert(slot);
            }
            Err(reason) => {
                tracing::warn!(target: "sessions::store", slot = name, reason, "a broken slot of an old-layout Redis session is dropped");
                dropped.push(name.to_owned());
            }
        }
    }
    Ok(Legacy::Session {
        stored: Stored::new(record, deadline),
        dropped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Format;

    fn pairs(list: &[(&str, &str)]) -> Pairs {
        list.iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    fn session(list: &[(&str, &str)]) -> (Stored, Vec<String>) {
        match parse(&pairs(list)) {
            Ok(Legacy::Session { stored, dropped }) => (stored, dropped),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_hash_reads_back_in_its_listed_order() {
        let (stored, dropped) = session(&[
            ("f:4:cart:b", "2"),
            ("c", "1000"),
            ("e", "2000"),
            ("s", "4:cart3:a:b"),
            ("h:cart", "3:1:cart"),
            ("o:cart", "1:b1:a"),
            ("r:cart", "7"),
            ("f:4:cart:a", "1"),
            ("h:a:b", "1:1:a:b"),
            ("o:a:b", "1:c"),
            ("f:3:a:b:c", "[]"),
            ("f:1:a:b:c", "not this slot's"),
        ]);
        assert!(dropped.is_empty());
        let mut expected = Record::new();
        expected.insert(
            Slot::new(
                "cart",
                3,
                Format::Json,
                vec![("b".into(), "2".into()), ("a".into(), "1".into())],
            )
            .with_revision(7),
        );
        expected.insert(Slot::new(
            "a:b",
            1,
            Format::Json,
            vec![("c".into(), "[]".into())],
        ));
        assert_eq!(stored.record, expected);
        assert_eq!(stored.record.revision_of("a:b"), 1);
        assert_eq!(
            stored.deadline.expires_at,
            UNIX_EPOCH + Duration::from_millis(2000)
        );
    }

    #[test]
    fn a_broken_slot_is_dropped_and_a_broken_session_is_an_error() {
        let good = [
            ("c", "1000"),
            ("e", "2000"),
            ("s", "4:cart5:prefs"),
            ("h:cart", "1:1:cart"),
            ("o:cart", "1:a"),
            ("f:4:cart:a", "1"),
            ("h:prefs", "1:1:prefs"),
            ("o:prefs", "4:dark"),
            ("f:5:prefs:dark", "true"),
        ];
        let (stored, dropped) = session(&good);
        assert_eq!(stored.record.slots().count(), 2);
        assert!(dropped.is_empty());
        for broken in ["h:cart", "o:cart", "f:4:cart:a"] {
            let less: Vec<_> = good.iter().copied().filter(|(k, _)| *k != broken).collect();
            let (stored, dropped) = session(&less);
            assert_eq!(dropped, ["cart"], "without {broken}");
            assert!(stored.record.slot("prefs").is_some());
        }
        for broken in ["c", "e", "s"] {
            let less: Vec<_> = good.iter().copied().filter(|(k, _)| *k != broken).collect();
            assert!(parse(&pairs(&less)).is_err(), "without {broken}");
        }
        for (name, bad) in [("c", "soon"), ("s", "9:cart")] {
            let mut list = good.to_vec();
            for entry in &mut list {
                if entry.0 == name {
                    entry.1 = bad;
                }
            }
            assert!(parse(&pairs(&list)).is_err(), "{name} = {bad}");
        }
        let mut moving = good.to_vec();
        moving.push(("m", "elsewhere"));
        assert!(matches!(parse(&pairs(&moving)), Ok(Legacy::Moving)));
    }

    #[test]
    fn name_lists_round_trip_and_malformed_ones_are_refused() {
        assert_eq!(split("4:cart3:a:b"), Some(vec!["cart", "a:b"]));
        assert_eq!(split(""), Some(vec![]));
        for bad in ["x", "3:ab", "-1:a", "1a", ":", "1:é"] {
            assert_eq!(split(bad), None, "{bad:?}");
        }
        assert_eq!(parse_header("2:1:a:b"), Some((2, 1, "a:b")));
        assert_eq!(parse_header("x:1:cart"), None);
    }
}
