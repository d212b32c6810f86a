//! The saves of one session waiting in this process, combined: a queue per stored key where
//! one save (the *leader*) hands the stored session to every save waiting behind it, each
//! applies its own edit to it in turn, and the leader writes them all in one compare-and-swap.
//!
//! Why: a store runs the writes of one key one after another anyway, so n concurrent saves of
//! one session, each a compare-and-swap over what it loaded, cost O(n²) store calls (every
//! loser reloads and tries again, and loses again to the next winner) — 240 parallel requests
//! of one page ran out of the retry budget on PostgreSQL and Redis (issue 20). Combined, they
//! cost one load per request and one write per batch: while a batch is being written, every
//! save that arrives queues up, and the next leader writes all of them at once.
//!
//! This is the save path, not a fast path beside it: every save (`ops::save`) goes through a
//! queue; a save alone in its queue (the usual case) leads a batch of one, with no handoff at
//! all, and writes exactly as before (its own edit, in place, in one `update`).
//!
//! How a batch runs:
//!
//! 1. A save *joins* the queue of its `(store, key)`: if nobody leads, it leads; otherwise it
//!    waits for orders on a channel of its own.
//! 2. The leader takes everyone waiting as its batch, and starts from the newest entry it knows
//!    (the one the previous batch wrote, else the one its request loaded, else a load).
//! 3. It hands a copy of the stored session to each member (*apply*): each runs its own edit on
//!    it, on its own task (edits borrow their request: they cannot move to the leader), and
//!    says whether its edit applied. A member whose edit fails changed nothing (every edit
//!    checks before it changes) and is told so at the end; the others are written.
//! 4. The leader writes the result with its own edit on top, in one `SessionStore::update` over
//!    the version it started from. Lost to another process: it reloads and runs the batch's
//!    edits again (within the retry budget). Found a forwarding mark: everyone follows it (and
//!    joins the queue of the new key). Found nothing: everyone's session is gone.
//! 5. It tells every member what came of it (*finish*), and hands the lead to the first save
//!    that queued meanwhile, with the entry just written (so the next batch needs no load).
//!
//! A queue belongs to one store value (its address): clones of a store (two layers over
//! `store.clone()`, or the conformance suite's writers, each with a clone) have queues of their
//! own, and their saves of one key would race each other's compare-and-swaps — O(n²) again
//! across n clones. So a leader also takes the key's *turn*, one per key in the process
//! whatever the store, before it starts its batch: the leaders of one key take turns, and a
//! leader reloads at most once in its turn (when another clone wrote since its request loaded).
//! A turn only orders writes that could race; it combines nothing, so two stores holding one
//! key (a test, a copy) are only taken in turn, never mixed.
//!
//! A save whose request is dropped while it waits leaves the queue (a guard), and a leader
//! dropped mid-batch gives its batch back to the queue and the lead to the next save. A leader
//! waits for each member's turn: a save future that has started must be polled on, or dropped
//! (as every request future is), not parked unpolled — that would hold up its batch.

use std::collections::{HashMap, VecDeque, hash_map};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use tokio::sync::{mpsc, oneshot};

use super::Attempts;
use crate::errors::RecordError;
use crate::id::SessionKey;
use crate::store::entry::next_version;
use crate::store::{Edit, Entry, SessionStore, StoreError, Stored};

/// How many locks the queues are spread over.
const SHARDS: usize = 16;

