//! `RedisStore::local_cache`: coherent across app instances (two stores, each with its own
//! connection and cache, as two processes have), stale entries that only make a save retry,
//! the cache dropped with the connection, and bounded memory.
//!
//! What the cache promises about staleness (issue 20, defect 9): a load on one instance returns
//! the entry as it was before a write through another instance until that write's invalidation
//! has reached it — a window of time (the push's trip from the server, and this process getting
//! to read it), not a number of changes: every write in that window is missed. The tests wait
//! for the invalidation itself (the cache forgets the entry), never for a length of time;
//! `stale_window_under_load` (ignored: it measures) gives the window's size.
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

/// How long a test waits for something the server pushes (an invalidation, a disconnection)
/// before it calls the test broken: a guard against hanging, far above any delay measured
/// here — not a bound the tests assert.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// Waits until `store`'s cache holds `count` sessions (an invalidation or a disconnection has
/// reached it); how long that took.
async fn until_cached(store: &RedisStore, count: usize, what: &str) -> Duration {
    let started = Instant::now();
    while store.cached_sessions() != count {
        assert!(started.elapsed() < HANG_GUARD, "{what}: never happened");
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    started.elapsed()
}

fn version(entry: &Option<Entry>) -> Option<u64> {
    entry.as_ref().map(Entry::version)
}

/// Two instances: a write and a logout through one are seen by the next load through the other
/// once the invalidation has arrived (the other's cache forgets the entry); each serves
/// repeated loads from memory.
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
        // The reader: once the invalidation is in, its next load is the write.
        waits.push(until_cached(reader, 0, "the invalidation of a write").await);
        assert_eq!(version(&reader.load(&key).await.unwrap()), Some(v + 1));
        assert_eq!(reader.cached_sessions(), 1, "kept after a read");
    }
    // A logout through one: the other's next load finds nothing, once told.
    let v = a.load(&key).await.unwrap().unwrap().version();
    assert!(a.swap(&key, Some(v), None).await.unwrap());
    waits.push(until_cached(&b, 0, "the invalidation of a logout").await);
    assert!(b.load(&key).await.unwrap().is_none());
    waits.sort();
    println!(
        "a write through one instance reached the other's cache after: median {:?}, max {:?} (from the writer's acknowledgement)",
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
    // Every increment is stored (`a` started at 1 from the first request): read on the server.
    let id = cookie.split_once('=').map(|(_, id)| id).unwrap();
    let key = sessions::SessionId::parse(id).unwrap().key();
    let mut server = plain_connection(&url).await;
    let stored: Vec<u8> = redis::cmd("GET")
        .arg(store_a.redis_key(&key))
        .query_async(&mut server)
        .await
        .unwrap();
    let Ok(Entry::Live { session, .. }) = sessions::store::blob::decode_at(&key, stored.into())
    else {
        panic!("the session is stored")
    };
    let pair = session.record.slot("pair").unwrap();
    let field = |name: &str| {
        Format::Json
            .decode::<u64>(pair.field(name).unwrap())
            .unwrap()
    };
    assert_eq!(
        (field("a"), field("b")),
        (N + 1, N),
        "an increment was lost"
    );
    // A logout through one instance: once the other is told, its next request is a fresh
    // session.
    let (status, _, _) = send(&two, "/logout", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    until_cached(&store_a, 0, "the invalidation of the logout").await;
    let (_, body, _) = send(&one, "/read", Some(&cookie)).await;
    assert_eq!(body, "0 0", "after the logout");
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
    let took = until_cached(&store, 0, "the cache dropped with its connection").await;
    println!("cache dropped {took:?} after CLIENT KILL");
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
    until_cached(&store, 0, "the invalidation of another client's write").await;
    assert_eq!(store.load(&key).await.unwrap(), Some(third.clone()));
    assert_eq!(store.cached_sessions(), 1);
    redis::cmd("FLUSHALL")
        .query_async::<()>(&mut admin)
        .await
        .unwrap();
    until_cached(&store, 0, "FLUSHALL emptying the cache").await;
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

/// Runs `tasks` busy tasks, each writing a session of its own through `a` and reading it
/// through `b` in a loop, until `stop` is set: the load the window is measured under.
fn busy(
    a: &RedisStore,
    b: &RedisStore,
    tasks: usize,
    stop: &std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<tokio::task::JoinHandle<u64>> {
    (0..tasks)
        .map(|_| {
            let (a, b, stop) = (a.clone(), b.clone(), stop.clone());
            tokio::spawn(async move {
                let key = fresh_key();
                let mut entry = live(record(vec![slot("c", 1, Format::Json, &[])]), 600);
                assert!(a.swap(&key, None, Some(entry.clone())).await.unwrap());
                let mut done = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let Entry::Live { version, session } = entry else {
                        unreachable!()
                    };
                    entry = Entry::Live {
                        version: version + 1,
                        session,
                    };
                    assert!(
                        a.swap(&key, Some(version), Some(entry.clone()))
                            .await
                            .unwrap()
                    );
                    b.load(&key).await.unwrap();
                    done += 1;
                }
                done
            })
        })
        .collect()
}

/// Issue 20, defect 9: the local cache's stale window, measured on two instances (two stores,
/// each with its own connection and cache) on one host, under load (busy tasks writing other
/// sessions through one instance and reading them through the other meanwhile):
///
/// 1. the window: from a write's acknowledgement through one instance until the other's cache
///    has its invalidation (its next load is the write), 500 times;
/// 2. what a read can miss: one instance writes one session as fast as it can, the other reads
///    it as fast as it can, for two seconds; for each read, how many acknowledged writes it did
///    not show.
///
/// Not run by default (it measures; its figures are in the README):
/// `SESSIONS_TEST_REDIS_URL=redis://127.0.0.1:6379 cargo test -p sessions-tests --test
/// store_redis_cache -- --ignored --nocapture stale_window_under_load`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run it by name"]
async fn stale_window_under_load() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    let Some(url) = redis_url() else { return };
    let guard = PrefixGuard::new(&url, "window");
    let (a, b) = (
        cached(&url, &guard, 100_000).await,
        cached(&url, &guard, 100_000).await,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let background = busy(&a, &b, 16, &stop);

    // 1. The window.
    let key = fresh_key();
    let mut entry = live(record(vec![slot("c", 1, Format::Json, &[])]), 600);
    assert!(a.swap(&key, None, Some(entry.clone())).await.unwrap());
    let mut windows = Vec::new();
    for _ in 0..500 {
        // `b` holds the current entry.
        while version(&b.load(&key).await.unwrap()) != Some(entry.version()) {}
        let Entry::Live {
            version: was,
            session,
        } = entry
        else {
            unreachable!()
        };
        entry = Entry::Live {
            version: was + 1,
            session,
        };
        assert!(a.swap(&key, Some(was), Some(entry.clone())).await.unwrap());
        let acknowledged = Instant::now();
        while version(&b.load(&key).await.unwrap()) != Some(was + 1) {
            tokio::task::yield_now().await;
        }
        windows.push(acknowledged.elapsed());
    }
    windows.sort();
    let at = |share: f64| windows[((windows.len() - 1) as f64 * share) as usize];

    // 2. What a read misses while another instance writes.
    let hot = fresh_key();
    let first = live(record(vec![slot("c", 1, Format::Json, &[])]), 600);
    assert!(a.swap(&hot, None, Some(first.clone())).await.unwrap());
    let acknowledged = Arc::new(AtomicU64::new(1));
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (a, hot, acknowledged, done) =
            (a.clone(), hot.clone(), acknowledged.clone(), done.clone());
        tokio::spawn(async move {
            let mut entry = first;
            while !done.load(Ordering::Relaxed) {
                let Entry::Live { version, session } = entry else {
                    unreachable!()
                };
                entry = Entry::Live {
                    version: version + 1,
                    session,
                };
                assert!(
                    a.swap(&hot, Some(version), Some(entry.clone()))
                        .await
                        .unwrap()
                );
                acknowledged.store(version + 1, Ordering::SeqCst);
            }
        })
    };
    let mut missed: Vec<u64> = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        let before = acknowledged.load(Ordering::SeqCst);
        let read = version(&b.load(&hot).await.unwrap()).unwrap_or(0);
        missed.push(before.saturating_sub(read));
    }
    done.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    stop.store(true, Ordering::SeqCst);
    let mut busy_ops = 0;
    for task in background {
        busy_ops += task.await.unwrap();
    }
    let writes = acknowledged.load(Ordering::SeqCst);
    let stale = missed.iter().filter(|&&m| m > 0).count();
    missed.sort_unstable();
    println!(
        "stale window (acknowledged write through one instance -> the other's next load shows it), \
         500 writes, 16 busy tasks alongside ({busy_ops} busy write+read pairs): \
         median {:?}, p90 {:?}, p99 {:?}, max {:?}",
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
    println!(
        "one instance writing one session flat out ({writes} writes in 2 s), the other reading it: \
         {} reads, {stale} of them stale; writes missed by a read: median {}, p99 {}, max {}",
        missed.len(),
        missed[missed.len() / 2],
        missed[(missed.len() - 1) * 99 / 100],
        missed[missed.len() - 1]
    );
}
