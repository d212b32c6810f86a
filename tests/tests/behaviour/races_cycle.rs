//! `cycle_id()` (login) racing a save on the same old id, and two logins at once, in every
//! store. Afterwards exactly one live session holds the data: the old key holds only the
//! forwarding mark of the move (no orphan, no duplicate) and the new id loads everything every
//! acknowledged request wrote.
//!
//! * the login finishes first (`save_after_the_cycle`): the save follows the mark, its change
//!   lands in the moved session, and its response carries no cookie (issue 12, bug 2);
//! * the save finishes first (`save_before_the_cycle`): the cycle moves the session as stored
//!   when it moves it, the save's change included;
//! * two logins (`second_login_follows_the_first`): the second follows the first: one new id,
//!   both logins' changes;
//! * a handler's own `save()` after the login (`a_handler_save_after_the_cycle_lands_in_the_moved_session`):
//!   as a save after the handler, it follows the move.

use sessions::SessionStore;
use sessions::store::Entry;
use sessions::testing::inspect;

use super::model::Cart;
use super::support::{get_as, key_of, live_cookies, session_cookies, token};
use super::{App, Gate, browser, layer};

/// The cart stored for `token` in `layer`'s store, as the app decodes it.
pub(crate) async fn cart_of(layer: &sessions::SessionLayer, token: &str) -> Option<Cart> {
    inspect::<Cart>(layer, token)
        .await
        .expect("the stored cart decodes")
}

/// The entry the store holds under the key of `id`.
pub(crate) async fn entry_of<S: SessionStore>(store: &S, id: &str) -> Option<Entry> {
    store.load(&key_of(id)).await.expect("the store loads")
}

/// Asserts the old id holds no live session, only a mark forwarding to `new`.
pub(crate) async fn only_a_mark_at<S: SessionStore>(store: &S, old: &str, new: &str) {
    match entry_of(store, old).await {
        Some(Entry::Moved { to, .. }) => assert_eq!(to, key_of(new), "the mark points elsewhere"),
        other => panic!("the old id holds {other:?}, not the login's mark"),
    }
}

/// B loads the session and waits; A logs in (cycles) and finishes; B pushes an item and
/// finishes.
///
/// Changed meaning (issue 12, bug 2): B used to be answered 200 with its change dropped (the
/// save found the old key gone). Now B's save follows the login's mark: 200, its item is in
/// the session at the new id, and its response carries no cookie (the login's carried the new
/// id; B must not undo it).
pub(crate) async fn save_after_the_cycle<A: App, S: SessionStore + Clone>(store: S) {
    let gate = Gate::default();
    let layer = layer(store.clone());
    let client = A::serve(layer.clone(), gate.clone()).await;
    let old = token(&client.post("/cart/seed").await);

    // B: loads the old session, then waits inside its handler.
    let save = tokio::task::spawn_local({
        let client = client.clone();
        async move { client.post("/slow/cart/b").await }
    });
    gate.reached().await;

    // A: logs in, all the way.
    let login = client.post("/login").await;
    assert_eq!(login.status(), 200, "{}", login.text());
    let new = token(&login);
    assert_ne!(new, old);

    // B goes on and finishes: told it worked, and it did.
    gate.release();
    let save = save.await.expect("request B");
    assert_eq!(save.status(), 200, "{}", save.text());
    assert_eq!(save.text(), "items=seed,b coupon=- visits=0");
    // (With read replicas the save's read mark, of the key it wrote, may come along.)
    assert!(
        session_cookies(&save).is_empty(),
        "B set a cookie for a session that moved: {:?}",
        save.set_cookies()
    );
    assert_eq!(
        client.session(&layer).as_deref(),
        Some(new.as_str()),
        "the browser lost the new id"
    );

    // Exactly one live session: not the old key ...
    only_a_mark_at(&store, &old, &new).await;
    // ... but the new id, with the login's change and B's.
    let cart = cart_of(&layer, &new).await.expect("the new session");
    assert_eq!(
        cart.items,
        ["seed", "b"],
        "B's acknowledged change was lost"
    );
    assert_eq!(cart.visits, 1);
    assert_eq!(
        client.get("/whoami").await.text(),
        "cart=items=seed,b coupon=- visits=1 stored=true"
    );
    let replay = browser::<A>(&layer).await;
    assert_eq!(
        get_as(&replay, &layer, Some(&old), "/whoami").await.text(),
        "cart=none stored=false"
    );
}

