//! A session's life through a real `Router`: `cycle_id()` after login, `destroy()` at logout,
//! a logout that races a slow request, and a failing handler whose changes are not saved.

mod http_common;

use std::sync::Arc;

use axum::Router;
use axum::routing::post;
use http::StatusCode;
use sessions::prelude::*;
use tokio::sync::Notify;

use http_common::{
    Cart, CountingStore, Counts, NO_CART, app, cookie_value, get_with, max_age, post_with, routes,
    show,
};

fn counting_app() -> (CountingStore, Router) {
    let store = CountingStore::new(MemoryStore::new());
    let app = app(SessionLayer::new(store.clone()));
    (store, app)
}

#[tokio::test]
async fn cycle_id_gives_a_new_id_kills_the_old_one_and_keeps_the_data() {
    let (store, app) = counting_app();
    let old = post_with(&app, "/cart/apple", None).await.cookie();

    let reply = post_with(&app, "/login", Some(&old)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let new = reply.cookie();
    assert_ne!(new, old, "cycle_id must hand out another id");
    assert_eq!(new.len(), old.len());

    // The old id no longer loads, in the store or through the app.
    assert!(
        store.stored(&old).await.is_none(),
        "old session still stored"
    );
    let stale = get_with(&app, "/cart", Some(&old)).await;
    assert_eq!(stale.body, NO_CART);
    assert!(stale.set_cookies().is_empty());

    // The data moved, with the change the login request made.
    assert_eq!(
        get_with(&app, "/cart", Some(&new)).await.body,
        "items=apple coupon=- visits=1"
    );
}

#[tokio::test]
async fn cycle_id_without_loading_anything_still_moves_the_data() {
    let store = CountingStore::new(MemoryStore::new());
    let app = routes()
        .route(
            "/cycle",
            post(|session: SessionHandle| async move {
                session.cycle_id();
                "cycled"
            }),
        )
        .layer(SessionLayer::new(store.clone()).register::<Cart>());
    let old = post_with(&app, "/cart/apple", None).await.cookie();
    let reply = post_with(&app, "/cycle", Some(&old)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let new = reply.cookie();
    assert_ne!(new, old);
    assert!(store.stored(&old).await.is_none());
    assert_eq!(get_with(&app, "/cart", Some(&old)).await.body, NO_CART);
    assert_eq!(
        get_with(&app, "/cart", Some(&new)).await.body,
        "items=apple coupon=- visits=0"
    );
}

#[tokio::test]
async fn destroy_deletes_the_record_and_clears_the_cookie() {
    let (store, app) = counting_app();
    let old = post_with(&app, "/cart/apple", None).await.cookie();
    let before = store.counts();

    let reply = post_with(&app, "/logout", Some(&old)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let removal = reply.the_set_cookie();
    assert_eq!(cookie_value(&removal), "", "{removal}");
    assert_eq!(max_age(&removal), Some(0), "{removal}");
    assert!(removal.contains("Path=/"), "{removal}");
    assert_eq!(store.counts().since(before).delete, 1);
    assert!(store.stored(&old).await.is_none(), "record not deleted");
    assert!(store.inner().is_empty());

    // The old cookie, replayed, gets a fresh session.
    assert_eq!(get_with(&app, "/cart", Some(&old)).await.body, NO_CART);
    let reply = post_with(&app, "/cart/pear", Some(&old)).await;
    assert_eq!(reply.body, "items=pear coupon=- visits=0");
    let fresh = reply.cookie();
    assert_ne!(
        fresh, old,
        "a fresh session never takes the id the client sent"
    );
}

/// Two gates a slow handler stops at: it says when it has loaded, and waits to be let go.
#[derive(Default)]
struct Gate {
    loaded: Notify,
    proceed: Notify,
}

#[tokio::test]
async fn a_destroy_racing_a_slow_save_stays_destroyed() {
    let store = CountingStore::new(MemoryStore::new());
    let gate = Arc::new(Gate::default());
    let slow_gate = gate.clone();
    let app = routes()
        .route(
            "/slow",
            post(move |mut cart: Typed<Cart>| {
                let gate = slow_gate.clone();
                async move {
                    gate.loaded.notify_one();
                    gate.proceed.notified().await;
                    cart.items_mut().push("late".to_owned());
                    cart.set_coupon(Some("REVIVE".to_owned()));
                    show(cart.value())
                }
            }),
        )
        .layer(SessionLayer::new(store.clone()).register::<Cart>());
    let cookie = post_with(&app, "/cart/apple", None).await.cookie();

    // A loads, then blocks in its handler.
    let slow = tokio::spawn({
        let app = app.clone();
        let cookie = cookie.clone();
        async move { post_with(&app, "/slow", Some(&cookie)).await }
    });
    gate.loaded.notified().await;

    // B logs out meanwhile.
    let logout = post_with(&app, "/logout", Some(&cookie)).await;
    assert_eq!(logout.status, StatusCode::OK);
    assert_eq!(max_age(&logout.the_set_cookie()), Some(0));
    assert!(store.stored(&cookie).await.is_none());

    // A writes and finishes.
    gate.proceed.notify_one();
    let slow = slow.await.expect("the slow request does not panic");
    assert_eq!(slow.body, "items=apple,late coupon=REVIVE visits=0");

    // The session is still gone, and A's response hands out no cookie that revives it.
    assert!(
        store.stored(&cookie).await.is_none(),
        "A revived the session"
    );
    assert!(store.inner().is_empty(), "A filed a new session");
    for set_cookie in slow.set_cookies() {
        assert!(
            cookie_value(&set_cookie).is_empty(),
            "A's response sets a live cookie: {set_cookie}"
        );
    }
    assert_eq!(get_with(&app, "/cart", Some(&cookie)).await.body, NO_CART);
}

#[tokio::test]
async fn a_5xx_response_saves_nothing_for_a_new_session() {
    let (store, app) = counting_app();
    let reply = post_with(&app, "/fail/apple", None).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.body, "the handler failed");
    assert!(reply.set_cookies().is_empty(), "{:?}", reply.set_cookies());
    assert_eq!(store.counts(), Counts::NONE);
    assert!(store.inner().is_empty());
}

#[tokio::test]
async fn a_5xx_response_saves_nothing_for_a_stored_session() {
    let (store, app) = counting_app();
    let cookie = post_with(&app, "/cart/apple", None).await.cookie();
    let stored = store.stored(&cookie).await;
    let before = store.counts();

    let reply = post_with(&app, "/fail/pear", Some(&cookie)).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(reply.set_cookies().is_empty());
    assert_eq!(
        store.counts().since(before),
        Counts {
            load: 1,
            ..Counts::NONE
        }
    );
    assert_eq!(store.stored(&cookie).await, stored);
    assert_eq!(
        get_with(&app, "/cart", Some(&cookie)).await.body,
        "items=apple coupon=- visits=0"
    );
}

#[tokio::test]
async fn removing_a_slot_through_the_handle_alone_removes_it() {
    let store = CountingStore::new(MemoryStore::new());
    let app = routes()
        .route(
            "/forget-cart",
            post(|session: SessionHandle| async move {
                session.remove::<Cart>();
                "forgotten"
            }),
        )
        .layer(
            SessionLayer::new(store.clone())
                .register::<Cart>()
                .register::<http_common::Prefs>(),
        );
    let cookie = post_with(&app, "/all", None).await.cookie();
    let reply = post_with(&app, "/forget-cart", Some(&cookie)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(store.counts().save, 1, "the removal was not saved");
    assert_eq!(get_with(&app, "/cart", Some(&cookie)).await.body, NO_CART);
    // The other slot is untouched.
    assert_eq!(
        get_with(&app, "/prefs", Some(&cookie)).await.body,
        "dark=true lang=fr"
    );
}
