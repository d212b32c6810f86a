//! Session ids through a real `Router`: a malformed or unknown id gets a fresh session (never
//! the id the client chose), what is logged never holds an id, and the id can travel in a
//! header instead of a cookie.

mod http_common;

use http::{HeaderName, Method, StatusCode};
use sessions::SessionId;
use sessions::prelude::*;

use http_common::{
    CountingStore, Counts, NO_CART, app, capture_logs, get_with, post_with, request_with_header,
    send,
};

fn counting_app() -> (CountingStore, axum::Router) {
    let store = CountingStore::new(MemoryStore::new());
    let app = app(SessionLayer::new(store.clone()));
    (store, app)
}

/// Ids a client might send that are not ids this library hands out.
const MALFORMED: [&str; 8] = [
    "not-an-id",
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", // 42 characters
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", // 44 characters
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+", // 43, not base64url
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.", // 43, not base64url
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB", // 43, trailing bits set: not 32 bytes' text
    "secret-token-that-must-not-be-logged-0123456789",
    "%41%41%41",
];

#[tokio::test]
async fn a_malformed_id_gets_a_fresh_session_and_is_never_logged() {
    let (store, app) = counting_app();
    for raw in MALFORMED {
        let (logs, guard) = capture_logs();
        let read = get_with(&app, "/cart", Some(raw)).await;
        let write = post_with(&app, "/cart/apple", Some(raw)).await;
        drop(guard);

        assert_eq!(read.status, StatusCode::OK, "{raw}");
        assert_eq!(read.body, NO_CART, "{raw}");
        assert!(read.set_cookies().is_empty(), "{raw}");
        assert_eq!(write.body, "items=apple coupon=- visits=0", "{raw}");
        let fresh = write.cookie();
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
    assert_eq!(store.counts().load, 0);
}

#[tokio::test]
async fn an_unknown_id_gets_a_fresh_session_under_another_id() {
    let (store, app) = counting_app();
    let unknown = SessionId::generate().expect("an id").expose().to_owned();
    let (logs, guard) = capture_logs();
    let read = get_with(&app, "/cart", Some(&unknown)).await;
    let write = post_with(&app, "/cart/apple", Some(&unknown)).await;
    drop(guard);

    assert_eq!(read.body, NO_CART);
    assert!(read.set_cookies().is_empty());
    assert_eq!(write.body, "items=apple coupon=- visits=0");
    // Never the id the client chose: that would let an attacker fix a victim's session id.
    let fresh = write.cookie();
    assert_ne!(fresh, unknown);
    assert!(store.stored(&unknown).await.is_none());
    assert!(store.stored(&fresh).await.is_some());
    assert_eq!(
        store.counts(),
        Counts {
            load: 2,
            create: 1,
            ..Counts::NONE
        }
    );
    let text = logs.text();
    assert!(
        !text.contains(&unknown),
        "the unknown id is in the logs:\n{text}"
    );
    assert!(!text.contains(&fresh), "the new id is in the logs:\n{text}");
}

#[tokio::test]
async fn no_log_line_of_a_whole_session_holds_its_id() {
    let (_store, app) = counting_app();
    let (logs, guard) = capture_logs();
    let first = post_with(&app, "/cart/apple", None).await.cookie();
    get_with(&app, "/cart", Some(&first)).await;
    post_with(&app, "/coupon/C", Some(&first)).await;
    let second = post_with(&app, "/login", Some(&first)).await.cookie();
    // The old id after the cycle, and a write to it (a fresh session).
    get_with(&app, "/cart", Some(&first)).await;
    let third = post_with(&app, "/fail/x", Some(&second)).await;
    assert_eq!(third.status, StatusCode::INTERNAL_SERVER_ERROR);
    post_with(&app, "/logout", Some(&second)).await;
    post_with(&app, "/cart/late", Some(&second)).await;
    drop(guard);

    let text = logs.text();
    for id in [&first, &second] {
        assert!(!text.contains(id.as_str()), "an id is in the logs:\n{text}");
    }
}

fn header_app() -> (CountingStore, axum::Router, HeaderName) {
    let name = HeaderName::from_static("x-session-id");
    let store = CountingStore::new(MemoryStore::new());
    let app = app(SessionLayer::new(store.clone()).header(name.clone()));
    (store, app, name)
}

#[tokio::test]
async fn the_header_transport_hands_the_id_back_in_the_header() {
    let (store, app, name) = header_app();
    let created = send(
        &app,
        request_with_header(Method::POST, "/cart/apple", &name, None),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK);
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

    // The id in the request header finds the session; a read sends nothing back.
    let read = send(
        &app,
        request_with_header(Method::GET, "/cart", &name, Some(&id)),
    )
    .await;
    assert_eq!(read.body, "items=apple coupon=- visits=0");
    assert_eq!(read.header("x-session-id"), None);

    // A write keeps the id.
    let write = send(
        &app,
        request_with_header(Method::POST, "/coupon/C", &name, Some(&id)),
    )
    .await;
    assert_eq!(write.body, "items=apple coupon=C visits=0");
    if let Some(back) = write.header("x-session-id") {
        assert_eq!(back, id);
    }

    // cycle_id hands the new id back in the header; the old one is dead.
    let login = send(
        &app,
        request_with_header(Method::POST, "/login", &name, Some(&id)),
    )
    .await;
    let new = login.header("x-session-id").expect("new id").to_owned();
    assert_ne!(new, id);
    let stale = send(
        &app,
        request_with_header(Method::GET, "/cart", &name, Some(&id)),
    )
    .await;
    assert_eq!(stale.body, NO_CART);

    // Logout clears it.
    let logout = send(
        &app,
        request_with_header(Method::POST, "/logout", &name, Some(&new)),
    )
    .await;
    assert_eq!(logout.header("x-session-id"), Some(""));
    assert!(store.stored(&new).await.is_none());
}

#[tokio::test]
async fn the_header_transport_ignores_the_cookie_and_refuses_malformed_ids() {
    let (store, app, name) = header_app();
    let id = send(
        &app,
        request_with_header(Method::POST, "/cart/apple", &name, None),
    )
    .await
    .header("x-session-id")
    .expect("id")
    .to_owned();
    // The id in a cookie is not looked at.
    assert_eq!(get_with(&app, "/cart", Some(&id)).await.body, NO_CART);
    // A malformed header value is a fresh session.
    for raw in MALFORMED {
        let reply = send(
            &app,
            request_with_header(Method::GET, "/cart", &name, Some(raw)),
        )
        .await;
        assert_eq!(reply.body, NO_CART, "{raw}");
    }
    assert!(store.stored(&id).await.is_some());
}
