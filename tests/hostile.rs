//! Hostile and unusual input, one class at a time, through the `rulecheck`
//! binary: nothing crashes, hangs, grows without bound or is misread, and
//! nothing raw from an event reaches a terminal.

mod common;

use common::*;
use serde_json::{Value, json};

/// A rule that alerts on every event, with a summary naming it.
fn every() -> String {
    rule(
        "every",
        "match: {id: {exists: true}}\nsummary: \"{{ id }} by {{ actor.email }}\"",
    )
}

fn good(id: &str, at: i64) -> Value {
    ev(id, "project.updated", at)
        .session("alice@example.com", "203.0.113.7")
        .json()
}

#[test]
fn a_file_cut_short_while_it_is_read_ends_early_without_a_crash() {
    let sb = Sandbox::new();
    let r = sb.write("rules.yaml", &every());
    let events: Vec<Value> = (0..60_000)
        .map(|i| good(&format!("e{i}"), T0 + i))
        .collect();
    let e = sb.events("events.jsonl", &events);
    for cut_after_ms in [0u64, 5, 20] {
        let text = std::fs::read(&e).unwrap();
        std::fs::write(&e, &text).unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_rulecheck"))
            .args(["--format", "jsonl", "-r"])
            .arg(&r)
            .arg(&e)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(cut_after_ms));
        std::fs::OpenOptions::new()
            .write(true)
            .open(&e)
            .unwrap()
            .set_len(1000)
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.code().is_some(),
            "killed by a signal: {:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn lines_longer_than_a_chunk_are_read_whole_from_pipes_and_gzip() {
    let sb = Sandbox::new();
    let r = sb.write("rules.yaml", &every());
    let long = ev("long", "project.updated", T0 + 1)
        .session("alice@example.com", "203.0.113.7")
        .details(json!({"blob": "x".repeat(6 << 20)}))
        .json();
    let text = jsonl(&[good("a", T0), long, good("b", T0 + 2)]);
    let e = sb.write("events.jsonl", &text);
    let gz = gzip(&e);
    let out = run(sb.rulecheck().arg("-r").arg(&r).arg(&gz));
    out.status(0);
    assert_eq!(out.fired_events(), ["a", "long", "b"], "{}", out.stderr);
    assert!(out.stderr.contains("0 malformed lines"), "{}", out.stderr);
    let out = run(sb
        .rulecheck()
        .arg("-r")
        .arg(&r)
        .arg("-")
        .write_stdin(text.into_bytes()));
    out.status(0);
    assert_eq!(out.fired_events(), ["a", "long", "b"]);
}

#[test]
fn one_bad_element_of_an_array_loses_only_itself() {
    let sb = Sandbox::new();
    let r = sb.write("rules.yaml", &every());
    let text = format!(
        "[\n{},\n{{\"id\": \"bad\", \"type\": x}},\n{}\n]\n",
        good("a", T0),
        good("b", T0 + 1)
    );
    let e = sb.write("events.json", &text);
    let out = run(sb.rulecheck().arg("-r").arg(&r).arg(&e));
    out.status(0);
    assert_eq!(out.fired_events(), ["a", "b"]);
    assert!(
        out.stderr.contains("events.json:3:"),
        "the bad element's line\n{out}"
    );
}

#[test]
fn a_byte_order_mark_does_not_cost_the_first_event() {
    let sb = Sandbox::new();
    let r = sb.write("rules.yaml", &every());
    for (name, text) in [
        ("lines.jsonl", jsonl(&[good("a", T0), good("b", T0 + 1)])),
        (
            "array.json",
            format!("[{}, {}]", good("a", T0), good("b", T0 + 1)),
        ),
    ] {
        let mut bytes = b"\xef\xbb\xbf".to_vec();
        bytes.extend_from_slice(text.as_bytes());
        let e = sb.write_bytes(name, &bytes);
        let out = run(sb.rulecheck().arg("-r").arg(&r).arg(&e));
        out.status(0);
        assert_eq!(out.fired_events(), ["a", "b"], "{name}\n{out}");
    }
}

