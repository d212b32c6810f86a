//! When a handler cannot get its session, the response says what is wrong: a missing layer,
//! an unregistered type, a store that is down, data stored by a newer version of the app.

mod http_common;

use std::time::{Duration, SystemTime};

use axum::Router;
use axum::routing::post;
use bytes::Bytes;
use http::StatusCode;
use sessions::prelude::*;
use sessions::{Deadline, Expiry, Format, Record, SessionId, Slot};

use http_common::{Cart, CountingStore, Counts, NO_CART, Prefs, app, get_with, post_with, routes};

fn type_of<T>() -> &'static str {
    std::any::type_name::<T>()
}

#[tokio::test]
async fn a_typed_slot_without_the_layer_is_a_500_naming_the_type_and_the_layer() {
    let app = routes();
    for reply in [
        post_with(&app, "/cart/apple", None).await, // Typed<Cart>
        get_with(&app, "/cart", None).await,        // Option<Typed<Cart>>
    ] {
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(reply.body.contains(type_of::<Cart>()), "{}", reply.body);
        assert!(reply.body.contains("SessionLayer"), "{}", reply.body);
        assert!(reply.body.contains("no `SessionLayer`"), "{}", reply.body);
    }
    let reply = post_with(&app, "/logout", None).await; // SessionHandle
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(reply.body.contains("SessionHandle"), "{}", reply.body);
    assert!(reply.body.contains("SessionLayer"), "{}", reply.body);
}

#[tokio::test]
async fn an_unregistered_type_is_a_500_naming_the_type_and_register() {
    let store = CountingStore::new(MemoryStore::new());
    // Prefs is registered, Cart is not.
    let app = routes().layer(SessionLayer::new(store.clone()).register::<Prefs>());
    for reply in [
        post_with(&app, "/cart/apple", None).await,
        get_with(&app, "/cart", None).await,
    ] {
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(reply.body.contains(type_of::<Cart>()), "{}", reply.body);
        assert!(
            reply
                .body
                .contains(&format!(".register::<{}>()", type_of::<Cart>())),
            "{}",
            reply.body
        );
    }
    assert_eq!(store.counts(), Counts::NONE, "nothing was stored");
    // The registered type works.
    assert_eq!(get_with(&app, "/prefs", None).await.body, "no prefs");
}

/// Routes that change the session through the handle alone.
fn handle_routes(router: Router) -> Router {
    router
        .route(
            "/remember",
            post(|session: SessionHandle| async move {
                session.set_expiry(Expiry::idle(Duration::from_secs(30 * 24 * 3600)));
                "remembered"
            }),
        )
        .route(
            "/cycle",
            post(|session: SessionHandle| async move {
                session.cycle_id();
                "cycled"
            }),
        )
}

#[tokio::test]
async fn a_store_that_is_down_is_a_503_with_a_message() {
    let store = CountingStore::new(MemoryStore::new());
    let app = handle_routes(routes()).layer(
        SessionLayer::new(store.clone())
            .register::<Cart>()
            .register::<Prefs>(),
    );
    let cookie = post_with(&app, "/cart/apple", None).await.cookie();
    store.fail_loads(true);
    for reply in [
        get_with(&app, "/cart", Some(&cookie)).await,
        post_with(&app, "/cart/pear", Some(&cookie)).await,
        get_with(&app, "/all", Some(&cookie)).await,
    ] {
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            reply.body
        );
        assert!(reply.body.contains("unavailable"), "{}", reply.body);
        // The backend's own words (hosts, users, queries) go to the log, never to the client.
        assert!(!reply.body.contains("connection refused"), "{}", reply.body);
        assert!(reply.set_cookies().is_empty());
    }
    // A change made through the handle alone cannot be saved either: not a silent 200.
    let reply = post_with(&app, "/remember", Some(&cookie)).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "\"remember me\" was lost while the response said it worked"
    );
    // So is a cycle_id the store cannot do: the login must not look protected.
    let reply = post_with(&app, "/cycle", Some(&cookie)).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "cycle_id was skipped while the response said it worked"
    );
    assert!(reply.set_cookies().is_empty());
    // No save was attempted, and the stored session is intact once the store is back.
    assert_eq!(store.counts().save, 0);
    store.fail_loads(false);
    assert_eq!(
        get_with(&app, "/cart", Some(&cookie)).await.body,
        "items=apple coupon=- visits=0"
    );
}

/// A session holding a cart written by a newer deployment (version 9), filed directly in the
/// store under a fresh id.
async fn session_from_the_future(store: &CountingStore) -> (String, Record) {
    let id = SessionId::generate().expect("an id");
    let mut record = Record::new();
    record.insert(Slot::new(
        "cart",
        9,
        Format::Json,
        vec![
            ("items".into(), Bytes::from_static(br#"["from","v9"]"#)),
            ("coupon".into(), Bytes::from_static(b"null")),
            ("visits".into(), Bytes::from_static(b"3")),
            ("loyalty".into(), Bytes::from_static(b"\"gold\"")),
        ],
    ));
    let now = SystemTime::now();
    let deadline = Deadline {
        created_at: now,
        expires_at: now + Duration::from_secs(3600),
    };
    store
        .inner()
        .create(&id.key(), &record, deadline)
        .await
        .expect("create");
    (id.expose().to_owned(), record)
}

#[tokio::test]
async fn a_slot_at_a_future_version_is_an_error_and_stays_as_stored() {
    let store = CountingStore::new(MemoryStore::new());
    let app = app(SessionLayer::new(store.clone()));
    let (cookie, record) = session_from_the_future(&store).await;

    for reply in [
        get_with(&app, "/cart", Some(&cookie)).await,
        post_with(&app, "/cart/apple", Some(&cookie)).await,
        post_with(&app, "/coupon/C", Some(&cookie)).await,
    ] {
        assert!(
            reply.status.is_server_error(),
            "{}: {}",
            reply.status,
            reply.body
        );
        assert!(reply.body.contains(type_of::<Cart>()), "{}", reply.body);
        assert!(reply.body.contains("version 9"), "{}", reply.body);
        assert!(reply.set_cookies().is_empty());
        assert_ne!(reply.body, NO_CART);
    }
    assert_eq!(store.counts().save, 0);
    assert_eq!(store.counts().delete, 0);
    let stored = store.stored(&cookie).await.expect("still stored");
    assert_eq!(
        stored.record, record,
        "the newer version's data was changed"
    );
}

#[tokio::test]
async fn a_slot_at_a_future_version_survives_writes_to_other_slots() {
    let store = CountingStore::new(MemoryStore::new());
    let app = routes()
        .route(
            "/dark",
            post(|mut prefs: Typed<Prefs>| async move {
                prefs.set_dark(true);
                "dark"
            }),
        )
        .layer(
            SessionLayer::new(store.clone())
                .register::<Cart>()
                .register::<Prefs>(),
        );
    let (cookie, record) = session_from_the_future(&store).await;
    let reply = post_with(&app, "/dark", Some(&cookie)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        get_with(&app, "/prefs", Some(&cookie)).await.body,
        "dark=true lang="
    );
    let stored = store.stored(&cookie).await.expect("still stored");
    assert_eq!(stored.record.slot("cart"), record.slot("cart"));
}
