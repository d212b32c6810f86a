//! `RedisStore` against real servers: the shared one at `SESSIONS_TEST_REDIS_URL` (the
//! conformance suite, concurrent writers, exact round trips, eager migration) and a
//! `redis-server` of the test's own that is killed and restarted under a running app.
#![allow(clippy::unwrap_used)]

mod redis_common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use sessions::prelude::*;
use sessions::{
    ApplyError, Changeset, Deadline, Format, MigrationReport, SaveOutcome, SessionId, Slot,
    SlotChange, StoreError, SystemClock,
};
use tower::ServiceExt;

use redis_common::{
    PrefixGuard, RedisServer, TempDir, deadline_in, fresh_key, have_binaries, plain_connection,
    record, redis_url, revisions, slot, store,
};

fn ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

// ---- the shared server ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_conformance_suite() {
    let Some(url) = redis_url() else { return };
    let guard = PrefixGuard::new(&url, "conformance");
    let store = store(&url, &guard).await;
    let started = Instant::now();
    sessions::store::conformance::run(store.clone(), SystemClock).await;
    println!("conformance suite on {url}: {:?}", started.elapsed());
}

/// 64 clients, each on its own connection, each saving its own field of one session 50
/// times: every client's last write is in the final record, and nothing else is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_each_keep_their_last_write() {
    const CLIENTS: usize = 64;
    const ROUNDS: usize = 50;
    let Some(url) = redis_url() else { return };
    let guard = PrefixGuard::new(&url, "concurrent");
    let key = fresh_key();
    let first = store(&url, &guard).await;
    first
        .create(
            &key,
            &record(vec![
                slot("cart", 1, Format::Json, &[]),
                slot("prefs", 1, Format::Json, &[("dark", b"true")]),
            ]),
            deadline_in(3600),
        )
        .await
        .unwrap();

    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let store = store(&url, &guard).await;
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..ROUNDS {
                let changes: Changeset = [SlotChange::Fields {
                    slot: "cart".into(),
                    version: 1,
                    format: Format::Json,
                    fields: vec![(
                        format!("client{client}").into(),
                        Bytes::from(format!("{client}.{round}")),
                    )],
                }]
                .into_iter()
                .collect();
                let outcome = store.save(&key, &changes, deadline_in(3600)).await;
                assert!(
                    matches!(outcome, Ok(SaveOutcome::Saved)),
                    "client {client} round {round}: {outcome:?}"
                );
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed();

    let stored = first.load(&key).await.unwrap().expect("the session");
    let cart = stored.record.slot("cart").expect("the cart slot");
    let last_writes = (0..CLIENTS)
        .filter(|client| {
            cart.field(&format!("client{client}")).map(|b| &b[..])
                == Some(format!("{client}.{}", ROUNDS - 1).as_bytes())
        })
        .count();
    assert_eq!(last_writes, CLIENTS, "clients whose last write survived");
    assert_eq!(cart.fields().len(), CLIENTS, "fields in the cart slot");
    assert_eq!(
        stored
            .record
            .slot("prefs")
            .unwrap()
            .field("dark")
            .map(|b| &b[..]),
        Some(&b"true"[..]),
        "another slot was touched"
    );
    println!(
        "{CLIENTS} clients × {ROUNDS} saves on one session: {elapsed:?} ({:.0} saves/s)",
        (CLIENTS * ROUNDS) as f64 / elapsed.as_secs_f64()
    );
}

