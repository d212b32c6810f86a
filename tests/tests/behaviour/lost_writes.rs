//! Issue 12 ("No acknowledged write is ever lost, and a logout is final"), through the HTTP
//! layer, in every store: one test per bug, each failing on the code before the rework.
//!
//! | bug | test |
//! |---|---|
//! | 1. different-field writes lost when a slot is written whole | `two_first_writes_of_a_slot_keep_both_fields`, `the_first_requests_after_a_deploy_migrate_and_keep_both_changes`, `a_codec_switch_keeps_both_changes` |
//! | 2. a write racing `cycle_id()` answered 200 and dropped | `races_cycle::save_after_the_cycle` |
//! | 3. a handler's `save()` racing a logout re-sends the dead id | `a_handler_save_racing_a_logout_is_409_and_sends_no_cookie`, `..._even_if_the_handler_carries_on` |
//! | 4. a dead id handed out after `cycle_id()` on a new session | `the_id_a_handler_sees_is_the_id_the_client_gets` |
//! | 5. a logout racing a login leaves the session alive | `a_logout_racing_a_login_ends_the_session_at_its_new_id` |
//! | 6. a stale `Set-Cookie` overwrites a newer one; a write racing a logout answered 200 | `a_stale_response_sends_no_cookie`, `races_logout::logout_beats_a_slow_save` |
//!
//! The randomized history (`history.rs`) checks the same promises over thousands of
//! concurrent requests.

use sessions::store::Entry;
use sessions::testing::seed;
use sessions::{Format, SessionStore};

use super::model::{Cart, CartV1, Prefs};
use super::races_cycle::{cart_of, entry_of};
use super::races_logout::ENDED;
use super::support::{
    cookie_value, get_as, live_cookies, max_age, session_cookies, the_set_cookie, token,
};
use super::{App, Gate, browser, layer};

/// Request A (`slow`) loads the session and waits; request B (`fast`) runs all the way and
/// must succeed; A goes on and must succeed too (both were told their write is stored).
async fn both_acknowledged<T>(
    client: &sessions::testing::TestClient<T>,
    gate: &Gate,
    slow: &'static str,
    fast: &str,
) where
    T: sessions::testing::Transport + Clone + 'static,
{
    let a = tokio::task::spawn_local({
        let client = client.clone();
        async move { client.post(slow).await }
    });
    gate.reached().await;
    let b = client.post(fast).await;
    assert_eq!(b.status(), 200, "{fast}: {}", b.text());
    gate.release();
    let a = a.await.expect("request A");
    assert_eq!(a.status(), 200, "{slow}: {}", a.text());
}

/// Bug 1, a new slot: the session holds prefs; A loads it (no cart yet) and adds an item; B
/// meanwhile sets a coupon (creating the cart) and gets 200; A gets 200. Both are stored: the
/// first write of a slot no longer replaces a slot another request created meanwhile.
pub(crate) async fn two_first_writes_of_a_slot_keep_both_fields<A: App, S: SessionStore + Clone>(
    store: S,
) {
    let gate = Gate::default();
    let layer = layer(store);
    let id = seed(
        &layer,
        Prefs {
            dark: true,
            lang: "fr".into(),
        },
    )
    .await
    .expect("seed");
    let client = A::serve(layer.clone(), gate.clone()).await;
    client.set_session(&layer, &id);

    both_acknowledged(&client, &gate, "/slow/cart/a", "/coupon/B").await;
    let cart = cart_of(&layer, &id).await.expect("the cart");
    assert_eq!(cart.items, ["a"], "A's acknowledged item was lost");
    assert_eq!(
        cart.coupon.as_deref(),
        Some("B"),
        "B's acknowledged coupon was lost"
    );
    assert_eq!(client.get("/prefs").await.text(), "dark=true lang=fr");
}

/// Removing the last slot does not delete the session: A loads a session that holds only
/// prefs (a flash, say) and removes them; B meanwhile adds the first cart item and gets 200; A
/// gets 200. B's item is stored, the prefs are gone, and the session lives on under its id (a
/// delete on "emptied" would have lost B's acknowledged write).
pub(crate) async fn removing_the_last_slot_keeps_a_concurrent_first_write<
    A: App,
    S: SessionStore + Clone,
>(
    store: S,
) {
    let gate = Gate::default();
    let layer = layer(store);
    let id = seed(
        &layer,
        Prefs {
            dark: true,
            lang: "fr".into(),
        },
    )
    .await
    .expect("seed");
    let client = A::serve(layer.clone(), gate.clone()).await;
    client.set_session(&layer, &id);

    both_acknowledged(&client, &gate, "/slow/forget-prefs", "/cart/x").await;
    let cart = cart_of(&layer, &id).await.expect("B's cart was lost");
    assert_eq!(cart.items, ["x"], "B's acknowledged item was lost");
    assert_eq!(client.get("/prefs").await.text(), "no prefs");
    assert_eq!(
        client.session(&layer).as_deref(),
        Some(id.as_str()),
        "the session kept its id"
    );
}

