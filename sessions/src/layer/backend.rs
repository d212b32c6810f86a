//! [`IntoBackend`]: what [`SessionLayer::new`](super::SessionLayer::new) takes, a server-side
//! store or the cookie store.

use std::sync::Arc;

use crate::session::Backend;
use crate::store::{CookieStore, Measured, SessionStore};

/// What [`SessionLayer::new`](super::SessionLayer::new) takes: any [`SessionStore`], or a [`CookieStore`].
///
/// The cookie store carries the whole session in the cookie, so it has no id to file a record
/// under; it sits behind the same layer and extractors, not behind the `SessionStore` trait.
///
/// ```
/// use sessions::MemoryStore;
/// use sessions::IntoBackend;
/// fn takes(_: impl IntoBackend) {}
/// takes(MemoryStore::new());
/// ```
pub trait IntoBackend {
    #[doc(hidden)]
    fn into_backend(self) -> BackendBox;
}

/// The opaque result of [`IntoBackend`].
#[doc(hidden)]
pub struct BackendBox(pub(crate) Backend);

impl<S: SessionStore> IntoBackend for S {
    fn into_backend(self) -> BackendBox {
        // Timed and traced in one place, whatever the store (`store/measured.rs`).
        BackendBox(Backend::Store(Arc::new(Measured::new(self))))
    }
}

impl IntoBackend for CookieStore {
    fn into_backend(self) -> BackendBox {
        BackendBox(Backend::Cookie(Arc::new(self)))
    }
}

/// A store chosen at run time: `SessionLayer::new(choice)`, where `choice` is the
/// [`into_backend`](IntoBackend::into_backend) of whichever store the configuration named.
impl IntoBackend for BackendBox {
    fn into_backend(self) -> BackendBox {
        self
    }
}
