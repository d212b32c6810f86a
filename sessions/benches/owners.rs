//! What owners cost (issue 15): W1 and W2 of a session bound to an owner against the same
//! session without one, on every store, interleaved; and listing an owner's sessions
//! (`SessionLayer::sessions_of`) with 10 and with 1,000 sessions, before and after 5,000 other
//! owners' sessions are added (an indexed lookup stays flat; a scan would grow).
//!
//! Run: `cargo bench -p sessions --all-features --bench owners` (stores: `-- memory`, `sqlite`,
//! `postgres`, `redis`; PostgreSQL and Redis at `SESSIONS_BENCH_POSTGRES_URL` /
//! `SESSIONS_BENCH_REDIS_URL`, else `SESSIONS_TEST_..._URL`, else the local servers; a store
//! whose server is not there is skipped).
//!
//! The session: a 5-item cart and an `Auth` slot whose `user_id` is the owner (`Bound`) or a
//! plain field (`Unbound`). W1 reads the cart, bumps two fields and saves; W2 reads it. Times
//! are per request, CPU time of the whole process (SQLite runs on sqlx's worker threads) and
//! wall-clock time, median (min–max) over interleaved rounds.

#[allow(dead_code, unused_imports)] // each target uses a part of `common`
mod common;

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use common::{
    CREATE, Client, Cpu, Item, Samples, Settings, TempDir, Variant, W1, W2, env_usize, filters,
    is_bench, items, now_unix, postgres_url, run, runtime, send,
};
use sessions::prelude::*;
use sessions::{BackendBox, IntoBackend};

#[derive(Session, Default)]
#[session(name = "basket")]
struct Basket {
    items: Vec<Item>,
    visits: u64,
    last_seen_unix: i64,
}

/// The signed-in user, bound as the session's owner.
#[derive(Session, Default)]
#[session(name = "auth")]
struct Bound {
    #[session(owner)]
    user_id: Option<u64>,
}

/// The same field, not an owner.
#[derive(Session, Default)]
#[session(name = "auth")]
struct Unbound {
    user_id: Option<u64>,
}

/// The user every pre-created session signs in as; `/other` signs in as another one each time.
const USER: u64 = 42;
const OTHER: &str = "/other";

fn next_other() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1_000_000);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

macro_rules! handlers {
    ($module:ident, $auth:ty) => {
        mod $module {
            use super::*;

            async fn create(mut basket: Typed<Basket>, mut auth: Typed<$auth>) -> String {
                basket.set_items(items());
                basket.set_visits(1);
                auth.set_user_id(Some(USER));
                basket.visits().to_string()
            }

            async fn other(mut basket: Typed<Basket>, mut auth: Typed<$auth>) -> String {
                basket.set_visits(1);
                auth.set_user_id(Some(next_other()));
                basket.visits().to_string()
            }

            async fn w1(mut basket: Typed<Basket>) -> String {
                *basket.visits_mut() += 1;
                basket.set_last_seen_unix(now_unix());
                basket.visits().to_string()
            }

            async fn w2(basket: Typed<Basket>) -> String {
                basket.visits().to_string()
            }

            pub(super) fn app(layer: SessionLayer) -> Router {
                Router::new()
                    .route(CREATE, get(create))
                    .route(OTHER, get(other))
                    .route(W1, get(w1))
                    .route(W2, get(w2))
                    .layer(layer.register::<Basket>().register::<$auth>())
            }
        }
    };
}

handlers!(bound, Bound);
handlers!(unbound, Unbound);

/// A fresh store of one kind, as a backend for a layer (`None`: its server is not there).
async fn store(kind: &str, dir: &TempDir, label: &str) -> Option<BackendBox> {
    match kind {
        "memory" => Some(MemoryStore::new().into_backend()),
        "sqlite" => {
            let store = SqliteStore::open(dir.0.join(format!("{label}.db")))
                .await
                .expect("open the SQLite file");
            store.migrate().await.expect("create the tables");
            Some(store.into_backend())
        }
        "postgres" => {
            let store = match PostgresStore::connect(&postgres_url()).await {
                Ok(store) => store,
                Err(err) => {
                    println!("skipped: postgres ({err})");
                    return None;
                }
            };
            let table = format!("bench_owners_{label}_{}", std::process::id());
            let store = store.table_name(&table);
            store.migrate().await.expect("create the table");
            Some(store.into_backend())
        }
        "redis" => {
            let url = ["SESSIONS_BENCH_REDIS_URL", "SESSIONS_TEST_REDIS_URL"]
                .iter()
                .find_map(|name| std::env::var(name).ok().filter(|url| !url.is_empty()))
                .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
            match RedisStore::connect(url.as_str()).await {
                Ok(store) => {
                    let prefix = format!("bench-owners-{label}-{}:", std::process::id());
                    Some(store.prefix(prefix).into_backend())
                }
                Err(err) => {
                    println!("skipped: redis ({err})");
                    None
                }
            }
        }
        _ => unreachable!("a store kind"),
    }
}