/// Hashes a queue's key by the last 8 bytes of its digest (mixed with the store's address; the
/// first byte picks the shard, so it would bunch up a shard's keys):
/// a digest is SHA-256 of an id the server chose, so nobody can aim keys at one bucket, and
/// the maps only hold the keys being saved right now. SipHash over the key was a fifth of the
/// queue's instructions per save.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut word = [0u8; 8];
        let tail = &bytes[bytes.len().saturating_sub(8)..];
        word[..tail.len()].copy_from_slice(tail);
        self.0 ^= u64::from_le_bytes(word);
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = (self.0 ^ n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map keyed by session keys (and store addresses), hashed by [`DigestHasher`].
type Map<K, V> = HashMap<K, V, BuildHasherDefault<DigestHasher>>;

/// What one save's trip through a queue came to.
pub(super) enum Landed {
    /// Written: the session as stored now, and its entry's version.
    Saved { session: Stored, version: u64 },
    /// The key holds a forwarding mark to this key: the save goes on there.
    Moved(SessionKey),
    /// No live session under the key: nothing was written.
    Missing,
}

/// A queue's identity: the store (by address: a save holds it borrowed while it is queued, so
/// the address cannot be reused meanwhile) and the key.
type QueueKey = (usize, SessionKey);

/// The queue of one key.
struct Queue {
    /// The member that leads, or has been told to.
    leading: u64,
    /// The saves waiting for the next batch, in arrival order.
    waiting: VecDeque<Member>,
}

/// A waiting save: its id and where its orders go.
struct Member {
    id: u64,
    orders: mpsc::UnboundedSender<Order>,
}

/// What a leader tells a member.
enum Order {
    /// Lead the next batch, starting from this entry if there is one.
    Lead(Option<(u64, Stored)>),
    /// Run your edit on the session in the cell (if it is still there), and say whether it
    /// applied.
    Apply {
        cell: Arc<Mutex<Option<Stored>>>,
        applied: oneshot::Sender<bool>,
    },
    /// The batch is over.
    Finish(Outcome),
}

/// How a batch ended, for each member.
enum Outcome {
    /// Written with every edit that applied.
    Saved {
        session: Stored,
        version: u64,
    },
    /// No edit applied: nothing was written.
    Unchanged,
    Moved(SessionKey),
    Missing,
    Failed(StoreError),
}

static QUEUES: LazyLock<Vec<Mutex<Map<QueueKey, Queue>>>> =
    LazyLock::new(|| (0..SHARDS).map(|_| Mutex::default()).collect());

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The lines for the turns of the keys whose leaders are writing or waiting to, spread over
/// [`SHARDS`] locks.
type Turns = Map<SessionKey, Line>;

/// The line for one key's turn: whether a leader holds it, and the leaders waiting for it, in
/// arrival order (each is told on its channel when the turn is its own).
#[derive(Default)]
struct Line {
    held: bool,
    waiting: VecDeque<oneshot::Sender<()>>,
}

static TURNS: LazyLock<Vec<Mutex<Turns>>> =
    LazyLock::new(|| (0..SHARDS).map(|_| Mutex::default()).collect());

fn turns_of(key: &SessionKey) -> MutexGuard<'static, Turns> {
    let index = usize::from(key.as_bytes().first().copied().unwrap_or(0)) % SHARDS;
    lock(&TURNS[index])
}

/// A leader's turn at a key (or its place in the line for it): while it holds the turn, no
/// other leader in this process (of any queue, any clone of the store) writes the key through
/// a queue. Dropped, it hands the turn to the next in line (the last one out removes the
/// key's line); dropped while it waits, it leaves the line.
struct Turn<'a> {
    key: &'a SessionKey,
    /// Where the turn comes, while this leader waits for it.
    coming: Option<oneshot::Receiver<()>>,
}

impl<'a> Turn<'a> {
    /// Waits for the turn at `key` (first come, first served).
    async fn take(key: &'a SessionKey) -> Self {
        let mut turn = Self { key, coming: None };
        {
            let mut turns = turns_of(key);
            let line = turns.entry(key.clone()).or_default();
            if line.held {
                let (sender, coming) = oneshot::channel();
                line.waiting.push_back(sender);
                turn.coming = Some(coming);
            } else {
                line.held = true;
            }
        }
        if let Some(coming) = turn.coming.as_mut() {
            // A waiting sender leaves the line only by being sent to (a receiver that is gone
            // is skipped), so this is the turn.
            let _ = coming.await;
            turn.coming = None;
        }
        turn
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        if let Some(mut coming) = self.coming.take() {
            // Out of the line, unless the turn came meanwhile: then it goes on to the next.
            coming.close();
            if coming.try_recv().is_err() {
                return;
            }
        }
        let mut turns = turns_of(self.key);
        let hash_map::Entry::Occupied(mut line) = turns.entry(self.key.clone()) else {
            return;
        };
        while let Some(next) = line.get_mut().waiting.pop_front() {
            if next.send(()).is_ok() {
                return;
            }
        }
        line.remove();
    }
}

