//! A user's first week (issue 16): what a handler meets first, one test per point, on both
//! adapters.
//!
//! * (2) a handler learns the id of a brand-new session (`id()` draws the id the create will
//!   use), and that is the id the client gets;
//! * (4) a `CurrentUser` guard extractor on `Option<Typed<Auth>>` (axum) / `IfStored<Auth>`
//!   (actix-web) rejects with a 401 when nobody is signed in, and never mistakes a store that
//!   is down for "nobody";
//! * (6) two values of one slot in one request merge field by field as they are dropped (the
//!   later drop wins a field both changed), and after `remove::<T>()` a value taken before does
//!   not bring the slot back;
//! * (7) a flash after logout: `destroy()`, then a write, lands in a fresh session under a new
//!   id;
//! * (11) `clear()` empties every slot and keeps the id, and `id_text()` gives the id in one
//!   call.
//!
//! Points 3, 5 and 8 are compile-time promises, kept by the ui tests (`ui-tests/`, run with
//! `cargo test -p sessions-ui-tests`) rather than here: a type without `Default` cannot be
//! extracted as `Typed<T>`, and the error says to extract `Option<Typed<T>>` (actix-web:
//! `IfStored<T>`) and create the slot with `SessionHandle::insert` (`fail/typed_without_default`);
//! `#[session(owner)]` must be an `Option`, once per type, and not skipped
//! (`fail/owner_not_option`, `fail/owner_twice`, `fail/owner_and_skip`, `pass/owner`); a field
//! whose accessor would collide with a method of `Typed` or another accessor is refused
//! (`fail/field_named_like_typed_method`, `fail/accessor_collision`, `tests/typed_methods.rs`);
//! the derive's mistakes are reported all at once, each at its span
//! (`fail/several_mistakes_at_once`), and its expansion is lint-clean (`tests/lints.rs`).

use sessions::prelude::*;

use super::handlers::{NO_CART, REMEMBERED};
use super::model::{Auth, Flash, SIGN_IN_FIRST};
use super::races_cycle::cart_of;
use super::support::{live_cookies, only_forgets, token};
use super::{App, RecordingStore, browser, layer};

/// The suite's layer with `Auth` and `Flash` registered too.
fn week_layer(store: RecordingStore) -> SessionLayer {
    layer(store).register::<Auth>().register::<Flash>()
}

/// (2) A brand-new session's id, asked in the handler before anything is written and again
/// after: the same both times, the one the response's cookie carries, and the one the write is
/// stored under. A client that had no session gets exactly that cookie.
pub(crate) async fn a_handler_learns_the_id_of_a_new_session_and_the_client_gets_it<A: App>() {
    let store = RecordingStore::memory();
    let layer = week_layer(store.clone());
    let client = browser::<A>(&layer).await;
    let answer = client.get("/week/new-id").await;
    assert_eq!(answer.status(), 200, "{}", answer.text());
    let body = answer.text();
    let (before, after) = body.split_once(' ').expect("two ids");
    assert!(!before.is_empty(), "no id for a new session");
    assert_eq!(before, after, "the id changed within the request");
    assert_eq!(token(&answer), before, "the client got another id");
    assert_eq!(client.session(&layer).as_deref(), Some(before));
    let cart = cart_of(&layer, before).await.expect("stored under that id");
    assert_eq!(cart.items, ["first"]);
    assert_eq!(store.writes().len(), 1, "one create");

    // The next request of that client is that session: asking again hands out no new id.
    let again = client.get("/id").await;
    assert_eq!(again.text(), before);
    assert!(again.set_cookies().is_empty(), "{:?}", again.set_cookies());
}

