//! [`RedisStore`]: sessions in Redis or Valkey, standalone or cluster, with an opt-in coherent
//! local cache (feature `redis`).

mod admin;
mod cache;
mod entries;
mod legacy;
mod owners;
mod scan;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::cluster::ClusterClient;
use ::redis::cluster_async::ClusterConnection;
use ::redis::{ConnectionInfo, IntoConnectionInfo, ProtocolVersion, PushInfo};

use self::cache::LocalCache;
use self::wire::{Connection, backend};
use crate::id::SessionKey;
use crate::store::upkeep::{ScanCursor, ScanPage};
use crate::store::{Entry, OwnedEntries, SessionStore, StoreError};

/// The prefix of every key unless [`RedisStore::prefix`] sets another.
const DEFAULT_PREFIX: &str = "sessions:";

/// Sessions in Redis or Valkey: standalone ([`connect`](RedisStore::connect)) or Redis Cluster
/// ([`connect_cluster`](RedisStore::connect_cluster)), optionally with a coherent local cache
/// ([`local_cache`](RedisStore::local_cache)).
///
/// **Layout.** One string per session under `{prefix}{<session key>}` (the session key is the
/// SHA-256 of the id in hex, so a dump of Redis hands out no live session; the braces are the
/// cluster hash tag). Its value is the whole entry ([`blob::encode`](crate::store::blob)), and
/// it expires at the entry's end (`PXAT`), so Redis removes ended sessions by itself and its
/// clock decides when a session has ended.
///
/// * A load is one `GET`.
/// * A swap over a stored version is one script (`EVALSHA`; loaded on demand) that compares the
///   stored value's first 9 bytes (marker and version) with the expected ones and then `SET`s
///   (with `PXAT`) or `DEL`s: atomic, one round trip. A create is `SET … NX PXAT`, also one
///   round trip (on a single server, a create that binds an owner runs the script, so the owner
///   index is written with it). So the common save is one round trip, and a save made from a
///   stale entry writes nothing and is retried on what is stored: no write is lost.
/// * **Owners** ([`SessionStore::owned_by`]): a set per owner under `{prefix}o:{<owner>}` holds
///   the session keys bound to that owner. On a single server the swap script updates it in the
///   same atomic step when a write changes the owner, so a session is listed exactly while it is
///   bound. On Redis Cluster the set lives in another hash slot than the session, so the store
///   updates it right after the swap (not atomic: for that moment a new binding is not listed
///   yet and an unbinding still is; if that write fails the swap returns
///   [`StoreError::Backend`] although the session was written). In both, `owned_by` is one
///   `SMEMBERS` and one `MGET` of the members, and prunes members that are gone or bound to
///   someone else (a session that expires leaves its member until then); listing 1,000 sessions
///   is those two commands, not a scan. Ordinary saves that keep the owner touch no index.
/// * **Bad data.** A value that is not an entry, and a key of another type that is not an
///   old-layout session, is [`StoreError::Record`] (the layer starts a fresh session; the key is
///   left to its TTL). Connection and server failures are [`StoreError::Backend`]; the
///   connection reconnects by itself.
/// * **Upgrade.** Sessions written by the previous layout (a hash per session) convert on their
///   first load: the `GET` answers `WRONGTYPE`, the hash is read, converted and replaced by its
///   entry only if it is still what was read. A broken slot of such a hash (its header, field
///   list or a listed field missing) is dropped with a warning and the rest of the session
///   converts, as the SQL stores lose only a broken slot; a broken deadline or slot list is a
///   [`StoreError::Record`]. [`migrate`](RedisStore::migrate) converts a whole keyspace at
///   once. Do not run the previous release against the same prefix meanwhile: its saves fail
///   on converted sessions.
///
/// **Costs** (`benches/store_redis.rs`, figures in the README): a read-only request is one
/// `GET` (none with the local cache, once the session is cached); a request that saves is a
/// `GET` and one `EVALSHA` (only the `EVALSHA` with the cache). The script costs the server
/// several times what a plain `SET` does; that is the price of an atomic compare-and-swap on
/// Redis 7 (no conditional `SET` before 8.4). Each save sends the whole entry. The key is the
/// 64 hex digits of the session key: a 43-character base64 key would save 21 bytes per
/// command, but would move every session stored by the previous release to another key
/// (their in-place upgrade relies on the key staying the same), for no measurable time.
///
/// Cloning is cheap and shares the connection (and the local cache).
///
/// ```no_run
/// use sessions::prelude::*;
/// use sessions::RedisStore;
///
/// #[derive(Session, Default)]
/// #[session(name = "cart")]
/// struct Cart { items: Vec<String> }
///
/// # async fn demo() -> Result<(), sessions::error::StoreError> {
/// let store = RedisStore::connect("redis://127.0.0.1:6379").await?.prefix("shop:");
/// let layer = SessionLayer::new(store).register::<Cart>();
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    connection: Connection,
    prefix: Arc<str>,
    /// How the connection was made, so that [`RedisStore::local_cache`] can make it again.
    source: Option<Arc<Source>>,
    cache: Option<Arc<LocalCache>>,
}

