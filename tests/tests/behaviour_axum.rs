//! The behaviour suite (`behaviour/`) on the tower adapter, through axum, and the promises only
//! the tower/axum adapter has: axum's `Option<Typed<T>>` extractor, the rejection as an axum
//! response, the handle in a plain tower service's request, and the hundred concurrent writes
//! again on a multi-thread runtime (axum's futures are `Send`: the requests run truly in
//! parallel). The randomized history stays on one thread: there, what a tab reads from the
//! shared jar and what its request carries are one step, so its history is exact.

mod behaviour;

behaviour::suite!(crate::behaviour::axum_app::Axum);

mod axum_only {
    use std::convert::Infallible;

    use axum::response::IntoResponse;
    use axum::routing::get;
    use bytes::Bytes;
    use http::{Request, Response, StatusCode};
    use http_body_util::BodyExt;
    use sessions::prelude::*;
    use sessions::testing::TestClient;
    use sessions::{Format, Session, SessionRejection};
    use tower::{Layer, service_fn};

    use crate::behaviour::axum_app::router;
    use crate::behaviour::concurrency::FIELDS;
    use crate::behaviour::model::Wide;
    use crate::behaviour::support::capture_logs;
    use crate::behaviour::{Cart, Gate, RecordingStore, layer};

    /// What `Option<Typed<Cart>>` gave the handler.
    async fn optional_cart(cart: Option<Typed<Cart>>) -> String {
        match cart {
            Some(cart) => format!("some: {:?}", cart.items()),
            None => "none".to_owned(),
        }
    }

    /// `Option<Typed<T>>` in axum: `None` when nothing is stored for `T` (no session, or a
    /// session without that slot), `Some` when it is, and a rejection — not `None` — when the
    /// store fails: a handler never mistakes an outage for "nothing stored".
    #[tokio::test]
    async fn option_typed_is_none_only_when_nothing_is_stored() {
        let store = RecordingStore::memory();
        let layer = layer(store.clone());
        let app = router(Gate::default())
            .route("/optional", get(optional_cart))
            .layer(layer.clone());
        let client = TestClient::new(app);
        assert_eq!(client.get("/optional").await.text(), "none");
        assert_eq!(client.post("/dark").await.status(), 200);
        assert_eq!(
            client.get("/optional").await.text(),
            "none",
            "a session without a cart"
        );
        assert_eq!(client.post("/cart/apple").await.status(), 200);
        assert_eq!(client.get("/optional").await.text(), "some: [\"apple\"]");
        store.fail_loads(true);
        let down = client.get("/optional").await;
        assert_eq!(down.status(), 503, "{}", down.text());
    }

    /// A rejection is an axum response: its status, the message for the client (no backend
    /// details), and a `debug` line in the log with the details (a store that is down is
    /// logged where it failed; `error` is kept for mistakes in the app's setup).
    #[tokio::test]
    async fn a_rejection_is_a_response_with_its_status_and_the_client_message() {
        let rejection = SessionRejection::StoreUnavailable {
            type_name: "Cart",
            message: "connection to db.internal:5432 refused".into(),
        };
        let (logs, guard) = capture_logs();
        let response = rejection.into_response();
        drop(guard);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        let body = String::from_utf8_lossy(&body);
        assert_eq!(body, "session store unavailable; try again later");
        assert!(
            logs.lines_at("DEBUG")
                .iter()
                .any(|line| line.contains("db.internal")),
            "{}",
            logs.text()
        );
        assert!(logs.lines_at("ERROR").is_empty(), "{}", logs.text());
    }

    /// Without axum, the handle is in the request's extensions: a plain `tower::service_fn`
    /// behind the layer keeps a session.
    #[tokio::test]
    async fn a_plain_tower_service_finds_the_handle_in_the_request() {
        let layer = layer(RecordingStore::memory());
        let service = layer.clone().layer(service_fn(
            |request: Request<http_body_util::Full<Bytes>>| async move {
                let session = request
                    .extensions()
                    .get::<SessionHandle>()
                    .expect("the handle")
                    .clone();
                let mut cart = session.get_or_default::<Cart>().await.expect("the cart");
                cart.items_mut().push("tower".into());
                let body = cart.items().len().to_string();
                drop(cart);
                Ok::<_, Infallible>(Response::new(http_body_util::Full::new(Bytes::from(body))))
            },
        ));
        let client = TestClient::new(service);
        assert_eq!(client.get("/").await.text(), "1");
        assert_eq!(client.get("/").await.text(), "2", "the cookie came back");
        assert!(client.session(&layer).is_some());
    }

    /// The 240 concurrent different-field writes of `concurrency.rs`, truly in parallel on
    /// four worker threads: all 240 survive.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn parallel_requests_changing_different_fields_all_survive() {
        let store = RecordingStore::memory();
        let layer = SessionLayer::new(store.clone()).register::<Wide>();
        let client = TestClient::new(router(Gate::default()).layer(layer.clone()));
        assert_eq!(client.post("/wide/f000").await.status(), 200);
        let id = client.session(&layer).expect("created");
        let requests: Vec<_> = Wide::FIELDS
            .iter()
            .map(|field| {
                let client = client.clone();
                let path = format!("/wide/{field}");
                tokio::spawn(async move { client.post(&path).await })
            })
            .collect();
        for request in requests {
            let response = request.await.expect("no request panics");
            assert_eq!(response.status(), 200, "{}", response.text());
        }
        let stored = store.stored(&id).await.expect("the session exists");
        let slot = stored.record.slot("wide").expect("the slot");
        let set = Wide::FIELDS
            .iter()
            .filter(|field| {
                Format::Json
                    .decode::<u32>(slot.field(field).expect("stored"))
                    .ok()
                    == Some(1)
            })
            .count();
        assert_eq!(set, FIELDS, "only {set} of {FIELDS} changes survived");
    }
}
