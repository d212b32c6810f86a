//! [`seed`] and [`inspect`]: a stored session to start a test from, and a look at one.

use crate::errors::{LoadError, RecordError};
use crate::id::SessionId;
use crate::layer::SessionLayer;
use crate::record::{Changeset, Record};
use crate::schema::Session;
use crate::session::{Backend, SessionRejection};
use crate::store::{Entry, StoreError, create_session};
use crate::typed::Typed;

/// Stores a new session holding `value` (as `T`'s slot, in the layer's format, with the layer's
/// expiry) in `layer`'s store, and returns its token: the id (or, for a `CookieStore`, the
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
pub async fn seed<T: Session>(layer: &SessionLayer, value: T) -> Result<String, StoreError> {
    let config = layer.config();
    let mut typed = Typed::new(value);
    typed.mark_all();
    let change = typed
        .changes(config.format)
        .map_err(|err| StoreError::Record(RecordError::Encode(err.source)))?;
    let mut record = Record::new();
    if let Some(change) = change {
        record.apply(&std::iter::once(change).collect::<Changeset>())?;
    }
    let now = config.clock.now();
    let deadline = config.expiry.deadline(now, now);
    match &config.backend {
        Backend::Store(store) => Ok(create_session(store.as_ref(), record, deadline)
            .await?
            .expose()
            .to_owned()),
        Backend::Cookie(cookies) => {
            let owner = config.registry.owner_in(&record).ok().flatten();
            cookies
                .seal(
                    config.cookie.cookie_name(),
                    &record,
                    deadline,
                    config.format,
                    owner.as_deref(),
                    now,
                )
                .map_err(StoreError::backend)
        }
    }
}

/// `T`'s value in the session `token` (a [`TestClient::session`](super::TestClient::session),
/// or what [`seed`] gave), decoded (and migrated) as a handler would see it: `None` when the
/// session holds nothing for `T` or is not stored.
///
/// ```
/// use sessions::prelude::*;
/// #[derive(Session, Default)] #[session(name = "cart")] struct Cart { n: u32 }
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let layer = SessionLayer::new(MemoryStore::new()).register::<Cart>();
/// assert!(sessions::testing::inspect::<Cart>(&layer, "no-such-id").await.unwrap().is_none());
/// # });
/// ```
pub async fn inspect<T: Session>(
    layer: &SessionLayer,
    token: &str,
) -> Result<Option<T>, SessionRejection> {
    let config = layer.config();
    let record = match &config.backend {
        Backend::Store(store) => {
            let Some(id) = SessionId::parse(token) else {
                return Ok(None);
            };
            match store.load(&id.key()).await {
                Ok(Some(Entry::Live { session, .. })) => session.record,
                Ok(_) => return Ok(None),
                Err(err) => return Err(SessionRejection::store(std::any::type_name::<T>(), &err)),
            }
        }
        Backend::Cookie(cookies) => {
            match cookies.open(config.cookie.cookie_name(), token, config.clock.now()) {
                Ok(opened) => opened.record,
                Err(_) => return Ok(None),
            }
        }
    };
    match config.registry.load::<T>(&record) {
        Ok(typed) => Ok(typed.map(Typed::into_inner)),
        Err(LoadError::NotRegistered { name, rust_type }) => {
            Err(SessionRejection::NotRegistered { name, rust_type })
        }
        Err(source) => Err(SessionRejection::Decode {
            type_name: std::any::type_name::<T>(),
            source,
        }),
    }
}
