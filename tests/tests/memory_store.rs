//! `MemoryStore` keeps the promises of every store (the conformance suite, run as itself — its
//! own in-place `update` — and as `conformance::SwapOnly`, the trait's copy-and-swap), and
//! sweeps expired sessions away.

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use sessions::Format;
use sessions::clock::{Clock, ManualClock};
use sessions::prelude::*;
use sessions::store::conformance::{SwapOnly, run};
use sessions::store::{Deadline, Record, SessionKey, Slot};
use sessions::store::{Entry, Stored, create_session};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_passes_the_conformance_suite() {
    let clock = ManualClock::new();
    run(MemoryStore::with_clock(clock.clone()), clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_passes_the_conformance_suite_through_swap_alone() {
    let clock = ManualClock::new();
    run(SwapOnly(MemoryStore::with_clock(clock.clone())), clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compact_memory_store_passes_the_conformance_suite() {
    let clock = ManualClock::new();
    run(MemoryStore::compact_with_clock(clock.clone()), clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compact_memory_store_passes_the_conformance_suite_through_swap_alone() {
    let clock = ManualClock::new();
    run(
        SwapOnly(MemoryStore::compact_with_clock(clock.clone())),
        clock,
    )
    .await;
}

/// Files a session of `record()` ending `secs` from now, under a fresh id; returns its key.
async fn create(store: &MemoryStore, clock: &ManualClock, secs: u64) -> SessionKey {
    create_session(store, record(), ending_in(clock, secs))
        .await
        .expect("create")
        .key()
}

fn record() -> Record {
    let mut record = Record::new();
    record.insert(Slot::new(
        "cart",
        1,
        Format::Json,
        vec![(Cow::Borrowed("n"), Bytes::from_static(b"1"))],
    ));
    record
}

fn ending_in(clock: &ManualClock, secs: u64) -> Deadline {
    let now = clock.now();
    Deadline {
        created_at: now,
        expires_at: now + Duration::from_secs(secs),
    }
}

#[tokio::test]
async fn delete_expired_removes_expired_sessions_and_keeps_live_ones() {
    let clock = ManualClock::new();
    let store = MemoryStore::with_clock(clock.clone());
    // 40 sessions ending in 10 s, 25 ending in an hour: spread over every shard.
    let mut short = Vec::new();
    for _ in 0..40 {
        short.push(create(&store, &clock, 10).await);
    }
    let mut long = Vec::new();
    for _ in 0..25 {
        long.push(create(&store, &clock, 3600).await);
    }
    assert_eq!(store.len(), 65);
    assert_eq!(store.delete_expired(), 0, "nothing has expired yet");

    clock.advance(Duration::from_secs(10));
    // Expired sessions are invisible at once, though still held until swept.
    for key in &short {
        assert!(store.load(key).await.expect("load").is_none());
    }
    assert_eq!(store.len(), 65);

    assert_eq!(store.delete_expired(), 40);
    assert_eq!(store.len(), 25);
    for key in &long {
        assert!(store.load(key).await.expect("load").is_some());
    }
    assert_eq!(store.delete_expired(), 0, "a second sweep finds nothing");

    clock.advance(Duration::from_secs(3600));
    assert_eq!(store.delete_expired(), 25);
    assert!(store.is_empty());
}

#[tokio::test]
async fn writes_sweep_expired_sessions_as_they_go() {
    // Every 1024 writes one shard is swept: after enough writes, expired sessions are gone
    // without anyone calling delete_expired.
    let clock = ManualClock::new();
    let store = MemoryStore::with_clock(clock.clone());
    for _ in 0..200 {
        create(&store, &clock, 10).await;
    }
    clock.advance(Duration::from_secs(10));
    let live = create(&store, &clock, 3600).await;
    // 16 shards × 1024 writes: every shard swept at least once. Each write swaps the live
    // session for itself one version on.
    for version in 1..=16 * 1024 {
        let session = Stored::new(record(), ending_in(&clock, 3600));
        let next = Entry::Live {
            version: version + 1,
            session,
        };
        assert!(
            store
                .swap(&live, Some(version), Some(next))
                .await
                .expect("swap"),
            "write {version} was refused"
        );
    }
    assert_eq!(store.len(), 1, "expired sessions were not swept by writes");
    assert!(store.load(&live).await.expect("load").is_some());
}
