//! [`CookieStore`]: the whole session sealed in the cookie with authenticated encryption.
//!
//! A token is `base64url-no-pad` of an envelope of the [sealing module](super::seal): format
//! byte, key id, nonce, then the sealed plaintext and its tag. Format 3 (AES-256-GCM-SIV, a
//! 12-byte nonce) is what this build writes; formats 1 and 2 (XChaCha20-Poly1305, earlier
//! releases) still open, and a session opened from one is sealed anew in format 3.
//!
//! The format-3 plaintext is `created_at` and `expires_at` (unix milliseconds, u64 big-endian
//! each), a flags byte, then, when the store keeps a revocation list ([`REVOCABLE`]): when it
//! was sealed (8), the cookie's id (16 random bytes, kept by every reseal of the session and
//! replaced by `cycle_id()`), its horizon (8: the latest end of any cookie of that id) and the
//! owner (a u16 length, `0xFFFF` for none, then UTF-8); then the record's bytes. Format 2 was
//! the two times, `sealed_at`, the owner, the record; format 1 the two times and the record.
//! The associated data is the envelope's header and the cookie's name, so a token copied under
//! another cookie name, or relabelled with another key id, does not open.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::seal::{self, KeyRing, RingError, SealError};
use crate::codec::Format;
use crate::errors::RecordError;
use crate::expiry::Deadline;
use crate::record::Record;

mod revocations;
#[cfg(test)]
mod tests;

pub use super::seal::Key;
use revocations::Revocations;
pub(crate) use revocations::{Revoked, Sealing};

/// The envelope format of an earlier release: the two times, then the record.
const VERSION_1: u8 = 1;
/// The envelope format of an earlier release: the times, `sealed_at`, the owner, the record.
const VERSION_2: u8 = 2;
/// Flag: the cookie carries its seal time, id, horizon and owner (a revocation list reads them).
const REVOCABLE: u8 = 0x01;
/// Flag: the cookie's id is listed under its owner (the cap on an owner's sessions counts it).
const REGISTERED: u8 = 0x02;
/// The flags this build knows.
const KNOWN_FLAGS: u8 = REVOCABLE | REGISTERED;
/// Bytes of the sealed times.
const TIMES_BYTES: usize = 8 + 8;
/// Bytes of a cookie's id.
pub(crate) const ID_BYTES: usize = 16;
/// The owner length that means "no owner".
const NO_OWNER: u16 = u16::MAX;
/// The default limit on `name=value`: what every browser keeps.
const DEFAULT_MAX_SIZE: usize = 4096;

/// A cookie's id: 16 random bytes, the same in every reseal of one session, new after a
/// `cycle_id()` or a `destroy()`. What a logout revokes.
pub(crate) type CookieId = [u8; ID_BYTES];

/// What a cookie of a store with a revocation list carries beside the session (sealed with it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// The cookie's id.
    pub(crate) id: CookieId,
    /// Whose session it is, if anyone's.
    pub(crate) owner: Option<Box<str>>,
    /// When it was sealed (for a cookie of an earlier format: its creation).
    pub(crate) sealed_at: SystemTime,
    /// The latest end of any cookie sealed with this id: a revocation of the id lasts until then.
    pub(crate) horizon: SystemTime,
    /// The id is listed under the owner (the cap on an owner's sessions counts it).
    pub(crate) registered: bool,
}

impl Stamp {
    /// A new id, for a session sealed the first time (or again after a `cycle_id()`).
    pub(crate) fn fresh(
        owner: Option<Box<str>>,
        expires_at: SystemTime,
    ) -> Result<Stamp, CookieError> {
        let mut id = [0u8; ID_BYTES];
        seal::fill_random(&mut id).map_err(CookieError::Random)?;
        Ok(Stamp {
            id,
            owner,
            sealed_at: UNIX_EPOCH,
            horizon: expires_at,
            registered: false,
        })
    }

