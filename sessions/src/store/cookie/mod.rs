//! [`CookieStore`]: the whole session sealed in the cookie with authenticated encryption.
//!
//! A token is `base64url-no-pad(version | key id | nonce | ciphertext + tag)`:
//!
//! | bytes | what |
//! |---|---|
//! | 1 | the format version, [`VERSION`] |
//! | 4 | the id of the key that sealed it, big-endian |
//! | 24 | a random XChaCha20-Poly1305 nonce |
//! | n + 16 | the sealed plaintext and the Poly1305 tag |
//!
//! The plaintext (version 2) is `created_at`, `expires_at` and `sealed_at` (unix milliseconds,
//! u64 big-endian each), the owner (a u16 length, `0xFFFF` for none, then UTF-8; sealed only
//! when the store keeps a revocation list), then the record's bytes. Version 1 tokens (the two
//! times, then the record) still open. The associated data is the version, the key id and the cookie's name,
//! so a token copied under another cookie name, or relabelled with another key id, does not open.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{Tag, XNonce};

use crate::codec::Format;
use crate::errors::RecordError;
use crate::expiry::Deadline;
use crate::record::Record;

mod key;
mod revocations;
#[cfg(test)]
mod tests;

pub use key::Key;
use key::fill_random;
use revocations::Revocations;

/// The token format this build writes.
const VERSION: u8 = 2;
/// The older format, still read: no `sealed_at`, no owner.
const VERSION_1: u8 = 1;
/// Bytes of the clear header: version and key id.
const HEADER_BYTES: usize = 1 + 4;
/// Bytes of an XChaCha20 nonce.
const NONCE_BYTES: usize = 24;
/// Bytes of a Poly1305 tag.
const TAG_BYTES: usize = 16;
/// Bytes of the sealed times of a version-1 token.
const TIMES_BYTES: usize = 8 + 8;
/// Bytes of the sealed times and the owner's length of a version-2 token.
const HEAD_V2_BYTES: usize = 8 + 8 + 8 + 2;
/// The owner length that means "no owner".
const NO_OWNER: u16 = u16::MAX;
/// The shortest token that can open: header, nonce, the times, and the tag.
const MIN_RAW_BYTES: usize = HEADER_BYTES + NONCE_BYTES + TIMES_BYTES + TAG_BYTES;
/// The default limit on `name=value`: what every browser keeps.
const DEFAULT_MAX_SIZE: usize = 4096;

/// Why a [`CookieStore`] could not be built, or a cookie could not be sealed or opened.
///
/// Messages never contain a token or key material.
///
/// ```
/// use sessions::CookieStore;
/// use sessions::error::CookieError;
/// let err = CookieStore::new([]).unwrap_err();
/// assert!(matches!(err, CookieError::NoKeys));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CookieError {
    /// A cookie store was built without any key.
    #[error("a cookie store needs at least one key")]
    NoKeys,
    /// Two keys share an id, so a token would not say which one sealed it.
    #[error("two cookie keys have the id {0}; every key needs its own id")]
    DuplicateKeyId(u32),
    /// Key text is not base64 of 32 bytes.
    #[error("bad cookie key: {0}")]
    BadKey(String),
    /// The sealed session would exceed the cookie size limit; browsers would drop it.
    #[error(
        "the session cookie would be {size} bytes, over the limit of {limit}; store less in the \
         session or use a server-side store"
    )]
    TooLarge {
        /// The bytes `name=value` would take.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The cookie is not a sealed session: not base64url, too short or too long, or an
    /// unknown format version.
    #[error("the session cookie is malformed")]
    Malformed,
    /// The cookie was sealed with a key id not in this store's key list (retired key).
    #[error("the session cookie was sealed with a key this store does not have")]
    UnknownKey,
    /// Authenticated decryption failed: the cookie was tampered with, sealed with another key
    /// of the same id, or sealed under another cookie name.
    #[error("the session cookie failed authentication")]
    Invalid,
    /// The expiry sealed in the cookie has passed.
    #[error("the session in the cookie has expired")]
    Expired,
    /// The record could not be encoded, or the sealed record could not be decoded.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The operating system's random source failed.
    #[error("the operating system's random source failed: {0}")]
    Random(#[source] std::io::Error),
}

/// Keeps the whole session in the cookie, sealed with XChaCha20-Poly1305: the client holds the
/// data but can neither read nor change it, and nothing is stored server-side.
///
/// * **Keys and rotation.** The first key seals; every key opens. To rotate, put a new key
///   first and keep the old ones after it until the cookies they sealed have expired; a
///   session opened with an older key is sealed again with the first one.
/// * **Expiry** is sealed inside the cookie and checked on every open, so an old cookie
///   replayed after its `Max-Age` does not come back to life.
/// * **Size.** Browsers drop cookies over 4096 bytes without a word. Sealing refuses a session
///   whose cookie would exceed [`max_size`](CookieStore::max_size) with
///   [`CookieError::TooLarge`], so the application hears about it.
/// * **Limits of the design.** A cookie is a bearer copy of the session: `destroy()` makes the
///   browser drop it, but a copy taken earlier stays valid until its sealed expiry. Two
///   concurrent requests each send back their own whole session, so the last response wins.
///   Use a server-side store when that matters.
///
/// ```
/// use sessions::{CookieStore, Key};
/// let store = CookieStore::new([
///     Key::generate(2).unwrap(),   // seals
///     Key::generate(1).unwrap(),   // still opens cookies sealed before the rotation
/// ])
/// .unwrap()
/// .max_size(3000);
/// assert!(format!("{store:?}").contains("max_size: 3000"));
/// ```
#[derive(Clone)]
pub struct CookieStore {
    keys: Arc<[Key]>,
    max_size: usize,
    revocations: Option<Revocations>,
}

impl fmt::Debug for CookieStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieStore")
            .field(
                "key_ids",
                &self.keys.iter().map(Key::id).collect::<Vec<_>>(),
            )
            .field("max_size", &self.max_size)
            .field("revocations", &self.revocations.is_some())
            .finish()
    }
}

