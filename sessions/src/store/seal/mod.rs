//! Sealing bytes with a key ring: the one authenticated-encryption primitive behind
//! [`CookieStore`](super::CookieStore) (the whole session in the cookie) and
//! [`Encrypted`](super::Encrypted) (records at rest in a server-side store).
//!
//! An envelope is `format (1) | key id (4, big-endian) | nonce | ciphertext | tag (16)`:
//!
//! | format | algorithm | nonce | written |
//! |---|---|---|---|
//! | 1, 2 | XChaCha20-Poly1305 | 24 bytes | no longer: opened only (cookies sealed before 0.2) |
//! | 3 | AES-256-GCM-SIV (RFC 8452) | 12 bytes, random | every seal |
//!
//! The associated data is the clear header (format and key id) followed by the caller's
//! context (a cookie's name; a record's purpose label and session key), so an envelope
//! relabelled with another key id or format, or moved to another context, does not open. The
//! key id in the header names the key to open with: no trial decryption. Why AES-256-GCM-SIV,
//! with what usage bound, is in SECURITY.md ("The cipher").

use sessions_seal::Cipher;

mod key;

pub use key::Key;
pub(crate) use key::fill_random;

/// The format every seal writes: AES-256-GCM-SIV, a 12-byte nonce.
pub(crate) const FORMAT: u8 = 3;
/// The formats of the XChaCha20-Poly1305 envelopes of earlier releases, still opened.
const LEGACY_FORMATS: [u8; 2] = [1, 2];
/// Bytes of the clear header: format and key id.
pub(crate) const HEADER_BYTES: usize = 1 + 4;
/// Bytes of an AES-GCM-SIV nonce.
const NONCE_BYTES: usize = sessions_seal::NONCE_BYTES;
/// Bytes of an XChaCha20 nonce (legacy envelopes).
const LEGACY_NONCE_BYTES: usize = sessions_seal::XNONCE_BYTES;
/// Bytes of the tag (both algorithms).
pub(crate) const TAG_BYTES: usize = sessions_seal::TAG_BYTES;
/// What an envelope adds to its plaintext, as written now.
pub(crate) const OVERHEAD: usize = HEADER_BYTES + NONCE_BYTES + TAG_BYTES;

/// Why an envelope could not be sealed or opened. Messages never hold key material or data.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SealError {
    /// Not an envelope: too short, or an unknown format byte.
    #[error("not a sealed envelope (too short, or an unknown format)")]
    Malformed,
    /// Sealed with a key id the ring does not hold (a retired key, or one not deployed here).
    #[error("sealed with key {0}, which this key ring does not hold")]
    UnknownKey(u32),
    /// Authenticated decryption failed: tampered, another key of the same id, or another
    /// context (cookie name, session key).
    #[error("the sealed bytes failed authentication")]
    Invalid,
    /// The plaintext is past what the AEAD takes (64 GiB).
    #[error("the plaintext is too large to seal")]
    TooLarge,
    /// The operating system's random source failed.
    #[error("the operating system's random source failed: {0}")]
    Random(#[source] std::io::Error),
}

/// One key of a ring, with its AES key schedule computed once.
struct RingKey {
    key: Key,
    cipher: Cipher,
}

/// Keys by id: the first seals, every one opens.
#[derive(Clone)]
pub(crate) struct KeyRing {
    keys: std::sync::Arc<[RingKey]>,
}

/// Why a ring could not be made.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RingError {
    /// No key.
    Empty,
    /// Two keys of one id.
    DuplicateId(u32),
}

/// An envelope being written: the header and nonce are in `buf`; push the plaintext after
/// them, then [`finish`](Sealing::finish).
pub(crate) struct Sealing<'a> {
    cipher: &'a Cipher,
    /// The envelope so far.
    pub(crate) buf: Vec<u8>,
}

/// An envelope that opened.
pub(crate) struct Unsealed<'a> {
    /// Its format byte.
    pub(crate) format: u8,
    /// The position in the ring of the key that opened it (0: the sealing key).
    pub(crate) key_index: usize,
    /// The plaintext (decrypted in place).
    pub(crate) plaintext: &'a [u8],
    /// Where the plaintext lies in the envelope.
    pub(crate) range: std::ops::Range<usize>,
}

