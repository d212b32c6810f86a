//! [`MemcachedStore`]: sessions in memcached (feature `memcached`).

mod pool;
mod tokens;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_memcached::{Error as McError, MetaProtocol, Status};
use bytes::Bytes;

use self::pool::Pool;
use self::tokens::Tokens;
use crate::expiry::{Clock, SystemClock};
use crate::id::SessionKey;
use crate::store::{Entry, SessionStore, StoreError, blob};

/// The prefix of every key unless [`MemcachedStore::prefix`] sets another.
const DEFAULT_PREFIX: &str = "sessions:";

/// How many connections a store opens at most unless
/// [`max_connections`](MemcachedStore::max_connections) says otherwise.
const DEFAULT_CONNECTIONS: usize = 64;

/// How long a command may take before the call fails (and its connection is closed).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// The longest relative expiry memcached takes; a later one is sent as a Unix time.
const MAX_RELATIVE: u64 = 30 * 24 * 3600;

/// How often a write starts over when the item changes between its read and its write for a
/// reason that is not another write of a session (an ended item replaced, an item evicted).
const ATTEMPTS: usize = 3;

/// Sessions in memcached, through its meta protocol (memcached 1.6 or later).
///
/// **Layout.** One item per session under `{prefix}{<session key>}` (the session key is the
/// SHA-256 of the id in hex: a dump of the cache hands out no live session), holding the whole
/// entry ([`blob`]), and expiring with the session: its expiry is the session's deadline
/// (relative when it is at most 30 days away, else as a Unix time, as memcached requires;
/// times past 2038 are cut to the largest memcached takes). The store's
/// [clock](MemcachedStore::with_clock) decides when a session has ended: an entry it finds
/// ended is absent, whatever the item's expiry.
///
/// * A load is one `mg` (value and CAS token).
/// * A save over a stored version is an `mg` (which CAS token belongs to that version) and one
///   `ms … C<token>`: memcached writes only if the item is still the one read, so of two saves
///   over one version exactly one writes, and the other reloads and applies its change on top
///   (no write is lost). A create is one `ms … ME` (memcached's `add`: it never overwrites a
///   live session); a destroy an `mg` and an `md … C<token>`.
///
/// **Eviction.** memcached is a cache: when it needs room it evicts the items used least
/// recently, sessions included, before their end. A session evicted is a session ended early:
/// its next request starts a fresh session (the user is logged out), exactly as after its
/// expiry. Eviction never brings a session back (a destroyed session's item is deleted; a save
/// of an evicted session finds nothing and writes nothing), and never shows one user another's
/// data (every item is under its own session's key). Give memcached enough memory (`-m`) for
/// your live sessions, or use a store that keeps them (Redis, a SQL store) if an early logout
/// is not acceptable.
///
/// **What memcached cannot do.** List the sessions of an owner ([`SessionStore::owned_by`]:
/// [`StoreError::Unsupported`]; an index kept in memcached could be evicted apart from the
/// sessions it lists, so "sign out everywhere" could miss one: the store does not pretend);
/// walk its sessions ([`SessionStore::scan`], so no `migrate_all` or census: sessions migrate
/// on their next load). There is no coherent local cache as `RedisStore::local_cache` has:
/// memcached does not tell a client when an item it read changes, and a cache without that
/// would serve stale sessions. Expired items go by themselves: nothing to sweep.
///
/// Cloning is cheap and shares the connections.
///
/// ```no_run
/// use sessions::prelude::*;
/// use sessions::MemcachedStore;
///
/// #[derive(Session, Default)]
/// #[session(name = "cart")]
/// struct Cart { items: Vec<String> }
///
/// # async fn demo() -> Result<(), sessions::error::StoreError> {
/// let store = MemcachedStore::connect("memcache://127.0.0.1:11211").await?.prefix("shop:");
/// let layer = SessionLayer::new(store).register::<Cart>();
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct MemcachedStore {
    pool: Arc<Pool>,
    prefix: Arc<str>,
    clock: Arc<dyn Clock>,
    tokens: Arc<Tokens>,
}

