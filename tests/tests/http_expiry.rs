//! Expiry through a real `Router`, on a `ManualClock` shared by the layer and the store: idle
//! (rolling), absolute, both, browser-session cookies, the refresh share, and a session's own
//! policy set with `SessionHandle::set_expiry` ("remember me").

mod http_common;

use std::time::Duration;

use axum::Router;
use axum::routing::post;
use http::StatusCode;
use sessions::prelude::*;
use sessions::{Expiry, ManualClock};

use http_common::{
    Browser, Cart, CountingStore, Counts, NO_CART, Prefs, app, get_with, max_age, post_with, routes,
};

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The common app on a store and layer that share `clock`, with `expiry`.
fn app_on(clock: &ManualClock, expiry: Expiry) -> (CountingStore, Router) {
    let store = CountingStore::new(MemoryStore::with_clock(clock.clone()));
    let layer = SessionLayer::new(store.clone())
        .clock(clock.clone())
        .expiry(expiry);
    (store, app(layer))
}

#[tokio::test]
async fn idle_expiry_read_activity_keeps_the_session_alive() {
    let clock = ManualClock::new();
    let (_store, app) = app_on(&clock, Expiry::idle(secs(100)));
    let mut browser = Browser::new(clock.clone());
    let reply = browser.post(&app, "/cart/apple").await;
    assert_eq!(max_age(&reply.the_set_cookie()), Some(100));

    // A read every 30 s, for 300 s: three times the idle time.
    for round in 0..10 {
        clock.advance(secs(30));
        let reply = browser.get(&app, "/cart").await;
        assert_eq!(
            reply.body, "items=apple coupon=- visits=0",
            "round {round}: session lost while active"
        );
    }
}

#[tokio::test]
async fn idle_expiry_write_activity_keeps_the_session_alive() {
    // Writes more often than the refresh share: the server-side deadline moves on every save,
    // and the browser's cookie must move with it, or the browser drops a live session.
    let clock = ManualClock::new();
    let (_store, app) = app_on(&clock, Expiry::idle(secs(100)));
    let mut browser = Browser::new(clock.clone());
    browser.post(&app, "/cart/a").await;
    for round in 0..10 {
        clock.advance(secs(20));
        assert!(
            browser.cookie().is_some(),
            "round {round}: the browser's cookie expired although the user is active"
        );
        let reply = browser.post(&app, &format!("/cart/r{round}")).await;
        assert!(
            reply.body.starts_with("items=a,r0"),
            "round {round}: session lost while active: {}",
            reply.body
        );
    }
}

#[tokio::test]
async fn idle_expiry_inactivity_ends_the_session() {
    let clock = ManualClock::new();
    let (store, app) = app_on(&clock, Expiry::idle(secs(100)));
    let cookie = post_with(&app, "/cart/apple", None).await.cookie();

    clock.advance(secs(99));
    assert_ne!(get_with(&app, "/cart", Some(&cookie)).await.body, NO_CART);

    // That read refreshed the deadline to 99 + 100; 100 s of silence ends it.
    clock.advance(secs(100));
    let reply = get_with(&app, "/cart", Some(&cookie)).await;
    assert_eq!(reply.body, NO_CART, "the session outlived its idle time");
    assert!(reply.set_cookies().is_empty());
    assert!(store.stored(&cookie).await.is_none());
    // A write now starts a fresh session under a new id.
    let fresh = post_with(&app, "/cart/pear", Some(&cookie)).await;
    assert_eq!(fresh.body, "items=pear coupon=- visits=0");
    assert_ne!(fresh.cookie(), cookie);
}

#[tokio::test]
async fn absolute_expiry_ends_the_session_despite_activity() {
    let clock = ManualClock::new();
    let (_store, app) = app_on(&clock, Expiry::absolute(secs(100)));
    let created = post_with(&app, "/cart/a", None).await;
    assert_eq!(max_age(&created.the_set_cookie()), Some(100));
    let cookie = created.cookie();

    // Activity every 30 s, reads and writes.
    for round in 1..=3 {
        clock.advance(secs(30));
        let write = post_with(&app, &format!("/cart/w{round}"), Some(&cookie)).await;
        assert_eq!(write.status, StatusCode::OK);
        // A cookie sent now never outlives the absolute limit.
        for set_cookie in write.set_cookies() {
            assert!(
                max_age(&set_cookie) <= Some(100 - 30 * round),
                "{set_cookie}"
            );
        }
        assert_ne!(get_with(&app, "/cart", Some(&cookie)).await.body, NO_CART);
    }
    clock.advance(secs(9)); // 99 s after creation
    assert_ne!(get_with(&app, "/cart", Some(&cookie)).await.body, NO_CART);
    clock.advance(secs(1)); // created + absolute
    assert_eq!(
        get_with(&app, "/cart", Some(&cookie)).await.body,
        NO_CART,
        "the session outlived its absolute limit"
    );
}