impl Unsealed<'_> {
    /// Whether the envelope should be sealed anew: an older key, or an older format.
    pub(crate) fn stale(&self) -> bool {
        self.key_index != 0 || self.format != FORMAT
    }
}

impl KeyRing {
    /// A ring of `keys`, in order: the first seals.
    pub(crate) fn new(keys: impl IntoIterator<Item = Key>) -> Result<Self, RingError> {
        let keys: Vec<Key> = keys.into_iter().collect();
        if keys.is_empty() {
            return Err(RingError::Empty);
        }
        for (index, key) in keys.iter().enumerate() {
            if keys[..index].iter().any(|earlier| earlier.id == key.id) {
                return Err(RingError::DuplicateId(key.id));
            }
        }
        Ok(Self {
            keys: keys
                .into_iter()
                .map(|key| RingKey {
                    cipher: Cipher::new(&key.bytes),
                    key,
                })
                .collect(),
        })
    }

    /// The ids of the keys, in order.
    pub(crate) fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.keys.iter().map(|key| key.key.id)
    }

    /// Starts an envelope with the sealing key and a fresh random nonce, with room for
    /// `plaintext_len` bytes of plaintext.
    pub(crate) fn start(&self, plaintext_len: usize) -> Result<Sealing<'_>, SealError> {
        let Some(key) = self.keys.first() else {
            return Err(SealError::Malformed);
        };
        let mut buf = Vec::with_capacity(OVERHEAD + plaintext_len);
        buf.push(FORMAT);
        buf.extend_from_slice(&key.key.id.to_be_bytes());
        buf.extend_from_slice(&fresh_nonce()?);
        Ok(Sealing {
            cipher: &key.cipher,
            buf,
        })
    }

    /// Opens `envelope` in place, sealed under `context`.
    pub(crate) fn open<'a>(
        &self,
        envelope: &'a mut [u8],
        context: &[u8],
    ) -> Result<Unsealed<'a>, SealError> {
        let format = *envelope.first().ok_or(SealError::Malformed)?;
        let nonce_len = match format {
            FORMAT => NONCE_BYTES,
            legacy if LEGACY_FORMATS.contains(&legacy) => LEGACY_NONCE_BYTES,
            _ => return Err(SealError::Malformed),
        };
        if envelope.len() < HEADER_BYTES + nonce_len + TAG_BYTES {
            return Err(SealError::Malformed);
        }
        let key_id = u32::from_be_bytes([envelope[1], envelope[2], envelope[3], envelope[4]]);
        let key_index = self
            .keys
            .iter()
            .position(|key| key.key.id == key_id)
            .ok_or(SealError::UnknownKey(key_id))?;
        let key = &self.keys[key_index];
        let aad = associated_data(&envelope[..HEADER_BYTES], context);
        let (head, sealed) = envelope.split_at_mut(HEADER_BYTES + nonce_len);
        let (plaintext, tag) = sealed.split_at_mut(sealed.len() - TAG_BYTES);
        let nonce = &head[HEADER_BYTES..];
        let tag = <&[u8; TAG_BYTES]>::try_from(&*tag).map_err(|_| SealError::Malformed)?;
        let opened = if format == FORMAT {
            let nonce = <&[u8; NONCE_BYTES]>::try_from(nonce).map_err(|_| SealError::Malformed)?;
            key.cipher.open(nonce, &aad, plaintext, tag)
        } else {
            let nonce =
                <&[u8; LEGACY_NONCE_BYTES]>::try_from(nonce).map_err(|_| SealError::Malformed)?;
            sessions_seal::open_xchacha(&key.key.bytes, nonce, &aad, plaintext, tag)
        };
        opened.map_err(|_| SealError::Invalid)?;
        let start = HEADER_BYTES + nonce_len;
        Ok(Unsealed {
            format,
            key_index,
            range: start..start + plaintext.len(),
            plaintext,
        })
    }

    /// Seals an envelope in an earlier release's format (XChaCha20-Poly1305, format `format`),
    /// for the tests that show such envelopes still open.
    #[cfg(test)]
    pub(crate) fn seal_legacy(&self, format: u8, plaintext: &[u8], context: &[u8]) -> Vec<u8> {
        let key = &self.keys[0].key;
        let mut buf = vec![format];
        buf.extend_from_slice(&key.id.to_be_bytes());
        buf.extend_from_slice(&[7u8; LEGACY_NONCE_BYTES]);
        let aad = associated_data(&buf[..HEADER_BYTES], context);
        let mut sealed = plaintext.to_vec();
        let mut nonce = [0u8; LEGACY_NONCE_BYTES];
        nonce.copy_from_slice(&buf[HEADER_BYTES..]);
        let tag =
            sessions_seal::seal_xchacha(&key.bytes, &nonce, &aad, &mut sealed).unwrap_or_default();
        buf.extend_from_slice(&sealed);
        buf.extend_from_slice(&tag);
        buf
    }
}

