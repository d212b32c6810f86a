//! `RedisStore` against real servers: the shared one at `SESSIONS_TEST_REDIS_URL` (the
//! conformance suite, plain and cached, the layout, prefixes, bad data) and `redis-server`s of
//! the test's own (an outage under a running app, the owner index's command counts). The
//! upgrade and migrations: `store_redis_upgrade.rs`; the local cache: `store_redis_cache.rs`;
//! Redis Cluster: `store_redis_cluster.rs`.
#![allow(clippy::unwrap_used)]

mod redis_common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use sessions::clock::SystemClock;
use sessions::error::StoreError;
use sessions::prelude::*;
use sessions::store::{Entry, Stored, blob};
use sessions::store::{Record, SessionKey};
use sessions::{Format, SessionId};
use tower::ServiceExt;

use redis_common::{
    PrefixGuard, RedisServer, TempDir, command_stats, deadline_in, fresh_key, have_binaries,
    key_of_cookie, live, plain_connection, record, redis_url, set_cookie, slot, store,
};

fn ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

async fn type_of(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> String {
    redis::cmd("TYPE").arg(key).query_async(conn).await.unwrap()
}

// ---- the shared server ------------------------------------------------------------------------

/// The conformance suite, plain and then with a local cache (one after the other: each runs
/// 64 writers on one session, and two at once on this two-core machine outran its retry budget).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_conformance_suite() {
    let Some(url) = redis_url() else { return };
    let guard = PrefixGuard::new(&url, "conformance");
    let store = store(&url, &guard).await;
    let started = Instant::now();
    sessions::store::conformance::run(store.clone(), SystemClock).await;
    println!("conformance suite on {url}: {:?}", started.elapsed());
    let cached = store.local_cache(10_000).await.unwrap();
    assert!(cached.has_local_cache());
    let started = Instant::now();
    sessions::store::conformance::run(cached.clone(), SystemClock).await;
    println!(
        "conformance suite on {url} with a local cache: {:?} ({} sessions cached)",
        started.elapsed(),
        cached.cached_sessions()
    );
}

