//! The binary form of a whole record (feature `bincode`): [`BINARY_MARKER`](super::BINARY_MARKER) then the
//! slots in bincode.

use std::collections::HashSet;

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codec::{CodecError, Format};

use crate::errors::RecordError;
use crate::record::{Record, Slot};

/// A slot as the binary form lays it out.
#[derive(Serialize)]
struct SlotOut<'a> {
    name: &'a str,
    type_tag: &'a str,
    version: u32,
    format: u8,
    fields: Vec<(&'a str, ByteSlice<'a>)>,
}

#[derive(Deserialize)]
struct SlotIn<'a> {
    name: String,
    type_tag: String,
    version: u32,
    format: u8,
    #[serde(borrow)]
    fields: Vec<(String, ByteSlice<'a>)>,
}

/// Bytes written as one length-prefixed run, and read back without a copy.
struct ByteSlice<'a>(&'a [u8]);

impl Serialize for ByteSlice<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for ByteSlice<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <&'a [u8]>::deserialize(deserializer).map(ByteSlice)
    }
}

pub(crate) fn write_record(record: &Record) -> Result<Bytes, RecordError> {
    let slots: Vec<SlotOut<'_>> = record
        .slots()
        .map(|slot| SlotOut {
            name: slot.name(),
            type_tag: slot.type_tag(),
            version: slot.version(),
            format: slot.format_tag(),
            fields: slot
                .fields()
                .map(|(name, bytes)| (name, ByteSlice(bytes)))
                .collect(),
        })
        .collect();
    let mut out = super::BINARY_MARKER.to_vec();
    ::bincode::serde::encode_into_std_write(&slots, &mut out, crate::codec::bincode::config())
        .map_err(CodecError::from)?;
    Ok(Bytes::from(out))
}

pub(crate) fn read_record(input: &[u8]) -> Result<Record, RecordError> {
    let input = Bytes::copy_from_slice(input);
    let (slots, read): (Vec<SlotIn<'_>>, usize) =
        ::bincode::serde::borrow_decode_from_slice(&input, crate::codec::bincode::config())
            .map_err(|e| RecordError::Malformed(format!("bincode: {e}")))?;
    if read != input.len() {
        return Err(RecordError::Malformed(format!(
            "{} trailing bytes after the record",
            input.len() - read
        )));
    }
    let mut record = Record::new();
    for slot in slots {
        let name = slot.name;
        let malformed = |reason: String| RecordError::MalformedSlot {
            slot: name.clone(),
            reason,
        };
        // A JSON slot framed here may later be written as TSON text: it must read back as the
        // same slot then, so its fields must be what the TSON reader would have produced.
        let json = slot.format == Format::Json.tag();
        let mut seen = HashSet::with_capacity(slot.fields.len());
        let mut fields = Vec::with_capacity(slot.fields.len());
        for (field, bytes) in slot.fields {
            if json {
                super::tson::check_field(&field, bytes.0).map_err(malformed)?;
            }
            if !seen.insert(field.clone()) {
                return Err(malformed(format!("field `{field}` appears twice")));
            }
            fields.push((field.into(), input.slice_ref(bytes.0)));
        }
        let parsed = Slot::from_parts(
            name.clone().into(),
            slot.type_tag.into(),
            slot.version,
            slot.format,
            fields,
        );
        if record.insert(parsed).is_some() {
            return Err(RecordError::Malformed(format!(
                "slot `{name}` appears twice"
            )));
        }
    }
    Ok(record)
}
