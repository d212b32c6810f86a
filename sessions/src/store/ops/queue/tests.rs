//! The save queue's tests: batches, turns across clones, and saves dropped on the way.

use std::collections::HashSet;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;
use tokio::task::{JoinHandle, LocalSet, spawn_local};

use super::*;
use crate::MemoryStore;
use crate::codec::Format;
use crate::errors::ApplyError;
use crate::expiry::Deadline;
use crate::record::{Record, Slot};
use crate::store::ops::{self, Saved};

/// A `MemoryStore` that counts its updates and holds the ones it is told to (by number,
/// from 1) until released.
#[derive(Clone, Default)]
struct Gated {
    inner: MemoryStore,
    updates: Arc<AtomicUsize>,
    hold: Arc<Mutex<HashSet<usize>>>,
    reached: Arc<Notify>,
    release: Arc<Notify>,
}

impl Gated {
    fn holding(numbers: &[usize]) -> Arc<Self> {
        let store = Gated::default();
        lock(&store.hold).extend(numbers);
        Arc::new(store)
    }

    async fn reached(&self) {
        tokio::time::timeout(Duration::from_secs(10), self.reached.notified())
            .await
            .expect("an update reached the gate");
    }
}

#[async_trait::async_trait]
impl SessionStore for Gated {
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
        let number = self.updates.fetch_add(1, Ordering::SeqCst) + 1;
        if lock(&self.hold).contains(&number) {
            self.reached.notify_one();
            self.release.notified().await;
        }
        self.inner.update(key, version, session, edit).await
    }
}

/// A stored session, and its key.
async fn stored(store: &Gated) -> SessionKey {
    let now = SystemTime::now();
    let deadline = Deadline {
        created_at: now,
        expires_at: now + Duration::from_secs(60),
    };
    let id = ops::create_session(store, Record::new(), deadline)
        .await
        .expect("created");
    id.key()
}

/// A save that adds the slot `name` (or fails, if `name` starts with `!`). The saves share
/// one store (a queue is one store's: a clone is another store here, as it is another
/// layer's).
fn save_slot(
    store: &Arc<Gated>,
    key: &SessionKey,
    name: &str,
) -> JoinHandle<Result<Saved, StoreError>> {
    let (store, key, name) = (store.clone(), key.clone(), name.to_owned());
    spawn_local(async move {
        let mut edit = |session: &mut Stored| -> Result<(), StoreError> {
            if name.starts_with('!') {
                return Err(ApplyError::SlotMissing { slot: name.clone() }.into());
            }
            session
                .record
                .insert(Slot::new(name.clone(), 1, Format::Json, Vec::new()));
            Ok(())
        };
        ops::save(&*store, &key, None, &mut edit).await
    })
}

async fn slots(store: &Gated, key: &SessionKey) -> Vec<String> {
    let entry = store.inner.load(key).await.expect("loads");
    let session = entry.and_then(Entry::into_session).expect("live");
    let mut names: Vec<String> = session
        .record
        .slots()
        .map(|s| s.name().to_owned())
        .collect();
    names.sort();
    names
}

/// Lets the spawned tasks run until they wait.
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

fn names(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("s{i:02}")).collect()
}

#[tokio::test]
async fn saves_waiting_behind_a_write_are_written_together() {
    LocalSet::new()
        .run_until(async {
            let store = Gated::holding(&[1]);
            let key = stored(&store).await;
            let first = save_slot(&store, &key, "s00");
            store.reached().await;
            let rest: Vec<_> = names(1..40)
                .iter()
                .map(|name| save_slot(&store, &key, name))
                .collect();
            settle().await;
            store.release.notify_one();
            assert!(matches!(
                first.await.expect("runs"),
                Ok(Saved::Saved { .. })
            ));
            for save in rest {
                assert!(matches!(save.await.expect("runs"), Ok(Saved::Saved { .. })));
            }
            assert_eq!(slots(&store, &key).await, names(0..40));
            // One write for the first save, one for the 39 that queued behind it.
            assert_eq!(store.updates.load(Ordering::SeqCst), 2);
        })
        .await;
}

#[tokio::test]
async fn the_saves_of_two_clones_of_a_store_take_turns() {
    LocalSet::new()
        .run_until(async {
            // Two clones of one store (its data shared): two queues of one key.
            let one = Gated::holding(&[1]);
            let other = Arc::new(Gated::clone(&one));
            let key = stored(&one).await;
            let first = save_slot(&one, &key, "s00");
            one.reached().await;
            let rest: Vec<_> = names(1..20)
                .iter()
                .map(|name| save_slot(&other, &key, name))
                .collect();
            settle().await;
            // The other clone's saves wait for the held write's turn: none wrote meanwhile.
            assert_eq!(one.updates.load(Ordering::SeqCst), 1);
            one.release.notify_one();
            assert!(first.await.expect("runs").is_ok());
            for save in rest {
                assert!(matches!(save.await.expect("runs"), Ok(Saved::Saved { .. })));
            }
            assert_eq!(slots(&one, &key).await, names(0..20));
            // The held write did not lose to the other clone's (it would write again), and
            // the other clone's 19 saves went in one write (after one lost compare-and-swap
            // at most: they started from no entry, so they load).
            assert_eq!(one.updates.load(Ordering::SeqCst), 2);
            assert!(
                !turns_of(&key).contains_key(&key),
                "the key's turn is left behind"
            );
        })
        .await;
}

