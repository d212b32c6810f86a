//! Reading a session's hash (`HGETALL`) back into a record: one pass sorts the entries by kind,
//! field values are moved into the record, not copied, and no hash field name is built to look
//! an entry up. This runs on every load, so it is kept lean (the layout is in `layout.rs`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::layout::{CREATED, EXPIRES, Entries, SLOTS, is_decimal, parse_header, split};
use crate::error::RecordError;
use crate::expiry::Deadline;
use crate::record::{Name, Record, Slot};
use crate::store::Stored;

/// What the layout makes of one hash field name.
enum Entry<'n> {
    Created,
    Expires,
    Slots,
    /// `h:`, `o:` or `r:` of a slot.
    OfSlot(u8, &'n [u8]),
    /// `f:<slot length>:<slot>:<field>`.
    Field {
        slot: &'n [u8],
        field: &'n [u8],
    },
    /// A name the layout does not give (the moving mark among them): ignored.
    Other,
}

fn entry(name: &[u8]) -> Entry<'_> {
    match name {
        n if n == CREATED.as_bytes() => Entry::Created,
        n if n == EXPIRES.as_bytes() => Entry::Expires,
        n if n == SLOTS.as_bytes() => Entry::Slots,
        [kind @ (b'h' | b'o' | b'r'), b':', slot @ ..] => Entry::OfSlot(*kind, slot),
        [b'f', b':', rest @ ..] => field_entry(rest).unwrap_or(Entry::Other),
        _ => Entry::Other,
    }
}

/// `<slot length>:<slot>:<field>`.
fn field_entry(rest: &[u8]) -> Option<Entry<'_>> {
    let colon = rest.iter().position(|&b| b == b':')?;
    let length = std::str::from_utf8(&rest[..colon]).ok()?;
    let rest = &rest[colon + 1..];
    let length: usize = is_decimal(length).then(|| length.parse().ok())??;
    let slot = rest.get(..length)?;
    let field = rest.get(length..)?.strip_prefix(b":")?;
    Some(Entry::Field { slot, field })
}

/// One slot's metadata, read before any field value is moved out.
struct SlotMeta {
    name: String,
    version: u32,
    format_tag: u8,
    type_tag: String,
    fields: Vec<String>,
    revision: u64,
}

fn malformed(reason: impl Into<String>) -> RecordError {
    RecordError::Malformed(reason.into())
}

fn malformed_slot(slot: &str, reason: impl Into<String>) -> RecordError {
    RecordError::MalformedSlot {
        slot: slot.to_owned(),
        reason: reason.into(),
    }
}

/// The UTF-8 value of the entry at `at`; on failure, why not, for the hash field `name`
/// (made only then).
fn text(
    values: &[Vec<u8>],
    at: Option<usize>,
    name: impl FnOnce() -> String,
) -> Result<&str, String> {
    let Some(value) = at.and_then(|i| values.get(i)) else {
        return Err(format!("hash field `{}` is missing", name()));
    };
    std::str::from_utf8(value).map_err(|_| format!("hash field `{}` is not UTF-8", name()))
}

fn time(values: &[Vec<u8>], at: Option<usize>, name: &str) -> Result<SystemTime, RecordError> {
    let ms: u64 = text(values, at, || name.to_owned())
        .map_err(malformed)?
        .parse()
        .map_err(|_| malformed(format!("hash field `{name}` is not a time in ms")))?;
    Ok(UNIX_EPOCH + Duration::from_millis(ms))
}

