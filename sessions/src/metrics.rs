//! What the crate counts and times, through the [`metrics`](https://docs.rs/metrics) facade
//! (feature `metrics`): the app installs the exporter it wants (Prometheus, StatsD,
//! OpenTelemetry…), and every metric below is recorded into it. Without the feature nothing is
//! recorded and nothing is compiled in; with it and no recorder installed, a request records
//! nothing and times nothing (the layer looks for a recorder and finds the facade's no-op one).
//!
//! The names are part of the public contract (the constants below, and the table in the
//! README). Labels never carry a session id, an owner or anything a request sent: their values
//! come from fixed lists (`outcome`, `result`, `op`, `seen`, `how`), from the app's own code
//! (the `type` a session type is stored under, the `store`'s name) or from the failure table
//! (`reason`, `status`).
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `sessions_created_total` | counter | | sessions created (their first save) |
//! | `sessions_cycled_total` | counter | | logins: a session moved to a new id (`cycle_id()`) |
//! | `sessions_destroyed_total` | counter | | logouts (`destroy()`) |
//! | `sessions_expired_total` | counter | `seen="sweep\|load"` | sessions removed at their end by a sweep (`delete_expired`); requests that came with a session that had ended (memory, SQLite, PostgreSQL, MySQL, cookie store; Redis forgets an entry at its end) |
//! | `sessions_revoked_total` | counter | `how="owner\|others\|one"` | sessions ended by `revoke_owner`, `revoke_others`, `revoke(reference)` |
//! | `sessions_saves_total` | counter | `outcome="stored\|conflict\|ended\|moved\|unavailable"` | writes of a request's session (a create, a save, a login) and how they ended |
//! | `sessions_rejections_total` | counter | `reason`, `status` | every error response the layer makes (a 403 CSRF refusal, a 409, a 503, a type not registered…), by cause |
//! | `sessions_migrated_total` | counter | `type`, `from`, `to` | stored slots migrated to the current version (on load, or by `migrate_all`) |
//! | `sessions_cache_total` | counter | `result="hit\|miss\|invalidated\|dropped"` | the Redis local cache (`RedisStore::local_cache`) |
//! | `sessions_replica_total` | counter | `result="replica\|behind\|primary\|skipped\|failed"` | request loads of a store with read replicas (`PostgresStore::read_replicas`): answered by a replica; by the primary because the replica's copy was older than the client's last write, because the client's last write needs the primary, because no replica was usable (down, or lagging past the bound), or because the replica failed the call |
//! | `sessions_store_seconds` | histogram | `store`, `op="load\|swap\|update\|owned_by"` | the time of each store call the layer makes |
//! | `sessions_record_bytes` | histogram | `store` | the size of what a write stores (field names and values) |
//! | `sessions_live` | gauge | `store` | live sessions, where the store counts them cheaply (memory, SQLite, PostgreSQL, MySQL), set by its sweeper |
//!
//! ```
//! assert_eq!(sessions::metrics::SAVES, "sessions_saves_total");
//! ```

use std::time::Instant;

/// Counter: sessions created (the write that first stores a session).
pub const CREATED: &str = "sessions_created_total";
/// Counter: logins, sessions moved to a new id by `cycle_id()`.
pub const CYCLED: &str = "sessions_cycled_total";
/// Counter: logouts, sessions ended by `destroy()`.
pub const DESTROYED: &str = "sessions_destroyed_total";
/// Counter: sessions found ended (label `seen`: `sweep` for those a sweep removed, `load` for a
/// request that came with a session that had ended).
pub const EXPIRED: &str = "sessions_expired_total";
/// Counter: sessions ended by a revocation (label `how`: `owner`, `others`, `one`).
pub const REVOKED: &str = "sessions_revoked_total";
/// Counter: writes of a request's session, by `outcome`.
pub const SAVES: &str = "sessions_saves_total";
/// Counter: error responses the layer made, by `reason` (and `status`).
pub const REJECTIONS: &str = "sessions_rejections_total";
/// Counter: stored slots migrated, by `type`, `from` and `to` version.
pub const MIGRATED: &str = "sessions_migrated_total";
/// Counter: the Redis local cache, by `result`.
pub const CACHE: &str = "sessions_cache_total";
/// Counter: request loads of a store with read replicas, by `result`.
pub const REPLICA: &str = "sessions_replica_total";
/// Histogram: seconds per store call, by `store` and `op`.
pub const STORE_SECONDS: &str = "sessions_store_seconds";
/// Histogram: bytes a write stores, by `store`.
pub const RECORD_BYTES: &str = "sessions_record_bytes";
/// Gauge: live sessions of a store, by `store`.
pub const LIVE: &str = "sessions_live";

