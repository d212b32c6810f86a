//! The session's CSRF secret and the masked tokens made of it.
//!
//! The secret is 32 bytes from the OS CSPRNG, kept in the session itself as the reserved slot
//! `__csrf` (as a session's own expiry policy is kept in `__expiry`), so every store keeps it
//! and a `CookieStore` seals it with the rest. A token is never the secret: each rendering
//! draws a fresh 32-byte mask and writes `mask ‖ (secret XOR mask)` in base64url (86
//! characters), as Django and Rails do, so that a page compressed over TLS shows no repeated
//! secret for a BREACH attack to grow a guess against. Checking a token undoes the mask and
//! compares with the secret in constant time (`subtle`).

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

use crate::codec::Format;
use crate::record::{Record, Slot};

/// The reserved slot the secret is kept in.
pub(crate) const SLOT: &str = "__csrf";
const FIELD: &str = "secret";
const SECRET_BYTES: usize = 32;
/// The length of a token's text: base64url, no padding, of the mask and the masked secret.
pub(crate) const TOKEN_CHARS: usize = (2 * SECRET_BYTES * 4).div_ceil(3);

/// A session's CSRF secret.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret([u8; SECRET_BYTES]);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// A new secret from the OS CSPRNG.
    pub(crate) fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; SECRET_BYTES];
        getrandom::fill(&mut bytes)?;
        Ok(Self(bytes))
    }

    /// The secret kept in `record`, if it holds a readable one.
    pub(crate) fn in_record(record: &Record) -> Option<Self> {
        let slot = record.slot(SLOT)?;
        let text: String = slot.format()?.decode(slot.field(FIELD)?).ok()?;
        let mut bytes = [0u8; SECRET_BYTES];
        match URL_SAFE_NO_PAD.decode_slice(text.as_bytes(), &mut bytes) {
            Ok(SECRET_BYTES) => Some(Self(bytes)),
            _ => None,
        }
    }

    /// The `__csrf` slot that keeps this secret.
    pub(crate) fn slot(&self, format: Format) -> Option<Slot> {
        let text = URL_SAFE_NO_PAD.encode(self.0);
        let bytes = format.encode(&text).ok()?;
        Some(Slot::new(
            SLOT,
            1,
            format,
            vec![(Cow::Borrowed(FIELD), bytes)],
        ))
    }

    /// A token of this secret under a fresh mask.
    pub(crate) fn masked(&self) -> Result<String, getrandom::Error> {
        let mut mask = [0u8; SECRET_BYTES];
        getrandom::fill(&mut mask)?;
        Ok(self.masked_with(&mask))
    }

    fn masked_with(&self, mask: &[u8; SECRET_BYTES]) -> String {
        let mut token = [0u8; 2 * SECRET_BYTES];
        let (head, tail) = token.split_at_mut(SECRET_BYTES);
        head.copy_from_slice(mask);
        for ((out, secret), mask) in tail.iter_mut().zip(&self.0).zip(mask) {
            *out = secret ^ mask;
        }
        URL_SAFE_NO_PAD.encode(token)
    }

    /// Whether `token` (as sent, surrounding whitespace ignored) is a masking of this secret.
    /// The comparison takes the same time wherever the bytes differ.
    pub(crate) fn accepts(&self, token: &[u8]) -> bool {
        let token = token.trim_ascii();
        if token.len() != TOKEN_CHARS {
            return false;
        }
        let mut bytes = [0u8; 2 * SECRET_BYTES];
        if URL_SAFE_NO_PAD.decode_slice(token, &mut bytes) != Ok(2 * SECRET_BYTES) {
            return false;
        }
        let (mask, masked) = bytes.split_at(SECRET_BYTES);
        let mut unmasked = [0u8; SECRET_BYTES];
        for ((out, masked), mask) in unmasked.iter_mut().zip(masked).zip(mask) {
            *out = masked ^ mask;
        }
        unmasked.ct_eq(&self.0).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::generate().expect("the OS random source")
    }

    #[test]
    fn each_rendering_differs_and_each_verifies() {
        let secret = secret();
        let tokens: Vec<String> = (0..50).map(|_| secret.masked().expect("a mask")).collect();
        for (i, token) in tokens.iter().enumerate() {
            assert_eq!(token.len(), TOKEN_CHARS);
            assert!(secret.accepts(token.as_bytes()), "token {i} verifies");
            assert!(
                token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "a token needs no escaping in a form or a header: {token}"
            );
            for other in &tokens[..i] {
                assert_ne!(token, other, "a fresh mask per rendering");
            }
        }
    }

    #[test]
    fn no_rendering_shows_the_secret() {
        let secret = secret();
        let plain = URL_SAFE_NO_PAD.encode(secret.0);
        for _ in 0..20 {
            let token = secret.masked().expect("a mask");
            assert!(!token.contains(&plain));
        }
        // With an all-zero mask the second half would be the secret itself: masks are drawn,
        // never zero in practice, and this is what makes the draw matter.
        let zero = secret.masked_with(&[0; SECRET_BYTES]);
        assert!(secret.accepts(zero.as_bytes()));
    }

    #[test]
    fn another_sessions_token_is_refused() {
        let (mine, theirs) = (secret(), secret());
        let token = theirs.masked().expect("a mask");
        assert!(!mine.accepts(token.as_bytes()));
        assert!(theirs.accepts(token.as_bytes()));
    }

    #[test]
    fn a_token_changed_anywhere_is_refused() {
        let secret = secret();
        let token = secret.masked().expect("a mask");
        for at in 0..token.len() {
            let mut changed = token.clone().into_bytes();
            changed[at] = if changed[at] == b'A' { b'B' } else { b'A' };
            // The last character carries two bits only: some changes of it decode the same.
            let same = URL_SAFE_NO_PAD.decode(&changed).ok() == URL_SAFE_NO_PAD.decode(&token).ok();
            assert_eq!(secret.accepts(&changed), same, "changed at {at}");
        }
    }

    #[test]
    fn malformed_tokens_are_refused_without_a_panic() {
        let secret = secret();
        let token = secret.masked().expect("a mask");
        let cases: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"x".to_vec(),
            token.as_bytes()[..TOKEN_CHARS - 1].to_vec(),
            format!("{token}A").into_bytes(),
            vec![b'='; TOKEN_CHARS],
            vec![0xff; TOKEN_CHARS],
            token.replace(['-', '_'], "+").into_bytes(),
            URL_SAFE_NO_PAD.encode(secret.0).into_bytes(),
        ];
        for case in cases {
            assert!(!secret.accepts(&case), "{case:?}");
        }
        // Whitespace around a token (a header folded by a proxy) is not part of it.
        assert!(secret.accepts(format!("  {token}\t").as_bytes()));
    }

    #[test]
    fn the_secret_is_kept_in_its_slot_in_either_format() {
        let secret = secret();
        let mut formats = vec![Format::Json];
        #[cfg(feature = "bincode")]
        formats.push(Format::Bincode);
        for format in formats {
            let mut record = Record::new();
            assert_eq!(Secret::in_record(&record), None);
            record.insert(secret.slot(format).expect("encodes"));
            assert_eq!(Secret::in_record(&record), Some(secret.clone()));
        }
    }

    #[test]
    fn an_unreadable_slot_holds_no_secret() {
        let bad = [
            vec![(
                Cow::Borrowed(FIELD),
                Format::Json.encode("short").expect("json"),
            )],
            vec![(Cow::Borrowed(FIELD), Format::Json.encode(&7).expect("json"))],
            vec![(
                Cow::Borrowed("other"),
                Format::Json.encode("x").expect("json"),
            )],
            vec![],
        ];
        for fields in bad {
            let mut record = Record::new();
            record.insert(Slot::new(SLOT, 1, Format::Json, fields));
            assert_eq!(Secret::in_record(&record), None);
        }
    }

    #[test]
    fn debug_does_not_show_the_secret() {
        assert_eq!(format!("{:?}", secret()), "Secret(..)");
    }
}
