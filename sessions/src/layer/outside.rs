//! What a [`SessionLayer`] does outside a request, for admin pages, jobs and operators: the
//! sessions of an owner, revoking them, a census of the store, the migrations counted so far.

use crate::registry::MigrationCount;
use crate::session::{Backend, OwnedSession};
use crate::store::StoreError;

use super::SessionLayer;

/// Outside a request (a clone of the layer kept outside the router reaches the same store).
impl SessionLayer {
    /// The live sessions of `owner` (as rendered: `"42"` for `user_id: Some(42)`), newest login
    /// first: for admin pages and jobs, outside a request. One indexed lookup in every store of
    /// this crate. A clone of the layer kept outside the router reaches the same store.
    ///
    /// ```
    /// use sessions::prelude::*;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let layer = SessionLayer::new(MemoryStore::new());
    /// assert!(layer.sessions_of("42").await.unwrap().is_empty());
    /// # });
    /// ```
    pub async fn sessions_of(&self, owner: &str) -> Result<Vec<OwnedSession>, StoreError> {
        crate::session::list_owned(&self.config, owner).await
    }

    /// Ends every session of `owner` (after an admin resets a password, say); how many ended.
    /// For a `CookieStore` this needs its revocation list (`CookieStore::revocations`).
    ///
    /// ```
    /// use sessions::prelude::*;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let layer = SessionLayer::new(MemoryStore::new());
    /// assert_eq!(layer.revoke_owner("42").await.unwrap(), 0);
    /// # });
    /// ```
    pub async fn revoke_owner(&self, owner: &str) -> Result<usize, StoreError> {
        crate::session::revoke_owned(&self.config, owner).await
    }

    /// What the layer's store holds, counted in one walk: live sessions by slot name, stored
    /// version and codec, sessions with an owner, the oldest live session, and bytes (see
    /// [`Census`](crate::Census), which also says when an old session type such as `CartV1` may
    /// be deleted). The same as `store.census()` on each server store. For a big store,
    /// [`census_with`](Self::census_with) pages, pauses and reports progress. A `CookieStore`
    /// keeps nothing to count: [`StoreError::Unsupported`].
    ///
    /// ```
    /// use sessions::prelude::*;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let layer = SessionLayer::new(MemoryStore::new());
    /// let census = layer.census().await?;
    /// assert_eq!(census.sessions_of("cart", 1), 0);
    /// # Ok::<(), sessions::error::StoreError>(())
    /// # }).unwrap();
    /// ```
    pub async fn census(&self) -> Result<crate::Census, StoreError> {
        self.census_with(crate::store::upkeep::Walk::new()).await
    }

    /// [`census`](Self::census), walking the store as `walk` says (page size, a pause between
    /// pages, progress after each, where to start).
    ///
    /// ```
    /// use std::time::Duration;
    /// use sessions::prelude::*;
    /// use sessions::store::upkeep::Walk;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let layer = SessionLayer::new(MemoryStore::new());
    /// let walk = Walk::new()
    ///     .page_size(1000)
    ///     .pause(Duration::from_millis(20))
    ///     .on_progress(|progress| println!("{} sessions so far", progress.seen));
    /// assert_eq!(layer.census_with(walk).await?.sessions, 0);
    /// # Ok::<(), sessions::error::StoreError>(())
    /// # }).unwrap();
    /// ```
    pub async fn census_with(
        &self,
        walk: crate::store::upkeep::Walk<'_>,
    ) -> Result<crate::Census, StoreError> {
        match &self.config.backend {
            Backend::Store(store) => crate::census::census_with(store.as_ref(), walk).await,
            Backend::Cookie(_) => Err(StoreError::Unsupported(
                "count sessions: they live in their browsers' cookies",
            )),
        }
    }

    /// How many stored slots were migrated, by type and old version (see [`Registry::migration_counts`](crate::store::Registry::migration_counts)).
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::time::{Duration, SystemTime};
    /// use http::{Request, Response, header::COOKIE};
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use sessions::prelude::*;
    /// use sessions::{Format, SessionId};
    /// use sessions::store::{Deadline, Record, Slot};
    /// use sessions::migrate::MigrationCount;
    /// #[derive(Session, Default)] #[session(name = "cart", version = 1)] struct CartV1 { n: u32 }
    /// #[derive(Session, Default)] #[session(name = "cart", version = 2, migrate_from = CartV1)] struct Cart { n: u64 }
    /// impl From<CartV1> for Cart { fn from(v1: CartV1) -> Self { Cart { n: v1.n.into() } } }
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// // A session stored by an older deployment, at version 1.
    /// let store = MemoryStore::new();
    /// let mut record = Record::new();
    /// record.insert(Slot::new("cart", 1, Format::Json, vec![("n".into(), "2".into())]));
    /// let now = SystemTime::now();
    /// let deadline = Deadline { created_at: now, expires_at: now + Duration::from_secs(60) };
    /// let id = sessions::store::create_session(&store, record, deadline).await.unwrap();
    ///
    /// let layer = SessionLayer::new(store).register::<Cart>();
    /// assert!(layer.migration_counts().is_empty());
    /// let app = layer.clone().layer(service_fn(|request: Request<()>| async move {
    ///     let session = request.extensions().get::<SessionHandle>().unwrap().clone();
    ///     assert_eq!(*session.get::<Cart>().await.unwrap().unwrap().n(), 2);
    ///     Ok::<_, Infallible>(Response::new(String::new()))
    /// }));
    /// let request = Request::builder().header(COOKIE, format!("session={}", id.expose())).body(()).unwrap();
    /// app.oneshot(request).await.unwrap();
    /// assert_eq!(
    ///     layer.migration_counts(),
    ///     [MigrationCount { type_name: "cart", from_version: 1, to_version: 2, count: 1 }]
    /// );
    /// # });
    /// ```
    pub fn migration_counts(&self) -> Vec<MigrationCount> {
        self.config.registry.migration_counts()
    }
}
