//! The HTTP flow through a real `Router`: the cookie is set only when something changed, the
//! store is touched only when a handler asks, and a save carries only what changed.

mod http_common;

use http::StatusCode;
use http::header::CACHE_CONTROL;
use sessions::prelude::*;
use sessions::{Format, SlotChange};

use http_common::{
    CountingStore, Counts, NO_CART, app, attributes, changed_fields, get_with, max_age, post_with,
};

fn counting_app() -> (CountingStore, axum::Router) {
    let store = CountingStore::new(MemoryStore::new());
    let app = app(SessionLayer::new(store.clone()));
    (store, app)
}

#[tokio::test]
async fn a_write_sets_one_secure_cookie_with_max_age_and_no_store() {
    let (store, app) = counting_app();
    let reply = post_with(&app, "/cart/apple", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let set_cookie = reply.the_set_cookie();
    let attributes = attributes(&set_cookie);
    for expected in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(
            attributes.contains(&expected),
            "{expected} missing from {set_cookie}"
        );
    }
    assert!(set_cookie.starts_with("session="), "{set_cookie}");
    // 24 hours by default.
    assert_eq!(max_age(&set_cookie), Some(24 * 3600), "{set_cookie}");
    assert_eq!(reply.header(CACHE_CONTROL.as_str()), Some("no-store"));
    // A new session: created once, nothing else.
    assert_eq!(
        store.counts(),
        Counts {
            create: 1,
            ..Counts::NONE
        }
    );
    let stored = store.stored(&reply.cookie()).await.expect("created");
    assert!(stored.record.slot("cart").is_some());
}

#[tokio::test]
async fn a_read_only_request_sets_no_cookie_and_writes_nothing() {
    let (store, app) = counting_app();
    let cookie = post_with(&app, "/cart/apple", None).await.cookie();
    let before = store.counts();
    let stored_before = store.stored(&cookie).await;

    let reply = get_with(&app, "/cart", Some(&cookie)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "items=apple coupon=- visits=0");
    assert!(reply.set_cookies().is_empty(), "{:?}", reply.set_cookies());
    assert_eq!(reply.header(CACHE_CONTROL.as_str()), None);
    assert_eq!(
        store.counts().since(before),
        Counts {
            load: 1,
            ..Counts::NONE
        }
    );
    assert_eq!(store.stored(&cookie).await, stored_before);
}

#[tokio::test]
async fn a_read_only_request_without_a_session_creates_nothing() {
    let (store, app) = counting_app();
    let reply = get_with(&app, "/cart", None).await;
    assert_eq!(reply.body, NO_CART);
    assert!(reply.set_cookies().is_empty());
    // No cookie: nothing to load, nothing to create.
    assert_eq!(store.counts(), Counts::NONE);
    assert!(store.inner().is_empty());
}

#[tokio::test]
async fn a_handler_that_extracts_nothing_costs_no_store_call() {
    let (store, app) = counting_app();
    let cookie = post_with(&app, "/cart/apple", None).await.cookie();
    let before = store.counts();
    for cookie in [None, Some(cookie.as_str())] {
        let reply = get_with(&app, "/nothing", cookie).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(reply.set_cookies().is_empty());
    }
    assert_eq!(store.counts().since(before), Counts::NONE);
}

#[tokio::test]
async fn two_slots_and_the_handle_load_the_record_once() {
    let (store, app) = counting_app();
    let cookie = post_with(&app, "/all", None).await.cookie();
    let before = store.counts();
    let reply = get_with(&app, "/all", Some(&cookie)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        reply.body,
        "items=both coupon=- visits=0 dark=true lang=fr stored=true"
    );
    assert_eq!(
        store.counts().since(before),
        Counts {
            load: 1,
            ..Counts::NONE
        }
    );
    assert!(reply.set_cookies().is_empty());
}

#[tokio::test]
async fn an_optional_slot_is_none_when_nothing_is_stored() {
    let (_store, app) = counting_app();
    // No session at all.
    assert_eq!(get_with(&app, "/cart", None).await.body, NO_CART);
    assert_eq!(get_with(&app, "/prefs", None).await.body, "no prefs");
    // A session that holds a cart but no prefs.
    let cookie = post_with(&app, "/cart/apple", None).await.cookie();
    assert_eq!(
        get_with(&app, "/prefs", Some(&cookie)).await.body,
        "no prefs"
    );
    assert_ne!(get_with(&app, "/cart", Some(&cookie)).await.body, NO_CART);
}

#[tokio::test]
async fn two_slots_written_in_one_handler_are_both_saved() {
    let (store, app) = counting_app();
    let reply = post_with(&app, "/all", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let cookie = reply.cookie();
    assert_eq!(store.counts().create, 1);
    let stored = store.stored(&cookie).await.expect("created");
    assert!(stored.record.slot("cart").is_some());
    assert!(stored.record.slot("prefs").is_some());

    // The next request sees both.
    assert_eq!(
        get_with(&app, "/cart", Some(&cookie)).await.body,
        "items=both coupon=- visits=0"
    );
    assert_eq!(
        get_with(&app, "/prefs", Some(&cookie)).await.body,
        "dark=true lang=fr"
    );

    // Writing both again on the stored session saves both, in one save.
    let before = store.counts();
    let reply = post_with(&app, "/all", Some(&cookie)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        store.counts().since(before),
        Counts {
            load: 1,
            save: 1,
            ..Counts::NONE
        }
    );
    let saves = store.saves();
    let (_, changes, _) = saves.last().expect("one save");
    let mut slots: Vec<&str> = changes.iter().map(SlotChange::slot_name).collect();
    slots.sort_unstable();
    assert_eq!(slots, ["cart", "prefs"]);
}

#[tokio::test]
async fn only_the_changed_field_is_saved() {
    let (store, app) = counting_app();
    let cookie = post_with(&app, "/cart/apple", None).await.cookie();
    let reply = post_with(&app, "/coupon/WELCOME", Some(&cookie)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "items=apple coupon=WELCOME visits=0");

    {
        let saves = store.saves();
        assert_eq!(saves.len(), 1, "one save");
        let (key, changes, _) = &saves[0];
        assert_eq!(key, &http_common::key_of(&cookie));
        assert_eq!(changes.len(), 1, "{changes:?}");
        let change = changes.iter().next().expect("one change");
        assert_eq!(
            changed_fields(change),
            Some(("cart", vec!["coupon"])),
            "{change:?}"
        );
        let SlotChange::Fields {
            version,
            format,
            fields,
            ..
        } = change
        else {
            unreachable!("checked above");
        };
        assert_eq!((*version, *format), (1, Format::Json));
        assert_eq!(&fields[0].1[..], b"\"WELCOME\"");
    }

    // The stored cart has the new coupon and kept its items.
    assert_eq!(
        get_with(&app, "/cart", Some(&cookie)).await.body,
        "items=apple coupon=WELCOME visits=0"
    );
}

#[tokio::test]
async fn a_write_to_a_stored_session_saves_under_the_same_id() {
    let (store, app) = counting_app();
    let cookie = post_with(&app, "/cart/apple", None).await.cookie();
    let reply = post_with(&app, "/cart/pear", Some(&cookie)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(store.counts().save, 1);
    assert_eq!(
        get_with(&app, "/cart", Some(&cookie)).await.body,
        "items=apple,pear coupon=- visits=0"
    );
    // Whether a Set-Cookie is sent here is the layer's choice; when it is, it keeps the id.
    for set_cookie in reply.set_cookies() {
        assert_eq!(http_common::cookie_value(&set_cookie), cookie);
    }
}
