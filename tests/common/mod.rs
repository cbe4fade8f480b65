//! Helpers for the `rulecheck` integration tests: a scratch folder for rule
//! files, configs and event files; audit log events with the shapes the API
//! returns; running the binary and reading what it printed.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::{Map, Value, json};
use tempfile::TempDir;

/// A quiet Tuesday afternoon (2026-03-10 15:00:00 UTC), the base time of
/// most tests.
pub const T0: i64 = 1_773_154_800;

/// Unix seconds of a UTC time written `YYYY-MM-DDTHH:MM:SSZ`.
pub fn ts(text: &str) -> i64 {
    let num = |range: std::ops::Range<usize>| -> i64 {
        text.get(range)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad time {text:?}: write it like 2026-10-30T13:30:00Z"))
    };
    assert!(text.len() == 20 && text.ends_with('Z'), "bad time {text:?}");
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    let (h, mi, s) = (num(11..13), num(14..16), num(17..19));
    days_from_civil(y, m, d) * 86_400 + h * 3_600 + mi * 60 + s
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A scratch folder holding one test's rules, config and events.
pub struct Sandbox {
    dir: TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().expect("create a temporary folder"),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a text file (creating its folders) and returns its path.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        self.write_bytes(rel, text.as_bytes())
    }

    pub fn write_bytes(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create folder");
        }
        std::fs::write(&path, bytes).expect("write file");
        path
    }

    /// Writes events as JSON Lines.
    pub fn events(&self, rel: &str, events: &[Value]) -> PathBuf {
        self.write(rel, &jsonl(events))
    }

    /// The `rulecheck` binary, run from the sandbox folder.
    pub fn rulecheck(&self) -> Command {
        let mut cmd = Command::cargo_bin("rulecheck").expect("the rulecheck binary");
        cmd.current_dir(self.root()).env_remove("RUST_LOG");
        cmd
    }

    /// The `auditwatch` binary, run from the sandbox folder.
    pub fn auditwatch(&self) -> Command {
        let mut cmd = Command::cargo_bin("auditwatch").expect("the auditwatch binary");
        cmd.current_dir(self.root()).env_remove("RUST_LOG");
        cmd
    }
}

/// Events as JSON Lines text.
pub fn jsonl(events: &[Value]) -> String {
    let mut out = String::new();
    for e in events {
        out.push_str(&e.to_string());
        out.push('\n');
    }
    out
}

/// Compresses `src` with the system `gzip` into `src.gz`.
pub fn gzip(src: &Path) -> PathBuf {
    let out = std::process::Command::new("gzip")
        .arg("-c")
        .arg(src)
        .output()
        .expect("run gzip");
    assert!(out.status.success(), "gzip failed: {out:?}");
    let dst = PathBuf::from(format!("{}.gz", src.display()));
    std::fs::write(&dst, out.stdout).expect("write .gz");
    dst
}

/// What one run of a binary did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exit status {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs a command to its end.
pub fn run(cmd: &mut Command) -> Run {
    let out = cmd.output().expect("run the binary");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl Run {
    /// Asserts the exit status.
    pub fn status(&self, code: i32) -> &Run {
        assert_eq!(self.code, code, "unexpected exit status\n{self}");
        self
    }

    /// The JSON Lines alerts on stdout.
    pub fn alerts(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}\n{self}"))
            })
            .collect()
    }

    /// The `--format json` document on stdout.
    pub fn doc(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e})\n{self}"))
    }

    /// `(rule_id, event_id)` of every alert, in output order.
    pub fn fired(&self) -> Vec<(String, String)> {
        self.alerts()
            .iter()
            .map(|a| (text(&a["rule_id"]), text(&a["event_id"])))
            .collect()
    }

    /// The event ids that fired alerts, in output order.
    pub fn fired_events(&self) -> Vec<String> {
        self.fired().into_iter().map(|(_, e)| e).collect()
    }

    /// Asserts that stderr has a line starting `PATH:LINE:COL: ` (any column)
    /// whose message contains `needle` (case-insensitive).
    pub fn problem_at(&self, path: &Path, line: u64, needle: &str) -> &Run {
        let prefix = format!("{}:{line}:", path.display());
        let found = self.stderr.lines().any(|l| {
            l.strip_prefix(&prefix).is_some_and(|rest| {
                let (col, msg) = rest.split_once(": ").unwrap_or(("", ""));
                !col.is_empty()
                    && col.chars().all(|c| c.is_ascii_digit())
                    && msg.to_lowercase().contains(&needle.to_lowercase())
            })
        });
        assert!(
            found,
            "no problem reported as `{prefix}COL: …{needle}…`\n{self}"
        );
        self
    }

    /// Asserts that stderr has a line starting exactly `PATH:LINE:COL: `
    /// whose message contains `needle` (case-insensitive).
    pub fn problem_exactly_at(&self, path: &Path, line: u64, col: u64, needle: &str) -> &Run {
        let prefix = format!("{}:{line}:{col}: ", path.display());
        let found = self.stderr.lines().any(|l| {
            l.strip_prefix(&prefix)
                .is_some_and(|msg| msg.to_lowercase().contains(&needle.to_lowercase()))
        });
        assert!(found, "no problem reported as `{prefix}…{needle}…`\n{self}");
        self
    }

    /// Asserts that stderr has a line starting `PATH:LINE:COL: ` with LINE in
    /// `lines` whose message contains `needle` (case-insensitive).
    pub fn problem_within(
        &self,
        path: &Path,
        lines: std::ops::RangeInclusive<u64>,
        needle: &str,
    ) -> &Run {
        let prefix = format!("{}:", path.display());
        let found = self.stderr.lines().any(|l| {
            let Some(rest) = l.strip_prefix(&prefix) else {
                return false;
            };
            let mut parts = rest.splitn(3, ':');
            let line = parts.next().and_then(|n| n.parse::<u64>().ok());
            let col = parts.next().and_then(|n| n.parse::<u64>().ok());
            let msg = parts.next().unwrap_or_default();
            line.is_some_and(|n| lines.contains(&n))
                && col.is_some()
                && msg.starts_with(' ')
                && msg.to_lowercase().contains(&needle.to_lowercase())
        });
        assert!(
            found,
            "no problem reported as `{prefix}{lines:?}:COL: …{needle}…`\n{self}"
        );
        self
    }

    /// Asserts a load failure: exit status 2 and nothing on stdout.
    pub fn load_failed(&self) -> &Run {
        self.status(2);
        assert!(
            self.stdout.trim().is_empty(),
            "nothing may run when loading fails\n{self}"
        );
        self
    }
}

