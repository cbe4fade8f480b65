//! The watcher against the audit log API stand-in over real HTTP and a real
//! SQLite state file: late events, pages of one second, the tenant walk,
//! restarts and `kill -9`, API failures, a full or read-only state file,
//! and agreement with `rulecheck`.

mod observe;
mod serve;
mod standin;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use auditwatch::alert::Alert;
use auditwatch::store::{SqliteStore, Store};
use observe::Lines;
use serde_json::{Value, json};
use standin::{ADMIN_KEY, RetryAfter, StandIn};

const BIN: &str = env!("CARGO_BIN_EXE_auditwatch");

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A rule that alerts once on every event: its alerts show exactly which
/// events were evaluated, and how often.
const EVERY_EVENT: &str =
    "id: test.every_event\ntitle: Every event\nseverity: info\nmatch: {id: {exists: true}}\n";

/// The lists and business hours the default pack needs.
const PACK_VALUES: &str = "lists:\n  corp_emails: [\"*@example.com\"]\n  office_networks: [\"203.0.113.0/24\", \"2001:db8:100::/48\"]\n  vpn_networks: [\"203.0.113.200/30\"]\n  expected_countries: [\"US\", \"CA\"]\nbusiness_hours: {timezone: America/New_York, days: Mon-Fri, hours: \"08:00-19:00\", holidays: [2026-11-26, 2026-12-25]}\n";

/// One watcher's folder: config, rules, state.
struct Bot {
    dir: tempfile::TempDir,
}

impl Bot {
    /// A bot reading `api`, with the default pack (when `pack`) and the
    /// every-event rule; `source_extra` adds lines under `source.openai`.
    fn new(api: &StandIn, pack: bool, source_extra: &str) -> Bot {
        Bot::starting(api, pack, source_extra, "40d")
    }

