//! Helpers of the Redis store tests: the shared server's URL, per-run key prefixes cleaned up
//! afterwards, throwaway `redis-server` processes (single or a three-node cluster) on
//! loopback ports, killed on drop, and small builders of keys, deadlines and records.
#![allow(dead_code)]

use std::borrow::Cow;

use bytes::Bytes;
use sessions::store::{Deadline, Record, SessionKey, Slot};
use sessions::{Format, RedisStore, SessionId};

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The variable naming the shared Redis (or Valkey) server.
pub(crate) const URL_VAR: &str = "SESSIONS_TEST_REDIS_URL";

/// The shared server's URL, or `None` (with the skip line) when the variable is unset.
pub(crate) fn redis_url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            println!("skipped: set {URL_VAR} to run the Redis store tests");
            None
        }
    }
}

/// Whether `binary` is on `PATH`.
pub(crate) fn on_path(binary: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(binary).is_file()))
}

/// Whether `redis-server` (and `redis-cli`, when asked) are installed; prints the skip line
/// when not.
pub(crate) fn have_binaries(need_cli: bool, what: &str) -> bool {
    let missing: Vec<&str> = ["redis-server", "redis-cli"]
        .into_iter()
        .take(if need_cli { 2 } else { 1 })
        .filter(|binary| !on_path(binary))
        .collect();
    if missing.is_empty() {
        return true;
    }
    println!(
        "skipped: {what} needs {} on PATH (install redis-server or valkey's redis-compatible binaries)",
        missing.join(" and ")
    );
    false
}

fn nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// A key prefix no other test run uses.
pub(crate) fn unique_prefix(test: &str) -> String {
    format!("sessions-test:{test}:{}-{}:", std::process::id(), nanos())
}

/// Deletes every key under a prefix on drop (a test that panics cleans up too).
pub(crate) struct PrefixGuard {
    url: String,
    pub(crate) prefix: String,
}

impl PrefixGuard {
    pub(crate) fn new(url: &str, test: &str) -> Self {
        Self {
            url: url.to_owned(),
            prefix: unique_prefix(test),
        }
    }
}

impl Drop for PrefixGuard {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(self.url.as_str()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection() else {
            return;
        };
        let pattern = format!("{}*", self.prefix);
        let mut cursor = 0u64;
        loop {
            let Ok((next, keys)) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query::<(u64, Vec<String>)>(&mut conn)
            else {
                return;
            };
            if !keys.is_empty() {
                let _ = redis::cmd("DEL").arg(&keys).query::<i64>(&mut conn);
            }
            if next == 0 {
                return;
            }
            cursor = next;
        }
    }
}