fn shard(key: &QueueKey) -> MutexGuard<'static, Map<QueueKey, Queue>> {
    let bytes = key.1.as_bytes();
    let index = usize::from(bytes.first().copied().unwrap_or(0)) % SHARDS;
    // Every change under the lock is a few map operations that cannot panic halfway.
    QUEUES[index]
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Hands the lead of the queue under `key` to its first waiting member (with a copy of `last`,
/// the entry just written), or removes the queue when nobody waits.
fn hand_over(queues: &mut Map<QueueKey, Queue>, key: &QueueKey, last: Option<(u64, &Stored)>) {
    let Some(queue) = queues.get_mut(key) else {
        return;
    };
    while let Some(next) = queue.waiting.pop_front() {
        let last = last.map(|(version, session)| (version, session.clone()));
        if next.orders.send(Order::Lead(last)).is_ok() {
            queue.leading = next.id;
            return;
        }
        // That save was dropped meanwhile: the next one.
    }
    queues.remove(key);
}

/// A save in a queue: if it is dropped while it waits (its request went away), it leaves the
/// queue, and passes the lead on if it had just been given it.
struct InQueue<'a> {
    key: &'a QueueKey,
    id: u64,
    done: bool,
}

impl Drop for InQueue<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut queues = shard(self.key);
        let Some(queue) = queues.get_mut(self.key) else {
            return;
        };
        queue.waiting.retain(|member| member.id != self.id);
        if queue.leading == self.id {
            hand_over(&mut queues, self.key, None);
        }
    }
}

/// A leader's batch: if the leader is dropped mid-batch, its members go back to the front of
/// the queue and the lead goes to the first of them.
struct Batch<'a> {
    key: &'a QueueKey,
    members: Vec<Member>,
    done: bool,
}

impl Batch<'_> {
    /// Tells every member how the batch ended, and hands the lead on.
    fn finish(mut self, outcome: impl Fn() -> Outcome, last: Option<(u64, &Stored)>) {
        for member in self.members.drain(..) {
            // A member dropped meanwhile hears nothing; nothing waits for it.
            let _ = member.orders.send(Order::Finish(outcome()));
        }
        self.done = true;
        let mut queues = shard(self.key);
        hand_over(&mut queues, self.key, last);
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut queues = shard(self.key);
        if let Some(queue) = queues.get_mut(self.key) {
            for member in self.members.drain(..).rev() {
                queue.waiting.push_front(member);
            }
        }
        hand_over(&mut queues, self.key, None);
    }
}

/// Saves through the queue of `key` in `store`: `edit` applied to the live session under
/// `key`, combined with the saves of the same key waiting in this process. `base` is the entry
/// the request loaded (tried first when nothing newer is known).
pub(super) async fn save_combined<S: SessionStore + ?Sized>(
    store: &S,
    key: &SessionKey,
    base: Option<Entry>,
    edit: &mut Edit<'_>,
) -> Result<Landed, StoreError> {
    let queue_key: QueueKey = ((store as *const S).cast::<()>() as usize, key.clone());
    let mut base = base;
    loop {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let mut in_queue = InQueue {
            key: &queue_key,
            id,
            done: false,
        };
        let orders = {
            let mut queues = shard(&queue_key);
            match queues.entry(queue_key.clone()) {
                hash_map::Entry::Occupied(mut queue) => {
                    let (sender, orders) = mpsc::unbounded_channel();
                    queue
                        .get_mut()
                        .waiting
                        .push_back(Member { id, orders: sender });
                    Some(orders)
                }
                hash_map::Entry::Vacant(place) => {
                    place.insert(Queue {
                        leading: id,
                        waiting: VecDeque::new(),
                    });
                    None
                }
            }
        };
        let last = match orders {
            None => None,
            Some(mut orders) => match wait(&mut orders, edit).await {
                Waited::Landed(landed) => {
                    in_queue.done = true;
                    return landed;
                }
                Waited::Again => {
                    in_queue.done = true;
                    continue;
                }
                Waited::Lead(last) => last,
            },
        };
        // Leading now: the guard of the batch takes over from the guard of the wait (no await
        // in between).
        in_queue.done = true;
        let start = match last {
            // What the batch before wrote is newer than what the request loaded.
            Some((version, session)) => Some(Entry::Live { version, session }),
            None => base.take(),
        };
        return lead(store, &queue_key, start, edit).await;
    }
}

