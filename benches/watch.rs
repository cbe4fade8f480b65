//! The watcher's benchmark against the audit log API stand-in, with the
//! release binary and the default pack:
//!
//! - catch-up: a first run over a 30-day backlog of generated events
//!   (`BENCH_BACKLOG` events, default 100,000), read in slices and committed;
//! - latency: from the poll that first shows a new event to its alert line
//!   on stdout (`poll_interval: 1s`, 10 events);
//! - idle: resident memory and CPU time of a watcher polling an API with
//!   nothing new every 30 s, for `BENCH_IDLE_SECS` seconds (default 60);
//! - delivery: from the commit of 10 alerts to each destination accepting
//!   it (a Slack bot, a Slack webhook, a JSON webhook), read off the
//!   watcher's log, without failures and with a 429, two 500s and a 5 s
//!   outage of Slack and the webhook.
//!
//! Run with `cargo bench --bench watch`.

#[path = "../tests/serve/mod.rs"]
mod serve;
#[path = "../tests/slack/mod.rs"]
mod slack;
#[path = "../tests/standin/mod.rs"]
mod standin;
#[path = "../tests/webhook/mod.rs"]
mod webhook;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use standin::{ADMIN_KEY, StandIn};

const BIN: &str = env!("CARGO_BIN_EXE_auditwatch");

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn write_config(dir: &Path, api: &StandIn, poll: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = format!(
        "source:\n  openai:\n    admin_key: ${{OPENAI_ADMIN_KEY}}\n    base_url: {}\n    poll_interval: {poll}\n    start: 31d\n\
         rules: [{}]\n\
         lists:\n  corp_emails: [\"*@example.com\"]\n  office_networks: [\"203.0.113.0/24\"]\n  vpn_networks: []\n  expected_countries: [\"US\", \"CA\"]\n\
         business_hours: {{timezone: America/New_York, days: Mon-Fri, hours: \"08:00-19:00\"}}\n\
         state: {{path: aw.db}}\ndestinations:\n  console: {{type: stdout}}\nrouting:\n  default: [console]\n",
        api.base_url(),
        root.join("rules").display()
    );
    std::fs::write(dir.join("auditwatch.yaml"), config).unwrap();
}

fn watcher(dir: &Path, once: bool) -> Command {
    let mut c = Command::new(BIN);
    c.arg("watch")
        .arg("-c")
        .arg(dir.join("auditwatch.yaml"))
        .env("OPENAI_ADMIN_KEY", ADMIN_KEY)
        .env("RUST_LOG", "warn");
    if once {
        c.arg("--once");
    }
    c
}

/// Resident memory (KiB) and CPU time (clock ticks) of a process.
fn usage(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = fields
        .get(11)
        .and_then(|u| u.parse::<u64>().ok())
        .unwrap_or(0)
        + fields
            .get(12)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
    (rss, ticks)
}

fn main() {
    let backlog: u64 = env_or("BENCH_BACKLOG", 100_000);
    let idle_secs: u64 = env_or("BENCH_IDLE_SECS", 60);

    // Catch-up of a 30-day backlog.
    let api = StandIn::start();
    let opts = auditwatch_gen::Options {
        seed: 9,
        start: jiff::Timestamp::from_second(now() - 30 * 86_400).unwrap(),
        days: 30,
        people: 900,
        incidents: true,
        max_events: Some(backlog),
        ..auditwatch_gen::Options::default()
    };
    let mut out = Vec::new();
    auditwatch_gen::generate(&opts, &mut out).unwrap();
    let events: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["effective_at"].as_i64().unwrap() < now() - 60)
        .collect();
    let span_days = (now() - events[0]["effective_at"].as_i64().unwrap()) as f64 / 86_400.0;
    api.add(events.clone());
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &api, "30s");
    let started = Instant::now();
    let run = watcher(dir.path(), true)
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    let took = started.elapsed();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let alerts = String::from_utf8_lossy(&run.stdout).lines().count();
    println!(
        "catch-up: {} events over {span_days:.1} days in {:.1}s ({:.0} events/s), {} requests, {alerts} alerts",
        events.len(),
        took.as_secs_f64(),
        events.len() as f64 / took.as_secs_f64(),
        api.requests().len()
    );

    // Latency: a watcher polling every second; new events, one at a time.
    write_config(dir.path(), &api, "1s");
    let mut child = watcher(dir.path(), false)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send((Instant::now(), line));
        }
    });
    std::thread::sleep(Duration::from_secs(3));
    while rx.try_recv().is_ok() {}
    let mut latencies = Vec::new();
    for i in 0..10 {
        let id = format!("bench-latency-{i}");
        let before = api.requests().len();
        api.add([json!({
            "object": "organization.audit_log", "id": id, "type": "ip_allowlist.deleted",
            "effective_at": now(),
            "actor": {"type": "session", "session": {"user": {"id": format!("user-x{i}"), "email": format!("mallory{i}@example.com")}, "ip_address": "198.51.100.9"}},
            "ip_allowlist.deleted": {"id": "ipal_1", "name": "office", "allowed_ips": ["203.0.113.0/24"]}
        })]);
        let (printed, _) = loop {
            let (at, line) = rx
                .recv_timeout(Duration::from_secs(20))
                .expect("the alert came");
            if line.contains(&id) {
                break (at, line);
            }
        };
        // The first request after the event was added saw it.
        let seen = api.requests()[before..]
            .iter()
            .find(|r| r.status == 200)
            .map(|r| r.at)
            .expect("a poll after the event was added");
        latencies.push(printed.saturating_duration_since(seen));
        std::thread::sleep(Duration::from_millis(1_300));
    }
    latencies.sort();
    println!(
        "latency (poll that shows the event -> alert on stdout): median {:.0} ms, max {:.0} ms",
        latencies[latencies.len() / 2].as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3
    );
    child.kill().unwrap();
    child.wait().unwrap();

    // Idle: the default 30 s poll on an API with nothing new.
    write_config(dir.path(), &api, "30s");
    let mut child = watcher(dir.path(), false)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(5));
    let (_, ticks0) = usage(child.id());
    let before = api.requests().len();
    let started = Instant::now();
    let mut peak = 0;
    while started.elapsed() < Duration::from_secs(idle_secs) {
        std::thread::sleep(Duration::from_secs(1));
        peak = peak.max(usage(child.id()).0);
    }
    let (rss, ticks1) = usage(child.id());
    let ticks_per_sec = 100.0;
    let cpu = (ticks1 - ticks0) as f64 / ticks_per_sec / started.elapsed().as_secs_f64() * 100.0;
    println!(
        "idle for {idle_secs}s: RSS {} MiB (peak {} MiB), CPU {cpu:.3}% of a core, {} requests",
        rss / 1024,
        peak / 1024,
        api.requests().len() - before
    );
    child.kill().unwrap();
    child.wait().unwrap();

    delivery(false);
    delivery(true);
}

