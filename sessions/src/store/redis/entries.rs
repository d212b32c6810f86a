//! Loading and swapping one entry: `GET`, `SET NX PXAT`, the swap script, the conversion of an
//! old-layout hash, and the local cache's bookkeeping around each.

use std::time::{SystemTime, UNIX_EPOCH};

use ::redis::{Cmd, Value};
use bytes::Bytes;

use super::RedisStore;
use super::legacy::{self, Legacy};
use super::wire::{self, CONVERT, SWAP, backend, is_code, unexpected};
use crate::errors::RecordError;
use crate::id::SessionKey;
use crate::store::{Entry, StoreError, blob};

/// How often a load starts over when an old-layout hash changes while it converts it.
const CONVERT_ATTEMPTS: usize = 3;

/// An end as `PXAT` takes it: milliseconds since the Unix epoch, from 1 (Redis refuses 0 and
/// below; such an end has passed anyway, and the key goes at once) to `i64::MAX`, the largest
/// Redis takes. An end later than that (past the year 292 million: only a forged entry, or an
/// entry of a store that did not saturate, says so) is kept until then, as the SQL stores
/// clamp their `expires_at` column: the entry itself keeps its end.
pub(super) fn pxat(time: SystemTime) -> i64 {
    let millis = time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
    });
    millis.max(1)
}

/// What the swap script (or `SET NX`) did.
pub(super) struct Swapped {
    pub(super) wrote: bool,
    /// The replaced entry's owner, when the write changed it (a create replaces nothing);
    /// `None` when the owner stayed.
    pub(super) old_owner: Option<Option<String>>,
    /// The new owner's index size, when the script bound the session to it.
    pub(super) index_size: i64,
}

/// What converting an old-layout hash came to.
enum Converted {
    Entry(Entry),
    /// An old cluster `cycle` was moving the session away: it is gone.
    Gone,
    /// The key changed since it was read: look again.
    Changed,
}

fn not_a_session(what: &str) -> StoreError {
    StoreError::Record(RecordError::Malformed(format!(
        "the Redis key of a session holds {what}, not a session"
    )))
}

impl RedisStore {
    /// The entry under `key`: from the local cache, or one `GET` (a `GET` after
    /// `CLIENT TRACKING` with the cache); an old-layout hash is converted on the way. An entry
    /// bound to another key, or that does not decode, is unreadable (with its version, when it
    /// starts like an entry: a logout still ends it).
    pub(super) async fn load_key(&self, key: &SessionKey) -> Result<Option<Entry>, StoreError> {
        let redis_key = &*self.redis_key(key);
        let cache = self.cache.as_deref();
        if let Some(cache) = cache
            && let Some(entry) = cache.get(redis_key.as_bytes(), SystemTime::now())
        {
            return Ok(Some(entry));
        }
        for _ in 0..CONVERT_ATTEMPTS {
            let token = cache.and_then(|cache| cache.begin_read(redis_key.as_bytes()));
            let finish = |entry: Option<&Entry>| {
                if let (Some(cache), Some(token)) = (cache, token) {
                    cache.end_read(redis_key.as_bytes(), token, entry);
                }
            };
            let reply = self.get(redis_key).await;
            match reply {
                Ok(Value::Nil) => {
                    finish(None);
                    return Ok(None);
                }
                Ok(Value::BulkString(bytes)) => {
                    return match blob::decode_at(key, Bytes::from(bytes)) {
                        Ok(entry) => {
                            finish(Some(&entry));
                            Ok(Some(entry))
                        }
                        Err(err) => {
                            finish(None);
                            Err(StoreError::Record(err))
                        }
                    };
                }
                Err(err) if is_code(&err, "WRONGTYPE") => {
                    finish(None);
                    match self.convert(key).await? {
                        Converted::Entry(entry) => return Ok(Some(entry)),
                        Converted::Gone => return Ok(None),
                        Converted::Changed => {}
                    }
                }
                Err(err) => {
                    finish(None);
                    return Err(backend(err));
                }
                Ok(other) => {
                    finish(None);
                    return Err(unexpected("GET", other));
                }
            }
        }
        Err(StoreError::Contended)
    }

