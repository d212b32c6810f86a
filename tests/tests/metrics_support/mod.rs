//! What the metrics tests share: the debugging recorder read step by step, the stores (with a
//! manual clock where the store takes one, and a switch that takes the store down), the event
//! listener, and the shop's routes in both frameworks (`apps.rs`).

pub(crate) mod apps;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use sessions::clock::{Clock, ManualClock};
use sessions::store::{
    Deadline, Edit, Entry, OwnedEntries, Record, ScanCursor, ScanPage, SessionKey, Slot, Stored,
};
use sessions::{
    Format, MemcachedStore, MemoryStore, MySqlStore, PostgresStore, RedisStore, SessionEvent,
    SessionStore, SqliteStore,
};

/// Runs a test inside a `LocalSet` (actix-web's futures are not `Send`).
pub(crate) async fn run_local<F: Future>(test: F) -> F::Output {
    tokio::task::LocalSet::new().run_until(test).await
}

/// The debugging recorder, installed for this thread (the tests run on a current-thread
/// runtime, so every metric of the test lands in it, and none of another test's).
pub(crate) struct Metrics {
    snapshotter: Snapshotter,
    /// Every histogram sample and cache count seen so far.
    histograms: Mutex<BTreeMap<String, Vec<f64>>>,
    cache: Mutex<BTreeMap<String, u64>>,
    /// The last value of every gauge set so far.
    gauges: Mutex<BTreeMap<String, f64>>,
    _guard: metrics::LocalRecorderGuard<'static>,
}

impl Metrics {
    pub(crate) fn install() -> Self {
        // Leaked: the guard borrows it for the rest of the test (a few kilobytes a test).
        let recorder: &'static DebuggingRecorder = Box::leak(Box::new(DebuggingRecorder::new()));
        let snapshotter = recorder.snapshotter();
        let guard = metrics::set_default_local_recorder(recorder);
        Metrics {
            snapshotter,
            histograms: Mutex::default(),
            cache: Mutex::default(),
            gauges: Mutex::default(),
            _guard: guard,
        }
    }

    /// The counters since the last call, as `name{label=value,…}` (labels sorted) → count;
    /// histogram samples and cache counts are kept aside.
    pub(crate) fn take(&self) -> BTreeMap<String, u64> {
        let mut counters = BTreeMap::new();
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            let key = key.key();
            let mut labels: Vec<String> = key
                .labels()
                .map(|label| format!("{}={}", label.key(), label.value()))
                .collect();
            labels.sort();
            let name = if labels.is_empty() {
                key.name().to_owned()
            } else {
                format!("{}{{{}}}", key.name(), labels.join(","))
            };
            match value {
                DebugValue::Counter(0) => {}
                DebugValue::Counter(count) if key.name() == "sessions_cache_total" => {
                    *self.cache.lock().expect("cache").entry(name).or_default() += count;
                }
                DebugValue::Counter(count) => {
                    counters.insert(name, count);
                }
                DebugValue::Histogram(samples) => self
                    .histograms
                    .lock()
                    .expect("histograms")
                    .entry(name)
                    .or_default()
                    .extend(samples.into_iter().map(|sample| sample.into_inner())),
                DebugValue::Gauge(value) => {
                    self.gauges
                        .lock()
                        .expect("gauges")
                        .insert(name, value.into_inner());
                }
            }
        }
        counters
    }

    /// Asserts that the counters since the last call are exactly `expected`.
    #[track_caller]
    pub(crate) fn counted(&self, store: &str, expected: &[(&str, u64)]) {
        let expected: BTreeMap<String, u64> = expected
            .iter()
            .map(|(name, count)| ((*name).to_owned(), *count))
            .collect();
        assert_eq!(self.take(), expected, "on {store}");
    }

    /// Every histogram sample so far, by key.
    pub(crate) fn histograms(&self) -> BTreeMap<String, Vec<f64>> {
        let _ = self.take();
        self.histograms.lock().expect("histograms").clone()
    }

    /// The last value of every gauge set so far, by key.
    pub(crate) fn gauges(&self) -> BTreeMap<String, f64> {
        let _ = self.take();
        self.gauges.lock().expect("gauges").clone()
    }

    /// The Redis local cache's counts so far, by key.
    pub(crate) fn cache(&self) -> BTreeMap<String, u64> {
        let _ = self.take();
        self.cache.lock().expect("cache").clone()
    }
}

