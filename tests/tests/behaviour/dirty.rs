//! The store is touched only when a handler asks, a read writes nothing and sets no cookie,
//! and a save changes only the fields the request changed, of what is stored now.

use http::header::CACHE_CONTROL;

use super::handlers::NO_CART;
use super::recording_store::WriteKind;
use super::support::{attributes, get_as, max_age, post_as, the_set_cookie, token};
use super::{App, Calls, RecordingStore, browser, layer};

pub(crate) async fn a_write_sets_one_secure_cookie_with_max_age_and_no_store<A: App>() {
    let store = RecordingStore::memory();
    let client = browser::<A>(&layer(store.clone())).await;
    let response = client.post("/cart/apple").await;
    assert_eq!(response.status(), 200, "{}", response.text());
    let set_cookie = the_set_cookie(&response);
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
    assert_eq!(response.header(CACHE_CONTROL.as_str()), Some("no-store"));
    // A new session: no cookie came, so nothing was loaded; one create, nothing else.
    assert_eq!(
        store.calls(),
        Calls {
            swap: 1,
            ..Calls::NONE
        }
    );
    let writes = store.writes();
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0].kind(), WriteKind::Create);
    let stored = store.stored(&token(&response)).await.expect("created");
    assert!(stored.record.slot("cart").is_some());
}

pub(crate) async fn a_read_only_request_sets_no_cookie_and_writes_nothing<A: App>() {
    let store = RecordingStore::memory();
    let client = browser::<A>(&layer(store.clone())).await;
    let id = token(&client.post("/cart/apple").await);
    let before = store.calls();
    let stored_before = store.stored(&id).await;

    let response = client.get("/cart").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text(), "items=apple coupon=- visits=0");
    assert!(
        response.set_cookies().is_empty(),
        "{:?}",
        response.set_cookies()
    );
    assert_eq!(response.header(CACHE_CONTROL.as_str()), None);
    assert_eq!(
        store.calls().since(before),
        Calls {
            load: 1,
            ..Calls::NONE
        }
    );
    assert_eq!(store.stored(&id).await, stored_before);
}

pub(crate) async fn a_read_only_request_without_a_session_creates_nothing<A: App>() {
    let store = RecordingStore::memory();
    let client = browser::<A>(&layer(store.clone())).await;
    let response = client.get("/cart").await;
    assert_eq!(response.text(), NO_CART);
    assert!(response.set_cookies().is_empty());
    // No cookie: nothing to load, nothing to create.
    assert_eq!(store.calls(), Calls::NONE);
    assert!(store.inner().is_empty());
}

pub(crate) async fn a_handler_that_extracts_nothing_costs_no_store_call<A: App>() {
    let store = RecordingStore::memory();
    let layer = layer(store.clone());
    let client = browser::<A>(&layer).await;
    let id = token(&client.post("/cart/apple").await);
    let before = store.calls();
    for carried in [None, Some(id.as_str())] {
        let response = get_as(&client, &layer, carried, "/nothing").await;
        assert_eq!(response.status(), 200);
        assert!(response.set_cookies().is_empty());
    }
    assert_eq!(store.calls().since(before), Calls::NONE);
}

pub(crate) async fn two_slots_and_the_handle_load_the_record_once<A: App>() {
    let store = RecordingStore::memory();
    let client = browser::<A>(&layer(store.clone())).await;
    assert_eq!(client.post("/all").await.status(), 200);
    let before = store.calls();
    let response = client.get("/all").await;
    assert_eq!(response.status(), 200, "{}", response.text());
    assert_eq!(
        response.text(),
        "items=both coupon=- visits=0 dark=true lang=fr stored=true"
    );
    assert_eq!(
        store.calls().since(before),
        Calls {
            load: 1,
            ..Calls::NONE
        }
    );
    assert!(response.set_cookies().is_empty());
}

pub(crate) async fn an_optional_slot_is_none_when_nothing_is_stored<A: App>() {
    let layer = layer(RecordingStore::memory());
    let client = browser::<A>(&layer).await;
    // No session at all.
    assert_eq!(client.get("/cart").await.text(), NO_CART);
    assert_eq!(client.get("/prefs").await.text(), "no prefs");
    // A session that holds a cart but no prefs.
    assert_eq!(client.post("/cart/apple").await.status(), 200);
    assert!(client.session(&layer).is_some());
    assert_eq!(client.get("/prefs").await.text(), "no prefs");
    assert_ne!(client.get("/cart").await.text(), NO_CART);
}