/// What is loaded is exactly the record `Record::apply` gives, slot and field order included,
/// for names that stress the layout (`:`, braces, non-ASCII, empty) and both formats.
#[tokio::test]
async fn loads_exactly_what_record_apply_gives() {
    let Some(url) = redis_url() else { return };
    let guard = PrefixGuard::new(&url, "roundtrip");
    let store = store(&url, &guard).await;
    let key = fresh_key();
    let expected = record(vec![
        slot(
            "cart",
            2,
            Format::Json,
            &[("items", b"[1,2]"), ("coupon", b"null")],
        ),
        slot("a:b", 1, Format::Bincode, &[("c", &[0, 1, 2, 255])]),
        slot("a", 1, Format::Json, &[("b:c", b"1"), ("", b"2")]),
        slot("{weird}", 7, Format::Json, &[("ünï\ncode", b"\"x\"")]),
    ]);
    let deadline = deadline_in(600);
    store.create(&key, &expected, deadline).await.unwrap();
    // Created slots are filed at revision 1; Record::apply then moves them as the store must.
    let mut expected = expected.stored_at_least_once();
    let stored = store.load(&key).await.unwrap().unwrap();
    assert_eq!(stored.record, expected);
    assert_eq!(revisions(&stored.record), revisions(&expected));
    assert_eq!(ms(stored.deadline.created_at), ms(deadline.created_at));
    assert_eq!(ms(stored.deadline.expires_at), ms(deadline.expires_at));

    let steps: Vec<Vec<SlotChange>> = vec![
        vec![
            SlotChange::Fields {
                slot: "cart".into(),
                version: 2,
                format: Format::Json,
                fields: vec![
                    ("note".into(), Bytes::from_static(b"\"n\"")),
                    ("items".into(), Bytes::from_static(b"[3]")),
                ],
            },
            SlotChange::Remove { slot: "a:b".into() },
        ],
        // Put over an existing slot keeps its place and drops its old fields.
        vec![SlotChange::Put(slot(
            "cart",
            3,
            Format::Bincode,
            &[("lines", &[9])],
        ))],
        vec![
            SlotChange::Put(slot("new", 1, Format::Json, &[("x", b"0")])),
            SlotChange::Remove { slot: "a".into() },
        ],
        vec![SlotChange::Remove {
            slot: "missing".into(),
        }],
    ];
    for (i, step) in steps.into_iter().enumerate() {
        let changes: Changeset = step.into_iter().collect();
        expected.apply(&changes).unwrap();
        let outcome = store.save(&key, &changes, deadline).await.unwrap();
        assert_eq!(outcome, SaveOutcome::Saved);
        let stored = store.load(&key).await.unwrap().unwrap();
        assert_eq!(stored.record, expected, "after step {i}");
        assert_eq!(
            revisions(&stored.record),
            revisions(&expected),
            "revisions after step {i}"
        );
    }

    // No leftovers of removed or replaced slots in the hash.
    let mut conn = plain_connection(&url).await;
    let names: Vec<String> = redis::cmd("HKEYS")
        .arg(store.redis_key(&key))
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut names: Vec<&str> = names.iter().map(String::as_str).collect();
    names.sort_unstable();
    let mut want = vec![
        "c",
        "e",
        "s",
        "h:cart",
        "o:cart",
        "r:cart",
        "f:4:cart:lines",
        "h:{weird}",
        "o:{weird}",
        "r:{weird}",
        "f:7:{weird}:ünï\ncode",
        "h:new",
        "o:new",
        "r:new",
        "f:3:new:x",
    ];
    want.sort_unstable();
    assert_eq!(names, want);
}

/// The key is `{prefix}{<hashed id>}`: the raw id appears nowhere in Redis.
#[tokio::test]
async fn keys_hold_the_hashed_id_in_a_hash_tag() {
    let Some(url) = redis_url() else { return };
    let guard = PrefixGuard::new(&url, "keys");
    let store = store(&url, &guard).await;
    let id = SessionId::generate().unwrap();
    store
        .create(
            &id.key(),
            &record(vec![slot("cart", 1, Format::Json, &[("n", b"1")])]),
            deadline_in(60),
        )
        .await
        .unwrap();
    let mut conn = plain_connection(&url).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", guard.prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        keys,
        vec![format!("{}{{{}}}", guard.prefix, id.key().as_str())]
    );
    assert!(!keys[0].contains(id.expose()));
}