#[test]
fn a_line_that_is_not_utf8_loses_only_itself() {
    let sb = Sandbox::new();
    let r = sb.write("rules.yaml", &every());
    let mut bytes = jsonl(&[good("a", T0)]).into_bytes();
    bytes.extend_from_slice(b"{\"id\": \"bad\xff\", \"type\": \"x\", \"effective_at\": 1}\n");
    bytes.extend_from_slice(jsonl(&[good("b", T0 + 1)]).as_bytes());
    let e = sb.write_bytes("events.jsonl", &bytes);
    let out = run(sb.rulecheck().arg("-r").arg(&r).arg(&e));
    out.status(0);
    assert_eq!(out.fired_events(), ["a", "b"], "{out}");
    assert!(out.stderr.contains("1 malformed line"), "{out}");
    assert!(
        out.stderr.contains("events.jsonl:2"),
        "the bad line's number\n{out}"
    );
}

/// Peak memory of a rulecheck run, from its summary line.
fn peak_mib(out: &Run) -> u64 {
    out.stderr
        .split("peak memory ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no peak memory in\n{out}"))
}

#[test]
fn a_compressed_array_of_whitespace_or_an_endless_value_stays_small() {
    let sb = Sandbox::new();
    let r = sb.write("rules.yaml", &every());
    for (name, script) in [
        (
            "spaces",
            "printf '['; head -c 400000000 /dev/zero | tr '\\0' ' '; printf ']'",
        ),
        (
            "string",
            "printf '[\"'; head -c 400000000 /dev/zero | tr '\\0' 'a'",
        ),
    ] {
        let gz = sb.path(&format!("{name}.json.gz"));
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("({script}) | gzip -1 > '{}'", gz.display()))
            .status()
            .unwrap();
        assert!(status.success());
        let out = run(sb.rulecheck().arg("-r").arg(&r).arg(&gz));
        assert!(out.code == 0 || out.code == 2, "{out}");
        let peak = peak_mib(&out);
        assert!(
            peak < 250,
            "{name}: peak memory {peak} MiB for 400 MB of input"
        );
    }
}

#[test]
fn an_object_with_a_key_twice_is_refused_by_every_reader() {
    let sb = Sandbox::new();
    let r = sb.write("rules.yaml", &every());
    let lines = [
        // The fast reader's shape.
        format!(
            r#"{{"id":"d1","type":"project.updated","type":"api_key.created","effective_at":{T0}}}"#
        ),
        // An escape sends it to the serde reader.
        format!(
            r#"{{"id":"d2","type":"project.upd\u0061ted","effective_at":{T0},"effective_at":1}}"#
        ),
        format!(
            r#"{{"id":"d3","type":"x","effective_at":{T0},"actor":null,"actor":{{"type":"session"}}}}"#
        ),
        good("ok", T0).to_string(),
    ];
    let e = sb.write("events.jsonl", &(lines.join("\n") + "\n"));
    let out = run(sb.rulecheck().arg("-r").arg(&r).arg(&e));
    out.status(0);
    assert_eq!(out.fired_events(), ["ok"]);
    for line in 1..=3 {
        assert!(
            out.stderr.contains(&format!("events.jsonl:{line}:")) && out.stderr.contains("twice"),
            "line {line} refused\n{out}"
        );
    }
}

#[test]
fn a_field_serde_cannot_hold_does_not_hide_the_actor() {
    let sb = Sandbox::new();
    let r = sb.write(
        "rules.yaml",
        &rule(
            "alice",
            "match: {actor.session.user.email: alice@example.com}",
        ),
    );
    let mut huge = good("huge", T0);
    huge["extra"] = json!(1);
    let text = huge.to_string().replace("\"extra\":1", "\"extra\":1e400");
    let e = sb.write("events.jsonl", &(text + "\n"));
    let out = run(sb.rulecheck().arg("-r").arg(&r).arg(&e));
    out.status(0);
    assert_eq!(out.fired_events(), ["huge"], "{out}");
}

