//! Alerts delivered for real: the watcher against the audit log API
//! stand-in, sending to a Slack stand-in (webhook and bot), a real SMTP
//! server (aiosmtpd) read back with a real mail parser, and a JSON webhook;
//! failures of each, `kill -9`, and escaping of hostile event text.

mod common;
mod serve;
mod slack;
mod standin;
mod support;
mod webhook;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auditwatch::alert::Alert;
use auditwatch::store::{SqliteStore, Store};
use serde_json::{Value, json};
use slack::{SlackStandin, Via};
use standin::{ADMIN_KEY, StandIn};
use support::{SmtpOptions, SmtpServer};
use webhook::WebhookStandin;

const BIN: &str = env!("CARGO_BIN_EXE_auditwatch");
const RULECHECK: &str = env!("CARGO_BIN_EXE_rulecheck");

/// Text no message may carry raw: mentions, links, formatting, markup and
/// a right-to-left override.
const HOSTILE: &str = "<!channel> <@U0BADBAD> <#C0BAD|x> <http://evil.example|click> *bold* _it_ ~gone~ `code` <script>alert(1)</script> & \u{202E}gpj.exe";

/// Three rules, one per severity route. The high one quiets repeats of the
/// same actor for an hour.
const RULES: &str = "\
id: t.allowlist_deleted
title: Allowlist deleted
severity: critical
description: An allowlist was deleted.
match: {type: ip_allowlist.deleted}
summary: \"{{ actor.email }} deleted an allowlist from {{ actor.user_agent }}\"
---
id: t.key_created
title: Key created
severity: high
description: A key was created.
match: {type: api_key.created}
suppress: {window: 1h, key: [actor.email]}
summary: \"{{ actor.email }} created a key in {{ project.name }}\"
---
id: t.login
title: Login
severity: info
match: {type: login.succeeded}
summary: \"{{ actor.email }} logged in\"
";

fn now() -> i64 {
    auditwatch::time::now()
}

/// An event of the shape the API returns, with hostile text in the user
/// agent and the project name.
fn event(id: &str, ty: &str, at: i64, email: &str) -> Value {
    json!({
        "object": "organization.audit_log",
        "id": id,
        "type": ty,
        "effective_at": at,
        "project": {"id": "proj_1", "name": format!("Prod {HOSTILE}")},
        "actor": {"type": "session", "session": {
            "user": {"id": format!("user-{email}"), "email": email},
            "ip_address": "198.51.100.7",
            "user_agent": format!("Mozilla/5.0 {HOSTILE}"),
            "ip_address_details": {"country": "US", "city": "Portland", "region": "Oregon", "asn": "16509"}
        }},
        ty: {"id": format!("obj-{id}")}
    })
}

/// The config lines of a Slack bot destination `bot` with `token`.
fn bot_line(slack: &SlackStandin, token: &str) -> String {
    format!(
        "  bot: {{type: slack, bot_token: \"{token}\", channel: {}, api_url: \"{}\"}}\n",
        slack::CHANNEL,
        slack.api_url()
    )
}

/// The config lines of a Slack webhook destination `hook`.
fn hook_line(slack: &SlackStandin) -> String {
    format!(
        "  hook: {{type: slack, webhook_url: \"{}\"}}\n",
        slack.webhook_url()
    )
}

const BOT_TOKEN_VAR: &str = "${SLACK_BOT_TOKEN}";

/// Where the destinations of a test live.
#[derive(Default)]
struct Places<'a> {
    smtp: Option<&'a SmtpServer>,
    /// `destinations:` and `routing:` lines.
    destinations: String,
    routing: String,
}

struct Bot {
    dir: tempfile::TempDir,
}

impl Bot {
    fn new(api: &StandIn, places: &Places<'_>) -> Bot {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("rules")).unwrap();
        std::fs::write(dir.path().join("rules/t.yaml"), RULES).unwrap();
        let smtp = places.smtp.map_or(String::new(), |s| {
            format!(
                "smtp: {{host: 127.0.0.1, port: {}, tls: none, from: \"auditwatch <aw@example.com>\"}}\n",
                s.port
            )
        });
        let config = format!(
            "source:\n  openai:\n    admin_key: ${{OPENAI_ADMIN_KEY}}\n    base_url: {}\n    poll_interval: 1s\n    lookback: 15m\n    start: 2h\n    timeout: 5s\n\
             rules: [rules/]\nbusiness_hours: {{timezone: America/New_York, days: Mon-Fri, hours: \"09:00-18:00\"}}\n\
             state: {{path: state/aw.db}}\n{smtp}destinations:\n{}routing:\n{}",
            api.base_url(),
            places.destinations,
            places.routing,
        );
        std::fs::write(dir.path().join("auditwatch.yaml"), config).unwrap();
        Bot { dir }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("auditwatch.yaml")
    }

