//! Hot reload of a running watcher: a rule file added (noticed by the file
//! watch) swaps the set in and keeps a threshold's count; a broken rule
//! keeps the old set, is logged with its position, counted in `/metrics`
//! and reported to the default route once; SIGHUP reloads the fixed set.

mod observe;
mod serve;
mod standin;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use auditwatch::alert::Alert;
use auditwatch::store::{SqliteStore, Store};
use observe::{Lines, value};
use serde_json::{Value, json};
use standin::{ADMIN_KEY, StandIn};

const BIN: &str = env!("CARGO_BIN_EXE_auditwatch");

const BURST: &str = "id: t.key_burst\ntitle: Key burst\nseverity: high\nmatch: {type: api_key.created}\nthreshold: {count: 3, window: 1h, group_by: [actor.email]}\n";
const NEW_RULE: &str = "id: t.project_created\ntitle: Project created\nseverity: low\nmatch: {type: project.created}\n";
const BROKEN: &str = "id: t.broken\ntitle: Broken\nseverity: low\nmatch: {type: project.created}\nthreshhold: {count: 2, window: 1h}\n";

fn event(id: &str, ty: &str, at: i64) -> Value {
    json!({
        "object": "organization.audit_log", "id": id, "type": ty, "effective_at": at,
        "actor": {"type": "session", "session": {"user": {"id": "user-1", "email": "alice@example.com"},
                  "ip_address": "198.51.100.7"}},
        ty: {"id": format!("obj-{id}")}
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn metrics(port: u16) -> prometheus_parse::Scrape {
    observe::scrape(&get_text(&format!("http://127.0.0.1:{port}/metrics")))
}

fn get_text(url: &str) -> String {
    auditwatch::tls::init();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async { reqwest::get(url).await.unwrap().text().await.unwrap() })
}

fn alerts(state: &Path) -> Vec<Alert> {
    SqliteStore::open(state).unwrap().alerts().unwrap()
}

/// Waits until the outbox holds an alert of `rule`.
fn wait_for_alert(state: &Path, rule: &str) -> Vec<Alert> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let all = alerts(state);
        if all.iter().any(|a| a.rule_id == rule) {
            return all;
        }
        assert!(
            Instant::now() < deadline,
            "no alert of {rule}: {:?}",
            all.iter().map(|a| &a.rule_id).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn count(alerts: &[Alert], rule: &str) -> usize {
    alerts.iter().filter(|a| a.rule_id == rule).count()
}

/// Writes `path` whole at once (a rename), as editors and deploy tools do,
/// so the file watch sees one change.
fn put(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn hangup(child: &Child) {
    let status = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn reloads_swap_keep_state_and_a_broken_set_keeps_the_old_one() {
    let api = StandIn::start();
    let t = auditwatch::time::now() - 300;
    api.add([
        event("k-1", "api_key.created", t),
        event("k-2", "api_key.created", t + 1),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("burst.yaml"), BURST).unwrap();
    let port = free_port();
    std::fs::write(
        dir.path().join("auditwatch.yaml"),
        format!(
            "source:\n  openai:\n    admin_key: ${{OPENAI_ADMIN_KEY}}\n    base_url: {}\n    poll_interval: 1s\n    start: 1h\n    timeout: 5s\n\
             rules: [rules/]\nstate: {{path: aw.db}}\nserver: {{listen: 127.0.0.1:{port}}}\n\
             destinations:\n  console: {{type: stdout}}\n  pager: {{type: stdout}}\n\
             routing:\n  default: [console]\n  severity: {{high: [pager]}}\n",
            api.base_url()
        ),
    )
    .unwrap();
    let state = dir.path().join("aw.db");
    let mut child = Command::new(BIN)
        .args(["watch", "-c"])
        .arg(dir.path().join("auditwatch.yaml"))
        .env("OPENAI_ADMIN_KEY", ADMIN_KEY)
        .env("RUST_LOG", "auditwatch=info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = Lines::of(&mut child);
    lines.until("poll committed");
    assert_eq!(count(&alerts(&state), "t.key_burst"), 0, "2 of 3 so far");

    // A new rule file, and the burst rule retitled (its logic unchanged):
    // the file watch reloads, and the burst keeps its two events.
    put(&rules.join("new.yaml"), NEW_RULE);
    put(
        &rules.join("burst.yaml"),
        &BURST.replace("Key burst", "Burst of keys"),
    );
    let reloaded = lines.until("rules reloaded");
    assert!(
        reloaded.last().unwrap().contains("trigger=\"file change\""),
        "{reloaded:?}"
    );
    api.add([
        event("k-3", "api_key.created", t + 2),
        event("p-1", "project.created", t + 3),
    ]);
    let all = wait_for_alert(&state, "t.key_burst");
    let burst = all.iter().find(|a| a.rule_id == "t.key_burst").unwrap();
    assert_eq!(burst.title, "Burst of keys", "the reloaded rule fired");
    assert_eq!(burst.event_ids, ["k-1", "k-2", "k-3"], "state kept");
    wait_for_alert(&state, "t.project_created");

    // A broken rule: the old set stays, every problem is logged with its
    // position, and the default route hears of it once.
    put(&rules.join("broken.yaml"), BROKEN);
    let failed = lines.until("rule reload failed; the rules loaded before stay in force");
    let text = failed.join("\n");
    assert!(
        !text.contains("watcher alert raised"),
        "logged before the notice"
    );
    assert!(
        text.contains("broken.yaml:5:1") && text.contains("threshhold"),
        "{text}"
    );
    let all = wait_for_alert(&state, "auditwatch.reload.failed");
    let notice = all
        .iter()
        .find(|a| a.rule_id == "auditwatch.reload.failed")
        .unwrap();
    assert!(
        notice.summary.contains("broken.yaml:5:1"),
        "{}",
        notice.summary
    );
    let raised = lines.until("watcher alert raised");
    let raised = raised.last().unwrap();
    assert!(
        raised.contains("auditwatch.reload.failed") && raised.contains("destinations=console"),
        "the default route alone, not the severity's: {raised}"
    );
    let failed_before = value(
        &metrics(port),
        "auditwatch_reloads_total",
        &[("result", "failed")],
    );
    assert!(failed_before >= 1.0);
    hangup(&child);
    lines.until("rule reload failed; the rules loaded before stay in force");
    let scrape = metrics(port);
    assert_eq!(
        value(&scrape, "auditwatch_reloads_total", &[("result", "failed")]),
        failed_before + 1.0
    );
    assert!(value(&scrape, "auditwatch_reloads_total", &[("result", "ok")]) >= 1.0);
    assert_eq!(value(&scrape, "auditwatch_rules", &[]), 2.0);
    assert_eq!(
        count(&alerts(&state), "auditwatch.reload.failed"),
        1,
        "the same problems are reported once"
    );
    // The old set still alerts.
    api.add([event("p-2", "project.created", t + 4)]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(&alerts(&state), "t.project_created") < 2 {
        assert!(Instant::now() < deadline, "the old set stopped alerting");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Fixed, and reloaded by SIGHUP.
    std::fs::write(
        rules.join("broken.yaml"),
        BROKEN.replace("threshhold", "threshold"),
    )
    .unwrap();
    let ok = lines.until("rules reloaded");
    assert!(ok.last().unwrap().contains("rules=3"), "{ok:?}");
    hangup(&child);
    // One write may show as two file changes: a second file-change reload
    // can come before the one SIGHUP asked for.
    let ok = lines.until("trigger=\"SIGHUP\"");
    assert!(ok.last().unwrap().contains("rules reloaded"), "{ok:?}");
    let scrape = metrics(port);
    assert_eq!(value(&scrape, "auditwatch_rules", &[]), 3.0);
    child.kill().unwrap();
    child.wait().unwrap();
}
