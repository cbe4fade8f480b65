//! The default rule pack and the bundled sample: every inline test passes,
//! every rule has a case that alerts and one that does not, and the sample
//! history raises the incidents it was built with.

use std::collections::BTreeSet;
use std::path::PathBuf;

use assert_cmd::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `rulecheck`, run from the repository's top folder.
fn rulecheck() -> Command {
    let mut cmd = Command::cargo_bin("rulecheck").unwrap();
    cmd.current_dir(root());
    cmd
}

#[test]
fn pack_inline_tests_pass_with_required_cases() {
    let out = rulecheck()
        // As the contract writes it: the config comes from ./auditwatch.yaml.
        .args(["--test", "--require-tests", "-r", "rules/"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "rule pack tests failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}

#[test]
fn sample_history_raises_every_labelled_incident() {
    let out = rulecheck()
        .args([
            "-c",
            "auditwatch.yaml",
            "--format",
            "jsonl",
            "examples/sample-events.jsonl",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut alerted: BTreeSet<String> = BTreeSet::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let alert: serde_json::Value = serde_json::from_str(line).unwrap();
        for id in alert["event_ids"].as_array().unwrap() {
            alerted.insert(id.as_str().unwrap().to_owned());
        }
    }
    let labels: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("examples/sample-incidents.json")).unwrap(),
    )
    .unwrap();
    let incidents = labels.as_array().unwrap();
    assert!(
        incidents.len() >= 20,
        "the sample should carry the labelled incidents"
    );
    let missed: Vec<&str> = incidents
        .iter()
        .filter(|inc| {
            !inc["event_ids"]
                .as_array()
                .unwrap()
                .iter()
                .any(|id| alerted.contains(id.as_str().unwrap()))
        })
        .map(|inc| inc["name"].as_str().unwrap())
        .collect();
    assert!(missed.is_empty(), "incidents without an alert: {missed:?}");
}

#[test]
fn readme_rule_example_passes_its_own_tests() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme.find("```yaml\nid: ").expect("README shows a rule") + "```yaml\n".len();
    let end = start + readme[start..].find("```").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rule = dir.path().join("rule.yaml");
    std::fs::write(&rule, &readme[start..end]).unwrap();
    let out = rulecheck()
        .args(["--test", "--require-tests", "-c", "auditwatch.yaml", "-r"])
        .arg(&rule)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("2 passed, 0 failed"), "{stdout}");
}

/// Every documented event type is named by a rule of the pack, or listed in
/// rules/README.md as left out on purpose (`a.b/c` there means `a.b` and `a.c`).
#[test]
fn every_documented_event_type_is_covered_or_left_out_on_purpose() {
    use auditwatch::config::RuleConfig;
    use auditwatch::rules::RuleSet;

    let config = RuleConfig::load(&root().join("auditwatch.yaml")).unwrap();
    let rules = RuleSet::load(&config.rules, &config.env).unwrap();
    let catchall = rules
        .rules()
        .iter()
        .find(|r| r.id == "openai.unknown_event_type")
        .unwrap();
    let (negated, documented) = catchall.event_types().unwrap();
    assert!(
        negated,
        "the catch-all matches every type but the documented ones"
    );
    assert_eq!(
        documented.len(),
        145,
        "the catch-all knows the 145 documented types"
    );

    let named: BTreeSet<String> = rules
        .rules()
        .iter()
        .filter_map(|r| r.event_types())
        .filter(|(negated, _)| !negated)
        .flat_map(|(_, types)| types)
        .collect();
    let readme = std::fs::read_to_string(root().join("rules/README.md")).unwrap();
    let section = readme
        .split("## Event types that do not alert on their own")
        .nth(1)
        .unwrap();
    let section = section.split("\n## ").next().unwrap();
    let mut left_out = BTreeSet::new();
    for token in section.split('`').skip(1).step_by(2) {
        let (base, last) = token.rsplit_once('.').unwrap_or(("", token));
        for alt in last.split('/') {
            left_out.insert(if base.is_empty() {
                alt.to_owned()
            } else {
                format!("{base}.{alt}")
            });
        }
    }
    let missing: Vec<&String> = documented
        .iter()
        .filter(|t| !named.contains(*t) && !left_out.contains(*t))
        .collect();
    assert!(
        missing.is_empty(),
        "event types neither named by a rule nor left out on purpose: {missing:?}"
    );
}