/// How a write of a request's session ended (`sessions_saves_total{outcome}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SaveOutcome {
    /// Stored.
    Stored,
    /// Another request changed what this one changes (optimistic concurrency): a 409.
    Conflict,
    /// The session ended while the request ran: a 409.
    Ended,
    /// The session moved to a new id (a login) and the request still carried the old one: a 409.
    Moved,
    /// The store was down or too busy: a 503.
    Unavailable,
}

/// What the Redis local cache did (`sessions_cache_total{result}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) enum CacheResult {
    /// A load answered from the cache.
    Hit,
    /// A load that went to the server.
    Miss,
    /// An entry dropped because the server said it changed.
    Invalidated,
    /// The whole cache dropped (the invalidation connection was lost).
    Dropped,
}

/// Where a request's load of a store with read replicas was answered
/// (`sessions_replica_total{result}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) enum ReplicaResult {
    /// By a replica.
    Replica,
    /// By the primary: the replica's copy was older than the client's last write.
    Behind,
    /// By the primary, without asking a replica: the client's last write needs it.
    Primary,
    /// By the primary: no replica was usable (down, or lagging past the bound).
    Skipped,
    /// By the primary: the replica failed the call.
    Failed,
}

/// The store call a duration is of (`sessions_store_seconds{op}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreOp {
    Load,
    Swap,
    Update,
    OwnedBy,
}

impl StoreOp {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            StoreOp::Load => "load",
            StoreOp::Swap => "swap",
            StoreOp::Update => "update",
            StoreOp::OwnedBy => "owned_by",
        }
    }
}

/// How sessions were revoked (`sessions_revoked_total{how}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Revocation {
    /// `revoke_owner`: every session of an owner.
    Owner,
    /// `revoke_others`: the other sessions of the request's owner.
    Others,
    /// `revoke(reference)`: one listed session.
    One,
}

/// Whether a recorder is installed (for this thread, or globally): the facade's no-op recorder,
/// used when none is, has no state (a value of zero size), every recorder that records has some.
/// Without one, the layer skips what only a recorder would use (reading the clock, sizing a
/// record, building labels).
#[inline]
pub(crate) fn recording() -> bool {
    #[cfg(feature = "metrics")]
    {
        metrics::with_recorder(|recorder| size_of_val(recorder) != 0)
    }
    #[cfg(not(feature = "metrics"))]
    {
        false
    }
}

/// The instant a timed call started, when a recorder is installed.
#[inline]
pub(crate) fn start() -> Option<Instant> {
    recording().then(Instant::now)
}

#[cfg(feature = "metrics")]
mod on {
    use metrics::{Key, Label, Level, Metadata};

    pub(super) static META: Metadata<'static> =
        Metadata::new("sessions", Level::INFO, Some(module_path!()));

    pub(super) fn counter(key: &Key, by: u64) {
        metrics::with_recorder(|recorder| recorder.register_counter(key, &META).increment(by));
    }

    pub(super) fn register_histogram(key: &Key) -> metrics::Histogram {
        metrics::with_recorder(|recorder| recorder.register_histogram(key, &META))
    }

    pub(super) fn gauge(key: &Key, value: f64) {
        metrics::with_recorder(|recorder| recorder.register_gauge(key, &META).set(value));
    }

    /// A key whose labels are known only at run time (built only when a recorder is installed).
    pub(super) fn key(name: &'static str, labels: Vec<Label>) -> Key {
        Key::from_parts(name, labels)
    }
}

/// `n` ended sessions removed by a sweep.
pub(crate) fn expired_swept(n: u64) {
    #[cfg(feature = "metrics")]
    if n > 0 {
        metrics::counter!("sessions_expired_total", "seen" => "sweep").increment(n);
    }
    let _ = n;
}

/// A request came with a session that had ended.
pub(crate) fn expired_on_load() {
    #[cfg(feature = "metrics")]
    metrics::counter!("sessions_expired_total", "seen" => "load").increment(1);
}

/// `n` sessions revoked, `how`.
pub(crate) fn revoked(how: Revocation, n: u64) {
    #[cfg(feature = "metrics")]
    if n > 0 {
        match how {
            Revocation::Owner => metrics::counter!("sessions_revoked_total", "how" => "owner"),
            Revocation::Others => metrics::counter!("sessions_revoked_total", "how" => "others"),
            Revocation::One => metrics::counter!("sessions_revoked_total", "how" => "one"),
        }
        .increment(n);
    }
    let _ = (how, n);
}