/// The median time of `sessions_of(USER)`, in µs, over `n` calls, and how many it listed.
async fn list_time(layer: &SessionLayer, n: usize) -> (Samples, usize) {
    let mut times = Samples::default();
    let mut listed = 0;
    for _ in 0..n {
        let start = Instant::now();
        listed = layer
            .sessions_of(&USER.to_string())
            .await
            .expect("sessions_of")
            .len();
        times.push(start.elapsed().as_secs_f64() * 1e6);
    }
    (times, listed)
}

/// Creates `n` sessions of other owners through `app`.
async fn others(app: &Router, n: usize) {
    for _ in 0..n {
        send(app, OTHER, None).await;
    }
}

fn main() {
    let bench = is_bench();
    let sessions = if bench { 1_000 } else { 20 };
    let settings = Settings {
        rounds: if bench {
            env_usize("BENCH_ROUNDS", 12)
        } else {
            1
        },
        sample: Duration::from_millis(if bench {
            env_usize("BENCH_SAMPLE_MS", 300) as u64
        } else {
            1
        }),
        sessions,
        cpu: Cpu::Process,
        targets: None,
    };
    let filters = filters();
    let wanted = |kind: &str| filters.is_empty() || filters.iter().any(|f| kind.contains(f));
    let rt = runtime();
    let dir = TempDir::new("owners");
    let mut variants = Vec::new();
    let mut floor = None;
    let mut listing = Vec::new();
    for kind in ["memory", "sqlite", "postgres", "redis"] {
        if !wanted(kind) {
            continue;
        }
        let (Some(with), Some(without)) = (
            rt.block_on(store(kind, &dir, "bound")),
            rt.block_on(store(kind, &dir, "unbound")),
        ) else {
            continue;
        };
        let layer = SessionLayer::new(with);
        let app = bound::app(layer.clone());
        let client = rt.block_on(Client::new(app.clone(), sessions));
        let unbound_app = unbound::app(SessionLayer::new(without));
        let unbound = rt.block_on(Client::new(unbound_app.clone(), sessions));
        // Listing: 10 sessions of the owner (a second layer on the same kind of store), then
        // its 1,000, then the 1,000 among 5,000 other owners' sessions.
        let calls = if bench { 30 } else { 2 };
        let (small, small_n) = rt.block_on(async {
            let Some(backend) = store(kind, &dir, "ten").await else {
                return (Samples::default(), 0);
            };
            let ten = SessionLayer::new(backend);
            let ten_app = bound::app(ten.clone());
            for _ in 0..10 {
                send(&ten_app, CREATE, None).await;
            }
            list_time(&ten, calls).await
        });
        let (alone, alone_n) = rt.block_on(list_time(&layer, calls));
        // The same number of other sessions in both stores, so that W1/W2 compare like with like.
        let others_n = if bench { 5_000 } else { 20 };
        rt.block_on(others(&app, others_n));
        rt.block_on(others(&unbound_app, others_n));
        let (among, among_n) = rt.block_on(list_time(&layer, calls));
        listing.push((kind, [(small, small_n), (alone, alone_n), (among, among_n)]));
        floor.get_or_insert_with(|| Client::floor(&client));
        variants.push(Variant {
            pair: kind,
            name: "owner bound",
            ours: true,
            client: Box::new(client),
        });
        variants.push(Variant {
            pair: kind,
            name: "no owner",
            ours: false,
            client: Box::new(unbound),
        });
    }
    let Some(floor) = floor else {
        eprintln!("no store matches {filters:?}: memory, sqlite, postgres, redis");
        return;
    };
    println!("\n# sessions_of(owner): µs per call, median (min–max)\n");
    println!("| store | 10 sessions | 1,000 sessions | 1,000 among 5,000 others |");
    println!("|---|---|---|---|");
    for (kind, rows) in &listing {
        let cell = |(s, n): &(Samples, usize)| format!("{} ({n} listed)", s.show(0));
        println!(
            "| {kind} | {} | {} | {} |",
            cell(&rows[0]),
            cell(&rows[1]),
            cell(&rows[2])
        );
    }
    println!("\n# W1/W2 with the owner bound against without (the ratio: bound / no owner)");
    run(&rt, variants, Box::new(floor), settings).report();
}