#[tokio::test]
async fn a_leader_dropped_mid_batch_hands_its_batch_to_the_next() {
    LocalSet::new()
        .run_until(async {
            // The first write goes through; the second (the first batch of the queue) is
            // held, and its leader dropped there.
            let store = Gated::holding(&[1, 2]);
            let key = stored(&store).await;
            let first = save_slot(&store, &key, "s00");
            store.reached().await;
            let second = save_slot(&store, &key, "s01");
            settle().await;
            let rest: Vec<_> = names(2..10)
                .iter()
                .map(|name| save_slot(&store, &key, name))
                .collect();
            settle().await;
            store.release.notify_one();
            assert!(first.await.expect("runs").is_ok());
            // `second` leads the batch of all the others now, held in its update.
            store.reached().await;
            second.abort();
            assert!(second.await.is_err(), "aborted");
            for save in rest {
                assert!(matches!(save.await.expect("runs"), Ok(Saved::Saved { .. })));
            }
            let mut expected = names(0..10);
            expected.retain(|name| name != "s01");
            assert_eq!(slots(&store, &key).await, expected);
        })
        .await;
}

#[tokio::test]
async fn a_save_dropped_while_it_waits_leaves_the_queue() {
    LocalSet::new()
        .run_until(async {
            let store = Gated::holding(&[1]);
            let key = stored(&store).await;
            let first = save_slot(&store, &key, "s00");
            store.reached().await;
            let waiting: Vec<_> = names(1..5)
                .iter()
                .map(|name| save_slot(&store, &key, name))
                .collect();
            settle().await;
            // The first in line (the next leader) and one behind it go away.
            waiting[0].abort();
            waiting[2].abort();
            settle().await;
            store.release.notify_one();
            assert!(first.await.expect("runs").is_ok());
            let results: Vec<_> = futures_join(waiting).await;
            assert!(results[0].is_none() && results[2].is_none());
            assert!(results[1].as_ref().is_some_and(Result::is_ok));
            assert!(results[3].as_ref().is_some_and(Result::is_ok));
            assert_eq!(slots(&store, &key).await, ["s00", "s02", "s04"]);
        })
        .await;
}

#[tokio::test]
async fn a_failing_edit_fails_alone_and_writes_nothing_of_its_own() {
    LocalSet::new()
        .run_until(async {
            let store = Gated::holding(&[1]);
            let key = stored(&store).await;
            let first = save_slot(&store, &key, "s00");
            store.reached().await;
            let failing = save_slot(&store, &key, "!bad");
            let fine = save_slot(&store, &key, "s01");
            settle().await;
            store.release.notify_one();
            assert!(first.await.expect("runs").is_ok());
            assert!(matches!(
                failing.await.expect("runs"),
                Err(StoreError::Apply(_))
            ));
            assert!(fine.await.expect("runs").is_ok());
            assert_eq!(slots(&store, &key).await, ["s00", "s01"]);

            // Alone, a failing edit writes nothing at all.
            let version = store
                .inner
                .load(&key)
                .await
                .expect("loads")
                .map(|e| e.version());
            let alone = save_slot(&store, &key, "!bad").await.expect("runs");
            assert!(matches!(alone, Err(StoreError::Apply(_))));
            let after = store
                .inner
                .load(&key)
                .await
                .expect("loads")
                .map(|e| e.version());
            assert_eq!(after, version);
        })
        .await;
}

#[tokio::test]
async fn a_batch_on_a_session_that_is_gone_tells_everyone() {
    LocalSet::new()
        .run_until(async {
            let store = Gated::holding(&[1]);
            let key = stored(&store).await;
            let first = save_slot(&store, &key, "s00");
            store.reached().await;
            let rest: Vec<_> = names(1..4)
                .iter()
                .map(|name| save_slot(&store, &key, name))
                .collect();
            settle().await;
            ops::destroy(&store.inner, &key).await.expect("destroyed");
            store.release.notify_one();
            // The held write lost to the logout; it and the queued saves find nothing.
            assert!(matches!(first.await.expect("runs"), Ok(Saved::Missing)));
            for save in rest {
                assert!(matches!(save.await.expect("runs"), Ok(Saved::Missing)));
            }
            assert!(store.inner.load(&key).await.expect("loads").is_none());
        })
        .await;
}

#[tokio::test]
async fn a_leader_dropped_while_it_waits_for_its_turn_leaves_the_line() {
    let key = SessionKey::from_digest([0xA5; 32]);
    let first = Turn::take(&key).await;
    let mut second = Box::pin(Turn::take(&key));
    let mut third = Box::pin(Turn::take(&key));
    let wait = Duration::from_millis(20);
    assert!(
        tokio::time::timeout(wait, &mut second).await.is_err(),
        "waits"
    );
    assert!(
        tokio::time::timeout(wait, &mut third).await.is_err(),
        "waits"
    );
    // The second leaves the line; the turn goes past it to the third.
    drop(second);
    drop(first);
    let third = tokio::time::timeout(Duration::from_secs(10), third)
        .await
        .expect("the turn comes");
    // Handed the turn and dropped before it looked: the turn goes on (here: nobody waits).
    let mut fourth = Box::pin(Turn::take(&key));
    assert!(
        tokio::time::timeout(wait, &mut fourth).await.is_err(),
        "waits"
    );
    drop(third);
    drop(fourth);
    assert!(
        !turns_of(&key).contains_key(&key),
        "the key's line is left behind"
    );
    let again = tokio::time::timeout(Duration::from_secs(10), Turn::take(&key))
        .await
        .expect("the turn is free");
    drop(again);
    assert!(
        !turns_of(&key).contains_key(&key),
        "the key's line is left behind"
    );
}

/// The results of `tasks`, `None` for one that was aborted.
async fn futures_join<T>(tasks: Vec<JoinHandle<T>>) -> Vec<Option<T>> {
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.ok());
    }
    results
}