/// One string per session under `{prefix}{<hashed id>}` (the raw id appears nowhere), holding
/// `blob::encode(entry)` and expiring at the entry's end; a swap moves the expiry.
#[tokio::test]
async fn one_string_per_session_expiring_at_its_end() {
    let Some(url) = redis_url() else { return };
    let guard = PrefixGuard::new(&url, "layout");
    let store = store(&url, &guard).await;
    let id = SessionId::generate().unwrap();
    let key = id.key();
    let first = live(
        record(vec![slot("cart", 1, Format::Json, &[("n", b"1")])]),
        600,
    );
    assert!(store.swap(&key, None, Some(first.clone())).await.unwrap());
    let mut conn = plain_connection(&url).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", guard.prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys, vec![format!("{}{{{}}}", guard.prefix, key.as_str())]);
    assert_eq!(keys[0], store.redis_key(&key));
    assert!(!keys[0].contains(id.expose()));
    assert_eq!(type_of(&mut conn, &keys[0]).await, "string");
    let value: Vec<u8> = redis::cmd("GET")
        .arg(&keys[0])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(value, blob::encode_at(&key, &first));
    let expire_time = async |conn: &mut redis::aio::MultiplexedConnection| -> i64 {
        redis::cmd("PEXPIRETIME")
            .arg(store.redis_key(&key))
            .query_async(conn)
            .await
            .unwrap()
    };
    assert_eq!(expire_time(&mut conn).await, ms(first.expires_at()) as i64);
    let Entry::Live { session, .. } = first else {
        unreachable!()
    };
    let mut later = session.clone();
    later.deadline.expires_at += Duration::from_secs(600);
    let second = Entry::Live {
        version: 2,
        session: later,
    };
    assert!(
        store
            .swap(&key, Some(1), Some(second.clone()))
            .await
            .unwrap()
    );
    assert_eq!(expire_time(&mut conn).await, ms(second.expires_at()) as i64);
    // An end a moment away: Redis removes the session by itself.
    let mut soon = session;
    soon.deadline.expires_at = SystemTime::now() + Duration::from_millis(150);
    let third = Entry::Live {
        version: 3,
        session: soon,
    };
    assert!(store.swap(&key, Some(2), Some(third)).await.unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(store.load(&key).await.unwrap().is_none());
    let exists: i64 = redis::cmd("EXISTS")
        .arg(store.redis_key(&key))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(exists, 0, "the key is gone, not only hidden");
}

/// Stores under different prefixes do not see each other's sessions, and `migrate_all`
/// touches only its own prefix.
#[tokio::test]
async fn prefixes_keep_apps_apart() {
    let Some(url) = redis_url() else { return };
    let (a, b) = (
        PrefixGuard::new(&url, "iso-a"),
        PrefixGuard::new(&url, "iso-b"),
    );
    let (store_a, store_b) = (store(&url, &a).await, store(&url, &b).await);
    let key = fresh_key();
    let mut entry = live(
        record(vec![slot("cart", 1, Format::Json, &[("n", b"1")])]),
        60,
    );
    if let Entry::Live { session, .. } = &mut entry {
        // Whole milliseconds: what the store keeps.
        session.deadline.created_at =
            UNIX_EPOCH + Duration::from_millis(ms(session.deadline.created_at));
        session.deadline.expires_at =
            UNIX_EPOCH + Duration::from_millis(ms(session.deadline.expires_at));
        session.last_seen = session.deadline.created_at;
    }
    assert!(store_a.swap(&key, None, Some(entry.clone())).await.unwrap());
    assert!(store_b.load(&key).await.unwrap().is_none());
    assert!(
        store_b.swap(&key, None, Some(entry.clone())).await.unwrap(),
        "the same key under another prefix is free"
    );
    assert_eq!(store_a.load(&key).await.unwrap(), Some(entry));
}

/// Data under a session's key that is not a session is a `Record` error (the layer starts a
/// fresh session), never a backend error and never a panic; a swap over it writes nothing.
#[tokio::test]
async fn foreign_data_is_a_record_error() {
    let Some(url) = redis_url() else { return };
    let guard = PrefixGuard::new(&url, "foreign");
    let store = store(&url, &guard).await;
    let mut conn = plain_connection(&url).await;
    let put = async |conn: &mut redis::aio::MultiplexedConnection,
                     command: &str,
                     key: &SessionKey,
                     args: &[&[u8]]| {
        let mut cmd = redis::cmd(command);
        cmd.arg(store.redis_key(key));
        for arg in args {
            cmd.arg(*arg);
        }
        cmd.query_async::<redis::Value>(conn).await.unwrap();
    };
    let cases: [(&str, &[&[u8]]); 5] = [
        ("SET", &[b"garbage"]),
        ("SET", &[&[0xE1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0]]), // a cut-short entry
        ("RPUSH", &[b"a", b"b"]),
        ("SADD", &[b"x"]),
        ("HSET", &[b"x", b"1"]), // a hash, but not an old-layout session
    ];
    for (command, args) in cases {
        let key = fresh_key();
        put(&mut conn, command, &key, args).await;
        match store.load(&key).await {
            Err(StoreError::Record(_)) => {}
            other => panic!("{command}: expected a Record error, got {other:?}"),
        }
        let entry = live(Record::new(), 60);
        assert!(
            !store
                .swap(&key, Some(7), Some(entry.clone()))
                .await
                .unwrap(),
            "{command}"
        );
        assert!(
            !store.swap(&key, None, Some(entry)).await.unwrap(),
            "{command}: a create over it"
        );
    }
}

/// An end past the largest `PXAT` Redis takes (`i64::MAX` ms: only a forged entry, or one of
/// a store that did not saturate its expiry, says so) is kept as far as Redis can: such a
/// session is created, read back with its end as given, and written over (it used to fail
/// every write with 503 "store unavailable", forever). An end before 1970 (`PXAT` 0, which
/// Redis refuses) is an end in the past: the write goes through and nothing stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_end_past_the_largest_pxat_is_kept_as_far_as_redis_can() {
    let Some(url) = redis_url() else { return };
    let guard = PrefixGuard::new(&url, "pxat");
    let store = store(&url, &guard).await;
    let mut conn = plain_connection(&url).await;
    let now = UNIX_EPOCH + Duration::from_millis(ms(SystemTime::now()));
    for end_ms in [i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX] {
        let deadline = sessions::store::Deadline {
            created_at: now,
            expires_at: UNIX_EPOCH + Duration::from_millis(end_ms),
        };
        let id = sessions::store::create_session(&store, Record::new(), deadline)
            .await
            .unwrap_or_else(|err| panic!("{end_ms}: not created: {err}"));
        let key = id.key();
        let Some(Entry::Live { version, session }) = store.load(&key).await.unwrap() else {
            panic!("{end_ms}: not stored");
        };
        assert_eq!(session.deadline, deadline, "{end_ms}");
        let ttl: i64 = redis::cmd("PTTL")
            .arg(store.redis_key(&key))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(ttl > 0, "{end_ms}: PTTL {ttl}");
        let mut next = session.clone();
        next.record
            .insert(slot("cart", 1, Format::Json, &[("n", b"1")]));
        let written = Entry::Live {
            version: version + 1,
            session: next,
        };
        assert!(
            store
                .swap(&key, Some(version), Some(written))
                .await
                .unwrap(),
            "{end_ms}"
        );
        assert!(
            store.swap(&key, Some(version + 1), None).await.unwrap(),
            "{end_ms}"
        );
    }
    let before_1970 = sessions::store::Deadline {
        created_at: UNIX_EPOCH,
        expires_at: UNIX_EPOCH - Duration::from_secs(1),
    };
    let key = fresh_key();
    let entry = Entry::Live {
        version: 1,
        session: Stored::new(Record::new(), before_1970),
    };
    assert!(store.swap(&key, None, Some(entry)).await.unwrap());
    assert!(store.load(&key).await.unwrap().is_none());
}

