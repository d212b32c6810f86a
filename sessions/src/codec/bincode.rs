//! The bincode codec of one field value (bincode 2 with serde, standard configuration).

use bytes::Bytes;
use serde::{Serialize, de::DeserializeOwned};

use super::{CodecError, Format};

/// The configuration every bincode value in `sessions` is written with. Its byte limit keeps a
/// corrupt length prefix from asking for gigabytes.
pub(crate) const fn config() -> impl ::bincode::config::Config {
    ::bincode::config::standard().with_limit::<{ 16 * 1024 * 1024 }>()
}

pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Bytes, CodecError> {
    let encoded = ::bincode::serde::encode_to_vec(value, config())?;
    // Stored values live long: do not keep the writer's spare capacity with them.
    Ok(if encoded.capacity() > encoded.len() + 16 {
        Bytes::copy_from_slice(&encoded)
    } else {
        Bytes::from(encoded)
    })
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, read) = ::bincode::serde::decode_from_slice(bytes, config())?;
    if read != bytes.len() {
        return Err(CodecError::TrailingBytes {
            format: Format::Bincode,
            left: bytes.len() - read,
        });
    }
    Ok(value)
}
