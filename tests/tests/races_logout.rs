//! The logout race, in every store, through a real `Router`: a slow request that loaded the
//! session before a logout and writes after it must not bring the session back — neither by
//! saving to the old id nor by moving the data to a new id (`cycle_id`).
//!
//! Each scenario runs once per store (`<scenario>::memory`, `::sqlite`, `::postgres`,
//! `::redis`); the server stores print a `skipped: set ...` line without their variable.

mod http_common;
mod races_common;
mod redis_common;

use http::StatusCode;
use sessions::SessionStore;

use http_common::{NO_CART, capture_logs, get_with, post_with};
use races_common::{Gate, app, every_store, live_cookies, stored, stored_cart};

every_store!(logout_beats_a_slow_save, logout_beats_a_slow_login);

/// A loads the cart and blocks; B logs out and finishes; A sets the coupon and finishes. The
/// session stays destroyed, and the old cookie gets a fresh, empty session.
async fn logout_beats_a_slow_save<S: SessionStore + Clone>(store: S) {
    let (logs, _guard) = capture_logs();
    let gate = Gate::default();
    let app = app(store.clone(), gate.clone());
    let seeded = post_with(&app, "/cart/seed", None).await;
    assert_eq!(seeded.status, StatusCode::OK, "{}", seeded.body);
    let old = seeded.cookie();

    // A: loads the session, then waits inside its handler.
    let slow = tokio::spawn({
        let (app, old) = (app.clone(), old.clone());
        async move { post_with(&app, "/slow/coupon/late", Some(&old)).await }
    });
    gate.reached().await;

    // B: logs out, all the way.
    let logout = post_with(&app, "/logout", Some(&old)).await;
    assert_eq!(logout.status, StatusCode::OK, "{}", logout.body);
    assert!(
        live_cookies(&logout).is_empty() && !logout.set_cookies().is_empty(),
        "the logout clears the cookie: {:?}",
        logout.set_cookies()
    );
    assert!(
        stored(&store, &old).await.is_none(),
        "logout left the session"
    );

    // A goes on: it changes a field and finishes.
    gate.release();
    let late = slow.await.expect("request A");
    assert_eq!(late.status, StatusCode::OK, "{}", late.body);
    assert_eq!(late.body, "items=seed coupon=late visits=0");
    assert!(
        late.set_cookies().is_empty(),
        "the late request set a cookie after the logout: {:?}",
        late.set_cookies()
    );
    assert!(
        logs.text().contains(
            "session ended while the request ran (logout or expiry); its changes are dropped"
        ),
        "the late save did not find the session missing:\n{}",
        logs.text()
    );

    // Still destroyed, in the store and through the app.
    assert!(
        stored(&store, &old).await.is_none(),
        "the late save brought the session back"
    );
    let third = get_with(&app, "/whoami", Some(&old)).await;
    assert_eq!(third.status, StatusCode::OK, "{}", third.body);
    assert_eq!(third.body, "cart=none stored=false");
    assert!(third.set_cookies().is_empty(), "{:?}", third.set_cookies());
    assert_eq!(get_with(&app, "/cart", Some(&old)).await.body, NO_CART);

    // A write with the old cookie starts a fresh session under a new id, holding only itself.
    let fresh = post_with(&app, "/cart/fresh", Some(&old)).await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.body);
    assert_eq!(fresh.body, "items=fresh coupon=- visits=0");
    let new = fresh.cookie();
    assert_ne!(new, old, "the old id came back");
    assert!(stored(&store, &old).await.is_none());
    let cart = stored_cart(&store, &new).await.expect("the fresh session");
    assert_eq!(cart.items, ["fresh"]);
    assert_eq!(cart.coupon, None);
}

/// A login (`cycle_id()`) loads the cart and blocks; B logs out and finishes; A finishes. The
/// logout wins here too: the data is not moved to a new id behind the user's back.
async fn logout_beats_a_slow_login<S: SessionStore + Clone>(store: S) {
    let (logs, _guard) = capture_logs();
    let gate = Gate::default();
    let app = app(store.clone(), gate.clone());
    let old = post_with(&app, "/cart/seed", None).await.cookie();

    let login = tokio::spawn({
        let (app, old) = (app.clone(), old.clone());
        async move { post_with(&app, "/slow/login", Some(&old)).await }
    });
    gate.reached().await;

    let logout = post_with(&app, "/logout", Some(&old)).await;
    assert_eq!(logout.status, StatusCode::OK, "{}", logout.body);
    assert!(
        stored(&store, &old).await.is_none(),
        "logout left the session"
    );

    gate.release();
    let login = login.await.expect("request A");
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    assert!(
        live_cookies(&login).is_empty(),
        "the login handed out an id after the logout: {:?}",
        login.set_cookies()
    );
    assert!(
        logs.text().contains("session ended while the request ran"),
        "the cycle did not notice the logout:\n{}",
        logs.text()
    );

    assert!(stored(&store, &old).await.is_none());
    assert_eq!(
        get_with(&app, "/whoami", Some(&old)).await.body,
        "cart=none stored=false"
    );
}
