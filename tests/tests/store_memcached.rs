//! `MemcachedStore` against the memcached at `SESSIONS_TEST_MEMCACHED_URL` (skipped, passing,
//! when it is unset). Every test writes under a prefix of its own.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_memcached::{Client, MetaProtocol};
use bytes::Bytes;
use sessions::clock::{ManualClock, SystemClock};
use sessions::error::StoreError;
use sessions::store::{Deadline, Entry, Owner, Record, SessionKey, Slot, Stored, conformance};
use sessions::{Format, MemcachedStore, SessionId, SessionStore};

fn url() -> Option<String> {
    let url = std::env::var("SESSIONS_TEST_MEMCACHED_URL").ok();
    if url.is_none() {
        println!("skipped: set SESSIONS_TEST_MEMCACHED_URL to run the memcached store tests");
    }
    url
}

/// A store under a prefix no other test uses.
async fn store(url: &str) -> MemcachedStore {
    let prefix = format!("t{}:", &fresh_key().as_str()[..10]);
    MemcachedStore::connect(url)
        .await
        .expect("connect to memcached")
        .prefix(prefix)
}

/// A plain client, to look at items behind the store's back.
async fn client(url: &str) -> Client {
    let address = url.trim_start_matches("memcache://");
    Client::new(format!("tcp://{address}"))
        .await
        .expect("a client")
}

fn fresh_key() -> SessionKey {
    SessionId::generate().expect("an id").key()
}

fn whole_millis(now: SystemTime) -> SystemTime {
    let ms = now
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64;
    UNIX_EPOCH + Duration::from_millis(ms)
}

fn live(secs: u64, owner: Option<&str>) -> Entry {
    let now = whole_millis(SystemTime::now());
    let mut record = Record::new();
    record.insert(Slot::new(
        "cart",
        1,
        Format::Json,
        vec![(Cow::Borrowed("n"), Bytes::from_static(b"7"))],
    ));
    let deadline = Deadline {
        created_at: now,
        expires_at: now + Duration::from_secs(secs),
    };
    let mut session = Stored::new(record, deadline);
    session.owner = owner.map(|name| Arc::new(Owner::new(name, now)));
    Entry::Live {
        version: 1,
        session,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let Some(url) = url() else { return };
    conformance::run(store(&url).await, SystemClock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_with_a_manual_clock() {
    let Some(url) = url() else { return };
    let clock = ManualClock::new();
    conformance::run(store(&url).await.with_clock(clock.clone()), clock).await;
}

/// One item per session under the prefix and the hashed key (never the id), expiring with the
/// session.
#[tokio::test]
async fn one_item_per_session_expiring_at_its_end() {
    let Some(url) = url() else { return };
    let store = store(&url).await;
    let id = SessionId::generate().expect("an id");
    let key = id.key();
    assert!(
        store
            .swap(&key, None, Some(live(600, None)))
            .await
            .expect("create")
    );
    let item = store.item_key(&key);
    assert!(item.starts_with(store.prefix_str()) && !item.contains(id.expose()));
    let mut client = client(&url).await;
    let found = client
        .meta_get(&item, false, None, Some(&["t", "v"]))
        .await
        .expect("mg")
        .expect("the item is there");
    let ttl = found.ttl_remaining.expect("a ttl");
    assert!(
        (590..=600).contains(&ttl),
        "expires with the session: {ttl} s"
    );
}

/// memcached evicts: an evicted session is a session ended early. Its next save writes
/// nothing (never brings it back), its load finds nothing, and a logout of it succeeds.
#[tokio::test]
async fn an_evicted_session_ends_and_never_comes_back() {
    let Some(url) = url() else { return };
    let store = store(&url).await;
    let key = fresh_key();
    let entry = live(600, None);
    assert!(
        store
            .swap(&key, None, Some(entry.clone()))
            .await
            .expect("create")
    );
    let mut client = client(&url).await;
    client
        .meta_delete(store.item_key(&key), false, None, None)
        .await
        .expect("evicted");
    assert_eq!(store.load(&key).await.expect("load"), None);
    let mut next = entry;
    if let Entry::Live { version, .. } = &mut next {
        *version = 2;
    }
    assert!(!store.swap(&key, Some(1), Some(next)).await.expect("save"));
    assert_eq!(store.load(&key).await.expect("load"), None);
    assert!(!store.swap(&key, Some(1), None).await.expect("logout"));
    assert!(store.swap(&key, None, None).await.expect("nothing live"));
}

/// Listing an owner's sessions is refused, clearly: no index survives eviction.
#[tokio::test]
async fn owners_cannot_be_listed() {
    let Some(url) = url() else { return };
    let store = store(&url).await;
    assert!(
        store
            .swap(&fresh_key(), None, Some(live(600, Some("42"))))
            .await
            .expect("create")
    );
    match store.owned_by("42").await {
        Err(StoreError::Unsupported(what)) => assert!(what.contains("eviction"), "{what}"),
        other => panic!("expected Unsupported, got {other:?}"),
    }
    assert!(matches!(
        store.scan(None, 10).await,
        Err(StoreError::Unsupported(_))
    ));
    assert_eq!(
        SessionStore::delete_expired(&store)
            .await
            .expect("nothing to sweep"),
        0
    );
}

/// An item that is not an entry loads as a record error (the layer starts a fresh session),
/// and a create never overwrites it.
#[tokio::test]
async fn garbage_is_a_record_error_and_is_not_overwritten() {
    let Some(url) = url() else { return };
    let store = store(&url).await;
    let key = fresh_key();
    let mut client = client(&url).await;
    client
        .meta_set(
            store.item_key(&key),
            &b"garbage"[..],
            false,
            None,
            Some(&["T60"]),
        )
        .await
        .expect("set");
    assert!(matches!(store.load(&key).await, Err(StoreError::Record(_))));
    assert!(
        !store
            .swap(&key, None, Some(live(600, None)))
            .await
            .expect("create")
    );
}

/// A server that is not there fails the connect with a backend error, quickly.
#[tokio::test]
async fn an_unreachable_server_is_a_backend_error() {
    match MemcachedStore::connect("memcache://127.0.0.1:1").await {
        Err(StoreError::Backend(_)) => {}
        other => panic!("expected a backend error, got {other:?}"),
    }
}

/// A cap on the sessions of a user needs their listing, which memcached cannot give: the layer
/// refuses it when it is built, with the fix in the message, never on a login. Through
/// `Encrypted` too (the wrapper says what the store under it can do).
#[tokio::test]
async fn a_cap_per_owner_is_refused_when_the_layer_is_built() {
    let Some(url) = url() else { return };
    let plain = store(&url).await;
    let encrypted = sessions::store::Encrypted::new(
        store(&url).await,
        [sessions::Key::generate(1).expect("a key")],
    )
    .expect("one key");
    assert!(!plain.lists_owners() && !encrypted.lists_owners());
    let refusals = [
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            drop(sessions::SessionLayer::new(plain).max_sessions_per_owner(3))
        })),
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            drop(sessions::SessionLayer::new(encrypted).max_sessions_per_owner(3))
        })),
    ];
    for refusal in refusals {
        let message = refusal.expect_err("the layer refuses the cap");
        let message = message
            .downcast_ref::<String>()
            .expect("a formatted message");
        assert!(
            message.contains("max_sessions_per_owner(3)") && message.contains("memcached"),
            "{message}"
        );
    }
}
