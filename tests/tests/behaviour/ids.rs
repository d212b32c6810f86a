//! Session ids: a malformed or unknown id gets a fresh session (never the id the client chose),
//! what is logged never holds an id, and the id can travel in a header instead of a cookie.

use bytes::Bytes;
use http::{HeaderName, Method, Request};
use sessions::SessionId;
use sessions::testing::{TestClient, TestResponse, Transport};

use super::handlers::NO_CART;
use super::support::only_forgets;
use super::support::{capture_logs, get_as, post_as, token};
use super::{App, Calls, RecordingStore, browser, layer};

/// Ids a client might send that are not ids this library hands out.
pub(crate) const MALFORMED: [&str; 8] = [
    "not-an-id",
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", // 42 characters
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", // 44 characters
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+", // 43, not base64url
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.", // 43, not base64url
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB", // 43, trailing bits set: not 32 bytes' text
    "secret-token-that-must-not-be-logged-0123456789",
    "%41%41%41",
];

pub(crate) async fn a_malformed_id_gets_a_fresh_session_and_is_never_logged<A: App>() {
    let store = RecordingStore::memory();
    let layer = layer(store.clone());
    for raw in MALFORMED {
        let client = browser::<A>(&layer).await;
        let (logs, guard) = capture_logs();
        let read = get_as(&client, &layer, Some(raw), "/cart").await;
        let write = post_as(&client, &layer, Some(raw), "/cart/apple").await;
        drop(guard);

        assert_eq!(read.status(), 200, "{raw}");
        assert_eq!(read.text(), NO_CART, "{raw}");
        assert!(read.set_cookies().is_empty(), "{raw}");
        assert_eq!(write.text(), "items=apple coupon=- visits=0", "{raw}");
        let fresh = token(&write);
        assert_ne!(fresh, raw);
        assert!(SessionId::parse(&fresh).is_some(), "{fresh}");

        let warnings = logs.lines_at("WARN");
        assert!(
            !warnings.is_empty(),
            "{raw}: no warning logged; logs:\n{}",
            logs.text()
        );
        let text = logs.text();
        assert!(
            !text.contains(raw),
            "{raw}: the raw id is in the logs:\n{text}"
        );
        assert!(
            !text.contains(&fresh),
            "{raw}: the new id is in the logs:\n{text}"
        );
    }
    // A malformed id is refused before the store is asked.
    assert_eq!(store.calls().load, 0);
}

pub(crate) async fn an_unknown_id_gets_a_fresh_session_under_another_id<A: App>() {
    let store = RecordingStore::memory();
    let layer = layer(store.clone());
    let client = browser::<A>(&layer).await;
    let unknown = SessionId::generate().expect("an id").expose().to_owned();
    let (logs, guard) = capture_logs();
    let read = get_as(&client, &layer, Some(&unknown), "/cart").await;
    let write = post_as(&client, &layer, Some(&unknown), "/cart/apple").await;
    drop(guard);

    assert_eq!(read.text(), NO_CART);
    // The unknown id is cleared, and nothing is created for a read.
    assert!(only_forgets(&read), "{:?}", read.set_cookies());
    assert_eq!(write.text(), "items=apple coupon=- visits=0");
    // Never the id the client chose: that would let an attacker fix a victim's session id.
    let fresh = token(&write);
    assert_ne!(fresh, unknown);
    assert!(store.entry(&unknown).await.is_none());
    assert!(store.stored(&fresh).await.is_some());
    assert_eq!(
        store.calls(),
        Calls {
            load: 2,
            swap: 1,
            ..Calls::NONE
        }
    );
    let text = logs.text();
    assert!(
        !text.contains(&unknown),
        "the unknown id is in the logs:\n{text}"
    );
    assert!(!text.contains(&fresh), "the new id is in the logs:\n{text}");
}

pub(crate) async fn no_log_line_of_a_whole_session_holds_its_id<A: App>() {
    let layer = layer(RecordingStore::memory());
    let client = browser::<A>(&layer).await;
    let replay = browser::<A>(&layer).await;
    let (logs, guard) = capture_logs();
    let first = token(&client.post("/cart/apple").await);
    client.get("/cart").await;
    client.post("/coupon/C").await;
    let second = token(&client.post("/login").await);
    // The old id after the cycle, and a write to it (refused: a stale cookie).
    get_as(&replay, &layer, Some(&first), "/cart").await;
    post_as(&replay, &layer, Some(&first), "/cart/stale").await;
    assert_eq!(client.post("/fail/x").await.status(), 500);
    client.post("/logout").await;
    post_as(&replay, &layer, Some(&second), "/cart/late").await;
    drop(guard);

    let text = logs.text();
    for id in [&first, &second] {
        assert!(!text.contains(id.as_str()), "an id is in the logs:\n{text}");
    }
}