/// The key expires at the deadline (`PEXPIREAT`), and every save moves it.
#[tokio::test]
async fn the_key_expires_at_the_deadline() {
    let Some(url) = redis_url() else { return };
    let guard = PrefixGuard::new(&url, "ttl");
    let store = store(&url, &guard).await;
    let key = fresh_key();
    let mut conn = plain_connection(&url).await;
    let expire_time = |conn: &mut redis::aio::MultiplexedConnection| {
        let mut cmd = redis::cmd("PEXPIRETIME");
        cmd.arg(store.redis_key(&key));
        let mut conn = conn.clone();
        async move { cmd.query_async::<i64>(&mut conn).await.unwrap() }
    };
    let first = deadline_in(600);
    store
        .create(
            &key,
            &record(vec![slot("cart", 1, Format::Json, &[])]),
            first,
        )
        .await
        .unwrap();
    assert_eq!(expire_time(&mut conn).await, ms(first.expires_at) as i64);
    let later = Deadline {
        created_at: first.created_at,
        expires_at: first.expires_at + Duration::from_secs(600),
    };
    store.save(&key, &Changeset::new(), later).await.unwrap();
    assert_eq!(expire_time(&mut conn).await, ms(later.expires_at) as i64);

    // A deadline a moment away: Redis removes the session by itself.
    let soon = Deadline {
        created_at: first.created_at,
        expires_at: SystemTime::now() + Duration::from_millis(150),
    };
    store.save(&key, &Changeset::new(), soon).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(store.load(&key).await.unwrap().is_none());
}

/// A refused field update names the slot and both headers, and writes nothing else of its
/// changeset.
#[tokio::test]
async fn a_refused_changeset_writes_nothing() {
    let Some(url) = redis_url() else { return };
    let guard = PrefixGuard::new(&url, "refused");
    let store = store(&url, &guard).await;
    let key = fresh_key();
    let original = record(vec![
        slot("cart", 2, Format::Json, &[("a", b"1")]),
        slot("prefs", 1, Format::Json, &[("dark", b"true")]),
    ]);
    store
        .create(&key, &original, deadline_in(600))
        .await
        .unwrap();

    let changes: Changeset = [
        SlotChange::Put(slot("new", 1, Format::Json, &[("x", b"1")])),
        SlotChange::Remove {
            slot: "prefs".into(),
        },
        SlotChange::Fields {
            slot: "cart".into(),
            version: 1,
            format: Format::Json,
            fields: vec![("a".into(), Bytes::from_static(b"2"))],
        },
    ]
    .into_iter()
    .collect();
    match store.save(&key, &changes, deadline_in(600)).await {
        Err(StoreError::Apply(ApplyError::SlotChanged {
            slot,
            expected_version: 1,
            stored_version: 2,
            ..
        })) => assert_eq!(slot, "cart"),
        other => panic!("expected SlotChanged, got {other:?}"),
    }
    let missing: Changeset = [SlotChange::Fields {
        slot: "gone".into(),
        version: 1,
        format: Format::Json,
        fields: vec![("a".into(), Bytes::from_static(b"2"))],
    }]
    .into_iter()
    .collect();
    assert!(matches!(
        store.save(&key, &missing, deadline_in(600)).await,
        Err(StoreError::Apply(ApplyError::SlotMissing { .. }))
    ));
    assert_eq!(store.load(&key).await.unwrap().unwrap().record, original);
}

/// A hash that is not a session's is a `Record` error, not a panic and not an empty session.
#[tokio::test]
async fn a_malformed_hash_is_a_record_error() {
    let Some(url) = redis_url() else { return };
    let guard = PrefixGuard::new(&url, "malformed");
    let store = store(&url, &guard).await;
    let mut conn = plain_connection(&url).await;
    let cases: [&[(&str, &[u8])]; 5] = [
        &[("c", b"1"), ("s", b"")],                    // no expiry
        &[("c", b"x"), ("e", b"1"), ("s", b"")],       // not a number
        &[("c", b"1"), ("e", b"1"), ("s", b"9:cart")], // broken slot list
        &[("c", b"1"), ("e", b"1"), ("s", b"4:cart")], // slot without header
        &[
            ("c", b"1"),
            ("e", b"1"),
            ("s", b"4:cart"),
            ("h:cart", b"1:1:cart"),
            ("o:cart", b"1:n"),
        ], // field missing
    ];
    for (i, entries) in cases.iter().enumerate() {
        let key = fresh_key();
        let mut cmd = redis::cmd("HSET");
        cmd.arg(store.redis_key(&key));
        for (name, value) in entries.iter() {
            cmd.arg(*name).arg(*value);
        }
        cmd.query_async::<i64>(&mut conn).await.unwrap();
        match store.load(&key).await {
            Err(StoreError::Record(_)) => {}
            other => panic!("case {i}: expected a Record error, got {other:?}"),
        }
    }
    // Another type of key under the name is a backend error (WRONGTYPE), not a panic.
    let key = fresh_key();
    redis::cmd("SET")
        .arg(store.redis_key(&key))
        .arg("text")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    assert!(matches!(
        store.load(&key).await,
        Err(StoreError::Backend(_))
    ));
}

