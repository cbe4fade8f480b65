//! Checks that the generated parts of rules/README.md match the rules, and
//! that `auditwatch rules-doc --write` only touches the marked section.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

const BEGIN: &str = "<!-- rules-doc:begin -->";
const END: &str = "<!-- rules-doc:end -->";
const UPDATE: &str =
    "cargo run --bin auditwatch -- rules-doc -c auditwatch.yaml --write rules/README.md";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `auditwatch rules-doc ARGS`, run from the crate root.
fn rules_doc(args: &[&str]) -> Command {
    let mut cmd = Command::cargo_bin("auditwatch").expect("the auditwatch binary");
    cmd.current_dir(root()).arg("rules-doc").args(args);
    cmd
}

/// The text between the markers, or a panic naming what is missing.
fn section<'t>(text: &'t str, what: &str) -> &'t str {
    let start = text
        .find(BEGIN)
        .unwrap_or_else(|| panic!("{what}: no `{BEGIN}` marker"))
        + BEGIN.len();
    let len = text[start..]
        .find(END)
        .unwrap_or_else(|| panic!("{what}: no `{END}` marker after `{BEGIN}`"));
    &text[start..start + len]
}

fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run auditwatch");
    assert!(
        out.status.success(),
        "auditwatch rules-doc failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[test]
fn readme_rule_table_is_current() {
    let readme_path = root().join("rules").join("README.md");
    let readme = std::fs::read_to_string(&readme_path).expect("read rules/README.md");
    let documented = section(&readme, "rules/README.md").trim();
    let table = stdout_of(&mut rules_doc(&["-c", "auditwatch.yaml"]));
    let table = table.trim();
    if documented != table {
        let first = documented
            .lines()
            .zip(table.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| documented.lines().count().min(table.lines().count()));
        panic!(
            "the rule table in rules/README.md is out of date (first difference at line {} of \
             the table):\n  README: {:?}\n  rules:  {:?}\nUpdate it with:\n  {UPDATE}",
            first + 1,
            documented.lines().nth(first).unwrap_or("<end>"),
            table.lines().nth(first).unwrap_or("<end>"),
        );
    }
    assert!(
        readme.contains(UPDATE),
        "rules/README.md should show the command that updates the table"
    );
}

const SMALL_README: &str = "# My rules\n\nIntro text.\n\n<!-- rules-doc:begin -->\n\
stale table\n<!-- rules-doc:end -->\n\n## Later\n\nMore text.\n";

const RULE: &str = "id: test.login.burst\ntitle: Failed logins | burst\nseverity: medium\n\
match:\n  type: login.failed\nthreshold: {count: 5, window: 10m, group_by: [actor.email]}\n\
suppress: {window: 1h, key: [actor.email]}\n---\n\
id: test.catchall\ntitle: Anything but logins\nseverity: info\n\
match:\n  type: {not_in: [login.failed, login.succeeded]}\n\
suppress: {window: 24h, key: [type]}\n";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write a test file");
    path
}

#[test]
fn write_replaces_only_the_marked_section() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let rules = write(dir.path(), "rules.yaml", RULE);
    let readme = write(dir.path(), "README.md", SMALL_README);
    let rules_arg = rules.to_str().expect("UTF-8 path");

    let table = stdout_of(&mut rules_doc(&["-r", rules_arg]));
    assert!(
        table.contains(
            "| `test.login.burst` | medium | Failed logins \\| burst | `login.failed` | \
             5 in 10m per actor.email; suppress 1h per actor.email | rules.yaml |"
        ),
        "unexpected table:\n{table}"
    );
    assert!(
        table.contains("any type except `login.failed/succeeded`"),
        "unexpected table:\n{table}"
    );

    rules_doc(&[
        "-r",
        rules_arg,
        "--write",
        readme.to_str().expect("UTF-8 path"),
    ])
    .assert()
    .success()
    .stdout("");
    let updated = std::fs::read_to_string(&readme).expect("read the README back");
    let (head, tail) = SMALL_README.split_at(SMALL_README.find(BEGIN).expect("marker"));
    let tail = &tail[tail.find(END).expect("marker")..];
    assert!(updated.starts_with(&format!("{head}{BEGIN}")), "{updated}");
    assert!(updated.ends_with(tail), "{updated}");
    assert_eq!(section(&updated, "README").trim(), table.trim());
    assert!(!updated.contains("stale table"));

    // Writing again changes nothing.
    rules_doc(&[
        "-r",
        rules_arg,
        "--write",
        readme.to_str().expect("UTF-8 path"),
    ])
    .assert()
    .success();
    assert_eq!(
        std::fs::read_to_string(&readme).expect("read the README back"),
        updated
    );
}

