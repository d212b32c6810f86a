//! `store::blob::decode_at`, what SQLite, PostgreSQL and Redis read, on arbitrary bytes: the
//! first 32 bytes are the key the entry is read under, the rest the stored entry. It never
//! panics; whatever it accepts encodes back (bound to that key) to bytes that decode to the
//! same entry, and that encode again to the very same bytes; an error after the version says
//! the version the entry starts with. (What decoding may allocate is bounded in
//! `tests/tests/proptest_blob.rs`, which counts it.)
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sessions::store::{SessionKey, blob};

fuzz_target!(|data: &[u8]| {
    let Some((digest, stored)) = data.split_first_chunk::<32>() else {
        return;
    };
    let key = SessionKey::from_digest(*digest);
    let entry = match blob::decode_at(&key, Bytes::copy_from_slice(stored)) {
        Ok(entry) => entry,
        Err(err) => {
            if let Some(version) = err.stored_version() {
                assert_eq!(blob::stored_version(stored), Some(version), "{err}");
            }
            return;
        }
    };
    assert_eq!(blob::stored_version(stored), Some(entry.version()));
    let bytes = blob::encode_at(&key, &entry);
    let back = match blob::decode_at(&key, Bytes::from(bytes.clone())) {
        Ok(back) => back,
        Err(err) => panic!("an entry that was read does not read back: {err}"),
    };
    assert_eq!(back, entry, "the entry read back differs");
    assert_eq!(
        blob::encode_at(&key, &back),
        bytes,
        "a second write differs"
    );
    assert_eq!(blob::decode(Bytes::from(bytes)).ok(), Some(entry));
});
