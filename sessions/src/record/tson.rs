//! The TSON form of a whole record: `{"cart":{"__type__":"cart","__v__":2,"items":[..]}}`.

use std::fmt;

use bytes::Bytes;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::errors::RecordError;
use crate::record::{Record, Slot};

const TYPE_KEY: &str = "__type__";
const VERSION_KEY: &str = "__v__";

/// Writes `{"<slot>":{"__type__":"<type>","__v__":N,"<field>":<json>,...},...}`.
/// Every slot's fields must be JSON (the caller checks).
pub(crate) fn write_record(record: &Record) -> Result<Bytes, RecordError> {
    let mut out = Vec::with_capacity(64);
    out.push(b'{');
    for (index, slot) in record.slots().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_string(&mut out, slot.name());
        out.push(b':');
        match slot.raw_json() {
            Some(raw) => out.extend_from_slice(raw),
            None => write_slot(&mut out, slot)?,
        }
    }
    out.push(b'}');
    Ok(Bytes::from(out))
}

/// Every field is checked to be exactly one JSON value first: a slot built by hand must not be
/// able to smuggle keys or slots into the text.
fn write_slot(out: &mut Vec<u8>, slot: &Slot) -> Result<(), RecordError> {
    for (name, bytes) in slot.fields() {
        check_field(name, bytes).map_err(|reason| RecordError::MalformedSlot {
            slot: slot.name().to_owned(),
            reason,
        })?;
    }
    out.extend_from_slice(b"{\"__type__\":");
    write_string(out, slot.type_tag());
    out.extend_from_slice(b",\"__v__\":");
    out.extend_from_slice(slot.version().to_string().as_bytes());
    for (name, bytes) in slot.fields() {
        out.push(b',');
        write_string(out, name);
        out.push(b':');
        out.extend_from_slice(bytes);
    }
    out.push(b'}');
    Ok(())
}

fn write_string(out: &mut Vec<u8>, s: &str) {
    // Writing a `str` into a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Reads a TSON record. Slot and field texts are kept as slices of one copy of the input.
pub(crate) fn read_record(input: &[u8]) -> Result<Record, RecordError> {
    let input = Bytes::copy_from_slice(input);
    let entries: Entries<'_> =
        serde_json::from_slice(&input).map_err(|e| RecordError::Malformed(e.to_string()))?;
    let mut record = Record::new();
    for (name, raw) in entries.0 {
        let malformed = |reason: String| RecordError::MalformedSlot {
            slot: name.clone(),
            reason,
        };
        let fields: Entries<'_> =
            serde_json::from_str(raw.get()).map_err(|e| malformed(e.to_string()))?;
        let mut type_tag = None;
        let mut version = None;
        let mut slot_fields = Vec::with_capacity(fields.0.len());
        for (key, value) in fields.0 {
            match key.as_str() {
                TYPE_KEY => {
                    let tag: String = serde_json::from_str(value.get())
                        .map_err(|e| malformed(format!("`__type__` is not a string: {e}")))?;
                    type_tag = Some(tag);
                }
                VERSION_KEY => {
                    let v: u32 = serde_json::from_str(value.get())
                        .map_err(|e| malformed(format!("`__v__` is not a version number: {e}")))?;
                    version = Some(v);
                }
                _ => slot_fields.push((key.into(), input.slice_ref(value.get().as_bytes()))),
            }
        }
        let type_tag = type_tag.ok_or_else(|| malformed("no `__type__`".into()))?;
        let version = version.ok_or_else(|| malformed("no `__v__`".into()))?;
        let raw = input.slice_ref(raw.get().as_bytes());
        let slot = Slot::from_parts(
            name.clone().into(),
            type_tag.into(),
            version,
            crate::codec::Format::Json.tag(),
            slot_fields,
        )
        .with_raw_json(raw);
        if record.insert(slot).is_some() {
            return Err(RecordError::Malformed(format!(
                "slot `{name}` appears twice"
            )));
        }
    }
    Ok(record)
}

/// Checks that a field of a JSON slot read from elsewhere (the binary form) can be written into
/// TSON text and read back as the same field: its name is not a reserved key, and its bytes
/// are exactly one JSON value (so they can neither break the text nor smuggle keys or slots
/// into it).
pub(crate) fn check_field(name: &str, bytes: &[u8]) -> Result<(), String> {
    if name == TYPE_KEY || name == VERSION_KEY {
        return Err(format!("field `{name}` has a reserved name"));
    }
    let raw: &RawValue = serde_json::from_slice(bytes)
        .map_err(|e| format!("field `{name}` is not one JSON value: {e}"))?;
    if raw.get().len() != bytes.len() {
        return Err(format!(
            "field `{name}` has whitespace around its JSON value"
        ));
    }
    Ok(())
}

/// The entries of a JSON object in order, values unparsed; a key that appears twice is an error.
struct Entries<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> de::Deserialize<'de> for Entries<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EntriesVisitor(std::marker::PhantomData))
    }
}

struct EntriesVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for EntriesVisitor<'a> {
    type Value = Entries<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries: Vec<(String, &'a RawValue)> =
            Vec::with_capacity(map.size_hint().unwrap_or(4));
        while let Some(key) = map.next_key::<String>()? {
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom(format_args!("key `{key}` appears twice")));
            }
            let value: &'a RawValue = map.next_value()?;
            entries.push((key, value));
        }
        Ok(Entries(entries))
    }
}
