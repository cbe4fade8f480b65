//! The watcher's status server over real HTTP: `/healthz` before and after
//! a successful poll, the token, `/metrics` read with a Prometheus text
//! parser, and the status page with event text escaped.

mod observe;
mod serve;
mod standin;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use standin::{ADMIN_KEY, StandIn};

const BIN: &str = env!("CARGO_BIN_EXE_auditwatch");
const TOKEN: &str = "status-token-123";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn get(url: &str, token: Option<&str>) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let mut req = client.get(url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        match req.send().await {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(_) => (0, String::new()),
        }
    })
}

fn wait_for(url: &str, token: Option<&str>, want: u16) -> String {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = get(url, token);
        if status == want {
            return body;
        }
        assert!(
            Instant::now() < end,
            "{url} never answered {want} (last {status}: {body})"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A watcher of `api` with `rule` as its one rule file, printing alerts to
/// `stdout`, and `extra` (whole config lines) after the rest of its config;
/// with its folder, which holds the config.
fn watcher(
    api: &StandIn,
    rule: &str,
    extra: &str,
    stdout: Stdio,
) -> (std::process::Child, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rule.yaml"), rule).unwrap();
    std::fs::write(
        dir.path().join("auditwatch.yaml"),
        format!(
            "source:\n  openai:\n    admin_key: ${{OPENAI_ADMIN_KEY}}\n    base_url: {}\n    poll_interval: 1s\n    start: 1h\n    timeout: 5s\n\
             rules: [rule.yaml]\nstate: {{path: aw.db}}\ndestinations:\n  console: {{type: stdout}}\nrouting:\n  default: [console]\n\
             {extra}",
            api.base_url()
        ),
    )
    .unwrap();
    let child = Command::new(BIN)
        .args(["watch", "-c"])
        .arg(dir.path().join("auditwatch.yaml"))
        .env("OPENAI_ADMIN_KEY", ADMIN_KEY)
        .env("RUST_LOG", "warn")
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (child, dir)
}

#[test]
fn health_token_metrics_and_the_status_page() {
    auditwatch::tls::init();
    let api = StandIn::start();
    let t = auditwatch::time::now() - 600;
    api.add((0..3).map(|i| {
        json!({"object": "organization.audit_log", "id": format!("ev-{i}"), "type": "ip_allowlist.deleted",
               "effective_at": t + i,
               "actor": {"type": "session", "session": {"user": {"id": "user-1", "email": "a@example.com"},
                         "ip_address": "198.51.100.7", "user_agent": "<script>alert(1)</script>"}},
               "ip_allowlist.deleted": {"id": format!("ipl-{i}")}})
    }));
    // Every request fails at first: no successful poll yet.
    api.fail_next(100_000);
    let port = free_port();
    let (mut child, dir) = watcher(
        &api,
        "id: t.deleted\ntitle: Deleted\nseverity: critical\nmatch: {type: ip_allowlist.deleted}\nsummary: \"{{ actor.email }} from {{ actor.user_agent }}\"\n",
        &format!("server: {{listen: \"127.0.0.1:{port}\", token: \"{TOKEN}\"}}\n"),
        Stdio::null(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let body = wait_for(&format!("{base}/healthz"), None, 503);
    assert!(body.contains("no successful poll yet"), "{body}");
    assert_eq!(
        get(&format!("{base}/readyz"), None).0,
        401,
        "the token guards /readyz"
    );
    assert_eq!(get(&format!("{base}/readyz"), Some(TOKEN)).0, 503);

    api.stop_failing();
    wait_for(&format!("{base}/healthz"), None, 200);
    wait_for(&format!("{base}/readyz"), Some(TOKEN), 200);
    assert_eq!(get(&format!("{base}/metrics"), None).0, 401);
    assert_eq!(get(&format!("{base}/metrics"), Some("wrong")).0, 401);
    let text = wait_for(&format!("{base}/metrics"), Some(TOKEN), 200);
    let scrape = observe::scrape(&text);
    let value = |name: &str, label: Option<(&str, &str)>| -> f64 {
        observe::value(&scrape, name, label.as_slice())
    };
    assert_eq!(
        value("auditwatch_events_evaluated_total", None),
        3.0,
        "{text}"
    );
    assert_eq!(
        value("auditwatch_alerts_total", Some(("rule", "t.deleted"))),
        3.0,
        "{text}"
    );
    assert!(
        value("auditwatch_polls_total", Some(("result", "ok"))) >= 1.0,
        "{text}"
    );
    assert!(
        value("auditwatch_last_successful_poll_timestamp_seconds", None) > 1.7e9,
        "{text}"
    );
    assert_eq!(
        value("auditwatch_deliveries_total", Some(("outcome", "sent"))),
        3.0,
        "{text}"
    );
    assert_eq!(
        value("auditwatch_matches_total", Some(("rule", "t.deleted"))),
        3.0,
        "{text}"
    );
    let polls_timed = scrape
        .samples
        .iter()
        .find(|s| s.metric == "auditwatch_poll_duration_seconds")
        .and_then(|s| match &s.value {
            prometheus_parse::Value::Histogram(buckets) => buckets.last().map(|b| b.count),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no poll duration histogram: {text}"));
    assert!(
        polls_timed >= value("auditwatch_polls_total", None).max(1.0),
        "every poll is timed: {text}"
    );
    assert_eq!(value("auditwatch_late_events_total", None), 0.0, "{text}");
    assert_eq!(value("auditwatch_rules", None), 1.0, "{text}");

    // An event older than those read before it: the API showed it late.
    api.add([json!({"object": "organization.audit_log", "id": "ev-late", "type": "ip_allowlist.deleted",
                    "effective_at": t - 60,
                    "actor": {"type": "session", "session": {"user": {"id": "user-1", "email": "a@example.com"}}},
                    "ip_allowlist.deleted": {"id": "ipl-late"}})]);
    let end = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let (_, text) = get(&format!("{base}/metrics"), Some(TOKEN));
        if text.contains("auditwatch_late_events_total 1") {
            break text;
        }
        assert!(
            Instant::now() < end,
            "the late event was not counted: {text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        text.contains("auditwatch_events_evaluated_total 4"),
        "{text}"
    );

    let page = wait_for(&format!("{base}/"), Some(TOKEN), 200);
    assert!(
        page.contains("t.deleted")
            && page.contains("a@example.com from")
            && page.contains(
                "<td>t.deleted</td><td>critical</td><td>4</td><td>4</td><td>0</td><td>0</td>"
            ),
        "{page}"
    );
    assert!(
        !page.contains("<script>") && page.contains("&lt;script&gt;"),
        "{page}"
    );
    assert_eq!(get(&format!("{base}/"), None).0, 401);

    // `auditwatch health` asks /healthz for container health checks.
    let out = Command::new(BIN)
        .args(["health", "-c"])
        .arg(dir.path().join("auditwatch.yaml"))
        .env("OPENAI_ADMIN_KEY", ADMIN_KEY)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");

    child.kill().unwrap();
    child.wait().unwrap();
    let out = Command::new(BIN)
        .args(["health", "-c"])
        .arg(dir.path().join("auditwatch.yaml"))
        .env("OPENAI_ADMIN_KEY", ADMIN_KEY)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "a stopped watcher is unhealthy");
}

#[test]
fn a_silent_audit_log_raises_an_alert_and_its_end_a_notice() {
    let api = StandIn::start();
    let (mut child, _dir) = watcher(
        &api,
        "id: t.any\ntitle: Any\nseverity: low\nmatch: {id: {exists: true}}\n",
        "heartbeat: {silent_for: 2s}\n",
        Stdio::piped(),
    );
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<serde_json::Value>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Ok(v) = serde_json::from_str(&line) {
                let _ = tx.send(v);
            }
        }
    });
    let next = || {
        rx.recv_timeout(Duration::from_secs(20))
            .expect("an alert line")
    };
    let silent = next();
    assert_eq!(silent["rule_id"], "auditwatch.heartbeat.silent", "{silent}");
    assert_eq!(silent["severity"], "high");
    api.add([
        json!({"object": "organization.audit_log", "id": "ev-late", "type": "login.succeeded",
                    "effective_at": auditwatch::time::now() - 5, "actor": null}),
    ]);
    let mut seen = Vec::new();
    for _ in 0..2 {
        seen.push(next()["rule_id"].as_str().unwrap().to_owned());
    }
    seen.sort();
    assert_eq!(seen, ["auditwatch.heartbeat.events_back", "t.any"]);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Chromium for the browser test: `AUDITWATCH_TEST_CHROMIUM`, else
/// `chromium` on the PATH. `.ci/run` installs it and sets
/// `AUDITWATCH_REQUIRE_CHROMIUM=1`, so that CI cannot skip the test.
fn chromium() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("AUDITWATCH_TEST_CHROMIUM") {
        return Some(p.into());
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("chromium"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("AUDITWATCH_REQUIRE_CHROMIUM").is_none(),
            "AUDITWATCH_REQUIRE_CHROMIUM is set but no chromium was found"
        );
    }
    found
}

#[test]
fn the_status_page_in_headless_chromium_keeps_event_text_inert() {
    let Some(chromium) = chromium() else {
        eprintln!("no chromium: the browser check of the status page was not run");
        return;
    };
    auditwatch::tls::init();
    let api = StandIn::start();
    let t = auditwatch::time::now() - 600;
    let hostile = "<img src=x onerror=alert(1)><script>document.title='owned'</script>\u{202e}evil";
    api.add([json!({"object": "organization.audit_log", "id": "ev-<b>1</b>", "type": "ip_allowlist.deleted",
                    "effective_at": t,
                    "actor": {"type": "session", "session": {"user": {"id": "user-1", "email": "a@example.com"},
                              "ip_address": "198.51.100.7", "user_agent": hostile}},
                    "ip_allowlist.deleted": {"id": "ipl-1"}})]);
    let port = free_port();
    let (mut child, _dir) = watcher(
        &api,
        "id: t.deleted\ntitle: Deleted\nseverity: critical\nmatch: {type: ip_allowlist.deleted}\nsummary: \"from {{ actor.user_agent }}\"\n",
        &format!("server: {{listen: \"127.0.0.1:{port}\"}}\n"),
        Stdio::null(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let end = Instant::now() + Duration::from_secs(30);
    while !get(&format!("{base}/"), None).1.contains("from &lt;img") {
        assert!(Instant::now() < end, "the alert never reached the page");
        std::thread::sleep(Duration::from_millis(200));
    }
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--virtual-time-budget=2000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("{base}/"))
        .stderr(Stdio::null())
        .output()
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(out.status.success(), "chromium failed: {:?}", out.status);
    // The DOM after the browser parsed and ran the page.
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("<title>auditwatch</title>"),
        "the title is the page's own (no injected script ran): {dom}"
    );
    assert!(dom.contains("<h2>Last alerts</h2>"), "{dom}");
    assert!(
        !dom.contains("<img") && !dom.contains("<script") && !dom.contains("<b>"),
        "event text became markup: {dom}"
    );
    assert!(
        dom.contains("from &lt;img src=x onerror=alert(1)&gt;&lt;script&gt;"),
        "{dom}"
    );
    assert!(
        !dom.contains('\u{202e}'),
        "the bidi override is shown, not applied: {dom}"
    );
}
