//! Session ids and the hashed keys stores file records under.

use std::fmt;
use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// How many random bytes make an id: 256 bits from the OS CSPRNG.
const ID_BYTES: usize = 32;
/// The length of an id's text: base64url without padding.
const ID_CHARS: usize = 43;

/// A session id: 256 bits from the operating system's CSPRNG, written as 43 base64url characters.
///
/// It travels in the cookie (or header) only. Stores see the [`SessionKey`], its hash, so a dump
/// of a store does not hand out live session tokens. `Debug` and `Display` never print it.
///
/// ```
/// use sessions::SessionId;
/// let id = SessionId::generate().unwrap();
/// let text = id.expose().to_owned();
/// assert_eq!(text.len(), 43);
/// assert_eq!(SessionId::parse(&text).unwrap(), id);
/// assert!(SessionId::parse("not an id").is_none());
/// assert_eq!(format!("{id:?}"), "SessionId(<redacted>)");
/// ```
#[derive(Clone)]
pub struct SessionId {
    text: [u8; ID_CHARS],
    /// The storage key, hashed once and only when a store asks.
    key: OnceLock<SessionKey>,
}

impl PartialEq for SessionId {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for SessionId {}

impl std::hash::Hash for SessionId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

/// The OS random source failed.
///
/// ```
/// use sessions::error::IdError;
/// fn takes(_: IdError) {}
/// ```
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct IdError(getrandom::Error);

/// Each byte's base64url value, or `NOT_BASE64URL` (a table: parsing runs on every request).
const BASE64URL: [u8; 256] = {
    let mut table = [NOT_BASE64URL; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => NOT_BASE64URL,
        };
        byte += 1;
    }
    table
};
const NOT_BASE64URL: u8 = 0xFF;

impl SessionId {
    /// A new random id.
    ///
    /// ```
    /// use sessions::SessionId;
    /// let a = SessionId::generate().unwrap();
    /// let b = SessionId::generate().unwrap();
    /// assert_ne!(a, b);
    /// ```
    pub fn generate() -> Result<Self, IdError> {
        let mut bytes = [0u8; ID_BYTES];
        getrandom::fill(&mut bytes).map_err(IdError)?;
        let mut text = [0u8; ID_CHARS];
        let written = URL_SAFE_NO_PAD
            .encode_slice(bytes, &mut text)
            .unwrap_or_default();
        debug_assert_eq!(written, ID_CHARS);
        Ok(Self::from_text(text))
    }

    fn from_text(text: [u8; ID_CHARS]) -> Self {
        Self {
            text,
            key: OnceLock::new(),
        }
    }

    /// Parses an id from a cookie or header: exactly 43 base64url characters, the canonical
    /// encoding of 32 bytes. Anything else is `None`.
    ///
    /// ```
    /// use sessions::SessionId;
    /// let id = SessionId::generate().unwrap();
    /// assert_eq!(SessionId::parse(id.expose()), Some(id));
    /// assert!(SessionId::parse("too-short").is_none());
    /// assert!(SessionId::parse(&"A".repeat(43)).is_some());
    /// assert!(SessionId::parse(&"B".repeat(43)).is_none()); // not the canonical encoding of 32 bytes
    /// ```
    pub fn parse(text: &str) -> Option<Self> {
        let bytes: [u8; ID_CHARS] = text.as_bytes().try_into().ok()?;
        // OR-ing the values: any invalid byte sets the high bit.
        let seen = bytes
            .iter()
            .fold(0u8, |seen, &byte| seen | BASE64URL[usize::from(byte)]);
        let last = BASE64URL[usize::from(bytes[ID_CHARS - 1])];
        // 43 characters carry 258 bits; the last character's two low bits must be zero.
        (seen != NOT_BASE64URL && seen & 0x80 == 0 && last & 0b11 == 0)
            .then(|| Self::from_text(bytes))
    }

    /// The id's text, for the cookie or header that carries it. Never log it.
    ///
    /// ```
    /// use sessions::SessionId;
    /// let id = SessionId::generate().unwrap();
    /// assert_eq!(id.expose().len(), 43);
    /// assert!(id.expose().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    /// ```
    pub fn expose(&self) -> &str {
        std::str::from_utf8(&self.text).unwrap_or_default()
    }

