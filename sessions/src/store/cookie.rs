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
//! The plaintext is `created_at` and `expires_at` (unix milliseconds, u64 big-endian each) then
//! the record's bytes. The associated data is the version, the key id and the cookie's name,
//! so a token copied under another cookie name, or relabelled with another key id, does not open.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::alphabet;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{KeyInit, Tag, XChaCha20Poly1305, XNonce};

use crate::codec::Format;
use crate::error::RecordError;
use crate::expiry::Deadline;
use crate::record::Record;

/// The token format this build writes and reads.
const VERSION: u8 = 1;
/// Bytes of a key.
const KEY_BYTES: usize = 32;
/// Bytes of the clear header: version and key id.
const HEADER_BYTES: usize = 1 + 4;
/// Bytes of an XChaCha20 nonce.
const NONCE_BYTES: usize = 24;
/// Bytes of a Poly1305 tag.
const TAG_BYTES: usize = 16;
/// Bytes of the two sealed times.
const TIMES_BYTES: usize = 8 + 8;
/// The shortest token that can open: header, nonce, the times, and the tag.
const MIN_RAW_BYTES: usize = HEADER_BYTES + NONCE_BYTES + TIMES_BYTES + TAG_BYTES;
/// The default limit on `name=value`: what every browser keeps.
const DEFAULT_MAX_SIZE: usize = 4096;

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

/// Why a [`CookieStore`] could not be built, or a cookie could not be sealed or opened.
///
/// Messages never contain a token or key material.
///
/// ```
/// use sessions::{CookieError, CookieStore};
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

/// A key that seals and opens session cookies: 32 secret bytes and an id that tokens carry,
/// so a store knows which of its keys to open a token with. `Debug` never prints the bytes.
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
    id: u32,
    bytes: [u8; KEY_BYTES],
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
        fill_random(&mut bytes)?;
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
    /// use sessions::{CookieError, Key};
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

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.bytes.into())
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
}

impl fmt::Debug for CookieStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieStore")
            .field(
                "key_ids",
                &self.keys.iter().map(Key::id).collect::<Vec<_>>(),
            )
            .field("max_size", &self.max_size)
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
}

impl CookieStore {
    /// A store with these keys: the first seals, all open. Fails without keys or when two
    /// keys share an id.
    ///
    /// ```
    /// use sessions::{CookieError, CookieStore, Key};
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