    /// `GET`, after `CLIENT TRACKING on NOLOOP` in the same round trip when the store caches
    /// (so the server reports the next change of what this read).
    async fn get(&self, redis_key: &str) -> Result<Value, ::redis::RedisError> {
        let mut get = ::redis::cmd("GET");
        get.arg(redis_key);
        if self.cache.is_none() {
            return self.connection.command(&get).await;
        }
        let mut pipe = wire::tracked();
        pipe.add_command(get);
        let mut replies = self
            .connection
            .pipeline(&pipe, redis_key.as_bytes())
            .await?;
        replies.pop().ok_or_else(|| {
            ::redis::RedisError::from((::redis::ErrorKind::Client, "an empty pipeline reply"))
        })
    }

    /// Reads an old-layout hash and replaces it by its entry (version 1), if it is still what
    /// was read.
    async fn convert(&self, key: &SessionKey) -> Result<Converted, StoreError> {
        let redis_key = &*self.redis_key(key);
        let mut hgetall = ::redis::cmd("HGETALL");
        hgetall.arg(redis_key);
        let reply = match self.connection.command(&hgetall).await {
            Ok(reply) => reply,
            Err(err) if is_code(&err, "WRONGTYPE") => {
                return Err(not_a_session("a value of another type"));
            }
            Err(err) => return Err(backend(err)),
        };
        let pairs = wire::pairs(reply).ok_or_else(|| not_a_session("an unreadable hash"))?;
        if pairs.is_empty() {
            // Gone between the GET and the HGETALL.
            return Ok(Converted::Changed);
        }
        let (stored, dropped) = match legacy::parse(&pairs)? {
            Legacy::Moving => return Ok(Converted::Gone),
            Legacy::Session { stored, dropped } => (stored, dropped),
        };
        let entry = Entry::Live {
            version: 1,
            session: stored,
        };
        let bytes = blob::encode_at(key, &entry);
        let end = pxat(entry.expires_at());
        let call = |whole: bool| {
            let mut cmd = CONVERT.call(whole, redis_key);
            cmd.arg(&bytes[..]).arg(end);
            for (name, value) in &pairs {
                cmd.arg(&name[..]).arg(&value[..]);
            }
            cmd
        };
        let token = self
            .cache
            .as_deref()
            .map(|cache| cache.begin_write(redis_key.as_bytes()));
        let reply = self.connection.script(call, redis_key, false).await;
        if let (Some(cache), Some(token)) = (self.cache.as_deref(), token) {
            cache.end_write(redis_key.as_bytes(), token, None);
        }
        match reply.map_err(backend)? {
            Value::Int(1) => {
                tracing::info!(target: "sessions::store", redis_key, dropped_slots = ?dropped, "converted an old-layout Redis session");
                Ok(Converted::Entry(entry))
            }
            Value::Int(0) => Ok(Converted::Changed),
            other => Err(unexpected("the conversion script", other)),
        }
    }

    /// Converts the old-layout hash under `key` (for [`RedisStore::migrate`]); whether it
    /// did.
    pub(super) async fn convert_key(&self, key: &SessionKey) -> Result<bool, StoreError> {
        for _ in 0..CONVERT_ATTEMPTS {
            match self.convert(key).await? {
                Converted::Entry(_) => return Ok(true),
                Converted::Gone => return Ok(false),
                Converted::Changed => {}
            }
        }
        Err(StoreError::Contended)
    }