/// (4) The `CurrentUser` guard: a 401 with its message for a client with no session (and no
/// session is created for it), for a session of nobody, and after logout; the page for a
/// signed-in user; a 503 — not a 401 — while the store is down.
pub(crate) async fn a_current_user_guard_rejects_with_401_until_signed_in<A: App>() {
    let store = RecordingStore::memory();
    let layer = week_layer(store.clone());
    let client = browser::<A>(&layer).await;

    let stranger = client.get("/account").await;
    assert_eq!(stranger.status(), 401, "{}", stranger.text());
    assert_eq!(stranger.text(), SIGN_IN_FIRST);
    assert!(stranger.set_cookies().is_empty(), "a 401 created a session");
    assert!(store.writes().is_empty());

    assert_eq!(client.post("/cart/apple").await.status(), 200);
    assert_eq!(
        client.get("/account").await.status(),
        401,
        "a session with no user"
    );

    let login = client.post("/auth/login/42").await;
    assert_eq!(login.status(), 200, "{}", login.text());
    let page = client.get("/account").await;
    assert_eq!(page.status(), 200, "{}", page.text());
    assert_eq!(page.text(), "signed in as 42");

    store.fail_loads(true);
    let down = client.get("/account").await;
    assert_eq!(
        down.status(),
        503,
        "a store that is down is not nobody: {}",
        down.text()
    );
    store.fail_loads(false);

    assert_eq!(client.post("/logout").await.status(), 200);
    assert_eq!(client.get("/account").await.status(), 401, "after logout");
}

/// (6) Two values of the cart in one request, each changing fields of its own and one field
/// both change (`visits`): every change survives, and of the shared field the value dropped
/// later wins — for a new slot (whole-slot writes) and for a stored one (field updates) alike.
/// A value taken after the drops sees both.
pub(crate) async fn two_values_of_one_slot_merge_and_the_later_drop_wins<A: App>() {
    let store = RecordingStore::memory();
    let layer = week_layer(store.clone());
    let client = browser::<A>(&layer).await;

    // A new slot: `b` dropped last, its visits win.
    let first = client.post("/week/two/a").await;
    assert_eq!(first.status(), 200, "{}", first.text());
    assert_eq!(first.text(), "items=a coupon=b visits=2");
    assert_eq!(
        client.get("/cart").await.text(),
        "items=a coupon=b visits=2"
    );

    // A stored slot: `a` dropped last, its visits win.
    let second = client.post("/week/two/b").await;
    assert_eq!(second.status(), 200, "{}", second.text());
    assert_eq!(second.text(), "items=a,a coupon=b visits=1");
    assert_eq!(
        client.get("/cart").await.text(),
        "items=a,a coupon=b visits=1"
    );
}

/// (6) `remove::<Cart>()` while a value of the cart is held; the value is changed and dropped
/// afterwards: its change is dropped, the slot stays removed — in the handler's view and in the
/// store — and the other slots stay.
pub(crate) async fn remove_then_dropping_a_changed_value_does_not_bring_the_slot_back<A: App>() {
    let store = RecordingStore::memory();
    let layer = week_layer(store.clone());
    let client = browser::<A>(&layer).await;
    assert_eq!(client.post("/cart/apple").await.status(), 200);
    assert_eq!(client.post("/dark").await.status(), 200);
    let id = client.session(&layer).expect("a session");

    let removed = client.post("/week/remove-then-drop").await;
    assert_eq!(removed.status(), 200, "{}", removed.text());
    assert_eq!(removed.text(), "after: no cart");
    assert_eq!(client.get("/cart").await.text(), NO_CART);
    assert!(cart_of(&layer, &id).await.is_none(), "the slot came back");
    assert_eq!(client.get("/prefs").await.text(), "dark=true lang=");

    // On a new session too: nothing to store, no session.
    let fresh = browser::<A>(&layer).await;
    let removed = fresh.post("/week/remove-then-drop").await;
    assert_eq!(removed.text(), "after: no cart");
    assert!(
        live_cookies(&removed).is_empty(),
        "{:?}",
        removed.set_cookies()
    );
}