/// The layer answered with an error response of `status`, for `reason` (a row of the failure
/// table, or a CSRF refusal's reason): one call per response, wherever the layer makes one.
pub(crate) fn rejection(status: http::StatusCode, reason: &'static str) {
    #[cfg(feature = "metrics")]
    if recording() {
        use metrics::Label;
        let status = match status.as_u16() {
            400 => "400",
            403 => "403",
            409 => "409",
            500 => "500",
            503 => "503",
            _ if status.is_client_error() => "4xx",
            _ => "5xx",
        };
        let key = on::key(
            REJECTIONS,
            vec![
                Label::from_static_parts("reason", reason),
                Label::from_static_parts("status", status),
            ],
        );
        on::counter(&key, 1);
    }
    let _ = (status, reason);
}

/// A stored slot of `type_name` migrated from version `from` to `to`.
pub(crate) fn migrated(type_name: &'static str, from: u32, to: u32) {
    #[cfg(feature = "metrics")]
    if recording() {
        use metrics::Label;
        let key = on::key(
            MIGRATED,
            vec![
                Label::from_static_parts("type", type_name),
                Label::new("from", from.to_string()),
                Label::new("to", to.to_string()),
            ],
        );
        on::counter(&key, 1);
    }
    let _ = (type_name, from, to);
}

/// The Redis local cache's counters (`sessions_cache_total{result}`): their handles,
/// registered the first time the cache counts with a recorder installed.
#[derive(Default)]
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) struct CacheCounters {
    #[cfg(feature = "metrics")]
    handles: std::sync::OnceLock<[metrics::Counter; 4]>,
}

#[cfg_attr(not(feature = "redis"), allow(dead_code))]
impl CacheCounters {
    /// The cache did `result`.
    #[inline]
    pub(crate) fn count(&self, result: CacheResult) {
        #[cfg(feature = "metrics")]
        if recording() {
            let handles = self.handles.get_or_init(|| {
                [
                    metrics::counter!("sessions_cache_total", "result" => "hit"),
                    metrics::counter!("sessions_cache_total", "result" => "miss"),
                    metrics::counter!("sessions_cache_total", "result" => "invalidated"),
                    metrics::counter!("sessions_cache_total", "result" => "dropped"),
                ]
            });
            handles[result as usize].increment(1);
        }
        let _ = result;
    }
}

/// The read-replica counters of a store (`sessions_replica_total{result}`): their handles,
/// registered the first time the store counts with a recorder installed.
#[derive(Default)]
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) struct ReplicaCounters {
    #[cfg(feature = "metrics")]
    handles: std::sync::OnceLock<[metrics::Counter; 5]>,
}

#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
impl ReplicaCounters {
    /// A load was answered as `result` says.
    #[inline]
    pub(crate) fn count(&self, result: ReplicaResult) {
        #[cfg(feature = "metrics")]
        if recording() {
            let handles = self.handles.get_or_init(|| {
                [
                    metrics::counter!("sessions_replica_total", "result" => "replica"),
                    metrics::counter!("sessions_replica_total", "result" => "behind"),
                    metrics::counter!("sessions_replica_total", "result" => "primary"),
                    metrics::counter!("sessions_replica_total", "result" => "skipped"),
                    metrics::counter!("sessions_replica_total", "result" => "failed"),
                ]
            });
            handles[result as usize].increment(1);
        }
        let _ = result;
    }
}

/// `store` holds `live` live sessions now.
pub(crate) fn live(store: &'static str, live: u64) {
    #[cfg(feature = "metrics")]
    if recording() {
        let key = on::key(
            LIVE,
            vec![metrics::Label::from_static_parts("store", store)],
        );
        on::gauge(&key, live as f64);
    }
    let _ = (store, live);
}

/// One store's timings and sizes: their handles, registered with the recorder the first time
/// one is recorded (so a recorder installed before the first request is the one they record
/// into; no key is built, hashed or looked up per call).
#[derive(Default)]
pub(crate) struct StoreKeys {
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    store: &'static str,
    #[cfg(feature = "metrics")]
    handles: std::sync::OnceLock<StoreHandles>,
}

#[cfg(feature = "metrics")]
struct StoreHandles {
    ops: [metrics::Histogram; 4],
    bytes: metrics::Histogram,
}

impl StoreKeys {
    pub(crate) fn new(store: &'static str) -> Self {
        StoreKeys {
            store,
            ..StoreKeys::default()
        }
    }