/// What a meta command came to.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Stored (with the item's new CAS token, when memcached said it) or deleted.
    Done(Option<u64>),
    /// The CAS token did not match, or (`add`) the key is taken.
    Lost,
    /// No item under the key.
    Missing,
}

impl MemcachedStore {
    /// Connects to the memcached at `url` (`memcache://host:port`, `tcp://host:port`, or
    /// `unix:///path/to/socket`), checking that it answers. Connections open as calls need
    /// them, up to 64 ([`max_connections`](Self::max_connections)); one that breaks is
    /// replaced by the next call. A call fails with [`StoreError::Backend`] when connecting
    /// takes over 1 s or a command over 2 s.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::error::StoreError> {
    /// let store = sessions::MemcachedStore::connect("memcache://127.0.0.1:11211").await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let store = Self {
            pool: Arc::new(Pool::new(dsn_of(url)?, DEFAULT_CONNECTIONS)),
            prefix: DEFAULT_PREFIX.into(),
            clock: Arc::new(SystemClock),
            tokens: Arc::new(Tokens::default()),
        };
        let answered = {
            let mut lease = store.pool.get().await?;
            tokio::time::timeout(RESPONSE_TIMEOUT, lease.client().version()).await
        };
        match answered {
            Ok(Ok(_)) => Ok(store),
            Ok(Err(err)) => Err(StoreError::backend(err)),
            Err(elapsed) => Err(StoreError::backend(elapsed)),
        }
    }

    /// Opens at most `connections` connections (at least 1; default 64).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::error::StoreError> {
    /// let store = sessions::MemcachedStore::connect("memcache://127.0.0.1:11211")
    ///     .await?
    ///     .max_connections(32);
    /// # Ok(()) }
    /// ```
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.pool = Arc::new(Pool::new(self.pool.dsn().to_owned(), connections));
        self
    }

    /// The prefix of every key this store writes (default `sessions:`), so that several apps
    /// can share one memcached.
    ///
    /// # Panics
    /// When `prefix` holds a space or a control character, or is longer than 150 bytes (a
    /// memcached key is at most 250 bytes, and the session key takes 64).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::error::StoreError> {
    /// let store = sessions::MemcachedStore::connect("memcache://127.0.0.1:11211")
    ///     .await?
    ///     .prefix("shop:sessions:");
    /// assert_eq!(store.prefix_str(), "shop:sessions:");
    /// # Ok(()) }
    /// ```
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        assert!(
            prefix.len() <= 150 && prefix.bytes().all(|b| b.is_ascii_graphic()),
            "a MemcachedStore prefix must be at most 150 printable ASCII characters without spaces (got {prefix:?})"
        );
        self.prefix = prefix.into();
        self
    }

    /// The key prefix in use.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::error::StoreError> {
    /// let store = sessions::MemcachedStore::connect("memcache://127.0.0.1:11211").await?;
    /// assert_eq!(store.prefix_str(), "sessions:");
    /// # Ok(()) }
    /// ```
    pub fn prefix_str(&self) -> &str {
        &self.prefix
    }

    /// The clock that decides when a session has ended (a
    /// [`ManualClock`](crate::clock::ManualClock) in tests; the system clock by default).
    /// Items still expire in memcached by its own clock, at the deadline's distance from this
    /// clock's now when they were written.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::error::StoreError> {
    /// let store = sessions::MemcachedStore::connect("memcache://127.0.0.1:11211")
    ///     .await?
    ///     .with_clock(sessions::clock::ManualClock::new());
    /// # Ok(()) }
    /// ```
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The memcached key a session is filed under: `{prefix}<session key>`.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::error::StoreError> {
    /// let store = sessions::MemcachedStore::connect("memcache://127.0.0.1:11211").await?;
    /// let key = sessions::SessionId::generate().unwrap().key();
    /// assert_eq!(store.item_key(&key), format!("sessions:{}", key.as_str()));
    /// # Ok(()) }
    /// ```
    pub fn item_key(&self, key: &SessionKey) -> String {
        format!("{}{}", self.prefix, key.as_str())
    }

    /// The item's expiry token for an entry ending at `end`: `T<seconds>` from now (rounded
    /// up), a Unix time past 30 days, `T-1` (at once) for an entry that has ended.
    fn expiry(&self, end: SystemTime) -> String {
        let left = match end.duration_since(self.clock.now()) {
            Ok(left) if !left.is_zero() => left,
            _ => return "T-1".to_owned(),
        };
        let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        if secs <= MAX_RELATIVE {
            return format!("T{secs}");
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        format!("T{}", now.saturating_add(secs).min(i32::MAX as u64))
    }

    /// The item under `item`: its bytes and CAS token.
    async fn get(&self, item: &str) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
        let mut lease = self.pool.get().await?;
        let reply = tokio::time::timeout(
            RESPONSE_TIMEOUT,
            lease
                .client()
                .meta_get(item, false, None, Some(&["v", "c"])),
        )
        .await;
        match reply {
            Ok(Ok(None)) => Ok(None),
            Ok(Ok(Some(value))) => match (value.data, value.cas) {
                (Some(data), Some(cas)) => Ok(Some((data, cas))),
                _ => Err(unexpected("mg: a hit without a value and a CAS token")),
            },
            Ok(Err(err)) => {
                lease.discard();
                Err(StoreError::backend(err))
            }
            Err(elapsed) => Err(StoreError::backend(elapsed)),
        }
    }

    /// `ms item <data> <flags>`.
    async fn set(&self, item: &str, data: &[u8], flags: &[&str]) -> Result<Outcome, StoreError> {
        let mut lease = self.pool.get().await?;
        let reply = tokio::time::timeout(
            RESPONSE_TIMEOUT,
            lease
                .client()
                .meta_set(item, data, false, None, Some(flags)),
        )
        .await;
        outcome(reply, &mut lease)
    }

    /// `md item C<cas>`.
    async fn delete(&self, item: &str, cas: u64) -> Result<Outcome, StoreError> {
        let token = format!("C{cas}");
        let mut lease = self.pool.get().await?;
        let reply = tokio::time::timeout(
            RESPONSE_TIMEOUT,
            lease
                .client()
                .meta_delete(item, false, None, Some(&[token.as_str()])),
        )
        .await;
        outcome(reply, &mut lease)
    }

    /// What is stored under `item` now: nothing (or an entry that has ended), or the stored
    /// entry's version (`None` when its bytes do not say) and CAS token.
    async fn stored(&self, key: &SessionKey, item: &str) -> Result<Found, StoreError> {
        let Some((data, cas)) = self.get(item).await? else {
            return Ok(Found::Nothing);
        };
        let version = blob::stored_version(&data);
        match blob::decode_at(key, Bytes::from(data)) {
            Ok(entry) if entry.is_ended(self.clock.now()) => Ok(Found::Ended { cas }),
            _ => Ok(Found::Live { version, cas }),
        }
    }

    /// Files `entry` under `key` unless something live is stored there.
    async fn create(
        &self,
        key: &SessionKey,
        item: &str,
        entry: &Entry,
    ) -> Result<bool, StoreError> {
        let data = blob::encode_at(key, entry);
        let expiry = self.expiry(entry.expires_at());
        for _ in 0..ATTEMPTS {
            if let Outcome::Done(cas) = self.set(item, &data, &["ME", "c", &expiry]).await? {
                self.tokens.put(key, entry.version(), cas);
                return Ok(true);
            }
            // Taken: by an ended entry (replaced, if it is still the one read) or a live one.
            match self.stored(key, item).await? {
                Found::Live { .. } => return Ok(false),
                Found::Nothing => continue,
                Found::Ended { cas } => {
                    let token = format!("C{cas}");
                    if let Outcome::Done(cas) =
                        self.set(item, &data, &[&token, "c", &expiry]).await?
                    {
                        self.tokens.put(key, entry.version(), cas);
                        return Ok(true);
                    }
                }
            }
        }
        Err(StoreError::Contended)
    }
}