impl Sealing<'_> {
    /// Encrypts what was pushed after the nonce under `context`, and appends the tag.
    pub(crate) fn finish(self, context: &[u8]) -> Result<Vec<u8>, SealError> {
        let Sealing { cipher, mut buf } = self;
        let aad = associated_data(&buf[..HEADER_BYTES], context);
        let (head, plaintext) = buf.split_at_mut(HEADER_BYTES + NONCE_BYTES);
        let nonce = <&[u8; NONCE_BYTES]>::try_from(&head[HEADER_BYTES..])
            .map_err(|_| SealError::Malformed)?;
        let tag = cipher
            .seal(nonce, &aad, plaintext)
            .map_err(|_| SealError::TooLarge)?;
        buf.extend_from_slice(&tag);
        Ok(buf)
    }
}

/// What the tag covers besides the ciphertext: the clear header, then the context. The header
/// has a fixed length, so no two (header, context) pairs give the same bytes. On the stack when
/// it fits (a cookie name, a record's label and key), else on the heap.
fn associated_data(header: &[u8], context: &[u8]) -> Aad {
    let len = header.len() + context.len();
    if len <= AAD_INLINE {
        let mut bytes = [0u8; AAD_INLINE];
        bytes[..header.len()].copy_from_slice(header);
        bytes[header.len()..len].copy_from_slice(context);
        Aad::Inline(bytes, len)
    } else {
        let mut bytes = Vec::with_capacity(len);
        bytes.extend_from_slice(header);
        bytes.extend_from_slice(context);
        Aad::Heap(bytes)
    }
}

/// Associated data up to this many bytes stays on the stack.
const AAD_INLINE: usize = 96;

/// Associated data, built once per seal or open.
enum Aad {
    Inline([u8; AAD_INLINE], usize),
    Heap(Vec<u8>),
}

impl std::ops::Deref for Aad {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Aad::Inline(bytes, len) => &bytes[..*len],
            Aad::Heap(bytes) => bytes,
        }
    }
}