    /// Seals `record` and `deadline` with the first key into the value of the cookie named
    /// `cookie_name`. Fails with [`CookieError::TooLarge`] rather than return a token the
    /// browser would drop.
    pub(crate) fn seal(
        &self,
        cookie_name: &str,
        record: &Record,
        deadline: Deadline,
        format: Format,
    ) -> Result<String, CookieError> {
        let body = record.to_bytes(format)?;
        let raw_len = HEADER_BYTES + NONCE_BYTES + TIMES_BYTES + body.len() + TAG_BYTES;
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
        if raw.len() < MIN_RAW_BYTES || raw[0] != VERSION {
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

        let (times, body) = plaintext.split_at(TIMES_BYTES);
        let (created, expires) = times.split_at(8);
        let deadline = Deadline {
            created_at: from_unix_millis(created)?,
            expires_at: from_unix_millis(expires)?,
        };
        if deadline.is_expired(now) {
            return Err(CookieError::Expired);
        }
        let record = Record::from_bytes(body)?;
        Ok(Opened {
            record,
            deadline,
            needs_reseal: index != 0,
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

fn fill_random(bytes: &mut [u8]) -> Result<(), CookieError> {
    getrandom::fill(bytes).map_err(|err| {
        CookieError::Random(match err.raw_os_error() {
            Some(code) => std::io::Error::from_raw_os_error(code),
            None => std::io::Error::other(err.to_string()),
        })
    })
}

/// Milliseconds since the unix epoch; times before it count as 0, times past u64 as u64::MAX.
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

#[cfg(test)]
mod tests {
    use std::panic::{AssertUnwindSafe, catch_unwind};

    use super::*;
    use crate::record::Slot;

    const NAME: &str = "session";

    fn store(keys: &[Key]) -> CookieStore {
        match CookieStore::new(keys.iter().cloned()) {
            Ok(store) => store,
            Err(err) => panic!("store: {err}"),
        }
    }

    fn key(id: u32) -> Key {
        Key::from_bytes(id, [id as u8; 32])
    }

    fn t(millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(millis)
    }

    /// A deadline on whole milliseconds, the precision the cookie keeps.
    fn deadline() -> Deadline {
        Deadline {
            created_at: t(1_700_000_000_123),
            expires_at: t(1_700_000_086_523),
        }
    }

    fn now() -> SystemTime {
        t(1_700_000_000_500)
    }

    fn json_record() -> Record {
        let mut record = Record::new();
        record.insert(Slot::new(
            "cart",
            2,
            Format::Json,
            vec![
                ("items".into(), r#"[{"sku":"apple","qty":2}]"#.into()),
                ("coupon".into(), "null".into()),
            ],
        ));
        record
    }

    fn seal(store: &CookieStore, record: &Record) -> String {
        match store.seal(NAME, record, deadline(), Format::Json) {
            Ok(token) => token,
            Err(err) => panic!("seal: {err}"),
        }
    }

    fn open(store: &CookieStore, token: &str) -> Opened {
        match store.open(NAME, token, now()) {
            Ok(opened) => opened,
            Err(err) => panic!("open: {err}"),
        }
    }

    #[test]
    fn json_round_trip() {
        let store = store(&[key(1)]);
        let record = json_record();
        let token = seal(&store, &record);
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        let opened = open(&store, &token);
        assert_eq!(opened.record, record);
        assert_eq!(opened.deadline, deadline());
        assert!(!opened.needs_reseal);
        // A fresh nonce every time: the same session never gives the same token.
        assert_ne!(seal(&store, &record), token);
        // The record is not readable in the token.
        assert!(!token.contains("apple"));
    }

    #[test]
    fn empty_record_round_trip() {
        let store = store(&[key(1)]);
        let token = seal(&store, &Record::new());
        assert_eq!(open(&store, &token).record, Record::new());
    }

    #[cfg(feature = "bincode")]
    #[test]
    fn bincode_round_trip() {
        let store = store(&[key(1)]);
        let items = match Format::Bincode.encode(&vec![("apple", 2u32)]) {
            Ok(bytes) => bytes,
            Err(err) => panic!("encode: {err}"),
        };
        let mut record = Record::new();
        record.insert(Slot::new(
            "cart",
            1,
            Format::Bincode,
            vec![("items".into(), items)],
        ));
        let token = match store.seal(NAME, &record, deadline(), Format::Bincode) {
            Ok(token) => token,
            Err(err) => panic!("seal: {err}"),
        };
        let opened = open(&store, &token);
        assert_eq!(opened.record, record);
        assert_eq!(opened.deadline, deadline());
    }

    #[test]
    fn rotation() {
        let (a, b) = (key(1), key(2));
        let token = seal(&store(std::slice::from_ref(&a)), &json_record());
        // The new key seals, the old one still opens, and says the cookie wants resealing.
        let rotated = store(&[b.clone(), a.clone()]);
        let opened = open(&rotated, &token);
        assert!(opened.needs_reseal);
        assert_eq!(opened.record, json_record());
        let resealed = seal(&rotated, &opened.record);
        assert!(!open(&rotated, &resealed).needs_reseal);
        // Once the old key is retired, its cookies no longer open.
        assert!(matches!(
            store(&[b]).open(NAME, &token, now()),
            Err(CookieError::UnknownKey)
        ));
        // Another key under the same id fails authentication.
        let impostor = store(&[Key::from_bytes(1, [9; 32])]);
        assert!(matches!(
            impostor.open(NAME, &token, now()),
            Err(CookieError::Invalid)
        ));
    }

    #[test]
    fn key_list_rules() {
        assert!(matches!(CookieStore::new([]), Err(CookieError::NoKeys)));
        assert!(matches!(
            CookieStore::new([key(1), key(2), key(1)]),
            Err(CookieError::DuplicateKeyId(1))
        ));
    }

    #[test]
    fn keys_in_text() {
        let key = match Key::generate(5) {
            Ok(key) => key,
            Err(err) => panic!("generate: {err}"),
        };
        let text = key.to_base64();
        let back = Key::from_base64(5, &format!("  {text}\n")).map(|k| k.bytes);
        assert_eq!(back.ok(), Some(key.bytes));
        let url_safe = URL_SAFE_NO_PAD.encode(key.bytes);
        assert_eq!(
            Key::from_base64(5, &url_safe).map(|k| k.bytes).ok(),
            Some(key.bytes)
        );
        assert!(!format!("{key:?}").contains(&text));
        assert!(!format!("{key:?}").contains(&format!("{:?}", key.bytes)));
        for bad in ["", "not base64!", "AAAA", &STANDARD.encode([0u8; 33])] {
            match Key::from_base64(1, bad) {
                Err(CookieError::BadKey(message)) => {
                    assert!(!message.contains(bad) || bad.is_empty())
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn cookie_name_is_bound() {
        let store = store(&[key(1)]);
        let token = seal(&store, &json_record());
        for other in ["other", "Session", "session2", ""] {
            assert!(matches!(
                store.open(other, &token, now()),
                Err(CookieError::Invalid)
            ));
        }
    }

    #[test]
    fn expired() {
        let store = store(&[key(1)]);
        let token = seal(&store, &json_record());
        let end = deadline().expires_at;
        assert!(
            store
                .open(NAME, &token, end - Duration::from_millis(1))
                .is_ok()
        );
        assert!(matches!(
            store.open(NAME, &token, end),
            Err(CookieError::Expired)
        ));
        assert!(matches!(
            store.open(NAME, &token, end + Duration::from_secs(3600)),
            Err(CookieError::Expired)
        ));
    }

    #[test]
    fn too_large() {
        let store = store(&[key(1)]);
        let mut record = Record::new();
        let big = format!("\"{}\"", "x".repeat(5000));
        record.insert(Slot::new(
            "notes",
            1,
            Format::Json,
            vec![("text".into(), big.into())],
        ));
        match store.seal(NAME, &record, deadline(), Format::Json) {
            Err(CookieError::TooLarge { size, limit }) => {
                assert_eq!(limit, 4096);
                assert!(size > 5000, "{size}");
            }
            other => panic!("{other:?}"),
        }
        // The limit is exact: `name=value` of exactly the limit seals, one byte less refuses.
        let token = seal(&store, &json_record());
        let exact = NAME.len() + 1 + token.len();
        assert!(
            store
                .clone()
                .max_size(exact)
                .seal(NAME, &json_record(), deadline(), Format::Json)
                .is_ok()
        );
        assert!(matches!(
            store.clone().max_size(exact - 1).seal(NAME, &json_record(), deadline(), Format::Json),
            Err(CookieError::TooLarge { size, limit }) if size == exact && limit == exact - 1
        ));
        // The cookie's name counts.
        let long_name = "n".repeat(4096);
        assert!(matches!(
            store.seal(&long_name, &Record::new(), deadline(), Format::Json),
            Err(CookieError::TooLarge { .. })
        ));
        // Opening refuses anything longer than the limit before decoding it.
        assert!(matches!(
            store.open(NAME, &"A".repeat(4097), now()),
            Err(CookieError::Malformed)
        ));
    }

    #[test]
    fn structure_errors() {
        let store = store(&[key(1)]);
        let token = seal(&store, &json_record());
        let raw = URL_SAFE_NO_PAD.decode(&token).unwrap_or_default();
        // An unknown format version.
        let mut other_version = raw.clone();
        other_version[0] = 2;
        assert!(matches!(
            store.open(NAME, &URL_SAFE_NO_PAD.encode(&other_version), now()),
            Err(CookieError::Malformed)
        ));
        // Padded or standard-alphabet text is not what we write.
        assert!(matches!(
            store.open(NAME, &format!("{token}="), now()),
            Err(CookieError::Malformed)
        ));
        assert!(matches!(
            store.open(NAME, "", now()),
            Err(CookieError::Malformed)
        ));
        // A valid seal around bytes that are no record is a record error, not a panic.
        let mut sealed_garbage = raw[..HEADER_BYTES + NONCE_BYTES].to_vec();
        let mut plaintext = Vec::new();
        plaintext.extend_from_slice(&unix_millis(deadline().created_at).to_be_bytes());
        plaintext.extend_from_slice(&unix_millis(deadline().expires_at).to_be_bytes());
        plaintext.extend_from_slice(b"not a record");
        let aad = associated_data(&sealed_garbage[..HEADER_BYTES], NAME);
        let nonce = XNonce::clone_from_slice(&sealed_garbage[HEADER_BYTES..]);
        let tag = key(1)
            .cipher()
            .encrypt_in_place_detached(&nonce, &aad, &mut plaintext)
            .map_err(|_| "encrypt");
        sealed_garbage.extend_from_slice(&plaintext);
        if let Ok(tag) = tag {
            sealed_garbage.extend_from_slice(&tag);
        }
        assert!(matches!(
            store.open(NAME, &URL_SAFE_NO_PAD.encode(&sealed_garbage), now()),
            Err(CookieError::Record(_))
        ));
    }

    #[test]
    fn messages_never_contain_the_token() {
        let store = store(&[key(1)]);
        let token = seal(&store, &json_record());
        let mut tampered = token.clone().into_bytes();
        tampered[40] = if tampered[40] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap_or_default();
        for input in [token.as_str(), tampered.as_str(), "garbage!"] {
            for name in [NAME, "other"] {
                if let Err(err) = store.open(name, input, deadline().expires_at) {
                    let shown = format!("{err} {err:?}");
                    assert!(!shown.contains(input), "{shown}");
                    assert!(!shown.contains(&input[..8.min(input.len())]), "{shown}");
                }
            }
        }
    }

    /// A small deterministic generator (SplitMix64), so a failure reproduces.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len).map(|_| self.next() as u8).collect()
        }
    }

    #[derive(Default)]
    struct Tally {
        tried: usize,
        panicked: usize,
        accepted: usize,
    }

    impl Tally {
        fn try_open(&mut self, store: &CookieStore, token: &str) {
            self.tried += 1;
            match catch_unwind(AssertUnwindSafe(|| store.open(NAME, token, now()))) {
                Err(_) => self.panicked += 1,
                Ok(Ok(_)) => self.accepted += 1,
                Ok(Err(_)) => {}
            }
        }
    }

    #[test]
    fn tampered_truncated_and_garbage_tokens_never_open_or_panic() {
        let store = store(&[key(1), key(2)]);
        let token = seal(&store, &json_record());
        assert_eq!(open(&store, &token).record, json_record());
        let raw = URL_SAFE_NO_PAD.decode(&token).unwrap_or_default();
        assert!(raw.len() >= MIN_RAW_BYTES);
        let mut tally = Tally::default();
        let mut rng = Rng(0x5E55_1015);

        // Every bit of every byte flipped (the header's key id included: it then names
        // key 2 or an unknown key).
        for index in 0..raw.len() {
            for bit in 0..8 {
                let mut flipped = raw.clone();
                flipped[index] ^= 1 << bit;
                tally.try_open(&store, &URL_SAFE_NO_PAD.encode(&flipped));
            }
        }
        // Every character of the text replaced by every other base64url character, and by a
        // few that are not base64url.
        let alphabet: Vec<char> = ('A'..='Z')
            .chain('a'..='z')
            .chain('0'..='9')
            .chain(['-', '_', '+', '/', '=', '.', ' ', 'é'])
            .collect();
        for index in 0..token.len() {
            for &c in &alphabet {
                if token[index..].starts_with(c) {
                    continue;
                }
                let mut changed = String::with_capacity(token.len() + 1);
                changed.push_str(&token[..index]);
                changed.push(c);
                changed.push_str(&token[index + 1..]);
                tally.try_open(&store, &changed);
            }
        }
        // Every prefix of the text, and every prefix of the bytes re-encoded.
        for len in 0..token.len() {
            tally.try_open(&store, &token[..len]);
        }
        for len in 0..raw.len() {
            tally.try_open(&store, &URL_SAFE_NO_PAD.encode(&raw[..len]));
        }
        // Random bytes as text (lossy, so some are not ASCII), random base64url of random
        // bytes, and random bytes behind a valid header so they reach the AEAD.
        for _ in 0..1000 {
            let len = rng.below(6000);
            let bytes = rng.bytes(len);
            tally.try_open(&store, &String::from_utf8_lossy(&bytes));
        }
        for _ in 0..1000 {
            let len = rng.below(3000);
            let bytes = rng.bytes(len);
            tally.try_open(&store, &URL_SAFE_NO_PAD.encode(&bytes));
        }
        for _ in 0..1000 {
            let len = rng.below(400);
            let mut bytes = vec![VERSION, 0, 0, 0, 1 + rng.below(2) as u8];
            bytes.extend(rng.bytes(len));
            tally.try_open(&store, &URL_SAFE_NO_PAD.encode(&bytes));
        }
        // Two tokens spliced: one's header and nonce with the other's ciphertext.
        let other = URL_SAFE_NO_PAD
            .decode(seal(&store, &json_record()))
            .unwrap_or_default();
        for cut in 0..raw.len().min(other.len()) {
            let mut spliced = raw[..cut].to_vec();
            spliced.extend_from_slice(&other[cut..]);
            if spliced != raw && spliced != other {
                tally.try_open(&store, &URL_SAFE_NO_PAD.encode(&spliced));
            }
        }

        assert!(tally.tried >= 10_000, "only {} cases", tally.tried);
        assert_eq!(
            tally.panicked, 0,
            "{} of {} panicked",
            tally.panicked, tally.tried
        );
        assert_eq!(
            tally.accepted, 0,
            "{} of {} opened",
            tally.accepted, tally.tried
        );
        // The real token still opens after all that.
        assert_eq!(open(&store, &token).record, json_record());
    }
}
