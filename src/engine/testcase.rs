//! Running inline rule tests: each case's events go through its rule alone,
//! with threshold and suppression, by the same call as any other batch.

use super::{Batch, Evaluator, RuleState};
use crate::event::Event;
use crate::rules::{RuleSet, TestCase};

/// The outcome of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub rule_id: String,
    pub name: String,
    pub passed: bool,
    /// What went wrong, for a failed case.
    pub detail: String,
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
    let batch = Batch::new(events);
    let evaluation = Evaluator::for_rule(rules, rule).evaluate(&batch, &mut RuleState::new());
    if let Some(err) = evaluation.errors.first() {
        return result(
            false,
            format!("evaluation error on {}: {}", err.event_id, err.message),
        );
    }
    let alerts = evaluation.alerts;
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