    #[cfg(feature = "metrics")]
    fn handles(&self) -> &StoreHandles {
        self.handles.get_or_init(|| {
            use metrics::Label;
            let store = Label::from_static_parts("store", self.store);
            let op = |op: StoreOp| {
                let labels = vec![store.clone(), Label::from_static_parts("op", op.as_str())];
                on::register_histogram(&on::key(STORE_SECONDS, labels))
            };
            StoreHandles {
                ops: [
                    op(StoreOp::Load),
                    op(StoreOp::Swap),
                    op(StoreOp::Update),
                    op(StoreOp::OwnedBy),
                ],
                bytes: on::register_histogram(&on::key(RECORD_BYTES, vec![store.clone()])),
            }
        })
    }

    /// A call of `op` that started at `started` (see [`start`]: `None` without a recorder)
    /// is done.
    pub(crate) fn timed(&self, op: StoreOp, started: Option<Instant>) {
        #[cfg(feature = "metrics")]
        if let Some(started) = started {
            self.handles().ops[op as usize].record(started.elapsed().as_secs_f64());
        }
        let _ = (op, started);
    }

    /// A write stored `bytes` bytes (called only when a recorder is installed).
    pub(crate) fn wrote(&self, bytes: u64) {
        #[cfg(feature = "metrics")]
        self.handles().bytes.record(bytes as f64);
        let _ = bytes;
    }
}

/// A layer's per-request counters (created, cycled, destroyed, saves by outcome): their
/// handles, registered the first time a request of the layer records one.
#[derive(Default)]
pub(crate) struct LayerCounters {
    #[cfg(feature = "metrics")]
    handles: std::sync::OnceLock<LayerHandles>,
}

#[cfg(feature = "metrics")]
struct LayerHandles {
    created: metrics::Counter,
    cycled: metrics::Counter,
    destroyed: metrics::Counter,
    /// Indexed by [`SaveOutcome`].
    saves: [metrics::Counter; 5],
}

impl LayerCounters {
    /// Counts a request's session writes (by outcome, in [`SaveOutcome`]'s order) and its
    /// creations, logins and logouts; nothing without a recorder.
    pub(crate) fn count(&self, saves: [u32; 5], created: u32, cycled: u32, destroyed: u32) {
        #[cfg(feature = "metrics")]
        if recording() {
            let handles = self.handles.get_or_init(|| LayerHandles {
                created: metrics::counter!("sessions_created_total"),
                cycled: metrics::counter!("sessions_cycled_total"),
                destroyed: metrics::counter!("sessions_destroyed_total"),
                saves: [
                    metrics::counter!("sessions_saves_total", "outcome" => "stored"),
                    metrics::counter!("sessions_saves_total", "outcome" => "conflict"),
                    metrics::counter!("sessions_saves_total", "outcome" => "ended"),
                    metrics::counter!("sessions_saves_total", "outcome" => "moved"),
                    metrics::counter!("sessions_saves_total", "outcome" => "unavailable"),
                ],
            });
            for (counter, n) in handles.saves.iter().zip(saves) {
                if n > 0 {
                    counter.increment(n.into());
                }
            }
            for (counter, n) in [
                (&handles.created, created),
                (&handles.cycled, cycled),
                (&handles.destroyed, destroyed),
            ] {
                if n > 0 {
                    counter.increment(n.into());
                }
            }
        }
        let _ = (saves, created, cycled, destroyed);
    }
}

#[cfg(all(test, feature = "metrics"))]
mod tests {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use super::*;

    #[test]
    fn without_a_recorder_nothing_is_recording_and_with_one_it_is() {
        assert!(!recording());
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            assert!(recording());
            LayerCounters::default().count([0, 1, 0, 0, 0], 0, 0, 0);
            rejection(http::StatusCode::CONFLICT, "conflict");
        });
        let counts: Vec<(String, Vec<String>, DebugValue)> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let labels = key
                    .key()
                    .labels()
                    .map(|l| format!("{}={}", l.key(), l.value()));
                (key.key().name().to_owned(), labels.collect(), value)
            })
            .collect();
        assert!(counts.contains(&(
            SAVES.to_owned(),
            vec!["outcome=conflict".to_owned()],
            DebugValue::Counter(1)
        )));
        assert!(counts.contains(&(
            REJECTIONS.to_owned(),
            vec!["reason=conflict".to_owned(), "status=409".to_owned()],
            DebugValue::Counter(1)
        )));
    }
}