    /// The stamp of a cookie sealed without one (an earlier format, or a store without a
    /// revocation list): an id derived from what every reseal of the session kept (its
    /// creation time and owner), so that the copies of one session share it.
    fn derived(deadline: Deadline, owner: Option<Box<str>>, sealed_at: SystemTime) -> Stamp {
        let mut hash = Sha256::new();
        hash.update(b"sessions/derived-cookie-id:");
        hash.update(unix_millis(deadline.created_at).to_be_bytes());
        if let Some(owner) = &owner {
            hash.update(owner.as_bytes());
        }
        let digest: [u8; 32] = hash.finalize().into();
        let mut id = [0u8; ID_BYTES];
        id.copy_from_slice(&digest[..ID_BYTES]);
        Stamp {
            id,
            owner,
            sealed_at,
            horizon: deadline.expires_at,
            registered: false,
        }
    }
}

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
    #[error("a cookie store (or an encrypted store) needs at least one key")]
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

/// Keeps the whole session in the cookie, sealed with AES-256-GCM-SIV: the client holds the
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
/// * **Limits of the design.** A cookie is a bearer copy of the session: without a revocation
///   list, `destroy()` makes the browser drop it, but a copy taken earlier stays valid until
///   its sealed expiry. With one ([`revocations`](CookieStore::revocations)), `destroy()` and
///   `cycle_id()` revoke the cookie they replace, copies included. Two concurrent requests each
///   send back their own whole session, so the last response wins. Use a server-side store
///   when that matters.
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
    keys: KeyRing,
    max_size: usize,
    revocations: Option<Revocations>,
}

