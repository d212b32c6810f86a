//! Session ids and the hashed keys stores file records under.

use std::fmt;

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
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId(Box<str>);

/// The OS random source failed.
///
/// ```
/// use sessions::IdError;
/// fn takes(_: IdError) {}
/// ```
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct IdError(getrandom::Error);

impl SessionId {
    /// A new random id.
    pub fn generate() -> Result<Self, IdError> {
        let mut bytes = [0u8; ID_BYTES];
        getrandom::fill(&mut bytes).map_err(IdError)?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes).into_boxed_str()))
    }

    /// Parses an id from a cookie or header: exactly 43 base64url characters that decode to 32
    /// bytes. Anything else is `None`.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != ID_CHARS
            || !text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return None;
        }
        let decoded = URL_SAFE_NO_PAD.decode(text).ok()?;
        (decoded.len() == ID_BYTES).then(|| Self(text.into()))
    }

    /// The id's text, for the cookie or header that carries it. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The key the stores file this session under.
    pub fn key(&self) -> SessionKey {
        SessionKey::of(self)
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
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey(Box<str>);

impl SessionKey {
    fn of(id: &SessionId) -> Self {
        let digest = Sha256::digest(id.0.as_bytes());
        let mut hex = String::with_capacity(64);
        for byte in digest.iter() {
            use fmt::Write;
            let _ = write!(hex, "{byte:02x}");
        }
        Self(hex.into_boxed_str())
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A key from its stored text, as a store reads it back (e.g. when scanning).
    ///
    /// ```
    /// use sessions::SessionKey;
    /// assert!(SessionKey::from_stored("ab".repeat(32)).is_some());
    /// assert!(SessionKey::from_stored("zz").is_none());
    /// ```
    pub fn from_stored(text: impl Into<String>) -> Option<Self> {
        let text = text.into();
        (text.len() == 64
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| Self(text.into_boxed_str()))
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionKey({}…)", &self.0[..12])
    }
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