impl MemcachedStore {
    /// Writes `new` (`data`, its bytes) or deletes, over the item of CAS token `cas`; keeps
    /// the token of what it wrote.
    async fn write(
        &self,
        key: &SessionKey,
        item: &str,
        cas: u64,
        new: Option<&Entry>,
        data: Option<&[u8]>,
    ) -> Result<Outcome, StoreError> {
        let outcome = match (new, data) {
            (Some(entry), Some(data)) => {
                let (token, expiry) = (format!("C{cas}"), self.expiry(entry.expires_at()));
                let outcome = self.set(item, data, &[&token, "c", &expiry]).await?;
                if let Outcome::Done(cas) = outcome {
                    self.tokens.put(key, entry.version(), cas);
                }
                outcome
            }
            _ => self.delete(item, cas).await?,
        };
        if new.is_none() || !matches!(outcome, Outcome::Done(_)) {
            self.tokens.remove(key);
        }
        Ok(outcome)
    }
}

/// What a read found under a key.
enum Found {
    Nothing,
    Ended {
        cas: u64,
    },
    /// Live, or bytes that do not decode (never overwritten by a create).
    Live {
        version: Option<u64>,
        cas: u64,
    },
}

fn outcome(
    reply: Result<Result<Option<async_memcached::MetaValue>, McError>, tokio::time::error::Elapsed>,
    lease: &mut pool::Lease<'_>,
) -> Result<Outcome, StoreError> {
    match reply {
        Ok(Ok(None)) => Ok(Outcome::Done(None)),
        Ok(Ok(Some(value))) => Ok(match value.status {
            Some(Status::Exists | Status::NotStored) => Outcome::Lost,
            Some(Status::NotFound) => Outcome::Missing,
            _ => Outcome::Done(value.cas),
        }),
        Ok(Err(McError::Protocol(Status::Exists | Status::NotStored))) => Ok(Outcome::Lost),
        Ok(Err(McError::Protocol(Status::NotFound))) => Ok(Outcome::Missing),
        Ok(Err(err)) => {
            lease.discard();
            Err(StoreError::backend(err))
        }
        Err(elapsed) => Err(StoreError::backend(elapsed)),
    }
}

