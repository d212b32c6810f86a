//! What goes over the wire: the save script's arguments and the replies of the scripts and
//! commands the store sends.

use ::redis::Value;

use super::layout::{self, Entries};
use crate::error::{ApplyError, Conflict, RecordError};
use crate::record::{Changeset, Slot, SlotChange};
use crate::store::StoreError;

/// A reply the scripts never give: the server is not running our scripts, or the data is
/// not ours.
#[derive(Debug, thiserror::Error)]
#[error("unexpected reply from Redis to {command}: {reply}")]
struct UnexpectedReply {
    command: &'static str,
    reply: String,
}

pub(super) fn unexpected(command: &'static str, reply: impl std::fmt::Debug) -> StoreError {
    StoreError::backend(UnexpectedReply {
        command,
        reply: format!("{reply:?}"),
    })
}

/// One change as the scripts read it (`apply.lua`).
pub(super) enum Change<'a> {
    /// Refuse the whole changeset unless the slot is stored at this revision (0: absent).
    Expect {
        slot: &'a str,
        revision: u64,
    },
    Put {
        slot: &'a str,
        header: String,
        fields: Vec<(&'a str, &'a [u8])>,
    },
    Fields {
        slot: &'a str,
        version: u32,
        format_tag: u8,
        fields: Vec<(&'a str, &'a [u8])>,
    },
    Remove {
        slot: &'a str,
    },
    /// Refuse the whole changeset unless the slot is stored exactly as `slot` (header, field
    /// list, every field's bytes).
    Guard(&'a Slot),
}

impl<'a> Change<'a> {
    /// Everything `changes` asks of a script: its expectations first (a conflict is reported
    /// before any other refusal, as [`Record::apply`](crate::Record::apply) does), then its
    /// changes.
    pub(super) fn list(changes: &'a Changeset) -> Vec<Self> {
        let mut list = Vec::with_capacity(changes.expected().len() + changes.len());
        list.extend(
            changes
                .expected()
                .map(|(slot, revision)| Change::Expect { slot, revision }),
        );
        list.extend(changes.iter().map(Change::of));
        list
    }

    /// Writes the arguments of every change of `changes` (see [`list`](Change::list)).
    pub(super) fn write_all(changes: &Changeset, invocation: &mut ::redis::ScriptInvocation<'_>) {
        for change in Change::list(changes) {
            change.write(invocation);
        }
    }

    pub(super) fn of(change: &'a SlotChange) -> Self {
        match change {
            SlotChange::Put(slot) => Change::Put {
                slot: slot.name(),
                header: layout::slot_header(slot),
                fields: slot.fields().map(|(n, b)| (n, &b[..])).collect(),
            },
            SlotChange::Fields {
                slot,
                version,
                format,
                fields,
            } => Change::Fields {
                slot,
                version: *version,
                format_tag: format.tag(),
                fields: fields.iter().map(|(n, b)| (&**n, &b[..])).collect(),
            },
            SlotChange::Remove { slot } => Change::Remove { slot },
        }
    }

    pub(super) fn write(&self, invocation: &mut ::redis::ScriptInvocation<'_>) {
        let pairs = |invocation: &mut ::redis::ScriptInvocation<'_>, fields: &[(&str, &[u8])]| {
            invocation.arg(fields.len());
            for (name, bytes) in fields {
                invocation.arg(*name).arg(*bytes);
            }
        };
        match self {
            Change::Expect { slot, revision } => {
                invocation.arg("E").arg(*slot).arg(revision.to_string());
            }
            Change::Put {
                slot,
                header,
                fields,
            } => {
                invocation.arg("P").arg(*slot).arg(header);
                pairs(invocation, fields);
            }
            Change::Fields {
                slot,
                version,
                format_tag,
                fields,
            } => {
                // The header's start: the script compares it with the stored header's.
                invocation
                    .arg("F")
                    .arg(*slot)
                    .arg(format!("{version}:{format_tag}:"));
                pairs(invocation, fields);
            }
            Change::Remove { slot } => {
                invocation.arg("R").arg(*slot);
            }
            Change::Guard(slot) => {
                invocation
                    .arg("G")
                    .arg(slot.name())
                    .arg(layout::slot_header(slot))
                    .arg(layout::join(slot.fields().map(|(name, _)| name)));
                let fields: Vec<(&str, &[u8])> = slot
                    .fields()
                    .map(|(name, bytes)| (name, &bytes[..]))
                    .collect();
                pairs(invocation, &fields);
            }
        }
    }
}

/// What the save, cycle or freeze script answered.
#[derive(Debug)]
pub(super) enum SaveReply {
    Ok,
    Missing,
    /// The cycle's new key is taken.
    Collision,
    /// An expected revision does not hold.
    Conflict(Conflict),
    /// A guard found another header.
    Guard,
    /// A field update's slot is not stored.
    SlotMissing(String),
    /// A field update's slot is stored with this other header.
    SlotChanged {
        slot: String,
        header: String,
    },
}