/// A JSON string's text (panics on anything else).
pub fn text(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
        .to_owned()
}

/// The ids of a JSON array of strings, sorted.
pub fn sorted_ids(v: &Value) -> Vec<String> {
    let mut ids: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("expected an array, got {v}"))
        .iter()
        .map(text)
        .collect();
    ids.sort();
    ids
}

/// The per-rule counts of a `--format json` document:
/// `(matched, alerts, suppressed, errors)`.
pub fn rule_stats(doc: &Value, id: &str) -> (u64, u64, u64, u64) {
    let rule = doc["rules"]
        .as_array()
        .expect("`rules` is an array")
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no rule `{id}` in {doc}"));
    let n = |k: &str| {
        rule[k]
            .as_u64()
            .unwrap_or_else(|| panic!("rule `{id}`: `{k}` is not a count: {rule}"))
    };
    (n("matched"), n("alerts"), n("suppressed"), n("errors"))
}

/// One rule's YAML: the id, a title, severity `high`, then `body`.
pub fn rule(id: &str, body: &str) -> String {
    format!("id: {id}\ntitle: Rule {id}\nseverity: high\n{body}\n")
}

/// Rule documents joined into one file.
pub fn docs(rules: &[String]) -> String {
    rules.join("---\n")
}

/// Runs one rule per case over `events` and checks that each case's rule
/// raised alerts for exactly the listed event ids, without evaluation
/// errors. Every disagreement is listed in the failure message.
pub fn check_cases(config: Option<&str>, events: &[Value], cases: &[(&str, &[&str])]) {
    let sb = Sandbox::new();
    let rules: Vec<String> = cases
        .iter()
        .enumerate()
        .map(|(i, (body, _))| rule(&format!("case-{i:02}"), body))
        .collect();
    let rules_path = sb.write("rules.yaml", &docs(&rules));
    let events_path = sb.events("events.jsonl", events);
    let mut cmd = sb.rulecheck();
    cmd.arg("-r").arg(&rules_path).args(["--format", "json"]);
    if let Some(config) = config {
        cmd.arg("-c").arg(sb.write("config.yaml", config));
    }
    let out = run(cmd.arg(&events_path));
    out.status(0);
    let doc = out.doc();
    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for a in doc["alerts"].as_array().expect("`alerts` is an array") {
        got.entry(text(&a["rule_id"]))
            .or_default()
            .push(text(&a["event_id"]));
    }
    let mut failures = String::new();
    for (i, (body, want)) in cases.iter().enumerate() {
        let id = format!("case-{i:02}");
        let mut want: Vec<String> = want.iter().map(|s| (*s).to_owned()).collect();
        want.sort();
        let mut have = got.remove(&id).unwrap_or_default();
        have.sort();
        let (_, _, _, errors) = rule_stats(&doc, &id);
        if want != have || errors != 0 {
            let _ = writeln!(
                failures,
                "{id}: {}\n    expected alerts on {want:?}, got {have:?} ({errors} evaluation errors)",
                body.replace('\n', "\n    ")
            );
        }
    }
    assert!(
        failures.is_empty(),
        "rules disagree with the contract:\n{failures}\n--- stderr ---\n{}",
        out.stderr
    );
}

