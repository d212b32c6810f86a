//! 100 concurrent requests on one session, each changing a different field: all 100 changes
//! survive, because a save carries only the field its request changed.

mod http_common;

use axum::Router;
use axum::routing::post;
use http::StatusCode;
use sessions::prelude::*;
use sessions::{Format, Session};

use http_common::{CountingStore, key_of, post_with};

/// Declares `Wide`, a session type with one `u32` field per name, and a router with one
/// route per field, `POST /{field}`, that sets that field (and only it) to 1.
macro_rules! wide {
    ($(($field:ident, $setter:ident))*) => {
        #[derive(Session, Default, Debug)]
        #[session(name = "wide")]
        struct Wide {
            $($field: u32,)*
        }

        fn wide_routes() -> Router {
            Router::new()
                $(.route(
                    concat!("/", stringify!($field)),
                    post(|mut wide: Typed<Wide>| async move {
                        wide.$setter(1);
                        "set"
                    }),
                ))*
        }
    };
}

wide! {
    (f00, set_f00) (f01, set_f01) (f02, set_f02) (f03, set_f03) (f04, set_f04) (f05, set_f05)
    (f06, set_f06) (f07, set_f07) (f08, set_f08) (f09, set_f09) (f10, set_f10) (f11, set_f11)
    (f12, set_f12) (f13, set_f13) (f14, set_f14) (f15, set_f15) (f16, set_f16) (f17, set_f17)
    (f18, set_f18) (f19, set_f19) (f20, set_f20) (f21, set_f21) (f22, set_f22) (f23, set_f23)
    (f24, set_f24) (f25, set_f25) (f26, set_f26) (f27, set_f27) (f28, set_f28) (f29, set_f29)
    (f30, set_f30) (f31, set_f31) (f32, set_f32) (f33, set_f33) (f34, set_f34) (f35, set_f35)
    (f36, set_f36) (f37, set_f37) (f38, set_f38) (f39, set_f39) (f40, set_f40) (f41, set_f41)
    (f42, set_f42) (f43, set_f43) (f44, set_f44) (f45, set_f45) (f46, set_f46) (f47, set_f47)
    (f48, set_f48) (f49, set_f49) (f50, set_f50) (f51, set_f51) (f52, set_f52) (f53, set_f53)
    (f54, set_f54) (f55, set_f55) (f56, set_f56) (f57, set_f57) (f58, set_f58) (f59, set_f59)
    (f60, set_f60) (f61, set_f61) (f62, set_f62) (f63, set_f63) (f64, set_f64) (f65, set_f65)
    (f66, set_f66) (f67, set_f67) (f68, set_f68) (f69, set_f69) (f70, set_f70) (f71, set_f71)
    (f72, set_f72) (f73, set_f73) (f74, set_f74) (f75, set_f75) (f76, set_f76) (f77, set_f77)
    (f78, set_f78) (f79, set_f79) (f80, set_f80) (f81, set_f81) (f82, set_f82) (f83, set_f83)
    (f84, set_f84) (f85, set_f85) (f86, set_f86) (f87, set_f87) (f88, set_f88) (f89, set_f89)
    (f90, set_f90) (f91, set_f91) (f92, set_f92) (f93, set_f93) (f94, set_f94) (f95, set_f95)
    (f96, set_f96) (f97, set_f97) (f98, set_f98) (f99, set_f99)
}

const FIELDS: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_requests_changing_different_fields_all_survive() {
    assert_eq!(Wide::FIELDS.len(), FIELDS);
    let store = CountingStore::new(MemoryStore::new());
    let app = wide_routes()
        .route(
            "/create",
            post(|mut wide: Typed<Wide>| async move {
                wide.set_f00(0);
                "created"
            }),
        )
        .layer(SessionLayer::new(store.clone()).register::<Wide>());
    let cookie = post_with(&app, "/create", None).await.cookie();

    let tasks: Vec<_> = Wide::FIELDS
        .iter()
        .map(|field| {
            let app = app.clone();
            let cookie = cookie.clone();
            let path = format!("/{field}");
            tokio::spawn(async move { post_with(&app, &path, Some(&cookie)).await })
        })
        .collect();
    for task in tasks {
        let reply = task.await.expect("no request panics");
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    assert_eq!(store.counts().save, FIELDS);
    // Each save carried one field.
    for (_, changes, _) in store.saves().iter() {
        let fields: usize = changes
            .iter()
            .map(|change| http_common::changed_fields(change).map_or(usize::MAX, |(_, f)| f.len()))
            .sum();
        assert_eq!(fields, 1, "{changes:?}");
    }

    // What the store holds: every field is 1.
    let stored = store
        .inner()
        .load(&key_of(&cookie))
        .await
        .expect("load")
        .expect("the session exists");
    let slot = stored.record.slot("wide").expect("the slot");
    let changed = Wide::FIELDS
        .iter()
        .filter(|field| {
            let bytes = slot.field(field).expect("every field is stored");
            Format::Json.decode::<u32>(bytes).expect("a u32") == 1
        })
        .count();
    assert_eq!(
        changed, FIELDS,
        "only {changed} of {FIELDS} changes survived"
    );
}