/// What waiting in a queue came to.
enum Waited {
    Landed(Result<Landed, StoreError>),
    Lead(Option<(u64, Stored)>),
    Again,
}

/// A member's side: applies its edit when told, until the batch is over or it is told to lead.
async fn wait(orders: &mut mpsc::UnboundedReceiver<Order>, edit: &mut Edit<'_>) -> Waited {
    // What the member's edit did in the last turn it took.
    let mut mine: Result<(), StoreError> = Ok(());
    loop {
        match orders.recv().await {
            Some(Order::Apply { cell, applied }) => {
                let ok = match lock(&cell).as_mut() {
                    Some(session) => {
                        mine = edit(session);
                        mine.is_ok()
                    }
                    // The leader stopped waiting for this turn: it is not in the batch.
                    None => false,
                };
                let _ = applied.send(ok);
            }
            Some(Order::Lead(last)) => return Waited::Lead(last),
            Some(Order::Finish(outcome)) => {
                return match outcome {
                    Outcome::Saved { session, version } => {
                        Waited::Landed(mine.map(|()| Landed::Saved { session, version }))
                    }
                    Outcome::Unchanged => match mine {
                        Err(err) => Waited::Landed(Err(err)),
                        Ok(()) => Waited::Again,
                    },
                    Outcome::Moved(to) => Waited::Landed(Ok(Landed::Moved(to))),
                    Outcome::Missing => Waited::Landed(Ok(Landed::Missing)),
                    Outcome::Failed(err) => Waited::Landed(Err(err)),
                };
            }
            // Every sender is kept until it sends an order that ends the wait.
            None => return Waited::Again,
        }
    }
}

