//! The default rule pack and the bundled sample: every inline test passes,
//! every rule has a case that alerts and one that does not, and the sample
//! history raises the incidents it was built with.

use std::collections::BTreeSet;
use std::path::PathBuf;

use assert_cmd::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn pack_inline_tests_pass_with_required_cases() {
    let out = Command::cargo_bin("rulecheck")
        .unwrap()
        .current_dir(root())
        .args([
            "--test",
            "--require-tests",
            "-r",
            "rules/",
            "-c",
            "examples/auditwatch.yaml",
        ])
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
    let out = Command::cargo_bin("rulecheck")
        .unwrap()
        .current_dir(root())
        .args([
            "-c",
            "examples/auditwatch.yaml",
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
