//! Where a request's instructions go: W1 and W2 on `MemoryStore` under callgrind.
//!
//! Run: `cargo bench -p sessions --all-features --bench profile_memory`
//! (needs valgrind: `apt-get install valgrind`; `-- bincode` profiles the bincode codec;
//! `BENCH_REQUESTS=5000` for another count).
//!
//! The bench runs itself under `valgrind --tool=callgrind` once per workload. The child builds
//! the app of `benches/http.rs` on `MemoryStore` (JSON unless `bincode` is given), creates 1,000
//! sessions, warms up with one pass, then sends `BENCH_REQUESTS` requests (default 2,000)
//! round-robin inside `callgrind_measured_loop` (and again on a `MemoryStore::compact` store, and,
//! with feature `metrics`, with a Prometheus recorder installed); callgrind collects only inside that function
//! (`--toggle-collect`), so set-up is left out. Instruction counts are stable on a loaded
//! machine. Output files go to `target/callgrind/`; the report prints the total instructions per
//! request and the top functions of `callgrind_annotate --inclusive=yes` and of the exclusive
//! (self) view. Open a file for more:
//! `callgrind_annotate --inclusive=yes --tree=caller target/callgrind/callgrind.w1.json.out`.

#[allow(dead_code, unused_imports)] // each target uses a part of `common`
mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{
    Client, SESSIONS, W1, W2, env_usize, is_bench, runtime, sessions_memory,
    sessions_memory_compact, tower_memory,
};
use sessions::Format;

/// How many functions of each view are printed.
const TOP: usize = 15;

/// The measured part; callgrind collects inside this function only.
#[inline(never)]
fn callgrind_measured_loop(
    rt: &tokio::runtime::Runtime,
    client: &mut Client,
    path: &'static str,
    n: usize,
) {
    rt.block_on(client.run(path, n));
}

/// Installs the Prometheus recorder the README shows (buckets for the store's timings), as an
/// app with feature `metrics` does: the `recorder` runs measure what recording costs a request.
#[cfg(feature = "metrics")]
fn install_recorder() {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    let buckets = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
    ];
    let installed = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full("sessions_store_seconds".into()), &buckets)
        .and_then(|builder| builder.install_recorder());
    // Under `cargo test` both workloads run in one process: the second finds it installed.
    if let Err(err) = installed {
        eprintln!("the Prometheus recorder: {err}");
    }
}

#[cfg(not(feature = "metrics"))]
fn install_recorder() {}

fn child(app: &str, path: &'static str, format: Format, n: usize) {
    let rt = runtime();
    if app == "recorder" {
        install_recorder();
    }
    let mut client = match app {
        "tower" => rt.block_on(Client::new(tower_memory(), SESSIONS)),
        "compact" => rt.block_on(Client::new(sessions_memory_compact(format), SESSIONS)),
        _ => rt.block_on(Client::new(sessions_memory(format), SESSIONS)),
    };
    rt.block_on(client.check());
    if app == "floor" {
        client = Client::floor(&client);
    }
    rt.block_on(client.run(path, SESSIONS));
    callgrind_measured_loop(&rt, &mut client, path, n);
}

fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the bench's own path");
    // target/release/deps/profile_memory-<hash>
    exe.ancestors()
        .nth(3)
        .map_or_else(std::env::temp_dir, PathBuf::from)
}

