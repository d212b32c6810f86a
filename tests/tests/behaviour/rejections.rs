//! When a handler cannot get or keep its session, the response says what is wrong: a missing
//! layer, an unregistered type, a store that is down (for loads or for writes), data stored by
//! a newer version of the app. A 2xx always means what the handler did is stored.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use sessions::store::{Deadline, Record, Slot};
use sessions::{Format, SessionLayer, SessionRejection};

use super::handlers::NO_CART;
use super::model::{Cart, Prefs};
use super::support::{capture_logs, token};
use super::{App, Calls, RecordingStore, browser, layer};

fn type_of<T>() -> &'static str {
    std::any::type_name::<T>()
}

/// The client's text of a setup mistake: plain, with nothing of the app's insides.
const INTERNAL: &str = "internal server error";

pub(crate) async fn a_typed_slot_without_the_layer_is_a_plain_500_and_the_log_names_the_fix<
    A: App,
>() {
    let client = A::serve_without_layer().await;
    let (logs, guard) = capture_logs();
    let responses = [
        client.post("/cart/apple").await, // Typed<Cart>
        client.get("/cart").await,        // the optional cart
        client.post("/logout").await,     // SessionHandle
    ];
    drop(guard);
    for response in responses {
        assert_eq!(response.status(), 500);
        assert_eq!(response.text(), INTERNAL, "no type paths, no advice");
    }
    let errors = logs.lines_at("ERROR").join("\n");
    assert!(errors.contains(type_of::<Cart>()), "{errors}");
    assert!(errors.contains("SessionHandle"), "{errors}");
    assert!(errors.contains("no `SessionLayer`"), "{errors}");
}

pub(crate) async fn an_unregistered_type_is_a_plain_500_and_the_log_says_register<A: App>() {
    let store = RecordingStore::memory();
    // Prefs is registered, Cart is not.
    let client = browser::<A>(&SessionLayer::new(store.clone()).register::<Prefs>()).await;
    let (logs, guard) = capture_logs();
    let responses = [client.post("/cart/apple").await, client.get("/cart").await];
    drop(guard);
    for response in responses {
        assert_eq!(response.status(), 500);
        assert_eq!(response.text(), INTERNAL);
        assert!(!response.text().contains("Cart"));
    }
    let errors = logs.lines_at("ERROR").join("\n");
    assert!(
        errors.contains(&format!(".register::<{}>()", type_of::<Cart>())),
        "{errors}"
    );
    assert_eq!(store.calls(), Calls::NONE, "nothing was stored");
    // The registered type works.
    assert_eq!(client.get("/prefs").await.text(), "no prefs");
}

/// `SessionLayer::on_rejection` shapes every rejection's response: an extractor's (here an
/// unregistered type, and a store that is down at load) and the layer's own when a handler's
/// change cannot be stored; the session's headers still go on it.
pub(crate) async fn the_rejection_hook_shapes_every_rejection<A: App>() {
    let store = RecordingStore::memory();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let hook_seen = seen.clone();
    let layer = SessionLayer::new(store.clone())
        .register::<Prefs>()
        .on_rejection(move |rejection: &SessionRejection| {
            hook_seen
                .lock()
                .expect("hook lock")
                .push(rejection.status().as_u16());
            let mut response = rejection.to_response();
            *response.body_mut() = format!("<p>sorry: {}</p>", rejection.client_message());
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/html; charset=utf-8"),
            );
            response
        });
    let client = browser::<A>(&layer).await;

    let unregistered = client.post("/cart/apple").await;
    assert_eq!(unregistered.status(), 500);
    assert_eq!(unregistered.text(), "<p>sorry: internal server error</p>");
    assert_eq!(
        unregistered.header("content-type"),
        Some("text/html; charset=utf-8")
    );

    assert_eq!(client.post("/dark").await.status(), 200);
    store.fail_writes(true);
    let unsaved = client.post("/lang/fr").await;
    assert_eq!(unsaved.status(), 503);
    assert_eq!(
        unsaved.text(),
        "<p>sorry: session store unavailable; not saved</p>"
    );
    assert!(
        unsaved.header("x-session-error").is_some(),
        "the layer's header stays"
    );
    store.fail_writes(false);

    store.fail_loads(true);
    let down = client.get("/prefs").await;
    assert_eq!(down.status(), 503);
    assert_eq!(
        down.text(),
        "<p>sorry: session store unavailable; try again later</p>"
    );
    store.fail_loads(false);

    // A handler's own error response is not a session rejection: the hook leaves it alone.
    assert_eq!(client.get("/prefs").await.text(), "dark=true lang=");
    assert_eq!(*seen.lock().expect("hook lock"), [500, 503, 503]);
}