/// A session read back from its hash (`HGETALL`). Entries the layout does not name (the
/// moving mark included) are ignored; anything missing or unreadable that it does name is a
/// [`RecordError`]. A slot without a revision entry (written before revisions) is at
/// revision 1.
pub(super) fn parse(entries: Entries) -> Result<Stored, RecordError> {
    let (names, mut values): (Vec<Vec<u8>>, Vec<Vec<u8>>) = entries.into_iter().unzip();
    let (mut created, mut expires, mut slots) = (None, None, None);
    // (kind, slot, index) and (slot, field, index), the latter sorted for lookups.
    let mut of_slots: Vec<(u8, &[u8], usize)> = Vec::new();
    let mut fields: Vec<(&[u8], &[u8], usize)> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        match entry(name) {
            Entry::Created => created = Some(i),
            Entry::Expires => expires = Some(i),
            Entry::Slots => slots = Some(i),
            Entry::OfSlot(kind, slot) => of_slots.push((kind, slot, i)),
            Entry::Field { slot, field } => fields.push((slot, field, i)),
            Entry::Other => {}
        }
    }
    fields.sort_unstable();
    let deadline = Deadline {
        created_at: time(&values, created, CREATED)?,
        expires_at: time(&values, expires, EXPIRES)?,
    };
    let slot_list = text(&values, slots, || SLOTS.to_owned()).map_err(malformed)?;
    let slot_names = split(slot_list).ok_or_else(|| malformed("the slot list is malformed"))?;
    let mut metas = Vec::with_capacity(slot_names.len());
    for name in slot_names {
        let find = |kind: u8| {
            of_slots
                .iter()
                .find(|(k, slot, _)| *k == kind && *slot == name.as_bytes())
                .map(|(_, _, i)| *i)
        };
        let header = text(&values, find(b'h'), || format!("h:{name}"))
            .map_err(|e| malformed_slot(name, e))?;
        let (version, format_tag, type_tag) = parse_header(header)
            .ok_or_else(|| malformed_slot(name, format!("header `{header}` is malformed")))?;
        let order = text(&values, find(b'o'), || format!("o:{name}"))
            .map_err(|e| malformed_slot(name, e))?;
        let field_names =
            split(order).ok_or_else(|| malformed_slot(name, "the field list is malformed"))?;
        let revision = match find(b'r') {
            None => 1,
            Some(i) => std::str::from_utf8(&values[i])
                .ok()
                .filter(|text| is_decimal(text))
                .and_then(|text| text.parse().ok())
                .ok_or_else(|| malformed_slot(name, "the revision is not a number"))?,
        };
        metas.push(SlotMeta {
            name: name.to_owned(),
            version,
            format_tag,
            type_tag: type_tag.to_owned(),
            fields: field_names.into_iter().map(str::to_owned).collect(),
            revision,
        });
    }
    let mut record = Record::new();
    for meta in metas {
        let mut slot_fields: Vec<(Name, Bytes)> = Vec::with_capacity(meta.fields.len());
        for field in meta.fields {
            let key = (meta.name.as_bytes(), field.as_bytes());
            let at = fields
                .binary_search_by(|(slot, name, _)| (*slot, *name).cmp(&key))
                .map_err(|_| malformed_slot(&meta.name, format!("field `{field}` is missing")))?;
            let value = std::mem::take(&mut values[fields[at].2]);
            slot_fields.push((field.into(), Bytes::from(value)));
        }
        if has_duplicates(&slot_fields) {
            return Err(malformed_slot(&meta.name, "a field is listed twice"));
        }
        record.insert(
            Slot::from_parts(
                meta.name.into(),
                meta.type_tag.into(),
                meta.version,
                meta.format_tag,
                slot_fields,
            )
            .with_revision(meta.revision),
        );
    }
    Ok(Stored { record, deadline })
}

/// Whether a field name appears twice (its value was moved out at the first).
fn has_duplicates(fields: &[(Name, Bytes)]) -> bool {
    fields
        .iter()
        .enumerate()
        .any(|(i, (name, _))| fields[..i].iter().any(|(other, _)| other == name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Format;

    fn entries(pairs: &[(&str, &str)]) -> Entries {
        pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn a_hash_reads_back_in_its_listed_order() {
        let stored = parse(entries(&[
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
            ("m", "ignored here"),
        ]))
        .expect("parses");
        let mut cart = Slot::new(
            "cart",
            3,
            Format::Json,
            vec![("b".into(), "2".into()), ("a".into(), "1".into())],
        );
        cart = cart.with_revision(7);
        let other = Slot::new("a:b", 1, Format::Json, vec![("c".into(), "[]".into())]);
        let mut expected = Record::new();
        expected.insert(cart);
        expected.insert(other);
        assert_eq!(stored.record, expected);
        assert_eq!(stored.record.revision_of("cart"), 7);
        assert_eq!(stored.record.revision_of("a:b"), 1);
        assert_eq!(
            stored.deadline.expires_at,
            UNIX_EPOCH + Duration::from_millis(2000)
        );
    }

    #[test]
    fn broken_hashes_are_errors_not_panics() {
        let good = [
            ("c", "1000"),
            ("e", "2000"),
            ("s", "4:cart"),
            ("h:cart", "1:1:cart"),
            ("o:cart", "1:a"),
            ("f:4:cart:a", "1"),
        ];
        assert!(parse(entries(&good)).is_ok());
        for drop in 0..good.len() {
            let mut less = good.to_vec();
            less.remove(drop);
            assert!(parse(entries(&less)).is_err(), "without {:?}", good[drop]);
        }
        for (name, bad) in [
            ("c", "soon"),
            ("s", "9:cart"),
            ("h:cart", "x:1:cart"),
            ("o:cart", "2:a"),
            ("o:cart", "1:a1:a"),
        ] {
            let mut broken = good.to_vec();
            for entry in &mut broken {
                if entry.0 == name {
                    entry.1 = bad;
                }
            }
            assert!(parse(entries(&broken)).is_err(), "{name} = {bad}");
        }
        let mut revision = good.to_vec();
        revision.push(("r:cart", "-1"));
        assert!(parse(entries(&revision)).is_err());
        let mut odd = good.to_vec();
        odd.push(("f:99:cart:a", "?"));
        odd.push(("f:x:cart:a", "?"));
        odd.push(("f:", "?"));
        assert!(parse(entries(&odd)).is_ok(), "unknown names are ignored");
    }
}