/// Exact replay: the sample history gives the same alerts whatever the input
/// order and form (a plain file in order, the lines shuffled, gzip, stdin).
#[test]
fn the_same_alerts_whatever_the_order_and_form_of_the_input() {
    let run = |args: &[&str], stdin: Option<Vec<u8>>| -> String {
        let mut cmd = rulecheck();
        cmd.args(["--format", "jsonl"]).args(args);
        if let Some(input) = stdin {
            cmd.write_stdin(input);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let sample = std::fs::read_to_string(root().join("examples/sample-events.jsonl")).unwrap();
    let in_order = run(&["examples/sample-events.jsonl"], None);
    assert!(in_order.lines().count() > 20, "the sample raises alerts");

    // A fixed shuffle: every 7th line first, then the rest backwards.
    let lines: Vec<&str> = sample.lines().collect();
    let mut shuffled: Vec<&str> = lines.iter().step_by(7).copied().collect();
    shuffled.extend(
        lines
            .iter()
            .enumerate()
            .rev()
            .filter(|(i, _)| i % 7 != 0)
            .map(|(_, l)| *l),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shuffled.jsonl");
    std::fs::write(&path, shuffled.join("\n")).unwrap();
    assert_eq!(
        run(&[path.to_str().unwrap()], None),
        in_order,
        "shuffled lines"
    );

    // The later half first, as two files: the replay finds them out of
    // order and reads them again.
    let half = lines.len() / 2;
    let (early, late) = (
        dir.path().join("early.jsonl"),
        dir.path().join("late.jsonl"),
    );
    std::fs::write(&early, lines[..half].join("\n")).unwrap();
    std::fs::write(&late, lines[half..].join("\n")).unwrap();
    assert_eq!(
        run(&[late.to_str().unwrap(), early.to_str().unwrap()], None),
        in_order,
        "the later file first"
    );

    let gz = dir.path().join("shuffled.jsonl.gz");
    let status = std::process::Command::new("gzip")
        .arg("-k")
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(run(&[gz.to_str().unwrap()], None), in_order, "gzip");
    assert_eq!(run(&["-"], Some(sample.into_bytes())), in_order, "stdin");
}

#[test]
fn pack_summaries_leave_no_trace_of_a_missing_value() {
    // A value the event lacks renders as nothing: the pack's summaries are
    // written so that nothing like `rpd )` or `threads: ,` is left.
    let out = rulecheck()
        .args([
            "-c",
            "auditwatch.yaml",
            "--format",
            "jsonl",
            "examples/sample-events.jsonl",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let traces = [" )", "( ", ": ,", ", ,", " ,", "  ", "()", ": )"];
    let mut seen = 0;
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let alert: serde_json::Value = serde_json::from_str(line).unwrap();
        let summary = alert["summary"].as_str().unwrap();
        seen += 1;
        for t in traces {
            assert!(
                !summary.contains(t) && !summary.ends_with(':'),
                "{}: {t:?} in {summary:?}",
                alert["rule_id"]
            );
        }
    }
    assert!(seen > 30, "the sample raises alerts");
}

/// `rulecheck --incidents` on the sample history: the same incidents from
/// one parser thread or two and from stdin; the owner grant's alerts form
/// one incident; without the flag the alert line keeps its contract fields.
#[test]
fn incidents_group_the_owner_grant_and_are_the_same_on_every_path() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let events = root.join("examples/sample-events.jsonl");
    let run = |args: &[&str]| -> Vec<serde_json::Value> {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rulecheck"))
            .current_dir(&root)
            .args(["-c", "auditwatch.yaml", "--format", "jsonl"])
            .args(args)
            .arg(&events)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let one = run(&["--incidents", "--threads", "1"]);
    let two = run(&["--incidents", "--threads", "2"]);
    assert_eq!(one, two);
    let plain = run(&[]);
    assert_eq!(plain.len(), one.len());
    assert!(plain.iter().all(|a| a.get("incident").is_none()));
    let grant = one
        .iter()
        .find(|a| a["rule_id"] == "openai.user.owner_granted")
        .expect("the sample's owner grant");
    let incident = grant["incident"].as_str().unwrap();
    let members: Vec<&str> = one
        .iter()
        .filter(|a| a["incident"] == incident)
        .map(|a| a["rule_id"].as_str().unwrap())
        .collect();
    assert!(members.len() >= 3, "{members:?}");
    assert!(members.contains(&"openai.admin.after_hours"), "{members:?}");
    let incidents: std::collections::BTreeSet<&str> = one
        .iter()
        .map(|a| a["incident"].as_str().unwrap())
        .collect();
    assert!(incidents.len() < one.len(), "some alerts share an incident");
}
