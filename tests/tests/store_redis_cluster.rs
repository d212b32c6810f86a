//! `RedisStore` in cluster mode, against a three-node Redis Cluster each test starts on its own
//! loopback ports (`redis-server --cluster-enabled yes`, joined with `redis-cli --cluster
//! create`), killed when the test ends.
#![allow(clippy::unwrap_used)]

mod redis_common;

use std::time::{Duration, Instant};

use sessions::clock::SystemClock;
use sessions::prelude::*;
use sessions::store::{Entry, Stored, blob};
use sessions::{Format, SessionId};

use redis_common::{
    RedisCluster, deadline_in, have_binaries, live, plain_connection, record, slot,
};

async fn cluster_store(cluster: &RedisCluster, prefix: &str) -> RedisStore {
    let store = RedisStore::connect_cluster(cluster.urls())
        .await
        .expect("connect to the cluster")
        .prefix(prefix);
    assert!(store.is_cluster());
    store
}

/// The conformance suite on a cluster: plain, then with a local cache (invalidations come from
/// every node on one push channel). The owner check runs with the index in other hash slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_conformance_suite_on_a_cluster() {
    if !have_binaries(true, "the Redis Cluster tests") {
        return;
    }
    let started = Instant::now();
    let cluster = RedisCluster::start().await;
    println!("three-node cluster up in {:?}", started.elapsed());
    let store = cluster_store(&cluster, "sessions:").await;
    let started = Instant::now();
    sessions::store::conformance::run(store, SystemClock).await;
    println!("conformance suite on the cluster: {:?}", started.elapsed());
    let cached = cluster_store(&cluster, "cached:")
        .await
        .local_cache(10_000)
        .await
        .unwrap();
    let started = Instant::now();
    sessions::store::conformance::run(cached.clone(), SystemClock).await;
    println!(
        "conformance suite on the cluster with a local cache: {:?} ({} cached)",
        started.elapsed(),
        cached.cached_sessions()
    );
}

/// A session is one string on the node that owns its session key's hash slot (the hash tag);
/// the other nodes hold nothing of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_session_is_one_key_on_one_node() {
    if !have_binaries(true, "the Redis Cluster tests") {
        return;
    }
    let cluster = RedisCluster::start().await;
    let store = cluster_store(&cluster, "app:").await;
    let key = SessionId::generate().unwrap().key();
    let entry = live(
        record(vec![slot("cart", 1, Format::Json, &[("items", b"[1]")])]),
        600,
    );
    assert!(store.swap(&key, None, Some(entry.clone())).await.unwrap());
    let redis_key = store.redis_key(&key);
    let mut holders = Vec::new();
    for url in cluster.urls() {
        let mut conn = plain_connection(&url).await;
        let size: i64 = redis::cmd("DBSIZE").query_async(&mut conn).await.unwrap();
        if size > 0 {
            let value: Vec<u8> = redis::cmd("GET")
                .arg(&redis_key)
                .query_async(&mut conn)
                .await
                .unwrap();
            assert_eq!(value, blob::encode_at(&key, &entry));
            holders.push((url, size));
        } else {
            let err = redis::cmd("GET")
                .arg(&redis_key)
                .query_async::<redis::Value>(&mut conn)
                .await
                .expect_err("another node does not hold the session");
            assert_eq!(err.code(), Some("MOVED"), "{url}: {err}");
        }
    }
    assert_eq!(holders.len(), 1, "one node holds it: {holders:?}");
    assert_eq!(holders[0].1, 1, "one key per session");
}

/// Owners on a cluster: sessions spread over every node, listed through the index that lives in
/// another slot; a rebinding moves the member, a deleted session's member is pruned by the
/// listing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_are_listed_across_hash_slots() {
    if !have_binaries(true, "the Redis Cluster tests") {
        return;
    }
    let cluster = RedisCluster::start().await;
    let store = cluster_store(&cluster, "own:").await;
    let bound = |owner: &str, version: u64| {
        let mut session = Stored::new(
            record(vec![slot("auth", 1, Format::Json, &[("u", b"1")])]),
            deadline_in(600),
        );
        session.owner =
            Some(sessions::store::Owner::new(owner, std::time::SystemTime::now()).into());
        Entry::Live { version, session }
    };
    let mut keys = Vec::new();
    for _ in 0..40 {
        let key = SessionId::generate().unwrap().key();
        assert!(store.swap(&key, None, Some(bound("ada", 1))).await.unwrap());
        keys.push(key);
    }
    assert_eq!(store.owned_by("ada").await.unwrap().len(), 40);
    assert!(
        store
            .swap(&keys[0], Some(1), Some(bound("bob", 2)))
            .await
            .unwrap()
    );
    assert!(store.swap(&keys[1], Some(1), None).await.unwrap());
    // Deleted behind the store's back: pruned by the listing.
    let mut any = redis::cluster::ClusterClient::new(cluster.urls())
        .unwrap()
        .get_async_connection()
        .await
        .unwrap();
    redis::cmd("DEL")
        .arg(store.redis_key(&keys[2]))
        .query_async::<i64>(&mut any)
        .await
        .unwrap();
    assert_eq!(store.owned_by("ada").await.unwrap().len(), 37);
    let members: i64 = redis::cmd("SCARD")
        .arg("own:o:{ada}")
        .query_async(&mut any)
        .await
        .unwrap();
    assert_eq!(members, 37, "the gone member was pruned");
    let bob = store.owned_by("bob").await.unwrap();
    assert_eq!(bob.len(), 1);
    assert_eq!(bob[0].0, keys[0]);
}