#[tokio::test]
async fn idle_and_absolute_whichever_comes_first() {
    let clock = ManualClock::new();
    let policy = Expiry::idle_and_absolute(secs(30), secs(100));

    // Inactivity ends it before the absolute limit.
    let (_store, app) = app_on(&clock, policy);
    let cookie = post_with(&app, "/cart/a", None).await.cookie();
    clock.advance(secs(30));
    assert_eq!(get_with(&app, "/cart", Some(&cookie)).await.body, NO_CART);

    // Activity every 20 s keeps it alive until the absolute limit, and not a second longer.
    let mut browser = Browser::new(clock.clone());
    browser.post(&app, "/cart/b").await;
    for round in 1..=4 {
        clock.advance(secs(20));
        let reply = browser.get(&app, "/cart").await;
        assert_eq!(reply.body, "items=b coupon=- visits=0", "round {round}");
        if round == 4 {
            // 80 s in: idle would reach 110, the absolute limit caps it at 100.
            assert_eq!(max_age(&reply.the_set_cookie()), Some(20));
        }
    }
    let cookie = browser.cookie().expect("alive at 80 s").to_owned();
    clock.advance(secs(20)); // created + 100
    assert_eq!(get_with(&app, "/cart", Some(&cookie)).await.body, NO_CART);
}

#[tokio::test]
async fn browser_session_cookies_have_no_max_age_but_end_server_side() {
    let clock = ManualClock::new();
    let (_store, app) = app_on(&clock, Expiry::browser_session(secs(100)));
    let reply = post_with(&app, "/cart/apple", None).await;
    let set_cookie = reply.the_set_cookie();
    assert_eq!(max_age(&set_cookie), None, "{set_cookie}");
    assert!(
        !set_cookie.to_ascii_lowercase().contains("expires"),
        "{set_cookie}"
    );
    let cookie = reply.cookie();

    // A refresh does not add a Max-Age either.
    clock.advance(secs(60));
    let refreshed = get_with(&app, "/cart", Some(&cookie)).await;
    assert_ne!(refreshed.body, NO_CART);
    for set_cookie in refreshed.set_cookies() {
        assert_eq!(max_age(&set_cookie), None, "{set_cookie}");
    }
    // Server-side it still ends after its idle time.
    clock.advance(secs(100));
    assert_eq!(get_with(&app, "/cart", Some(&cookie)).await.body, NO_CART);
}

#[tokio::test]
async fn a_read_refreshes_the_expiry_only_once_the_share_has_passed() {
    let clock = ManualClock::new();
    let (store, app) = app_on(&clock, Expiry::idle(secs(100)).refresh_share(0.5));
    let cookie = post_with(&app, "/cart/apple", None).await.cookie();
    let created = store.stored(&cookie).await.expect("created").deadline;

    // 40 s in: under half the idle time. No cookie, no save.
    clock.advance(secs(40));
    let before = store.counts();
    let reply = get_with(&app, "/cart", Some(&cookie)).await;
    assert_ne!(reply.body, NO_CART);
    assert!(reply.set_cookies().is_empty(), "{:?}", reply.set_cookies());
    assert_eq!(
        store.counts().since(before),
        Counts {
            load: 1,
            ..Counts::NONE
        }
    );
    assert_eq!(
        store.stored(&cookie).await.expect("alive").deadline,
        created
    );

    // 60 s in: past half. The read refreshes: a save with no changes, and a new cookie.
    clock.advance(secs(20));
    let reply = get_with(&app, "/cart", Some(&cookie)).await;
    assert_ne!(reply.body, NO_CART);
    let set_cookie = reply.the_set_cookie();
    assert_eq!(http_common::cookie_value(&set_cookie), cookie);
    assert_eq!(max_age(&set_cookie), Some(100));
    {
        let saves = store.saves();
        assert_eq!(saves.len(), 1);
        let (_, changes, deadline) = &saves[0];
        assert!(changes.is_empty(), "a refresh saved changes: {changes:?}");
        assert_eq!(deadline.created_at, created.created_at);
        assert_eq!(deadline.expires_at, created.created_at + secs(160));
    }
    // It now lives until 160 s.
    clock.advance(secs(99));
    assert_ne!(get_with(&app, "/cart", Some(&cookie)).await.body, NO_CART);
}