#[test]
fn write_without_markers_fails() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let rules = write(dir.path(), "rules.yaml", RULE);
    let text = "# No markers here\n\nJust text.\n";
    let readme = write(dir.path(), "README.md", text);
    let only_end = write(dir.path(), "END.md", &format!("a\n{END}\n{BEGIN}\nb\n"));
    for file in [&readme, &only_end] {
        let out = rules_doc(&[
            "-r",
            rules.to_str().expect("UTF-8 path"),
            "--write",
            file.to_str().expect("UTF-8 path"),
        ])
        .output()
        .expect("run auditwatch");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("markers"), "{stderr}");
    }
    assert_eq!(std::fs::read_to_string(&readme).expect("read back"), text);
}

#[test]
fn bad_rules_or_config_exit_2() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let bad = write(dir.path(), "bad.yaml", "id: x\nseverity: loud\n");
    rules_doc(&["-r", bad.to_str().expect("UTF-8 path")])
        .assert()
        .code(2)
        .stdout("");
    let missing = dir.path().join("missing.yaml");
    rules_doc(&["-c", missing.to_str().expect("UTF-8 path")])
        .assert()
        .code(2)
        .stdout("");
}

/// The first YAML block of a Markdown file.
fn first_yaml_block(text: &str) -> &str {
    let start = text.find("```yaml\n").expect("a yaml block") + "```yaml\n".len();
    let len = text[start..].find("```").expect("the block's end");
    &text[start..start + len]
}

#[test]
fn the_config_reference_example_is_valid() {
    let doc = std::fs::read_to_string(root().join("docs/config.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("auditwatch.yaml"), first_yaml_block(&doc)).unwrap();
    std::os::unix::fs::symlink(root().join("rules"), dir.path().join("rules")).unwrap();
    let secret = "https://hooks.slack.com/services/T000/B000/very-secret";
    let out = Command::cargo_bin("auditwatch")
        .unwrap()
        .current_dir(dir.path())
        .arg("validate")
        .env("OPENAI_ADMIN_KEY", "sk-admin-doc-example")
        .env("SLACK_WEBHOOK_URL", secret)
        .env_remove("SMTP_USER")
        .env_remove("SMTP_PASSWORD")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("security-slack (slack)"), "{stdout}");
    assert!(
        !stdout.contains("very-secret") && !stdout.contains("sk-admin-doc"),
        "{stdout}"
    );
}

/// The fenced YAML blocks of a Markdown file.
fn yaml_blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    let mut block = String::new();
    for line in text.lines() {
        let fence = line.trim_start().starts_with("```");
        if !inside && fence && line.trim_start().starts_with("```yaml") {
            inside = true;
            block.clear();
        } else if inside && fence {
            inside = false;
            out.push(block.clone());
        } else if inside {
            block.push_str(line);
            block.push('\n');
        }
    }
    out
}

#[test]
fn the_rule_reference_examples_load_and_pass_their_tests() {
    let text = std::fs::read_to_string(root().join("docs/rules.md")).unwrap();
    let rules: Vec<String> = yaml_blocks(&text)
        .into_iter()
        .filter(|b| b.starts_with("id:"))
        .collect();
    assert!(rules.len() >= 5, "the reference shows whole rules");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    for (i, r) in rules.iter().enumerate() {
        std::fs::write(dir.path().join(format!("rules/example{i}.yaml")), r).unwrap();
    }
    std::fs::write(
        dir.path().join("auditwatch.yaml"),
        "rules: [rules/]\nlists:\n  break_glass_admins: [root@acme.example]\n\
         business_hours: {timezone: America/New_York, days: Mon-Fri, hours: \"09:00-18:00\"}\n",
    )
    .unwrap();
    let out = Command::cargo_bin("rulecheck")
        .unwrap()
        .args(["--test", "--require-tests", "-c"])
        .arg(dir.path().join("auditwatch.yaml"))
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    // Every rule shown ran its cases.
    for r in &rules {
        let id = r.lines().next().unwrap().trim_start_matches("id:").trim();
        assert!(said.contains(id), "{id} was tested:\n{said}");
    }
}