#[derive(Session, Default)]
#[session(name = "counter")]
struct Counter {
    hits: u64,
}

async fn hit(mut counter: Typed<Counter>) -> String {
    let hits = *counter.hits() + 1;
    counter.set_hits(hits);
    hits.to_string()
}

struct Reply {
    status: StatusCode,
    body: String,
    cookie: Option<String>,
    took: Duration,
}

async fn call(app: &Router, cookie: Option<&str>) -> Reply {
    let mut request = Request::get("/hit");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    let started = Instant::now();
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let took = started.elapsed();
    let status = response.status();
    let cookie = set_cookie(&response);
    let error = response
        .headers()
        .get("x-session-error")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8_lossy(&body).into_owned() + &error.unwrap_or_default();
    Reply {
        status,
        body,
        cookie,
        took,
    }
}

/// Through the layer: garbage under a session's key gives that request a fresh session (200,
/// a new cookie), not a 503; the garbage is left alone.
#[tokio::test]
async fn the_layer_starts_a_fresh_session_over_corrupt_data() {
    let Some(url) = redis_url() else { return };
    let guard = PrefixGuard::new(&url, "corrupt-http");
    let store = store(&url, &guard).await;
    let app = Router::new()
        .route("/hit", get(hit))
        .layer(SessionLayer::new(store.clone()).register::<Counter>());
    let first = call(&app, None).await;
    let cookie = first.cookie.unwrap();
    let key = key_of_cookie(&cookie);
    let mut conn = plain_connection(&url).await;
    redis::cmd("SET")
        .arg(store.redis_key(&key))
        .arg("not a session")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    let reply = call(&app, Some(&cookie)).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "1"),
        "a fresh session"
    );
    let new_cookie = reply.cookie.expect("a new cookie");
    assert_ne!(key_of_cookie(&new_cookie), key, "under a new id");
    let left: String = redis::cmd("GET")
        .arg(store.redis_key(&key))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, "not a session", "the corrupt value is not destroyed");
}

// ---- servers of the test's own -------------------------------------------------------------------

