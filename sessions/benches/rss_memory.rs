//! Resident memory of 100,000 live 5-item carts: `MemoryStore` against tower-sessions' `MemoryStore`.
//!
//! Run: `cargo bench -p sessions --all-features --bench rss_memory`
//! (needs `/usr/bin/time`: `apt-get install time`; `BENCH_SESSIONS=200000` for another count).
//!
//! The bench runs itself once per variant as a child process under `/usr/bin/time -v` and reads
//! its "Maximum resident set size"; the child also prints its final `VmRSS`. Each child builds
//! the app (same handlers as `benches/http.rs`), then for every session sends `/create` (a new
//! session holding the full cart) and one W1 with the cookie it got, so each cart is left as a W1
//! leaves it; the client keeps no cookies. `baseline` is the same child creating no session.
//! Variants run twice, interleaved; the report gives both runs.

#[allow(dead_code, unused_imports)] // each target uses a part of `common`
mod common;

use std::process::Command;

use common::{
    CREATE, W1, W2, app_sessions, env_usize, is_bench, runtime, send, sessions_layer, tower015,
};
use sessions::{Format, MemoryStore};

const VARIANTS: [&str; 6] = [
    "baseline",
    "sessions-json",
    "sessions-bincode",
    "sessions-json-compact",
    "sessions-bincode-compact",
    "tower-sessions-0.15",
];

/// `VmRSS` and `VmHWM` of this process, in kB.
fn vm(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The child: fills one store with `n` carts, prints what it holds.
fn child(variant: &str, n: usize) {
    let rt = runtime();
    let sessions_store = if variant.ends_with("-compact") {
        MemoryStore::compact()
    } else {
        MemoryStore::new()
    };
    let app = match variant {
        "baseline" | "sessions-json" => {
            app_sessions(sessions_layer(sessions_store.clone(), Format::Json))
        }
        "sessions-bincode" | "sessions-bincode-compact" => {
            app_sessions(sessions_layer(sessions_store.clone(), Format::Bincode))
        }
        "sessions-json-compact" => {
            app_sessions(sessions_layer(sessions_store.clone(), Format::Json))
        }
        "tower-sessions-0.15" => tower015::app(tower_sessions::MemoryStore::default()),
        other => panic!("unknown variant {other}; the variants are {VARIANTS:?}"),
    };
    let n = if variant == "baseline" { 0 } else { n };
    rt.block_on(async {
        let mut last = None;
        for _ in 0..n {
            let (_, cookie) = send(&app, CREATE, None).await;
            let cookie = cookie.expect("/create sets the cookie");
            send(&app, W1, Some(&cookie)).await;
            last = Some(cookie);
        }
        if let Some(cookie) = last {
            let (body, _) = send(&app, W2, Some(&cookie)).await;
            assert_eq!(&body[..], b"2", "the last cart was created and bumped once");
        }
    });
    let held = if variant.starts_with("sessions") {
        sessions_store.len().to_string()
    } else {
        "-".to_owned()
    };
    println!(
        "child {variant}: {n} sessions created, store holds {held}, VmRSS {} kB, VmHWM {} kB",
        vm("VmRSS"),
        vm("VmHWM")
    );
    drop(app);
}

struct Run {
    variant: &'static str,
    max_rss_kb: u64,
    vm_rss_kb: u64,
}

fn parse_after(text: &str, marker: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            let at = l.find(marker)?;
            l[at + marker.len()..]
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "child") {
        let variant = args.get(at + 1).map_or("baseline", String::as_str);
        let n = args
            .get(at + 2)
            .and_then(|n| n.parse().ok())
            .unwrap_or(100_000);
        child(variant, n);
        return;
    }
    let n = if is_bench() {
        env_usize("BENCH_SESSIONS", 100_000)
    } else {
        // `cargo test`: a short run in this process, without `/usr/bin/time`.
        for variant in VARIANTS {
            child(variant, 200);
        }
        return;
    };
    let time = "/usr/bin/time";
    if !std::path::Path::new(time).exists() {
        println!("skipped: {time} is missing (apt-get install time)");
        return;
    }
    let exe = std::env::current_exe().expect("the bench's own path");
    let mut runs = Vec::new();
    for _ in 0..2 {
        for variant in VARIANTS {
            let output = Command::new(time)
                .arg("-v")
                .arg(&exe)
                .args(["child", variant, &n.to_string()])
                .output()
                .expect("run the child under /usr/bin/time");
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                output.status.success(),
                "child {variant} failed:\n{stdout}\n{stderr}"
            );
            print!("{stdout}");
            runs.push(Run {
                variant,
                max_rss_kb: parse_after(&stderr, "Maximum resident set size (kbytes):"),
                vm_rss_kb: parse_after(&stdout, "VmRSS"),
            });
        }
    }
    let base = |f: fn(&Run) -> u64| {
        runs.iter()
            .filter(|r| r.variant == "baseline")
            .map(f)
            .min()
            .unwrap_or(0)
    };
    let (base_max, base_rss) = (base(|r| r.max_rss_kb), base(|r| r.vm_rss_kb));
    println!();
    println!("{n} live 5-item carts (each created, then one W1); RSS in MB (10^6 bytes)");
    println!();
    println!(
        "| variant | max RSS (time -v), runs | − baseline | final VmRSS, runs | − baseline | bytes/session (VmRSS − baseline) |"
    );
    println!("|---|---|---|---|---|---|");
    for variant in VARIANTS {
        let mine: Vec<&Run> = runs.iter().filter(|r| r.variant == variant).collect();
        let mb = |kb: u64| kb as f64 * 1024.0 / 1e6;
        let list = |f: fn(&Run) -> u64| {
            mine.iter()
                .map(|r| format!("{:.1}", mb(f(r))))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let max = mine.iter().map(|r| r.max_rss_kb).max().unwrap_or(0);
        let rss = mine.iter().map(|r| r.vm_rss_kb).max().unwrap_or(0);
        let per = if variant == "baseline" || n == 0 {
            "-".to_owned()
        } else {
            format!(
                "{:.0}",
                rss.saturating_sub(base_rss) as f64 * 1024.0 / n as f64
            )
        };
        println!(
            "| {variant} | {} | {:.1} | {} | {:.1} | {per} |",
            list(|r| r.max_rss_kb),
            mb(max.saturating_sub(base_max)),
            list(|r| r.vm_rss_kb),
            mb(rss.saturating_sub(base_rss)),
        );
    }
}