#[test]
fn an_escaped_list_object_is_a_list_page() {
    let sb = Sandbox::new();
    let r = sb.write("rules.yaml", &every());
    let page = format!(
        r#"{{"object":"l\u0069st","data":[{},{}],"has_more":false}}"#,
        good("a", T0),
        good("b", T0 + 1)
    );
    let e = sb.write("page.jsonl", &(page + "\n"));
    let out = run(sb.rulecheck().arg("-r").arg(&r).arg(&e));
    out.status(0);
    assert_eq!(out.fired_events(), ["a", "b"]);
}

#[test]
fn times_outside_real_time_are_refused() {
    let sb = Sandbox::new();
    let r = sb.write(
        "rules.yaml",
        &rule(
            "quiet",
            "match: {id: {exists: true}}\nsuppress: {window: 1h, key: actor.email}",
        ),
    );
    let lines: Vec<String> = [
        "9223372036854775807",
        "-5",
        "946707779200000",
        "-9223372036854775808",
    ]
    .iter()
    .enumerate()
    .map(|(i, t)| format!(r#"{{"id":"t{i}","type":"x","effective_at":{t}}}"#))
    .chain([good("ok", T0).to_string()])
    .collect();
    let e = sb.write("events.jsonl", &(lines.join("\n") + "\n"));
    let out = run(sb.rulecheck().arg("-r").arg(&r).arg(&e));
    out.status(0);
    assert_eq!(out.fired_events(), ["ok"]);
    assert!(out.stderr.contains("4 malformed lines"), "{out}");
}

#[test]
fn a_summary_that_loops_without_end_fails_instead_of_hanging() {
    let sb = Sandbox::new();
    let r = sb.write(
        "rules.yaml",
        &rule(
            "loops",
            "match: {id: {exists: true}}\nsummary: \"{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}\"",
        ),
    );
    let e = sb.events("events.jsonl", &[good("a", T0)]);
    let started = std::time::Instant::now();
    let out = run(sb.rulecheck().arg("-r").arg(&r).arg(&e));
    out.status(0);
    let alerts = out.alerts();
    assert_eq!(alerts.len(), 1);
    assert!(
        text(&alerts[0]["summary"]).contains("summary failed"),
        "{out}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

#[test]
fn links_back_to_a_parent_folder_do_not_make_loading_endless() {
    let sb = Sandbox::new();
    sb.write("rules/one.yaml", &every());
    std::os::unix::fs::symlink(".", sb.path("rules/again")).unwrap();
    std::os::unix::fs::symlink("..", sb.path("rules/up")).unwrap();
    std::os::unix::fs::symlink("one.yaml", sb.path("rules/same.yaml")).unwrap();
    let out = run(sb.rulecheck().args(["--test", "-r"]).arg(sb.path("rules")));
    out.status(0);
}

#[test]
fn control_and_bidi_characters_never_reach_the_terminal_raw() {
    let sb = Sandbox::new();
    let r = sb.write("rules.yaml", &every());
    let evil = "mallory\u{1b}]0;pwned\u{7}\u{1b}[2J\u{202e}moc.elpmaxe@\u{9b}31m";
    let event = ev("e\u{1b}[31m1", "project.updated", T0)
        .session(evil, "203.0.113.7")
        .json();
    let e = sb.events("events.jsonl", &[event]);
    let out = run(sb
        .rulecheck()
        .args(["--format", "table", "-r"])
        .arg(&r)
        .arg(&e));
    out.status(0);
    for (name, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        for bad in ['\u{1b}', '\u{7}', '\u{202e}', '\u{9b}'] {
            assert!(!text.contains(bad), "{name} holds {bad:?}\n{text}");
        }
    }
    assert!(out.stdout.contains("mallory"), "{out}");
}
