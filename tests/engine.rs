//! The evaluation seam: one batch, many batches with the state saved and
//! restored between them, and `rulecheck`'s parallel file path all give the
//! same alerts; the state survives a rule set that changed.

use std::path::{Path, PathBuf};

use auditwatch::alert::Alert;
use auditwatch::config::RuleConfig;
use auditwatch::engine::{Batch, Evaluator, RuleState};
use auditwatch::event::Event;
use auditwatch::replay::{self, Input};
use auditwatch::rules::{Environment, RuleSet};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn default_pack() -> RuleSet {
    let config = RuleConfig::load(&root().join("auditwatch.yaml")).unwrap();
    RuleSet::load(&config.rules, &config.env).unwrap()
}

fn sample_lines() -> Vec<String> {
    std::fs::read_to_string(root().join("examples/sample-events.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn parse(lines: &[String]) -> Vec<Event<'_>> {
    lines.iter().map(|l| Event::parse(l).unwrap()).collect()
}

#[test]
fn many_small_batches_with_a_saved_state_give_the_alerts_of_one_batch() {
    let rules = default_pack();
    let lines = sample_lines();

    let one = Batch::new(parse(&lines));
    let whole = Evaluator::new(&rules).evaluate(&one, &mut RuleState::new());
    assert!(
        whole.alerts.len() > 20,
        "the sample raises alerts ({})",
        whole.alerts.len()
    );
    assert!(
        whole.alerts.iter().any(|a| a.event_ids.len() > 1),
        "a threshold fired"
    );
    assert!(
        whole.alerts.iter().any(|a| a.suppressed > 0),
        "suppression quieted repeats"
    );

    // The same events in time order, cut into batches of 37, each
    // evaluated by a new evaluator against the state saved after the last.
    let ordered: Vec<String> = {
        let mut pairs: Vec<(i64, String, String)> = lines
            .iter()
            .map(|l| {
                let e = Event::parse(l).unwrap();
                (e.effective_at(), e.id().to_owned(), l.clone())
            })
            .collect();
        pairs.sort();
        pairs.into_iter().map(|(_, _, l)| l).collect()
    };
    let mut saved = RuleState::new().save();
    let mut alerts: Vec<Alert> = Vec::new();
    let mut batches = 0;
    for slice in ordered.chunks(37) {
        let (mut state, dropped) = RuleState::restore(&saved, &rules).unwrap();
        assert!(dropped.is_empty(), "the same rules keep their state");
        let batch = Batch::new(parse(slice));
        alerts.extend(Evaluator::new(&rules).evaluate(&batch, &mut state).alerts);
        saved = state.save();
        batches += 1;
    }
    assert!(batches > 200);
    assert_eq!(alerts.len(), whole.alerts.len());
    for (a, b) in alerts.iter().zip(&whole.alerts) {
        assert_eq!(a, b);
    }
}

#[test]
fn the_parallel_file_path_gives_the_alerts_of_one_batch() {
    let rules = default_pack();
    let lines = sample_lines();
    let whole = Evaluator::new(&rules).evaluate(&Batch::new(parse(&lines)), &mut RuleState::new());
    // With facts, so that they are compared too.
    let opts = replay::Options {
        threads: 2,
        facts: true,
        ..replay::Options::default()
    };
    let input = Input::Path(root().join("examples/sample-events.jsonl"));
    let report = replay::replay(&rules, &[input], &opts, &|_, _| {}).unwrap();
    assert_eq!(report.evaluation.alerts, whole.alerts);
    assert_eq!(report.evaluation.stats, whole.stats);
}

/// Writes `text` as a rule file in a new folder and loads it.
fn load_rule(dir: &Path, text: &str) -> RuleSet {
    std::fs::write(dir.join("r.yaml"), text).unwrap();
    RuleSet::load(&[dir.to_owned()], &Environment::default()).unwrap()
}

fn login_failed(id: &str, at: i64) -> String {
    format!(
        r#"{{"id":"{id}","type":"login.failed","effective_at":{at},"actor":{{"type":"session","session":{{"user":{{"id":"u1","email":"a@example.com"}}}}}}}}"#
    )
}

#[test]
fn a_threshold_fires_across_a_restore_with_the_ids_of_every_batch() {
    let dir = tempfile::tempdir().unwrap();
    let burst = "id: burst\ntitle: Burst\nseverity: high\nmatch: {type: login.failed}\n\
                 threshold: {count: 3, window: 10m, group_by: actor.email}\n";
    let rules = load_rule(dir.path(), burst);
    let first = [login_failed("e1", 1000), login_failed("e2", 1010)];
    let mut state = RuleState::new();
    let out = Evaluator::new(&rules).evaluate(&Batch::new(parse(&first)), &mut state);
    assert!(out.alerts.is_empty());
    assert!(!state.is_empty());
    let saved = state.save();

    // A new process: the rules are loaded again, the state restored.
    let rules = load_rule(dir.path(), burst);
    let (mut state, dropped) = RuleState::restore(&saved, &rules).unwrap();
    assert!(dropped.is_empty());
    let second = [login_failed("e3", 1020)];
    let out = Evaluator::new(&rules).evaluate(&Batch::new(parse(&second)), &mut state);
    assert_eq!(out.alerts.len(), 1);
    assert_eq!(out.alerts[0].event_ids, ["e1", "e2", "e3"]);
    assert_eq!(out.alerts[0].event_id, "e3");

    // A changed threshold drops the rule's old counts, and says so.
    let mut state = RuleState::restore(&saved, &rules).unwrap().0;
    let changed = load_rule(dir.path(), &burst.replace("count: 3", "count: 2"));
    let (mut restored, dropped) = RuleState::restore(&saved, &changed).unwrap();
    assert_eq!(dropped, ["burst"]);
    let out = Evaluator::new(&changed).evaluate(&Batch::new(parse(&second)), &mut restored);
    assert!(out.alerts.is_empty(), "the old counts were dropped");
    // The unchanged rule still fires with its restored counts.
    let out = Evaluator::new(&rules).evaluate(&Batch::new(parse(&second)), &mut state);
    assert_eq!(out.alerts.len(), 1);
}

#[test]
fn a_saved_state_of_another_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rules = load_rule(
        dir.path(),
        "id: r\ntitle: R\nseverity: low\nmatch: {type: login.failed}\n",
    );
    let err = RuleState::restore(br#"{"version":99,"rules":[]}"#, &rules).unwrap_err();
    assert!(err.to_string().contains("version 99"), "{err}");
    assert!(RuleState::restore(b"not json", &rules).is_err());
}

#[test]
fn a_batch_orders_its_events_and_keeps_the_first_of_each_id() {
    let lines = [
        login_failed("b", 20),
        login_failed("a", 20),
        login_failed("c", 10),
        login_failed("a", 5),
    ];
    let batch = Batch::new(parse(&lines));
    let order: Vec<(&str, i64)> = batch
        .events()
        .iter()
        .map(|e| (e.id(), e.effective_at()))
        .collect();
    assert_eq!(order, [("c", 10), ("a", 20), ("b", 20)]);
    assert_eq!(batch.duplicates(), 1);
}

fn login_succeeded(id: &str, at: i64) -> String {
    login_failed(id, at).replace("login.failed", "login.succeeded")
}

#[test]
fn a_sequence_completes_across_a_restore_in_order_and_consumes_its_events() {
    let dir = tempfile::tempdir().unwrap();
    let rule = "id: seq\ntitle: Failures then success\nseverity: high\n\
                sequence:\n  by: [actor.email]\n  within: 10m\n  steps:\n\
                \x20   - {match: {type: login.failed}, count: 2}\n\
                \x20   - {match: {type: login.succeeded}}\n";
    let rules = load_rule(dir.path(), rule);
    // A success before any failure, then two failures: nothing yet.
    let first = [
        login_succeeded("s0", 990),
        login_failed("f1", 1000),
        login_failed("f2", 1010),
    ];
    let mut state = RuleState::new();
    let out = Evaluator::new(&rules).evaluate(&Batch::new(parse(&first)), &mut state);
    assert!(out.alerts.is_empty(), "{:?}", out.alerts);
    let saved = state.save();

    // A new process completes it with the success.
    let rules = load_rule(dir.path(), rule);
    let (mut state, dropped) = RuleState::restore(&saved, &rules).unwrap();
    assert!(dropped.is_empty());
    let second = [login_succeeded("s1", 1020), login_succeeded("s2", 1030)];
    let out = Evaluator::new(&rules).evaluate(&Batch::new(parse(&second)), &mut state);
    assert_eq!(out.alerts.len(), 1, "s2 has no failures of its own left");
    assert_eq!(out.alerts[0].event_ids, ["f1", "f2", "s1"]);
    assert_eq!(out.alerts[0].event_id, "s1");
    assert_eq!(out.stats[0].matched, 2);

    // The same events as one batch give the same alert.
    let all: Vec<String> = first.iter().chain(&second).cloned().collect();
    let mut fresh = RuleState::new();
    let one = Evaluator::new(&rules).evaluate(&Batch::new(parse(&all)), &mut fresh);
    assert_eq!(one.alerts.len(), 1);
    assert_eq!(one.alerts[0].event_ids, out.alerts[0].event_ids);

    // Too slow: the success comes after `within`.
    let slow = [
        login_failed("g1", 5000),
        login_failed("g2", 5100),
        login_succeeded("t1", 5000 + 601),
    ];
    let out = Evaluator::new(&rules).evaluate(&Batch::new(parse(&slow)), &mut RuleState::new());
    assert!(out.alerts.is_empty());
    // The latest failures count: an old one is replaced by newer ones.
    let sliding = [
        login_failed("h1", 8000),
        login_failed("h2", 8500),
        login_failed("h3", 8550),
        login_succeeded("u1", 8700),
    ];
    let out = Evaluator::new(&rules).evaluate(&Batch::new(parse(&sliding)), &mut RuleState::new());
    assert_eq!(out.alerts.len(), 1);
    assert_eq!(out.alerts[0].event_ids, ["h2", "h3", "u1"]);
}

fn login_from(id: &str, at: i64, email: &str, country: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"login.succeeded","effective_at":{at},"actor":{{"type":"session","session":{{"user":{{"id":"u-{email}","email":"{email}"}},"ip_address":"198.51.100.1","ip_address_details":{{"country":"{country}"}}}}}}}}"#
    )
}