    /// The key the stores file this session under (hashed once per id).
    ///
    /// ```
    /// use sessions::SessionId;
    /// let id = SessionId::generate().unwrap();
    /// assert_eq!(id.key(), id.key());
    /// assert_ne!(id.key().as_str(), id.expose());
    /// assert_ne!(id.key(), SessionId::generate().unwrap().key());
    /// ```
    pub fn key(&self) -> SessionKey {
        self.key.get_or_init(|| SessionKey::of(self)).clone()
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId(<redacted>)")
    }
}

/// The key a store files one session under: the SHA-256 of its id, as 64 hex characters.
/// Safe to log (it cannot be turned back into a usable id).
///
/// ```
/// use sessions::SessionId;
/// let id = SessionId::generate().unwrap();
/// let key = id.key();
/// assert_eq!(key.as_str().len(), 64);
/// assert_eq!(key, id.key());
/// ```
#[derive(Clone)]
pub struct SessionKey {
    /// The digest (what `MemoryStore` keys by, and what keys compare by).
    digest: [u8; 32],
    /// The digest as 64 lowercase hex digits (what text-keyed stores write), spelled out the
    /// first time it is asked for.
    hex: OnceLock<[u8; 64]>,
}

impl PartialEq for SessionKey {
    fn eq(&self, other: &Self) -> bool {
        self.digest == other.digest
    }
}

impl Eq for SessionKey {}

impl std::hash::Hash for SessionKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.digest.hash(state);
    }
}

impl PartialOrd for SessionKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SessionKey {
    /// The order of the hex text (the same as the digest's bytes).
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.digest.cmp(&other.digest)
    }
}

impl SessionKey {
    fn of(id: &SessionId) -> Self {
        Self::from_digest(Sha256::digest(id.text).into())
    }

    /// The key of these 32 digest bytes.
    ///
    /// ```
    /// use sessions::SessionId;
    /// use sessions::store::SessionKey;
    /// let key = SessionId::generate().unwrap().key();
    /// assert_eq!(SessionKey::from_digest(*key.as_bytes()), key);
    /// ```
    pub fn from_digest(digest: [u8; 32]) -> Self {
        Self {
            digest,
            hex: OnceLock::new(),
        }
    }

    fn hex(&self) -> &[u8; 64] {
        self.hex.get_or_init(|| {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            let mut hex = [0u8; 64];
            for (pair, byte) in hex.chunks_exact_mut(2).zip(self.digest.iter()) {
                pair[0] = HEX[usize::from(byte >> 4)];
                pair[1] = HEX[usize::from(byte & 0x0f)];
            }
            hex
        })
    }

    /// The digest as bytes.
    pub(crate) fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// The key's 32 digest bytes (what a store may keep instead of the hex text).
    ///
    /// ```
    /// use sessions::SessionId;
    /// let key = SessionId::generate().unwrap().key();
    /// assert_eq!(key.as_bytes().len(), 32);
    /// ```
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.digest
    }

    /// The key as text.
    ///
    /// ```
    /// use sessions::SessionId;
    /// let key = SessionId::generate().unwrap().key();
    /// assert_eq!(key.as_str().len(), 64);
    /// assert!(key.as_str().bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    /// assert_eq!(key.to_string(), key.as_str());
    /// ```
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.hex()).unwrap_or_default()
    }

    /// A key from its stored text, as a store reads it back (e.g. when scanning).
    ///
    /// ```
    /// use sessions::store::SessionKey;
    /// assert!(SessionKey::from_stored("ab".repeat(32)).is_some());
    /// assert!(SessionKey::from_stored("zz").is_none());
    /// ```
    pub fn from_stored(text: impl AsRef<str>) -> Option<Self> {
        let hex: [u8; 64] = text.as_ref().as_bytes().try_into().ok()?;
        let mut digest = [0u8; 32];
        for (byte, pair) in digest.iter_mut().zip(hex.chunks_exact(2)) {
            *byte = (lowercase_hex_value(pair[0])? << 4) | lowercase_hex_value(pair[1])?;
        }
        Some(Self {
            digest,
            hex: OnceLock::from(hex),
        })
    }
}

/// The value of a lowercase hex digit, or `None` for any other byte.
const fn lowercase_hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        _ => None,
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionKey({}…)", &self.as_str()[..12])
    }
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