    /// Like [`Bot::new`], with the first run beginning `start` back.
    fn starting(api: &StandIn, pack: bool, source_extra: &str, start: &str) -> Bot {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("rules")).unwrap();
        std::fs::write(dir.path().join("rules/every.yaml"), EVERY_EVENT).unwrap();
        let rules = if pack {
            format!("[{}, rules/]", repo().join("rules").display())
        } else {
            "[rules/]".to_owned()
        };
        let config = format!(
            "source:\n  openai:\n    admin_key: ${{OPENAI_ADMIN_KEY}}\n    base_url: {}\n    poll_interval: 1s\n    lookback: 15m\n    start: {start}\n    timeout: 5s\n{source_extra}\
             rules: {rules}\n{PACK_VALUES}state: {{path: state/aw.db}}\n\
             destinations:\n  console: {{type: stdout}}\nrouting:\n  default: [console]\n",
            api.base_url()
        );
        std::fs::write(dir.path().join("auditwatch.yaml"), config).unwrap();
        Bot { dir }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("auditwatch.yaml")
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state/aw.db")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .arg("-c")
            .arg(self.config())
            .env("OPENAI_ADMIN_KEY", ADMIN_KEY)
            .env("RUST_LOG", "auditwatch=debug")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null());
        c
    }

    /// `auditwatch watch --once`, which must succeed.
    fn once(&self) -> Output {
        let out = self.command(&["watch", "--once"]).output().unwrap();
        assert!(
            out.status.success(),
            "watch --once failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn spawn(&self) -> Child {
        self.command(&["watch"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// The alerts committed to the outbox, oldest first.
    fn alerts(&self) -> Vec<Alert> {
        SqliteStore::open(&self.state()).unwrap().alerts().unwrap()
    }

    fn events_total(&self) -> u64 {
        SqliteStore::open(&self.state())
            .unwrap()
            .checkpoint()
            .unwrap()
            .events_total
    }

    /// Event ids of the every-event rule's alerts, with how often each came.
    fn evaluated(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for a in self
            .alerts()
            .iter()
            .filter(|a| a.rule_id == "test.every_event")
        {
            *out.entry(a.event_id.clone()).or_insert(0) += 1;
        }
        out
    }
}

fn stdout_alerts(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// An audit log event of the shape the API returns.
fn event(id: &str, ty: &str, at: i64) -> Value {
    json!({
        "object": "organization.audit_log",
        "id": id,
        "type": ty,
        "effective_at": at,
        "actor": {"type": "session", "session": {
            "user": {"id": "user-1", "email": "alice@example.com"},
            "ip_address": "198.51.100.7",
            "user_agent": "Mozilla/5.0",
            "ip_address_details": {"country": "US", "city": "Portland", "region": "Oregon", "region_code": "OR", "asn": "16509", "latitude": "45.5", "longitude": "-122.6"}
        }},
        ty: {"id": format!("obj-{id}")}
    })
}

fn now() -> i64 {
    auditwatch::time::now()
}

/// `days` days of a generated 60-person org, ending an hour ago.
fn history(days: u32, seed: u64) -> Vec<Value> {
    let start = jiff::Timestamp::from_second(now() - i64::from(days) * 86_400 - 3_600).unwrap();
    let opts = auditwatch_gen::Options {
        seed,
        start,
        days,
        people: 60,
        incidents: true,
        ..auditwatch_gen::Options::default()
    };
    let mut out = Vec::new();
    auditwatch_gen::generate(&opts, &mut out).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["effective_at"].as_i64().unwrap() < now() - 60)
        .collect()
}

fn ids(events: &[Value]) -> BTreeSet<String> {
    events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

/// `(rule_id, event_id)` of the alerts `rulecheck` raises on `events` with
/// the bot's config.
fn rulecheck(bot: &Bot, events: &[Value]) -> BTreeSet<(String, String)> {
    let file = bot.dir.path().join("events.jsonl");
    let text: String = events.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(&file, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rulecheck"))
        .arg("-c")
        .arg(bot.config())
        .args(["--format", "jsonl"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout_alerts(&out)
        .iter()
        .map(|a| {
            (
                a["rule_id"].as_str().unwrap().to_owned(),
                a["event_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(alerts: &[Alert]) -> BTreeSet<(String, String)> {
    alerts
        .iter()
        .map(|a| (a.rule_id.clone(), a.event_id.clone()))
        .collect()
}

#[test]
fn late_events_many_in_one_second_and_tenant_events_are_each_evaluated_once() {
    let api = StandIn::start();
    let t = now() - 3_000;
    let mut first = Vec::new();
    // 250 events in one second, across three pages of 100.
    for i in 0..250 {
        first.push(event(&format!("burst-{i:03}"), "api_key.updated", t));
    }
    for i in 0..30 {
        first.push(event(
            &format!("early-{i}"),
            "project.updated",
            t - 1_000 + i,
        ));
    }
    first.push(event("tenant-1", "tenant.sso_connection.deleted", t - 10));
    first.push(event("bound-1", "role.bound_to_resource", t - 5));
    api.add(first.clone());
    let bot = Bot::new(&api, false, "");
    let out = bot.once();
    assert_eq!(
        stdout_alerts(&out).len(),
        first.len(),
        "every alert went to stdout"
    );
    let evaluated = bot.evaluated();
    assert_eq!(
        evaluated.keys().cloned().collect::<BTreeSet<_>>(),
        ids(&first)
    );
    assert!(evaluated.values().all(|n| *n == 1));
    let requests = api.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.param("tenant_only") == Some("true")),
        "a tenant walk was made"
    );
    assert!(requests.iter().all(|r| r.param("limit") == Some("100")));
    assert!(requests.iter().any(|r| r.param("after").is_some()));

    // Events the API shows late: older than the newest already seen, but
    // within the lookback.
    let late: Vec<Value> = (0..40)
        .map(|i| event(&format!("late-{i}"), "project.updated", t - 600 + i))
        .collect();
    api.add(late.clone());
    let out = bot.once();
    let printed: BTreeSet<String> = stdout_alerts(&out)
        .iter()
        .map(|a| a["event_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(printed, ids(&late), "only the late events are new");
    let evaluated = bot.evaluated();
    assert_eq!(evaluated.len(), first.len() + late.len());
    assert!(evaluated.values().all(|n| *n == 1), "none evaluated twice");
    assert_eq!(bot.events_total(), (first.len() + late.len()) as u64);

    // A third poll with nothing new evaluates nothing.
    let out = bot.once();
    assert!(out.stdout.is_empty());
    assert_eq!(bot.events_total(), (first.len() + late.len()) as u64);
}

#[test]
fn the_live_alerts_equal_rulecheck_on_the_same_events() {
    let api = StandIn::start();
    let events = history(12, 11);
    assert!(events.len() > 2_000, "{}", events.len());
    api.add(events.clone());
    let bot = Bot::new(&api, true, "");
    // Twelve days behind: read in ascending slices, each committed.
    let out = bot.once();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("backlog slice committed"),
        "the backlog was read in slices"
    );
    // A restart evaluates nothing again.
    let again = bot.once();
    assert!(again.stdout.is_empty());
    let alerts = bot.alerts();
    let live: BTreeSet<(String, String)> = pairs(&alerts)
        .into_iter()
        .filter(|(rule, _)| rule != "test.every_event")
        .collect();
    let replay: BTreeSet<(String, String)> = rulecheck(&bot, &events)
        .into_iter()
        .filter(|(rule, _)| rule != "test.every_event")
        .collect();
    assert!(live.len() > 10, "the pack raised alerts ({})", live.len());
    assert!(
        alerts.iter().any(|a| a.event_ids.len() > 1),
        "a threshold fired"
    );
    assert!(
        alerts.iter().any(|a| a.suppressed > 0),
        "suppression quieted repeats"
    );
    assert_eq!(live, replay);
    assert_eq!(bot.evaluated().len(), ids(&events).len());
    assert_eq!(bot.events_total(), ids(&events).len() as u64);
}

#[test]
fn a_threshold_burst_split_by_a_restart_still_fires() {
    let api = StandIn::start();
    let dir_rule = "id: test.burst\ntitle: Burst\nseverity: high\nmatch: {type: login.failed}\nthreshold: {count: 5, window: 10m, group_by: actor.email}\n";
    let bot = Bot::new(&api, false, "");
    std::fs::write(bot.dir.path().join("rules/burst.yaml"), dir_rule).unwrap();
    let t = now() - 1_200;
    let burst: Vec<Value> = (0..5)
        .map(|i| event(&format!("fail-{i}"), "login.failed", t + i * 30))
        .collect();
    api.add(burst[..3].to_vec());
    bot.once();
    api.add(burst[3..].to_vec());
    bot.once();
    let fired: Vec<Alert> = bot
        .alerts()
        .into_iter()
        .filter(|a| a.rule_id == "test.burst")
        .collect();
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(
        fired[0].event_ids,
        ids(&burst).into_iter().collect::<Vec<_>>()
    );
}

#[test]
fn a_sequence_split_by_kill_9_between_its_steps_fires_as_rulecheck_says() {
    let api = StandIn::start();
    let bot = Bot::new(&api, true, "");
    let t = now() - 1_200;
    let mut mallory = event("x", "login.failed", 0)["actor"].clone();
    mallory["session"]["ip_address"] = json!("198.19.3.77");
    let at = |id: &str, ty: &str, t: i64| {
        let mut e = event(id, ty, t);
        e["actor"] = mallory.clone();
        e
    };
    let failures: Vec<Value> = (0..5)
        .map(|i| at(&format!("seq-fail-{i}"), "login.failed", t + i * 20))
        .collect();
    let success = at("seq-ok", "login.succeeded", t + 200);
    // The failures are committed, then the watcher is killed.
    api.add(failures.clone());
    let mut child = bot.spawn();
    let lines = Lines::of(&mut child);
    assert!(lines.wait_for("poll committed", Duration::from_secs(20)));
    child.kill().unwrap();
    child.wait().unwrap();
    let fired = |rule: &str| -> Vec<Alert> {
        bot.alerts()
            .into_iter()
            .filter(|a| a.rule_id == rule)
            .collect()
    };
    assert!(fired("openai.login.failures_then_success").is_empty());
    // The success arrives while it is down; the restarted watcher completes
    // the sequence from the saved state.
    api.add([success.clone()]);
    bot.once();
    for rule in [
        "openai.login.failures_then_success",
        "openai.login.failures_then_success_from_ip",
    ] {
        let alerts = fired(rule);
        assert_eq!(alerts.len(), 1, "{rule}: {alerts:?}");
        let mut want: Vec<String> = failures
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect();
        want.push("seq-ok".into());
        assert_eq!(alerts[0].event_ids, want, "{rule}");
        assert_eq!(alerts[0].event_id, "seq-ok");
    }
    // rulecheck over the same events gives the same alerts.
    let mut all = failures.clone();
    all.push(success);
    let live: BTreeSet<_> = pairs(&bot.alerts())
        .into_iter()
        .filter(|(r, _)| r != "test.every_event")
        .collect();
    let replay: BTreeSet<_> = rulecheck(&bot, &all)
        .into_iter()
        .filter(|(r, _)| r != "test.every_event")
        .collect();
    assert_eq!(live, replay);
}

/// A login of `email` from network `asn`.
fn login_from(id: &str, at: i64, email: &str, asn: &str) -> Value {
    let mut e = event(id, "login.succeeded", at);
    e["actor"]["session"]["user"]["email"] = json!(email);
    e["actor"]["session"]["ip_address_details"]["asn"] = json!(asn);
    e
}

#[test]
fn first_seen_agrees_with_rulecheck_across_a_restart_and_learn_seeds_a_new_watcher() {
    const DAY: i64 = 86_400;
    const RULE: &str = "openai.login.new_network_for_user";
    let api = StandIn::start();
    let t = now();
    let usual: Vec<Value> = (0..10)
        .map(|i| {
            login_from(
                &format!("usual-{i}"),
                t - (30 - 2 * i) * DAY,
                "bob@example.com",
                "7922",
            )
        })
        .collect();
    let new_net = login_from("new-net", t - 600, "bob@example.com", "14061");
    let again = login_from("again", t - 300, "bob@example.com", "14061");
    api.add(usual.clone());
    let bot = Bot::new(&api, true, "");
    bot.once();
    // Restarted: the learned networks come from the state file.
    api.add([new_net.clone(), again.clone()]);
    bot.once();
    let fired: Vec<String> = bot
        .alerts()
        .into_iter()
        .filter(|a| a.rule_id == RULE)
        .map(|a| a.event_id)
        .collect();
    assert_eq!(fired, ["new-net"]);
    let mut all = usual.clone();
    all.extend([new_net.clone(), again.clone()]);
    let live: BTreeSet<_> = pairs(&bot.alerts())
        .into_iter()
        .filter(|(r, _)| r != "test.every_event")
        .collect();
    let replay: BTreeSet<_> = rulecheck(&bot, &all)
        .into_iter()
        .filter(|(r, _)| r != "test.every_event")
        .collect();
    assert_eq!(live, replay);

    // A watcher that starts an hour back knows nothing of bob's usual
    // network and only learns...
    let blind = Bot::starting(&api, true, "", "1h");
    blind.once();
    assert!(
        !blind.alerts().iter().any(|a| a.rule_id == RULE),
        "learning: no alert yet"
    );
    // ... unless it learned the history first.
    let seeded = Bot::starting(&api, true, "", "1h");
    let out = seeded
        .command(&["learn", "--since", "40d", "--until", "2h"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("10 events read"), "{stderr}");
    seeded.once();
    let fired: Vec<String> = seeded
        .alerts()
        .into_iter()
        .filter(|a| a.rule_id == RULE)
        .map(|a| a.event_id)
        .collect();
    assert_eq!(fired, ["new-net"], "seeded by learn");
}

#[test]
fn rate_limits_and_server_errors_are_survived() {
    let api = StandIn::start();
    let events: Vec<Value> = (0..30)
        .map(|i| event(&format!("e-{i}"), "project.updated", now() - 500 + i))
        .collect();
    api.add(events.clone());
    let bot = Bot::new(&api, false, "    tenant_events: false\n");
    api.rate_limit_next(1, RetryAfter::Seconds(1));
    api.rate_limit_next(1, RetryAfter::HttpDate(1));
    api.fail_next(2);
    let started = Instant::now();
    bot.once();
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After was waited"
    );
    assert_eq!(bot.evaluated().len(), events.len());
    let statuses: Vec<u16> = api.requests().iter().map(|r| r.status).collect();
    assert!(
        statuses.contains(&429) && statuses.contains(&500),
        "{statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&200));
}

#[test]
fn a_refused_key_stops_with_a_clear_message_and_status_1() {
    let api = StandIn::start();
    api.add([event("e-1", "project.updated", now() - 100)]);
    let bot = Bot::new(&api, false, "");
    let wrong = "sk-admin-wrong-key-9876543210";
    let out = bot
        .command(&["watch"])
        .env("OPENAI_ADMIN_KEY", wrong)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("source.openai.admin_key"), "{stderr}");
    assert!(stderr.contains("401"), "{stderr}");
    assert!(
        !stderr.contains(wrong) && !stderr.contains("9876"),
        "the key is never printed: {stderr}"
    );
    assert!(
        !stderr.contains("sk-ad*"),
        "not even the API's masked form: {stderr}"
    );
    assert_eq!(api.requests().len(), 1, "a refused key is not retried");
}

#[test]
fn kill_9_in_the_middle_of_polls_and_commits_loses_nothing_and_repeats_nothing() {
    let api = StandIn::start();
    let events = history(30, 5);
    api.add(events.clone());
    let bot = Bot::new(&api, true, "");
    // Killed in the middle of a walk: the API answers slowly.
    api.set_delay(Duration::from_millis(40));
    for _ in 0..3 {
        let before = api.requests().len();
        let mut child = bot.spawn();
        assert!(api.wait_for_requests(before + 3, Duration::from_secs(20)));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    api.set_delay(Duration::ZERO);
    // Killed right after a commit began, at different delays.
    let mut kills = 0;
    for delay_ms in [0u64, 1, 2, 3, 5, 8] {
        let mut child = bot.spawn();
        let lines = Lines::of(&mut child);
        if lines.wait_for("committing", Duration::from_secs(20)) {
            std::thread::sleep(Duration::from_millis(delay_ms));
            kills += 1;
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
    assert!(kills >= 3, "the watcher was killed while committing");
    // Then it runs to the end.
    bot.once();
    let evaluated = bot.evaluated();
    let repeated: Vec<_> = evaluated.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "evaluated twice: {repeated:?}");
    assert_eq!(evaluated.len(), ids(&events).len(), "none missed");
    assert_eq!(bot.events_total(), ids(&events).len() as u64);
    let live: BTreeSet<_> = pairs(&bot.alerts())
        .into_iter()
        .filter(|(r, _)| r != "test.every_event")
        .collect();
    let replay: BTreeSet<_> = rulecheck(&bot, &events)
        .into_iter()
        .filter(|(r, _)| r != "test.every_event")
        .collect();
    assert_eq!(live, replay);
}

#[test]
fn sigterm_stops_cleanly() {
    let api = StandIn::start();
    api.add([event("e-1", "project.updated", now() - 100)]);
    let bot = Bot::new(&api, false, "");
    let mut child = bot.spawn();
    let lines = Lines::of(&mut child);
    assert!(lines.wait_for("poll committed", Duration::from_secs(20)));
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(lines.wait_for("watcher stopped", Duration::from_secs(2)));
    assert_eq!(bot.evaluated().len(), 1);
}

#[test]
fn a_full_state_disk_stops_with_a_clear_message_and_keeps_what_was_committed() {
    let api = StandIn::start();
    api.add([event("e-1", "project.updated", now() - 3_000)]);
    let bot = Bot::new(&api, false, "");
    bot.once();
    let size = std::fs::metadata(bot.state()).unwrap().len();
    // Many more events than fit in what the file may still grow by.
    let more: Vec<Value> = (0..3_000)
        .map(|i| {
            event(
                &format!("more-{i:05}-{}", "x".repeat(200)),
                "project.updated",
                now() - 2_000 + i % 900,
            )
        })
        .collect();
    api.add(more);
    let limit_blocks = (size + 64 * 1024) / 512 + 1;
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -f {limit_blocks}; exec \"$0\" \"$@\""))
        .arg(BIN)
        .args(["watch", "--once", "-c"])
        .arg(bot.config())
        .env("OPENAI_ADMIN_KEY", ADMIN_KEY)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("full") && stderr.contains("aw.db"),
        "{stderr}"
    );
    assert!(
        stderr.contains("nothing of the current poll was committed"),
        "{stderr}"
    );
    // What was committed before is intact, and the next run (with room)
    // evaluates the rest exactly once.
    assert_eq!(bot.evaluated().len(), 1);
    bot.once();
    assert_eq!(bot.evaluated().len(), 3_001);
}

#[test]
fn a_read_only_state_file_stops_with_a_clear_message() {
    let api = StandIn::start();
    api.add([event("e-1", "project.updated", now() - 100)]);
    let bot = Bot::new(&api, false, "");
    bot.once();
    api.add([event("e-2", "project.updated", now() - 50)]);
    set_mode(bot.dir.path(), 0o755);
    set_mode(&bot.dir.path().join("state"), 0o555);
    for f in std::fs::read_dir(bot.dir.path().join("state")).unwrap() {
        set_mode(&f.unwrap().path(), 0o444);
    }
    let mut cmd = as_unprivileged(bot.command(&["watch", "--once"]));
    let out = cmd.output().unwrap();
    set_mode(&bot.dir.path().join("state"), 0o755);
    for f in std::fs::read_dir(bot.dir.path().join("state")).unwrap() {
        set_mode(&f.unwrap().path(), 0o644);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("aw.db") && stderr.contains("cannot be written"),
        "{stderr}"
    );
    assert_eq!(bot.evaluated().len(), 1, "nothing changed");
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Root ignores file modes: run the command as `nobody` then.
fn as_unprivileged(cmd: Command) -> Command {
    let uid = String::from_utf8(Command::new("id").arg("-u").output().unwrap().stdout).unwrap();
    if uid.trim() != "0" {
        return cmd;
    }
    let mut wrapped = Command::new("setpriv");
    wrapped
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => wrapped.env(k, v),
            None => wrapped.env_remove(k),
        };
    }
    wrapped
}

#[test]
fn dry_run_prints_alerts_and_leaves_the_state_as_it_was() {
    let api = StandIn::start();
    api.add([event("e-1", "project.updated", now() - 100)]);
    let bot = Bot::new(&api, false, "");
    let out = bot
        .command(&["watch", "--once", "--dry-run"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout_alerts(&out).len(), 1);
    assert!(!bot.state().exists(), "no state file was made");
    bot.once();
    api.add([event("e-2", "project.updated", now() - 50)]);
    let out = bot
        .command(&["watch", "--once", "--dry-run"])
        .output()
        .unwrap();
    let printed = stdout_alerts(&out);
    assert_eq!(printed.len(), 1, "only what the real state has not seen");
    assert_eq!(printed[0]["event_id"], "e-2");
    assert_eq!(bot.evaluated().len(), 1, "the state file was not touched");
}

#[test]
fn export_writes_the_range_oldest_first_and_resumes_and_from_api_agrees() {
    let api = StandIn::start();
    let events = history(10, 3);
    api.add(events.clone());
    let bot = Bot::new(&api, true, "");
    let file = bot.dir.path().join("export.jsonl");
    let run = |args: &[&str]| {
        let out = bot.command(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let since = (now() - 11 * 86_400).to_string();
    run(&["export", "--since", &since, "-o", file.to_str().unwrap()]);
    let text = std::fs::read_to_string(&file).unwrap();
    let exported: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(ids(&exported), ids(&events));
    assert_eq!(exported.len(), events.len(), "no event twice");
    let times: Vec<i64> = exported
        .iter()
        .map(|e| e["effective_at"].as_i64().unwrap())
        .collect();
    assert!(times.is_sorted(), "oldest first");
    // An export cut short (the last line half written) is continued.
    let cut = text.len() * 2 / 3;
    std::fs::write(&file, &text[..cut]).unwrap();
    run(&["export", "--since", &since, "-o", file.to_str().unwrap()]);
    let again = std::fs::read_to_string(&file).unwrap();
    assert_eq!(again, text, "the continued export equals the whole one");

    // rulecheck --from-api gives the alerts of rulecheck on the exported file.
    let from_api = Command::new(env!("CARGO_BIN_EXE_rulecheck"))
        .arg("-c")
        .arg(bot.config())
        .args(["--from-api", "--since", &since, "--format", "jsonl"])
        .env("OPENAI_ADMIN_KEY", ADMIN_KEY)
        .output()
        .unwrap();
    assert!(
        from_api.status.success(),
        "{}",
        String::from_utf8_lossy(&from_api.stderr)
    );
    let on_file = Command::new(env!("CARGO_BIN_EXE_rulecheck"))
        .arg("-c")
        .arg(bot.config())
        .args(["--format", "jsonl"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(on_file.status.success());
    assert!(stdout_alerts(&on_file).len() > 5);
    assert_eq!(
        String::from_utf8_lossy(&from_api.stdout),
        String::from_utf8_lossy(&on_file.stdout)
    );
}

#[test]
fn the_bundled_demo_prints_the_alerts_of_rulecheck() {
    // The demo as a fresh clone has it: its config, the sample, the pack.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("examples")).unwrap();
    for f in ["demo.yaml", "sample-events.jsonl"] {
        std::fs::copy(
            repo().join("examples").join(f),
            dir.path().join("examples").join(f),
        )
        .unwrap();
    }
    std::os::unix::fs::symlink(repo().join("rules"), dir.path().join("rules")).unwrap();
    let out = Command::new(BIN)
        .args(["watch", "-c", "examples/demo.yaml", "--once"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let demo: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    let rc = Command::new(env!("CARGO_BIN_EXE_rulecheck"))
        .args([
            "-c",
            "examples/demo.yaml",
            "--format",
            "jsonl",
            "examples/sample-events.jsonl",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        rc.status.success(),
        "{}",
        String::from_utf8_lossy(&rc.stderr)
    );
    let expected: Vec<String> = String::from_utf8_lossy(&rc.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(demo.len() > 20);
    assert_eq!(
        demo.iter().collect::<BTreeSet<_>>(),
        expected.iter().collect::<BTreeSet<_>>(),
        "the live demo prints exactly rulecheck's alert lines"
    );
    assert!(dir.path().join("examples/demo-state.db").exists());
    // A second run has nothing new.
    let out = Command::new(BIN)
        .args(["watch", "-c", "examples/demo.yaml", "--once"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
}

#[test]
fn a_cursor_that_does_not_advance_is_walked_by_time() {
    let api = StandIn::start();
    let t = now() - 2_000;
    // Two events a second over 175 seconds: several pages.
    let events: Vec<Value> = (0..350)
        .map(|i| event(&format!("e-{i:03}"), "project.updated", t + i / 2))
        .collect();
    api.add(events.clone());
    api.set_stuck_cursor(true);
    let bot = Bot::new(&api, false, "    tenant_events: false\n");
    let out = bot.once();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cursor did not advance"), "{stderr}");
    assert!(
        api.requests()
            .iter()
            .any(|r| r.param("effective_at[lte]").is_some()),
        "the rest of the window was asked for by time"
    );
    assert_eq!(bot.evaluated().len(), events.len());
}

#[test]
fn an_order_that_is_not_newest_first_still_reads_everything() {
    let api = StandIn::start();
    let t = now() - 2_000;
    let events: Vec<Value> = (0..260)
        .map(|i| event(&format!("e-{i:03}"), "project.updated", t + i))
        .collect();
    api.add(events.clone());
    api.set_oldest_first(true);
    let bot = Bot::new(&api, false, "    tenant_events: false\n");
    let out = bot.once();
    assert!(String::from_utf8_lossy(&out.stderr).contains("newest first"));
    assert_eq!(bot.evaluated().len(), events.len());
}

#[test]
fn filters_are_pushed_down_to_the_api_with_repeated_keys() {
    let api = StandIn::start();
    let t = now() - 1_000;
    let mut keep = event("keep", "api_key.created", t);
    keep["project"] = json!({"id": "proj_a", "name": "A"});
    let mut other_project = event("other", "api_key.created", t);
    other_project["project"] = json!({"id": "proj_z", "name": "Z"});
    let mut tenant = event("tenant", "tenant.sso_connection.deleted", t);
    tenant["project"] = json!({"id": "proj_a", "name": "A"});
    api.add([
        keep,
        other_project,
        tenant,
        event("skip", "project.updated", t),
    ]);
    let bot = Bot::new(
        &api,
        false,
        "    project_ids: [proj_a, proj_b]\n    event_types: [api_key.created, tenant.sso_connection.deleted]\n    page_size: 7\n",
    );
    bot.once();
    let evaluated: BTreeSet<String> = bot.evaluated().into_keys().collect();
    assert_eq!(
        evaluated,
        BTreeSet::from(["keep".to_owned(), "tenant".to_owned()])
    );
    let requests = api.requests();
    let plain = requests
        .iter()
        .find(|r| r.param("tenant_only").is_none())
        .unwrap();
    assert_eq!(plain.all("project_ids[]"), ["proj_a", "proj_b"]);
    assert_eq!(plain.all("event_types[]"), ["api_key.created"]);
    assert_eq!(plain.param("limit"), Some("7"));
    assert!(
        plain.raw_query.contains("effective_at%5Bgte%5D="),
        "{}",
        plain.raw_query
    );
    let tenant = requests
        .iter()
        .find(|r| r.param("tenant_only") == Some("true"))
        .unwrap();
    assert_eq!(
        tenant.all("event_types[]"),
        ["tenant.sso_connection.deleted"]
    );
}
