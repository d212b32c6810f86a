//! The encrypted store's tests, on a `MemoryStore` (the server stores run the same checks
//! against their servers in `tests/tests/store_encrypted.rs`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;
use crate::codec::Format;
use crate::expiry::Deadline;
use crate::id::SessionId;
use crate::store::MemoryStore;

fn key(id: u32) -> Key {
    Key::from_bytes(id, [id as u8; 32])
}

fn encrypted(store: &MemoryStore, keys: &[u32]) -> Encrypted<MemoryStore> {
    match Encrypted::new(store.clone(), keys.iter().map(|&id| key(id))) {
        Ok(store) => store,
        Err(err) => panic!("encrypted: {err}"),
    }
}

fn fresh_key() -> SessionKey {
    match SessionId::generate() {
        Ok(id) => id.key(),
        Err(err) => panic!("id: {err}"),
    }
}

fn now() -> SystemTime {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64);
    UNIX_EPOCH + Duration::from_millis(millis)
}

/// A session of ada's with a cart, and an agent.
fn session() -> Stored {
    let mut record = Record::new();
    record.insert(
        Slot::new(
            "cart",
            2,
            Format::Json,
            vec![("items".into(), r#"["apple-pie"]"#.into())],
        )
        .with_revision(3),
    );
    let now = now();
    let mut stored = Stored::new(
        record,
        Deadline {
            created_at: now,
            expires_at: now + Duration::from_secs(3600),
        },
    );
    let mut owner = Owner::new("ada@example.com", now);
    owner.agent = Some("Firefox/140".into());
    stored.owner = Some(Arc::new(owner));
    stored
}

async fn put(store: &impl SessionStore, key: &SessionKey, session: Stored) {
    let entry = Entry::Live {
        version: 1,
        session,
    };
    assert!(matches!(store.swap(key, None, Some(entry)).await, Ok(true)));
}

async fn raw(store: &MemoryStore, key: &SessionKey) -> Stored {
    match store.load(key).await {
        Ok(Some(Entry::Live { session, .. })) => session,
        other => panic!("raw: {other:?}"),
    }
}

fn bytes_of(stored: &Stored) -> Vec<u8> {
    blob::encode(&Entry::Live {
        version: 1,
        session: stored.clone(),
    })
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[tokio::test]
async fn a_stored_session_is_sealed_and_loads_exactly_as_saved() {
    let memory = MemoryStore::new();
    let store = encrypted(&memory, &[1]);
    let key = fresh_key();
    let saved = session();
    put(&store, &key, saved.clone()).await;
    let stored = bytes_of(&raw(&memory, &key).await);
    for secret in ["apple-pie", "items", "cart", "Firefox"] {
        assert!(!contains(&stored, secret), "{secret} is in clear");
    }
    // The owner index needs the owner's name (in clear unless hashed).
    assert!(contains(&stored, "ada@example.com"));
    let loaded = store.load(&key).await;
    assert!(
        matches!(loaded, Ok(Some(Entry::Live { version: 1, ref session })) if *session == saved)
    );
}

#[tokio::test]
async fn a_sealed_record_moved_under_another_key_does_not_open() {
    let memory = MemoryStore::new();
    let store = encrypted(&memory, &[1]);
    let (key, other) = (fresh_key(), fresh_key());
    put(&store, &key, session()).await;
    // Copy the stored (sealed) form under another session's key, as someone with write
    // access to the store could.
    put(&memory, &other, raw(&memory, &key).await).await;
    assert!(matches!(
        store.load(&other).await,
        Err(StoreError::Record(_))
    ));
    // The copy is left as it is.
    assert_eq!(raw(&memory, &other).await, raw(&memory, &key).await);
}

#[tokio::test]
async fn tampered_or_foreign_records_do_not_open_and_are_left_alone() {
    let memory = MemoryStore::new();
    let key = fresh_key();
    put(&encrypted(&memory, &[1]), &key, session()).await;
    // A store without key 1 refuses it (no trial decryption, no panic).
    assert!(matches!(
        encrypted(&memory, &[2]).load(&key).await,
        Err(StoreError::Record(_))
    ));
    // A flipped byte.
    let mut stored = raw(&memory, &key).await;
    let envelope = envelope_of(&stored.record).unwrap_or_default();
    let mut flipped = envelope.to_vec();
    if let Some(last) = flipped.last_mut() {
        *last ^= 1;
    }
    stored.record = Record::new();
    stored.record.insert(Slot::from_parts(
        SEALED_SLOT.into(),
        SEALED_SLOT.into(),
        1,
        SEALED_FORMAT_TAG,
        vec![(SEALED_FIELD.into(), Bytes::from(flipped))],
    ));
    let tampered = fresh_key();
    put(&memory, &tampered, stored).await;
    assert!(matches!(
        encrypted(&memory, &[1]).load(&tampered).await,
        Err(StoreError::Record(_))
    ));
    // A record in clear (written before the store was wrapped) is refused unless asked for.
    let clear = fresh_key();
    put(&memory, &clear, session()).await;
    assert!(matches!(
        encrypted(&memory, &[1]).load(&clear).await,
        Err(StoreError::Record(_))
    ));
    let reading = encrypted(&memory, &[1]).read_plaintext(true);
    assert!(matches!(reading.load(&clear).await, Ok(Some(_))));
}

#[tokio::test]
async fn a_key_rotation_loses_no_session_and_rekey_all_moves_every_one() {
    let memory = MemoryStore::new();
    let keys: Vec<SessionKey> = (0..5).map(|_| fresh_key()).collect();
    for key in &keys {
        put(&encrypted(&memory, &[1]), key, session()).await;
    }
    let rotated = encrypted(&memory, &[2, 1]);
    for key in &keys {
        assert!(matches!(rotated.load(key).await, Ok(Some(_))));
    }
    // A save seals with the first key.
    let Ok(Some(Entry::Live { version, session })) = rotated.load(&keys[0]).await else {
        panic!("load");
    };
    let next = Entry::Live {
        version: version + 1,
        session,
    };
    assert!(matches!(
        rotated.swap(&keys[0], Some(version), Some(next)).await,
        Ok(true)
    ));
    assert!(matches!(
        encrypted(&memory, &[2]).load(&keys[0]).await,
        Ok(Some(_))
    ));
    // rekey_all seals the other four now, and a second run has nothing left to do.
    assert_eq!(rotated.rekey_all().await.ok(), Some(4));
    assert_eq!(rotated.rekey_all().await.ok(), Some(0));
    let retired = encrypted(&memory, &[2]);
    for key in &keys {
        assert!(
            matches!(retired.load(key).await, Ok(Some(_))),
            "lost a session"
        );
    }
}

#[tokio::test]
async fn hashed_owners_keep_listing_working_and_out_of_the_dump() {
    let memory = MemoryStore::new();
    let store = encrypted(&memory, &[1]).hash_owners(key(9));
    let key = fresh_key();
    put(&store, &key, session()).await;
    assert!(!contains(
        &bytes_of(&raw(&memory, &key).await),
        "ada@example.com"
    ));
    let owned = store.owned_by("ada@example.com").await.unwrap_or_default();
    assert_eq!(owned.len(), 1);
    assert_eq!(owned[0].1.owner(), Some("ada@example.com"));
    assert!(store.owned_by("bob").await.unwrap_or_default().is_empty());
}

#[tokio::test]
async fn the_walk_opens_what_it_hands_out_and_counts_what_does_not_open() {
    let memory = MemoryStore::new();
    let store = encrypted(&memory, &[1]);
    put(&store, &fresh_key(), session()).await;
    put(&memory, &fresh_key(), session()).await; // in clear: unreadable
    let page = store.scan(None, 100).await;
    let Ok(page) = page else { panic!("scan") };
    assert_eq!((page.entries.len(), page.unreadable), (1, 1));
    assert!(
        page.entries[0]
            .1
            .session()
            .is_some_and(|s| s.record.slot("cart").is_some())
    );
}
