//! The burst of issue 20 on every store (`store_tests!`: the real servers, where the 503
//! "session busy" of an O(n²) burst showed first): see `concurrency.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sessions::error::StoreError;
use sessions::store::{Edit, Entry, SessionKey, Stored};
use sessions::{SessionLayer, SessionStore};

use super::concurrency::{FIELDS, burst, fields_set, within_linear_work};
use super::model::Wide;
use super::{App, Calls, browser};

/// A store that counts the calls made of it, and changes nothing else (no lock, no yield: the
/// burst runs at the server's own pace).
#[derive(Clone)]
struct Counting<S> {
    inner: S,
    load: Arc<AtomicUsize>,
    swap: Arc<AtomicUsize>,
    update: Arc<AtomicUsize>,
}

impl<S> Counting<S> {
    fn calls(&self) -> Calls {
        Calls {
            load: self.load.load(Ordering::SeqCst),
            swap: self.swap.load(Ordering::SeqCst),
            update: self.update.load(Ordering::SeqCst),
        }
    }
}

#[async_trait::async_trait]
impl<S: SessionStore + Clone> SessionStore for Counting<S> {
    async fn load(&self, key: &SessionKey) -> Result<Option<Entry>, StoreError> {
        self.load.fetch_add(1, Ordering::SeqCst);
        self.inner.load(key).await
    }

    async fn swap(
        &self,
        key: &SessionKey,
        current: Option<u64>,
        new: Option<Entry>,
    ) -> Result<bool, StoreError> {
        self.swap.fetch_add(1, Ordering::SeqCst);
        self.inner.swap(key, current, new).await
    }

    async fn update(
        &self,
        key: &SessionKey,
        version: u64,
        session: Stored,
        edit: &mut Edit<'_>,
    ) -> Result<Option<Stored>, StoreError> {
        self.update.fetch_add(1, Ordering::SeqCst);
        self.inner.update(key, version, session, edit).await
    }

    async fn owned_by(&self, owner: &str) -> Result<Vec<(SessionKey, Entry)>, StoreError> {
        self.inner.owned_by(owner).await
    }
}

/// The burst of issue 20 on every store: 240 concurrent requests each changing a different
/// field of one stored session are all answered 200 and all stored, within the retry budget
/// (a 503 "session busy" is a request that ran out of it), for linear store work.
pub(crate) async fn a_burst_of_distinct_field_writes_is_all_stored<
    A: App,
    S: SessionStore + Clone,
>(
    store: S,
) {
    let store = Counting {
        inner: store,
        load: Arc::default(),
        swap: Arc::default(),
        update: Arc::default(),
    };
    let layer = SessionLayer::new(store.clone()).register::<Wide>();
    let client = browser::<A>(&layer).await;
    assert_eq!(client.post("/wide/f000").await.status(), 200);
    let id = client.session(&layer).expect("created");
    let before = store.calls();

    let started = std::time::Instant::now();
    let statuses = burst(&client).await;
    let took = started.elapsed();
    let calls = store.calls().since(before);
    let stored = fields_set(&store, &id).await;
    println!(
        "{}: {} of {FIELDS} answered 200, {stored} of {FIELDS} fields stored, in {took:?}; {calls:?}",
        A::NAME,
        statuses.iter().filter(|&&s| s == 200).count()
    );
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    assert_eq!(stored, FIELDS, "only {stored} of {FIELDS} changes stored");
    assert!(within_linear_work(calls), "{calls:?}");
}
