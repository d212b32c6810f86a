//! Expiry, on a `ManualClock` shared by the layer, the store and the browser: idle (rolling),
//! absolute, both, browser-session cookies, the refresh share, and a session's own policy set
//! with `SessionHandle::set_expiry` ("remember me").
//!
//! The rule since issue 12: the deadline moves only when the refresh is due, the policy changed,
//! or the id changes, and the cookie's `Max-Age` is sent only then. A save alone no longer
//! moves it (nor re-sends the cookie).

use std::time::Duration;

use sessions::clock::ManualClock;
use sessions::testing::{TestClient, Transport};
use sessions::{Expiry, MemoryStore, SessionLayer};

use super::handlers::{NO_CART, REMEMBERED};
use super::support::only_forgets;
use super::support::{get_as, max_age, post_as, the_set_cookie, token};
use super::{App, Calls, RecordingStore, browser, layer};

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A layer on a store that share `clock`, with `expiry`.
fn layer_on(clock: &ManualClock, expiry: Expiry) -> (RecordingStore, SessionLayer) {
    let store = RecordingStore::new(MemoryStore::with_clock(clock.clone()));
    let layer = layer(store.clone()).clock(clock.clone()).expiry(expiry);
    (store, layer)
}

/// A browser whose cookies live on `clock`.
async fn browser_on<A: App>(
    layer: &SessionLayer,
    clock: &ManualClock,
) -> TestClient<impl Transport + Clone + 'static> {
    browser::<A>(layer).await.with_clock(clock.clone())
}

pub(crate) async fn idle_expiry_read_activity_keeps_the_session_alive<A: App>() {
    let clock = ManualClock::new();
    let (_store, layer) = layer_on(&clock, Expiry::idle(secs(100)));
    let client = browser_on::<A>(&layer, &clock).await;
    let response = client.post("/cart/apple").await;
    assert_eq!(max_age(&the_set_cookie(&response)), Some(100));

    // A read every 30 s, for 300 s: three times the idle time.
    for round in 0..10 {
        clock.advance(secs(30));
        let response = client.get("/cart").await;
        assert_eq!(
            response.text(),
            "items=apple coupon=- visits=0",
            "round {round}: session lost while active"
        );
    }
}

/// Changed meaning: writes used to move the deadline (and re-send the cookie) on every save;
/// now they move it, like reads, once the refresh share has passed. What stays: a user who
/// keeps writing is never logged out, and the browser's cookie never outlives its server side
/// nor expires before it.
pub(crate) async fn idle_expiry_write_activity_keeps_the_session_alive<A: App>() {
    let clock = ManualClock::new();
    let (_store, layer) = layer_on(&clock, Expiry::idle(secs(100)));
    let client = browser_on::<A>(&layer, &clock).await;
    client.post("/cart/a").await;
    let mut refreshed = 0;
    for round in 0..10 {
        clock.advance(secs(20));
        assert!(
            client.session(&layer).is_some(),
            "round {round}: the browser's cookie expired although the user is active"
        );
        let response = client.post(&format!("/cart/r{round}")).await;
        assert!(
            response.text().starts_with("items=a,r0"),
            "round {round}: session lost while active: {}",
            response.text()
        );
        for set_cookie in response.set_cookies() {
            assert_eq!(max_age(set_cookie), Some(100), "{set_cookie}");
            refreshed += 1;
        }
    }
    // 200 s of writes every 20 s, a refresh due after 25 s of the 100: a handful, not ten.
    assert!((2..10).contains(&refreshed), "{refreshed} refreshes");
}

pub(crate) async fn idle_expiry_inactivity_ends_the_session<A: App>() {
    let clock = ManualClock::new();
    let (store, layer) = layer_on(&clock, Expiry::idle(secs(100)));
    let client = browser::<A>(&layer).await;
    let id = token(&client.post("/cart/apple").await);

    clock.advance(secs(99));
    assert_ne!(
        get_as(&client, &layer, Some(&id), "/cart").await.text(),
        NO_CART
    );

    // That read refreshed the deadline to 99 + 100; 100 s of silence ends it.
    clock.advance(secs(100));
    let response = get_as(&client, &layer, Some(&id), "/cart").await;
    assert_eq!(
        response.text(),
        NO_CART,
        "the session outlived its idle time"
    );
    // The ended session's cookie is cleared.
    assert!(only_forgets(&response), "{:?}", response.set_cookies());
    assert!(store.entry(&id).await.is_none());
    // A write now starts a fresh session under a new id.
    let fresh = post_as(&client, &layer, Some(&id), "/cart/pear").await;
    assert_eq!(fresh.text(), "items=pear coupon=- visits=0");
    assert_ne!(token(&fresh), id);
}