/// What the app's `on_event` callback was told, in order.
#[derive(Clone, Default)]
pub(crate) struct Told(Arc<Mutex<Vec<SessionEvent>>>);

impl Told {
    /// The events told since the last call.
    pub(crate) fn take(&self) -> Vec<SessionEvent> {
        std::mem::take(&mut *self.0.lock().expect("events"))
    }
}

/// A listener for `SessionLayer::on_event`, and what it was told.
pub(crate) fn listener() -> (Told, impl Fn(&SessionEvent) + Send + Sync + 'static) {
    let told = Told::default();
    let kept = told.clone();
    (told, move |event: &SessionEvent| {
        kept.0.lock().expect("events").push(event.clone());
    })
}

/// A store of the test: its name, whether a manual clock can end its sessions, and what an
/// expiry counts on it.
pub(crate) trait Store: SessionStore + Clone {
    const NAME: &'static str;
    /// The store reads the layer's clock (so a test can end its sessions without waiting).
    const MANUAL_CLOCK: bool;
    /// Whether a request that comes with an ended session is seen as one (`seen="load"`).
    const SEEN_ON_LOAD: bool;
    /// What a sweep of the shop's day counts: its two ended sessions (the forwarding mark a
    /// login left is removed too, not counted).
    const SWEPT: u64;
    /// Whether the store lists the sessions of a user (memcached keeps no index: no
    /// revocations in its day).
    const OWNERS: bool = true;
    /// The store, reading `clock`; ready for the test (Redis: with its local cache).
    fn prepare(self, clock: ManualClock) -> impl Future<Output = Self>;
}

impl Store for MemoryStore {
    const NAME: &'static str = "memory";
    const MANUAL_CLOCK: bool = true;
    const SEEN_ON_LOAD: bool = true;
    const SWEPT: u64 = 2;
    async fn prepare(self, clock: ManualClock) -> Self {
        MemoryStore::with_clock(clock)
    }
}

impl Store for SqliteStore {
    const NAME: &'static str = "sqlite";
    const MANUAL_CLOCK: bool = true;
    const SEEN_ON_LOAD: bool = true;
    const SWEPT: u64 = 2;
    async fn prepare(self, clock: ManualClock) -> Self {
        self.with_clock(clock)
    }
}

impl Store for PostgresStore {
    const NAME: &'static str = "postgres";
    const MANUAL_CLOCK: bool = true;
    const SEEN_ON_LOAD: bool = true;
    const SWEPT: u64 = 2;
    async fn prepare(self, clock: ManualClock) -> Self {
        self.with_clock(clock)
    }
}

impl Store for MySqlStore {
    const NAME: &'static str = "mysql";
    const MANUAL_CLOCK: bool = true;
    const SEEN_ON_LOAD: bool = true;
    const SWEPT: u64 = 2;
    async fn prepare(self, clock: ManualClock) -> Self {
        self.with_clock(clock)
    }
}

impl Store for RedisStore {
    const NAME: &'static str = "redis";
    /// The server's clock ends Redis entries (`PXAT`).
    const MANUAL_CLOCK: bool = false;
    const SEEN_ON_LOAD: bool = false;
    /// Redis removes ended entries by itself: a sweep has nothing to do.
    const SWEPT: u64 = 0;
    async fn prepare(self, _clock: ManualClock) -> Self {
        let url = std::env::var("SESSIONS_TEST_REDIS_URL").expect("the fixture had it");
        let prefix = self.prefix_str().to_owned();
        RedisStore::connect(url.as_str())
            .await
            .expect("connect")
            .prefix(&prefix)
            .local_cache(1000)
            .await
            .expect("a local cache")
    }
}