/// Bug 1, a migration: a deploy moved `cart` from version 1 to 2; the first two requests of a
/// session stored at version 1 arrive at once, each migrating it on load, A adding an item, B
/// setting the coupon. Both are stored, at version 2.
pub(crate) async fn the_first_requests_after_a_deploy_migrate_and_keep_both_changes<
    A: App,
    S: SessionStore + Clone,
>(
    store: S,
) {
    let gate = Gate::default();
    let layer = layer(store.clone());
    // What the previous deployment stored.
    let id = seed(
        &layer,
        CartV1 {
            items: vec!["old".into()],
        },
    )
    .await
    .expect("seed");
    let client = A::serve(layer.clone(), gate.clone()).await;
    client.set_session(&layer, &id);

    both_acknowledged(&client, &gate, "/slow/cart/a", "/coupon/B").await;
    let cart = cart_of(&layer, &id).await.expect("the cart");
    assert_eq!(cart.items, ["old", "a"], "A's acknowledged item was lost");
    assert_eq!(
        cart.coupon.as_deref(),
        Some("B"),
        "B's acknowledged coupon was lost"
    );
    let stored = entry_of(&store, &id)
        .await
        .and_then(Entry::into_session)
        .expect("stored");
    assert_eq!(
        stored.record.slot("cart").map(|slot| slot.version()),
        Some(2)
    );
}

/// Bug 1, a codec switch: sessions were stored in JSON; the app now writes bincode. The first
/// two requests of a JSON session arrive at once, each re-encoding the slot, A adding an item,
/// B setting the coupon. Both are stored, in bincode.
pub(crate) async fn a_codec_switch_keeps_both_changes<A: App, S: SessionStore + Clone>(store: S) {
    let gate = Gate::default();
    let json = layer(store.clone());
    let cart = Cart {
        items: vec!["old".into()],
        ..Cart::default()
    };
    let id = seed(&json, cart).await.expect("seed");
    let bincode = layer(store.clone()).format(Format::Bincode);
    let client = A::serve(bincode.clone(), gate.clone()).await;
    client.set_session(&bincode, &id);

    both_acknowledged(&client, &gate, "/slow/cart/a", "/coupon/B").await;
    let cart = cart_of(&bincode, &id).await.expect("the cart");
    assert_eq!(cart.items, ["old", "a"], "A's acknowledged item was lost");
    assert_eq!(
        cart.coupon.as_deref(),
        Some("B"),
        "B's acknowledged coupon was lost"
    );
    let stored = entry_of(&store, &id)
        .await
        .and_then(Entry::into_session)
        .expect("stored");
    assert_eq!(
        stored.record.slot("cart").and_then(|slot| slot.format()),
        Some(Format::Bincode)
    );
}

/// Runs `/slow/save…` (load, wait, push, `save()`) against a logout that finishes while it
/// waits; the slow request's response.
async fn save_racing_a_logout<A: App, S: SessionStore + Clone>(
    store: S,
    slow: &'static str,
) -> sessions::testing::TestResponse {
    let gate = Gate::default();
    let layer = layer(store.clone());
    let client = A::serve(layer.clone(), gate.clone()).await;
    let id = token(&client.post("/cart/seed").await);

    let save = tokio::task::spawn_local({
        let client = client.clone();
        async move { client.post(slow).await }
    });
    gate.reached().await;
    let logout = client.post("/logout").await;
    assert_eq!(logout.status(), 200);
    assert_eq!(max_age(&the_set_cookie(&logout)), Some(0));
    gate.release();
    let save = save.await.expect("the slow request");

    // The logout stands: nothing stored, and the browser holds no id — no `Set-Cookie` put the
    // dead id back.
    assert!(
        live_cookies(&save).is_empty(),
        "the dead id was sent again: {:?}",
        save.set_cookies()
    );
    assert!(
        client.session(&layer).is_none(),
        "the browser holds an id again"
    );
    assert!(
        entry_of(&store, &id).await.is_none(),
        "the save brought the session back"
    );
    save
}

/// Bug 3: a handler's `save()` racing a logout is `SessionRejection::Ended`, which the handler
/// answers with: a 409, and its response sends no cookie (it used to re-send the destroyed id
/// with a fresh `Max-Age`).
pub(crate) async fn a_handler_save_racing_a_logout_is_409_and_sends_no_cookie<
    A: App,
    S: SessionStore + Clone,
>(
    store: S,
) {
    let save = save_racing_a_logout::<A, S>(store, "/slow/save/late").await;
    assert_eq!(save.status(), 409, "{}", save.text());
    // The layer, saving the handler's changes again after it, finds the session ended too, and
    // says so.
    assert_eq!(save.header("x-session-error"), Some(ENDED));
}

/// Bug 3, the handler ignoring the failed `save()` and answering 200: the layer tries the save
/// again after the handler, finds the session ended, and the response becomes the 409.
pub(crate) async fn a_handler_save_racing_a_logout_is_409_even_if_the_handler_carries_on<
    A: App,
    S: SessionStore + Clone,
>(
    store: S,
) {
    let save = save_racing_a_logout::<A, S>(store, "/slow/save-carry-on/late").await;
    assert_eq!(save.status(), 409, "{}", save.text());
    assert_eq!(save.header("x-session-error"), Some(ENDED));
}