    /// Writes `new` under `key` (or deletes) if what is stored is the entry of version
    /// `current` (`None`: nothing).
    pub(super) async fn swap_key(
        &self,
        key: &SessionKey,
        current: Option<u64>,
        new: Option<Entry>,
    ) -> Result<bool, StoreError> {
        let redis_key = &*self.redis_key(key);
        let owner = new.as_ref().and_then(Entry::owner).map(str::to_owned);
        let cluster = self.is_cluster();
        let token = self
            .cache
            .as_deref()
            .map(|cache| cache.begin_write(redis_key.as_bytes()));
        // A create is SET NX, unless a single server must write the owner index with it.
        let by_set = current.is_none() && new.is_some() && (cluster || owner.is_none());
        let result = match (by_set, &new) {
            (true, Some(entry)) => self.create(key, entry).await,
            _ => self.run_swap(key, current, new.as_ref(), cluster).await,
        };
        if let (Some(cache), Some(token)) = (self.cache.as_deref(), token) {
            // What SET NX wrote is not tracked (it read nothing): not kept.
            let kept = match &result {
                Ok(swapped) if swapped.wrote && !by_set => new,
                _ => None,
            };
            cache.end_write(redis_key.as_bytes(), token, kept);
        }
        let swapped = result?;
        if !swapped.wrote {
            return Ok(false);
        }
        let owner = owner.as_deref();
        match swapped.old_owner {
            // The owner stayed: no index work (the common save).
            None => {}
            Some(old) if cluster => self.update_index(redis_key, old.as_deref(), owner).await?,
            // The script moved the member; a set it grew may want pruning.
            Some(_) => {
                if let Some(owner) = owner {
                    self.prune_if_grown(owner, swapped.index_size).await;
                }
            }
        }
        Ok(true)
    }

    async fn create(&self, key: &SessionKey, entry: &Entry) -> Result<Swapped, StoreError> {
        let mut set = Cmd::new();
        set.arg("SET")
            .arg(self.redis_key(key))
            .arg(blob::encode_at(key, entry))
            .arg("NX")
            .arg("PXAT")
            .arg(pxat(entry.expires_at()));
        let wrote = match self.connection.command(&set).await.map_err(backend)? {
            Value::Okay => true,
            Value::SimpleString(ok) if ok == "OK" => true,
            Value::Nil => false,
            other => return Err(unexpected("SET NX", other)),
        };
        let owner_changed = entry.owner().is_some();
        Ok(Swapped {
            wrote,
            old_owner: owner_changed.then_some(None),
            index_size: 0,
        })
    }

    async fn run_swap(
        &self,
        key: &SessionKey,
        current: Option<u64>,
        new: Option<&Entry>,
        cluster: bool,
    ) -> Result<Swapped, StoreError> {
        let redis_key = &*self.redis_key(key);
        let expected = current.map(blob::prefix);
        let bytes = new.map(|entry| blob::encode_at(key, entry));
        let end = new.map_or(1, |entry| pxat(entry.expires_at()));
        let owner = new
            .and_then(Entry::owner)
            .map(|owner| format!("={owner}"))
            .unwrap_or_default();
        let call = |whole: bool| {
            let mut cmd = SWAP.call(whole, redis_key);
            cmd.arg(expected.as_ref().map_or(&[][..], |p| &p[..]))
                .arg(bytes.as_deref().unwrap_or_default())
                .arg(end)
                .arg(if cluster { "0" } else { "1" })
                .arg(&owner);
            cmd
        };
        let reply = self
            .connection
            .script(call, redis_key, self.cache.is_some())
            .await
            .map_err(backend)?;
        swap_reply(reply)
    }
}

/// The swap script's reply: `0`, `1`, or `{1, old owner, index size}`.
fn swap_reply(reply: Value) -> Result<Swapped, StoreError> {
    match reply {
        Value::Int(wrote @ (0 | 1)) => Ok(Swapped {
            wrote: wrote == 1,
            old_owner: None,
            index_size: 0,
        }),
        Value::Array(parts) if parts.len() == 3 && wire::int(&parts[0]) == Some(1) => {
            let mut parts = parts.into_iter().skip(1);
            let old = parts.next().and_then(wire::bytes);
            let size = parts.next().as_ref().and_then(wire::int);
            let (Some(old), Some(size)) = (old, size) else {
                return Err(unexpected("the swap script", "a malformed reply"));
            };
            let old_owner = match old.strip_prefix(b"=") {
                Some(owner) => Some(
                    String::from_utf8(owner.to_vec())
                        .map_err(|_| unexpected("the swap script", "an owner that is not UTF-8"))?,
                ),
                None => None,
            };
            Ok(Swapped {
                wrote: true,
                old_owner: Some(old_owner),
                index_size: size,
            })
        }
        other => Err(unexpected("the swap script", other)),
    }
}