#[test]
fn the_reference_snippets_are_valid_rule_parts() {
    // Snippets (a `threshold:` or `suppress:` line) completed into a rule
    // must load, so the page never shows a key the loader refuses.
    let text = std::fs::read_to_string(root().join("docs/rules.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    for block in yaml_blocks(&text) {
        if block.starts_with("id:") {
            continue;
        }
        n += 1;
        let rule = format!(
            "id: snippet.{n}\ntitle: Snippet\nseverity: low\nmatch: {{type: login.failed}}\n{block}"
        );
        let path = dir.path().join(format!("s{n}.yaml"));
        std::fs::write(&path, rule).unwrap();
        let out = Command::cargo_bin("rulecheck")
            .unwrap()
            .args(["--test", "-r"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "snippet {n}:\n{block}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(n >= 2);
}

/// The keys the config loader accepts at `yaml`'s `zzz_probe`, read from the
/// loader's own "unknown field" error (so from the config types
/// themselves, not from a list kept beside them).
fn accepted_keys(yaml: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("probe.yaml");
    std::fs::write(&path, yaml).unwrap();
    let err = auditwatch::config::Config::load(&path)
        .expect_err("an unknown key is an error")
        .to_string();
    if err.contains("there are no fields") {
        return Vec::new();
    }
    let expected = err
        .split_once("expected ")
        .unwrap_or_else(|| panic!("{yaml}: no expected keys in {err:?}"))
        .1;
    expected
        .split(['`', ',', ' '])
        .filter(|w| !w.is_empty() && !["one", "of", "or"].contains(w))
        .map(str::to_owned)
        .collect()
}

/// The part of `doc` under the `## ` heading that names `` `name` ``.
fn doc_section<'d>(doc: &'d str, name: &str) -> &'d str {
    let mark = format!("`{name}`");
    let start = doc
        .match_indices("\n## ")
        .map(|(i, _)| i + 1)
        .find(|&i| doc[i..].lines().next().unwrap().contains(&mark))
        .unwrap_or_else(|| panic!("docs/config.md has no `## ` heading naming {mark}"));
    let end = doc[start + 3..]
        .find("\n## ")
        .map_or(doc.len(), |i| start + 3 + i);
    &doc[start..end]
}

fn documents(text: &str, key: &str) -> bool {
    text.contains(&format!("`{key}`"))
        || text.contains(&format!(".{key}`"))
        || text.contains(&format!("{key}:"))
}

#[test]
fn the_config_reference_documents_every_key_the_config_types_accept() {
    let doc = std::fs::read_to_string(root().join("docs/config.md")).unwrap();
    let mut missing = Vec::new();
    let sections = accepted_keys("zzz_probe: 1\n");
    assert!(sections.len() >= 10, "{sections:?}");
    let probes = [
        ("source", "source: {zzz_probe: 1}"),
        ("source", "source: {openai: {zzz_probe: 1}}"),
        ("source", "source: {file: {zzz_probe: 1}}"),
        ("business_hours", "business_hours: {zzz_probe: 1}"),
        ("state", "state: {zzz_probe: 1}"),
        ("smtp", "smtp: {zzz_probe: 1}"),
        ("destinations", "routing: {zzz_probe: 1}"),
        ("server", "server: {zzz_probe: 1}"),
        ("server", "heartbeat: {zzz_probe: 1}"),
        ("incidents", "incidents: {zzz_probe: 1}"),
    ];
    for name in &sections {
        let in_heading = doc
            .lines()
            .any(|l| l.starts_with("## ") && l.contains(&format!("`{name}`")));
        if !in_heading {
            missing.push(format!("section `{name}` has no heading"));
        }
    }
    for (section, yaml) in probes {
        let text = doc_section(&doc, section);
        for key in accepted_keys(yaml) {
            if !documents(text, &key) {
                missing.push(format!("`{key}` of `{yaml}`"));
            }
        }
    }
    // Every destination type, with its keys on its row of the table.
    let text = doc_section(&doc, "destinations");
    for kind in accepted_keys("destinations: {d: {type: zzz_probe}}") {
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("| `{kind}` |")));
        let Some(row) = row else {
            missing.push(format!("destination type `{kind}` has no row"));
            continue;
        };
        for key in accepted_keys(&format!(
            "destinations: {{d: {{type: {kind}, zzz_probe: 1}}}}"
        )) {
            if !documents(row, &key) {
                missing.push(format!("`{key}` of destination type `{kind}`"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/config.md does not document:\n{}",
        missing.join("\n")
    );
}
