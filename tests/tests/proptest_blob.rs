//! `store::blob`, what SQLite, PostgreSQL and Redis actually read: arbitrary entries come back
//! equal (bound to their key, refused under another), arbitrary and corrupted bytes never
//! panic, and whatever decodes writes back the same. What decoding may cost: `blob_cost.rs`.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use proptest::prelude::*;
use sessions::store::{Deadline, Entry, Name, Owner, Record, SessionKey, Slot, Stored, blob};

/// Decodes `bytes` under `key` and without one: never a panic, and whatever decodes encodes
/// back (bound to `key`) to an entry that decodes the same.
fn decodes_or_refuses(key: &SessionKey, bytes: Vec<u8>) -> Result<(), TestCaseError> {
    let bytes = Bytes::from(bytes);
    let decoded = blob::decode(bytes.clone());
    let at = blob::decode_at(key, bytes);
    if let Ok(entry) = decoded {
        let again = blob::encode_at(key, &entry);
        prop_assert_eq!(blob::decode_at(key, again.into()).unwrap(), entry);
    } else {
        prop_assert!(at.is_err());
    }
    Ok(())
}

// ---- arbitrary entries ---------------------------------------------------------------------------

fn key() -> impl Strategy<Value = SessionKey> {
    any::<[u8; 32]>().prop_map(SessionKey::from_digest)
}

/// A time as an entry keeps it: whole milliseconds, anywhere a `u64` of them reaches.
fn time() -> impl Strategy<Value = SystemTime> {
    prop_oneof![
        (0u64..4_102_444_800_000).prop_map(|ms| UNIX_EPOCH + Duration::from_millis(ms)),
        any::<u64>().prop_map(|ms| UNIX_EPOCH + Duration::from_millis(ms)),
    ]
}

fn slot() -> impl Strategy<Value = Slot> {
    let name = prop_oneof![Just("cart".to_owned()), "[a-z_]{0,6}", any::<String>()];
    let fields = prop::collection::vec(
        (name.clone(), prop::collection::vec(any::<u8>(), 0..16)),
        0..4,
    );
    (
        name.clone(),
        name,
        any::<u32>(),
        any::<u8>(),
        0..u64::MAX,
        fields,
    )
        .prop_map(|(name, tag, version, format, revision, fields)| {
            let fields = fields
                .into_iter()
                .map(|(n, v)| (Name::Owned(n), Bytes::from(v)))
                .collect();
            // An empty type tag is stored as "the same as the name".
            let tag = if tag.is_empty() { name.clone() } else { tag };
            Slot::from_parts(name.into(), tag.into(), version, format, fields)
                .with_revision(revision)
        })
}

fn stored() -> impl Strategy<Value = Stored> {
    let owner = prop::option::of((any::<String>(), time(), prop::option::of(any::<String>())));
    (
        prop::collection::vec(slot(), 0..4),
        time(),
        time(),
        time(),
        owner,
    )
        .prop_map(|(slots, created_at, expires_at, last_seen, owner)| {
            let mut record = Record::new();
            for slot in slots {
                record.insert(slot);
            }
            let mut stored = Stored::new(
                record,
                Deadline {
                    created_at,
                    expires_at,
                },
            );
            stored.last_seen = last_seen;
            stored.owner = owner.map(|(name, since, agent)| {
                let mut owner = Owner::new(name, since);
                owner.agent = agent;
                Arc::new(owner)
            });
            stored
        })
}

fn entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        (0..u64::MAX, stored()).prop_map(|(version, session)| Entry::Live { version, session }),
        (0..u64::MAX, key(), time()).prop_map(|(version, to, until)| Entry::Moved {
            version,
            to,
            until
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn an_entry_round_trips_bound_to_its_key_and_is_refused_under_another(
        entry in entry(),
        key in key(),
        other in key(),
    ) {
        prop_assume!(key != other);
        let bound = blob::encode_at(&key, &entry);
        prop_assert_eq!(&bound[..blob::PREFIX_LEN], &blob::prefix(entry.version())[..]);
        prop_assert_eq!(&blob::decode_at(&key, bound.clone().into()).unwrap(), &entry);
        prop_assert_eq!(&blob::decode(bound.clone().into()).unwrap(), &entry);
        prop_assert_eq!(
            &blob::decode_beside(&key, entry.version(), bound.clone().into()).unwrap(),
            &entry
        );
        let elsewhere = blob::decode_at(&other, bound.into()).unwrap_err();
        prop_assert_eq!(elsewhere.stored_version(), Some(entry.version()));
        // An entry written before the binding reads under any key.
        let unbound = blob::encode(&entry);
        prop_assert_eq!(&blob::decode_at(&other, unbound.into()).unwrap(), &entry);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..1024),
        key in key(),
    ) {
        decodes_or_refuses(&key, bytes)?;
    }

    #[test]
    fn entry_looking_bytes_never_panic(
        version in any::<u64>(),
        kind in prop_oneof![Just(1u8), Just(2), Just(0x11), Just(0x12), any::<u8>()],
        tail in prop::collection::vec(any::<u8>(), 0..512),
        key in key(),
    ) {
        let mut bytes = blob::prefix(version).to_vec();
        bytes.push(kind);
        bytes.extend_from_slice(&tail);
        decodes_or_refuses(&key, bytes)?;
    }

    #[test]
    fn corrupted_entries_never_panic(
        entry in entry(),
        key in key(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = blob::encode_at(&key, &entry);
        for (index, byte) in edits {
            let at = index.index(bytes.len());
            bytes[at] = byte;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        decodes_or_refuses(&key, bytes)?;
    }
}
