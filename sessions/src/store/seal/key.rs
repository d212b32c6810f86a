//! [`Key`]: a secret of a key ring: what a [`CookieStore`](crate::CookieStore) seals cookies
//! with, and what [`Encrypted`](crate::store::Encrypted) seals records with.

use std::fmt;

use crate::store::cookie::CookieError;
use base64::Engine;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Bytes of a key.
const KEY_BYTES: usize = 32;

/// Reads keys written in either base64 alphabet, padded or not.
const KEY_ENGINES: [GeneralPurpose; 2] = [
    GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    ),
    GeneralPurpose::new(
        &alphabet::URL_SAFE,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    ),
];

/// A key that seals and opens session cookies (and encrypted records): 32 secret bytes and an
/// id that every sealed token carries, so a store knows which of its keys to open it with.
/// `Debug` never prints the bytes.
///
/// Generate a key once, keep it secret (an environment variable, a secret manager) and load it
/// at start-up; a new key on every start logs everyone out.
///
/// ```
/// use sessions::Key;
/// let key = Key::generate(1).unwrap();
/// let text = key.to_base64();               // store this secret
/// let again = Key::from_base64(1, &text).unwrap();
/// assert_eq!(again.id(), 1);
/// assert_eq!(again.to_base64(), text);
/// assert!(!format!("{key:?}").contains(&text));
/// ```
#[derive(Clone)]
pub struct Key {
    pub(crate) id: u32,
    pub(crate) bytes: [u8; KEY_BYTES],
}

impl Key {
    /// A new key of 32 bytes from the operating system's random source.
    ///
    /// ```
    /// use sessions::Key;
    /// assert_eq!(Key::generate(7).unwrap().id(), 7);
    /// ```
    pub fn generate(id: u32) -> Result<Key, CookieError> {
        let mut bytes = [0u8; KEY_BYTES];
        fill_random(&mut bytes).map_err(CookieError::Random)?;
        Ok(Key { id, bytes })
    }

    /// A key from its 32 bytes.
    ///
    /// ```
    /// use sessions::Key;
    /// let key = Key::from_bytes(2, [7; 32]);
    /// assert_eq!(key.id(), 2);
    /// ```
    pub fn from_bytes(id: u32, bytes: [u8; 32]) -> Key {
        Key { id, bytes }
    }

    /// A key from base64 text of its 32 bytes, in the standard or URL-safe alphabet, padded or
    /// not; surrounding whitespace is ignored. `openssl rand -base64 32` makes one.
    ///
    /// ```
    /// use sessions::Key;
    /// use sessions::error::CookieError;
    /// assert!(Key::from_base64(1, "Mw7WGn2E5Mu5y9Du8xL/UZBXe2WG5vd8crZP7DwBmJE=").is_ok());
    /// assert!(matches!(Key::from_base64(1, "c2hvcnQ="), Err(CookieError::BadKey(_))));
    /// ```
    pub fn from_base64(id: u32, text: &str) -> Result<Key, CookieError> {
        let text = text.trim();
        let decoded = KEY_ENGINES
            .iter()
            .find_map(|engine| engine.decode(text).ok())
            .ok_or_else(|| CookieError::BadKey("the text is not base64".to_owned()))?;
        let bytes = <[u8; KEY_BYTES]>::try_from(decoded.as_slice()).map_err(|_| {
            CookieError::BadKey(format!(
                "a key is {KEY_BYTES} bytes, the text decodes to {}",
                decoded.len()
            ))
        })?;
        Ok(Key { id, bytes })
    }

    /// The key as standard base64 (padded), for [`Key::from_base64`]. It is the secret: keep
    /// it out of logs and source control.
    ///
    /// ```
    /// use sessions::Key;
    /// let text = Key::from_bytes(1, [0; 32]).to_base64();
    /// assert_eq!(text, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    /// ```
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.bytes)
    }

    /// The key's id, carried in clear in every token it seals.
    ///
    /// ```
    /// use sessions::Key;
    /// assert_eq!(Key::from_bytes(9, [0; 32]).id(), 9);
    /// ```
    pub fn id(&self) -> u32 {
        self.id
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .field("bytes", &"<redacted>")
            .finish()
    }
}

/// Fills `bytes` from the OS random source.
pub(crate) fn fill_random(bytes: &mut [u8]) -> Result<(), std::io::Error> {
    getrandom::fill(bytes).map_err(|err| match err.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code),
        None => std::io::Error::other(err.to_string()),
    })
}
