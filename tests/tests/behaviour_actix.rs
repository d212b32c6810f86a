//! The behaviour suite (`behaviour/`) on the actix-web adapter, and the promises only the
//! actix-web adapter has: `IfStored<T>`, what actix's own `Option<Typed<T>>` means, and the
//! rejection as an actix-web `ResponseError`.

mod behaviour;

behaviour::suite!(crate::behaviour::actix_app::Actix);

mod actix_only {
    use actix_web::{App, ResponseError, web};
    use sessions::SessionRejection;
    use sessions::actix::IfStored;
    use sessions::prelude::*;
    use sessions::testing::TestClient;

    use crate::behaviour::actix_app::routes;
    use crate::behaviour::support::capture_logs;
    use crate::behaviour::{Cart, Gate, RecordingStore, layer, run_local};

    async fn if_stored(cart: IfStored<Cart>) -> String {
        match cart.into_inner() {
            Some(cart) => format!("some: {:?}", cart.items()),
            None => "none".to_owned(),
        }
    }

    async fn actix_option(cart: Option<Typed<Cart>>) -> String {
        match cart {
            Some(cart) => format!("some: {:?}", cart.items()),
            None => "none".to_owned(),
        }
    }

    /// The suite's routes and `/if-stored`, `/option` behind `layer`.
    async fn client(
        layer: SessionLayer,
    ) -> TestClient<impl sessions::testing::Transport + Clone + 'static> {
        let app = App::new()
            .app_data(web::Data::new(Gate::default()))
            .wrap(layer)
            .route("/if-stored", web::get().to(if_stored))
            .route("/option", web::get().to(actix_option))
            .configure(routes);
        TestClient::actix(actix_web::test::init_service(app).await)
    }

    /// `IfStored<T>`: `None` when nothing is stored for `T` (no session, or a session without
    /// that slot), `Some` when it is, and a 503 — not `None` — when the store fails.
    #[tokio::test]
    async fn if_stored_is_none_only_when_nothing_is_stored() {
        run_local(async {
            let store = RecordingStore::memory();
            let client = client(layer(store.clone())).await;
            assert_eq!(client.get("/if-stored").await.text(), "none");
            assert_eq!(client.post("/dark").await.status(), 200);
            assert_eq!(
                client.get("/if-stored").await.text(),
                "none",
                "a session without a cart"
            );
            assert_eq!(client.post("/cart/apple").await.status(), 200);
            assert_eq!(client.get("/if-stored").await.text(), "some: [\"apple\"]");
            store.fail_loads(true);
            let down = client.get("/if-stored").await;
            assert_eq!(down.status(), 503, "{}", down.text());
        })
        .await;
    }

    /// actix's own `Option<Typed<T>>` is a blanket extractor that cannot mean "nothing stored":
    /// `Some(default)` when nothing is stored, and `None` — the error swallowed — when the store
    /// fails. (`sessions::actix` documents it and points to `IfStored<T>`; this pins what it
    /// says, so a change is noticed.)
    #[tokio::test]
    async fn actix_option_typed_is_some_default_and_swallows_errors() {
        run_local(async {
            let store = RecordingStore::memory();
            let client = client(layer(store.clone())).await;
            assert_eq!(client.get("/option").await.text(), "some: []");
            assert_eq!(client.post("/cart/apple").await.status(), 200);
            assert_eq!(client.get("/option").await.text(), "some: [\"apple\"]");
            store.fail_loads(true);
            let down = client.get("/option").await;
            assert_eq!(
                (down.status().as_u16(), down.text().as_str()),
                (200, "none")
            );
        })
        .await;
    }

    /// A rejection is an actix-web `ResponseError`: its status, the message for the client as
    /// plain text (no backend details), and a `debug` line in the log with the details (a
    /// store that is down is logged where it failed; `error` is kept for setup mistakes).
    #[tokio::test]
    async fn a_rejection_is_a_response_error_with_its_status_and_the_client_message() {
        let rejection = SessionRejection::StoreUnavailable {
            type_name: "Cart",
            message: "connection to db.internal:5432 refused".into(),
        };
        assert_eq!(rejection.status_code().as_u16(), 503);
        let (logs, guard) = capture_logs();
        let response = rejection.error_response();
        drop(guard);
        assert_eq!(response.status().as_u16(), 503);
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        assert!(content_type.is_some_and(|value| value.starts_with("text/plain")));
        let body = actix_web::body::to_bytes(response.into_body())
            .await
            .expect("a body");
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
        assert_eq!(SessionRejection::Ended.status_code().as_u16(), 409);
    }
}
