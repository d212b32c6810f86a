//! `RedisStore` in cluster mode, against a three-node Redis Cluster each test starts on its own
//! loopback ports (`redis-server --cluster-enabled yes`, joined with `redis-cli --cluster
//! create`), killed when the test ends.
#![allow(clippy::unwrap_used)]

mod redis_common;

use std::borrow::Cow;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use sessions::prelude::*;
use sessions::{
    Changeset, Deadline, Format, Record, SaveOutcome, SessionId, Slot, SlotChange, StoreError,
    SystemClock,
};

use redis_common::{RedisCluster, have_binaries, plain_connection, update};

fn deadline() -> Deadline {
    let now = SystemTime::now();
    Deadline {
        created_at: now,
        expires_at: now + Duration::from_secs(3600),
    }
}

fn slot(name: &'static str, version: u32, fields: &[(&'static str, &'static str)]) -> Slot {
    Slot::new(
        name,
        version,
        Format::Json,
        fields
            .iter()
            .map(|(n, v)| (Cow::Borrowed(*n), Bytes::from_static(v.as_bytes())))
            .collect(),
    )
}

async fn cluster_store(cluster: &RedisCluster, prefix: &str) -> RedisStore {
    let store = RedisStore::connect_cluster(cluster.urls())
        .await
        .expect("connect to the cluster")
        .prefix(prefix);
    assert!(store.is_cluster());
    store
}

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
}

/// Everything of one session is one hash on the one node that owns the hash slot of its
/// session key (the `{…}` hash tag): every field reads back through a plain connection to that
/// node, and the other nodes answer MOVED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_session_lives_on_one_node() {
    if !have_binaries(true, "the Redis Cluster tests") {
        return;
    }
    let cluster = RedisCluster::start().await;
    let store = cluster_store(&cluster, "app:").await;
    let key = SessionId::generate().unwrap().key();
    let mut record = Record::new();
    record.insert(slot("cart", 1, &[("items", "[1]"), ("coupon", "null")]));
    record.insert(slot("prefs", 1, &[("dark", "true")]));
    store.create(&key, &record, deadline()).await.unwrap();
    let changes: Changeset = [
        SlotChange::Fields {
            slot: "cart".into(),
            version: 1,
            format: Format::Json,
            fields: vec![("items".into(), Bytes::from_static(b"[1,2]"))],
        },
        SlotChange::Put(slot("new", 1, &[("x", "0")])),
    ]
    .into_iter()
    .collect();
    store.save(&key, &changes, deadline()).await.unwrap();
    record.apply(&changes).unwrap();
    assert_eq!(store.load(&key).await.unwrap().unwrap().record, record);

    let redis_key = store.redis_key(&key);
    let mut any = plain_connection(&cluster.urls()[0]).await;
    let slot_of = |name: String| {
        let mut any = any.clone();
        async move {
            redis::cmd("CLUSTER")
                .arg("KEYSLOT")
                .arg(name)
                .query_async::<i64>(&mut any)
                .await
                .unwrap()
        }
    };
    let hash_slot = slot_of(redis_key.clone()).await;
    assert_eq!(
        hash_slot,
        slot_of(key.as_str().to_owned()).await,
        "the key's hash slot is the session key's (the hash tag)"
    );

    // Which node owns the slot, by CLUSTER SLOTS.
    let ranges: Vec<(i64, i64, (String, i64))> = {
        let value: redis::Value = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query_async(&mut any)
            .await
            .unwrap();
        let redis::Value::Array(ranges) = value else {
            panic!("CLUSTER SLOTS: {value:?}")
        };
        ranges
            .into_iter()
            .map(|range| {
                let redis::Value::Array(parts) = range else {
                    panic!("a slot range: {range:?}")
                };
                let int = |v: &redis::Value| match v {
                    redis::Value::Int(n) => *n,
                    other => panic!("not an int: {other:?}"),
                };
                let redis::Value::Array(node) = &parts[2] else {
                    panic!("a node: {:?}", parts[2])
                };
                let host = match &node[0] {
                    redis::Value::BulkString(b) => String::from_utf8(b.clone()).unwrap(),
                    other => panic!("a host: {other:?}"),
                };
                (int(&parts[0]), int(&parts[1]), (host, int(&node[1])))
            })
            .collect()
    };
    let owner = ranges
        .iter()
        .find(|(start, end, _)| (*start..=*end).contains(&hash_slot))
        .map(|(_, _, (host, port))| format!("redis://{host}:{port}"))
        .expect("a node owns the slot");

    let mut owner_conn = plain_connection(&owner).await;
    let fields: Vec<String> = redis::cmd("HKEYS")
        .arg(&redis_key)
        .query_async(&mut owner_conn)
        .await
        .unwrap();
    let mut fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    fields.sort_unstable();
    let mut want = vec![
        "c",
        "e",
        "s",
        "h:cart",
        "o:cart",
        "r:cart",
        "f:4:cart:items",
        "f:4:cart:coupon",
        "h:prefs",
        "o:prefs",
        "r:prefs",
        "f:5:prefs:dark",
        "h:new",
        "o:new",
        "r:new",
        "f:3:new:x",
    ];
    want.sort_unstable();
    assert_eq!(
        fields, want,
        "every field of the session, on the owning node"
    );
    let count: i64 = redis::cmd("DBSIZE")
        .query_async(&mut owner_conn)
        .await
        .unwrap();
    assert_eq!(count, 1, "one key per session");

    for url in cluster.urls().into_iter().filter(|url| *url != owner) {
        let mut conn = plain_connection(&url).await;
        let err = redis::cmd("HGETALL")
            .arg(&redis_key)
            .query_async::<redis::Value>(&mut conn)
            .await
            .expect_err("another node does not hold the session");
        assert_eq!(err.code(), Some("MOVED"), "{url}: {err}");
        let size: i64 = redis::cmd("DBSIZE").query_async(&mut conn).await.unwrap();
        assert_eq!(size, 0, "{url} holds nothing");
    }
}