impl Store for MemcachedStore {
    const NAME: &'static str = "memcached";
    /// The server ends items at their expiry time.
    const MANUAL_CLOCK: bool = false;
    const SEEN_ON_LOAD: bool = false;
    const SWEPT: u64 = 0;
    const OWNERS: bool = false;
    async fn prepare(self, _clock: ManualClock) -> Self {
        self
    }
}

/// A store with switches that make its loads, or its writes, fail as a store that is down
/// does.
#[derive(Clone)]
pub(crate) struct Flaky<S> {
    inner: S,
    loads_down: Arc<AtomicBool>,
    writes_down: Arc<AtomicBool>,
}

impl<S> Flaky<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self {
            inner,
            loads_down: Arc::default(),
            writes_down: Arc::default(),
        }
    }

    pub(crate) fn fail_loads(&self, down: bool) {
        self.loads_down.store(down, Ordering::Relaxed);
    }

    pub(crate) fn fail_writes(&self, down: bool) {
        self.writes_down.store(down, Ordering::Relaxed);
    }

    fn check(&self, down: &AtomicBool) -> Result<(), sessions::error::StoreError> {
        if down.load(Ordering::Relaxed) {
            return Err(sessions::error::StoreError::backend(std::io::Error::other(
                "connection refused",
            )));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl<S: SessionStore> SessionStore for Flaky<S> {
    async fn load(&self, key: &SessionKey) -> Result<Option<Entry>, sessions::error::StoreError> {
        self.check(&self.loads_down)?;
        self.inner.load(key).await
    }
    async fn swap(
        &self,
        key: &SessionKey,
        current: Option<u64>,
        new: Option<Entry>,
    ) -> Result<bool, sessions::error::StoreError> {
        self.check(&self.writes_down)?;
        self.inner.swap(key, current, new).await
    }
    async fn update(
        &self,
        key: &SessionKey,
        version: u64,
        session: Stored,
        edit: &mut Edit<'_>,
    ) -> Result<Option<Stored>, sessions::error::StoreError> {
        self.check(&self.writes_down)?;
        self.inner.update(key, version, session, edit).await
    }
    async fn owned_by(
        &self,
        owner: &str,
    ) -> Result<Vec<(SessionKey, Entry)>, sessions::error::StoreError> {
        self.inner.owned_by(owner).await
    }
    async fn owned_entries(
        &self,
        owner: &str,
    ) -> Result<OwnedEntries, sessions::error::StoreError> {
        self.inner.owned_entries(owner).await
    }
    async fn scan(
        &self,
        cursor: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<ScanPage, sessions::error::StoreError> {
        self.inner.scan(cursor, limit).await
    }
    async fn delete_expired(&self) -> Result<u64, sessions::error::StoreError> {
        self.inner.delete_expired().await
    }
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    async fn count_live(&self) -> Result<u64, sessions::error::StoreError> {
        self.inner.count_live().await
    }
    async fn has_ended(&self, key: &SessionKey) -> Result<bool, sessions::error::StoreError> {
        self.inner.has_ended(key).await
    }
}

/// Files a session as an older deployment stored it (a version-1 cart holding `plum`); its id.
pub(crate) async fn seed_v1_cart(store: &impl SessionStore, clock: &ManualClock) -> String {
    let mut record = Record::new();
    record.insert(Slot::new(
        "cart",
        1,
        Format::Json,
        vec![("items".into(), r#"["plum"]"#.into())],
    ));
    let now = clock.now();
    let deadline = Deadline {
        created_at: now,
        expires_at: now + Duration::from_secs(3600),
    };
    sessions::store::create_session(store, record, deadline)
        .await
        .expect("seeded")
        .expose()
        .to_owned()
}