// ---- eager migration: v1 → v2 → v3 --------------------------------------------------------------

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Item {
    sku: String,
    qty: u32,
}

#[derive(Session, Default, Debug)]
#[session(name = "cart", version = 1)]
struct CartV1 {
    skus: Vec<String>,
}

#[derive(Session, Default, Debug)]
#[session(name = "cart", version = 2, migrate_from = CartV1)]
struct CartV2 {
    items: Vec<Item>,
}

#[derive(Session, Default, Debug)]
#[session(name = "cart", version = 3, migrate_from = CartV2)]
struct Cart {
    items: Vec<Item>,
    coupon: Option<String>,
}

impl From<CartV1> for CartV2 {
    fn from(old: CartV1) -> Self {
        let items = old
            .skus
            .into_iter()
            .map(|sku| Item { sku, qty: 1 })
            .collect();
        CartV2 { items }
    }
}

impl From<CartV2> for Cart {
    fn from(old: CartV2) -> Self {
        Cart {
            items: old.items,
            coupon: Some("MIGRATED".into()),
        }
    }
}

fn json(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

#[tokio::test]
async fn migrate_all_rewrites_older_slots_and_leaves_the_rest() {
    let Some(url) = redis_url() else { return };
    let guard = PrefixGuard::new(&url, "migrate");
    let store = store(&url, &guard).await;
    let prefs = slot("prefs", 1, Format::Json, &[("dark", b"true")]);
    let deadline = deadline_in(3600);
    let mut created = Vec::new();
    let add = async |cart: Option<Slot>| {
        let key = fresh_key();
        let mut slots = vec![prefs.clone()];
        slots.extend(cart);
        store.create(&key, &record(slots), deadline).await.unwrap();
        key
    };
    for n in 0..3 {
        let skus = json(&vec![format!("sku{n}")]);
        created.push((
            "v1",
            add(Some(slot("cart", 1, Format::Json, &[("skus", &skus)]))).await,
        ));
    }
    for n in 0..2 {
        let items = json(&vec![Item {
            sku: format!("v2-{n}"),
            qty: 5,
        }]);
        created.push((
            "v2",
            add(Some(slot("cart", 2, Format::Json, &[("items", &items)]))).await,
        ));
    }
    let items = json(&Vec::<Item>::new());
    let current = slot(
        "cart",
        3,
        Format::Json,
        &[("items", &items), ("coupon", b"null")],
    );
    created.push(("v3", add(Some(current)).await));
    let future = slot("cart", 4, Format::Json, &[("whatever", b"1")]);
    created.push(("v4", add(Some(future.clone())).await));
    let garbage = slot("cart", 1, Format::Json, &[("skus", b"{not json")]);
    created.push(("bad", add(Some(garbage.clone())).await));
    created.push(("none", add(None).await));

    let started = Instant::now();
    let report = store.migrate_all::<Cart>(Format::Json).await.unwrap();
    println!(
        "migrate_all over {} sessions: {:?}",
        created.len(),
        started.elapsed()
    );
    assert_eq!(
        report,
        MigrationReport {
            migrated: [(1, 3), (2, 2)].into_iter().collect(),
            current: 1,
            failed: 2,
        }
    );

    let mut registry = sessions::Registry::new();
    registry.register::<Cart>().unwrap();
    for (n, (kind, key)) in created.iter().enumerate() {
        let stored = store.load(key).await.unwrap().unwrap();
        assert_eq!(
            stored.record.slot("prefs"),
            Some(&prefs),
            "{kind}: prefs untouched"
        );
        assert_eq!(
            ms(stored.deadline.expires_at),
            ms(deadline.expires_at),
            "{kind}: deadline kept"
        );
        let cart = stored.record.slot("cart");
        match *kind {
            "v1" => {
                assert_eq!(cart.unwrap().version(), 3);
                let cart = registry.load::<Cart>(&stored.record).unwrap().unwrap();
                assert_eq!(
                    cart.items(),
                    &vec![Item {
                        sku: format!("sku{n}"),
                        qty: 1
                    }]
                );
                assert_eq!(cart.coupon().as_deref(), Some("MIGRATED"));
            }
            "v2" => {
                let cart = registry.load::<Cart>(&stored.record).unwrap().unwrap();
                assert_eq!(cart.items()[0].qty, 5);
                assert_eq!(stored.record.slot("cart").unwrap().version(), 3);
            }
            "v3" => assert_eq!(cart.unwrap().version(), 3),
            "v4" => assert_eq!(cart, Some(&future), "a future version is left as it is"),
            "bad" => assert_eq!(cart, Some(&garbage), "undecodable data is left as it is"),
            _ => assert!(cart.is_none()),
        }
    }
    let mut conn = plain_connection(&url).await;
    let ttl: i64 = redis::cmd("PTTL")
        .arg(store.redis_key(&created[0].1))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 0, "a migrated session keeps its expiry (PTTL {ttl})");

    let again = store.migrate_all::<Cart>(Format::Json).await.unwrap();
    assert_eq!(
        again,
        MigrationReport {
            migrated: Default::default(),
            current: 6,
            failed: 2,
        }
    );
}

