//! [`seed`] and [`inspect`]: a stored session to start a test from, and a look at one. Both are
//! requests to the core, as a handler's would be: `seed` stores what a handler that inserts the
//! value stores, and `inspect` reads what a handler would read (revoked cookies, unreadable
//! data and stores that fail included).

use std::sync::Arc;

use http::{HeaderValue, Request, StatusCode, header};

use crate::layer::SessionLayer;
use crate::schema::Session;
use crate::session::{Begun, Config, SessionHandle, SessionRejection, Transport, begin};
use crate::typed::Typed;

/// Stores a new session holding `value` (as `T`'s slot, in the layer's format, with the layer's
/// expiry) through `layer`, as a handler that inserts it would (the owner is bound, the cookie
/// sealed as the layer seals it), and returns its token: the id (or, for a `CookieStore`, the
/// sealed cookie) to give a [`TestClient`](super::TestClient) with
/// [`set_session`](super::TestClient::set_session).
///
/// ```
/// use sessions::prelude::*;
/// #[derive(Session, Default)] #[session(name = "cart")] struct Cart { n: u32 }
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let layer = SessionLayer::new(MemoryStore::new()).register::<Cart>();
/// let token = sessions::testing::seed(&layer, Cart { n: 3 }).await.unwrap();
/// let cart = sessions::testing::inspect::<Cart>(&layer, &token).await.unwrap().unwrap();
/// assert_eq!(cart.n, 3);
/// # });
/// ```
///
/// `T` need not be registered: a test may store what an older deployment stored (a `CartV1` of
/// the registered `Cart`'s `migrate_from` chain).
///
/// # Errors
/// The failure the layer would answer a handler's request with, as a
/// [`SessionRejection::NotSaved`]: the store down (503), …
pub async fn seed<T: Session>(layer: &SessionLayer, value: T) -> Result<String, SessionRejection> {
    let session = request(layer.config(), Request::new(()))?;
    session.put(value)?;
    let finished = session.finish(StatusCode::OK, None).await;
    match finished.token()? {
        Some(token) => Ok(token.to_owned()),
        None => Err(SessionRejection::Unsaved {
            message: "the seeded session was not stored".to_owned(),
        }),
    }
}

/// `T`'s value in the session `token` (a [`TestClient::session`](super::TestClient::session),
/// or what [`seed`] gave), decoded (and migrated) as a handler would see it: `None` when the
/// session holds nothing for `T` or is not stored (or revoked). Nothing is written.
///
/// ```
/// use sessions::prelude::*;
/// #[derive(Session, Default)] #[session(name = "cart")] struct Cart { n: u32 }
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let layer = SessionLayer::new(MemoryStore::new()).register::<Cart>();
/// assert!(sessions::testing::inspect::<Cart>(&layer, "no-such-id").await.unwrap().is_none());
/// # });
/// ```
///
/// # Errors
/// The rejection a handler's `get::<T>()` would meet.
pub async fn inspect<T: Session>(
    layer: &SessionLayer,
    token: &str,
) -> Result<Option<T>, SessionRejection> {
    let config = layer.config();
    let Some(head) = carrying(config, token) else {
        return Ok(None);
    };
    let session = request(config, head)?;
    // The request is never finished: a migration's write-back or a due refresh is not done.
    Ok(session.get::<T>().await?.map(Typed::into_inner))
}

/// A request's session, begun with `head` (a `GET` of `/`: nothing a layer refuses).
fn request(config: &Arc<Config>, head: Request<()>) -> Result<SessionHandle, SessionRejection> {
    match begin(config, &head) {
        // A token check is for a request a browser may have been tricked into sending; the
        // test kit's are the test's own.
        Begun::Proceed(session) | Begun::Check(session, _) => Ok(session),
        Begun::Refuse(refusal) => Err(SessionRejection::NotSaved {
            status: refusal.status(),
            reason: "the layer refused the test kit's request",
        }),
    }
}

/// A request that carries `token` where the layer looks for it; `None` when it cannot be put
/// in a header.
fn carrying(config: &Config, token: &str) -> Option<Request<()>> {
    let mut head = Request::new(());
    match &config.transport {
        Transport::Header(name) => {
            let value = HeaderValue::from_str(token).ok()?;
            head.headers_mut().insert(name.clone(), value);
        }
        Transport::Cookie | Transport::CookieOrHeader(_) => {
            let cookie = format!("{}={token}", config.cookie.cookie_name());
            let value = HeaderValue::from_str(&cookie).ok()?;
            head.headers_mut().insert(header::COOKIE, value);
        }
    }
    Some(head)
}