#[test]
fn first_seen_learns_then_alerts_on_new_values_and_forgets_old_ones_across_a_restore() {
    const DAY: i64 = 86_400;
    let dir = tempfile::tempdir().unwrap();
    let rule = "id: new_country\ntitle: New country\nseverity: medium\nmatch: {type: login.succeeded}\n\
                first_seen: {of: actor.country, per: actor.email, learn_for: 7d, forget_after: 30d}\n";
    let rules = load_rule(dir.path(), rule);
    let t = 1_700_000_000;
    let learning = [
        login_from("a1", t, "ana@x", "US"),
        login_from("a2", t + DAY, "ana@x", "CA"),
        login_from("b1", t + 2 * DAY, "ben@x", "US"),
        // No country: not a value, never new.
        r#"{"id":"n1","type":"login.succeeded","effective_at":1700200000,"actor":{"type":"session","session":{"user":{"id":"u","email":"ana@x"}}}}"#.to_owned(),
    ];
    let mut state = RuleState::new();
    let out = Evaluator::new(&rules).evaluate(&Batch::new(parse(&learning)), &mut state);
    assert!(out.alerts.is_empty(), "learning: {:?}", out.alerts);
    let saved = state.save();
    let rules = load_rule(dir.path(), rule);
    let (mut state, _) = RuleState::restore(&saved, &rules).unwrap();
    let after = [
        login_from("a3", t + 8 * DAY, "ana@x", "CA"), // known
        login_from("a4", t + 9 * DAY, "ana@x", "BR"), // new: alert
        login_from("a5", t + 9 * DAY + 60, "ana@x", "BR"), // now known
        login_from("c1", t + 10 * DAY, "cat@x", "FR"), // a new person: learned
        login_from("c2", t + 11 * DAY, "cat@x", "DE"), // new for cat: alert
        login_from("a6", t + 35 * DAY, "ana@x", "BR"), // known: 26 days since
        // US was last seen 60 days before, BR 25: forgotten, new again.
        login_from("a7", t + 60 * DAY, "ana@x", "US"),
        // Ben was last seen 98 days before: a new key, learned.
        login_from("b2", t + 100 * DAY, "ben@x", "US"),
        // Nothing of ana seen for 60 days: she counts as a new key again.
        login_from("a8", t + 120 * DAY, "ana@x", "CA"),
    ];
    let out = Evaluator::new(&rules).evaluate(&Batch::new(parse(&after)), &mut state);
    let fired: Vec<&str> = out.alerts.iter().map(|a| a.event_id.as_str()).collect();
    assert_eq!(fired, ["a4", "c2", "a7"]);

    // The same events in one batch give the same alerts.
    let all: Vec<String> = learning.iter().chain(&after).cloned().collect();
    let one = Evaluator::new(&rules).evaluate(&Batch::new(parse(&all)), &mut RuleState::new());
    let again: Vec<&str> = one.alerts.iter().map(|a| a.event_id.as_str()).collect();
    assert_eq!(again, fired);

    // With `new_keys: true`, a person's first country alerts too.
    let rules = load_rule(
        dir.path(),
        &rule.replace("forget_after: 30d", "forget_after: 30d, new_keys: true"),
    );
    let one = Evaluator::new(&rules).evaluate(&Batch::new(parse(&all)), &mut RuleState::new());
    let with_new: Vec<&str> = one.alerts.iter().map(|a| a.event_id.as_str()).collect();
    assert_eq!(with_new, ["a4", "c1", "c2", "a7", "b2", "a8"]);

    // Pruning the state after every event changes nothing: what it drops
    // could no longer count.
    for rules in [load_rule(dir.path(), rule), rules] {
        let whole =
            Evaluator::new(&rules).evaluate(&Batch::new(parse(&all)), &mut RuleState::new());
        let mut state = RuleState::new();
        let mut pruned = Vec::new();
        for line in &all {
            let batch = Batch::new(parse(std::slice::from_ref(line)));
            let out = Evaluator::new(&rules).evaluate(&batch, &mut state);
            pruned.extend(out.alerts.into_iter().map(|a| a.event_id));
            let now: serde_json::Value = serde_json::from_str(line).unwrap();
            state.prune(&rules, now["effective_at"].as_i64().unwrap());
        }
        let whole: Vec<String> = whole.alerts.into_iter().map(|a| a.event_id).collect();
        assert_eq!(pruned, whole, "pruned after every event");
    }
}

