//! A session's life: `cycle_id()` after login, `destroy()` at logout, a logout that races a
//! slow request, a failing handler whose changes are not saved, and a slot removed.

use sessions::store::Entry;

use super::handlers::NO_CART;
use super::recording_store::WriteKind;
use super::support::{
    cookie_value, get_as, key_of, live_cookies, max_age, post_as, the_set_cookie, token,
};
use super::{App, Calls, Gate, RecordingStore, browser, layer};

pub(crate) async fn cycle_id_gives_a_new_id_kills_the_old_one_and_keeps_the_data<A: App>() {
    let store = RecordingStore::memory();
    let layer = layer(store.clone());
    let client = browser::<A>(&layer).await;
    let old = token(&client.post("/cart/apple").await);

    let response = client.post("/login").await;
    assert_eq!(response.status(), 200, "{}", response.text());
    let new = token(&response);
    assert_ne!(new, old, "cycle_id must hand out another id");
    assert_eq!(new.len(), old.len());
    assert_eq!(client.session(&layer).as_deref(), Some(new.as_str()));

    // The old id holds no session any more: only the mark that forwards the saves and logouts
    // of requests that loaded it before the move.
    match store.entry(&old).await {
        Some(Entry::Moved { to, .. }) => assert_eq!(to, key_of(&new)),
        other => panic!("the old id still holds {other:?}"),
    }
    // Through the app, the old id is a fresh session.
    let stale = get_as(&browser::<A>(&layer).await, &layer, Some(&old), "/cart").await;
    assert_eq!(stale.text(), NO_CART);
    assert!(stale.set_cookies().is_empty());

    // The data moved, with the change the login request made.
    assert_eq!(
        client.get("/cart").await.text(),
        "items=apple coupon=- visits=1"
    );
}

pub(crate) async fn cycle_id_without_loading_anything_still_moves_the_data<A: App>() {
    let store = RecordingStore::memory();
    let layer = layer(store.clone());
    let client = browser::<A>(&layer).await;
    let old = token(&client.post("/cart/apple").await);
    let response = client.post("/cycle").await;
    assert_eq!(response.status(), 200);
    let new = token(&response);
    assert_ne!(new, old);
    assert!(store.stored(&old).await.is_none());
    let stale = get_as(&browser::<A>(&layer).await, &layer, Some(&old), "/cart").await;
    assert_eq!(stale.text(), NO_CART);
    assert_eq!(
        client.get("/cart").await.text(),
        "items=apple coupon=- visits=0"
    );
}

pub(crate) async fn destroy_deletes_the_record_and_clears_the_cookie<A: App>() {
    let store = RecordingStore::memory();
    let layer = layer(store.clone());
    let client = browser::<A>(&layer).await;
    let old = token(&client.post("/cart/apple").await);
    let written = store.writes().len();

    let response = client.post("/logout").await;
    assert_eq!(response.status(), 200);
    let removal = the_set_cookie(&response);
    assert_eq!(cookie_value(&removal), "", "{removal}");
    assert_eq!(max_age(&removal), Some(0), "{removal}");
    assert!(removal.contains("Path=/"), "{removal}");
    assert!(
        client.session(&layer).is_none(),
        "the browser still holds the cookie"
    );
    let writes = store.writes_since(written);
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0].kind(), WriteKind::Delete);
    assert!(store.entry(&old).await.is_none(), "record not deleted");
    assert!(store.inner().is_empty());

    // The old cookie, replayed, gets a fresh session.
    let replay = browser::<A>(&layer).await;
    assert_eq!(
        get_as(&replay, &layer, Some(&old), "/cart").await.text(),
        NO_CART
    );
    let response = post_as(&replay, &layer, Some(&old), "/cart/pear").await;
    assert_eq!(response.text(), "items=pear coupon=- visits=0");
    let fresh = token(&response);
    assert_ne!(
        fresh, old,
        "a fresh session never takes the id the client sent"
    );
}