/// A session opened from its cookie.
#[derive(Debug)]
pub(crate) struct Opened {
    /// The session's data.
    pub(crate) record: Record,
    /// The times sealed with it.
    pub(crate) deadline: Deadline,
    /// Opened with a key other than the first: seal it again so it moves to the current key.
    pub(crate) needs_reseal: bool,
    /// The owner sealed with it (only when the store keeps a revocation list).
    pub(crate) owner: Option<String>,
    /// When it was sealed (the creation time for version-1 tokens).
    pub(crate) sealed_at: SystemTime,
}

impl CookieStore {
    /// A store with these keys: the first seals, all open. Fails without keys or when two
    /// keys share an id.
    ///
    /// ```
    /// use sessions::{CookieStore, Key};
    /// use sessions::error::CookieError;
    /// let store = CookieStore::new([Key::from_bytes(1, [1; 32])]);
    /// assert!(store.is_ok());
    /// let twins = CookieStore::new([Key::from_bytes(1, [1; 32]), Key::from_bytes(1, [2; 32])]);
    /// assert!(matches!(twins, Err(CookieError::DuplicateKeyId(1))));
    /// ```
    pub fn new(keys: impl IntoIterator<Item = Key>) -> Result<Self, CookieError> {
        let keys: Vec<Key> = keys.into_iter().collect();
        if keys.is_empty() {
            return Err(CookieError::NoKeys);
        }
        for (index, key) in keys.iter().enumerate() {
            if keys[..index].iter().any(|earlier| earlier.id == key.id) {
                return Err(CookieError::DuplicateKeyId(key.id));
            }
        }
        Ok(Self {
            keys: keys.into(),
            max_size: DEFAULT_MAX_SIZE,
            revocations: None,
        })
    }

    /// The limit, in bytes, on the cookie's `name=value` (default 4096, what every browser
    /// keeps). Sealing a session over it fails with [`CookieError::TooLarge`].
    ///
    /// ```
    /// use sessions::{CookieStore, Key};
    /// let store = CookieStore::new([Key::from_bytes(1, [1; 32])]).unwrap().max_size(2048);
    /// # let _ = store;
    /// ```
    pub fn max_size(mut self, bytes: usize) -> Self {
        self.max_size = bytes;
        self
    }

    /// Seals `record` and `deadline` (and `owner`, the session's owner, when the store keeps a
    /// revocation list) at `now` with the first key into the value of the cookie named
    /// `cookie_name`. Fails with [`CookieError::TooLarge`] rather than return a token the
    /// browser would drop.
    pub(crate) fn seal(
        &self,
        cookie_name: &str,
        record: &Record,
        deadline: Deadline,
        format: Format,
        owner: Option<&str>,
        now: SystemTime,
    ) -> Result<String, CookieError> {
        let body = record.to_bytes(format)?;
        let owner = owner
            .filter(|_| self.revocations.is_some())
            .map(str::as_bytes)
            .filter(|owner| owner.len() < usize::from(NO_OWNER));
        let owner_len = owner.map_or(0, <[u8]>::len);
        let raw_len =
            HEADER_BYTES + NONCE_BYTES + HEAD_V2_BYTES + owner_len + body.len() + TAG_BYTES;
        let token_len = base64::encoded_len(raw_len, false).unwrap_or(usize::MAX);
        self.check_size(cookie_name, token_len)?;

        let key = self.sealing_key()?;
        let mut raw = Vec::with_capacity(raw_len);
        raw.push(VERSION);
        raw.extend_from_slice(&key.id.to_be_bytes());
        let mut nonce = [0u8; NONCE_BYTES];
        fill_random(&mut nonce)?;
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&unix_millis(deadline.created_at).to_be_bytes());
        raw.extend_from_slice(&unix_millis(deadline.expires_at).to_be_bytes());
        raw.extend_from_slice(&unix_millis(now).to_be_bytes());
        match owner {
            Some(owner) => {
                raw.extend_from_slice(&u16::try_from(owner.len()).unwrap_or(0).to_be_bytes());
                raw.extend_from_slice(owner);
            }
            None => raw.extend_from_slice(&NO_OWNER.to_be_bytes()),
        }
        raw.extend_from_slice(&body);

