//! Codecs: how one field value becomes bytes (a whole record's framing is `record`'s job).
//!
//! Every field of a session struct is encoded on its own, so a save can carry only the fields
//! that changed. Two codecs exist:
//!
//! * [`Format::Json`], the "TSON" form: a slot reads
//!   `{"__type__":"cart","__v__":2,"items":[...],"coupon":null}`;
//! * [`Format::Bincode`] (feature `bincode`): compact binary, bincode 2 with serde;
//! * [`Format::MessagePack`] (feature `msgpack`): compact and self-describing (rmp-serde), for
//!   stores other languages read too.
//!
//! Each slot records the format its fields were written in, and a whole record carries a
//! format marker, so one store can hold all of them and switching codec logs nobody out.

pub(crate) mod json;

#[cfg(feature = "bincode")]
pub(crate) mod bincode;

#[cfg(feature = "msgpack")]
pub(crate) mod msgpack;

use bytes::Bytes;
use serde::{Serialize, de::DeserializeOwned};

/// The error of encoding or decoding one value.
///
/// ```
/// use sessions::Format;
/// let err = Format::Json.decode::<u32>(b"\"not a number\"").unwrap_err();
/// assert!(err.to_string().contains("json"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// serde_json refused the value.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// bincode could not encode the value.
    #[cfg(feature = "bincode")]
    #[error("bincode: {0}")]
    BincodeEncode(#[from] ::bincode::error::EncodeError),
    /// bincode could not decode the bytes.
    #[cfg(feature = "bincode")]
    #[error("bincode: {0}")]
    BincodeDecode(#[from] ::bincode::error::DecodeError),
    /// rmp-serde could not encode the value.
    #[cfg(feature = "msgpack")]
    #[error("msgpack: {0}")]
    MessagePackEncode(#[from] rmp_serde::encode::Error),
    /// rmp-serde could not decode the bytes.
    #[cfg(feature = "msgpack")]
    #[error("msgpack: {0}")]
    MessagePackDecode(#[from] rmp_serde::decode::Error),
    /// The bytes decoded, but bytes were left over after the value.
    #[error("{format}: {left} trailing bytes after the value")]
    TrailingBytes {
        /// The format that decoded.
        format: Format,
        /// How many bytes were left.
        left: usize,
    },
}

/// The codec a slot's fields are written in.
///
/// ```
/// use sessions::Format;
/// let bytes = Format::Json.encode(&vec![1, 2, 3]).unwrap();
/// assert_eq!(&bytes[..], b"[1,2,3]");
/// let back: Vec<u8> = Format::Json.decode(&bytes).unwrap();
/// assert_eq!(back, [1, 2, 3]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Format {
    /// Typed JSON ("TSON"): readable, and the default. JSON has no NaN or infinity: a value
    /// holding a float that is NaN or infinite does not encode (an error, so nothing that would
    /// not read back is stored; bincode keeps such floats).
    ///
    /// ```
    /// use sessions::Format;
    /// assert!(Format::Json.encode(&f64::NAN).is_err());
    /// assert!(Format::Json.encode(&vec![Some(1.5), Some(f64::INFINITY)]).is_err());
    /// assert_eq!(&Format::Json.encode(&1.5f64).unwrap()[..], b"1.5");
    /// ```
    #[default]
    Json,
    /// bincode 2 with serde: compact binary. Types that need `deserialize_any`
    /// (`serde_json::Value`, `#[serde(flatten)]`, untagged enums) do not work in this format.
    #[cfg(feature = "bincode")]
    #[cfg_attr(docsrs, doc(cfg(feature = "bincode")))]
    Bincode,
    /// MessagePack (rmp-serde), structs as maps with their field names: compact, and
    /// self-describing, so `serde_json::Value`, flattened and untagged types work, and other
    /// languages read what is stored. Floats are stored as floats: NaN and the infinities
    /// round-trip (unlike [`Format::Json`]).
    ///
    /// ```
    /// # #[cfg(feature = "msgpack")] {
    /// use sessions::Format;
    /// let bytes = Format::MessagePack.encode(&f64::INFINITY).unwrap();
    /// assert_eq!(Format::MessagePack.decode::<f64>(&bytes).unwrap(), f64::INFINITY);
    /// # }
    /// ```
    #[cfg(feature = "msgpack")]
    #[cfg_attr(docsrs, doc(cfg(feature = "msgpack")))]
    MessagePack,
}

impl Format {
    /// The one-byte tag that names this format in stored data.
    pub(crate) const fn tag(self) -> u8 {
        match self {
            Format::Json => 1,
            #[cfg(feature = "bincode")]
            Format::Bincode => 2,
            #[cfg(feature = "msgpack")]
            Format::MessagePack => 3,
        }
    }

    /// The format named by a stored tag, if this build supports it.
    pub(crate) const fn from_tag(tag: u8) -> Option<Format> {
        match tag {
            1 => Some(Format::Json),
            #[cfg(feature = "bincode")]
            2 => Some(Format::Bincode),
            #[cfg(feature = "msgpack")]
            3 => Some(Format::MessagePack),
            _ => None,
        }
    }

    /// Encodes one value.
    ///
    /// ```
    /// use sessions::Format;
    /// assert_eq!(&Format::Json.encode(&Some("x")).unwrap()[..], b"\"x\"");
    /// ```
    pub fn encode<T: Serialize + ?Sized>(self, value: &T) -> Result<Bytes, CodecError> {
        match self {
            Format::Json => json::encode(value),
            #[cfg(feature = "bincode")]
            Format::Bincode => bincode::encode(value),
            #[cfg(feature = "msgpack")]
            Format::MessagePack => msgpack::encode(value),
        }
    }

    /// Decodes one value; the whole input must be consumed.
    ///
    /// ```
    /// use sessions::Format;
    /// let n: Option<u8> = Format::Json.decode(b"null").unwrap();
    /// assert_eq!(n, None);
    /// ```
    pub fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, CodecError> {
        match self {
            Format::Json => json::decode(bytes),
            #[cfg(feature = "bincode")]
            Format::Bincode => bincode::decode(bytes),
            #[cfg(feature = "msgpack")]
            Format::MessagePack => msgpack::decode(bytes),
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Json => "json",
            #[cfg(feature = "bincode")]
            Format::Bincode => "bincode",
            #[cfg(feature = "msgpack")]
            Format::MessagePack => "msgpack",
        })
    }
}