/// Changed meaning (issue 12, bug 6): the slow request used to be answered 200 (its change
/// silently dropped); a write racing a logout is now a 409 that says so. What stays: the session
/// stays destroyed and the late response hands out no cookie that revives it.
pub(crate) async fn a_destroy_racing_a_slow_save_stays_destroyed<A: App>() {
    let store = RecordingStore::memory();
    let gate = Gate::default();
    let layer = layer(store.clone());
    let client = A::serve(layer.clone(), gate.clone()).await;
    let id = token(&client.post("/cart/apple").await);

    // A loads, then waits in its handler.
    let slow = tokio::task::spawn_local({
        let client = client.clone();
        async move { client.post("/slow/coupon/REVIVE").await }
    });
    gate.reached().await;

    // B logs out meanwhile.
    let logout = client.post("/logout").await;
    assert_eq!(logout.status(), 200);
    assert_eq!(max_age(&the_set_cookie(&logout)), Some(0));
    assert!(store.entry(&id).await.is_none());

    // A writes and finishes: told that its write was not saved.
    gate.release();
    let slow = slow.await.expect("the slow request does not panic");
    assert_eq!(slow.status(), 409, "{}", slow.text());
    assert_eq!(
        slow.header("x-session-error"),
        Some("session ended while the request ran (a logout or expiry); not saved")
    );

    // The session is still gone, and A's response hands out no cookie that revives it.
    assert!(store.entry(&id).await.is_none(), "A revived the session");
    assert!(store.inner().is_empty(), "A filed a new session");
    assert!(live_cookies(&slow).is_empty(), "{:?}", slow.set_cookies());
    let replay = browser::<A>(&layer).await;
    assert_eq!(
        get_as(&replay, &layer, Some(&id), "/cart").await.text(),
        NO_CART
    );
}

pub(crate) async fn a_5xx_response_saves_nothing_for_a_new_session<A: App>() {
    let store = RecordingStore::memory();
    let client = browser::<A>(&layer(store.clone())).await;
    let response = client.post("/fail/apple").await;
    assert_eq!(response.status(), 500);
    assert_eq!(response.text(), "the handler failed");
    assert!(
        response.set_cookies().is_empty(),
        "{:?}",
        response.set_cookies()
    );
    assert_eq!(store.calls(), Calls::NONE);
    assert!(store.inner().is_empty());
}

pub(crate) async fn a_5xx_response_saves_nothing_for_a_stored_session<A: App>() {
    let store = RecordingStore::memory();
    let client = browser::<A>(&layer(store.clone())).await;
    let id = token(&client.post("/cart/apple").await);
    let stored = store.stored(&id).await;
    let before = store.calls();

    let response = client.post("/fail/pear").await;
    assert_eq!(response.status(), 500);
    assert!(response.set_cookies().is_empty());
    assert_eq!(
        store.calls().since(before),
        Calls {
            load: 1,
            ..Calls::NONE
        }
    );
    assert_eq!(store.stored(&id).await, stored);
    assert_eq!(
        client.get("/cart").await.text(),
        "items=apple coupon=- visits=0"
    );
}

pub(crate) async fn removing_a_slot_through_the_handle_alone_removes_it<A: App>() {
    let store = RecordingStore::memory();
    let client = browser::<A>(&layer(store.clone())).await;
    assert_eq!(client.post("/all").await.status(), 200);
    let written = store.writes().len();
    let response = client.post("/forget-cart").await;
    assert_eq!(response.status(), 200);
    let writes = store.writes_since(written);
    assert_eq!(writes.len(), 1, "the removal was not saved: {writes:?}");
    assert_eq!(writes[0].slots_removed(), ["cart"]);
    assert_eq!(
        writes[0].slots_written(),
        ["cart"],
        "another slot was written"
    );
    assert_eq!(client.get("/cart").await.text(), NO_CART);
    // The other slot is untouched.
    assert_eq!(client.get("/prefs").await.text(), "dark=true lang=fr");
}
