//! `RedisStore::cycle`: moving a session to a new key, atomically.
//!
//! **One server**: one script (`cycle.lua`) over both keys checks everything, applies the
//! changes to the old key and renames it. A save runs wholly before it (and is carried over)
//! or wholly after it (and finds the session missing).
//!
//! **Redis Cluster**: the old and the new key are `{prefix}{<old key>}` and
//! `{prefix}{<new key>}`; their hash tags differ, so they almost always live in different hash
//! slots, often on different nodes, and no script can touch both (`CROSSSLOT`). The move is
//! three steps, each atomic on its own key:
//!
//! 1. **freeze** (`freeze.lua`, on the old key): the session must be stored and not already
//!    moving, and the changes must fit it (expected revisions, slot versions), as in a save;
//!    otherwise the answer is `Missing`, `Conflict` or `Apply` and nothing is written. Then the
//!    hash gets the mark `m` = the new key, its expiry is cut to [`LEASE`] (unless it ends
//!    sooner), and the script returns the whole hash. From that moment every load of the old
//!    key finds nothing and every save to it answers `Missing`: a save acknowledged as
//!    `Saved` ran before the freeze, so it is in the hash just read.
//! 2. **create** (`create.lua`, on the new key): the hash read in step 1, with the changes
//!    applied in Rust (revisions carried over, changed slots +1) and the new deadline.
//!    A taken new key ([`StoreError::Collision`]): `unfreeze.lua` removes the mark (only
//!    ours) and restores the old deadline, and the session stays where it was.
//! 3. **delete** the old key.
//!
//! What a failure between the steps leaves behind:
//! * the mover dies, or the server fails, after step 1: the old key stays frozen (loads see no
//!   session, saves `Missing`, `create` a taken key, so it never revives) and Redis deletes it
//!   within the lease. The session is lost, as after a logout: the move fails closed, never
//!   with the session live under two ids;
//! * step 2 fails on a connection error: the same, and if the create did land, the new key
//!   holds a session whose id was never handed out; it expires at its deadline;
//! * step 3 fails: the new session is in place and the frozen old key expires within the
//!   lease; the cycle still reports success.
//!
//! The price of the freeze: a save to the old key between steps 1 and 3 answers `Missing`
//! even when step 2 then finds the new key taken (a 2⁻²⁵⁶ event for random ids), and its
//! change is dropped, as for a save that lost a race with a logout.

use std::time::Duration;

use ::redis::{Script, Value};
use std::sync::LazyLock;

use super::wire::{Change, SaveReply, unexpected};
use super::{RedisStore, layout, read};
use crate::expiry::Deadline;
use crate::record::Changeset;
use crate::store::{SaveOutcome, StoreError};

/// How long a frozen old key lives at most: the time the mover has for steps 2 and 3 before
/// Redis deletes what it froze.
pub(super) const LEASE: Duration = Duration::from_secs(30);

static CYCLE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("apply.lua"),
        include_str!("cycle.lua")
    ))
});
static FREEZE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("apply.lua"),
        include_str!("freeze.lua")
    ))
});
static UNFREEZE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("unfreeze.lua")));

/// What the freeze script answered.
enum Frozen {
    /// The whole hash, the mark included.
    Entries(layout::Entries),
    /// Nothing was frozen.
    Refused(SaveReply),
}

impl Frozen {
    fn parse(reply: Vec<Vec<u8>>) -> Result<Self, StoreError> {
        if reply.first().map(Vec::as_slice) != Some(b"frozen") {
            return SaveReply::parse(reply).map(Frozen::Refused);
        }
        if reply.len() % 2 != 1 {
            return Err(unexpected("the freeze script", "an odd field/value list"));
        }
        let mut entries = Vec::with_capacity(reply.len() / 2);
        let mut items = reply.into_iter().skip(1);
        while let (Some(name), Some(value)) = (items.next(), items.next()) {
            entries.push((name, value));
        }
        Ok(Frozen::Entries(entries))
    }
}

impl RedisStore {
    /// One server: both keys in one script.
    pub(super) async fn cycle_in_one_script(
        &self,
        from: &str,
        to: &str,
        changes: &Changeset,
        deadline: Deadline,
    ) -> Result<SaveOutcome, StoreError> {
        let mut invocation = CYCLE.prepare_invoke();
        invocation
            .key(from)
            .key(to)
            .arg(layout::millis(deadline.created_at))
            .arg(layout::millis(deadline.expires_at));
        Change::write_all(changes, &mut invocation);
        SaveReply::parse(self.invoke(&invocation).await?)?.outcome(changes, "the cycle script")
    }

    /// Redis Cluster: freeze, create, delete (see the module notes).
    pub(super) async fn cycle_in_two_steps(
        &self,
        from: &str,
        to: &str,
        changes: &Changeset,
        deadline: Deadline,
    ) -> Result<SaveOutcome, StoreError> {
        let mut invocation = FREEZE.prepare_invoke();
        invocation
            .key(from)
            .arg(to)
            .arg(u64::try_from(LEASE.as_millis()).unwrap_or(u64::MAX));
        Change::write_all(changes, &mut invocation);
        let entries = match Frozen::parse(self.invoke(&invocation).await?)? {
            Frozen::Entries(entries) => entries,
            Frozen::Refused(reply) => return reply.outcome(changes, "the freeze script"),
        };
        let moved = read::parse(entries)
            .map_err(StoreError::from)
            .and_then(|mut stored| {
                // The script checked the changes against this very hash: this cannot fail
                // unless the hash is not ours.
                stored.record.apply(changes)?;
                Ok(stored.record)
            });
        let record = match moved {
            Ok(record) => record,
            Err(err) => {
                self.unfreeze(from, to).await?;
                return Err(err);
            }
        };
        match self.create_redis_key(to, &record, deadline).await {
            Ok(()) => {}
            Err(StoreError::Collision) => {
                self.unfreeze(from, to).await?;
                return Err(StoreError::Collision);
            }
            // The old key stays frozen and expires within the lease.
            Err(err) => return Err(err),
        }
        if let Err(err) = self.delete_redis_key(from).await {
            tracing::warn!(
                target: "sessions",
                error = %err,
                "cycle: the old session key was not deleted; it is frozen and expires within {} s",
                LEASE.as_secs()
            );
        }
        Ok(SaveOutcome::Saved)
    }

    /// Undoes a freeze that marked `from` for `to`; a key no longer marked so is left alone.
    async fn unfreeze(&self, from: &str, to: &str) -> Result<(), StoreError> {
        let mut invocation = UNFREEZE.prepare_invoke();
        invocation.key(from).arg(to);
        match self.invoke::<Value>(&invocation).await? {
            Value::Int(1) => Ok(()),
            Value::Int(0) => {
                tracing::warn!(
                    target: "sessions",
                    "cycle: the old session ran out of its lease before the move was undone"
                );
                Ok(())
            }
            other => Err(unexpected("the unfreeze script", other)),
        }
    }
}