/// Two cached stores on the cluster: a write through one reaches the other's next load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_cache_stays_coherent_on_a_cluster() {
    if !have_binaries(true, "the Redis Cluster tests") {
        return;
    }
    let cluster = RedisCluster::start().await;
    let a = cluster_store(&cluster, "c:")
        .await
        .local_cache(100)
        .await
        .unwrap();
    let b = cluster_store(&cluster, "c:")
        .await
        .local_cache(100)
        .await
        .unwrap();
    for _ in 0..10 {
        let key = SessionId::generate().unwrap().key();
        assert!(
            a.swap(&key, None, Some(live(record(vec![]), 600)))
                .await
                .unwrap()
        );
        let Some(Entry::Live { session, .. }) = a.load(&key).await.unwrap() else {
            panic!()
        };
        assert_eq!(b.load(&key).await.unwrap().map(|e| e.version()), Some(1));
        assert!(
            a.swap(
                &key,
                Some(1),
                Some(Entry::Live {
                    version: 2,
                    session
                })
            )
            .await
            .unwrap()
        );
        let started = Instant::now();
        while b.load(&key).await.unwrap().map(|e| e.version()) != Some(2) {
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "b never saw the write"
            );
            tokio::task::yield_now().await;
        }
        assert!(b.swap(&key, Some(2), None).await.unwrap());
        let started = Instant::now();
        while a.load(&key).await.unwrap().is_some() {
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "a never saw the logout"
            );
            tokio::task::yield_now().await;
        }
    }
}

#[derive(Session, Default)]
#[session(name = "cart", version = 1)]
struct CartV1 {
    n: u32,
}

#[derive(Session, Default)]
#[session(name = "cart", version = 2, migrate_from = CartV1)]
struct Cart {
    n: u64,
}

impl From<CartV1> for Cart {
    fn from(old: CartV1) -> Self {
        Cart {
            n: u64::from(old.n) * 10,
        }
    }
}

/// `migrate_all` scans every primary: sessions spread over all three nodes are all migrated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_all_reaches_every_node() {
    const SESSIONS: usize = 60;
    if !have_binaries(true, "the Redis Cluster tests") {
        return;
    }
    let cluster = RedisCluster::start().await;
    let store = cluster_store(&cluster, "sessions:").await;
    let mut keys = Vec::new();
    for _ in 0..SESSIONS {
        let key = SessionId::generate().unwrap().key();
        let entry = live(
            record(vec![
                slot("cart", 1, Format::Json, &[("n", b"7")]).with_revision(1),
            ]),
            3600,
        );
        assert!(store.swap(&key, None, Some(entry)).await.unwrap());
        keys.push(key);
    }
    let mut per_node = Vec::new();
    for url in cluster.urls() {
        let mut conn = plain_connection(&url).await;
        per_node.push(
            redis::cmd("DBSIZE")
                .query_async::<i64>(&mut conn)
                .await
                .unwrap(),
        );
    }
    assert!(
        per_node.iter().all(|n| *n > 0),
        "sessions spread over every node: {per_node:?}"
    );
    let report = store.migrate_all::<Cart>(Format::Json).await.unwrap();
    assert_eq!(
        report.migrated.get(&1),
        Some(&(SESSIONS as u64)),
        "{report:?}"
    );
    assert_eq!((report.current, report.failed), (0, 0));
    let mut registry = sessions::store::Registry::new();
    registry.register::<Cart>().unwrap();
    for key in &keys {
        let Some(Entry::Live { session, .. }) = store.load(key).await.unwrap() else {
            panic!()
        };
        let cart = registry.load::<Cart>(&session.record).unwrap().unwrap();
        assert_eq!(*cart.n(), 70);
    }
    let again = store.migrate_all::<Cart>(Format::Json).await.unwrap();
    assert_eq!(
        (again.current, again.total_migrated()),
        (SESSIONS as u64, 0)
    );
    println!("sessions per node: {per_node:?}");
}