        let aad = associated_data(&raw[..HEADER_BYTES], cookie_name);
        let (head, plaintext) = raw.split_at_mut(HEADER_BYTES + NONCE_BYTES);
        let tag = key
            .cipher()
            .encrypt_in_place_detached(XNonce::from_slice(&head[HEADER_BYTES..]), &aad, plaintext)
            // Only a plaintext over 256 GiB fails, far past the size check above.
            .map_err(|_| CookieError::TooLarge {
                size: cookie_name.len() + 1 + token_len,
                limit: self.max_size,
            })?;
        raw.extend_from_slice(&tag);

        let token = URL_SAFE_NO_PAD.encode(&raw);
        self.check_size(cookie_name, token.len())?;
        Ok(token)
    }

    /// Opens a token from the cookie named `cookie_name`: checks it is a token this store
    /// sealed under that name, with one of its keys, unchanged and not expired at `now`.
    pub(crate) fn open(
        &self,
        cookie_name: &str,
        token: &str,
        now: SystemTime,
    ) -> Result<Opened, CookieError> {
        // Nothing longer was ever sealed under the limit: refuse it before any work.
        if token.len() > self.max_size {
            return Err(CookieError::Malformed);
        }
        let mut raw = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| CookieError::Malformed)?;
        let version = raw.first().copied();
        if raw.len() < MIN_RAW_BYTES || !matches!(version, Some(VERSION | VERSION_1)) {
            return Err(CookieError::Malformed);
        }
        let key_id = u32::from_be_bytes([raw[1], raw[2], raw[3], raw[4]]);
        let index = self
            .keys
            .iter()
            .position(|key| key.id == key_id)
            .ok_or(CookieError::UnknownKey)?;

        let aad = associated_data(&raw[..HEADER_BYTES], cookie_name);
        let (head, sealed) = raw.split_at_mut(HEADER_BYTES + NONCE_BYTES);
        let (plaintext, tag) = sealed.split_at_mut(sealed.len() - TAG_BYTES);
        self.keys[index]
            .cipher()
            .decrypt_in_place_detached(
                XNonce::from_slice(&head[HEADER_BYTES..]),
                &aad,
                plaintext,
                Tag::from_slice(tag),
            )
            .map_err(|_| CookieError::Invalid)?;

        let (times, rest) = plaintext.split_at(TIMES_BYTES);
        let (created, expires) = times.split_at(8);
        let deadline = Deadline {
            created_at: from_unix_millis(created)?,
            expires_at: from_unix_millis(expires)?,
        };
        if deadline.is_expired(now) {
            return Err(CookieError::Expired);
        }
        let (sealed_at, owner, body) = if version == Some(VERSION) {
            let (sealed, rest) = rest.split_at_checked(8).ok_or(CookieError::Malformed)?;
            let (len, rest) = rest.split_at_checked(2).ok_or(CookieError::Malformed)?;
            let len = u16::from_be_bytes([len[0], len[1]]);
            let (owner, body) = if len == NO_OWNER {
                (None, rest)
            } else {
                let (owner, body) = rest
                    .split_at_checked(usize::from(len))
                    .ok_or(CookieError::Malformed)?;
                let owner = std::str::from_utf8(owner).map_err(|_| CookieError::Malformed)?;
                (Some(owner.to_owned()), body)
            };
            (from_unix_millis(sealed)?, owner, body)
        } else {
            (deadline.created_at, None, rest)
        };
        let record = Record::from_bytes(body)?;
        Ok(Opened {
            record,
            deadline,
            needs_reseal: index != 0,
            owner,
            sealed_at,
        })
    }

    fn sealing_key(&self) -> Result<&Key, CookieError> {
        self.keys.first().ok_or(CookieError::NoKeys)
    }

    fn check_size(&self, cookie_name: &str, token_len: usize) -> Result<(), CookieError> {
        let size = cookie_name
            .len()
            .saturating_add(1)
            .saturating_add(token_len);
        if size > self.max_size {
            return Err(CookieError::TooLarge {
                size,
                limit: self.max_size,
            });
        }
        Ok(())
    }
}

/// What the tag covers besides the ciphertext: the clear header and the cookie's name. The name
/// comes last, so no two (header, name) pairs give the same bytes.
fn associated_data(header: &[u8], cookie_name: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + cookie_name.len());
    aad.extend_from_slice(header);
    aad.extend_from_slice(cookie_name.as_bytes());
    aad
}

/// Milliseconds since the unix epoch; times before it count as 0, times past u64 as u64::MAX.
/// `time` cut to the whole millisecond a sealed cookie keeps.
fn to_millis(time: SystemTime) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(unix_millis(time))
}

fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn from_unix_millis(bytes: &[u8]) -> Result<SystemTime, CookieError> {
    let bytes = <[u8; 8]>::try_from(bytes).map_err(|_| CookieError::Malformed)?;
    UNIX_EPOCH
        .checked_add(Duration::from_millis(u64::from_be_bytes(bytes)))
        .ok_or(CookieError::Malformed)
}