/// (7) Logout with a flash: `destroy()` ends the session (its data is gone, its id is dead)
/// and the flash written after it is in a fresh session under a new id, set by the same
/// response; the flash shows once.
pub(crate) async fn a_flash_after_logout_lands_in_a_fresh_session<A: App>() {
    let store = RecordingStore::memory();
    let layer = week_layer(store.clone());
    let client = browser::<A>(&layer).await;
    assert_eq!(client.post("/cart/apple").await.status(), 200);
    let login = client.post("/auth/login/42").await;
    let signed_in = token(&login);
    assert_eq!(client.get("/auth/who").await.text(), "user=42");

    let logout = client.post("/week/logout").await;
    assert_eq!(logout.status(), 200, "{}", logout.text());
    let fresh = live_cookies(&logout);
    assert_eq!(
        fresh.len(),
        1,
        "the flash's session is set: {:?}",
        logout.set_cookies()
    );
    assert_ne!(fresh[0], signed_in, "the logged-out id was kept");
    assert!(store.entry(&signed_in).await.is_none(), "not destroyed");
    assert_eq!(client.session(&layer).as_deref(), Some(fresh[0].as_str()));

    assert_eq!(client.get("/auth/who").await.text(), "nobody");
    assert_eq!(client.get("/cart").await.text(), NO_CART);
    assert_eq!(client.post("/week/flash").await.text(), "flash=signed out");
    assert_eq!(client.post("/week/flash").await.text(), "flash=none");

    // The old cookie, replayed: a dead id.
    let replay = browser::<A>(&layer).await;
    replay.set_session(&layer, &signed_in);
    let dead = replay.get("/auth/who").await;
    assert_eq!(dead.text(), "nobody");
    assert!(only_forgets(&dead), "{:?}", dead.set_cookies());
}

/// (11) `clear()` empties every slot (cart, prefs, the signed-in user) and keeps the id:
/// `id_text()` answers it in one call, no new cookie is set, and the session is still stored —
/// with its own expiry policy, which is not a slot the handler put there to be cleared.
pub(crate) async fn clear_empties_every_slot_and_keeps_the_id<A: App>() {
    let store = RecordingStore::memory();
    let layer = week_layer(store.clone());
    let client = browser::<A>(&layer).await;
    assert_eq!(client.post("/all").await.status(), 200);
    assert_eq!(client.post("/auth/login/42").await.status(), 200);
    assert_eq!(client.post("/remember").await.status(), 200);
    let id = client.session(&layer).expect("a session");

    let cleared = client.post("/week/clear").await;
    assert_eq!(cleared.status(), 200, "{}", cleared.text());
    assert_eq!(cleared.text(), id, "id_text() is the session's id");
    assert!(
        live_cookies(&cleared).iter().all(|value| *value == id),
        "another id was handed out: {:?}",
        cleared.set_cookies()
    );
    assert_eq!(client.session(&layer), Some(id.clone()));

    assert_eq!(
        client.get("/whoami").await.text(),
        "cart=none stored=true",
        "the session is kept, empty"
    );
    assert_eq!(client.get("/prefs").await.text(), "no prefs");
    assert_eq!(client.get("/auth/who").await.text(), "nobody");
    let stored = store.stored(&id).await.expect("still stored");
    let slots: Vec<String> = stored
        .record
        .slots()
        .map(|slot| slot.name().to_owned())
        .filter(|name| !name.starts_with("__"))
        .collect();
    assert!(slots.is_empty(), "slots left: {slots:?}");
    assert!(
        stored.record.slot("__expiry").is_some(),
        "clear() dropped the session's own expiry policy"
    );
    // ... and it still applies: the session ends thirty days after its last use, not one.
    let remaining = stored
        .deadline
        .expires_at
        .duration_since(std::time::SystemTime::now())
        .expect("a deadline ahead");
    assert!(
        remaining > REMEMBERED - std::time::Duration::from_secs(3600),
        "{remaining:?}"
    );
}
