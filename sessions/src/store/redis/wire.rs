//! What goes over the wire: the two kinds of connection, the store's scripts (sent as
//! `EVALSHA`, sent whole once when the server answers `NOSCRIPT`), and the shapes of replies.

use std::sync::LazyLock;

use ::redis::aio::{ConnectionLike, ConnectionManager};
use ::redis::cluster_async::ClusterConnection;
use ::redis::cluster_routing::{Route, SingleNodeRoutingInfo, SlotAddr};
use ::redis::{Cmd, Pipeline, RedisError, Script, Value};

use crate::errors::StoreError;

/// The compare-and-swap of one entry.
pub(super) static SWAP: LazyLock<ScriptText> =
    LazyLock::new(|| ScriptText::new(include_str!("swap.lua")));
/// The replacement of an old-layout hash by its entry.
pub(super) static CONVERT: LazyLock<ScriptText> =
    LazyLock::new(|| ScriptText::new(include_str!("convert.lua")));

/// A script's source and SHA-1.
pub(super) struct ScriptText {
    source: &'static str,
    sha: String,
}

impl ScriptText {
    fn new(source: &'static str) -> Self {
        Self {
            source,
            sha: Script::new(source).get_hash().to_owned(),
        }
    }

    /// `EVALSHA` (or, `whole`, `EVAL`) of this script over one key.
    pub(super) fn call(&self, whole: bool, key: &str) -> Cmd {
        let mut cmd = if whole {
            let mut cmd = ::redis::cmd("EVAL");
            cmd.arg(self.source);
            cmd
        } else {
            let mut cmd = ::redis::cmd("EVALSHA");
            cmd.arg(&self.sha);
            cmd
        };
        cmd.arg(1).arg(key);
        cmd
    }
}

/// A standalone or a cluster connection; both reconnect by themselves.
#[derive(Clone)]
pub(super) enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// A reply the store never expects: the server is not running our scripts, or the data is not
/// ours.
#[derive(Debug, thiserror::Error)]
#[error("unexpected reply from Redis to {command}: {reply}")]
struct UnexpectedReply {
    command: &'static str,
    reply: String,
}

pub(super) fn unexpected(command: &'static str, reply: impl std::fmt::Debug) -> StoreError {
    StoreError::backend(UnexpectedReply {
        command,
        reply: format!("{reply:?}"),
    })
}

pub(super) fn backend(err: RedisError) -> StoreError {
    StoreError::backend(err)
}

/// An error reply as an error, so every failure is one `Err`.
fn lift(value: Value) -> Result<Value, RedisError> {
    match value {
        Value::ServerError(err) => Err(err.into()),
        value => Ok(value),
    }
}

/// Whether `err` is the server's error `code` (`WRONGTYPE`, `NOSCRIPT`…).
pub(super) fn is_code(err: &RedisError, code: &str) -> bool {
    err.code() == Some(code)
}

impl Connection {
    async fn once(&self, cmd: &Cmd) -> Result<Value, RedisError> {
        let value = match self {
            Connection::Single(c) => c.clone().req_packed_command(cmd).await?,
            Connection::Cluster(c) => c.clone().req_packed_command(cmd).await?,
        };
        lift(value)
    }

    async fn once_pipelined(&self, pipe: &Pipeline, key: &[u8]) -> Result<Vec<Value>, RedisError> {
        let values = match self {
            Connection::Single(c) => c.clone().req_packed_commands(pipe, 0, pipe.len()).await?,
            Connection::Cluster(c) => {
                let route =
                    SingleNodeRoutingInfo::SpecificNode(Route::with_key(key, SlotAddr::Master));
                c.clone()
                    .route_pipeline(pipe.clone(), 0, pipe.len(), route)
                    .await?
            }
        };
        values.into_iter().map(lift).collect()
    }

    /// One command, on the node of its key. Sent once more when the connection was refused
    /// (a refused connection sent nothing): the second try waits for the reconnection the first
    /// one started, so the first request after a server restart succeeds.
    pub(super) async fn command(&self, cmd: &Cmd) -> Result<Value, RedisError> {
        match self.once(cmd).await {
            Err(err) if err.is_connection_refusal() => self.once(cmd).await,
            result => result,
        }
    }