enum Source {
    Single {
        client: ::redis::Client,
        config: Box<ConnectionManagerConfig>,
    },
    Cluster {
        nodes: Vec<ConnectionInfo>,
    },
}

impl RedisStore {
    /// Connects to one Redis or Valkey server (`redis://host:port/db`, `rediss://…` with TLS
    /// features of the `redis` crate, `redis+unix:///path`).
    ///
    /// The connection reconnects by itself. When the server is down, a store call fails with
    /// [`StoreError::Backend`] within about two seconds instead of hanging: connection
    /// attempts time out after 1 s, responses after 2 s, and a lost connection is retried
    /// twice with a short backoff before the call gives up; a call refused by a server that
    /// is back is sent once more on the fresh connection, so the first request after a
    /// restart succeeds. [`connect_with_config`](RedisStore::connect_with_config) sets other
    /// limits.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::error::StoreError> {
    /// let store = sessions::RedisStore::connect("redis://127.0.0.1:6379").await?;
    /// # let _ = store;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(url: impl IntoConnectionInfo) -> Result<Self, StoreError> {
        Self::connect_with_config(url, Self::default_config()).await
    }

    /// The connection settings [`connect`](RedisStore::connect) uses: a starting point for
    /// [`connect_with_config`](RedisStore::connect_with_config).
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = sessions::RedisStore::default_config()
    ///     .set_response_timeout(Some(Duration::from_secs(5)));
    /// assert_eq!(config.response_timeout(), Some(Duration::from_secs(5)));
    /// ```
    pub fn default_config() -> ConnectionManagerConfig {
        ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500))
    }

    /// Connects to one server with the given connection-manager settings (timeouts, retries).
    ///
    /// ```no_run
    /// use sessions::RedisStore;
    /// # async fn demo() -> Result<(), sessions::error::StoreError> {
    /// let config = RedisStore::default_config().set_number_of_retries(5);
    /// let store = RedisStore::connect_with_config("redis://127.0.0.1:6379", config).await?;
    /// # let _ = store;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect_with_config(
        url: impl IntoConnectionInfo,
        config: ConnectionManagerConfig,
    ) -> Result<Self, StoreError> {
        let client = ::redis::Client::open(url).map_err(backend)?;
        let manager = ConnectionManager::new_with_config(client.clone(), config.clone())
            .await
            .map_err(backend)?;
        let mut store = Self::from_manager(manager);
        store.source = Some(Arc::new(Source::Single {
            client,
            config: Box::new(config),
        }));
        Ok(store)
    }

    /// A store over a connection manager you built yourself (it cannot get a
    /// [`local_cache`](RedisStore::local_cache): that needs a connection the store makes).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = redis::Client::open("redis://127.0.0.1:6379")?;
    /// let manager = redis::aio::ConnectionManager::new(client).await?;
    /// let store = sessions::RedisStore::from_manager(manager);
    /// # let _ = store;
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_manager(manager: ConnectionManager) -> Self {
        Self {
            connection: Connection::Single(manager),
            prefix: DEFAULT_PREFIX.into(),
            source: None,
            cache: None,
        }
    }

    /// Connects to a Redis Cluster (or Valkey cluster) through any of its nodes. Every
    /// session lives on the one node that owns its key's hash slot; its scripts run there.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::error::StoreError> {
    /// let store = sessions::RedisStore::connect_cluster([
    ///     "redis://127.0.0.1:7000",
    ///     "redis://127.0.0.1:7001",
    ///     "redis://127.0.0.1:7002",
    /// ])
    /// .await?;
    /// # let _ = store;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect_cluster<U: IntoConnectionInfo>(
        urls: impl IntoIterator<Item = U>,
    ) -> Result<Self, StoreError> {
        let nodes = urls
            .into_iter()
            .map(IntoConnectionInfo::into_connection_info)
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)?;
        let client = cluster_builder(&nodes).build().map_err(backend)?;
        let connection = client.get_async_connection().await.map_err(backend)?;
        let mut store = Self::from_cluster(connection);
        store.source = Some(Arc::new(Source::Cluster { nodes }));
        Ok(store)
    }

    /// A store over a cluster connection you built yourself (with a `ClusterClient` of your
    /// settings; it cannot get a [`local_cache`](RedisStore::local_cache)).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = redis::cluster::ClusterClient::new(["redis://127.0.0.1:7000"])?;
    /// let store = sessions::RedisStore::from_cluster(client.get_async_connection().await?);
    /// # let _ = store;
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_cluster(connection: ClusterConnection) -> Self {
        Self {
            connection: Connection::Cluster(connection),
            prefix: DEFAULT_PREFIX.into(),
            source: None,
            cache: None,
        }
    }

    /// Keeps up to about `capacity` sessions (plus at most 32) in this process's memory,
    /// coherent with the server: a session read or written once is served from memory, with no
    /// round trip, until the server says its key changed. For this the store reconnects over
    /// RESP3 with server-assisted client-side caching (`CLIENT TRACKING on NOLOOP`): Redis
    /// tracks the keys this connection read and pushes an invalidation when another client
    /// (another instance of the app) writes one, when it expires and when it is evicted; a
    /// `FLUSHALL` and a lost connection (the tracking goes with it) drop the whole cache. Works
    /// on a single server and on Redis Cluster (Redis 6 or later, Valkey).
    ///
    /// **How stale can a read be?** A write through another instance is seen by this one's
    /// next load once its invalidation has arrived: the server queues it while it runs the
    /// write, so a load returns the entry as it was before the write for as long as the push
    /// takes to reach this process and be read. That is a window of time, not a number of
    /// changes: every write acknowledged through another instance within it is missed by a
    /// load within it, and on a link with 100 ms latency it lasts about 100 ms or more
    /// (measured under load on one host, from the writer's acknowledgement: median 1.4 ms,
    /// p99 31 ms, max 42 ms; a read of a session another instance wrote flat out missed up to
    /// 25 writes — the README has the command). For two concurrent requests of one user on two
    /// instances that changes nothing the store promises about writes: every save is a
    /// compare-and-swap on the entry's version, so a save made from a stale cached entry writes
    /// nothing, drops the entry from the cache, reloads from the server and applies its change
    /// there; no write is lost and no logout is undone (a destroyed session's save finds
    /// nothing). What a stale load can do is show a request data that other instances changed
    /// within the window, as if the request had arrived that much earlier. Writes of this
    /// instance are never stale here: each keeps the entry it wrote. Entries are also trusted
    /// for at most a minute without a read from the server (a lost invalidation).
    ///
    /// Memory: each cached session is held decoded (its record's bytes plus names), so budget
    /// `capacity` times your sessions' size. When the cache is full the sessions used least
    /// recently go first (two generations per shard).
    ///
    /// # Errors
    /// [`StoreError::Unsupported`] for a store made by [`from_manager`](RedisStore::from_manager)
    /// or [`from_cluster`](RedisStore::from_cluster) (the cache needs a connection it sets up
    /// itself); [`StoreError::Backend`] when the new connection cannot be made.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::error::StoreError> {
    /// let store = sessions::RedisStore::connect("redis://127.0.0.1:6379")
    ///     .await?
    ///     .local_cache(100_000)
    ///     .await?;
    /// assert!(store.has_local_cache());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn local_cache(mut self, capacity: usize) -> Result<Self, StoreError> {
        let Some(source) = self.source.clone() else {
            return Err(StoreError::Unsupported(
                "keep a local cache on a connection it did not make (use RedisStore::connect or connect_cluster)",
            ));
        };
        if capacity == 0 {
            self.cache = None;
            return Ok(self);
        }
        let cache = Arc::new(LocalCache::new(capacity));
        let pushes = cache.clone();
        let on_push = move |push: PushInfo| {
            pushes.on_push(&push);
            Ok::<(), std::convert::Infallible>(())
        };
        self.connection = match &*source {
            Source::Single { client, config } => {
                let info = client.get_connection_info().clone();
                let settings = info
                    .redis_settings()
                    .clone()
                    .set_protocol(ProtocolVersion::RESP3);
                let client =
                    ::redis::Client::open(info.set_redis_settings(settings)).map_err(backend)?;
                let config = (**config).clone().set_push_sender(on_push);
                Connection::Single(
                    ConnectionManager::new_with_config(client, config)
                        .await
                        .map_err(backend)?,
                )
            }
            Source::Cluster { nodes } => {
                let client = cluster_builder(nodes)
                    .use_protocol(ProtocolVersion::RESP3)
                    .push_sender(on_push)
                    .build()
                    .map_err(backend)?;
                Connection::Cluster(client.get_async_connection().await.map_err(backend)?)
            }
        };
        self.cache = Some(cache);
        Ok(self)
    }

    /// Whether this store keeps a [`local_cache`](RedisStore::local_cache).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::error::StoreError> {
    /// let store = sessions::RedisStore::connect("redis://127.0.0.1:6379").await?;
    /// assert!(!store.has_local_cache());
    /// # Ok(())
    /// # }
    /// ```
    pub fn has_local_cache(&self) -> bool {
        self.cache.is_some()
    }

    /// How many sessions the [`local_cache`](RedisStore::local_cache) holds now (0 without one).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::error::StoreError> {
    /// let store = sessions::RedisStore::connect("redis://127.0.0.1:6379").await?;
    /// assert_eq!(store.cached_sessions(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn cached_sessions(&self) -> usize {
        self.cache.as_ref().map_or(0, |cache| cache.len())
    }

    /// The prefix of every key this store writes (default `sessions:`), so several apps can
    /// share one Redis database.
    ///
    /// # Panics
    /// When `prefix` holds `{` or `}`: Redis Cluster would take the prefix's braces for the
    /// hash tag, and a session's key would no longer be placed by its session key.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::error::StoreError> {
    /// let store = sessions::RedisStore::connect("redis://127.0.0.1:6379")
    ///     .await?
    ///     .prefix("shop:sessions:");
    /// assert_eq!(store.prefix_str(), "shop:sessions:");
    /// # Ok(())
    /// # }
    /// ```
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        assert!(
            !prefix.contains(['{', '}']),
            "a RedisStore prefix must not contain `{{` or `}}` (got {prefix:?}): the braces around the session key are its cluster hash tag"
        );
        self.prefix = prefix.into();
        self
    }

    /// The key prefix in use.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::error::StoreError> {
    /// let store = sessions::RedisStore::connect("redis://127.0.0.1:6379").await?;
    /// assert_eq!(store.prefix_str(), "sessions:");
    /// # Ok(())
    /// # }
    /// ```
    pub fn prefix_str(&self) -> &str {
        &self.prefix
    }

    /// The Redis key a session is filed under: `{prefix}{<session key>}`.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::error::StoreError> {
    /// let store = sessions::RedisStore::connect("redis://127.0.0.1:6379").await?;
    /// let key = sessions::SessionId::generate().unwrap().key();
    /// assert_eq!(store.redis_key(&key), format!("sessions:{{{}}}", key.as_str()));
    /// # Ok(())
    /// # }
    /// ```
    pub fn redis_key(&self, key: &SessionKey) -> String {
        format!("{}{{{}}}", self.prefix, key.as_str())
    }

    /// Whether this store talks to a Redis Cluster.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::error::StoreError> {
    /// let store = sessions::RedisStore::connect("redis://127.0.0.1:6379").await?;
    /// assert!(!store.is_cluster());
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_cluster(&self) -> bool {
        matches!(self.connection, Connection::Cluster(_))
    }
}