/// `cycle` between keys of different hash slots (no script can touch both): the session moves
/// with its revisions, and a move onto a taken key leaves the old session as it was, its
/// deadline included, and usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cycle_moves_a_session_between_hash_slots() {
    if !have_binaries(true, "the Redis Cluster tests") {
        return;
    }
    let cluster = RedisCluster::start().await;
    let store = cluster_store(&cluster, "sessions:").await;
    let mut any = plain_connection(&cluster.urls()[0]).await;
    let (old, taken) = (
        SessionId::generate().unwrap().key(),
        SessionId::generate().unwrap().key(),
    );
    let mut keyslots = Vec::new();
    for key in [&old, &taken] {
        keyslots.push(
            redis::cmd("CLUSTER")
                .arg("KEYSLOT")
                .arg(store.redis_key(key))
                .query_async::<i64>(&mut any)
                .await
                .unwrap(),
        );
    }
    let mut record = Record::new();
    record.insert(slot("cart", 1, &[("n", "1")]));
    let first = deadline();
    store.create(&old, &record, first).await.unwrap();
    store.create(&taken, &record, deadline()).await.unwrap();

    let outcome = store
        .cycle(&old, &taken, &Changeset::new(), deadline())
        .await;
    assert!(matches!(outcome, Err(StoreError::Collision)), "{outcome:?}");
    let mut owner = cluster_connection(&cluster).await;
    let expires: i64 = redis::cmd("PEXPIRETIME")
        .arg(store.redis_key(&old))
        .query_async(&mut owner)
        .await
        .unwrap();
    assert_eq!(
        u128::try_from(expires).unwrap(),
        first
            .expires_at
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
        "a refused move gives the old session its deadline back"
    );
    let changes = update("cart", "n", b"2");
    assert_eq!(
        store.save(&old, &changes, deadline()).await.unwrap(),
        SaveOutcome::Saved,
        "the old session is usable after a refused move"
    );

    let new = SessionId::generate().unwrap().key();
    assert_eq!(
        store.cycle(&old, &new, &changes, deadline()).await.unwrap(),
        SaveOutcome::Saved
    );
    assert!(store.load(&old).await.unwrap().is_none());
    let moved = store.load(&new).await.unwrap().unwrap();
    assert_eq!(moved.record.revision_of("cart"), 3);
    let exists: i64 = redis::cmd("EXISTS")
        .arg(store.redis_key(&old))
        .query_async(&mut owner)
        .await
        .unwrap();
    assert_eq!(exists, 0, "the old key is deleted, not left frozen");
    println!("hash slots of the two sessions: {keyslots:?}");
}

/// A plain cluster connection (follows MOVED), for commands the store does not send.
async fn cluster_connection(cluster: &RedisCluster) -> redis::cluster_async::ClusterConnection {
    redis::cluster::ClusterClient::new(cluster.urls())
        .unwrap()
        .get_async_connection()
        .await
        .unwrap()
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
        let mut record = Record::new();
        record.insert(slot("cart", 1, &[("n", "7")]));
        store.create(&key, &record, deadline()).await.unwrap();
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

    let mut registry = sessions::Registry::new();
    registry.register::<Cart>().unwrap();
    for key in &keys {
        let stored = store.load(key).await.unwrap().unwrap();
        let cart = registry.load::<Cart>(&stored.record).unwrap().unwrap();
        assert_eq!(*cart.n(), 70);
        assert_eq!(stored.record.slot("cart").unwrap().version(), 2);
    }
    let again = store.migrate_all::<Cart>(Format::Json).await.unwrap();
    assert_eq!(again.current, SESSIONS as u64);
    assert_eq!(again.total_migrated(), 0);
    println!("sessions per node: {per_node:?}");
}