pub(crate) async fn two_slots_written_in_one_handler_are_both_saved<A: App>() {
    let store = RecordingStore::memory();
    let layer = layer(store.clone());
    let client = browser::<A>(&layer).await;
    let response = client.post("/all").await;
    assert_eq!(response.status(), 200);
    let id = token(&response);
    let stored = store.stored(&id).await.expect("created");
    assert!(stored.record.slot("cart").is_some());
    assert!(stored.record.slot("prefs").is_some());

    // The next request sees both.
    assert_eq!(
        client.get("/cart").await.text(),
        "items=both coupon=- visits=0"
    );
    assert_eq!(client.get("/prefs").await.text(), "dark=true lang=fr");

    // Writing both again on the stored session saves both, in one write.
    let (before, written) = (store.calls(), store.writes().len());
    let response = client.post("/all").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        store.calls().since(before),
        Calls {
            load: 1,
            update: 1,
            ..Calls::NONE
        }
    );
    let writes = store.writes_since(written);
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0].slots_written(), ["cart", "prefs"]);
    // `prefs` was set to what it held already: only the cart's items differ.
    assert_eq!(writes[0].fields_changed(), ["cart.items"]);
}

/// Changed meaning: "only the changed field is written" is now "a save changes only that field
/// of what is stored now" (asserted on the store's entry before and after the write, not on a
/// changeset), and the save sends no `Set-Cookie` (issue 12, bug 6: a response re-sends the id
/// only when it changes or a refresh is due).
pub(crate) async fn only_the_changed_field_is_saved<A: App>() {
    let store = RecordingStore::memory();
    let client = browser::<A>(&layer(store.clone())).await;
    let id = token(&client.post("/cart/apple").await);
    let written = store.writes().len();
    let response = client.post("/coupon/WELCOME").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text(), "items=apple coupon=WELCOME visits=0");
    assert!(
        response.set_cookies().is_empty(),
        "{:?}",
        response.set_cookies()
    );

    let writes = store.writes_since(written);
    assert_eq!(writes.len(), 1, "one write: {writes:?}");
    let write = &writes[0];
    assert_eq!(write.key, super::support::key_of(&id));
    assert_eq!(write.kind(), WriteKind::Update);
    assert_eq!(write.fields_changed(), ["cart.coupon"]);
    assert!(
        !write.deadline_moved(),
        "a save no longer moves the deadline"
    );
    let after = write
        .after
        .as_ref()
        .and_then(|entry| entry.session())
        .expect("live");
    let slot = after.record.slot("cart").expect("the cart");
    assert_eq!(
        (slot.version(), slot.format()),
        (2, Some(sessions::Format::Json))
    );
    assert_eq!(slot.field("coupon").expect("coupon"), b"\"WELCOME\"");

    // The stored cart has the new coupon and kept its items.
    assert_eq!(
        client.get("/cart").await.text(),
        "items=apple coupon=WELCOME visits=0"
    );
}

/// Changed meaning (issue 12, bug 6): the old test let the layer choose whether a save re-sends
/// the cookie; now a save of a stored session sends none (the id did not change, and no
/// refresh is due), so a slow response can never overwrite a newer cookie.
pub(crate) async fn a_write_to_a_stored_session_saves_under_the_same_id_and_sends_no_cookie<
    A: App,
>() {
    let store = RecordingStore::memory();
    let layer = layer(store.clone());
    let client = browser::<A>(&layer).await;
    let id = token(&client.post("/cart/apple").await);
    let written = store.writes().len();
    let response = post_as(&client, &layer, Some(&id), "/cart/pear").await;
    assert_eq!(response.status(), 200);
    let writes = store.writes_since(written);
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0].key, super::support::key_of(&id));
    assert!(
        response.set_cookies().is_empty(),
        "{:?}",
        response.set_cookies()
    );
    assert_eq!(response.header(CACHE_CONTROL.as_str()), None);
    assert_eq!(client.session(&layer).as_deref(), Some(id.as_str()));
    assert_eq!(
        client.get("/cart").await.text(),
        "items=apple,pear coupon=- visits=0"
    );
}