/// The cluster client settings: the timeouts of [`RedisStore::default_config`].
fn cluster_builder(nodes: &[ConnectionInfo]) -> ::redis::cluster::ClusterClientBuilder {
    ClusterClient::builder(nodes.to_vec())
        .connection_timeout(Duration::from_secs(1))
        .response_timeout(Duration::from_secs(2))
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("cluster", &self.is_cluster())
            .field("local_cache", &self.has_local_cache())
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl SessionStore for RedisStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<Entry>, StoreError> {
        self.load_key(key).await
    }

    async fn swap(
        &self,
        key: &SessionKey,
        current: Option<u64>,
        new: Option<Entry>,
    ) -> Result<bool, StoreError> {
        self.swap_key(key, current, new).await
    }

    async fn owned_by(&self, owner: &str) -> Result<Vec<(SessionKey, Entry)>, StoreError> {
        Ok(self.list_owner(owner).await?.entries)
    }

    async fn owned_entries(&self, owner: &str) -> Result<OwnedEntries, StoreError> {
        self.list_owner(owner).await
    }

    async fn scan(
        &self,
        cursor: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<ScanPage, StoreError> {
        self.scan_page(cursor, limit.max(1)).await
    }

    /// Nothing to do: Redis removes every entry at its end (`PXAT`).
    async fn delete_expired(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    fn name(&self) -> &'static str {
        "redis"
    }
}