    /// `rulecheck --render <args…>` over `events` with this bot's config: one
    /// JSON line per alert.
    fn render(&self, events: &[Value], args: &[&str]) -> Vec<Value> {
        let file = self.dir.path().join("events.jsonl");
        std::fs::write(
            &file,
            events.iter().map(|e| format!("{e}\n")).collect::<String>(),
        )
        .unwrap();
        let mut cmd = assert_cmd::Command::new(RULECHECK);
        cmd.arg("--render")
            .args(args)
            .arg("-c")
            .arg(self.config())
            .arg(&file)
            .env("RUST_BACKTRACE", "0");
        common::run(&mut cmd).status(0).alerts()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .arg("-c")
            .arg(self.config())
            .env("OPENAI_ADMIN_KEY", ADMIN_KEY)
            .env("SLACK_BOT_TOKEN", slack::BOT_TOKEN)
            .env("RUST_LOG", "auditwatch=debug")
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// A running watcher whose log lines are collected, with the time each
    /// was read.
    fn spawn(&self) -> Running {
        self.spawn_with(&[])
    }

    /// [`Bot::spawn`] with more environment variables.
    fn spawn_with(&self, env: &[(&str, &str)]) -> Running {
        let mut child = self
            .command(&["watch"])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push((Instant::now(), line));
            }
        });
        Running { child, lines }
    }

    fn store(&self) -> SqliteStore {
        SqliteStore::open(&self.dir.path().join("state/aw.db")).unwrap()
    }

    fn alerts(&self) -> Vec<Alert> {
        self.store().alerts().unwrap()
    }
}

