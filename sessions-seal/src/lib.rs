//! The authenticated encryption behind `sessions`' sealed cookies and encrypted records: the
//! RustCrypto AEADs ([`aes_gcm_siv`], [`chacha20poly1305`]) behind a small, concrete API. The
//! key ring, the envelope and everything else live in `sessions` (`store/seal`); this crate
//! holds no logic of its own.
//!
//! Why a crate of its own: the AEADs are generic code, compiled where a concrete type names
//! them. Named here, they are compiled with this crate's optimization level, which the
//! workspace sets to 3 in every profile: in an unoptimized (debug or test) build of `sessions`
//! a seal would otherwise cost about a millisecond instead of a few microseconds.
//!
//! ```
//! let cipher = sessions_seal::Cipher::new(&[7; 32]);
//! let mut data = *b"the cart";
//! let tag = cipher.seal(&[1; 12], b"context", &mut data).unwrap();
//! assert_ne!(&data, b"the cart");
//! cipher.open(&[1; 12], b"context", &mut data, &tag).unwrap();
//! assert_eq!(&data, b"the cart");
//! assert!(cipher.open(&[1; 12], b"another", &mut data, &tag).is_err());
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use aes_gcm_siv::Aes256GcmSiv;
use aes_gcm_siv::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::XChaCha20Poly1305;

/// Bytes of a key.
pub const KEY_BYTES: usize = 32;
/// Bytes of an AES-256-GCM-SIV nonce.
pub const NONCE_BYTES: usize = 12;
/// Bytes of an XChaCha20-Poly1305 nonce.
pub const XNONCE_BYTES: usize = 24;
/// Bytes of a tag (both AEADs).
pub const TAG_BYTES: usize = 16;

/// Sealing or opening failed: the data was changed, or sealed with another key, nonce or
/// associated data (or, sealing, it is over 64 GiB). Says nothing more, on purpose.
///
/// ```
/// let cipher = sessions_seal::Cipher::new(&[7; 32]);
/// let mut data = [0u8; 4];
/// let err = cipher.open(&[0; 12], b"", &mut data, &[0; 16]).unwrap_err();
/// assert_eq!(err.to_string(), "authenticated encryption failed");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error;

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("authenticated encryption failed")
    }
}

impl std::error::Error for Error {}

/// AES-256-GCM-SIV (RFC 8452) under one key, its key schedule made once.
///
/// ```
/// let cipher = sessions_seal::Cipher::new(&[1; 32]);
/// let mut data = [5u8; 3];
/// let tag = cipher.seal(&[2; 12], b"", &mut data).unwrap();
/// assert_eq!(tag.len(), sessions_seal::TAG_BYTES);
/// ```
#[derive(Clone)]
pub struct Cipher(Aes256GcmSiv);

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(AES-256-GCM-SIV, <key redacted>)")
    }
}

impl Cipher {
    /// The cipher of `key`.
    ///
    /// ```
    /// let _ = sessions_seal::Cipher::new(&[0; 32]);
    /// ```
    pub fn new(key: &[u8; KEY_BYTES]) -> Self {
        Self(Aes256GcmSiv::new(key.into()))
    }

    /// Encrypts `data` in place under `nonce` and `aad`; returns the tag.
    ///
    /// ```
    /// let cipher = sessions_seal::Cipher::new(&[0; 32]);
    /// let mut data = *b"abc";
    /// assert!(cipher.seal(&[0; 12], b"aad", &mut data).is_ok());
    /// ```
    pub fn seal(
        &self,
        nonce: &[u8; NONCE_BYTES],
        aad: &[u8],
        data: &mut [u8],
    ) -> Result<[u8; TAG_BYTES], Error> {
        self.0
            .encrypt_in_place_detached(nonce.into(), aad, data)
            .map(Into::into)
            .map_err(|_| Error)
    }

    /// Decrypts `data` in place if `tag` authenticates it under `nonce` and `aad`.
    ///
    /// ```
    /// let cipher = sessions_seal::Cipher::new(&[0; 32]);
    /// let mut data = *b"abc";
    /// let tag = cipher.seal(&[0; 12], b"", &mut data).unwrap();
    /// assert!(cipher.open(&[0; 12], b"", &mut data, &tag).is_ok());
    /// ```
    pub fn open(
        &self,
        nonce: &[u8; NONCE_BYTES],
        aad: &[u8],
        data: &mut [u8],
        tag: &[u8; TAG_BYTES],
    ) -> Result<(), Error> {
        self.0
            .decrypt_in_place_detached(nonce.into(), aad, data, tag.into())
            .map_err(|_| Error)
    }
}

/// Decrypts `data` in place with XChaCha20-Poly1305 (what `sessions` sealed cookies with
/// before 0.2) if `tag` authenticates it under `key`, `nonce` and `aad`.
///
/// ```
/// let mut data = [0u8; 4];
/// assert!(sessions_seal::open_xchacha(&[0; 32], &[0; 24], b"", &mut data, &[0; 16]).is_err());
/// ```
pub fn open_xchacha(
    key: &[u8; KEY_BYTES],
    nonce: &[u8; XNONCE_BYTES],
    aad: &[u8],
    data: &mut [u8],
    tag: &[u8; TAG_BYTES],
) -> Result<(), Error> {
    XChaCha20Poly1305::new(key.into())
        .decrypt_in_place_detached(nonce.into(), aad, data, tag.into())
        .map_err(|_| Error)
}

/// Encrypts `data` in place with XChaCha20-Poly1305; returns the tag. Only for tests that show
/// older cookies still open: `sessions` no longer seals with it.
///
/// ```
/// let mut data = *b"old";
/// let tag = sessions_seal::seal_xchacha(&[0; 32], &[0; 24], b"", &mut data).unwrap();
/// assert!(sessions_seal::open_xchacha(&[0; 32], &[0; 24], b"", &mut data, &tag).is_ok());
/// assert_eq!(&data, b"old");
/// ```
pub fn seal_xchacha(
    key: &[u8; KEY_BYTES],
    nonce: &[u8; XNONCE_BYTES],
    aad: &[u8],
    data: &mut [u8],
) -> Result<[u8; TAG_BYTES], Error> {
    XChaCha20Poly1305::new(key.into())
        .encrypt_in_place_detached(nonce.into(), aad, data)
        .map(Into::into)
        .map_err(|_| Error)
}