pub(crate) async fn absolute_expiry_ends_the_session_despite_activity<A: App>() {
    let clock = ManualClock::new();
    let (_store, layer) = layer_on(&clock, Expiry::absolute(secs(100)));
    let client = browser::<A>(&layer).await;
    let created = client.post("/cart/a").await;
    assert_eq!(max_age(&the_set_cookie(&created)), Some(100));
    let id = token(&created);

    // Activity every 30 s, reads and writes.
    for round in 1..=3 {
        clock.advance(secs(30));
        let write = post_as(&client, &layer, Some(&id), &format!("/cart/w{round}")).await;
        assert_eq!(write.status(), 200);
        // A cookie sent now never outlives the absolute limit.
        for set_cookie in write.set_cookies() {
            assert!(
                max_age(set_cookie) <= Some(100 - 30 * round),
                "{set_cookie}"
            );
        }
        assert_ne!(
            get_as(&client, &layer, Some(&id), "/cart").await.text(),
            NO_CART
        );
    }
    clock.advance(secs(9)); // 99 s after creation
    assert_ne!(
        get_as(&client, &layer, Some(&id), "/cart").await.text(),
        NO_CART
    );
    clock.advance(secs(1)); // created + absolute
    assert_eq!(
        get_as(&client, &layer, Some(&id), "/cart").await.text(),
        NO_CART,
        "the session outlived its absolute limit"
    );
}

pub(crate) async fn idle_and_absolute_whichever_comes_first<A: App>() {
    let clock = ManualClock::new();
    let policy = Expiry::idle_and_absolute(secs(30), secs(100));

    // Inactivity ends it before the absolute limit.
    let (_store, layer) = layer_on(&clock, policy);
    let client = browser::<A>(&layer).await;
    let id = token(&client.post("/cart/a").await);
    clock.advance(secs(30));
    assert_eq!(
        get_as(&client, &layer, Some(&id), "/cart").await.text(),
        NO_CART
    );

    // Activity every 20 s keeps it alive until the absolute limit, and not a second longer.
    let active = browser_on::<A>(&layer, &clock).await;
    active.post("/cart/b").await;
    for round in 1..=4 {
        clock.advance(secs(20));
        let response = active.get("/cart").await;
        assert_eq!(
            response.text(),
            "items=b coupon=- visits=0",
            "round {round}"
        );
        if round == 4 {
            // 80 s in: idle would reach 110, the absolute limit caps it at 100.
            assert_eq!(max_age(&the_set_cookie(&response)), Some(20));
        }
    }
    let id = active.session(&layer).expect("alive at 80 s");
    clock.advance(secs(20)); // created + 100
    assert_eq!(
        get_as(&client, &layer, Some(&id), "/cart").await.text(),
        NO_CART
    );
}

pub(crate) async fn browser_session_cookies_have_no_max_age_but_end_server_side<A: App>() {
    let clock = ManualClock::new();
    let (_store, layer) = layer_on(&clock, Expiry::browser_session(secs(100)));
    let client = browser::<A>(&layer).await;
    let response = client.post("/cart/apple").await;
    let set_cookie = the_set_cookie(&response);
    assert_eq!(max_age(&set_cookie), None, "{set_cookie}");
    assert!(
        !set_cookie.to_ascii_lowercase().contains("expires"),
        "{set_cookie}"
    );
    let id = token(&response);

    // A refresh does not add a Max-Age either.
    clock.advance(secs(60));
    let refreshed = get_as(&client, &layer, Some(&id), "/cart").await;
    assert_ne!(refreshed.text(), NO_CART);
    for set_cookie in refreshed.set_cookies() {
        assert_eq!(max_age(set_cookie), None, "{set_cookie}");
    }
    // Server-side it still ends after its idle time.
    clock.advance(secs(100));
    assert_eq!(
        get_as(&client, &layer, Some(&id), "/cart").await.text(),
        NO_CART
    );
}

pub(crate) async fn a_read_refreshes_the_expiry_only_once_the_share_has_passed<A: App>() {
    let clock = ManualClock::new();
    let (store, layer) = layer_on(&clock, Expiry::idle(secs(100)).refresh_share(0.5));
    let client = browser::<A>(&layer).await;
    let id = token(&client.post("/cart/apple").await);
    let created = store.stored(&id).await.expect("created").deadline;

    // 40 s in: under half the idle time. No cookie, no write.
    clock.advance(secs(40));
    let (before, written) = (store.calls(), store.writes().len());
    let response = client.get("/cart").await;
    assert_ne!(response.text(), NO_CART);
    assert!(
        response.set_cookies().is_empty(),
        "{:?}",
        response.set_cookies()
    );
    assert_eq!(
        store.calls().since(before),
        Calls {
            load: 1,
            ..Calls::NONE
        }
    );
    assert_eq!(store.stored(&id).await.expect("alive").deadline, created);

    // 60 s in: past half. The read refreshes: a write that moves the deadline and changes no
    // data, and the same id again with a fresh Max-Age.
    clock.advance(secs(20));
    let response = client.get("/cart").await;
    assert_ne!(response.text(), NO_CART);
    let set_cookie = the_set_cookie(&response);
    assert_eq!(super::support::cookie_value(&set_cookie), id);
    assert_eq!(max_age(&set_cookie), Some(100));
    let writes = store.writes_since(written);
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert!(
        writes[0].fields_changed().is_empty(),
        "a refresh changed data"
    );
    assert!(writes[0].deadline_moved());
    let deadline = store.stored(&id).await.expect("alive").deadline;
    assert_eq!(deadline.created_at, created.created_at);
    assert_eq!(deadline.expires_at, created.created_at + secs(160));
    // It now lives until 160 s.
    clock.advance(secs(99));
    assert_ne!(client.get("/cart").await.text(), NO_CART);
}