struct Running {
    child: Child,
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Running {
    fn log(&self) -> String {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// When the first line containing `text` was read.
    fn first(&self, text: &str) -> Option<Instant> {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .find(|(_, l)| l.contains(text))
            .map(|(t, _)| *t)
    }

    fn wait_log(&self, text: &str, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.first(text).is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn kill9(mut self) -> String {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        self.log()
    }

    fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let end = Instant::now() + Duration::from_secs(40);
        while Instant::now() < end {
            if self.child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.child.try_wait().unwrap().is_none() {
            self.child.kill().unwrap();
            panic!("the watcher did not stop on SIGTERM:\n{}", self.log());
        }
        std::thread::sleep(Duration::from_millis(100));
        self.log()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every string in a JSON value, with the `type` of the object holding it.
fn strings<'a>(v: &'a Value, kind: Option<&'a str>, out: &mut Vec<(Option<&'a str>, &'a str)>) {
    match v {
        Value::String(s) => out.push((kind, s)),
        Value::Array(items) => items.iter().for_each(|i| strings(i, kind, out)),
        Value::Object(map) => {
            let kind = map.get("type").and_then(Value::as_str).or(kind);
            for (k, v) in map {
                if k != "type" {
                    strings(v, kind, out);
                }
            }
        }
        _ => {}
    }
}

/// Checks that a Slack message carries no raw mention, link, formatting or
/// bidi override from the hostile text.
fn assert_slack_escaped(body: &Value) {
    let mut all = Vec::new();
    strings(body, None, &mut all);
    for (kind, s) in all {
        for bad in ["<!", "<@", "<#", "<http", "<script", "\u{202E}"] {
            assert!(!s.contains(bad), "raw {bad:?} in a Slack text: {s}");
        }
        if kind == Some("mrkdwn") || kind.is_none() {
            // Our own labels are bold; no event text is.
            for bad in ["*bold*", "_it_", "~gone~", "`code`"] {
                assert!(!s.contains(bad), "raw mrkdwn {bad:?} in: {s}");
            }
        }
    }
    let text = serde_json::to_string(body).unwrap();
    assert!(
        text.contains("&lt;!channel&gt;"),
        "the hostile text is shown, escaped: {text}"
    );
}

fn assert_html_escaped(html: &str) {
    assert!(!html.contains("<script>"), "raw markup in the HTML: {html}");
    assert!(!html.contains("\u{202E}"), "raw bidi override in the HTML");
    assert!(
        html.contains("&lt;script&gt;"),
        "escaped markup shown: {html}"
    );
}

#[test]
fn slack_messages_are_block_kit_that_slack_accepts_with_event_text_escaped() {
    let api = StandIn::start();
    let t = now() - 600;
    api.add([
        event("ev-1", "ip_allowlist.deleted", t, "mallory@evil.example"),
        event("ev-2", "api_key.created", t + 1, "bob@example.com"),
    ]);
    let slack = SlackStandin::start();
    let places = Places {
        destinations: hook_line(&slack) + &*bot_line(&slack, BOT_TOKEN_VAR),
        routing: "  default: [hook, bot]\n".into(),
        ..Places::default()
    };
    let bot = Bot::new(&api, &places);
    let out = bot.run(&["watch", "--once"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let messages = slack.wait_for(4, Duration::from_secs(10));
    assert_eq!(messages.len(), 4, "two alerts to two destinations");
    let bodies: Vec<Value> = messages.iter().map(|m| m.body.clone()).collect();
    support::check_slack_payloads(&bodies);
    for m in &messages {
        assert_slack_escaped(&m.body);
        let blocks = m.body["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "header");
        let header = blocks[0]["text"]["text"].as_str().unwrap();
        assert!(
            header.contains("[CRITICAL] Allowlist deleted")
                || header.contains("[HIGH] Key created"),
            "{header}"
        );
        let fields: Vec<&str> = blocks
            .iter()
            .filter_map(|b| b["fields"].as_array())
            .flatten()
            .filter_map(|f| f["text"].as_str())
            .collect();
        for label in ["*Who*", "*From*", "*Project*", "*Event*", "*When*"] {
            assert!(fields.contains(&label), "{label} in {fields:?}");
        }
        // The time in the business-hours zone and in UTC.
        assert!(
            fields
                .iter()
                .any(|f| f.contains("UTC)") && (f.contains("EST") || f.contains("EDT"))),
            "{fields:?}"
        );
        assert!(
            fields
                .iter()
                .any(|f| f.contains("198.51.100.7 (Portland, Oregon, US)")),
            "{fields:?}"
        );
        let fallback = m.body["text"].as_str().unwrap();
        assert!(
            fallback.starts_with("[CRITICAL]") || fallback.starts_with("[HIGH]"),
            "{fallback}"
        );
    }
    assert_eq!(messages.iter().filter(|m| m.via == Via::Webhook).count(), 2);
    let authorized: Vec<_> = slack
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("chat.postMessage"))
        .collect();
    assert!(
        authorized.iter().all(
            |r| r.authorization.as_deref() == Some(&format!("Bearer {}", slack::BOT_TOKEN)[..])
        )
    );
    assert_eq!(slack.too_fast(), 0, "one message per second per channel");
    // Nothing secret in the log.
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        !log.contains(slack::BOT_TOKEN) && !log.contains("secretpart"),
        "{log}"
    );
}

#[test]
fn slack_outages_429_and_500_delay_alerts_but_lose_none() {
    let api = StandIn::start();
    let t = now() - 600;
    let slack = SlackStandin::start();
    // Down for the first 10 seconds.
    slack.outage_for(Duration::from_secs(10));
    api.add((0..4).map(|i| {
        event(
            &format!("ev-{i}"),
            "ip_allowlist.deleted",
            t + i,
            &format!("u{i}@example.com"),
        )
    }));
    let places = Places {
        destinations: bot_line(&slack, BOT_TOKEN_VAR),
        routing: "  default: [bot]\n".into(),
        ..Places::default()
    };
    let bot = Bot::new(&api, &places);
    let running = bot.spawn();
    let after_outage = slack.wait_for(4, Duration::from_secs(60));
    assert_eq!(
        after_outage.len(),
        4,
        "every alert arrives after the outage:\n{}",
        running.log()
    );
    // Then a 429 asking for 2 s, and a 500, for two new alerts.
    slack.fail_with_429(1, 2);
    slack.fail_with_500(1);
    api.add((4..6).map(|i| {
        event(
            &format!("ev-{i}"),
            "ip_allowlist.deleted",
            now() - 60 + i,
            &format!("u{i}@example.com"),
        )
    }));
    let messages = slack.wait_for(6, Duration::from_secs(60));
    let log = running.stop();
    assert_eq!(messages.len(), 6, "every alert arrives:\n{log}");
    let mut ids: Vec<String> = messages
        .iter()
        .map(|m| m.body["blocks"].to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6, "no alert twice");
    let requests = slack.requests();
    assert!(
        requests.iter().filter(|r| r.status == 503).count() >= 2,
        "retried through the outage"
    );
    let limited = requests
        .iter()
        .position(|r| r.status == 429)
        .expect("a 429 was answered");
    let next = &requests[limited + 1];
    assert!(
        next.at.duration_since(requests[limited].at) >= Duration::from_millis(1900),
        "Retry-After was honoured"
    );
    assert!(requests.iter().any(|r| r.status == 500));
    assert!(log.contains("delivery failed; it stays queued"), "{log}");
    assert_eq!(slack.too_fast(), 0);
    let left = bot.store().deliveries(false).unwrap();
    assert!(left.is_empty(), "nothing left in the outbox: {left:?}");
}

#[test]
fn a_bad_token_fails_once_clearly_and_is_kept_as_failed() {
    let api = StandIn::start();
    api.add([event(
        "ev-1",
        "ip_allowlist.deleted",
        now() - 600,
        "a@example.com",
    )]);
    let slack = SlackStandin::start();
    let places = Places {
        destinations: bot_line(&slack, "xoxb-wrong-token-1234"),
        routing: "  default: [bot]\n".into(),
        ..Places::default()
    };
    let bot = Bot::new(&api, &places);
    let running = bot.spawn();
    assert!(
        running.wait_log("kept as failed", Duration::from_secs(20)),
        "{}",
        running.log()
    );
    // Several polls and worker rounds later, still one request.
    std::thread::sleep(Duration::from_secs(3));
    let log = running.stop();
    assert_eq!(
        slack.requests().len(),
        1,
        "a refused token is not retried:\n{log}"
    );
    assert!(log.contains("invalid_auth: check `bot_token`"), "{log}");
    assert!(
        !log.contains("xoxb-wrong-token-1234"),
        "the token is never logged"
    );
    let failed = bot.store().deliveries(true).unwrap();
    assert_eq!(failed.len(), 1);
    // `outbox` shows it and puts it back in the queue.
    let out = bot.run(&["outbox", "--failed"]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains("invalid_auth"), "{listed}");
    let out = bot.run(&["outbox", "--retry", "all"]);
    assert!(out.status.success());
    assert_eq!(bot.store().deliveries(true).unwrap().len(), 0);
    assert_eq!(bot.store().deliveries(false).unwrap().len(), 1);
}

#[test]
fn repeats_go_as_replies_in_the_thread_of_their_alert() {
    let api = StandIn::start();
    let t = now() - 900;
    // The same actor creates three keys within the hour: one alert, two
    // repeats; another actor's key is an alert of its own.
    api.add([
        event("ev-1", "api_key.created", t, "bob@example.com"),
        event("ev-2", "api_key.created", t + 60, "bob@example.com"),
        event("ev-3", "api_key.created", t + 120, "eve@example.com"),
        event("ev-4", "api_key.created", t + 180, "bob@example.com"),
    ]);
    let slack = SlackStandin::start();
    let hook = WebhookStandin::start();
    let places = Places {
        destinations: bot_line(&slack, BOT_TOKEN_VAR)
            + &*format!(
                "  siem: {{type: webhook, url: \"{}\"}}
",
                hook.url()
            ),
        routing: "  default: [bot, siem]\n".into(),
        ..Places::default()
    };
    let bot = Bot::new(&api, &places);
    let out = bot.run(&["watch", "--once"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let messages = slack.wait_for(4, Duration::from_secs(10));
    assert_eq!(messages.len(), 4, "two alerts and two replies");
    let top: Vec<_> = messages.iter().filter(|m| m.thread_ts.is_none()).collect();
    let replies: Vec<_> = messages.iter().filter(|m| m.thread_ts.is_some()).collect();
    assert_eq!(top.len(), 2);
    assert_eq!(replies.len(), 2);
    let bob = top
        .iter()
        .find(|m| m.body.to_string().contains("bob@example.com"))
        .unwrap();
    for r in &replies {
        assert_eq!(r.thread_ts, bob.ts, "replies go under bob's alert");
        assert!(r.text().unwrap().starts_with("Repeat at"), "{:?}", r.text());
    }
    support::check_slack_payloads(&messages.iter().map(|m| m.body.clone()).collect::<Vec<_>>());
    // The webhook takes alerts only, not repeats.
    let received = hook.wait_for(2, Duration::from_secs(5));
    assert_eq!(received.len(), 2);
}

#[test]
fn the_alerts_of_one_incident_share_a_slack_thread() {
    let api = StandIn::start();
    let t = now() - 900;
    // Bob creates a key, then deletes an allowlist: two rules, one actor,
    // one incident. Eve's allowlist deletion is an incident of its own, and
    // so is bob's login two hours later (well past the hour).
    api.add([
        event("ev-1", "api_key.created", t - 7200, "bob@example.com"),
        event("ev-2", "ip_allowlist.deleted", t, "bob@example.com"),
        event("ev-3", "ip_allowlist.deleted", t + 30, "eve@example.com"),
        event("ev-4", "api_key.created", t + 60, "bob@example.com"),
    ]);
    let slack = SlackStandin::start();
    let places = Places {
        destinations: bot_line(&slack, BOT_TOKEN_VAR),
        routing: "  default: [bot]\n".into(),
        ..Places::default()
    };
    let bot = Bot::new(&api, &places);
    std::fs::write(
        bot.config(),
        std::fs::read_to_string(bot.config())
            .unwrap()
            .replace("start: 2h", "start: 3h"),
    )
    .unwrap();
    let out = bot.run(&["watch", "--once"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let messages = slack.wait_for(4, Duration::from_secs(10));
    assert_eq!(messages.len(), 4);
    let about = |id: &str| {
        messages
            .iter()
            .find(|m| {
                m.body.to_string().contains(&format!("obj-{id}")) || m.body.to_string().contains(id)
            })
            .unwrap_or_else(|| panic!("no message about {id}: {messages:?}"))
    };
    let (early, first, eve, second) = (about("ev-1"), about("ev-2"), about("ev-3"), about("ev-4"));
    assert!(early.thread_ts.is_none() && first.thread_ts.is_none() && eve.thread_ts.is_none());
    assert_eq!(second.thread_ts, first.ts, "in the incident's thread");
    assert_eq!(
        second.body["reply_broadcast"],
        json!(true),
        "and in the channel: {}",
        second.body
    );
    assert!(
        second.text().unwrap().contains("Key created"),
        "a full alert, not a repeat line"
    );
    support::check_slack_payloads(&messages.iter().map(|m| m.body.clone()).collect::<Vec<_>>());
    // rulecheck --incidents shows the same grouping.
    let alerts = SqliteStore::open(&bot.dir.path().join("state/aw.db"))
        .unwrap()
        .alerts()
        .unwrap();
    let incident = |id: &str| {
        alerts
            .iter()
            .find(|a| a.event_id == id)
            .and_then(|a| a.facts.incident.clone())
            .unwrap()
    };
    assert_eq!(incident("ev-2"), "incident-ev-2");
    assert_eq!(incident("ev-4"), "incident-ev-2");
    assert_eq!(incident("ev-3"), "incident-ev-3");
    assert_eq!(incident("ev-1"), "incident-ev-1");
}

#[test]
fn email_alerts_and_digests_over_smtp() {
    let api = StandIn::start();
    let t = now() - 600;
    api.add([
        event("ev-1", "ip_allowlist.deleted", t, "mallory@evil.example"),
        event("ev-2", "login.succeeded", t + 1, "a@example.com"),
        event("ev-3", "login.succeeded", t + 2, "b@example.com"),
        event("ev-4", "api_key.created", t + 3, "c@example.com"),
    ]);
    // The first message gets 451 (try again later).
    let smtp = SmtpServer::start(SmtpOptions {
        fail_first: 1,
        ..SmtpOptions::default()
    });
    let places = Places {
        smtp: Some(&smtp),
        destinations: "  mail: {type: email, to: [oncall@example.com]}\n  digest: {type: email_digest, to: [security@example.com], every: 3s}\n".into(),
        routing: "  default: [mail]\n  severity:\n    info: [digest]\n    high: [digest]\n".into(),
    };
    let bot = Bot::new(&api, &places);
    let running = bot.spawn();
    let mails = smtp.wait_for(2, Duration::from_secs(40));
    let log = running.stop();
    assert_eq!(
        mails.len(),
        2,
        "one alert mail and one digest:\n{log}\n{:?}",
        smtp.log()
    );
    assert!(
        smtp.log().iter().any(|l| l.starts_with("451")),
        "{:?}",
        smtp.log()
    );
    let alert = mails
        .iter()
        .find(|m| m.to == ["oncall@example.com"])
        .unwrap();
    assert_eq!(alert.subject, "[CRITICAL] Allowlist deleted");
    assert!(
        alert.content_type.starts_with("multipart/alternative"),
        "{}",
        alert.content_type
    );
    assert_eq!(alert.parts, ["text/plain", "text/html"]);
    let html = alert.html.as_deref().unwrap();
    assert_html_escaped(html);
    assert!(
        html.contains("mallory@evil.example") && html.contains("Portland"),
        "{html}"
    );
    let text = alert.text.as_deref().unwrap();
    assert!(text.contains("Who: mallory@evil.example"), "{text}");
    assert!(
        text.contains("\\u{202e}"),
        "bidi override made visible: {text}"
    );
    let digest = mails
        .iter()
        .find(|m| m.to == ["security@example.com"])
        .unwrap();
    assert!(
        digest
            .subject
            .starts_with("auditwatch digest: 3 alerts (1 high, 2 info)"),
        "{}",
        digest.subject
    );
    let dtext = digest.text.as_deref().unwrap();
    let high = dtext.find("== HIGH (1) ==").expect(dtext);
    let info = dtext.find("== INFO (2) ==").expect(dtext);
    assert!(high < info, "most severe first: {dtext}");
    assert!(
        dtext.contains("Login [t.login]: 2") && dtext.contains("a@example.com logged in"),
        "{dtext}"
    );
    assert_html_escaped(digest.html.as_deref().unwrap());
    assert!(bot.store().deliveries(false).unwrap().is_empty());
}

#[test]
fn the_mails_of_one_incident_form_one_thread() {
    let api = StandIn::start();
    let t = now() - 600;
    let events = [
        event("ev-1", "ip_allowlist.deleted", t, "mallory@evil.example"),
        event("ev-2", "api_key.created", t + 60, "mallory@evil.example"),
        event("ev-3", "ip_allowlist.deleted", t + 120, "eve@example.com"),
    ];
    api.add(events.clone());
    let smtp = SmtpServer::start(SmtpOptions::default());
    let places = Places {
        smtp: Some(&smtp),
        destinations: "  mail: {type: email, to: [oncall@example.com]}\n".into(),
        routing: "  default: [mail]\n".into(),
    };
    let bot = Bot::new(&api, &places);
    let out = bot.run(&["watch", "--once"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mails = smtp.wait_for(3, Duration::from_secs(20));
    assert_eq!(mails.len(), 3);
    let about = |who: &str, subject: &str| {
        mails
            .iter()
            .find(|m| m.subject.contains(subject) && m.text.as_deref().unwrap_or("").contains(who))
            .unwrap_or_else(|| panic!("no mail about {who} / {subject}: {mails:?}"))
    };
    let first = about("mallory@evil.example", "Allowlist deleted");
    let second = about("mallory@evil.example", "Key created");
    let other = about("eve@example.com", "Allowlist deleted");
    let root = "<incident-ev-1@auditwatch>";
    assert_eq!(first.message_id.as_deref(), Some(root));
    assert_eq!(first.in_reply_to, None);
    assert_eq!(second.in_reply_to.as_deref(), Some(root));
    assert_eq!(second.references.as_deref(), Some(root));
    assert_eq!(
        other.message_id.as_deref(),
        Some("<incident-ev-3@auditwatch>")
    );
    assert_eq!(other.in_reply_to, None);
    // The later mail of an incident carries its timeline; a first does not.
    let text = second.text.as_deref().unwrap();
    let timeline = text
        .find("Incident timeline (2 alerts):")
        .unwrap_or_else(|| panic!("no timeline: {text}"));
    let rows: Vec<&str> = text[timeline..].lines().skip(1).take(2).collect();
    assert!(rows[0].contains("Allowlist deleted"), "{text}");
    assert!(
        rows[1].contains("Key created") && rows[1].ends_with("<- this alert"),
        "{text}"
    );
    let html = second.html.as_deref().unwrap();
    assert!(html.contains("Incident timeline (2 alerts)"), "{html}");
    for m in [first, other] {
        assert!(
            !m.text.as_deref().unwrap().contains("Incident timeline"),
            "{m:?}"
        );
    }
    // rulecheck renders the same mails, timeline included.
    let rendered = bot.render(&events, &["email"]);
    let lines = |t: &str| t.replace("\r\n", "\n").trim_end().to_owned();
    let second_render = rendered
        .iter()
        .find(|r| r["event_id"] == "ev-2")
        .expect("ev-2 rendered");
    assert_eq!(
        lines(second_render["email"]["text"].as_str().unwrap()),
        lines(text)
    );
}

#[test]
fn a_rejected_recipient_is_kept_failed_not_retried() {
    let api = StandIn::start();
    api.add([event(
        "ev-1",
        "ip_allowlist.deleted",
        now() - 600,
        "a@example.com",
    )]);
    let smtp = SmtpServer::start(SmtpOptions {
        reject: Some("nobody".into()),
        ..SmtpOptions::default()
    });
    let places = Places {
        smtp: Some(&smtp),
        destinations: "  mail: {type: email, to: [nobody@example.com]}\n".into(),
        routing: "  default: [mail]\n".into(),
    };
    let bot = Bot::new(&api, &places);
    let out = bot.run(&["watch", "--once"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("refused the message"), "{log}");
    let failed = bot.store().deliveries(true).unwrap();
    assert_eq!(failed.len(), 1, "{log}");
    assert!(
        failed[0].last_error.as_deref().unwrap().contains("550"),
        "{failed:?}"
    );
    assert_eq!(
        smtp.log().iter().filter(|l| l.starts_with("550")).count(),
        1
    );
    assert!(smtp.messages().is_empty());
}

#[test]
fn webhook_bodies_follow_the_schema_with_secret_headers_and_retries() {
    let api = StandIn::start();
    api.add([event(
        "ev-1",
        "ip_allowlist.deleted",
        now() - 600,
        "a@example.com",
    )]);
    let hook = WebhookStandin::start();
    hook.fail_with_500(1);
    let places = Places {
        destinations: format!(
            "  siem: {{type: webhook, url: \"{}\", headers: {{Authorization: \"Bearer ${{SIEM_TOKEN}}\"}}}}\n",
            hook.url()
        ),
        routing: "  default: [siem]\n".into(),
        ..Places::default()
    };
    let bot = Bot::new(&api, &places);
    let running = bot.spawn_with(&[("SIEM_TOKEN", "siem-secret-42")]);
    let got = hook.wait_for(1, Duration::from_secs(30));
    let log = running.stop();
    assert_eq!(got.len(), 1, "{log}");
    let r = got.last().unwrap();
    assert_eq!(r.method, "POST");
    assert_eq!(r.header("authorization"), Some("Bearer siem-secret-42"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let b = &r.body;
    assert_eq!(b["schema"], "auditwatch.alert.v1");
    assert_eq!(b["alert"]["rule_id"], "t.allowlist_deleted");
    assert_eq!(b["alert"]["severity"], "critical");
    assert_eq!(b["alert"]["event_ids"], json!(["ev-1"]));
    assert_eq!(b["facts"]["actor"], "a@example.com");
    assert_eq!(b["facts"]["event_type"], "ip_allowlist.deleted");
    assert_eq!(b["routing"]["destination"], "siem");
    assert_eq!(b["routing"]["destinations"], json!(["siem"]));
    assert_eq!(b["delivery"]["attempt"], 2, "the 500 was retried");
    assert!(b["delivery"]["queued_at"].as_str().unwrap().ends_with('Z'));
    assert!(!log.contains("siem-secret-42"), "{log}");
}

#[test]
fn rulecheck_renders_exactly_what_the_watcher_sends() {
    let api = StandIn::start();
    let t = now() - 600;
    let events = [
        event("ev-1", "ip_allowlist.deleted", t, "mallory@evil.example"),
        event("ev-2", "api_key.created", t + 1, "bob@example.com"),
    ];
    api.add(events.clone());
    let slack = SlackStandin::start();
    let places = Places {
        destinations: format!(
            "  hook: {{type: slack, webhook_url: \"{}\"}}\n",
            slack.webhook_url()
        ),
        routing: "  default: [hook]\n".into(),
        ..Places::default()
    };
    let bot = Bot::new(&api, &places);
    assert!(bot.run(&["watch", "--once"]).status.success());
    let sent = slack.wait_for(2, Duration::from_secs(10));
    let rendered = bot.render(&events, &["slack", "--routes"]);
    assert_eq!(rendered.len(), 2);
    for (r, s) in rendered.iter().zip(&sent) {
        assert_eq!(r["destinations"], json!(["hook"]));
        assert_eq!(r["slack"]["blocks"], s.body["blocks"], "the same blocks");
        assert_eq!(r["slack"]["text"], s.body["text"]);
    }
    // Email and webhook renders escape the same way.
    let first = &bot.render(&events, &["email"])[0];
    assert_eq!(first["email"]["subject"], "[CRITICAL] Allowlist deleted");
    assert_html_escaped(first["email"]["html"].as_str().unwrap());
}

/// The whole path: alerts routed by severity to a Slack webhook, a Slack
/// bot, email and a digest, with Slack and SMTP failures and a `kill -9`
/// in the middle; every alert reaches every destination it was routed to.
#[test]
fn every_alert_reaches_every_destination_across_failures_and_kill_9() {
    let api = StandIn::start();
    let t = now() - 1200;
    let mut events = Vec::new();
    for i in 0..4 {
        events.push(event(
            &format!("crit-{i}"),
            "ip_allowlist.deleted",
            t + i,
            &format!("c{i}@example.com"),
        ));
    }
    for i in 0..4 {
        // One actor: one alert and three repeats, threaded on the bot.
        events.push(event(
            &format!("high-{i}"),
            "api_key.created",
            t + 10 + i * 30,
            "h@example.com",
        ));
    }
    for i in 0..5 {
        events.push(event(
            &format!("info-{i}"),
            "login.succeeded",
            t + 200 + i,
            &format!("i{i}@example.com"),
        ));
    }
    api.add(events);
    let slack = SlackStandin::start();
    slack.fail_with_429(1, 1);
    slack.fail_with_500(2);
    let smtp = SmtpServer::start(SmtpOptions {
        fail_first: 2,
        ..SmtpOptions::default()
    });
    let places = Places {
        smtp: Some(&smtp),
        destinations: hook_line(&slack) + &*bot_line(&slack, BOT_TOKEN_VAR) + "  mail: {type: email, to: [oncall@example.com]}\n  digest: {type: email_digest, to: [security@example.com], every: 4s}\n",
        routing: "  default: [hook]\n  severity:\n    critical: [hook, bot, mail]\n    high: [bot, mail]\n    info: [digest]\n".into(),
    };
    let bot = Bot::new(&api, &places);

    let first = bot.spawn();
    assert!(
        first.wait_log("poll committed", Duration::from_secs(20)),
        "{}",
        first.log()
    );
    let committed = first.first("poll committed").unwrap();
    // Killed while deliveries are under way.
    slack.wait_for(2, Duration::from_secs(20));
    let log1 = first.kill9();
    let second = bot.spawn();
    // Wait until every alert has reached every destination it goes to.
    let delivered = |messages: &[slack::SlackMessage], mails: &[support::Mail]| {
        let has = |via_hook: bool, id: &str| {
            messages.iter().any(|m| {
                (m.via == Via::Webhook) == via_hook
                    && m.thread_ts.is_none()
                    && m.body.to_string().contains(&format!("event {id}"))
            })
        };
        let mailed = |id: &str| {
            mails.iter().any(|m| {
                m.text.as_deref().is_some_and(|t| {
                    t.contains(&format!("Event: {id}\n")) || t.contains(&format!("Event: {id}\r\n"))
                })
            })
        };
        let digested: String = mails
            .iter()
            .filter(|m| m.to == ["security@example.com"])
            .filter_map(|m| m.text.clone())
            .collect();
        (0..4).all(|i| {
            let id = format!("crit-{i}");
            has(true, &id) && has(false, &id) && mailed(&id)
        }) && has(false, "high-0")
            && mailed("high-0")
            && messages.iter().filter(|m| m.thread_ts.is_some()).count() >= 3
            && (0..5).all(|i| digested.contains(&format!("i{i}@example.com logged in")))
    };
    let end = Instant::now() + Duration::from_secs(120);
    while Instant::now() < end && !delivered(&slack.messages(), &smtp.messages()) {
        std::thread::sleep(Duration::from_millis(200));
    }
    // A moment more, for anything sent twice.
    std::thread::sleep(Duration::from_secs(2));
    let messages = slack.messages();
    let mails = smtp.messages();
    let log2 = second.stop();
    let logs = format!("{log1}\n--- restarted ---\n{log2}");
    assert!(
        delivered(&messages, &mails),
        "not everything was delivered:\n{logs}"
    );

    let alerts: Vec<Alert> = bot
        .alerts()
        .into_iter()
        .filter(|a| !a.facts.repeat)
        .collect();
    assert_eq!(alerts.len(), 4 + 1 + 5, "{logs}");
    let count = |pred: &dyn Fn(&slack::SlackMessage) -> bool, id: &str| {
        messages
            .iter()
            .filter(|m| pred(m) && m.body.to_string().contains(&format!("event {id}")))
            .count()
    };
    let mut twice = BTreeMap::new();
    let webhook = |m: &slack::SlackMessage| m.via == Via::Webhook;
    let bot_top =
        |m: &slack::SlackMessage| matches!(m.via, Via::Bot { .. }) && m.thread_ts.is_none();
    for a in &alerts {
        let want_hook = a.rule_id == "t.allowlist_deleted";
        let want_bot = a.rule_id != "t.login";
        for (name, want, got) in [
            ("hook", want_hook, count(&webhook, &a.event_id)),
            ("bot", want_bot, count(&bot_top, &a.event_id)),
        ] {
            if want {
                assert!(got >= 1, "{} never reached {name}:\n{logs}", a.event_id);
                if got > 1 {
                    *twice.entry(name).or_insert(0) += got - 1;
                }
            } else {
                assert_eq!(got, 0, "{} went to {name} unrouted", a.event_id);
            }
        }
        let mailed = mails
            .iter()
            .filter(|m| {
                m.to == ["oncall@example.com"]
                    && m.text
                        .as_deref()
                        .unwrap_or("")
                        .contains(&format!("Event: {}", a.event_id))
            })
            .count();
        assert_eq!(mailed >= 1, want_bot, "{} by mail:\n{logs}", a.event_id);
        if mailed > 1 {
            *twice.entry("mail").or_insert(0) += mailed - 1;
        }
    }
    // The repeats, in the thread of the high alert.
    let parent = messages
        .iter()
        .find(|m| bot_top(m) && m.body.to_string().contains("event high-0"))
        .unwrap();
    let replies: Vec<_> = messages.iter().filter(|m| m.thread_ts.is_some()).collect();
    assert!(replies.len() >= 3, "{logs}");
    assert!(replies.iter().all(|r| r.thread_ts == parent.ts));
    // The info alerts, in digests: each once at least.
    let digests: Vec<_> = mails
        .iter()
        .filter(|m| m.to == ["security@example.com"])
        .collect();
    let digest_text: String = digests.iter().filter_map(|m| m.text.clone()).collect();
    for i in 0..5 {
        assert!(
            digest_text.contains(&format!("i{i}@example.com logged in")),
            "info-{i} in a digest:\n{digest_text}\n{logs}"
        );
    }
    for m in &messages {
        assert_slack_escaped(&m.body);
    }
    for m in &mails {
        let html = m.html.as_deref().unwrap();
        if m.to == ["oncall@example.com"] {
            assert_html_escaped(html);
        } else {
            assert!(!html.contains("<script>"), "{html}");
        }
    }
    support::check_slack_payloads(&messages.iter().map(|m| m.body.clone()).collect::<Vec<_>>());
    assert!(
        bot.store().deliveries(false).unwrap().is_empty(),
        "the outbox is empty"
    );
    // The pace is kept within a process; the one just started after the
    // kill may send once sooner (per channel) than a second after the last.
    assert!(slack.too_fast() <= 2, "{}", slack.too_fast());
    let latency = messages
        .iter()
        .map(|m| m.at.saturating_duration_since(committed))
        .max()
        .unwrap();
    eprintln!(
        "delivered twice after kill -9: {twice:?}; last Slack message {:.1}s after the first commit",
        latency.as_secs_f64()
    );
}

#[test]
fn notify_test_says_what_each_destination_answered() {
    let api = StandIn::start();
    let smtp = SmtpServer::start(SmtpOptions {
        auth: Some(("aw-user".into(), "pa ss #word".into())),
        ..SmtpOptions::default()
    });
    let slack = SlackStandin::start();
    let places = Places {
        smtp: Some(&smtp),
        destinations: bot_line(&slack, BOT_TOKEN_VAR)
            + "  mail: {type: email, to: [oncall@example.com]}\n  digest: {type: email_digest, to: [sec@example.com], every: 1h}\n",
        routing: "  default: [mail]\n".into(),
    };
    let bot = Bot::new(&api, &places);
    // SMTP login from the environment, with characters YAML would misread.
    let config = std::fs::read_to_string(bot.config()).unwrap().replace(
        "tls: none,",
        "tls: none, username: \"${SMTP_USER}\", password: \"${SMTP_PASSWORD}\",",
    );
    std::fs::write(bot.config(), config).unwrap();
    let test = |dest: &str, password: &str| {
        bot.command(&["notify-test", dest])
            .env("SMTP_USER", "aw-user")
            .env("SMTP_PASSWORD", password)
            .output()
            .unwrap()
    };

    let out = test("mail", "pa ss #word");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.starts_with("mail: accepted the test alert (250"),
        "{said}"
    );
    let mail = smtp.wait_for(1, Duration::from_secs(10));
    assert_eq!(mail[0].subject, "[HIGH] Test alert from auditwatch");

    let out = test("digest", "pa ss #word");
    assert!(out.status.success());
    let mails = smtp.wait_for(2, Duration::from_secs(10));
    assert!(
        mails[1].subject.starts_with("auditwatch digest: 1 alert"),
        "{}",
        mails[1].subject
    );

    let out = test("mail", "wrong-password");
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("mail:") && said.contains("535"), "{said}");
    assert!(
        !said.contains("wrong-password"),
        "the password is never printed"
    );

    let out = test("bot", "x");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok, message ts"));
    support::check_slack_payloads(&[slack.messages()[0].body.clone()]);

    let out = test("nowhere", "x");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no destination `nowhere`"));
}