/// A fresh random nonce, from a per-thread buffer of bytes the OS random source filled (one
/// system call per 32 nonces rather than per seal). A process that forks copies the buffer, so
/// parent and child could draw one nonce each: AES-GCM-SIV is built for that (a repeated nonce
/// reveals at most that two sealed messages were identical; SECURITY.md, "The cipher").
fn fresh_nonce() -> Result<[u8; NONCE_BYTES], SealError> {
    const POOL: usize = 32 * NONCE_BYTES;
    thread_local! {
        static NONCES: std::cell::RefCell<([u8; POOL], usize)> =
            const { std::cell::RefCell::new(([0; POOL], POOL)) };
    }
    NONCES.with(|pool| {
        let mut pool = pool.borrow_mut();
        let (bytes, used) = &mut *pool;
        if *used + NONCE_BYTES > POOL {
            fill_random(bytes).map_err(SealError::Random)?;
            *used = 0;
        }
        let mut nonce = [0u8; NONCE_BYTES];
        nonce.copy_from_slice(&bytes[*used..*used + NONCE_BYTES]);
        // Used bytes are not kept.
        bytes[*used..*used + NONCE_BYTES].fill(0);
        *used += NONCE_BYTES;
        Ok(nonce)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(ids: &[u32]) -> KeyRing {
        let keys = ids.iter().map(|&id| Key::from_bytes(id, [id as u8; 32]));
        match KeyRing::new(keys) {
            Ok(ring) => ring,
            Err(err) => panic!("ring: {err:?}"),
        }
    }

    fn seal(ring: &KeyRing, plaintext: &[u8], context: &[u8]) -> Vec<u8> {
        let mut sealing = ring
            .start(plaintext.len())
            .unwrap_or_else(|err| panic!("{err}"));
        sealing.buf.extend_from_slice(plaintext);
        sealing
            .finish(context)
            .unwrap_or_else(|err| panic!("{err}"))
    }

    #[test]
    fn a_seal_opens_with_its_context_only_and_hides_the_plaintext() {
        let ring = ring(&[2, 1]);
        let envelope = seal(&ring, b"the cart of ada", b"ctx");
        assert_eq!(envelope.len(), OVERHEAD + 15);
        assert_eq!(envelope[..HEADER_BYTES], [FORMAT, 0, 0, 0, 2]);
        assert!(!envelope.windows(4).any(|window| window == b"cart"));
        let mut copy = envelope.clone();
        let opened = ring
            .open(&mut copy, b"ctx")
            .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(
            (opened.plaintext, opened.key_index),
            (&b"the cart of ada"[..], 0)
        );
        assert!(!opened.stale());
        let mut copy = envelope.clone();
        assert!(matches!(
            ring.open(&mut copy, b"ctx2"),
            Err(SealError::Invalid)
        ));
    }

    #[test]
    fn the_key_id_names_the_key_and_a_relabelled_envelope_does_not_open() {
        let old = ring(&[1]);
        let rotated = ring(&[2, 1]);
        let mut envelope = seal(&old, b"data", b"");
        let opened = rotated
            .open(&mut envelope.clone(), b"")
            .map(|o| (o.key_index, o.stale()));
        assert!(matches!(opened, Ok((1, true))));
        assert!(matches!(
            ring(&[3]).open(&mut envelope.clone(), b""),
            Err(SealError::UnknownKey(1))
        ));
        // Relabelled to key 2 (which the ring holds): the header is authenticated.
        envelope[4] = 2;
        assert!(matches!(
            rotated.open(&mut envelope, b""),
            Err(SealError::Invalid)
        ));
    }

    #[test]
    fn two_seals_of_the_same_bytes_differ() {
        let ring = ring(&[1]);
        assert_ne!(seal(&ring, b"same", b""), seal(&ring, b"same", b""));
    }

    #[test]
    fn legacy_envelopes_open_and_are_stale() {
        let ring = ring(&[1]);
        for format in LEGACY_FORMATS {
            let mut envelope = ring.seal_legacy(format, b"old", b"ctx");
            let opened = ring
                .open(&mut envelope, b"ctx")
                .map(|o| (o.format, o.stale(), o.plaintext.to_vec()));
            assert!(matches!(opened, Ok((f, true, ref p)) if f == format && p == b"old"));
        }
    }

    #[test]
    fn short_or_unknown_envelopes_are_malformed() {
        let ring = ring(&[1]);
        for bytes in [
            &[][..],
            &[FORMAT, 0, 0, 0, 1][..],
            &[
                9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                0, 0, 0, 0, 0,
            ][..],
        ] {
            assert!(matches!(
                ring.open(&mut bytes.to_vec(), b""),
                Err(SealError::Malformed)
            ));
        }
        assert_eq!(KeyRing::new([]).err(), Some(RingError::Empty));
        let twins = [Key::from_bytes(1, [1; 32]), Key::from_bytes(1, [2; 32])];
        assert_eq!(KeyRing::new(twins).err(), Some(RingError::DuplicateId(1)));
    }
}
