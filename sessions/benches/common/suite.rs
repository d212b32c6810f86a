//! The interleaved runner and report shared by `http.rs` and `actix.rs`, and statistics.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use super::{Client, W1, W2};

/// Samples of one quantity (nanoseconds per request, requests per second…).
#[derive(Default, Clone, Debug)]
pub(crate) struct Samples(pub(crate) Vec<f64>);

impl Samples {
    pub(crate) fn push(&mut self, x: f64) {
        self.0.push(x);
    }

    fn sorted(&self) -> Vec<f64> {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    pub(crate) fn median(&self) -> f64 {
        let v = self.sorted();
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    pub(crate) fn min(&self) -> f64 {
        self.0.iter().copied().fold(f64::INFINITY, f64::min)
    }

    pub(crate) fn max(&self) -> f64 {
        self.0.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    }

    /// The spread of the middle half, relative to the median (interquartile range / median).
    pub(crate) fn iqr_rel(&self) -> f64 {
        let v = self.sorted();
        if v.len() < 4 {
            return f64::NAN;
        }
        let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
        (q(0.75) - q(0.25)) / self.median()
    }

    /// `median (min–max)` with `digits` decimals.
    pub(crate) fn show(&self, digits: usize) -> String {
        format!(
            "{:.d$} ({:.d$}–{:.d$})",
            self.median(),
            self.min(),
            self.max(),
            d = digits
        )
    }
}

/// The time `n` requests took, per request, in nanoseconds: wall-clock and CPU time (of this
/// thread, or of the whole process when the work runs on other threads too, as sqlx's SQLite
/// workers do). On a loaded machine CPU time is the steadier measure of cost.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timing {
    pub(crate) wall_ns: f64,
    pub(crate) cpu_ns: f64,
}

/// Which CPU time [`time_requests`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cpu {
    Thread,
    Process,
}

/// Times `f`, which runs `n` requests.
pub(crate) fn time_requests(n: usize, cpu: Cpu, f: impl FnOnce()) -> Timing {
    let wall = Instant::now();
    let (thread, process) = (cpu_time::ThreadTime::now(), cpu_time::ProcessTime::now());
    f();
    let cpu_spent = match cpu {
        Cpu::Thread => thread.elapsed(),
        Cpu::Process => process.elapsed(),
    };
    let wall_spent = wall.elapsed();
    Timing {
        wall_ns: wall_spent.as_nanos() as f64 / n as f64,
        cpu_ns: cpu_spent.as_nanos() as f64 / n as f64,
    }
}

/// How many passes of `SESSIONS` requests make a sample of about `target`, given one pass took
/// `one_pass`.
pub(crate) fn passes_for(target: Duration, one_pass: Duration) -> usize {
    let one = one_pass.as_secs_f64().max(1e-6);
    ((target.as_secs_f64() / one).ceil() as usize).max(1)
}

// ---- the interleaved runner -------------------------------------------------------------------

/// A client of one app, whatever framework serves it: sends `n` requests to `path`, round-robin
/// over its sessions (the axum apps' [`Client`], the actix apps' `ActixClient`).
pub(crate) trait Requests {
    /// `n` requests to `path`; the future runs on one thread (actix-web's are not `Send`).
    fn run<'a>(
        &'a mut self,
        path: &'static str,
        n: usize,
    ) -> Pin<Box<dyn Future<Output = ()> + 'a>>;

    /// `name=value` of each session's cookie (to send the same cookies to a floor app).
    fn cookies(&self) -> Vec<Vec<u8>>;
}

impl Requests for Client {
    fn run<'a>(
        &'a mut self,
        path: &'static str,
        n: usize,
    ) -> Pin<Box<dyn Future<Output = ()> + 'a>> {
        Box::pin(Client::run(self, path, n))
    }

    fn cookies(&self) -> Vec<Vec<u8>> {
        self.cookies.iter().map(|c| c.as_bytes().to_vec()).collect()
    }
}

/// One library configuration inside a pair.
pub(crate) struct Variant {
    pub(crate) pair: &'static str,
    pub(crate) name: &'static str,
    /// `sessions` (true) or the incumbent (false).
    pub(crate) ours: bool,
    pub(crate) client: Box<dyn Requests>,
}

/// One thing measured each round.
struct Measure {
    /// `None`: the floor (W0).
    variant: Option<usize>,
    path: &'static str,
    passes: usize,
    cpu: Samples,
    wall: Samples,
}