/// A directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(what: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "sessions-{what}-{}-{}",
            std::process::id(),
            nanos()
        ));
        std::fs::create_dir_all(&path).expect("create a temp dir");
        Self(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

static NEXT_PORT: AtomicU16 = AtomicU16::new(0);

fn bindable(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A loopback port that is free now, with `port + 10000` (the cluster bus port) free too.
/// Ports are handed out once per test binary, from a range that depends on the process id,
/// so tests running at the same time do not pick the same one.
pub(crate) fn free_port() -> u16 {
    let base = 20_000 + (std::process::id() % 400) as u16 * 25;
    for _ in 0..10_000 {
        let offset = NEXT_PORT.fetch_add(1, Ordering::SeqCst) % 10_000;
        let port = 20_000 + (base - 20_000 + offset) % 10_000;
        if bindable(port) && bindable(port + 10_000) {
            return port;
        }
    }
    panic!("no free loopback port between 20000 and 30000");
}

/// Sends `PING` over a raw connection; whether `+PONG` came back.
fn pings(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

/// A `redis-server` of this test's own on a loopback port: no persistence, killed on drop.
pub(crate) struct RedisServer {
    port: u16,
    dir: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    name: String,
}

impl RedisServer {
    /// Starts a server on a free port with its files in `dir`.
    pub(crate) fn start(dir: &Path, name: &str, extra: &[String]) -> Self {
        Self::start_on(free_port(), dir, name, extra)
    }

    /// Starts a server on `port` with its files in `dir`, and waits until it answers.
    pub(crate) fn start_on(port: u16, dir: &Path, name: &str, extra: &[String]) -> Self {
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &dir.to_string_lossy(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().cloned());
        let mut server = Self {
            port,
            dir: dir.to_owned(),
            args,
            child: None,
            name: name.to_owned(),
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{}.log", self.name)))
            .expect("open the server log");
        let child = Command::new("redis-server")
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("clone the log handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let started = Instant::now();
        while !pings(self.port) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server on port {} did not answer within 10 s; its log:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's log so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join(format!("{}.log", self.name))).unwrap_or_default()
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: no goodbye to the clients) and waits until it is gone.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port.
    pub(crate) fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Three `redis-server` cluster nodes on loopback ports, joined with
/// `redis-cli --cluster create`, no replicas; killed (and their files removed) on drop.
pub(crate) struct RedisCluster {
    pub(crate) nodes: Vec<RedisServer>,
    // Dropped after the nodes: field order.
    _dir: TempDir,
}

impl RedisCluster {
    pub(crate) async fn start() -> Self {
        let dir = TempDir::new("redis-cluster");
        let nodes: Vec<RedisServer> = (1..=3)
            .map(|n| {
                let extra = [
                    "--cluster-enabled".to_owned(),
                    "yes".to_owned(),
                    "--cluster-config-file".to_owned(),
                    dir.path()
                        .join(format!("nodes-{n}.conf"))
                        .to_string_lossy()
                        .into_owned(),
                    "--cluster-node-timeout".to_owned(),
                    "5000".to_owned(),
                ];
                RedisServer::start(dir.path(), &format!("node-{n}"), &extra)
            })
            .collect();
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for node in &nodes {
            create.arg(format!("127.0.0.1:{}", node.port()));
        }
        let output = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let cluster = Self { nodes, _dir: dir };
        cluster.wait_until_ok().await;
        cluster
    }

    pub(crate) fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    async fn wait_until_ok(&self) {
        let started = Instant::now();
        for node in &self.nodes {
            let mut conn = plain_connection(&node.url()).await;
            loop {
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query_async(&mut conn)
                    .await
                    .expect("CLUSTER INFO");
                if info.contains("cluster_state:ok") {
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "the cluster is not ok after 30 s:\n{info}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// A plain (non-cluster) connection to one server or node.
pub(crate) async fn plain_connection(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("a redis URL")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to redis")
}

/// A fresh random session key.
pub(crate) fn fresh_key() -> SessionKey {
    SessionId::generate().expect("a random id").key()
}

/// A deadline `secs` seconds from now, in whole milliseconds (what the store keeps).
pub(crate) fn deadline_in(secs: u64) -> Deadline {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let now = UNIX_EPOCH + Duration::from_millis(ms);
    Deadline {
        created_at: now,
        expires_at: now + Duration::from_secs(secs),
    }
}

/// A slot of `fields` (name, bytes).
pub(crate) fn slot(name: &str, version: u32, format: Format, fields: &[(&str, &[u8])]) -> Slot {
    Slot::new(
        name.to_owned(),
        version,
        format,
        fields
            .iter()
            .map(|(n, v)| (Cow::Owned(n.to_string()), Bytes::copy_from_slice(v)))
            .collect(),
    )
}

/// A record of `slots`, in order.
pub(crate) fn record(slots: Vec<Slot>) -> Record {
    let mut record = Record::new();
    for slot in slots {
        record.insert(slot);
    }
    record
}

/// Every slot's name and revision, in record order.
pub(crate) fn revisions(record: &Record) -> Vec<(String, u64)> {
    record
        .slots()
        .map(|slot| (slot.name().to_owned(), slot.revision()))
        .collect()
}

/// A store on the shared server, under the guard's prefix.
pub(crate) async fn store(url: &str, guard: &PrefixGuard) -> RedisStore {
    RedisStore::connect(url)
        .await
        .expect("connect to SESSIONS_TEST_REDIS_URL")
        .prefix(&guard.prefix)
}

/// Decodes standard base64 (with padding), as the fixtures hold it.
pub(crate) fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let clean: Vec<u8> = text.bytes().filter(|c| *c != b'=').collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= value(*c) << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

/// A live entry of version 1 holding `record`, ending in `secs` seconds.
pub(crate) fn live(record: Record, secs: u64) -> sessions::store::Entry {
    sessions::store::Entry::Live {
        version: 1,
        session: sessions::store::Stored::new(record, deadline_in(secs)),
    }
}

/// `name=value` of a response's `Set-Cookie`.
pub(crate) fn set_cookie(response: &http::Response<axum::body::Body>) -> Option<String> {
    response
        .headers()
        .get(http::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}

/// The session key of a `name=value` cookie pair.
pub(crate) fn key_of_cookie(cookie: &str) -> SessionKey {
    let (_, id) = cookie.split_once('=').expect("a cookie pair");
    SessionId::parse(id).expect("a session id").key()
}

/// INFO commandstats of a server: command → (calls, usec).
pub(crate) async fn command_stats(
    conn: &mut redis::aio::MultiplexedConnection,
) -> std::collections::HashMap<String, (u64, u64)> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .expect("INFO commandstats");
    info.lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let mut calls = None;
            let mut usec = None;
            for part in rest.split(',') {
                if let Some(v) = part.strip_prefix("calls=") {
                    calls = v.parse().ok();
                }
                if let Some(v) = part.strip_prefix("usec=") {
                    usec = v.parse().ok();
                }
            }
            Some((name.to_owned(), (calls?, usec?)))
        })
        .collect()
}