fn key_event(id: &str, ty: &str, at: i64, actor: &str, key: Option<&str>) -> String {
    let actor = match key {
        Some(k) => format!(
            r#"{{"type":"api_key","api_key":{{"id":"{k}","type":"user","user":{{"id":"{actor}","email":"{actor}@x"}}}}}}"#
        ),
        None => format!(
            r#"{{"type":"session","session":{{"user":{{"id":"{actor}","email":"{actor}@x"}}}}}}"#
        ),
    };
    format!(r#"{{"id":"{id}","type":"{ty}","effective_at":{at},"actor":{actor}}}"#)
}

#[test]
fn incidents_join_alerts_that_share_an_entity_within_the_window_and_survive_a_restore() {
    use auditwatch::event::FieldPath;
    use auditwatch::rules::IncidentRules;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("r.yaml"),
        "id: keys\ntitle: Key\nseverity: high\nmatch: {type: api_key.created}\n---\n\
         id: lists\ntitle: List\nseverity: critical\nmatch: {type: ip_allowlist.deleted}\n",
    )
    .unwrap();
    let env = Environment {
        incidents: Some(std::sync::Arc::new(IncidentRules {
            window: 3600,
            by: vec![
                FieldPath::parse("actor.id").unwrap(),
                FieldPath::parse("actor.api_key_id").unwrap(),
            ],
        })),
        ..Environment::default()
    };
    let rules = RuleSet::load(&[dir.path().to_owned()], &env).unwrap();
    let first = [
        key_event("a1", "api_key.created", 1000, "ann", None),
        key_event("b1", "api_key.created", 1100, "ben", Some("key_b")),
    ];
    let mut state = RuleState::new();
    let out = Evaluator::new(&rules).evaluate(&Batch::new(parse(&first)), &mut state);
    let saved = state.save();
    let (mut state, _) = RuleState::restore(&saved, &rules).unwrap();
    let second = [
        // Ann again, 50 minutes later: her incident.
        key_event("a2", "ip_allowlist.deleted", 4000, "ann", None),
        // Ben's key used by someone else: tied by the key.
        key_event("c1", "ip_allowlist.deleted", 4100, "cat", Some("key_b")),
        // Ann after more than an hour since her last alert: a new incident.
        key_event("a3", "api_key.created", 4000 + 3601, "ann", None),
    ];
    let later = Evaluator::new(&rules).evaluate(&Batch::new(parse(&second)), &mut state);
    let of = |alerts: &[auditwatch::alert::Alert]| -> Vec<(String, String)> {
        alerts
            .iter()
            .map(|a| (a.event_id.clone(), a.facts.incident.clone().unwrap()))
            .collect()
    };
    let mut got = of(&out.alerts);
    got.extend(of(&later.alerts));
    let want: Vec<(String, String)> = [
        ("a1", "incident-a1"),
        ("b1", "incident-b1"),
        ("a2", "incident-a1"),
        ("c1", "incident-b1"),
        ("a3", "incident-a3"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(got, want);
    // One batch gives the same.
    let all: Vec<String> = first.iter().chain(&second).cloned().collect();
    let one = Evaluator::new(&rules).evaluate(&Batch::new(parse(&all)), &mut RuleState::new());
    assert_eq!(of(&one.alerts), want);
}

fn login_ip(id: &str, at: i64, ip: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"login.succeeded","effective_at":{at},"actor":{{"type":"session","session":{{"user":{{"id":"u1","email":"a@example.com"}},"ip_address":"{ip}"}}}}}}"#
    )
}