/// How a suite runs.
pub(crate) struct Settings {
    pub(crate) rounds: usize,
    pub(crate) sample: Duration,
    pub(crate) sessions: usize,
    pub(crate) cpu: Cpu,
    /// The targets printed beside the W1 and W2 overhead ratios, if any.
    pub(crate) targets: Option<[&'static str; 2]>,
}

/// What a suite measured.
pub(crate) struct Results {
    variants: Vec<Variant>,
    measures: Vec<Measure>,
    settings: Settings,
    elapsed: Duration,
}

/// Measures W0 (`floor`) and W1, W2 of every variant, `rounds` times, each round in a rotated
/// order, each sample about `sample` long.
pub(crate) fn run(
    rt: &tokio::runtime::Runtime,
    mut variants: Vec<Variant>,
    mut floor: Box<dyn Requests>,
    settings: Settings,
) -> Results {
    // Inside a `LocalSet`: the actix apps' futures must stay on this thread.
    let local = tokio::task::LocalSet::new();
    let started = Instant::now();
    let new = |variant, path| Measure {
        variant,
        path,
        passes: 1,
        cpu: Samples::default(),
        wall: Samples::default(),
    };
    let mut measures = vec![new(None, W1)];
    for i in 0..variants.len() {
        measures.push(new(Some(i), W1));
        measures.push(new(Some(i), W2));
    }
    let n = settings.sessions;
    // Warm up and size the samples: two passes each.
    for m in &mut measures {
        let client = match m.variant {
            Some(i) => &mut variants[i].client,
            None => &mut floor,
        };
        let mut one = Duration::ZERO;
        for _ in 0..2 {
            let start = Instant::now();
            local.block_on(rt, client.run(m.path, n));
            one = start.elapsed();
        }
        m.passes = passes_for(settings.sample, one);
    }
    for round in 0..settings.rounds {
        let count = measures.len();
        for k in 0..count {
            let m = &mut measures[(round + k) % count];
            let client = match m.variant {
                Some(i) => &mut variants[i].client,
                None => &mut floor,
            };
            let requests = m.passes * n;
            let t = time_requests(requests, settings.cpu, || {
                local.block_on(rt, client.run(m.path, requests));
            });
            m.cpu.push(t.cpu_ns);
            m.wall.push(t.wall_ns);
        }
    }
    Results {
        variants,
        measures,
        settings,
        elapsed: started.elapsed(),
    }
}

/// Per-round `(a − floor) / (b − floor)`.
fn round_ratios(a: &Samples, b: &Samples, floor: &Samples) -> Samples {
    Samples(
        a.0.iter()
            .zip(&b.0)
            .zip(&floor.0)
            .map(|((a, b), f)| (a - f) / (b - f))
            .collect(),
    )
}

fn micros(s: &Samples) -> Samples {
    Samples(s.0.iter().map(|x| x / 1000.0).collect())
}

impl Results {
    fn find(&self, variant: Option<usize>, path: &str) -> &Measure {
        self.measures
            .iter()
            .find(|m| m.variant == variant && (variant.is_none() || m.path == path))
            .expect("every variant is measured")
    }

    /// Prints the tables (CPU time, then wall-clock time) and the targets' ratios.
    pub(crate) fn report(&self) {
        let s = &self.settings;
        println!();
        println!(
            "{} rounds, samples of ~{} ms, {} sessions round-robin, {:.0} s in all",
            s.rounds,
            s.sample.as_millis(),
            s.sessions,
            self.elapsed.as_secs_f64()
        );
        let cpu_label = match s.cpu {
            Cpu::Thread => "CPU time of the runtime's thread",
            Cpu::Process => "CPU time of the whole process",
        };
        let time_of_cpu = |m: &Measure| -> Samples { m.cpu.clone() };
        let time_of_wall = |m: &Measure| -> Samples { m.wall.clone() };
        self.table(cpu_label, &time_of_cpu);
        self.table("wall-clock time", &time_of_wall);
    }

    fn table(&self, label: &str, time: &dyn Fn(&Measure) -> Samples) {
        let floor = time(self.find(None, W1));
        println!();
        println!("# per request, {label}: µs, median (min–max) over rounds");
        println!("# noise = interquartile range / median");
        println!();
        println!(
            "W0 (no session layer): {} µs, noise {:.1}%",
            micros(&floor).show(2),
            floor.iqr_rel() * 100.0
        );
        let mut pairs: Vec<&str> = self.variants.iter().map(|v| v.pair).collect();
        pairs.dedup();
        for pair in pairs {
            let in_pair: Vec<usize> = (0..self.variants.len())
                .filter(|&i| self.variants[i].pair == pair)
                .collect();
            println!();
            println!("## {pair} ({label})");
            println!();
            println!("| variant | W1 µs | W1−W0 | noise | W2 µs | W2−W0 | noise |");
            println!("|---|---|---|---|---|---|---|");
            for &i in &in_pair {
                let w1 = time(self.find(Some(i), W1));
                let w2 = time(self.find(Some(i), W2));
                println!(
                    "| {} | {} | {:.2} | {:.1}% | {} | {:.2} | {:.1}% |",
                    self.variants[i].name,
                    micros(&w1).show(2),
                    (w1.median() - floor.median()) / 1000.0,
                    w1.iqr_rel() * 100.0,
                    micros(&w2).show(2),
                    (w2.median() - floor.median()) / 1000.0,
                    w2.iqr_rel() * 100.0,
                );
            }
            let Some(&theirs) = in_pair.iter().find(|&&i| !self.variants[i].ours) else {
                continue;
            };
            println!();
            for &i in in_pair.iter().filter(|&&i| self.variants[i].ours) {
                for (k, (path, w)) in [(W1, "W1"), (W2, "W2")].into_iter().enumerate() {
                    let target = self.settings.targets.map_or(String::new(), |targets| {
                        format!("; target ≤ {}", targets[k])
                    });
                    let ours = time(self.find(Some(i), path));
                    let other = time(self.find(Some(theirs), path));
                    let of_medians =
                        (ours.median() - floor.median()) / (other.median() - floor.median());
                    println!(
                        "- ({w}−W0) {} / ({w}−W0) {}: {of_medians:.3} (per round: {}){target}",
                        self.variants[i].name,
                        self.variants[theirs].name,
                        round_ratios(&ours, &other, &floor).show(3),
                    );
                }
            }
        }
    }
}
