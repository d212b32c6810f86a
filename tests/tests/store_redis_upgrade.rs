//! `RedisStore` upgrades and migrations against the shared server at `SESSIONS_TEST_REDIS_URL`:
//! sessions written by the previous layout (the fixture `tests/fixtures/layout_v0/redis.json`,
//! written by the old store) convert on load and by `migrate()`, broken old sessions lose only
//! their broken slot, and `migrate_all` moves stored slots to the current version.
#![allow(clippy::unwrap_used)]

mod redis_common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sessions::Format;
use sessions::error::StoreError;
use sessions::migrate::MigrationReport;
use sessions::prelude::*;
use sessions::store::{Entry, Stored};
use sessions::store::{Record, SessionKey, Slot};

use redis_common::{
    PrefixGuard, base64, fresh_key, live, plain_connection, record, redis_url, revisions, slot,
    store,
};

fn ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

async fn type_of(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> String {
    redis::cmd("TYPE").arg(key).query_async(conn).await.unwrap()
}

// ---- the upgrade from the old layout -------------------------------------------------------------

/// The fixture's sessions (written by the old store, a hash per session), restored under this
/// test's prefix with their expiry; returns (redis key, manifest entry) pairs.
async fn restore_fixture(url: &str, prefix: &str) -> Vec<(String, serde_json::Value)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/layout_v0");
    let dump: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}/redis.json")).unwrap())
            .unwrap();
    let manifest: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}/manifest.json")).unwrap())
            .unwrap();
    let mut conn = plain_connection(url).await;
    let mut restored = Vec::new();
    for hash in dump {
        let old_key = hash["key"].as_str().unwrap();
        let session_key = old_key
            .strip_prefix("fixture_v0:{")
            .and_then(|k| k.strip_suffix('}'))
            .unwrap();
        let key = format!("{prefix}{{{session_key}}}");
        let mut hset = redis::cmd("HSET");
        hset.arg(&key);
        for pair in hash["fields"].as_array().unwrap() {
            hset.arg(base64(pair[0].as_str().unwrap()))
                .arg(base64(pair[1].as_str().unwrap()));
        }
        hset.query_async::<i64>(&mut conn).await.unwrap();
        redis::cmd("PEXPIREAT")
            .arg(&key)
            .arg(hash["expire_at_ms"].as_u64().unwrap())
            .query_async::<i64>(&mut conn)
            .await
            .unwrap();
        let entry = manifest
            .iter()
            .find(|m| m["key"].as_str() == Some(session_key))
            .unwrap()
            .clone();
        restored.push((key, entry));
    }
    assert_eq!(restored.len(), 6, "the fixture's six sessions");
    restored
}

/// A slot as compared: name, type tag, version, format tag, fields.
type SlotView = (String, String, u32, u8, Vec<(String, Vec<u8>)>);