/// A logs in (cycles) and waits before it finishes; B pushes an item on the old id and
/// finishes; A finishes.
///
/// Changed meaning (issue 12, bug 6): B's save used to be allowed a `Set-Cookie` with the old
/// id; now a save sends none.
pub(crate) async fn save_before_the_cycle<A: App, S: SessionStore + Clone>(store: S) {
    let gate = Gate::default();
    let layer = layer(store.clone());
    let client = A::serve(layer.clone(), gate.clone()).await;
    let old = token(&client.post("/cart/seed").await);

    // A: loads the old session, bumps visits, asks for a new id, then waits.
    let login = tokio::task::spawn_local({
        let client = client.clone();
        async move { client.post("/slow/login").await }
    });
    gate.reached().await;

    // B: saves an item on the old id, all the way: it is told it worked.
    let save = client.post("/cart/b").await;
    assert_eq!(save.status(), 200, "{}", save.text());
    assert_eq!(save.text(), "items=seed,b coupon=- visits=0");
    assert!(
        session_cookies(&save).is_empty(),
        "{:?}",
        save.set_cookies()
    );
    let before = cart_of(&layer, &old).await.expect("the old session");
    assert_eq!(before.items, ["seed", "b"]);

    // A finishes: the data moves to a new id.
    gate.release();
    let login = login.await.expect("request A");
    assert_eq!(login.status(), 200, "{}", login.text());
    let new = token(&login);
    assert_ne!(new, old);

    only_a_mark_at(&store, &old, &new).await;
    // The new session holds both: the login's change and B's acknowledged item.
    let cart = cart_of(&layer, &new).await.expect("the new session");
    assert_eq!(
        cart.items,
        ["seed", "b"],
        "B's acknowledged save was lost by the cycle"
    );
    assert_eq!(cart.visits, 1);
    assert_eq!(
        client.get("/whoami").await.text(),
        "cart=items=seed,b coupon=slow-login visits=1 stored=true"
    );
}

/// A logs in and waits before its cycle runs; B logs in, all the way (a new id); A finishes:
/// it follows B's move instead of moving the session again. One new id (B's, which the browser
/// keeps: A sends no cookie), and both logins' changes in it.
pub(crate) async fn second_login_follows_the_first<A: App, S: SessionStore + Clone>(store: S) {
    let gate = Gate::default();
    let layer = layer(store.clone());
    let client = A::serve(layer.clone(), gate.clone()).await;
    let old = token(&client.post("/cart/seed").await);

    let slow = tokio::task::spawn_local({
        let client = client.clone();
        async move { client.post("/slow/login").await }
    });
    gate.reached().await;
    let first = client.post("/login").await;
    assert_eq!(first.status(), 200, "{}", first.text());
    let new = token(&first);

    gate.release();
    let second = slow.await.expect("request A");
    assert_eq!(second.status(), 200, "{}", second.text());
    assert!(
        live_cookies(&second).is_empty(),
        "a second new id: {:?}",
        second.set_cookies()
    );
    assert_eq!(client.session(&layer).as_deref(), Some(new.as_str()));

    only_a_mark_at(&store, &old, &new).await;
    // Both logins' changes: each set visits to 1 (the same field: the last writer wins), and
    // the slow one's coupon followed the move.
    let cart = cart_of(&layer, &new).await.expect("the session");
    assert_eq!(
        cart.coupon.as_deref(),
        Some("slow-login"),
        "the second login's change was lost"
    );
    assert_eq!(
        (cart.items.as_slice(), cart.visits),
        (["seed".to_owned()].as_slice(), 1)
    );
}

/// B loads the cart and waits; A logs in, all the way; B pushes an item and `save()`s it in the
/// handler: the save follows the login's mark (200), the item is in the session at the new id,
/// and B's response sends no cookie.
pub(crate) async fn a_handler_save_after_the_cycle_lands_in_the_moved_session<
    A: App,
    S: SessionStore + Clone,
>(
    store: S,
) {
    let gate = Gate::default();
    let layer = layer(store.clone());
    let client = A::serve(layer.clone(), gate.clone()).await;
    let old = token(&client.post("/cart/seed").await);

    let save = tokio::task::spawn_local({
        let client = client.clone();
        async move { client.post("/slow/save/b").await }
    });
    gate.reached().await;
    let login = client.post("/login").await;
    assert_eq!(login.status(), 200, "{}", login.text());
    let new = token(&login);
    gate.release();
    let save = save.await.expect("request B");
    assert_eq!(save.status(), 200, "{}", save.text());
    assert!(
        session_cookies(&save).is_empty(),
        "{:?}",
        save.set_cookies()
    );
    assert_eq!(client.session(&layer).as_deref(), Some(new.as_str()));
    only_a_mark_at(&store, &old, &new).await;
    let cart = cart_of(&layer, &new).await.expect("the new session");
    assert_eq!(
        (cart.items, cart.visits),
        (vec!["seed".to_owned(), "b".to_owned()], 1)
    );
}