/// Bug 4 (and issue 16, point 2): the id a handler reads is the id its response hands out, and
/// the session is stored under it — for a new session, after `cycle_id()` on it, and after a
/// login of a stored one.
pub(crate) async fn the_id_a_handler_sees_is_the_id_the_client_gets<
    A: App,
    S: SessionStore + Clone,
>(
    store: S,
) {
    let layer = layer(store.clone());
    for path in ["/id", "/login/token"] {
        // A new session: the id is drawn now, and the session is stored (empty) under it.
        let client = browser::<A>(&layer).await;
        let response = if path == "/id" {
            client.get(path).await
        } else {
            client.post(path).await
        };
        assert_eq!(response.status(), 200, "{path}: {}", response.text());
        let seen = response.text();
        assert!(!seen.is_empty(), "{path}: the handler saw no id");
        assert_eq!(
            live_cookies(&response),
            std::slice::from_ref(&seen),
            "{path}: the handler saw another id than the client got"
        );
        assert!(
            matches!(entry_of(&store, &seen).await, Some(Entry::Live { .. })),
            "{path}: no session is stored under the id the handler saw"
        );
        // The client's next request is that session.
        assert_eq!(
            client.get("/whoami").await.text(),
            "cart=none stored=true",
            "{path}"
        );
    }

    // A stored session: `id()` is its id, and nothing is sent again.
    let client = browser::<A>(&layer).await;
    let id = token(&client.post("/cart/apple").await);
    let response = client.get("/id").await;
    assert_eq!(response.text(), id);
    assert!(
        response.set_cookies().is_empty(),
        "{:?}",
        response.set_cookies()
    );
    // A login of it: the new id, the one the response hands out.
    let response = client.post("/login/token").await;
    let seen = response.text();
    assert_ne!(seen, id);
    assert_eq!(token(&response), seen);
    assert_eq!(
        cart_of(&layer, &seen).await.map(|cart| cart.items),
        Some(vec!["apple".to_owned()])
    );
}

/// Bug 5: a logout whose request arrived with the old id, racing a login that moved the
/// session: the logout ends the session where the login moved it. Neither the new id (which
/// the login's response hands the browser) nor the old one reaches the data afterwards.
pub(crate) async fn a_logout_racing_a_login_ends_the_session_at_its_new_id<
    A: App,
    S: SessionStore + Clone,
>(
    store: S,
) {
    let gate = Gate::default();
    let layer = layer(store.clone());
    let client = A::serve(layer.clone(), gate.clone()).await;
    let old = token(&client.post("/cart/secret").await);

    // The logout reads the old id and waits before it ends the session.
    let logout = tokio::task::spawn_local({
        let client = client.clone();
        async move { client.post("/slow/logout").await }
    });
    gate.reached().await;
    // The login moves the session to a new id, all the way.
    let login = client.post("/login").await;
    assert_eq!(login.status(), 200, "{}", login.text());
    let new = token(&login);
    gate.release();
    let logout = logout.await.expect("the logout");
    assert_eq!(logout.status(), 200, "{}", logout.text());
    assert_eq!(cookie_value(&the_set_cookie(&logout)), "");

    assert!(
        entry_of(&store, &new).await.is_none(),
        "the logged-out session lives on at its new id"
    );
    assert!(
        entry_of(&store, &old).await.is_none(),
        "the old id still holds something"
    );
    assert!(client.session(&layer).is_none());
    // Had the browser applied the login's cookie after the logout's, it would hold `new`.
    let late = browser::<A>(&layer).await;
    assert_eq!(
        get_as(&late, &layer, Some(&new), "/whoami").await.text(),
        "cart=none stored=false"
    );
}

/// Bug 6: a request that saved before a login and answers after it sends no `Set-Cookie`: the
/// browser keeps the login's new id (it used to get the old, dead one back, and with it an
/// empty session), and the saved change is in the session.
pub(crate) async fn a_stale_response_sends_no_cookie<A: App, S: SessionStore + Clone>(store: S) {
    let gate = Gate::default();
    let layer = layer(store);
    let client = A::serve(layer.clone(), gate.clone()).await;
    let old = token(&client.post("/cart/seed").await);

    let slow = tokio::task::spawn_local({
        let client = client.clone();
        async move { client.post("/save-then-wait/w").await }
    });
    gate.reached().await;
    let login = client.post("/login").await;
    assert_eq!(login.status(), 200, "{}", login.text());
    let new = token(&login);
    assert_ne!(new, old);
    gate.release();
    let slow = slow.await.expect("the slow request");
    assert_eq!(slow.status(), 200, "{}", slow.text());
    assert!(
        session_cookies(&slow).is_empty(),
        "a stale Set-Cookie: {:?}",
        slow.set_cookies()
    );

    assert_eq!(
        client.session(&layer).as_deref(),
        Some(new.as_str()),
        "the browser lost the new id"
    );
    assert_eq!(
        client.get("/cart").await.text(),
        "items=seed,w coupon=- visits=1"
    );
}
