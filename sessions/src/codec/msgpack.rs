//! The MessagePack codec of one field value (rmp-serde; structs as maps with their field
//! names, so that other languages read the stored values by name).

use bytes::Bytes;
use serde::{Serialize, de::DeserializeOwned};

use super::{CodecError, Format};

/// How deep a stored value may nest: deeper is refused rather than recursed into.
const MAX_DEPTH: usize = 128;

pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Bytes, CodecError> {
    Ok(Bytes::from(rmp_serde::to_vec_named(value)?))
}

/// Decodes from the slice itself: a length prefix larger than what is left fails instead of
/// allocating what it claims.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    if let Some(end) = first_value_len(bytes)
        && end < bytes.len()
    {
        return Err(CodecError::TrailingBytes {
            format: Format::MessagePack,
            left: bytes.len() - end,
        });
    }
    let mut deserializer = rmp_serde::Deserializer::from_read_ref(bytes);
    deserializer.set_max_depth(MAX_DEPTH);
    Ok(T::deserialize(&mut deserializer)?)
}

/// How many bytes the first MessagePack value of `bytes` takes, walking its markers (no
/// allocation, no recursion); `None` when it is cut short or malformed (the decoder then says
/// what is wrong).
fn first_value_len(bytes: &[u8]) -> Option<usize> {
    let (mut at, mut pending) = (0usize, 1u64);
    let be = |from: usize, n: usize| -> Option<u64> {
        let part = bytes.get(from..from.checked_add(n)?)?;
        Some(part.iter().fold(0u64, |acc, b| acc << 8 | u64::from(*b)))
    };
    while pending > 0 {
        pending -= 1;
        let marker = *bytes.get(at)?;
        at += 1;
        // (bytes of payload after the marker and its length, items that follow)
        let (skip, items): (u64, u64) = match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
            0x80..=0x8f => (0, u64::from(marker & 0x0f) * 2),
            0x90..=0x9f => (0, u64::from(marker & 0x0f)),
            0xa0..=0xbf => (u64::from(marker & 0x1f), 0),
            0xc4 | 0xd9 => (be(at, 1)? + 1, 0),
            0xc5 | 0xda => (be(at, 2)? + 2, 0),
            0xc6 | 0xdb => (be(at, 4)? + 4, 0),
            0xc7 => (be(at, 1)? + 2, 0),
            0xc8 => (be(at, 2)? + 3, 0),
            0xc9 => (be(at, 4)? + 5, 0),
            0xca | 0xce | 0xd2 => (4, 0),
            0xcb | 0xcf | 0xd3 => (8, 0),
            0xcc | 0xd0 => (1, 0),
            0xcd | 0xd1 => (2, 0),
            0xd4 => (2, 0),
            0xd5 => (3, 0),
            0xd6 => (5, 0),
            0xd7 => (9, 0),
            0xd8 => (17, 0),
            0xdc => (2, be(at, 2)?),
            0xdd => (4, be(at, 4)?),
            0xde => (2, be(at, 2)? * 2),
            0xdf => (4, be(at, 4)? * 2),
            0xc1 => return None,
        };
        at = at.checked_add(usize::try_from(skip).ok()?)?;
        if at > bytes.len() {
            return None;
        }
        pending = pending.checked_add(items)?;
        // Every item takes at least a byte: more than are left cannot be there.
        if pending > (bytes.len() - at) as u64 {
            return None;
        }
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_round_trip_natively() {
        for x in [
            0.0,
            -0.0,
            1.5,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            let back: f64 = decode(&encode(&x).expect("encodes")).expect("decodes");
            assert_eq!(back.to_bits(), x.to_bits());
        }
        let nan: f64 = decode(&encode(&f64::NAN).expect("encodes")).expect("decodes");
        assert!(nan.is_nan());
        let small: f32 = decode(&encode(&f32::NAN).expect("encodes")).expect("decodes");
        assert!(small.is_nan());
    }

    #[test]
    fn hostile_bytes_are_errors_not_allocations() {
        // A string claiming 4 GiB, an array claiming 4 billion items: both fail at once.
        assert!(decode::<String>(&[0xdb, 0xff, 0xff, 0xff, 0xff, b'a']).is_err());
        assert!(decode::<Vec<u8>>(&[0xdd, 0xff, 0xff, 0xff, 0xff, 1]).is_err());
        let deep = vec![0x91; 10_000];
        assert!(decode::<serde_json::Value>(&deep).is_err());
        assert!(matches!(
            decode::<u8>(&[1, 2]),
            Err(CodecError::TrailingBytes { left: 1, .. })
        ));
    }

    #[test]
    fn structs_are_maps_with_their_field_names() {
        #[derive(Serialize)]
        struct Item {
            sku: &'static str,
        }
        let bytes = encode(&Item { sku: "A1" }).expect("encodes");
        assert_eq!(&bytes[..], b"\x81\xa3sku\xa2A1");
    }
}