impl fmt::Debug for CookieStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieStore")
            .field("key_ids", &self.keys.ids().collect::<Vec<_>>())
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
    /// Opened with a key other than the first, from an earlier format, or without the stamp a
    /// revocation list needs: seal it again.
    pub(crate) needs_reseal: bool,
    /// Its id, owner and seal time (derived for a cookie sealed without them).
    pub(crate) stamp: Stamp,
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
        Ok(Self {
            keys: KeyRing::new(keys)?,
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

    /// Seals `record` and `deadline` (and `stamp`, when the store keeps a revocation list) at
    /// `now` with the first key into the value of the cookie named `cookie_name`. Fails with
    /// [`CookieError::TooLarge`] rather than return a token the browser would drop.
    pub(crate) fn seal(
        &self,
        cookie_name: &str,
        record: &Record,
        deadline: Deadline,
        format: Format,
        stamp: Option<&Stamp>,
        now: SystemTime,
    ) -> Result<String, CookieError> {
        let body = record.to_bytes(format)?;
        let stamp = stamp.filter(|_| self.revocations.is_some());
        let owner = stamp
            .and_then(|stamp| stamp.owner.as_deref())
            .map(str::as_bytes)
            .filter(|owner| owner.len() < usize::from(NO_OWNER));
        let stamp_len = stamp.map_or(0, |_| 8 + ID_BYTES + 8 + 2 + owner.map_or(0, <[u8]>::len));
        let plaintext_len = TIMES_BYTES + 1 + stamp_len + body.len();
        let token_len =
            base64::encoded_len(seal::OVERHEAD + plaintext_len, false).unwrap_or(usize::MAX);
        self.check_size(cookie_name, token_len)?;

        let mut sealing = self.keys.start(plaintext_len)?;
        let raw = &mut sealing.buf;
        raw.extend_from_slice(&unix_millis(deadline.created_at).to_be_bytes());
        raw.extend_from_slice(&unix_millis(deadline.expires_at).to_be_bytes());
        match stamp {
            Some(stamp) => {
                raw.push(if stamp.registered {
                    REVOCABLE | REGISTERED
                } else {
                    REVOCABLE
                });
                raw.extend_from_slice(&unix_millis(now).to_be_bytes());
                raw.extend_from_slice(&stamp.id);
                let horizon = stamp.horizon.max(deadline.expires_at);
                raw.extend_from_slice(&unix_millis(horizon).to_be_bytes());
                match owner {
                    Some(owner) => {
                        raw.extend_from_slice(
                            &u16::try_from(owner.len()).unwrap_or(0).to_be_bytes(),
                        );
                        raw.extend_from_slice(owner);
                    }
                    None => raw.extend_from_slice(&NO_OWNER.to_be_bytes()),
                }
            }
            None => raw.push(0),
        }
        raw.extend_from_slice(&body);
        let raw = sealing.finish(cookie_name.as_bytes())?;

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
        let unsealed = self.keys.open(&mut raw, cookie_name.as_bytes())?;
        let stale = unsealed.stale();
        let format = unsealed.format;
        let plaintext = unsealed.plaintext;

        let (times, rest) = plaintext
            .split_at_checked(TIMES_BYTES)
            .ok_or(CookieError::Malformed)?;
        let (created, expires) = times.split_at(8);
        let deadline = Deadline {
            created_at: from_unix_millis(created)?,
            expires_at: from_unix_millis(expires)?,
        };
        if deadline.is_expired(now) {
            return Err(CookieError::Expired);
        }
        let mut reader = Reader(rest);
        let (stamp, body) = match format {
            VERSION_1 => (Stamp::derived(deadline, None, deadline.created_at), rest),
            VERSION_2 => {
                let sealed_at = reader.time()?;
                let owner = reader.owner()?;
                (Stamp::derived(deadline, owner, sealed_at), reader.0)
            }
            _ => {
                let flags = reader.take(1)?[0];
                if flags & !KNOWN_FLAGS != 0 {
                    return Err(CookieError::Malformed);
                }
                if flags & REVOCABLE == 0 {
                    (
                        Stamp::derived(deadline, None, deadline.created_at),
                        reader.0,
                    )
                } else {
                    let sealed_at = reader.time()?;
                    let mut id = [0u8; ID_BYTES];
                    id.copy_from_slice(reader.take(ID_BYTES)?);
                    let horizon = reader.time()?;
                    let owner = reader.owner()?;
                    let stamp = Stamp {
                        id,
                        owner,
                        sealed_at,
                        horizon,
                        registered: flags & REGISTERED != 0,
                    };
                    (stamp, reader.0)
                }
            }
        };
        let unstamped = format != seal::FORMAT || plaintext[TIMES_BYTES] & REVOCABLE == 0;
        let record = Record::from_bytes(body)?;
        Ok(Opened {
            record,
            deadline,
            needs_reseal: stale || (self.revokes() && unstamped),
            stamp,
        })
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

/// Reads the fields of a plaintext in order; running short is [`CookieError::Malformed`].
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], CookieError> {
        let (head, rest) = self.0.split_at_checked(len).ok_or(CookieError::Malformed)?;
        self.0 = rest;
        Ok(head)
    }

    fn time(&mut self) -> Result<SystemTime, CookieError> {
        from_unix_millis(self.take(8)?)
    }

    fn owner(&mut self) -> Result<Option<Box<str>>, CookieError> {
        let len = self.take(2)?;
        let len = u16::from_be_bytes([len[0], len[1]]);
        if len == NO_OWNER {
            return Ok(None);
        }
        let owner = std::str::from_utf8(self.take(usize::from(len))?)
            .map_err(|_| CookieError::Malformed)?;
        Ok(Some(owner.into()))
    }
}

impl From<RingError> for CookieError {
    fn from(err: RingError) -> Self {
        match err {
            RingError::Empty => CookieError::NoKeys,
            RingError::DuplicateId(id) => CookieError::DuplicateKeyId(id),
        }
    }
}

impl From<SealError> for CookieError {
    fn from(err: SealError) -> Self {
        match err {
            SealError::Malformed => CookieError::Malformed,
            SealError::UnknownKey(_) => CookieError::UnknownKey,
            SealError::Invalid => CookieError::Invalid,
            SealError::TooLarge => CookieError::TooLarge {
                size: usize::MAX,
                limit: 0,
            },
            SealError::Random(err) => CookieError::Random(err),
        }
    }
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