fn remember_routes() -> Router {
    routes()
        .route(
            "/remember",
            post(|session: SessionHandle| async move {
                session.set_expiry(Expiry::idle(secs(30 * 24 * 3600)));
                "remembered"
            }),
        )
        .route(
            "/remember-then-write",
            post(|session: SessionHandle| async move {
                // The policy is set before anything is loaded.
                session.set_expiry(Expiry::idle(secs(30 * 24 * 3600)));
                let mut prefs = session.get_or_default::<Prefs>().await?;
                prefs.set_lang("en".to_owned());
                Ok::<_, sessions::SessionRejection>("remembered, then wrote")
            }),
        )
        .route(
            "/login-remember",
            post(
                |session: SessionHandle, mut prefs: Typed<Prefs>| async move {
                    prefs.set_lang("en".to_owned());
                    session.set_expiry(Expiry::idle(secs(30 * 24 * 3600)));
                    "logged in, remembered"
                },
            ),
        )
}

fn remember_app(clock: &ManualClock) -> (CountingStore, Router) {
    let store = CountingStore::new(MemoryStore::with_clock(clock.clone()));
    let layer = SessionLayer::new(store.clone())
        .clock(clock.clone())
        .expiry(Expiry::idle(secs(3600)))
        .register::<Cart>()
        .register::<Prefs>();
    (store, remember_routes().layer(layer))
}

/// After "remember me" the session outlives the app's idle time, and later requests keep the
/// session's own policy.
async fn check_remembered(clock: &ManualClock, app: &Router, cookie: &str) {
    clock.advance(secs(2 * 3600));
    let reply = get_with(app, "/prefs", Some(cookie)).await;
    assert_eq!(reply.body, "dark=false lang=en", "forgotten after 2 h");
    // That read refreshed with the stored 30-day policy, not the app's hour.
    for set_cookie in reply.set_cookies() {
        assert_eq!(max_age(&set_cookie), Some(30 * 24 * 3600), "{set_cookie}");
    }
    // A later write keeps the session's own policy: 30 days from now, not the app's hour.
    let write = post_with(app, "/coupon/C", Some(cookie)).await;
    assert_eq!(write.status, StatusCode::OK);
    for set_cookie in write.set_cookies() {
        assert_eq!(max_age(&set_cookie), Some(30 * 24 * 3600), "{set_cookie}");
    }
    clock.advance(secs(29 * 24 * 3600));
    assert_eq!(
        get_with(app, "/prefs", Some(cookie)).await.body,
        "dark=false lang=en",
        "forgotten after 29 days"
    );
    clock.advance(secs(31 * 24 * 3600));
    assert_eq!(get_with(app, "/prefs", Some(cookie)).await.body, "no prefs");
}

#[tokio::test]
async fn set_expiry_in_a_writing_handler_persists() {
    let clock = ManualClock::new();
    let (_store, app) = remember_app(&clock);
    let reply = post_with(&app, "/login-remember", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(max_age(&reply.the_set_cookie()), Some(30 * 24 * 3600));
    check_remembered(&clock, &app, &reply.cookie()).await;
}

#[tokio::test]
async fn set_expiry_alone_persists_on_a_stored_session() {
    // A "remember me" toggle on a session that exists: the handler touches only the handle.
    let clock = ManualClock::new();
    let (store, app) = remember_app(&clock);
    let cookie = post_with(&app, "/cart/apple", None).await.cookie();
    let before = store.counts();

    let reply = post_with(&app, "/remember", Some(&cookie)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        store.counts().since(before).save,
        1,
        "\"remember me\" was not saved"
    );
    let set_cookie = reply.the_set_cookie();
    assert_eq!(http_common::cookie_value(&set_cookie), cookie);
    assert_eq!(max_age(&set_cookie), Some(30 * 24 * 3600), "{set_cookie}");

    clock.advance(secs(2 * 3600));
    assert_eq!(
        get_with(&app, "/cart", Some(&cookie)).await.body,
        "items=apple coupon=- visits=0",
        "the session ended after the app's idle hour despite \"remember me\""
    );
    clock.advance(secs(31 * 24 * 3600));
    assert_eq!(get_with(&app, "/cart", Some(&cookie)).await.body, NO_CART);
}

#[tokio::test]
async fn set_expiry_before_the_first_load_persists_on_a_new_session() {
    let clock = ManualClock::new();
    let (_store, app) = remember_app(&clock);
    let reply = post_with(&app, "/remember-then-write", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(max_age(&reply.the_set_cookie()), Some(30 * 24 * 3600));
    check_remembered(&clock, &app, &reply.cookie()).await;
}
