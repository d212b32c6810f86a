//! `RedisStore::local_cache`: coherent across app instances (two stores, each with its own
//! connection and cache, as two processes have), stale entries that only make a save retry,
//! the cache dropped with the connection, and bounded memory.
#![allow(clippy::unwrap_used)]

mod redis_common;

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use sessions::Format;
use sessions::prelude::*;
use sessions::store::Entry;
use sessions::store::SessionKey;
use tower::ServiceExt;

use redis_common::{
    PrefixGuard, RedisServer, TempDir, fresh_key, have_binaries, live, plain_connection, record,
    redis_url, set_cookie, slot, store,
};

async fn cached(url: &str, guard: &PrefixGuard, capacity: usize) -> RedisStore {
    store(url, guard).await.local_cache(capacity).await.unwrap()
}

/// Polls `load` until it gives what `done` wants, for at most a second; how long it took.
async fn until_seen(
    store: &RedisStore,
    key: &SessionKey,
    done: impl Fn(&Option<Entry>) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let entry = store.load(key).await.unwrap();
        if done(&entry) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "not seen within a second: {entry:?}"
        );
        tokio::task::yield_now().await;
    }
}

fn version(entry: &Option<Entry>) -> Option<u64> {
    entry.as_ref().map(Entry::version)
}

/// Two instances: a write and a logout through one are seen by the next load through the other
/// once the invalidation has arrived; each serves repeated loads from memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_or_a_logout_through_one_instance_reaches_the_other() {
    let Some(url) = redis_url() else { return };
    let guard = PrefixGuard::new(&url, "coherent");
    let (a, b) = (
        cached(&url, &guard, 1000).await,
        cached(&url, &guard, 1000).await,
    );
    let key = fresh_key();
    let first = live(
        record(vec![slot("cart", 1, Format::Json, &[("n", b"1")])]),
        600,
    );
    assert!(a.swap(&key, None, Some(first.clone())).await.unwrap());
    for store in [&a, &b] {
        assert_eq!(version(&store.load(&key).await.unwrap()), Some(1));
        assert_eq!(store.cached_sessions(), 1, "kept after a read");
    }
    let mut waits = Vec::new();
    for round in 0..20u64 {
        let (writer, reader) = if round % 2 == 0 { (&b, &a) } else { (&a, &b) };
        let current = writer.load(&key).await.unwrap().unwrap();
        let Entry::Live {
            version: v,
            session,
        } = current
        else {
            panic!()
        };
        assert!(
            writer
                .swap(
                    &key,
                    Some(v),
                    Some(Entry::Live {
                        version: v + 1,
                        session
                    })
                )
                .await
                .unwrap()
        );
        // The writer keeps what it wrote: its next load is from memory and current.
        assert_eq!(version(&writer.load(&key).await.unwrap()), Some(v + 1));
        waits.push(until_seen(reader, &key, |e| version(e) == Some(v + 1)).await);
    }
    // A logout through one: the other's next load finds nothing, once told.
    let v = a.load(&key).await.unwrap().unwrap().version();
    assert!(a.swap(&key, Some(v), None).await.unwrap());
    waits.push(until_seen(&b, &key, Option::is_none).await);
    waits.sort();
    println!(
        "a write through one instance seen by the other's next load after: median {:?}, max {:?} (from the writer's acknowledgement)",
        waits[waits.len() / 2],
        waits[waits.len() - 1]
    );
}

#[derive(Session, Default)]
#[session(name = "pair")]
struct Pair {
    a: u64,
    b: u64,
}

async fn bump_a(mut pair: Typed<Pair>) -> String {
    *pair.a_mut() += 1;
    pair.a().to_string()
}

async fn bump_b(mut pair: Typed<Pair>) -> String {
    *pair.b_mut() += 1;
    pair.b().to_string()
}

async fn read(pair: Typed<Pair>) -> String {
    format!("{} {}", pair.a(), pair.b())
}

async fn logout(session: SessionHandle) -> &'static str {
    session.destroy();
    "bye"
}

fn app(store: RedisStore) -> Router {
    Router::new()
        .route("/a", get(bump_a))
        .route("/b", get(bump_b))
        .route("/read", get(read))
        .route("/logout", get(logout))
        .layer(SessionLayer::new(store).register::<Pair>())
}

async fn send(
    app: &Router,
    path: &str,
    cookie: Option<&str>,
) -> (StatusCode, String, Option<String>) {
    let mut request = Request::get(path);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let cookie = set_cookie(&response);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned(), cookie)
}