/// What the manifest says the session is: record (with revisions) and deadline.
fn check_against_manifest(stored: &Stored, manifest: &serde_json::Value) {
    let label = manifest["label"].as_str().unwrap();
    let expected = Record::from_bytes(&base64(manifest["record_b64"].as_str().unwrap())).unwrap();
    let slots = |record: &Record| -> Vec<SlotView> {
        record
            .slots()
            .map(|s| {
                (
                    s.name().to_owned(),
                    s.type_tag().to_owned(),
                    s.version(),
                    s.format_tag(),
                    s.fields()
                        .map(|(n, b)| (n.to_owned(), b.to_vec()))
                        .collect(),
                )
            })
            .collect()
    };
    assert_eq!(slots(&stored.record), slots(&expected), "{label}: record");
    let want: Vec<(String, u64)> = manifest["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_str().unwrap().to_owned(), r[1].as_u64().unwrap()))
        .collect();
    assert_eq!(revisions(&stored.record), want, "{label}: revisions");
    assert_eq!(
        ms(stored.deadline.created_at),
        manifest["created_ms"].as_u64().unwrap(),
        "{label}: created_at"
    );
    assert_eq!(
        ms(stored.deadline.expires_at),
        manifest["expires_ms"].as_u64().unwrap(),
        "{label}: expires_at"
    );
}

/// Sessions written by the old layout convert: half lazily on their first load, the rest by
/// `migrate()`; each loads back exactly (record, revisions, deadline), is a string now with
/// its expiry kept, and takes saves.
#[tokio::test]
async fn sessions_of_the_old_layout_convert_on_load_and_by_migrate() {
    let Some(url) = redis_url() else { return };
    let guard = PrefixGuard::new(&url, "upgrade");
    let store = store(&url, &guard).await;
    let restored = restore_fixture(&url, &guard.prefix).await;
    let mut conn = plain_connection(&url).await;
    let key_of = |redis_key: &str| {
        SessionKey::from_stored(
            redis_key
                .strip_prefix(&format!("{}{{", guard.prefix))
                .and_then(|k| k.strip_suffix('}'))
                .unwrap(),
        )
        .unwrap()
    };
    for (redis_key, manifest) in &restored[..3] {
        assert_eq!(type_of(&mut conn, redis_key).await, "hash");
        let entry = store
            .load(&key_of(redis_key))
            .await
            .unwrap()
            .expect("converted on load");
        let Entry::Live { version, session } = entry else {
            panic!("a live session")
        };
        assert_eq!(version, 1);
        check_against_manifest(&session, manifest);
        assert_eq!(
            type_of(&mut conn, redis_key).await,
            "string",
            "replaced by its entry"
        );
    }
    assert_eq!(store.migrate().await.unwrap(), 3, "the other three");
    assert_eq!(store.migrate().await.unwrap(), 0, "nothing left to convert");
    for (redis_key, manifest) in &restored {
        assert_eq!(type_of(&mut conn, redis_key).await, "string");
        let expire: i64 = redis::cmd("PEXPIRETIME")
            .arg(redis_key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            expire as u64,
            manifest["expires_ms"].as_u64().unwrap(),
            "expiry kept"
        );
        let key = key_of(redis_key);
        let Some(Entry::Live { version, session }) = store.load(&key).await.unwrap() else {
            panic!("a live session")
        };
        check_against_manifest(&session, manifest);
        // A converted session takes saves like any other.
        let mut next = session.clone();
        next.record.insert(
            Slot::new(
                "added",
                1,
                Format::Json,
                vec![("x".into(), Bytes::from_static(b"1"))],
            )
            .with_revision(1),
        );
        assert!(
            store
                .swap(
                    &key,
                    Some(version),
                    Some(Entry::Live {
                        version: version + 1,
                        session: next.clone()
                    })
                )
                .await
                .unwrap()
        );
        let Some(Entry::Live { session: saved, .. }) = store.load(&key).await.unwrap() else {
            panic!("saved")
        };
        assert_eq!(saved, next);
    }
}

/// The old layout's broken hashes (issue 12): a missing field entry loses that slot only, the
/// rest of the session converts; a broken deadline or slot list is a `Record` error.
#[tokio::test]
async fn a_broken_slot_of_an_old_session_loses_only_that_slot() {
    let Some(url) = redis_url() else { return };
    let guard = PrefixGuard::new(&url, "legacy-broken");
    let store = store(&url, &guard).await;
    let mut conn = plain_connection(&url).await;
    let far = (SystemTime::now() + Duration::from_secs(600))
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    let hset = async |conn: &mut redis::aio::MultiplexedConnection,
                      key: &SessionKey,
                      pairs: &[(&str, &str)]| {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(store.redis_key(key));
        for (k, v) in pairs {
            cmd.arg(*k).arg(*v);
        }
        cmd.query_async::<i64>(conn).await.unwrap();
    };
    let key = fresh_key();
    hset(
        &mut conn,
        &key,
        &[
            ("c", "1000"),
            ("e", &far),
            ("s", "4:cart5:prefs"),
            ("h:cart", "1:1:cart"),
            ("o:cart", "1:n"), // the field entry `f:4:cart:n` is missing
            ("h:prefs", "1:1:prefs"),
            ("o:prefs", "4:dark"),
            ("f:5:prefs:dark", "true"),
            ("r:prefs", "4"),
        ],
    )
    .await;
    let Some(Entry::Live { session, .. }) = store.load(&key).await.unwrap() else {
        panic!("the session converts")
    };
    assert!(
        session.record.slot("cart").is_none(),
        "the broken slot is dropped"
    );
    let prefs = session.record.slot("prefs").expect("the other slot stays");
    assert_eq!(prefs.field("dark"), Some(&b"true"[..]));
    assert_eq!(prefs.revision(), 4);
    for broken in [
        vec![("c", "1000"), ("s", "")],                            // no end
        vec![("c", "soon"), ("e", far.as_str()), ("s", "")],       // not a time
        vec![("c", "1000"), ("e", far.as_str()), ("s", "9:cart")], // broken slot list
    ] {
        let key = fresh_key();
        hset(&mut conn, &key, &broken).await;
        match store.load(&key).await {
            Err(StoreError::Record(_)) => {}
            other => panic!("{broken:?}: expected a Record error, got {other:?}"),
        }
    }
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
    let prefs = slot("prefs", 1, Format::Json, &[("dark", b"true")]).with_revision(1);
    let mut created = Vec::new();
    let add = async |cart: Option<Slot>| {
        let key = fresh_key();
        let mut slots = vec![prefs.clone()];
        slots.extend(cart.map(|s| s.with_revision(1)));
        assert!(
            store
                .swap(&key, None, Some(live(record(slots), 3600)))
                .await
                .unwrap()
        );
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
    created.push((
        "v3",
        add(Some(slot(
            "cart",
            3,
            Format::Json,
            &[("items", &items), ("coupon", b"null")],
        )))
        .await,
    ));
    let future = slot("cart", 4, Format::Json, &[("whatever", b"1")]).with_revision(1);
    created.push(("v4", add(Some(future.clone())).await));
    let garbage = slot("cart", 1, Format::Json, &[("skus", b"{not json")]).with_revision(1);
    created.push(("bad", add(Some(garbage.clone())).await));
    created.push(("none", add(None).await));

    let report = store.migrate_all::<Cart>(Format::Json).await.unwrap();
    assert_eq!(
        report,
        MigrationReport {
            migrated: [(1, 3), (2, 2)].into_iter().collect(),
            current: 1,
            failed: 2,
        }
    );
    let mut registry = sessions::store::Registry::new();
    registry.register::<Cart>().unwrap();
    for (n, (kind, key)) in created.iter().enumerate() {
        let Some(Entry::Live {
            session: stored, ..
        }) = store.load(key).await.unwrap()
        else {
            panic!("{kind}: live")
        };
        assert_eq!(
            stored.record.slot("prefs"),
            Some(&prefs),
            "{kind}: prefs untouched"
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
            "v2" => assert_eq!(cart.unwrap().version(), 3),
            "v3" => assert_eq!(cart.unwrap().version(), 3),
            "v4" => assert_eq!(cart, Some(&future), "a future version is left as it is"),
            "bad" => assert_eq!(cart, Some(&garbage), "undecodable data is left as it is"),
            _ => assert!(cart.is_none()),
        }
    }
    let again = store.migrate_all::<Cart>(Format::Json).await.unwrap();
    assert_eq!(
        (again.total_migrated(), again.current, again.failed),
        (0, 6, 2)
    );
}