/// The time of a log line (tracing's RFC 3339 prefix), in seconds.
fn log_time(line: &str) -> Option<f64> {
    let ts: jiff::Timestamp = line.split_whitespace().next()?.parse().ok()?;
    Some(ts.as_duration().as_secs_f64())
}

/// Commit-to-accepted latency per destination for 10 alerts.
fn delivery(failures: bool) {
    let api = StandIn::start();
    let slack = slack::SlackStandin::start();
    let hook = webhook::WebhookStandin::start();
    if failures {
        slack.fail_with_429(1, 1);
        slack.fail_with_500(2);
        slack.outage_for(Duration::from_secs(5));
        hook.fail_with_500(2);
    }
    let t = now() - 600;
    api.add((0..10).map(|i| {
        json!({"object": "organization.audit_log", "id": format!("bench-delivery-{i}"), "type": "ip_allowlist.deleted",
               "effective_at": t + i, "actor": {"type": "session", "session": {"user": {"id": format!("user-{i}"), "email": format!("u{i}@example.com")}, "ip_address": "198.51.100.7"}},
               "ip_allowlist.deleted": {"id": format!("ipl-{i}"), "name": "office", "allowed_ips": ["203.0.113.0/24"]}})
    }));
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = format!(
        "source:\n  openai:\n    admin_key: ${{OPENAI_ADMIN_KEY}}\n    base_url: {}\n    poll_interval: 1s\n    start: 1h\n\
         rules: [{}]\nstate: {{path: aw.db}}\ndestinations:\n\
         \x20 bot: {{type: slack, bot_token: \"{}\", channel: {}, api_url: \"{}\"}}\n\
         \x20 slackhook: {{type: slack, webhook_url: \"{}\"}}\n\
         \x20 siem: {{type: webhook, url: \"{}\"}}\n\
         routing:\n  default: [bot, slackhook, siem]\n",
        api.base_url(),
        root.join("rules/network.yaml").display(),
        slack::BOT_TOKEN,
        slack::CHANNEL,
        slack.api_url(),
        slack.webhook_url(),
        hook.url()
    );
    std::fs::write(dir.path().join("auditwatch.yaml"), config).unwrap();
    let mut child = watcher(dir.path(), false)
        .env("RUST_LOG", "auditwatch=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let end = Instant::now() + Duration::from_secs(120);
    while Instant::now() < end
        && lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("alert delivered"))
            .count()
            < 30
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let lines = lines.lock().unwrap();
    let committed = lines
        .iter()
        .find(|l| l.contains("poll committed") && !l.contains("alerts=0"))
        .and_then(|l| log_time(l))
        .expect("a poll committed the alerts");
    let mut by_destination = std::collections::BTreeMap::<String, Vec<f64>>::new();
    for l in lines.iter().filter(|l| l.contains("alert delivered")) {
        let dest = l
            .split("destination=")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or("?")
            .trim_matches('"')
            .to_owned();
        if let Some(t) = log_time(l) {
            by_destination
                .entry(dest)
                .or_default()
                .push((t - committed) * 1e3);
        }
    }
    for (dest, mut ms) in by_destination {
        ms.sort_by(f64::total_cmp);
        println!(
            "delivery {} to {dest}: {} alerts, first {:.0} ms, median {:.0} ms, last {:.0} ms after the commit",
            if failures {
                "with failures"
            } else {
                "without failures"
            },
            ms.len(),
            ms[0],
            ms[ms.len() / 2],
            ms[ms.len() - 1]
        );
    }
}
