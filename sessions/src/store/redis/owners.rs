//! The owner index: a set per owner (`{prefix}o:{<owner>}`) of the session keys bound to it.
//!
//! On a single server the swap script keeps it, in the same atomic step as the write that binds
//! or unbinds. On Redis Cluster the set lives in another hash slot than the session, so
//! [`RedisStore::update_index`] writes it right after the swap. Either way a listing checks
//! every member against its entry and prunes the ones that are gone or bound to someone else,
//! and a set that grew to a power of two (16 and up) is pruned when a binding makes it so.

use ::redis::Value;
use bytes::Bytes;

use super::RedisStore;
use super::wire::{self, backend, unexpected};
use crate::errors::RecordError;
use crate::id::SessionKey;
use crate::store::{Entry, OwnedEntries, StoreError, blob, ops};

impl RedisStore {
    /// The index set of `owner`.
    pub(super) fn owner_key(&self, owner: &str) -> String {
        format!("{}o:{{{owner}}}", self.prefix)
    }

    /// The session key inside a Redis key of this store.
    fn member_of<'k>(&self, redis_key: &'k str) -> Option<&'k str> {
        let inner = redis_key
            .strip_prefix(&*self.prefix)?
            .strip_prefix('{')?
            .strip_suffix('}')?;
        SessionKey::from_stored(inner).map(|_| inner)
    }

    /// The live sessions bound to `owner`: one `SMEMBERS`, one `MGET` (and a `GET` per member a
    /// login moved in between: the mark is followed); members that are gone or bound to someone
    /// else are removed from the set. A member whose entry does not decode
    /// (but starts like an entry: its version is known) stays in the set and is reported as
    /// unreadable, so a revocation ends it rather than lose sight of it.
    pub(super) async fn list_owner(&self, owner: &str) -> Result<OwnedEntries, StoreError> {
        let index = self.owner_key(owner);
        let mut smembers = ::redis::cmd("SMEMBERS");
        smembers.arg(&index);
        let reply = self.connection.command(&smembers).await.map_err(backend)?;
        let members: Vec<Vec<u8>> = wire::items(reply)
            .and_then(|items| items.into_iter().map(wire::bytes).collect())
            .ok_or_else(|| unexpected("SMEMBERS", "not a set of names"))?;
        let mut keys = Vec::with_capacity(members.len());
        let mut stale: Vec<Vec<u8>> = Vec::new();
        for member in members {
            match std::str::from_utf8(&member)
                .ok()
                .and_then(SessionKey::from_stored)
            {
                Some(key) => keys.push((key, member)),
                None => stale.push(member),
            }
        }
        let mut found = OwnedEntries::default();
        // Members a login moved between the `SMEMBERS` and the `MGET`: where they went.
        let mut moved = Vec::new();
        if !keys.is_empty() {
            let mut mget = ::redis::cmd("MGET");
            for (key, _) in &keys {
                mget.arg(self.redis_key(key));
            }
            let reply = self.connection.command(&mget).await.map_err(backend)?;
            let values = wire::items(reply)
                .filter(|values| values.len() == keys.len())
                .ok_or_else(|| unexpected("MGET", "not one value per key"))?;
            let now = std::time::SystemTime::now();
            for ((key, member), value) in keys.into_iter().zip(values) {
                let entry = match value {
                    Value::BulkString(bytes) => blob::decode_at(&key, Bytes::from(bytes)),
                    _ => Err(RecordError::Malformed("not an entry".into())),
                };
                match entry {
                    Ok(entry) if entry.owner() == Some(owner) && !entry.is_ended(now) => {
                        found.entries.push((key, entry));
                    }
                    Err(err) if err.stored_version().is_some() => {
                        found.unreadable.push((key, err));
                    }
                    Ok(Entry::Moved { to, until, .. }) if until > now => {
                        moved.push(to);
                        stale.push(member);
                    }
                    _ => stale.push(member),
                }
            }
        }
        self.follow_moves(owner, moved, &mut found).await?;
        if !stale.is_empty() {
            let mut srem = ::redis::cmd("SREM");
            srem.arg(&index);
            for member in &stale {
                srem.arg(&member[..]);
            }
            self.connection.command(&srem).await.map_err(backend)?;
        }
        Ok(found)
    }

    /// Follows the forwarding marks `moved` (members a login moved while the listing read the
    /// set and then the entries: the set said the old key, the entry is the mark) to the
    /// sessions they lead to, and adds those bound to `owner` to `found`: a revocation must
    /// not miss a session because a login was moving it.
    async fn follow_moves(
        &self,
        owner: &str,
        mut moved: Vec<SessionKey>,
        found: &mut OwnedEntries,
    ) -> Result<(), StoreError> {
        let mut hops = 0;
        while let Some(key) = moved.pop() {
            hops += 1;
            if hops > ops::HOPS {
                return Err(StoreError::Contended);
            }
            if found.entries.iter().any(|(listed, _)| *listed == key) {
                continue;
            }
            match self.load_key(&key).await {
                Ok(Some(entry)) if entry.owner() == Some(owner) => found.entries.push((key, entry)),
                Ok(Some(Entry::Moved { to, .. })) => moved.push(to),
                Ok(_) => {}
                Err(StoreError::Record(err)) if err.stored_version().is_some() => {
                    found.unreadable.push((key, err));
                }
                Err(StoreError::Record(_)) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// Redis Cluster: moves the session under `redis_key` from `old`'s index to `new`'s, after
    /// the swap that changed its owner.
    pub(super) async fn update_index(
        &self,
        redis_key: &str,
        old: Option<&str>,
        new: Option<&str>,
    ) -> Result<(), StoreError> {
        let Some(member) = self.member_of(redis_key) else {
            return Err(unexpected("the owner index", redis_key));
        };
        if let Some(old) = old {
            let mut srem = ::redis::cmd("SREM");
            srem.arg(self.owner_key(old)).arg(member);
            self.connection.command(&srem).await.map_err(backend)?;
        }
        if let Some(new) = new {
            let index = self.owner_key(new);
            let mut pipe = ::redis::pipe();
            pipe.cmd("SADD").arg(&index).arg(member);
            pipe.cmd("SCARD").arg(&index);
            let replies = self
                .connection
                .pipeline(&pipe, index.as_bytes())
                .await
                .map_err(backend)?;
            let size = replies.get(1).and_then(wire::int).unwrap_or(0);
            self.prune_if_grown(new, size).await;
        }
        Ok(())
    }

    /// Prunes `owner`'s index when a binding grew it to a power of two of 16 or more: the set
    /// stays within twice its live members however many sessions expire unlisted.
    pub(super) async fn prune_if_grown(&self, owner: &str, size: i64) {
        if size >= 16
            && size.count_ones() == 1
            && let Err(err) = self.list_owner(owner).await
        {
            tracing::warn!(target: "sessions::store", error = %err, "pruning an owner index failed");
        }
    }
}
