//! The cookie store's tests.

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::*;
use crate::record::Slot;
use crate::store::seal::KeyRing;
use base64::engine::general_purpose::STANDARD;

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
    match store.seal(NAME, record, deadline(), Format::Json, None, now()) {
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
    let token = match store.seal(NAME, &record, deadline(), Format::Bincode, None, now()) {
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
    match store.seal(NAME, &record, deadline(), Format::Json, None, now()) {
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
            .seal(NAME, &json_record(), deadline(), Format::Json, None, now())
            .is_ok()
    );
    assert!(matches!(
        store.clone().max_size(exact - 1).seal(NAME, &json_record(), deadline(), Format::Json, None, now()),
        Err(CookieError::TooLarge { size, limit }) if size == exact && limit == exact - 1
    ));
    // The cookie's name counts.
    let long_name = "n".repeat(4096);
    assert!(matches!(
        store.seal(
            &long_name,
            &Record::new(),
            deadline(),
            Format::Json,
            None,
            now()
        ),
        Err(CookieError::TooLarge { .. })
    ));
    // Opening refuses anything longer than the limit before decoding it.
    assert!(matches!(
        store.open(NAME, &"A".repeat(4097), now()),
        Err(CookieError::Malformed)
    ));
}

fn ring() -> KeyRing {
    match KeyRing::new([key(1)]) {
        Ok(ring) => ring,
        Err(err) => panic!("ring: {err:?}"),
    }
}

/// A version-1 token (two times, then the record; XChaCha20-Poly1305), as releases before
/// owners sealed them, still opens; its seal time is its creation time, and it wants resealing.
#[test]
fn version_1_tokens_still_open() {
    let store = store(&[key(1)]);
    let body = json_record().to_bytes(Format::Json).unwrap_or_default();
    let mut plaintext = Vec::new();
    plaintext.extend_from_slice(&unix_millis(deadline().created_at).to_be_bytes());
    plaintext.extend_from_slice(&unix_millis(deadline().expires_at).to_be_bytes());
    plaintext.extend_from_slice(&body);
    let raw = ring().seal_legacy(VERSION_1, &plaintext, NAME.as_bytes());
    let opened = open(&store, &URL_SAFE_NO_PAD.encode(&raw));
    assert_eq!(opened.record, json_record());
    assert_eq!(opened.stamp.sealed_at, deadline().created_at);
    assert_eq!(opened.stamp.owner, None);
    assert!(opened.needs_reseal);
}

/// A version-2 token (times, seal time, owner, record; XChaCha20-Poly1305) still opens with its
/// owner, wants resealing, and its copies share one id (derived from what they all keep).
#[test]
fn version_2_tokens_still_open() {
    let store = store(&[key(1)]).revocations(crate::MemoryStore::new());
    let body = json_record().to_bytes(Format::Json).unwrap_or_default();
    let token = |sealed_at: SystemTime| {
        let mut plaintext = Vec::new();
        plaintext.extend_from_slice(&unix_millis(deadline().created_at).to_be_bytes());
        plaintext.extend_from_slice(&unix_millis(deadline().expires_at).to_be_bytes());
        plaintext.extend_from_slice(&unix_millis(sealed_at).to_be_bytes());
        plaintext.extend_from_slice(&2u16.to_be_bytes());
        plaintext.extend_from_slice(b"42");
        plaintext.extend_from_slice(&body);
        URL_SAFE_NO_PAD.encode(ring().seal_legacy(VERSION_2, &plaintext, NAME.as_bytes()))
    };
    let (first, later) = (
        open(&store, &token(t(1_700_000_000_200))),
        open(&store, &token(now())),
    );
    assert_eq!(first.record, json_record());
    assert_eq!(first.stamp.owner.as_deref(), Some("42"));
    assert_eq!(later.stamp.sealed_at, now());
    assert!(first.needs_reseal);
    assert_eq!(first.stamp.id, later.stamp.id);
}

/// A stamped cookie (a store with revocations) carries its id, owner, seal time and horizon.
#[test]
fn a_stamp_round_trips() {
    let store = store(&[key(1)]).revocations(crate::MemoryStore::new());
    let stamp = match Stamp::fresh(Some("ada".into()), deadline().expires_at) {
        Ok(stamp) => stamp,
        Err(err) => panic!("stamp: {err}"),
    };
    let token = store
        .seal(
            NAME,
            &json_record(),
            deadline(),
            Format::Json,
            Some(&stamp),
            now(),
        )
        .unwrap_or_default();
    let opened = open(&store, &token);
    assert_eq!(
        opened.stamp,
        Stamp {
            sealed_at: now(),
            ..stamp.clone()
        }
    );
    assert!(!opened.needs_reseal);
    // Without a revocation list the stamp is not sealed (the cookie stays small) …
    let plain = store_without_revocations();
    let small = plain
        .seal(
            NAME,
            &json_record(),
            deadline(),
            Format::Json,
            Some(&stamp),
            now(),
        )
        .unwrap_or_default();
    assert!(small.len() + 40 < token.len());
    // … and a store that has one reseals such a cookie to stamp it.
    assert!(open(&store, &small).needs_reseal);
    assert!(!open(&plain, &small).needs_reseal);
}

fn store_without_revocations() -> CookieStore {
    store(&[key(1)])
}

#[test]
fn structure_errors() {
    let store = store(&[key(1)]);
    let token = seal(&store, &json_record());
    let raw = URL_SAFE_NO_PAD.decode(&token).unwrap_or_default();
    // An unknown format version.
    let mut other_version = raw.clone();
    other_version[0] = 9;
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
    let ring = ring();
    let mut sealing = ring.start(64).unwrap_or_else(|err| panic!("{err}"));
    sealing
        .buf
        .extend_from_slice(&unix_millis(deadline().created_at).to_be_bytes());
    sealing
        .buf
        .extend_from_slice(&unix_millis(deadline().expires_at).to_be_bytes());
    sealing.buf.push(0);
    sealing.buf.extend_from_slice(b"not a record");
    let garbage = sealing.finish(NAME.as_bytes()).unwrap_or_default();
    assert!(matches!(
        store.open(NAME, &URL_SAFE_NO_PAD.encode(&garbage), now()),
        Err(CookieError::Record(_))
    ));
    // Flags this build does not know: malformed, never guessed at.
    let mut sealing = ring.start(64).unwrap_or_else(|err| panic!("{err}"));
    sealing
        .buf
        .extend_from_slice(&unix_millis(deadline().created_at).to_be_bytes());
    sealing
        .buf
        .extend_from_slice(&unix_millis(deadline().expires_at).to_be_bytes());
    sealing.buf.push(0x80);
    let unknown = sealing.finish(NAME.as_bytes()).unwrap_or_default();
    assert!(matches!(
        store.open(NAME, &URL_SAFE_NO_PAD.encode(&unknown), now()),
        Err(CookieError::Malformed)
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
    assert!(raw.len() >= seal::OVERHEAD + 17);
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
        let mut bytes = vec![seal::FORMAT, 0, 0, 0, 1 + rng.below(2) as u8];
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