#[test]
fn a_condition_several_rules_test_is_answered_for_each_event_anew() {
    // `in_8` is written alike in three places (two rules and a nested
    // `any`): it is worked out once per event. The others differ in their
    // operator or operand, and must not take its answer.
    let dir = tempfile::tempdir().unwrap();
    let in_8 = "actor.ip: {cidr: 10.0.0.0/8}";
    let rules = load_rule(
        dir.path(),
        &format!(
            "id: a\ntitle: A\nseverity: low\nmatch: {{{in_8}}}\n---\n\
             id: b\ntitle: B\nseverity: low\nmatch: {{type: login.succeeded, {in_8}}}\n---\n\
             id: c\ntitle: C\nseverity: low\nmatch: {{actor.ip: {{not_cidr: 10.0.0.0/8}}}}\n---\n\
             id: d\ntitle: D\nseverity: low\nmatch: {{actor.ip: {{cidr: 10.0.0.0/16}}}}\n---\n\
             id: e\ntitle: E\nseverity: low\nmatch: {{any: [{{{in_8}}}, {{actor.email: b@example.com}}]}}\n"
        ),
    );
    let ips = [
        "10.1.2.3",
        "10.0.0.9",
        "192.0.2.1",
        "10.0.4.4",
        "198.51.100.7",
        "10.200.0.1",
    ];
    let lines: Vec<String> = (0..60)
        .map(|i| login_ip(&format!("e{i:02}"), 1000 + i, ips[i as usize % ips.len()]))
        .collect();
    let out = Evaluator::new(&rules).evaluate(&Batch::new(parse(&lines)), &mut RuleState::new());
    let matched = |id: &str| out.stats.iter().find(|s| s.id == id).unwrap().matched;
    let per_round = |f: fn(&str) -> bool| 10 * ips.iter().filter(|ip| f(ip)).count() as u64;
    assert_eq!(matched("a"), per_round(|ip| ip.starts_with("10.")));
    assert_eq!(matched("b"), matched("a"));
    assert_eq!(matched("c"), per_round(|ip| !ip.starts_with("10.")));
    assert_eq!(matched("d"), per_round(|ip| ip.starts_with("10.0.")));
    assert_eq!(matched("e"), matched("a"));
    assert_eq!(matched("a"), 40);
    assert_eq!(matched("d"), 20);
}