impl SaveReply {
    pub(super) fn parse(reply: Vec<Vec<u8>>) -> Result<Self, StoreError> {
        let text = |i: usize| {
            reply
                .get(i)
                .map(|b| String::from_utf8_lossy(b).into_owned())
        };
        let number = |i: usize| text(i).and_then(|t| t.parse::<u64>().ok());
        match reply.first().map(Vec::as_slice) {
            Some(b"ok") => Ok(SaveReply::Ok),
            Some(b"missing") => Ok(SaveReply::Missing),
            Some(b"collision") => Ok(SaveReply::Collision),
            Some(b"conflict") => match (text(1), number(2), number(3)) {
                (Some(slot), Some(expected), Some(stored)) => Ok(SaveReply::Conflict(Conflict {
                    slot,
                    expected,
                    stored,
                })),
                _ => Err(unexpected("the save script", &reply)),
            },
            Some(b"guard") => Ok(SaveReply::Guard),
            Some(b"slot_missing") => Ok(SaveReply::SlotMissing(text(1).unwrap_or_default())),
            Some(b"slot_changed") => Ok(SaveReply::SlotChanged {
                slot: text(1).unwrap_or_default(),
                header: text(2).unwrap_or_default(),
            }),
            _ => Err(unexpected("the save script", &reply)),
        }
    }
}

impl SaveReply {
    /// The outcome of a save or cycle; `what` names the script for an unexpected reply.
    pub(super) fn outcome(
        self,
        changes: &Changeset,
        what: &'static str,
    ) -> Result<crate::store::SaveOutcome, StoreError> {
        use crate::store::SaveOutcome;
        match self {
            SaveReply::Ok => Ok(SaveOutcome::Saved),
            SaveReply::Missing => Ok(SaveOutcome::Missing),
            SaveReply::Collision => Err(StoreError::Collision),
            SaveReply::Conflict(conflict) => Err(StoreError::Conflict(conflict)),
            SaveReply::SlotMissing(slot) => {
                Err(StoreError::Apply(ApplyError::SlotMissing { slot }))
            }
            SaveReply::SlotChanged { slot, header } => Err(slot_changed(changes, slot, &header)),
            SaveReply::Guard => Err(unexpected(what, "a guard it was not given")),
        }
    }
}

/// The error for a field update of `changes` refused because its slot is stored with `header`.
pub(super) fn slot_changed(changes: &Changeset, slot: String, header: &str) -> StoreError {
    let Some((stored_version, stored_format, _)) = layout::parse_header(header) else {
        return StoreError::Record(RecordError::MalformedSlot {
            slot,
            reason: format!("header `{header}` is malformed"),
        });
    };
    let expected = changes.iter().find_map(|change| match change {
        SlotChange::Fields {
            slot: name,
            version,
            format,
            ..
        } if **name == *slot => Some((*version, *format)),
        _ => None,
    });
    match expected {
        Some((expected_version, expected_format)) => StoreError::Apply(ApplyError::SlotChanged {
            slot,
            expected_version,
            expected_format,
            stored_version,
            stored_format,
        }),
        None => unexpected("the save script", format!("slot_changed for `{slot}`")),
    }
}

/// The field/value pairs of an `HGETALL` reply (RESP2 array or RESP3 map).
pub(super) fn pairs(reply: Value) -> Result<Entries, StoreError> {
    let bytes = |value: Value| match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) => Some(text.into_bytes()),
        _ => None,
    };
    match reply {
        Value::Nil => Ok(Vec::new()),
        Value::Map(map) => map
            .into_iter()
            .map(|(k, v)| bytes(k).zip(bytes(v)))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| unexpected("HGETALL", "a map of non-strings")),
        Value::Array(items) if items.len() % 2 == 0 => {
            let mut out = Vec::with_capacity(items.len() / 2);
            let mut items = items.into_iter();
            while let (Some(k), Some(v)) = (items.next(), items.next()) {
                out.push(
                    bytes(k)
                        .zip(bytes(v))
                        .ok_or_else(|| unexpected("HGETALL", "an array of non-strings"))?,
                );
            }
            Ok(out)
        }
        other => Err(unexpected("HGETALL", other)),
    }
}

fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(text) => Some(text.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `(cursor, keys)` of a `SCAN` reply.
pub(super) fn scan_reply(reply: &Value) -> Option<(u64, Vec<String>)> {
    let Value::Array(parts) = reply else {
        return None;
    };
    let [cursor, Value::Array(keys)] = parts.as_slice() else {
        return None;
    };
    let cursor = as_text(cursor)?.parse().ok()?;
    let keys = keys.iter().map(as_text).collect::<Option<Vec<_>>>()?;
    Some((cursor, keys))
}

/// The primaries' addresses in a `CLUSTER SLOTS` reply (each range's first node).
pub(super) fn primaries(reply: &Value) -> Option<Vec<(String, u16)>> {
    let Value::Array(ranges) = reply else {
        return None;
    };
    let mut nodes: Vec<(String, u16)> = Vec::new();
    for range in ranges {
        let Value::Array(range) = range else {
            return None;
        };
        let Some(Value::Array(primary)) = range.get(2) else {
            return None;
        };
        let host = as_text(primary.first()?)?;
        let port = match primary.get(1)? {
            Value::Int(port) => u16::try_from(*port).ok()?,
            other => as_text(other)?.parse().ok()?,
        };
        if !nodes.iter().any(|(h, p)| *h == host && *p == port) {
            nodes.push((host, port));
        }
    }
    Some(nodes)
}