/// The program total of a `callgrind_annotate` listing.
fn total(listing: &str) -> f64 {
    listing
        .lines()
        .find(|l| l.contains("PROGRAM TOTALS"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|t| t.replace(',', "").parse().ok())
        .unwrap_or(f64::NAN)
}

/// `crate-1.2.3/src/x.rs` instead of the registry path; no `[binary]` suffix.
fn shorten(location: &str) -> String {
    let location = location.split(" [").next().unwrap_or(location);
    let location = match location.find("index.crates.io-") {
        Some(at) => location[at..]
            .split_once('/')
            .map_or(location, |(_, rest)| rest),
        None => location,
    };
    match location.find("/library/") {
        Some(at) if location.starts_with("/rustc/") => &location[at + "/library/".len()..],
        _ => location,
    }
    .replace("/work/main/", "")
}

/// The first `TOP` functions of a `callgrind_annotate` listing, as `(instructions, function,
/// file)`. Left out: what encloses the measured loop (100%: `main`, the runtime's `block_on`…),
/// callgrind's recursion cycles (`'2`, over 100%), and the same function listed again under
/// another file (inlined code).
fn top(listing: &str) -> Vec<(f64, String, String)> {
    let total = total(listing);
    let mut rows: Vec<(f64, String, String)> = Vec::new();
    let mut in_functions = false;
    for line in listing.lines() {
        if line.contains("file:function") {
            in_functions = true;
            continue;
        }
        if !in_functions || line.trim_start().starts_with("--") || line.trim().is_empty() {
            continue;
        }
        let mut parts = line.trim().splitn(2, "  ");
        let (Some(count), Some(rest)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Some(count) = count
            .split_whitespace()
            .next()
            .and_then(|c| c.replace(',', "").parse::<f64>().ok())
        else {
            continue;
        };
        let rest = rest.trim();
        let Some((file, function)) = rest.split_once(':') else {
            continue;
        };
        let function = function.split(" [").next().unwrap_or(function).to_owned();
        if count >= 0.99 * total || function.contains("'2") {
            continue;
        }
        if rows.iter().any(|(_, f, _)| *f == function) {
            continue;
        }
        rows.push((count, function, shorten(file)));
        if rows.len() == TOP {
            break;
        }
    }
    rows
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bincode = args.iter().any(|a| a == "bincode");
    let format = if bincode {
        Format::Bincode
    } else {
        Format::Json
    };
    if let Some(at) = args.iter().position(|a| a == "child") {
        let app = args.get(at + 1).map_or("sessions", String::as_str);
        let path = if args.get(at + 2).is_some_and(|w| w == "w2") {
            W2
        } else {
            W1
        };
        let n = args
            .get(at + 3)
            .and_then(|n| n.parse().ok())
            .unwrap_or(2_000);
        child(app, path, format, n);
        return;
    }
    if !is_bench() {
        // `cargo test`: the loops once, without valgrind.
        for app in ["floor", "sessions", "tower", "recorder"] {
            child(app, W1, format, 10);
            child(app, W2, format, 10);
        }
        return;
    }
    let n = env_usize("BENCH_REQUESTS", 2_000);
    let codec = if bincode { "bincode" } else { "json" };
    let dir = target_dir().join("callgrind");
    std::fs::create_dir_all(&dir).expect("target/callgrind");
    let exe = std::env::current_exe().expect("the bench's own path");
    // (app, workload, print the top functions)
    let runs = [
        ("floor", "w1", false),
        ("sessions", "w1", true),
        ("sessions", "w2", true),
        ("compact", "w1", false),
        ("compact", "w2", false),
        // With feature `metrics` and a Prometheus recorder installed (issue 23).
        #[cfg(feature = "metrics")]
        ("recorder", "w1", false),
        #[cfg(feature = "metrics")]
        ("recorder", "w2", false),
        ("tower", "w1", false),
        ("tower", "w2", false),
    ];
    let mut per_request = Vec::new();
    for (app, workload, tops) in runs {
        let out = dir.join(format!("callgrind.{app}.{workload}.{codec}.out"));
        let status = Command::new("valgrind")
            .arg("--tool=callgrind")
            .arg(format!("--callgrind-out-file={}", out.display()))
            .arg("--toggle-collect=*callgrind_measured_loop*")
            .arg(&exe)
            .args(["child", app, workload, &n.to_string()])
            .args(bincode.then_some("bincode"))
            .output();
        let output = match status {
            Ok(output) => output,
            Err(err) => {
                println!("skipped: valgrind did not start ({err}); apt-get install valgrind");
                return;
            }
        };
        assert!(
            output.status.success(),
            "valgrind failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let label = match app {
            "floor" => "W0 (no session layer)".to_owned(),
            "tower" => format!("tower-sessions 0.15 {}", workload.to_uppercase()),
            "compact" => format!(
                "sessions {codec} MemoryStore::compact {}",
                workload.to_uppercase()
            ),
            "recorder" => format!(
                "sessions {codec} {} with a Prometheus recorder",
                workload.to_uppercase()
            ),
            _ => format!("sessions {codec} {}", workload.to_uppercase()),
        };
        for (view, inclusive) in [("inclusive", "yes"), ("exclusive (self)", "no")] {
            let annotate = Command::new("callgrind_annotate")
                .arg(format!("--inclusive={inclusive}"))
                .arg(&out)
                .output()
                .expect("callgrind_annotate");
            let listing = String::from_utf8_lossy(&annotate.stdout);
            let all = total(&listing);
            if inclusive == "yes" {
                per_request.push((label.clone(), all / n as f64));
                if tops {
                    println!();
                    println!(
                        "## {label} on MemoryStore: {n} requests ({})",
                        out.display()
                    );
                    println!(
                        "{all:.0} instructions in the loop: {:.0} per request",
                        all / n as f64
                    );
                }
            }
            if !tops {
                break;
            }
            println!();
            println!("top {TOP}, {view}; instructions per request, share of the loop:");
            println!("```");
            for (count, function, file) in top(&listing) {
                println!(
                    "{:>7.0} {:>5.1}%  {function}  ({file})",
                    count / n as f64,
                    100.0 * count / all
                );
            }
            println!("```");
        }
    }
    println!();
    println!("instructions per request (callgrind, {n} requests each):");
    for (label, count) in &per_request {
        println!("- {label}: {count:.0}");
    }
    let get = |label: &str| {
        per_request
            .iter()
            .find(|(l, _)| l == label)
            .map_or(f64::NAN, |(_, c)| *c)
    };
    let floor = get("W0 (no session layer)");
    #[cfg(feature = "metrics")]
    for w in ["W1", "W2"] {
        let without = get(&format!("sessions {codec} {w}"));
        let with = get(&format!("sessions {codec} {w} with a Prometheus recorder"));
        println!(
            "- {w} with a Prometheus recorder / without one: {:.3} (target ≤ 1.05)",
            with / without
        );
    }
    for (w, target) in [("W1", "0.15"), ("W2", "0.12")] {
        let ours = get(&format!("sessions {codec} {w}"));
        let theirs = get(&format!("tower-sessions 0.15 {w}"));
        println!(
            "- ({w}−W0) sessions {codec} / ({w}−W0) tower-sessions, in instructions: {:.3} (target ≤ {target})",
            (ours - floor) / (theirs - floor)
        );
    }
}