/// A layer on `clock` with the app's own policy of an hour.
fn remember_layer(clock: &ManualClock) -> (RecordingStore, SessionLayer) {
    layer_on(clock, Expiry::idle(secs(3600)))
}

/// After "remember me" the session outlives the app's idle time, and later requests keep the
/// session's own policy.
async fn check_remembered<T: Transport>(
    clock: &ManualClock,
    client: &TestClient<T>,
    layer: &SessionLayer,
    id: &str,
) {
    const DAY: u64 = 24 * 3600;
    clock.advance(secs(2 * 3600));
    let response = get_as(client, layer, Some(id), "/prefs").await;
    assert_eq!(response.text(), "dark=false lang=en", "forgotten after 2 h");
    // A quarter of 30 days has not passed: no refresh, no cookie.
    assert!(
        response.set_cookies().is_empty(),
        "{:?}",
        response.set_cookies()
    );
    // After 8 days it has: the read refreshes with the stored 30-day policy, not the app's hour.
    clock.advance(secs(8 * DAY));
    let response = get_as(client, layer, Some(id), "/prefs").await;
    assert_eq!(
        response.text(),
        "dark=false lang=en",
        "forgotten after 8 days"
    );
    let set_cookie = the_set_cookie(&response);
    assert_eq!(
        max_age(&set_cookie),
        Some(REMEMBERED.as_secs()),
        "{set_cookie}"
    );
    // A later write keeps the session's own policy (nothing moves back to the app's hour) and,
    // no refresh being due, sends no cookie.
    let write = post_as(client, layer, Some(id), "/coupon/C").await;
    assert_eq!(write.status(), 200);
    assert!(write.set_cookies().is_empty(), "{:?}", write.set_cookies());
    clock.advance(secs(29 * DAY));
    assert_eq!(
        get_as(client, layer, Some(id), "/prefs").await.text(),
        "dark=false lang=en",
        "forgotten after 29 days"
    );
    clock.advance(secs(31 * DAY));
    assert_eq!(
        get_as(client, layer, Some(id), "/prefs").await.text(),
        "no prefs"
    );
}

pub(crate) async fn set_expiry_in_a_writing_handler_persists<A: App>() {
    let clock = ManualClock::new();
    let (_store, layer) = remember_layer(&clock);
    let client = browser::<A>(&layer).await;
    let response = client.post("/login-remember").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        max_age(&the_set_cookie(&response)),
        Some(REMEMBERED.as_secs())
    );
    check_remembered(&clock, &client, &layer, &token(&response)).await;
}

pub(crate) async fn set_expiry_alone_persists_on_a_stored_session<A: App>() {
    // A "remember me" toggle on a session that exists: the handler touches only the handle.
    let clock = ManualClock::new();
    let (store, layer) = remember_layer(&clock);
    let client = browser::<A>(&layer).await;
    let id = token(&client.post("/cart/apple").await);
    let written = store.writes().len();

    let response = client.post("/remember").await;
    assert_eq!(response.status(), 200);
    let writes = store.writes_since(written);
    assert_eq!(writes.len(), 1, "\"remember me\" was not saved");
    assert!(writes[0].deadline_moved());
    // A new policy moves the deadline, so the cookie follows, with the same id.
    let set_cookie = the_set_cookie(&response);
    assert_eq!(super::support::cookie_value(&set_cookie), id);
    assert_eq!(
        max_age(&set_cookie),
        Some(REMEMBERED.as_secs()),
        "{set_cookie}"
    );

    clock.advance(secs(2 * 3600));
    assert_eq!(
        client.get("/cart").await.text(),
        "items=apple coupon=- visits=0",
        "the session ended after the app's idle hour despite \"remember me\""
    );
    clock.advance(secs(31 * 24 * 3600));
    assert_eq!(
        get_as(&client, &layer, Some(&id), "/cart").await.text(),
        NO_CART
    );
}

pub(crate) async fn set_expiry_before_the_first_load_persists_on_a_new_session<A: App>() {
    let clock = ManualClock::new();
    let (_store, layer) = remember_layer(&clock);
    let client = browser::<A>(&layer).await;
    let response = client.post("/remember-then-write").await;
    assert_eq!(response.status(), 200, "{}", response.text());
    assert_eq!(
        max_age(&the_set_cookie(&response)),
        Some(REMEMBERED.as_secs())
    );
    check_remembered(&clock, &client, &layer, &token(&response)).await;
}
