//! The JSON codec of one field value. A float that is NaN or infinite is refused (serde_json
//! would write `null`, which does not read back): see [`finite`].

mod finite;

use bytes::Bytes;
use serde::{Serialize, de::DeserializeOwned};

use super::CodecError;

std::thread_local! {
    /// A scratch buffer per thread: values are written here, then copied out at their exact
    /// size, so a stored 2-byte field does not keep serde_json's 128-byte starting capacity.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Above this, the scratch buffer is given back rather than kept for the next value.
const SCRATCH_KEEP: usize = 64 * 1024;

pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Bytes, CodecError> {
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut buffer) => {
            buffer.clear();
            let result = to_writer(&mut buffer, value);
            let bytes = result.map(|()| Bytes::copy_from_slice(&buffer));
            if buffer.capacity() > SCRATCH_KEEP {
                *buffer = Vec::new();
            }
            Ok(bytes?)
        }
        // A `Serialize` impl that encodes another field while being encoded: no scratch.
        Err(_) => {
            let mut buffer = Vec::new();
            to_writer(&mut buffer, value)?;
            Ok(Bytes::from(buffer))
        }
    })
}

/// serde_json's compact form of `value`, appended to `out`; an error for a non-finite float.
fn to_writer<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> serde_json::Result<()> {
    finite::serialize(value, &mut serde_json::Serializer::new(out))
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    Ok(serde_json::from_slice(bytes)?)
}