// ---- a server of the test's own, killed and restarted -------------------------------------------

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
    let cookie = response
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned);
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

/// The app keeps running when Redis goes away: requests that need the session get a 503 that
/// says why, within seconds; when Redis is back on the same port, the same app serves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_survives_a_redis_outage() {
    if !have_binaries(false, "the Redis outage test") {
        return;
    }
    let dir = TempDir::new("redis-fault");
    let mut server = RedisServer::start(dir.path(), "fault", &[]);
    let store = RedisStore::connect(server.url()).await.unwrap();
    let app = Router::new()
        .route("/hit", get(hit))
        .layer(SessionLayer::new(store).register::<Counter>());

    let first = call(&app, None).await;
    assert_eq!((first.status, first.body.as_str()), (StatusCode::OK, "1"));
    let cookie = first.cookie.expect("a session cookie");
    let second = call(&app, Some(&cookie)).await;
    assert_eq!((second.status, second.body.as_str()), (StatusCode::OK, "2"));

    server.kill();
    let outage = Instant::now();
    for attempt in 0..3 {
        let reply = call(&app, Some(&cookie)).await;
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "attempt {attempt}: {}",
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
            "down, with a cookie: 503 in {:?}: {}",
            reply.took, reply.body
        );
    }
    // A new visitor's session cannot be filed either: the handler ran, but its response must not
    // look successful.
    let reply = call(&app, None).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert!(reply.body.contains("session not saved"), "{}", reply.body);
    assert!(reply.took < Duration::from_secs(5), "took {:?}", reply.took);
    println!("down, new visitor: 503 in {:?}: {}", reply.took, reply.body);
    println!("outage checks took {:?}", outage.elapsed());

    // Outlast the connection's own reconnect attempts (about a second), so the first request
    // after the restart finds a connection that gave up, as after any longer outage.
    tokio::time::sleep(Duration::from_secs(2)).await;
    server.restart();
    let back = Instant::now();
    // The restarted server is empty (no persistence): the old cookie starts a new session.
    let reply = call(&app, Some(&cookie)).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "1"),
        "first request after the restart"
    );
    let cookie = reply.cookie.expect("a new session cookie");
    let reply = call(&app, Some(&cookie)).await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "2"));
    println!(
        "back: two requests served {:?} after the restart",
        back.elapsed()
    );
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