/// Listing an owner's 1,000 sessions is one SMEMBERS and one MGET (no SCAN, no KEYS), and a
/// binding or an ordinary save is one round trip: counted by the server (a private one, whose
/// counters nobody else moves).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_listing_is_two_commands_not_a_scan() {
    if !have_binaries(false, "the owner index count") {
        return;
    }
    let dir = TempDir::new("redis-owners");
    let server = RedisServer::start(dir.path(), "owners", &[]);
    let store = RedisStore::connect(server.url()).await.unwrap();
    let mut admin = plain_connection(&server.url()).await;
    let mut keys = Vec::new();
    for _ in 0..1_000 {
        let key = fresh_key();
        let mut session = Stored::new(
            record(vec![slot("auth", 1, Format::Json, &[("user", b"42")])]),
            deadline_in(600),
        );
        session.owner = Some(sessions::store::Owner::new("42", SystemTime::now()).into());
        assert!(
            store
                .swap(
                    &key,
                    None,
                    Some(Entry::Live {
                        version: 1,
                        session
                    })
                )
                .await
                .unwrap()
        );
        keys.push(key);
    }
    // An ordinary save of a bound session: the script alone, no index command.
    let before = command_stats(&mut admin).await;
    let Some(Entry::Live { session, .. }) = store.load(&keys[0]).await.unwrap() else {
        panic!()
    };
    assert!(
        store
            .swap(
                &keys[0],
                Some(1),
                Some(Entry::Live {
                    version: 2,
                    session
                })
            )
            .await
            .unwrap()
    );
    let after = command_stats(&mut admin).await;
    let delta =
        |name: &str| after.get(name).map_or(0, |a| a.0) - before.get(name).map_or(0, |b| b.0);
    assert_eq!(
        (delta("get"), delta("evalsha"), delta("sadd"), delta("srem")),
        (2, 1, 0, 0),
        "a load and a save: {after:?}"
    );
    let before = command_stats(&mut admin).await;
    let started = Instant::now();
    let listed = store.owned_by("42").await.unwrap();
    let took = started.elapsed();
    let after = command_stats(&mut admin).await;
    assert_eq!(listed.len(), 1_000);
    let delta =
        |name: &str| after.get(name).map_or(0, |a| a.0) - before.get(name).map_or(0, |b| b.0);
    assert_eq!(
        (
            delta("smembers"),
            delta("mget"),
            delta("scan"),
            delta("keys")
        ),
        (1, 1, 0, 0)
    );
    println!("owned_by of 1,000 sessions: {took:?}");
}

/// The app keeps running when Redis goes away: requests that need the session get a 503 that
/// says why, within seconds; when Redis is back on the same port, the same app serves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_survives_a_redis_outage() {
    if !have_binaries(false, "the Redis outage test") {
        return;
    }
    let dir = TempDir::new("redis-fault");
    let mut server = RedisServer::start(dir.path(), "fault", &[]);
    for cached in [false, true] {
        let mut store = RedisStore::connect(server.url()).await.unwrap();
        if cached {
            store = store.local_cache(100).await.unwrap();
        }
        let app = Router::new()
            .route("/hit", get(hit))
            .layer(SessionLayer::new(store).register::<Counter>());
        let first = call(&app, None).await;
        assert_eq!((first.status, first.body.as_str()), (StatusCode::OK, "1"));
        let cookie = first.cookie.expect("a session cookie");
        let second = call(&app, Some(&cookie)).await;
        assert_eq!((second.status, second.body.as_str()), (StatusCode::OK, "2"));

        server.kill();
        for attempt in 0..3 {
            let reply = call(&app, Some(&cookie)).await;
            assert_eq!(
                reply.status,
                StatusCode::SERVICE_UNAVAILABLE,
                "cached {cached}, attempt {attempt}: {}",
                reply.body
            );
            assert!(
                reply.body.contains("session store unavailable"),
                "{}",
                reply.body
            );
            assert!(
                reply.took < Duration::from_secs(5),
                "attempt {attempt} took {:?}",
                reply.took
            );
            println!(
                "cached {cached}: down, with a cookie: 503 in {:?}",
                reply.took
            );
        }
        let reply = call(&app, None).await;
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            reply.body
        );
        assert!(reply.took < Duration::from_secs(5), "took {:?}", reply.took);

        tokio::time::sleep(Duration::from_secs(2)).await;
        server.restart();
        // The restarted server is empty (no persistence): the old cookie starts a new session,
        // with or without a cache (the cache was dropped with the connection).
        let reply = call(&app, Some(&cookie)).await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (StatusCode::OK, "1"),
            "cached {cached}: first request after the restart"
        );
        let cookie = reply.cookie.expect("a new session cookie");
        let reply = call(&app, Some(&cookie)).await;
        assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "2"));
    }
}

/// Connecting to a port where nothing listens is a `Backend` error, promptly.
#[tokio::test]
async fn connecting_to_nothing_is_a_backend_error() {
    let port = redis_common::free_port();
    let started = Instant::now();
    let result = RedisStore::connect(format!("redis://127.0.0.1:{port}")).await;
    assert!(matches!(result, Err(StoreError::Backend(_))), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}
