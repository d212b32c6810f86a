//! [`RedisStore`]: sessions in Redis or Valkey, standalone or cluster (feature `redis`).

mod cycle;
mod layout;
mod migrate;
mod read;
mod wire;

use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use ::redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use ::redis::cluster::ClusterClient;
use ::redis::cluster_async::ClusterConnection;
use ::redis::{Cmd, IntoConnectionInfo, Pipeline, RedisError, RedisFuture, Script, Value};

use self::wire::{Change, SaveReply, pairs, unexpected};
use crate::expiry::Deadline;
use crate::id::SessionKey;
use crate::record::{Changeset, Record};
use crate::store::{SaveOutcome, SessionStore, StoreError, Stored};

/// The prefix of every key unless [`RedisStore::prefix`] sets another.
const DEFAULT_PREFIX: &str = "sessions:";

static CREATE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("redis/create.lua")));
/// `apply.lua` is the part every changing script shares: reading, checking and writing a
/// changeset. `save_fast.lua` answers the common save (a field update of stored fields)
/// before Redis runs any of it: a third of the server time of a save.
static SAVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("redis/save_fast.lua"),
        include_str!("redis/apply.lua"),
        include_str!("redis/save.lua")
    ))
});

/// Sessions in Redis or Valkey: standalone ([`connect`](RedisStore::connect)) or Redis Cluster
/// ([`connect_cluster`](RedisStore::connect_cluster)).
///
/// One session is one hash under `{prefix}{<session key>}`: the key is the hash of the
/// session id (a dump of Redis hands out no live session), inside `{}` so that everything of
/// one session lives in one cluster slot. The hash holds the deadline, a header per slot
/// (type tag, version, format) and one entry per field, so a save writes only the fields and
/// slots that changed: two requests that change different fields of one session both
/// survive. Every write is one Lua script (atomic, sent as `EVALSHA`, loaded on demand), and
/// the key expires at the session's deadline (`PEXPIREAT`), so Redis removes ended
/// sessions itself. Deadlines are kept by the Redis server's clock.
///
/// * `create` never overwrites: a taken key is [`StoreError::Collision`];
/// * `save` updates only: a destroyed or expired session says [`SaveOutcome::Missing`] and
///   nothing is written; a field update whose stored slot is gone or was rewritten at another
///   version or format is [`StoreError::Apply`], and nothing of that save is written;
/// * every slot keeps a revision (`r:<slot>` in the hash) that each write of the slot moves by
///   one; a save whose expected revisions ([`Changeset::expect`]) do not hold is
///   [`StoreError::Conflict`] and writes nothing. Sessions stored before revisions existed
///   read as revision 1 and keep working;
/// * `cycle` is atomic: one script over both keys on a single server; on Redis Cluster, where
///   the two keys live in different hash slots, a two-step move whose first step marks the old
///   key as moving, so that no save to it is acknowledged and then lost (see
///   [`SessionStore::cycle`] and the `cycle` module's notes);
/// * a hash that is not a well-formed session loads as [`StoreError::Record`];
/// * connection and server failures are [`StoreError::Backend`]; the connection reconnects by
///   itself, so the store works again as soon as the server does.
///
/// Cloning is cheap and shares the connection.
///
/// ```no_run
/// use sessions::prelude::*;
/// use sessions::RedisStore;
///
/// #[derive(Session, Default)]
/// struct Cart { items: Vec<String> }
///
/// # async fn demo() -> Result<(), sessions::StoreError> {
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
}

/// A standalone or a cluster connection; both reconnect by themselves.
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