fn header_name() -> HeaderName {
    HeaderName::from_static("x-session-id")
}

/// A request to `path` carrying `value` in the id header, from a client that keeps nothing.
async fn with_header<T: Transport>(
    client: &TestClient<T>,
    method: Method,
    path: &str,
    value: &str,
) -> TestResponse {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(header_name(), value)
        .body(Bytes::new())
        .expect("a valid request");
    client.send(request).await
}

/// Changed meaning (issue 12, bug 6 and issue 16 point 10): the header is sent only when the
/// id changes (create, cycle) and cleared (an empty value) at logout; a write to a stored
/// session used to be allowed to send it back, now it sends none.
pub(crate) async fn the_header_transport_hands_the_id_back_only_when_it_changes<A: App>() {
    let store = RecordingStore::memory();
    let layer = layer(store.clone()).header(header_name());
    let client = browser::<A>(&layer).await.id_header(header_name());
    let created = client.post("/cart/apple").await;
    assert_eq!(created.status(), 200);
    assert!(
        created.set_cookies().is_empty(),
        "no cookie with the header transport"
    );
    let id = created
        .header("x-session-id")
        .expect("the id comes back in the header")
        .to_owned();
    assert!(SessionId::parse(&id).is_some(), "{id}");
    assert!(store.stored(&id).await.is_some());
    assert_eq!(client.session(&layer).as_deref(), Some(id.as_str()));

    // The id in the request header finds the session; a read sends nothing back.
    let read = client.get("/cart").await;
    assert_eq!(read.text(), "items=apple coupon=- visits=0");
    assert_eq!(read.header("x-session-id"), None);

    // A write keeps the id, and does not send it again.
    let write = client.post("/coupon/C").await;
    assert_eq!(write.text(), "items=apple coupon=C visits=0");
    assert_eq!(write.header("x-session-id"), None);

    // cycle_id hands the new id back in the header; the old one is dead.
    let login = client.post("/login").await;
    let new = login.header("x-session-id").expect("new id").to_owned();
    assert_ne!(new, id);
    let stranger = browser::<A>(&layer).await;
    assert_eq!(
        with_header(&stranger, Method::GET, "/cart", &id)
            .await
            .text(),
        NO_CART
    );
    assert_eq!(
        client.get("/cart").await.text(),
        "items=apple coupon=C visits=1"
    );

    // Logout clears it.
    let logout = client.post("/logout").await;
    assert_eq!(logout.header("x-session-id"), Some(""));
    assert!(client.session(&layer).is_none());
    assert!(store.entry(&new).await.is_none());
}

pub(crate) async fn the_header_transport_ignores_the_cookie_and_refuses_malformed_ids<A: App>() {
    let store = RecordingStore::memory();
    let layer = layer(store.clone()).header(header_name());
    let client = browser::<A>(&layer).await;
    let id = with_header(&client, Method::POST, "/cart/apple", "")
        .await
        .header("x-session-id")
        .expect("id")
        .to_owned();
    // The id in a cookie is not looked at.
    client.set_cookie("session", &id);
    assert_eq!(client.get("/cart").await.text(), NO_CART);
    client.remove_cookie("session");
    // A malformed header value is a fresh session.
    for raw in MALFORMED {
        let response = with_header(&client, Method::GET, "/cart", raw).await;
        assert_eq!(response.text(), NO_CART, "{raw}");
    }
    assert_eq!(
        with_header(&client, Method::GET, "/cart", &id).await.text(),
        "items=apple coupon=- visits=0"
    );
    assert!(store.stored(&id).await.is_some());
}

/// Issue 12 ("also decide"): header mode trims whitespace around the id, as cookie mode does.
pub(crate) async fn the_header_transport_trims_whitespace_around_the_id<A: App>() {
    let layer = layer(RecordingStore::memory()).header(header_name());
    let client = browser::<A>(&layer).await.id_header(header_name());
    assert_eq!(client.post("/cart/apple").await.status(), 200);
    let id = client.session(&layer).expect("an id");
    for padded in [format!(" {id}"), format!("{id}  "), format!("\t{id} ")] {
        let response =
            with_header(&browser::<A>(&layer).await, Method::GET, "/cart", &padded).await;
        assert_eq!(
            response.text(),
            "items=apple coupon=- visits=0",
            "{padded:?}"
        );
    }
}
