//! The rulecheck benchmark: generates 1,000,000 realistic audit events
//! (about 650 MB of JSON Lines), then, in one run, times
//!
//! - the baseline: parsing every line into a `serde_json::Value` on one thread;
//! - `rulecheck` with the rules in `rules/` over the same file, writing JSON
//!   Lines alerts,
//!
//! and reports rulecheck's wall time as a ratio to the baseline, with
//! events/s, MB/s and rulecheck's peak memory.
//!
//! Run with `cargo bench --bench rulecheck`. `BENCH_EVENTS=N` changes the
//! number of events, `BENCH_RUNS=N` the repetitions (the best run counts).

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let events: u64 = env_or("BENCH_EVENTS", 1_000_000);
    let runs: usize = env_or("BENCH_RUNS", 5);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let data = root
        .join("target")
        .join("bench-data")
        .join(format!("events-{events}.jsonl"));
    if !data.exists() {
        generate(&data, events);
    }
    let bytes = std::fs::metadata(&data).expect("bench data").len();
    println!(
        "input: {} ({} events, {:.0} MB)",
        data.display(),
        events,
        bytes as f64 / 1e6
    );

    // Both sides read the file from the page cache: read it once first, so
    // that the first run does not pay for the disk.
    warm(&data);

    let mut baseline = Vec::new();
    let mut rulecheck = Vec::new();
    let mut last = None;
    for run in 1..=runs {
        let b = baseline_parse(&data);
        let r = run_rulecheck(&root, &data);
        println!(
            "run {run}: baseline {:.2}s, rulecheck {:.2}s (ratio {:.2}), {} alerts, peak {} MiB",
            b.as_secs_f64(),
            r.wall.as_secs_f64(),
            r.wall.as_secs_f64() / b.as_secs_f64(),
            r.alerts,
            r.peak_mib.map_or("?".into(), |m| m.to_string()),
        );
        baseline.push(b);
        rulecheck.push(r.wall);
        last = Some(r);
    }
    let best = |v: &[Duration]| v.iter().min().copied().unwrap_or_default();
    let (b, r) = (best(&baseline), best(&rulecheck));
    let last = last.expect("at least one run");
    println!();
    println!(
        "baseline (serde_json::Value, 1 thread): {:.2}s  {:.0} events/s  {:.0} MB/s",
        b.as_secs_f64(),
        events as f64 / b.as_secs_f64(),
        bytes as f64 / 1e6 / b.as_secs_f64()
    );
    println!(
        "rulecheck ({} rules, {} threads):        {:.2}s  {:.0} events/s  {:.0} MB/s",
        last.rules,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        r.as_secs_f64(),
        events as f64 / r.as_secs_f64(),
        bytes as f64 / 1e6 / r.as_secs_f64()
    );
    println!(
        "ratio rulecheck / baseline (best of {runs}): {:.2}",
        r.as_secs_f64() / b.as_secs_f64()
    );
    println!(
        "rulecheck peak memory: {} MiB; alerts: {}",
        last.peak_mib.map_or("?".into(), |m| m.to_string()),
        last.alerts
    );
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Writes `events` events of a large org (many people, every actor kind,
/// incidents included) to `path`.
fn generate(path: &Path, events: u64) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let started = Instant::now();
    let tmp = path.with_extension("tmp");
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&tmp).unwrap());
    let opts = auditwatch_gen::Options {
        seed: 42,
        start: "2026-09-01T00:00:00Z".parse().unwrap(),
        days: 120,
        people: 4000,
        timezone: "America/New_York".into(),
        incidents: true,
        max_events: Some(events),
    };
    auditwatch_gen::generate(&opts, &mut out).unwrap();
    out.flush().unwrap();
    drop(out);
    std::fs::rename(&tmp, path).unwrap();
    println!(
        "generated {} in {:.1}s",
        path.display(),
        started.elapsed().as_secs_f64()
    );
}

/// Reads the whole file once and throws it away.
fn warm(path: &Path) {
    let mut file = File::open(path).unwrap();
    std::io::copy(&mut file, &mut std::io::sink()).unwrap();
}

/// The baseline: every line into a `serde_json::Value`, on one thread.
fn baseline_parse(path: &Path) -> Duration {
    let started = Instant::now();
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path).unwrap());
    let mut line = String::new();
    let mut n = 0u64;
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        n += v.is_object() as u64;
    }
    std::hint::black_box(n);
    started.elapsed()
}

struct RulecheckRun {
    wall: Duration,
    alerts: usize,
    peak_mib: Option<u64>,
    rules: usize,
}

/// Runs the real `rulecheck` binary with the default pack, alerts as JSON Lines to a file.
fn run_rulecheck(root: &Path, data: &Path) -> RulecheckRun {
    let alerts_path = data.with_extension("alerts.jsonl");
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_rulecheck"))
        .arg("-c")
        .arg(root.join("auditwatch.yaml"))
        .arg("--format")
        .arg("jsonl")
        .arg(data)
        .stdout(File::create(&alerts_path).unwrap())
        .stderr(Stdio::piped())
        .output()
        .expect("run rulecheck");
    let wall = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "rulecheck failed: {stderr}");
    let alerts = std::fs::read_to_string(&alerts_path)
        .unwrap()
        .lines()
        .count();
    let peak_mib = stderr
        .split("peak memory ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok());
    let rules = stderr
        .split(" rules (")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    RulecheckRun {
        wall,
        alerts,
        peak_mib,
        rules,
    }
}
