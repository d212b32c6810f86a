//! A burst of concurrent requests on one session, each changing a different field: every change
//! is stored, for O(n) store work. A save changes only the field its request changed, of what
//! is stored when it writes; the saves of one session waiting in one process are combined (one
//! of them applies every waiting edit and writes them in one compare-and-swap), so a burst of n
//! writers costs about n store calls, not the n² of every loser reloading and retrying.
//!
//! Three tests: on memory with a store that yields before every call (the requests interleave
//! between their loads and their writes), on every store (`store_tests!`: the real servers,
//! where the 503 "session busy" of an O(n²) burst showed first), and a store that cannot keep up
//! at all (another writer always gets there first): the 503 the budget is for. The axum target
//! also runs the first on a multi-thread runtime, truly in parallel.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sessions::error::StoreError;
use sessions::store::{Edit, Entry, SessionKey, Stored};
use sessions::testing::{TestClient, Transport};
use sessions::{Format, MemoryStore, Session, SessionLayer, SessionStore};

use super::model::Wide;
use super::support::key_of;
use super::{App, Calls, RecordingStore, browser};

/// The requests of a burst: one per field of [`Wide`].
pub(crate) const FIELDS: usize = 240;

/// What the layer says when a save lost to other writers for the whole retry budget.
pub(crate) const BUSY: &str = "session busy with other requests; not saved";

/// How many fields of the session stored for `id` are set to 1.
pub(crate) async fn fields_set(store: &impl SessionStore, id: &str) -> usize {
    let stored = store
        .load(&key_of(id))
        .await
        .expect("the store loads")
        .and_then(Entry::into_session)
        .expect("the session exists");
    let slot = stored.record.slot("wide").expect("the slot");
    Wide::FIELDS
        .iter()
        .filter(|field| {
            slot.field(field)
                .and_then(|bytes| Format::Json.decode::<u32>(bytes).ok())
                == Some(1)
        })
        .count()
}

/// Sends one request per field of `Wide` at once from `client` (one browser: they all carry
/// the same session), and returns the statuses.
pub(crate) async fn burst<T: Transport + Clone + 'static>(client: &TestClient<T>) -> Vec<u16> {
    let requests: Vec<_> = Wide::FIELDS
        .iter()
        .map(|field| {
            let client = client.clone();
            let path = format!("/wide/{field}");
            tokio::task::spawn_local(async move { client.post(&path).await.status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::with_capacity(requests.len());
    for request in requests {
        statuses.push(request.await.expect("no request panics"));
    }
    statuses
}

/// The store calls a burst may cost: a load and a write per request, and a few more (a batch
/// that lost its compare-and-swap to another batch reloads once). A compare-and-swap where
/// every loser reloads and retries costs about n²/2 writes (28,800 for 240).
pub(crate) fn within_linear_work(calls: Calls) -> bool {
    calls.writes() <= 2 * FIELDS && calls.load <= 3 * FIELDS
}

pub(crate) async fn concurrent_requests_changing_different_fields_all_survive<A: App>() {
    assert_eq!(Wide::FIELDS.len(), FIELDS);
    let store = RecordingStore::memory().interleaving();
    let layer = SessionLayer::new(store.clone()).register::<Wide>();
    let client = browser::<A>(&layer).await;
    assert_eq!(client.post("/wide/f000").await.status(), 200);
    let id = client.session(&layer).expect("created");
    let (written, before) = (store.writes().len(), store.calls());

    let statuses = burst(&client).await;
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");

    // Each write changed fields of what was stored (f000 was 1 already), and every other field
    // exactly once over all writes: nothing overwritten, nothing lost.
    let writes = store.writes_since(written);
    let mut changed: Vec<String> = writes
        .iter()
        .flat_map(|write| write.fields_changed())
        .collect();
    changed.sort();
    let expected: Vec<String> = Wide::FIELDS[1..]
        .iter()
        .map(|field| format!("wide.{field}"))
        .collect();
    assert_eq!(changed, expected);
    assert!(
        writes.iter().all(|write| write.key == key_of(&id)),
        "a write went to another key"
    );
    // The saves were combined: fewer writes than requests, and linear work.
    let calls = store.calls().since(before);
    assert!(
        writes.len() < FIELDS && within_linear_work(calls),
        "{} writes, {calls:?}",
        writes.len()
    );
    assert_eq!(fields_set(&store, &id).await, FIELDS);
}

/// A store another writer always gets to first: every compare-and-swap of the app finds a newer
/// version than it loaded (as under a session that a runaway client writes in a loop).
#[derive(Clone)]
struct AlwaysOvertaken {
    inner: MemoryStore,
    overtaken: Arc<AtomicUsize>,
}

impl AlwaysOvertaken {
    /// Writes the stored entry again, one version on, as the other writer does.
    async fn overtake(&self, key: &SessionKey) -> Result<(), StoreError> {
        if let Some(entry @ Entry::Live { .. }) = self.inner.load(key).await? {
            let version = entry.version();
            let Entry::Live { session, .. } = entry else {
                return Ok(());
            };
            let next = Entry::Live {
                version: version + 1,
                session,
            };
            self.inner.swap(key, Some(version), Some(next)).await?;
            self.overtaken.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl SessionStore for AlwaysOvertaken {
    async fn load(&self, key: &SessionKey) -> Result<Option<Entry>, StoreError> {
        self.inner.load(key).await
    }

    async fn swap(
        &self,
        key: &SessionKey,
        current: Option<u64>,
        new: Option<Entry>,
    ) -> Result<bool, StoreError> {
        if current.is_some() {
            self.overtake(key).await?;
        }
        self.inner.swap(key, current, new).await
    }

    async fn update(
        &self,
        key: &SessionKey,
        version: u64,
        session: Stored,
        edit: &mut Edit<'_>,
    ) -> Result<Option<Stored>, StoreError> {
        self.overtake(key).await?;
        self.inner.update(key, version, session, edit).await
    }
}

/// A save that loses every compare-and-swap (a store that cannot keep up with the writes of
/// one session at all) keeps trying for the retry budget, then answers 503 "session busy":
/// nothing is written of it, and the session is still there.
pub(crate) async fn a_save_that_always_loses_is_a_503_after_the_budget<A: App>() {
    let store = AlwaysOvertaken {
        inner: MemoryStore::new(),
        overtaken: Arc::default(),
    };
    let layer = SessionLayer::new(store.clone()).register::<Wide>();
    let client = browser::<A>(&layer).await;
    assert_eq!(client.post("/wide/f000").await.status(), 200);
    let id = client.session(&layer).expect("created");

    let busy = client.post("/wide/f001").await;
    assert_eq!(busy.status(), 503, "{}", busy.text());
    assert_eq!(busy.header("x-session-error"), Some(BUSY));
    assert!(
        store.overtaken.load(Ordering::SeqCst) > 3,
        "the save gave up before it lost a few times"
    );
    let stored = store
        .inner
        .load(&key_of(&id))
        .await
        .expect("loads")
        .and_then(Entry::into_session)
        .expect("the session is still there");
    let slot = stored.record.slot("wide").expect("the slot");
    assert!(
        slot.field("f001")
            .and_then(|bytes| Format::Json.decode::<u32>(bytes).ok())
            != Some(1),
        "the refused change was stored"
    );
}