pub(crate) async fn a_store_that_is_down_is_a_503_with_a_message<A: App>() {
    let store = RecordingStore::memory();
    let client = browser::<A>(&layer(store.clone())).await;
    assert_eq!(client.post("/cart/apple").await.status(), 200);
    store.fail_loads(true);
    for response in [
        client.get("/cart").await,
        client.post("/cart/pear").await,
        client.get("/all").await,
    ] {
        assert_eq!(response.status(), 503, "{}", response.text());
        assert!(
            response.text().contains("unavailable"),
            "{}",
            response.text()
        );
        // The backend's own words (hosts, users, queries) go to the log, never to the client.
        assert!(
            !response.text().contains("connection refused"),
            "{}",
            response.text()
        );
        assert!(response.set_cookies().is_empty());
    }
    // A change made through the handle alone cannot be saved either: not a silent 200.
    let response = client.post("/remember").await;
    assert_eq!(
        response.status(),
        503,
        "\"remember me\" was lost while the response said it worked"
    );
    // So is a cycle_id the store cannot do: the login must not look protected.
    let response = client.post("/cycle").await;
    assert_eq!(
        response.status(),
        503,
        "cycle_id was skipped while the response said it worked"
    );
    assert!(response.set_cookies().is_empty());
    // No write was attempted, and the stored session is intact once the store is back.
    assert_eq!(store.calls().writes(), 1, "only the first request's create");
    store.fail_loads(false);
    assert_eq!(
        client.get("/cart").await.text(),
        "items=apple coupon=- visits=0"
    );
}

/// A store that loads but cannot write: the write is a 503 saying it was not saved, never a
/// 200 for a change that is not stored; reads still work.
pub(crate) async fn a_store_that_cannot_write_is_a_503_and_nothing_is_lost<A: App>() {
    let store = RecordingStore::memory();
    let layer = layer(store.clone());
    let client = browser::<A>(&layer).await;
    let id = token(&client.post("/cart/apple").await);
    store.fail_writes(true);
    for path in ["/cart/pear", "/coupon/C", "/login", "/logout"] {
        let response = client.post(path).await;
        assert_eq!(response.status(), 503, "{path}: {}", response.text());
        assert!(
            response
                .header("x-session-error")
                .is_some_and(|why| why.contains("not")),
            "{path}: {:?}",
            response.header("x-session-error")
        );
        assert!(
            response.set_cookies().is_empty(),
            "{path}: {:?}",
            response.set_cookies()
        );
    }
    // A new session cannot be created either.
    let stranger = browser::<A>(&layer).await;
    let response = stranger.post("/cart/x").await;
    assert_eq!(response.status(), 503);
    assert!(response.set_cookies().is_empty());
    // Reads work, and show the session as it was.
    assert_eq!(
        client.get("/cart").await.text(),
        "items=apple coupon=- visits=0"
    );
    store.fail_writes(false);
    assert_eq!(client.session(&layer).as_deref(), Some(id.as_str()));
    assert_eq!(client.post("/cart/pear").await.status(), 200);
    assert_eq!(
        client.get("/cart").await.text(),
        "items=apple,pear coupon=- visits=0"
    );
}

/// A session holding a cart written by a newer deployment (version 9), filed directly in the
/// store under a fresh id.
async fn session_from_the_future(store: &RecordingStore) -> (String, Record) {
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
    let id = sessions::store::create_session(store.inner(), record.clone(), deadline)
        .await
        .expect("create");
    let stored = store.stored(id.expose()).await.expect("stored");
    (id.expose().to_owned(), stored.record)
}

pub(crate) async fn a_slot_at_a_future_version_is_an_error_and_stays_as_stored<A: App>() {
    let store = RecordingStore::memory();
    let layer = layer(store.clone());
    let client = browser::<A>(&layer).await;
    let (id, record) = session_from_the_future(&store).await;
    client.set_session(&layer, &id);

    let (logs, guard) = capture_logs();
    let responses = [
        client.get("/cart").await,
        client.post("/cart/apple").await,
        client.post("/coupon/C").await,
    ];
    drop(guard);
    // Stored data this code cannot use: a warning an operator sees, not a setup mistake.
    let errors = logs.lines_at("WARN").join("\n");
    assert!(errors.contains(type_of::<Cart>()), "{errors}");
    assert!(errors.contains("version 9"), "{errors}");
    for response in responses {
        assert!(
            response.status().is_server_error(),
            "{}: {}",
            response.status(),
            response.text()
        );
        assert_eq!(response.text(), "the stored session cannot be read");
        assert!(response.set_cookies().is_empty());
        assert_ne!(response.text(), NO_CART);
    }
    assert_eq!(store.calls().writes(), 0);
    let stored = store.stored(&id).await.expect("still stored");
    assert_eq!(
        stored.record, record,
        "the newer version's data was changed"
    );
}

pub(crate) async fn a_slot_at_a_future_version_survives_writes_to_other_slots<A: App>() {
    let store = RecordingStore::memory();
    let layer = layer(store.clone());
    let client = browser::<A>(&layer).await;
    let (id, record) = session_from_the_future(&store).await;
    client.set_session(&layer, &id);
    let response = client.post("/dark").await;
    assert_eq!(response.status(), 200);
    assert_eq!(client.get("/prefs").await.text(), "dark=true lang=");
    let stored = store.stored(&id).await.expect("still stored");
    assert_eq!(stored.record.slot("cart"), record.slot("cart"));
}