    /// Commands in one round trip on one connection, all on the node of `key` (their keys must
    /// share its hash slot); the replies in order.
    pub(super) async fn pipeline(
        &self,
        pipe: &Pipeline,
        key: &[u8],
    ) -> Result<Vec<Value>, RedisError> {
        match self.once_pipelined(pipe, key).await {
            Err(err) if err.is_connection_refusal() => self.once_pipelined(pipe, key).await,
            result => result,
        }
    }

    /// `cmd` (a script call built by `call(whole)`), after `CLIENT TRACKING on NOLOOP` in the
    /// same round trip when `tracking`; sent again with the script's source when the server
    /// does not know the script yet.
    pub(super) async fn script(
        &self,
        call: impl Fn(bool) -> Cmd,
        key: &str,
        tracking: bool,
    ) -> Result<Value, RedisError> {
        let send = |whole: bool| {
            let cmd = call(whole);
            async move {
                if tracking {
                    let mut pipe = tracked();
                    pipe.add_command(cmd);
                    let mut replies = self.pipeline(&pipe, key.as_bytes()).await?;
                    replies.pop().ok_or_else(|| {
                        RedisError::from((::redis::ErrorKind::Client, "an empty pipeline reply"))
                    })
                } else {
                    self.command(&cmd).await
                }
            }
        };
        match send(false).await {
            Err(err) if is_code(&err, "NOSCRIPT") => send(true).await,
            result => result,
        }
    }
}

/// A pipeline that starts with `CLIENT TRACKING on NOLOOP`: what follows runs on a tracking
/// connection, even one that reconnected a moment ago.
pub(super) fn tracked() -> Pipeline {
    let mut pipe = ::redis::pipe();
    pipe.cmd("CLIENT").arg("TRACKING").arg("on").arg("NOLOOP");
    pipe
}

/// A reply's integer.
pub(super) fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Int(n) => Some(*n),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

/// A reply's bytes.
pub(super) fn bytes(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        _ => None,
    }
}

/// The items of an array or set reply (RESP2 sends arrays, RESP3 sets).
pub(super) fn items(value: Value) -> Option<Vec<Value>> {
    match value {
        Value::Array(items) | Value::Set(items) => Some(items),
        Value::Nil => Some(Vec::new()),
        _ => None,
    }
}

/// The field/value pairs of an `HGETALL` reply (RESP2: a flat array, RESP3: a map).
pub(super) fn pairs(value: Value) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    match value {
        Value::Map(map) => map
            .into_iter()
            .map(|(k, v)| Some((bytes(k)?, bytes(v)?)))
            .collect(),
        Value::Array(flat) => {
            if flat.len() % 2 != 0 {
                return None;
            }
            let mut out = Vec::with_capacity(flat.len() / 2);
            let mut iter = flat.into_iter();
            while let (Some(k), Some(v)) = (iter.next(), iter.next()) {
                out.push((bytes(k)?, bytes(v)?));
            }
            Some(out)
        }
        _ => None,
    }
}

/// `(next cursor, keys)` of a `SCAN` reply.
pub(super) fn scan_reply(value: Value) -> Option<(u64, Vec<String>)> {
    let mut parts = items(value)?.into_iter();
    let cursor = int(&parts.next()?)?;
    let keys = items(parts.next()?)?
        .into_iter()
        .map(|key| String::from_utf8(bytes(key)?).ok())
        .collect::<Option<Vec<_>>>()?;
    Some((u64::try_from(cursor).ok()?, keys))
}

/// The primaries' addresses in a `CLUSTER SLOTS` reply.
pub(super) fn primaries(value: Value) -> Option<Vec<(String, u16)>> {
    let mut nodes: Vec<(String, u16)> = Vec::new();
    for range in items(value)? {
        let primary = items(range)?.into_iter().nth(2)?;
        let mut fields = items(primary)?.into_iter();
        let host = String::from_utf8(bytes(fields.next()?)?).ok()?;
        let port = u16::try_from(int(&fields.next()?)?).ok()?;
        if !nodes.contains(&(host.clone(), port)) {
            nodes.push((host, port));
        }
    }
    Some(nodes)
}
