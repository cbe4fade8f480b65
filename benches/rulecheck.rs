//! The rulecheck benchmark, on two generated mixes of 1,000,000 events:
//!
//! - `org`: a large organization's realistic history (about 650 MB of JSON
//!   Lines) with the default pack in `rules/`;
//! - `heavy`: sessions with full `ip_address_details`, user agents and
//!   ja3/ja4 on nearly every event, the bench rules in `benches/heavy/`
//!   (Rhai on about a fifth of the events, a threshold with `distinct`),
//!   about 4 % of events raising alerts.
//!
//! For each mix it times, in the same run, the baseline (every line parsed
//! into a `serde_json::Value` on one thread) and `rulecheck` writing JSON
//! Lines alerts, and reports rulecheck's wall time as a ratio to the
//! baseline, with events/s, MB/s and rulecheck's peak memory.
//!
//! With DuckDB at hand (`BENCH_PYTHON`, default `target/bench-python/bin/python3`,
//! a Python with `pip install duckdb`), the heavy mix's rules also run as
//! SQL (`benches/heavy/duckdb_rules.py`) and rulecheck is compared to it.
//!
//! Run with `cargo bench --bench rulecheck`. `BENCH_EVENTS=N` changes the
//! number of events, `BENCH_RUNS=N` the repetitions (the best run counts),
//! `BENCH_MIX=org|heavy` runs one mix only.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let events: u64 = env_or("BENCH_EVENTS", 1_000_000);
    let runs: usize = env_or("BENCH_RUNS", 5);
    let only = std::env::var("BENCH_MIX").ok();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("target").join("bench-data");
    let mixes = [
        (
            "org",
            dir.join(format!("events-{events}.jsonl")),
            root.join("auditwatch.yaml"),
        ),
        (
            "heavy",
            dir.join(format!("heavy-{events}.jsonl")),
            root.join("benches/heavy/config.yaml"),
        ),
    ];
    let mut summary = Vec::new();
    for (mix, data, config) in &mixes {
        if only.as_deref().is_some_and(|o| o != *mix) {
            continue;
        }
        if !data.exists() {
            match *mix {
                "org" => generate(data, events),
                _ => generate_heavy(data, events),
            }
        }
        summary.push(bench_mix(mix, data, config, events, runs));
    }
    println!();
    for line in summary {
        println!("{line}");
    }
}

