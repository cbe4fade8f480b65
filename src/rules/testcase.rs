//! Inline rule tests (`tests:` in a rule): each case's events run through the
//! rule alone, with threshold and suppression, exactly as a replay would.

use std::sync::Arc;

use super::{RuleSet, RuleState, Severity};
use crate::event::Event;
use crate::replay::{Batch, Events, order_and_dedupe};

/// One inline test case.
#[derive(Debug, Clone)]
pub struct TestCase {
    pub name: String,
    /// Position among the rule's cases (0-based).
    pub index: usize,
    pub events: Vec<Arc<serde_json::Value>>,
    pub expect: Option<bool>,
    pub expect_alerts: Option<usize>,
    pub expect_severity: Option<Severity>,
}

/// The outcome of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub rule_id: String,
    pub name: String,
    pub passed: bool,
    /// What went wrong, for a failed case.
    pub detail: String,
}

impl TestCase {
    /// True when the case expects at least one alert.
    pub fn expects_alert(&self) -> bool {
        self.expect == Some(true) || self.expect_alerts.is_some_and(|n| n > 0)
    }

    /// True when the case expects no alert.
    pub fn expects_quiet(&self) -> bool {
        self.expect == Some(false) || self.expect_alerts == Some(0)
    }
}

/// Runs every case of rule `rule` of the set.
pub fn run_rule(rules: &RuleSet, rule: usize) -> Vec<CaseResult> {
    let r = &rules.rules()[rule];
    r.tests
        .iter()
        .map(|case| run_case(rules, rule, case))
        .collect()
}

fn run_case(rules: &RuleSet, rule: usize, case: &TestCase) -> CaseResult {
    let r = &rules.rules()[rule];
    let result = |passed: bool, detail: String| CaseResult {
        rule_id: r.id.clone(),
        name: case.name.clone(),
        passed,
        detail,
    };
    let texts: Vec<String> = case
        .events
        .iter()
        .enumerate()
        .map(|(i, ev)| {
            let mut ev = (**ev).clone();
            if let Some(obj) = ev.as_object_mut() {
                obj.entry("id")
                    .or_insert_with(|| format!("test-{}-{}", case.index + 1, i + 1).into());
            }
            ev.to_string()
        })
        .collect();
    let mut events = Vec::with_capacity(texts.len());
    for (i, text) in texts.iter().enumerate() {
        match Event::parse(text) {
            Ok(ev) => events.push(ev),
            Err(e) => return result(false, format!("event {}: {e}", i + 1)),
        }
    }
    order_and_dedupe(&mut events);
    let mut batch = Batch::default();
    let mut scratch = super::Scratch::default();
    for (seq, ev) in events.iter().enumerate() {
        let mut view = None;
        let found = super::Found {
            type_checked: false,
            seq: seq as u64,
            at: None,
            view: &mut view,
            scratch: &mut scratch,
        };
        rules.check_rule(rule, ev, found, &mut batch.hits, &mut batch.errors);
    }
    if let Some(err) = batch.errors.first() {
        return result(
            false,
            format!("evaluation error on {}: {}", err.event_id, err.message),
        );
    }
    let mut state = RuleState::new();
    let source = Events {
        events: &events,
        keys: scratch.keys(),
    };
    let alerts = batch.finish(rules, &mut state, &source).alerts;
    let n = alerts.len();
    let mut problems = Vec::new();
    if let Some(want) = case.expect
        && want != (n > 0)
    {
        problems.push(if want {
            "expected an alert, got none".to_owned()
        } else {
            format!("expected no alert, got {n}")
        });
    }
    if let Some(want) = case.expect_alerts
        && want != n
    {
        problems.push(format!("expected {want} alerts, got {n}"));
    }
    if let Some(want) = case.expect_severity {
        if let Some(bad) = alerts.iter().find(|a| a.severity != want) {
            problems.push(format!("expected severity {want}, got {}", bad.severity));
        }
        if alerts.is_empty() {
            problems.push(format!("expected severity {want}, but no alert went out"));
        }
    }
    result(problems.is_empty(), problems.join("; "))
}