fn unexpected(what: &'static str) -> StoreError {
    StoreError::backend(std::io::Error::new(std::io::ErrorKind::InvalidData, what))
}

/// The client's address for `url`.
fn dsn_of(url: &str) -> Result<String, StoreError> {
    let rest = ["memcache://", "memcached://", "tcp://"]
        .iter()
        .find_map(|scheme| url.strip_prefix(scheme));
    match rest {
        Some(address) => Ok(format!("tcp://{}", address.trim_end_matches('/'))),
        None if url.starts_with("unix://") => Ok(url.to_owned()),
        None => Err(StoreError::backend(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("not a memcached URL (memcache://host:port or unix:///path): {url:?}"),
        ))),
    }
}

impl std::fmt::Debug for MemcachedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemcachedStore")
            .field("server", &self.pool.dsn())
            .field("connections", &self.pool.size())
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl SessionStore for MemcachedStore {
    fn name(&self) -> &'static str {
        "memcached"
    }

    /// No owner index survives eviction: the sessions of a user cannot be listed.
    fn lists_owners(&self) -> bool {
        false
    }

    async fn load(&self, key: &SessionKey) -> Result<Option<Entry>, StoreError> {
        let Some((data, cas)) = self.get(&self.item_key(key)).await? else {
            return Ok(None);
        };
        let entry = blob::decode_at(key, Bytes::from(data))?;
        if entry.is_ended(self.clock.now()) {
            return Ok(None);
        }
        self.tokens.put(key, entry.version(), Some(cas));
        Ok(Some(entry))
    }

    async fn swap(
        &self,
        key: &SessionKey,
        current: Option<u64>,
        new: Option<Entry>,
    ) -> Result<bool, StoreError> {
        let item = self.item_key(key);
        let Some(current) = current else {
            return match new {
                Some(entry) => self.create(key, &item, &entry).await,
                // Nothing live to delete: it "wrote" iff nothing live is there.
                None => Ok(!matches!(
                    self.stored(key, &item).await?,
                    Found::Live { .. }
                )),
            };
        };
        let data = new.as_ref().map(|entry| blob::encode_at(key, entry));
        // The token of the entry this process last loaded or wrote, if it is of this version:
        // one command. Otherwise (or when the item changed since), read which token is the
        // version's now.
        if let Some(cas) = self.tokens.get(key, current) {
            match self
                .write(key, &item, cas, new.as_ref(), data.as_deref())
                .await?
            {
                Outcome::Done(_) => return Ok(true),
                Outcome::Missing => return Ok(false),
                Outcome::Lost => {}
            }
        }
        let Found::Live { version, cas } = self.stored(key, &item).await? else {
            return Ok(false);
        };
        if version != Some(current) {
            return Ok(false);
        }
        let outcome = self
            .write(key, &item, cas, new.as_ref(), data.as_deref())
            .await?;
        Ok(matches!(outcome, Outcome::Done(_)))
    }

    /// [`StoreError::Unsupported`]: memcached keeps no index that survives eviction.
    async fn owned_by(&self, owner: &str) -> Result<Vec<(SessionKey, Entry)>, StoreError> {
        let _ = owner;
        Err(StoreError::Unsupported(
            "list the sessions of an owner: memcached keeps no index that survives eviction (use RedisStore or a SQL store for sessions_of, revoke_owner and max_sessions_per_owner)",
        ))
    }

    /// Nothing to do: memcached drops every item at its expiry.
    async fn delete_expired(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            dsn_of("memcache://127.0.0.1:11211").ok().as_deref(),
            Some("tcp://127.0.0.1:11211")
        );
        assert_eq!(
            dsn_of("tcp://localhost:1/").ok().as_deref(),
            Some("tcp://localhost:1")
        );
        assert_eq!(
            dsn_of("unix:///run/mc.sock").ok().as_deref(),
            Some("unix:///run/mc.sock")
        );
        assert!(dsn_of("redis://127.0.0.1").is_err());
    }

    #[tokio::test]
    async fn expiry_is_relative_up_to_thirty_days_then_absolute() {
        let clock = crate::clock::ManualClock::new();
        let store = MemcachedStore {
            pool: Arc::new(Pool::new("tcp://127.0.0.1:1".into(), 1)),
            prefix: DEFAULT_PREFIX.into(),
            clock: Arc::new(clock.clone()),
            tokens: Arc::new(Tokens::default()),
        };
        let now = clock.now();
        assert_eq!(store.expiry(now - Duration::from_secs(1)), "T-1");
        assert_eq!(store.expiry(now), "T-1");
        assert_eq!(store.expiry(now + Duration::from_millis(1500)), "T2");
        assert_eq!(
            store.expiry(now + Duration::from_secs(MAX_RELATIVE)),
            format!("T{MAX_RELATIVE}")
        );
        let later: u64 = store.expiry(now + Duration::from_secs(MAX_RELATIVE + 1))[1..]
            .parse()
            .expect("a number");
        assert!(
            later > MAX_RELATIVE * 20,
            "a Unix time, not a relative one: {later}"
        );
        let far = store.expiry(now + Duration::from_secs(u64::MAX / 4));
        assert_eq!(far, format!("T{}", i32::MAX));
    }
}