/// Times one mix; returns its summary line.
fn bench_mix(mix: &str, data: &Path, config: &Path, events: u64, runs: usize) -> String {
    let bytes = std::fs::metadata(data).expect("bench data").len();
    println!();
    println!(
        "mix {mix}: {} ({} events, {:.0} MB)",
        data.display(),
        events,
        bytes as f64 / 1e6
    );

    // Both sides read the file from the page cache: read it once first, so
    // that the first run does not pay for the disk.
    warm(data);

    let mut baseline = Vec::new();
    let mut rulecheck = Vec::new();
    let mut last = None;
    for run in 1..=runs {
        let b = baseline_parse(data);
        let r = run_rulecheck(config, data);
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
    let duck = if mix == "heavy" { duckdb(data) } else { None };
    let duck = match duck {
        Some(d) => format!(
            "; ratio rulecheck / DuckDB {:.2} (DuckDB {:.2}s)",
            r.as_secs_f64() / d.as_secs_f64(),
            d.as_secs_f64()
        ),
        None => String::new(),
    };
    format!(
        "{mix}: ratio rulecheck / baseline (best of {runs}) {:.2}{duck}; {:.0} events/s, {:.0} MB/s; peak {} MiB; {} alerts ({})",
        r.as_secs_f64() / b.as_secs_f64(),
        events as f64 / r.as_secs_f64(),
        bytes as f64 / 1e6 / r.as_secs_f64(),
        last.peak_mib.map_or("?".into(), |m| m.to_string()),
        last.alerts,
        data.with_extension("alerts.jsonl").display()
    )
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

/// Runs the real `rulecheck` binary with the rules of `config`, alerts as
/// JSON Lines to a file.
fn run_rulecheck(config: &Path, data: &Path) -> RulecheckRun {
    let alerts_path = data.with_extension("alerts.jsonl");
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_rulecheck"))
        .arg("-c")
        .arg(config)
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

/// The heavy mix's rules in DuckDB, when a Python with duckdb is at hand:
/// the best wall time of three runs.
fn duckdb(data: &Path) -> Option<Duration> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var("BENCH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target/bench-python/bin/python3"));
    let script = root.join("benches/heavy/duckdb_rules.py");
    let mut best: Option<Duration> = None;
    for _ in 0..3 {
        let started = Instant::now();
        let out = Command::new(&python).arg(&script).arg(data).output().ok()?;
        let took = started.elapsed();
        if !out.status.success() {
            println!(
                "duckdb: not run ({})",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            );
            return None;
        }
        print!("duckdb: {}", String::from_utf8_lossy(&out.stdout));
        best = Some(best.map_or(took, |b| b.min(took)));
    }
    best
}

/// Writes `events` events of the heavy mix to `path`: nearly every event a
/// session with full `ip_address_details`, user agent and ja3/ja4.
fn generate_heavy(path: &Path, events: u64) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let started = Instant::now();
    let tmp = path.with_extension("tmp");
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&tmp).unwrap());
    let mut rng = fastrand::Rng::with_seed(7);
    let people: Vec<String> = (0..3000)
        .map(|i| format!("person{i}@example.com"))
        .collect();
    let places = [
        ("US", "New York", "New York", "NY", "7018"),
        ("US", "Portland", "Oregon", "OR", "16509"),
        ("CA", "Toronto", "Ontario", "ON", "812"),
        ("GB", "London", "England", "ENG", "2856"),
        ("DE", "Berlin", "Berlin", "BE", "3320"),
        ("US", "Ashburn", "Virginia", "VA", "14061"),
        ("BR", "Sao Paulo", "Sao Paulo", "SP", "28573"),
        ("SG", "Singapore", "Singapore", "SG", "24940"),
    ];
    let agents = [
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36 Edg/125.0.0.0",
        "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    ];
    let hex = |rng: &mut fastrand::Rng, n: usize| -> String {
        (0..n)
            .map(|_| char::from_digit(rng.u32(0..16), 16).unwrap())
            .collect()
    };
    let alnum = |rng: &mut fastrand::Rng, n: usize| -> String {
        (0..n).map(|_| rng.alphanumeric()).collect()
    };
    let start: i64 = 1_788_220_800; // 2026-09-01
    let mut at = start;
    for _ in 0..events {
        at += rng.i64(0..=6);
        let email = &people[rng.usize(0..people.len())];
        // Most people stay where they are; one in ten events comes from elsewhere.
        let place = if rng.u8(0..10) == 0 {
            places[rng.usize(0..places.len())]
        } else {
            places[email.len() % 3]
        };
        let ip = format!(
            "{}.{}.{}.{}",
            rng.u8(1..224),
            rng.u8(0..=255),
            rng.u8(0..=255),
            rng.u8(1..255)
        );
        let roll = rng.u32(0..1000);
        let (kind, details) = match roll {
            0..=449 => ("login.succeeded", serde_json::json!({})),
            450..=649 => (
                "login.failed",
                serde_json::json!({"error_code": "invalid_credentials"}),
            ),
            650..=729 => {
                let scopes = if rng.u8(0..25) == 0 {
                    vec!["api.all"]
                } else {
                    vec!["api.model.read", "api.files.write"]
                };
                (
                    "api_key.created",
                    serde_json::json!({"id": format!("key_{}", alnum(&mut rng, 16)), "data": {"scopes": scopes}}),
                )
            }
            730..=799 => {
                let to = if rng.u8(0..10) == 0 {
                    format!("someone{}@gmail.com", rng.u32(0..999))
                } else {
                    format!("new{}@example.com", rng.u32(0..9999))
                };
                let role = if rng.u8(0..20) == 0 {
                    "owner"
                } else {
                    "reader"
                };
                (
                    "invite.sent",
                    serde_json::json!({"id": format!("invite-{}", alnum(&mut rng, 20)), "data": {"email": to, "role": role}}),
                )
            }
            800..=849 => {
                let role = if rng.u8(0..40) == 0 {
                    "owner"
                } else {
                    "reader"
                };
                (
                    "user.updated",
                    serde_json::json!({"id": format!("user-{}", alnum(&mut rng, 24)), "changes_requested": {"role": role}}),
                )
            }
            850..=929 => (
                "project.updated",
                serde_json::json!({"id": format!("proj_{}", alnum(&mut rng, 24)), "changes_requested": {"title": "Renamed"}}),
            ),
            _ => (
                "api_key.updated",
                serde_json::json!({"id": format!("key_{}", alnum(&mut rng, 16)), "changes_requested": {"scopes": ["api.model.read"]}}),
            ),
        };
        let event = serde_json::json!({
            "object": "organization.audit_log",
            "id": format!("audit_log-{}", alnum(&mut rng, 24)),
            "type": kind,
            "effective_at": at,
            "project": {"id": format!("proj_{}", email.len()), "name": "Default project"},
            "actor": {"type": "session", "session": {
                "user": {"id": format!("user-{}", email.len() * 7919 % 100_000), "email": email},
                "ip_address": ip,
                "user_agent": agents[rng.usize(0..agents.len())],
                "ja3": hex(&mut rng, 32),
                "ja4": format!("t13d1516h2_{}_{}", hex(&mut rng, 12), hex(&mut rng, 12)),
                "ip_address_details": {
                    "country": place.0, "city": place.1, "region": place.2, "region_code": place.3,
                    "asn": place.4, "latitude": "40.7128", "longitude": "-74.0060"
                }
            }},
            kind: details,
        });
        serde_json::to_writer(&mut out, &event).unwrap();
        out.write_all(b"\n").unwrap();
    }
    out.flush().unwrap();
    drop(out);
    std::fs::rename(&tmp, path).unwrap();
    println!(
        "generated {} in {:.1}s",
        path.display(),
        started.elapsed().as_secs_f64()
    );
}