/// Two concurrent requests of one user on two instances, each with a cache: 100 increments of
/// `a` through one and 100 of `b` through the other, at once. Loads may be stale for a moment,
/// but every save is a compare-and-swap on the entry's version, so a stale entry only makes the
/// save retry: no increment is lost. Then a logout through one instance is final for the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_of_one_user_on_two_instances_lose_no_write() {
    let Some(url) = redis_url() else { return };
    let guard = PrefixGuard::new(&url, "two-apps");
    let (store_a, store_b) = (
        cached(&url, &guard, 1000).await,
        cached(&url, &guard, 1000).await,
    );
    let (one, two) = (app(store_a.clone()), app(store_b.clone()));
    let (status, _, cookie) = send(&one, "/a", None).await;
    assert_eq!(status, StatusCode::OK);
    let cookie = cookie.unwrap();
    const N: u64 = 100;
    let tasks: Vec<_> = [(one.clone(), "/a"), (two.clone(), "/b")]
        .into_iter()
        .map(|(app, path)| {
            let cookie = cookie.clone();
            tokio::spawn(async move {
                for _ in 0..N {
                    let (status, body, _) = send(&app, path, Some(&cookie)).await;
                    assert_eq!(status, StatusCode::OK, "{path}: {body}");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    // `a` started at 1 from the first request.
    let expected = format!("{} {}", N + 1, N);
    let started = Instant::now();
    for app in [&one, &two] {
        loop {
            let (_, body, _) = send(app, "/read", Some(&cookie)).await;
            if body == expected {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "read {body}, want {expected}"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let (status, _, _) = send(&two, "/logout", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    let started = Instant::now();
    loop {
        // Read-only: a fresh session that writes nothing.
        let (_, body, _) = send(&one, "/read", Some(&cookie)).await;
        if body == "0 0" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "after the logout: {body}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let (_, body, _) = send(&one, "/a", Some(&cookie)).await;
    assert_eq!(body, "1", "a write after the logout starts a fresh session");
}

/// Loads the session under `key` through `store` and swaps in a copy with slot `name` set to
/// `n`, again until a swap goes through (a stale cached read fails its swap); returns how many
/// swaps failed first.
async fn write_slot_until_stored(store: &RedisStore, key: &SessionKey, name: &str, n: u64) -> u32 {
    let mut failed = 0;
    loop {
        let Some(Entry::Live { version, session }) = store.load(key).await.unwrap() else {
            panic!("the session is gone")
        };
        let mut changed = session.clone();
        changed.record.insert(
            slot(name, 1, Format::Json, &[("n", n.to_string().as_bytes())]).with_revision(1),
        );
        let next = Entry::Live {
            version: version + 1,
            session: changed,
        };
        if store.swap(key, Some(version), Some(next)).await.unwrap() {
            return failed;
        }
        failed += 1;
        assert!(failed < 10_000, "{name}'s save never went through");
    }
}

/// A save made from a stale cached entry writes nothing and is retried on what is stored: the
/// store refuses a swap over a version that is not stored, and forgets its cached entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_entry_only_makes_a_save_retry() {
    let Some(url) = redis_url() else { return };
    let guard = PrefixGuard::new(&url, "stale");
    let (a, b) = (
        cached(&url, &guard, 1000).await,
        cached(&url, &guard, 1000).await,
    );
    let key = fresh_key();
    assert!(
        a.swap(
            &key,
            None,
            Some(live(record(vec![slot("c", 1, Format::Json, &[])]), 600))
        )
        .await
        .unwrap()
    );
    let mut retries = 0;
    for n in 0..200u64 {
        // `b` writes (from its own cache, which may be stale after `a`'s last write: then its
        // swap fails and it reads again); `a` saves at once, from whatever its cache says.
        retries += write_slot_until_stored(&b, &key, "b", n).await;
        retries += write_slot_until_stored(&a, &key, "a", n).await;
        assert!(retries < 10_000, "a save never went through");
        let mut server = plain_connection(&url).await;
        let stored: Vec<u8> = redis::cmd("GET")
            .arg(a.redis_key(&key))
            .query_async(&mut server)
            .await
            .unwrap();
        let Ok(Entry::Live { session, .. }) = sessions::store::blob::decode(stored.into()) else {
            panic!()
        };
        for name in ["a", "b"] {
            assert_eq!(
                session
                    .record
                    .slot(name)
                    .and_then(|s| s.field("n"))
                    .map(|b| b.to_vec()),
                Some(n.to_string().into_bytes()),
                "round {n}: {name}'s write was lost"
            );
        }
    }
    println!("200 saves from a possibly stale cache: {retries} retries, no write lost");
}

/// Memory is bounded: a cache of 100 holds at most 100 sessions however many are read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_holds_at_most_its_capacity() {
    let Some(url) = redis_url() else { return };
    let guard = PrefixGuard::new(&url, "bounded");
    let store = cached(&url, &guard, 100).await;
    let mut keys = Vec::new();
    for _ in 0..1_000 {
        let key = fresh_key();
        assert!(
            store
                .swap(
                    &key,
                    None,
                    Some(live(
                        record(vec![slot("c", 1, Format::Json, &[("n", b"1")])]),
                        600
                    ))
                )
                .await
                .unwrap()
        );
        assert!(store.load(&key).await.unwrap().is_some());
        assert!(
            store.cached_sessions() <= 100,
            "{} cached",
            store.cached_sessions()
        );
        keys.push(key);
    }
    // The recently used ones are served; the oldest went.
    assert!(store.cached_sessions() >= 50);
    for key in &keys {
        assert!(
            store.load(key).await.unwrap().is_some(),
            "evicted is not lost"
        );
    }
}

/// On a server of the test's own: the cache is dropped when the connection (and so the
/// tracking) is lost, tracking is back after the reconnection, and a FLUSHALL empties it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_goes_with_the_connection() {
    if !have_binaries(false, "the local cache's disconnection test") {
        return;
    }
    let dir = TempDir::new("redis-cache-drop");
    let server = RedisServer::start(dir.path(), "cache", &[]);
    let store = RedisStore::connect(server.url())
        .await
        .unwrap()
        .local_cache(100)
        .await
        .unwrap();
    let mut admin = plain_connection(&server.url()).await;
    let key = fresh_key();
    assert!(
        store
            .swap(
                &key,
                None,
                Some(live(
                    record(vec![slot("c", 1, Format::Json, &[("n", b"1")])]),
                    600
                ))
            )
            .await
            .unwrap()
    );
    assert!(store.load(&key).await.unwrap().is_some());
    assert_eq!(store.cached_sessions(), 1);
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .arg("SKIPME")
        .arg("yes")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert!(killed >= 1);
    let started = Instant::now();
    while store.cached_sessions() != 0 {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the cache outlived its connection"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!("cache dropped {:?} after CLIENT KILL", started.elapsed());
    // Written by someone else while we were not tracking: the next load reads the server.
    let other = live(
        record(vec![slot("c", 1, Format::Json, &[("n", b"2")])]),
        600,
    );
    redis::cmd("SET")
        .arg(store.redis_key(&key))
        .arg(sessions::store::blob::encode(&other))
        .query_async::<()>(&mut admin)
        .await
        .unwrap();
    assert_eq!(store.load(&key).await.unwrap(), Some(other.clone()));
    // Tracking again on the new connection: another client's write invalidates.
    let third = live(
        record(vec![slot("c", 1, Format::Json, &[("n", b"3")])]),
        600,
    );
    redis::cmd("SET")
        .arg(store.redis_key(&key))
        .arg(sessions::store::blob::encode(&third))
        .query_async::<()>(&mut admin)
        .await
        .unwrap();
    until_seen(&store, &key, |e| e.as_ref() == Some(&third)).await;
    assert_eq!(store.cached_sessions(), 1);
    redis::cmd("FLUSHALL")
        .query_async::<()>(&mut admin)
        .await
        .unwrap();
    let started = Instant::now();
    while store.cached_sessions() != 0 {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "FLUSHALL did not empty the cache"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(store.load(&key).await.unwrap().is_none());
}

/// A store over a connection the caller made cannot cache (it cannot add the push channel).
#[tokio::test]
async fn a_cache_needs_a_connection_the_store_makes() {
    let Some(url) = redis_url() else { return };
    let client = redis::Client::open(url.as_str()).unwrap();
    let manager = redis::aio::ConnectionManager::new(client).await.unwrap();
    let result = RedisStore::from_manager(manager).local_cache(10).await;
    assert!(
        matches!(result, Err(sessions::error::StoreError::Unsupported(_))),
        "{result:?}"
    );
}
