//! One Redis Cluster per test binary, for the `redis_cluster` arm of the store tests: three
//! `redis-server --cluster-enabled yes` nodes on loopback ports (`RedisCluster::start`),
//! started by the first test that asks and shared by every later one, each test under a key
//! prefix of its own.
//!
//! Starting a cluster takes a few seconds (the nodes, `redis-cli --cluster create`, waiting for
//! `cluster_state:ok`); once per test binary instead of once per test keeps the arm's cost to
//! the tests themselves. A static is never dropped, so the nodes are stopped by a watchdog, a
//! small `sh` process that waits for this test binary to exit (however it exits: a panic, a
//! kill) and then shuts the nodes down and removes their directory.

use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use super::redis_common::{RedisCluster, have_binaries};

/// The running cluster and its watchdog, kept for the life of the test binary.
struct Shared {
    cluster: RedisCluster,
    _watchdog: Child,
}

static SHARED: OnceLock<Shared> = OnceLock::new();

/// The URLs of the binary's cluster, started on the first call; `None` (with the skip line)
/// when `redis-server` or `redis-cli` is not installed.
pub(crate) fn urls() -> Option<Vec<String>> {
    if !have_binaries(true, "the Redis Cluster arm of the behaviour suite") {
        return None;
    }
    // A test that waits here blocks its own (current-thread) runtime until the cluster is up:
    // nothing else of that test can run before it anyway.
    let shared = SHARED.get_or_init(|| {
        std::thread::spawn(start)
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    });
    Some(shared.cluster.urls())
}

/// Starts the cluster on a runtime of its own thread (the tests' runtimes come and go), and
/// its watchdog.
fn start() -> Shared {
    let started = std::time::Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime to start the cluster on");
    let cluster = runtime.block_on(RedisCluster::start());
    let dir = node_dir(&cluster.urls()[0]);
    let ports: Vec<String> = cluster.nodes.iter().map(|n| n.port().to_string()).collect();
    let watchdog = Command::new("sh")
        .arg("-c")
        .arg(
            r#"while kill -0 "$1" 2>/dev/null; do sleep 1; done
dir="$2"; shift 2
for port in "$@"; do redis-cli -p "$port" shutdown nosave >/dev/null 2>&1; done
case "$dir" in */sessions-redis-cluster-*) rm -rf -- "$dir" ;; esac"#,
        )
        .arg("watchdog")
        .arg(std::process::id().to_string())
        .arg(&dir)
        .args(&ports)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the cluster's watchdog (sh)");
    println!(
        "the behaviour suite's Redis Cluster (ports {}) is up in {:?}",
        ports.join(", "),
        started.elapsed()
    );
    Shared {
        cluster,
        _watchdog: watchdog,
    }
}

/// The directory a node keeps its files in (`CONFIG GET dir`): the cluster's temp dir.
fn node_dir(url: &str) -> String {
    let mut conn = redis::Client::open(url)
        .and_then(|client| client.get_connection())
        .expect("connect to a cluster node");
    let reply: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("dir")
        .query(&mut conn)
        .expect("CONFIG GET dir");
    reply.get(1).cloned().expect("CONFIG GET dir names the dir")
}