/// An audit log object under construction.
#[derive(Clone, Debug)]
pub struct Ev(Map<String, Value>);

/// An audit log object of type `ty` at `at`, without actor or project.
pub fn ev(id: &str, ty: &str, at: i64) -> Ev {
    let mut m = Map::new();
    m.insert("object".into(), json!("organization.audit_log"));
    m.insert("id".into(), json!(id));
    m.insert("type".into(), json!(ty));
    m.insert("effective_at".into(), json!(at));
    Ev(m)
}

/// The user id that [`Ev::session`] gives an email.
pub fn user_id(email: &str) -> String {
    let local: String = email
        .split('@')
        .next()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    format!("user-{local}")
}

pub const USER_AGENT: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15";

impl Ev {
    /// A user's browser session from `ip`, located in Portland, US (AS16509).
    pub fn session(self, email: &str, ip: &str) -> Ev {
        let id = user_id(email);
        self.session_as(&id, email, ip)
    }

    /// A user's browser session with an explicit user id.
    pub fn session_as(self, user_id: &str, email: &str, ip: &str) -> Ev {
        self.actor(json!({
            "type": "session",
            "session": {
                "user": {"id": user_id, "email": email},
                "ip_address": ip,
                "user_agent": USER_AGENT,
                "ja3": "e69402f870ecf542b4f017b0ed32936a",
                "ja4": "t13d1312h2_f57a46bbacb6_ab7e3b40a677",
                "ip_address_details": {
                    "country": "US",
                    "city": "Portland",
                    "region": "Oregon",
                    "region_code": "OR",
                    "asn": "16509",
                    "latitude": "45.52345",
                    "longitude": "-122.67621"
                }
            }
        }))
    }

    /// Sets the session's country and ASN (as the API does: strings).
    pub fn geo(mut self, country: &str, asn: &str) -> Ev {
        let details = self
            .0
            .get_mut("actor")
            .and_then(|a| a.pointer_mut("/session/ip_address_details"))
            .and_then(Value::as_object_mut)
            .expect("geo() needs a session actor");
        details.insert("country".into(), json!(country));
        details.insert("asn".into(), json!(asn));
        self
    }

    /// A user's API key.
    pub fn user_key(self, key_id: &str, user_id: &str, email: &str) -> Ev {
        self.actor(json!({
            "type": "api_key",
            "api_key": {"id": key_id, "type": "user", "user": {"id": user_id, "email": email}}
        }))
    }

    /// A service account's API key.
    pub fn service_key(self, key_id: &str, service_account_id: &str) -> Ev {
        self.actor(json!({
            "type": "api_key",
            "api_key": {
                "id": key_id,
                "type": "service_account",
                "service_account": {"id": service_account_id}
            }
        }))
    }

    pub fn actor(self, actor: Value) -> Ev {
        self.set("actor", actor)
    }

    pub fn project(self, id: &str, name: &str) -> Ev {
        self.set("project", json!({"id": id, "name": name}))
    }

    /// The detail object, under the key named by the event type.
    pub fn details(self, details: Value) -> Ev {
        let ty = text(&self.0["type"]);
        self.set(&ty, details)
    }

    pub fn set(mut self, key: &str, value: Value) -> Ev {
        self.0.insert(key.to_owned(), value);
        self
    }

    pub fn json(self) -> Value {
        Value::Object(self.0)
    }
}

/// A failed login of `email` from `ip` at `at`.
pub fn login_failed(id: &str, at: i64, email: &str, ip: &str) -> Value {
    ev(id, "login.failed", at)
        .session(email, ip)
        .details(
            json!({"error_code": "invalid_credentials", "error_message": "Invalid credentials"}),
        )
        .json()
}

/// `email` creating an API key with `scopes` in the production project.
pub fn key_created(id: &str, at: i64, email: &str, scopes: &[&str]) -> Value {
    ev(id, "api_key.created", at)
        .session(email, "203.0.113.7")
        .project("proj_Xb3k9LmQ2wR7tY5uV1nZ8aHc", "Production")
        .details(json!({"id": format!("key_{id}"), "data": {"scopes": scopes}}))
        .json()
}

#[test]
fn time_helper_matches_known_instants() {
    assert_eq!(ts("1970-01-01T00:00:00Z"), 0);
    assert_eq!(ts("2024-07-12T16:00:00Z"), 1_720_800_000);
    assert_eq!(ts("2026-03-10T15:00:00Z"), T0);
    assert_eq!(
        ts("2026-11-02T13:30:00Z") - ts("2026-10-30T13:30:00Z"),
        3 * 86_400
    );
}