fn backend(err: RedisError) -> StoreError {
    StoreError::backend(err)
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
    /// # async fn demo() -> Result<(), sessions::StoreError> {
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
    /// use std::time::Duration;
    /// use sessions::RedisStore;
    /// # async fn demo() -> Result<(), sessions::StoreError> {
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
        let manager = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(backend)?;
        Ok(Self::from_manager(manager))
    }

    /// A store over a connection manager you built yourself.
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
        }
    }

    /// Connects to a Redis Cluster (or Valkey cluster) through any of its nodes. Every
    /// session lives on the one node that owns its key's hash slot; scripts run there.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::StoreError> {
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
        let client = ClusterClient::builder(urls)
            .connection_timeout(Duration::from_secs(1))
            .response_timeout(Duration::from_secs(2))
            .build()
            .map_err(backend)?;
        let connection = client.get_async_connection().await.map_err(backend)?;
        Ok(Self::from_cluster(connection))
    }

    /// A store over a cluster connection you built yourself (with a `ClusterClient` of your
    /// settings).
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
        }
    }

    /// The prefix of every key this store writes (default `sessions:`), so several apps can
    /// share one Redis database.
    ///
    /// # Panics
    /// When `prefix` holds `{` or `}`: Redis Cluster would take the prefix's braces for the
    /// hash tag, and a session's key would no longer be placed by its session key.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::StoreError> {
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
    /// # async fn demo() -> Result<(), sessions::StoreError> {
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
    /// # async fn demo() -> Result<(), sessions::StoreError> {
    /// let store = sessions::RedisStore::connect("redis://127.0.0.1:6379").await?;
    /// let key = sessions::SessionId::generate().unwrap().key();
    /// assert_eq!(store.redis_key(&key), format!("sessions:{{{}}}", key.as_str()));
    /// # Ok(())
    /// # }
    /// ```
    pub fn redis_key(&self, key: &SessionKey) -> String {
        layout::redis_key(&self.prefix, key.as_str())
    }

    /// Whether this store talks to a Redis Cluster.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::StoreError> {
    /// let store = sessions::RedisStore::connect("redis://127.0.0.1:6379").await?;
    /// assert!(!store.is_cluster());
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_cluster(&self) -> bool {
        matches!(self.connection, Connection::Cluster(_))
    }

    /// Runs one request; once more when the connection was refused, since a refused
    /// connection sent nothing: the second try waits for the reconnection the first one
    /// started, so the first request after a server restart succeeds.
    async fn request<T, F, Fut>(&self, send: F) -> Result<T, StoreError>
    where
        F: Fn(Connection) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        match send(self.connection.clone()).await {
            Err(err) if err.is_connection_refusal() => {
                send(self.connection.clone()).await.map_err(backend)
            }
            result => result.map_err(backend),
        }
    }

    async fn hgetall(&self, redis_key: &str) -> Result<layout::Entries, StoreError> {
        let mut cmd = ::redis::cmd("HGETALL");
        cmd.arg(redis_key);
        let reply: Value = self
            .request(|mut conn| {
                let cmd = &cmd;
                async move { cmd.query_async(&mut conn).await }
            })
            .await?;
        pairs(reply)
    }

    async fn load_redis_key(&self, redis_key: &str) -> Result<Option<Stored>, StoreError> {
        let entries = self.hgetall(redis_key).await?;
        // A session a cluster cycle is moving is gone for everyone but the mover.
        if entries.is_empty() || layout::is_moving(&entries) {
            return Ok(None);
        }
        Ok(Some(read::parse(entries)?))
    }

    /// Sends one script invocation.
    async fn invoke<T: ::redis::FromRedisValue>(
        &self,
        invocation: &::redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        self.request(|mut conn| async move { invocation.invoke_async(&mut conn).await })
            .await
    }

    /// Files `record` under `redis_key` unless the key is taken.
    async fn create_redis_key(
        &self,
        redis_key: &str,
        record: &Record,
        deadline: Deadline,
    ) -> Result<(), StoreError> {
        let entries = layout::record_entries(record);
        let mut invocation = CREATE.prepare_invoke();
        invocation
            .key(redis_key)
            .arg(layout::millis(deadline.created_at))
            .arg(layout::millis(deadline.expires_at));
        for (name, value) in &entries {
            invocation.arg(name).arg(&value[..]);
        }
        match self.invoke::<i64>(&invocation).await? {
            1 => Ok(()),
            0 => Err(StoreError::Collision),
            other => Err(unexpected("the create script", other)),
        }
    }

    async fn delete_redis_key(&self, redis_key: &str) -> Result<(), StoreError> {
        let mut cmd = ::redis::cmd("DEL");
        cmd.arg(redis_key);
        self.request(|mut conn| {
            let cmd = &cmd;
            async move { cmd.query_async::<i64>(&mut conn).await }
        })
        .await?;
        Ok(())
    }

    /// Runs the save script; `deadline` `None` keeps the stored one.
    async fn run_save(
        &self,
        redis_key: &str,
        changes: &[Change<'_>],
        deadline: Option<Deadline>,
    ) -> Result<SaveReply, StoreError> {
        let mut invocation = SAVE.prepare_invoke();
        invocation.key(redis_key);
        match deadline {
            Some(d) => invocation
                .arg(layout::millis(d.created_at))
                .arg(layout::millis(d.expires_at)),
            None => invocation.arg("").arg(""),
        };
        for change in changes {
            change.write(&mut invocation);
        }
        SaveReply::parse(self.invoke(&invocation).await?)
    }
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("cluster", &self.is_cluster())
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl SessionStore for RedisStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<Stored>, StoreError> {
        self.load_redis_key(&self.redis_key(key)).await
    }

    async fn create(
        &self,
        key: &SessionKey,
        record: &Record,
        deadline: Deadline,
    ) -> Result<(), StoreError> {
        self.create_redis_key(&self.redis_key(key), record, deadline)
            .await
    }

    async fn save(
        &self,
        key: &SessionKey,
        changes: &Changeset,
        deadline: Deadline,
    ) -> Result<SaveOutcome, StoreError> {
        self.run_save(&self.redis_key(key), &Change::list(changes), Some(deadline))
            .await?
            .outcome(changes, "the save script")
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), StoreError> {
        self.delete_redis_key(&self.redis_key(key)).await
    }

    async fn cycle(
        &self,
        from: &SessionKey,
        to: &SessionKey,
        changes: &Changeset,
        deadline: Deadline,
    ) -> Result<SaveOutcome, StoreError> {
        let (from, to) = (self.redis_key(from), self.redis_key(to));
        match self.connection {
            Connection::Single(_) => {
                self.cycle_in_one_script(&from, &to, changes, deadline)
                    .await
            }
            Connection::Cluster(_) => self.cycle_in_two_steps(&from, &to, changes, deadline).await,
        }
    }
}
