//! The logout races, in every store: a slow request that loaded the session before a logout
//! and writes after it must not bring the session back — neither by saving to the old id, nor
//! by moving the data to a new id (`cycle_id`), nor by a handler's own `save()` — and it must
//! not be told it worked. Two logouts at once both end it. (A logout racing a login, and a
//! handler's `save()` racing a logout, are in `lost_writes.rs`: issue 12, bugs 5 and 3.)

use sessions::SessionStore;

use super::handlers::NO_CART;
use super::races_cycle::{cart_of, entry_of};
use super::support::only_forgets;
use super::support::{get_as, live_cookies, max_age, post_as, the_set_cookie, token};
use super::{App, Gate, browser, layer};

/// What the layer says when a write found the session ended.
pub(crate) const ENDED: &str =
    "session ended while the request ran (a logout or expiry); not saved";

/// A loads the cart and waits; B logs out and finishes; A sets the coupon and finishes. The
/// session stays destroyed, and the old cookie gets a fresh, empty session.
///
/// Changed meaning (issue 12, bug 6, "what status a dropped write gets"): A used to be answered
/// 200 (its change dropped, logged); now it is a 409 that says the session ended.
pub(crate) async fn logout_beats_a_slow_save<A: App, S: SessionStore + Clone>(store: S) {
    let gate = Gate::default();
    let layer = layer(store.clone());
    let client = A::serve(layer.clone(), gate.clone()).await;
    let old = token(&client.post("/cart/seed").await);

    // A: loads the session, then waits inside its handler.
    let slow = tokio::task::spawn_local({
        let client = client.clone();
        async move { client.post("/slow/coupon/late").await }
    });
    gate.reached().await;

    // B: logs out, all the way.
    let logout = client.post("/logout").await;
    assert_eq!(logout.status(), 200, "{}", logout.text());
    assert_eq!(
        max_age(&the_set_cookie(&logout)),
        Some(0),
        "the logout clears the cookie"
    );
    assert!(
        entry_of(&store, &old).await.is_none(),
        "logout left the session"
    );

    // A goes on: it changes a field and finishes, and is told its change was not saved.
    gate.release();
    let late = slow.await.expect("request A");
    assert_eq!(late.status(), 409, "{}", late.text());
    assert_eq!(late.header("x-session-error"), Some(ENDED));
    assert!(
        late.set_cookies().is_empty(),
        "the late request set a cookie after the logout: {:?}",
        late.set_cookies()
    );
    assert!(client.session(&layer).is_none());

    // Still destroyed, in the store and through the app.
    assert!(
        entry_of(&store, &old).await.is_none(),
        "the late save brought the session back"
    );
    let replay = browser::<A>(&layer).await;
    let third = get_as(&replay, &layer, Some(&old), "/whoami").await;
    assert_eq!(third.status(), 200, "{}", third.text());
    assert_eq!(third.text(), "cart=none stored=false");
    assert!(
        only_forgets(&third),
        "the dead id is forgotten: {:?}",
        third.set_cookies()
    );
    assert_eq!(
        get_as(&replay, &layer, Some(&old), "/cart").await.text(),
        NO_CART
    );

    // A write with the old cookie starts a fresh session under a new id, holding only itself.
    let fresh = post_as(&replay, &layer, Some(&old), "/cart/fresh").await;
    assert_eq!(fresh.status(), 200, "{}", fresh.text());
    assert_eq!(fresh.text(), "items=fresh coupon=- visits=0");
    let new = token(&fresh);
    assert_ne!(new, old, "the old id came back");
    assert!(entry_of(&store, &old).await.is_none());
    let cart = cart_of(&layer, &new).await.expect("the fresh session");
    assert_eq!(cart.items, ["fresh"]);
    assert_eq!(cart.coupon, None);
}

/// A login (`cycle_id()`) loads the cart and waits; B logs out and finishes; A finishes. The
/// logout wins here too: the data is not moved to a new id behind the user's back.
///
/// Changed meaning: the login used to be answered 200 (with no cookie); a login whose session
/// was destroyed meanwhile is now a 409 (ended): the user is not logged in, and is told so.
pub(crate) async fn logout_beats_a_slow_login<A: App, S: SessionStore + Clone>(store: S) {
    let gate = Gate::default();
    let layer = layer(store.clone());
    let client = A::serve(layer.clone(), gate.clone()).await;
    let old = token(&client.post("/cart/seed").await);

    let login = tokio::task::spawn_local({
        let client = client.clone();
        async move { client.post("/slow/login").await }
    });
    gate.reached().await;

    let logout = client.post("/logout").await;
    assert_eq!(logout.status(), 200, "{}", logout.text());
    assert!(
        entry_of(&store, &old).await.is_none(),
        "logout left the session"
    );

    gate.release();
    let login = login.await.expect("request A");
    assert_eq!(login.status(), 409, "{}", login.text());
    assert_eq!(login.header("x-session-error"), Some(ENDED));
    assert!(
        live_cookies(&login).is_empty(),
        "the login handed out an id after the logout: {:?}",
        login.set_cookies()
    );

    assert!(entry_of(&store, &old).await.is_none());
    assert!(client.session(&layer).is_none());
    let replay = browser::<A>(&layer).await;
    assert_eq!(
        get_as(&replay, &layer, Some(&old), "/whoami").await.text(),
        "cart=none stored=false"
    );
}

/// Two logouts at once (two tabs): both are answered 200 and clear the cookie; the session is
/// gone.
pub(crate) async fn two_logouts_at_once_both_end_it<A: App, S: SessionStore + Clone>(store: S) {
    let gate = Gate::default();
    let layer = layer(store.clone());
    let client = A::serve(layer.clone(), gate.clone()).await;
    let id = token(&client.post("/cart/seed").await);

    let slow = tokio::task::spawn_local({
        let client = client.clone();
        async move { client.post("/slow/logout").await }
    });
    gate.reached().await;
    let first = client.post("/logout").await;
    gate.release();
    let second = slow.await.expect("the slow logout");
    for logout in [&first, &second] {
        assert_eq!(logout.status(), 200, "{}", logout.text());
        assert_eq!(max_age(&the_set_cookie(logout)), Some(0));
    }
    assert!(entry_of(&store, &id).await.is_none());
    assert!(client.session(&layer).is_none());
}
