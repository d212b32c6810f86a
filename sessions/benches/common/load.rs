//! The store pairs' runner: the same app on each library's store, measured interleaved in one
//! run — requests per second with many concurrent tasks on a multi-thread runtime, and the
//! time of a single request — and a report of medians, min–max and the ratio against the
//! incumbent, round by round.
//!
//! Settings (environment): `BENCH_ROUNDS` (default 5), `BENCH_SAMPLE_MS` (2000),
//! `BENCH_TASKS` (64), `BENCH_WORKERS` (2), `BENCH_SINGLE` (requests per single-request sample,
//! 300). Under `cargo test` (no `--bench`) everything is tiny: a smoke run.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use http::HeaderValue;

use super::suite::Samples;
use super::{Client, W1, W2, env_usize, is_bench, send};

/// How a store pair is measured.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LoadSettings {
    pub(crate) rounds: usize,
    pub(crate) sample: Duration,
    pub(crate) tasks: usize,
    pub(crate) workers: usize,
    pub(crate) single: usize,
    pub(crate) sessions: usize,
}

impl LoadSettings {
    /// From the environment (see the module docs).
    pub(crate) fn from_env() -> Self {
        let bench = is_bench();
        Self {
            rounds: if bench {
                env_usize("BENCH_ROUNDS", 5)
            } else {
                1
            },
            sample: Duration::from_millis(if bench {
                env_usize("BENCH_SAMPLE_MS", 2000) as u64
            } else {
                30
            }),
            tasks: if bench {
                env_usize("BENCH_TASKS", 64)
            } else {
                4
            },
            workers: env_usize("BENCH_WORKERS", 2),
            single: if bench {
                env_usize("BENCH_SINGLE", 300)
            } else {
                5
            },
            sessions: if bench { super::SESSIONS } else { 20 },
        }
    }

    /// The runtime the pairs run on.
    pub(crate) fn runtime(&self) -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(self.workers.max(1))
            .enable_all()
            .build()
            .expect("a tokio runtime")
    }
}

/// One library's app in a pair, and what was measured of it.
pub(crate) struct Contender {
    pub(crate) name: String,
    /// The incumbent that ratios are taken against.
    pub(crate) incumbent: bool,
    pub(crate) client: Client,
    /// Requests per second with `tasks` concurrent tasks, per round: W1, W2.
    pub(crate) rps: [Samples; 2],
    /// Microseconds of one request alone (median of a sample), per round: W1, W2.
    pub(crate) single_us: [Samples; 2],
}

impl Contender {
    /// A contender over `app`: `sessions` sessions are created through it first.
    pub(crate) async fn new(
        name: impl Into<String>,
        incumbent: bool,
        app: Router,
        sessions: usize,
    ) -> Self {
        let mut client = Client::new(app, sessions).await;
        client.check().await;
        Self {
            name: name.into(),
            incumbent,
            client,
            rps: Default::default(),
            single_us: Default::default(),
        }
    }
}

/// `tasks` tasks send requests to `path`, round-robin over `cookies`, for `duration`; returns
/// requests per second.
async fn throughput(
    app: &Router,
    cookies: &Arc<Vec<HeaderValue>>,
    path: &'static str,
    tasks: usize,
    duration: Duration,
) -> f64 {
    let start = Instant::now();
    let requests = drive(app, cookies, path, tasks, duration).await;
    requests as f64 / start.elapsed().as_secs_f64()
}

/// `tasks` tasks send requests to `path`, round-robin over `cookies`, for `duration`; returns
/// how many were answered (at least 1).
pub(crate) async fn drive(
    app: &Router,
    cookies: &Arc<Vec<HeaderValue>>,
    path: &'static str,
    tasks: usize,
    duration: Duration,
) -> usize {
    let next = Arc::new(AtomicUsize::new(0));
    let stop = Instant::now() + duration;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..tasks {
        let (app, cookies, next) = (app.clone(), cookies.clone(), next.clone());
        set.spawn(async move {
            let mut done = 0usize;
            while Instant::now() < stop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                std::hint::black_box(send(&app, path, Some(&cookies[i % cookies.len()])).await);
                done += 1;
            }
            done
        });
    }
    let mut requests = 0;
    while let Some(done) = set.join_next().await {
        requests += done.expect("a load task failed");
    }
    requests.max(1)
}

/// The median time of one request alone, in µs, over `n` requests.
async fn single(client: &mut Client, path: &'static str, n: usize) -> f64 {
    let mut times = Samples::default();
    for _ in 0..n {
        let start = Instant::now();
        std::hint::black_box(client.request(path).await);
        times.push(start.elapsed().as_secs_f64() * 1e6);
    }
    times.median()
}

/// Runs every round: each contender's W1 and W2, throughput then single requests, in an order
/// rotated from round to round so that no one is always first.
pub(crate) async fn measure(contenders: &mut [Contender], settings: &LoadSettings) {
    let n = contenders.len();
    for round in 0..settings.rounds {
        for k in 0..n {
            let contender = &mut contenders[(k + round) % n];
            let cookies = Arc::new(contender.client.cookies.clone());
            for (w, path) in [W1, W2].into_iter().enumerate() {
                let rps = throughput(
                    &contender.client.app,
                    &cookies,
                    path,
                    settings.tasks,
                    settings.sample,
                )
                .await;
                contender.rps[w].push(rps);
                let us = single(&mut contender.client, path, settings.single).await;
                contender.single_us[w].push(us);
            }
        }
    }
}

/// Prints the pair's tables: throughput and single-request time, with each contender's
/// ratio to the incumbent computed round by round (median and min–max of those ratios).
pub(crate) fn report(title: &str, contenders: &[Contender], settings: &LoadSettings) {
    println!(
        "\n{title}: {} rounds; throughput: {} tasks on {} workers, {} ms samples; single: median of {} requests; {} sessions",
        settings.rounds,
        settings.tasks,
        settings.workers,
        settings.sample.as_millis(),
        settings.single,
        settings.sessions
    );
    let incumbent = contenders.iter().find(|c| c.incumbent);
    println!("| | W1 req/s | W2 req/s | W1 single µs | W2 single µs |");
    println!("|---|---|---|---|---|");
    for contender in contenders {
        println!(
            "| {} | {} | {} | {} | {} |",
            contender.name,
            contender.rps[0].show(0),
            contender.rps[1].show(0),
            contender.single_us[0].show(1),
            contender.single_us[1].show(1)
        );
    }
    let Some(incumbent) = incumbent else { return };
    println!(
        "\nratios against {} (round by round: median (min–max); throughput: higher is better, time: lower is better)",
        incumbent.name
    );
    println!("| | W1 throughput | W2 throughput | W1 time | W2 time |");
    println!("|---|---|---|---|---|");
    for contender in contenders.iter().filter(|c| !c.incumbent) {
        let ratio = |ours: &Samples, theirs: &Samples| {
            let mut r = Samples::default();
            for (a, b) in ours.0.iter().zip(&theirs.0) {
                r.push(a / b);
            }
            r.show(2)
        };
        println!(
            "| {} | {}× | {}× | {}× | {}× |",
            contender.name,
            ratio(&contender.rps[0], &incumbent.rps[0]),
            ratio(&contender.rps[1], &incumbent.rps[1]),
            ratio(&contender.single_us[0], &incumbent.single_us[0]),
            ratio(&contender.single_us[1], &incumbent.single_us[1])
        );
    }
}
