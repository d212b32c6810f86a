//! The walk, eager migration and the sweeper, on the memory store (the server stores run the
//! same code; their suites walk them on their servers).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::*;
use crate::expiry::Deadline;
use crate::id::SessionId;
use crate::record::Record;
use crate::store::{Edit, MemoryStore, Stored, create_session};

fn deadline() -> Deadline {
    let now = SystemTime::now();
    Deadline {
        created_at: now,
        expires_at: now + Duration::from_secs(600),
    }
}

async fn seeded(n: usize) -> (MemoryStore, HashSet<[u8; 32]>) {
    let store = MemoryStore::new();
    let mut keys = HashSet::new();
    for _ in 0..n {
        let id: SessionId = create_session(&store, Record::new(), deadline())
            .await
            .expect("created");
        keys.insert(*id.key().as_bytes());
    }
    (store, keys)
}

#[tokio::test]
async fn a_walk_sees_every_entry_once_and_reports_each_page() {
    let (store, keys) = seeded(100).await;
    let mut reports = Vec::new();
    let mut seen = HashSet::new();
    let mut walker = Walk::new()
        .page_size(7)
        .on_progress(|progress| reports.push(progress.clone()))
        .start(&store);
    while let Some(page) = walker.next_page().await.expect("a page") {
        assert!(page.entries.len() <= 7);
        for (key, _) in page.entries {
            assert!(seen.insert(*key.as_bytes()), "an entry was seen twice");
        }
    }
    drop(walker);
    assert_eq!(seen, keys);
    let last = reports.last().expect("reported");
    assert!(last.done && last.cursor.is_none());
    assert_eq!(last.seen, 100);
    assert_eq!(last.pages, reports.len() as u64);
    assert!(reports.windows(2).all(|pair| pair[0].seen <= pair[1].seen));
}

#[tokio::test]
async fn a_walk_resumes_where_the_reported_cursor_says() {
    let (store, keys) = seeded(50).await;
    let mut first = HashSet::new();
    let mut stopped_at = None;
    {
        let mut walker = Walk::new().page_size(10).start(&store);
        for _ in 0..3 {
            let page = walker.next_page().await.expect("a page").expect("not done");
            first.extend(page.entries.into_iter().map(|(key, _)| *key.as_bytes()));
        }
        // The third page is handed out but not done: asking for the next one reports it.
        let page = walker.next_page().await.expect("a page").expect("not done");
        stopped_at = stopped_at.or(walker.progress().cursor.clone());
        drop(page); // a crash before this page was done
    }
    let cursor = stopped_at.expect("a cursor after three pages");
    let saved = serde_json::to_string(&cursor).expect("serializes");
    let cursor: ScanCursor = serde_json::from_str(&saved).expect("deserializes");
    let mut rest = HashSet::new();
    let mut walker = Walk::new().page_size(10).resume_from(cursor).start(&store);
    while let Some(page) = walker.next_page().await.expect("a page") {
        rest.extend(page.entries.into_iter().map(|(key, _)| *key.as_bytes()));
    }
    assert!(first.is_disjoint(&rest));
    assert_eq!(first.len() + rest.len(), keys.len());
}

#[tokio::test]
async fn a_cursor_of_another_store_is_refused() {
    let store = MemoryStore::new();
    let err = store
        .scan(Some(&ScanCursor::new("not a cursor")), 10)
        .await
        .expect_err("refused");
    assert!(matches!(err, StoreError::Record(_)), "{err}");
}

/// A store that tells when it is swept.
struct Swept {
    inner: MemoryStore,
    sweeps: tokio::sync::mpsc::UnboundedSender<()>,
    supported: bool,
}

#[async_trait::async_trait]
impl SessionStore for Swept {
    async fn load(&self, key: &SessionKey) -> Result<Option<Entry>, StoreError> {
        self.inner.load(key).await
    }
    async fn swap(
        &self,
        key: &SessionKey,
        current: Option<u64>,
        new: Option<Entry>,
    ) -> Result<bool, StoreError> {
        self.inner.swap(key, current, new).await
    }
    async fn update(
        &self,
        key: &SessionKey,
        version: u64,
        session: Stored,
        edit: &mut Edit<'_>,
    ) -> Result<Option<Stored>, StoreError> {
        self.inner.update(key, version, session, edit).await
    }
    async fn delete_expired(&self) -> Result<u64, StoreError> {
        let _ = self.sweeps.send(());
        if self.supported {
            Ok(0)
        } else {
            Err(StoreError::Unsupported("delete ended sessions"))
        }
    }
}

#[tokio::test]
async fn the_sweeper_sweeps_until_the_store_is_dropped() {
    let (sweeps, mut swept) = tokio::sync::mpsc::unbounded_channel();
    let store = Arc::new(Swept {
        inner: MemoryStore::new(),
        sweeps,
        supported: true,
    });
    let weak = Arc::downgrade(&store);
    let sweeper = spawn_sweeper("test", Duration::from_millis(1), move || weak.upgrade());
    for _ in 0..3 {
        swept.recv().await.expect("swept");
    }
    drop(store);
    sweeper.await.expect("the sweeper ends by itself");
    // Every sender (the store's) is gone: nothing sweeps any more.
    while swept.recv().await.is_some() {}
}

#[tokio::test]
async fn the_sweeper_stops_on_a_store_that_cannot_sweep() {
    let (sweeps, mut swept) = tokio::sync::mpsc::unbounded_channel();
    let store = Arc::new(Swept {
        inner: MemoryStore::new(),
        sweeps,
        supported: false,
    });
    let held = store.clone();
    let sweeper = spawn_sweeper("test", Duration::from_millis(1), move || Some(held.clone()));
    sweeper.await.expect("the sweeper ends by itself");
    swept.recv().await.expect("it tried once");
    assert!(swept.try_recv().is_err(), "it tried only once");
    drop(store);
}

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
#[test]
fn stored_times_and_versions_come_back() {
    use super::sql::*;
    use std::time::UNIX_EPOCH;
    for ms in [0, 1, -1, 1_700_000_000_123, -86_400_000] {
        assert_eq!(time(ms).map(millis).ok(), Some(ms), "{ms}");
    }
    assert_eq!(millis(UNIX_EPOCH + Duration::from_secs(1 << 62)), i64::MAX);
    for v in [0, 1, i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX] {
        assert_eq!(version_column(v).cast_unsigned(), v);
    }
    assert_ne!(version_column(u64::MAX), version_column(1));
    let key = SessionId::generate().expect("an id").key();
    let cursor = ScanCursor::new(key.as_str());
    assert_eq!(
        after_key(Some(&cursor), "x").ok(),
        Some(key.as_bytes().to_vec())
    );
    assert!(after_key(Some(&ScanCursor::new("abc")), "x").is_err());
    assert!(after_key(Some(&ScanCursor::new("zz")), "x").is_err());
}