/// The leader's side: runs batches of the queue until its own save is done.
async fn lead<S: SessionStore + ?Sized>(
    store: &S,
    key: &QueueKey,
    start: Option<Entry>,
    edit: &mut Edit<'_>,
) -> Result<Landed, StoreError> {
    // From here the batch's guard hands the lead on if this save is dropped.
    let mut batch = Batch {
        key,
        members: Vec::new(),
        done: false,
    };
    let at = &key.1;
    let _turn = Turn::take(at).await;
    // Everyone who queued meanwhile, too.
    batch.members = {
        let mut queues = shard(key);
        queues
            .get_mut(key)
            .map(|queue| queue.waiting.drain(..).collect())
            .unwrap_or_default()
    };
    let mut current = start;
    let mut attempts = Attempts::new();
    loop {
        let entry = match current.take() {
            Some(entry) => Some(entry),
            None => match store.load(at).await {
                Ok(entry) => entry,
                Err(err) => {
                    batch.finish(|| Outcome::Failed(copy(&err)), None);
                    return Err(err);
                }
            },
        };
        let (version, session) = match entry {
            None => {
                batch.finish(|| Outcome::Missing, None);
                return Ok(Landed::Missing);
            }
            Some(Entry::Moved { to, .. }) => {
                batch.finish(|| Outcome::Moved(to.clone()), None);
                return Ok(Landed::Moved(to));
            }
            Some(Entry::Live { version, session }) => (version, session),
        };
        // The version the batch writes (an entry at the largest version is unwritable data).
        let written = match next_version(version) {
            Ok(written) => written,
            Err(err) => {
                batch.finish(|| Outcome::Failed(copy(&err)), None);
                return Err(err);
            }
        };
        // The members' edits first, each on its own task, on a copy of the stored session.
        let (mut combined, others) = if batch.members.is_empty() {
            (None, false)
        } else {
            let (combined, others) = turns(&mut batch.members, &session).await;
            (Some(combined), others)
        };
        // Then this save's own edit, on top, inside the store's update (in place where the
        // store edits in place).
        // This save's edit failed: with others to write, its error (the others are written);
        // alone, the update fails with it and nothing is written.
        let mut own: Option<StoreError> = None;
        let mut failed_alone = false;
        let mut all = |stored: &mut Stored| -> Result<(), StoreError> {
            if let Some(combined) = combined.take() {
                *stored = combined;
            }
            match edit(stored) {
                Ok(()) => Ok(()),
                Err(err) if !others => {
                    failed_alone = true;
                    Err(err)
                }
                Err(err) => {
                    own = Some(err);
                    Ok(())
                }
            }
        };
        match store.update(at, version, session, &mut all).await {
            Ok(Some(stored)) => {
                let version = written;
                batch.finish(
                    || Outcome::Saved {
                        session: stored.clone(),
                        version,
                    },
                    Some((version, &stored)),
                );
                return match own {
                    Some(err) => Err(err),
                    None => Ok(Landed::Saved {
                        session: stored,
                        version,
                    }),
                };
            }
            Ok(None) => {
                // Another writer (another process) got there first: again, on what it wrote.
                if let Err(err) = attempts.next().await {
                    batch.finish(|| Outcome::Failed(copy(&err)), None);
                    return Err(err);
                }
            }
            Err(err) if failed_alone => {
                batch.finish(|| Outcome::Unchanged, None);
                return Err(err);
            }
            Err(err) => {
                batch.finish(|| Outcome::Failed(copy(&err)), None);
                return Err(err);
            }
        }
    }
}

/// Every member's turn at `session`: each applies its edit to it (one at a time, in the order
/// their tasks run); returns the session with every edit that applied, and whether any did. A
/// member that is gone (its request was dropped) leaves the batch.
async fn turns(members: &mut Vec<Member>, session: &Stored) -> (Stored, bool) {
    let cell = Arc::new(Mutex::new(Some(session.clone())));
    let mut waits = Vec::with_capacity(members.len());
    members.retain(|member| {
        let (applied, wait) = oneshot::channel();
        let order = Order::Apply {
            cell: cell.clone(),
            applied,
        };
        let sent = member.orders.send(order).is_ok();
        if sent {
            waits.push((member.id, wait));
        }
        sent
    });
    let mut any = false;
    let mut gone = Vec::new();
    for (id, wait) in waits {
        match wait.await {
            Ok(applied) => any |= applied,
            Err(_) => gone.push(id),
        }
    }
    members.retain(|member| !gone.contains(&member.id));
    // Closed: nothing edits it any more.
    let combined = lock(&cell).take().unwrap_or_else(|| session.clone());
    (combined, any)
}

/// The error of a batch, for each of its members: the same kind of error (what the response
/// becomes depends on it), with the same message.
fn copy(err: &StoreError) -> StoreError {
    match err {
        StoreError::Collision => StoreError::Collision,
        StoreError::Contended => StoreError::Contended,
        StoreError::Unsupported(what) => StoreError::Unsupported(what),
        StoreError::NotSetUp { problem, fix } => StoreError::NotSetUp {
            problem: problem.clone(),
            fix: fix.clone(),
        },
        StoreError::Record(record) => {
            StoreError::Record(RecordError::Malformed(record.to_string()))
        }
        other => StoreError::Backend(other.to_string().into()),
    }
}

#[cfg(test)]
mod tests;
