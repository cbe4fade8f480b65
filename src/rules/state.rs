//! Threshold and suppression state, on event time: the only part of rule
//! evaluation that depends on the order of events, kept in one object.

use std::collections::VecDeque;
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

use super::{EventSource, Hit, Rule, RuleSet};
use crate::alert::Alert;

/// Threshold groups and suppression keys of every rule of a rule set.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct RuleState {
    /// Rule ids, in the order of the rule set the state is bound to.
    ids: Vec<String>,
    /// Each rule's groups and keys, aligned with `ids`.
    rules: Vec<PerRule>,
    #[serde(skip)]
    since_prune: u32,
    /// Distinct values held by threshold entries, stored once.
    #[serde(skip)]
    values: FxHashSet<Arc<str>>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct PerRule {
    groups: FxHashMap<Box<str>, VecDeque<Entry>>,
    suppress: FxHashMap<Box<str>, Quiet>,
}

/// One match counted by a threshold.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    at: i64,
    /// The event's number in the [`EventSource`] that feeds the state: a
    /// source that feeds one state over several batches keeps numbering.
    event: u64,
    distinct: Option<Arc<str>>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Quiet {
    last_sent: i64,
    pending: u64,
}

/// What one matching event led to.
#[derive(Debug)]
pub enum Outcome {
    /// Counted towards a threshold that has not fired.
    Counted,
    /// Raised an alert that `suppress` quieted.
    Suppressed,
    /// Raised an alert that goes out.
    Alert(Alert),
}

impl RuleState {
    pub fn new() -> RuleState {
        RuleState::default()
    }

    /// Feeds one match to its rule's threshold and suppression. Matches must
    /// come in event-time order for exact results.
    pub fn apply(&mut self, rules: &RuleSet, hit: &Hit, events: &dyn EventSource) -> Outcome {
        let rule = &rules.rules()[hit.rule];
        if self.ids.len() != rules.len() || self.ids[hit.rule] != rule.id {
            self.bind(rules);
        }
        self.maybe_prune(hit.effective_at, rules);
        let state = &mut self.rules[hit.rule];
        let key = |k: Option<super::Key>| k.map_or("", |k| events.key(hit.event, k));
        let event_ids = match &rule.threshold {
            None => vec![events.id(hit.event).to_owned()],
            Some(t) => {
                let text = key(hit.group);
                let group = match state.groups.get_mut(text) {
                    Some(g) => g,
                    None => state.groups.entry(text.into()).or_default(),
                };
                let distinct = hit.distinct.map(|d| {
                    let text = events.key(hit.event, d);
                    match self.values.get(text) {
                        Some(v) => v.clone(),
                        None => {
                            let v: Arc<str> = text.into();
                            self.values.insert(v.clone());
                            v
                        }
                    }
                });
                let pos = group.partition_point(|e| e.at <= hit.effective_at);
                group.insert(
                    pos,
                    Entry {
                        at: hit.effective_at,
                        event: hit.event,
                        distinct,
                    },
                );
                let newest = group.back().map_or(hit.effective_at, |e| e.at);
                while group.front().is_some_and(|e| newest - e.at > t.window) {
                    group.pop_front();
                }
                let count = if t.distinct.is_some() {
                    distinct_count(group)
                } else {
                    group.len()
                };
                if count < t.count as usize {
                    return Outcome::Counted;
                }
                group
                    .drain(..)
                    .map(|e| events.id(e.event).to_owned())
                    .collect()
            }
        };
        let mut suppressed = 0;
        if let Some(s) = &rule.suppress {
            let text = key(hit.suppress_key);
            match state.suppress.get_mut(text) {
                Some(q) if hit.effective_at - q.last_sent < s.window => {
                    q.pending += 1;
                    return Outcome::Suppressed;
                }
                Some(q) => {
                    suppressed = std::mem::take(&mut q.pending);
                    q.last_sent = hit.effective_at;
                }
                None => {
                    state.suppress.insert(
                        text.into(),
                        Quiet {
                            last_sent: hit.effective_at,
                            pending: 0,
                        },
                    );
                }
            }
        }
        Outcome::Alert(make_alert(rules, rule, hit, event_ids, suppressed, events))
    }

    /// Aligns the state with the rules of `rules`, keeping what it holds for
    /// rules that are still there (by id).
    fn bind(&mut self, rules: &RuleSet) {
        let mut old: FxHashMap<String, PerRule> =
            self.ids.drain(..).zip(self.rules.drain(..)).collect();
        for rule in rules.rules() {
            self.ids.push(rule.id.clone());
            self.rules.push(old.remove(&rule.id).unwrap_or_default());
        }
    }

    /// Drops threshold groups and suppression keys that can no longer affect
    /// an alert, so that long runs keep a bounded state.
    fn maybe_prune(&mut self, now: i64, rules: &RuleSet) {
        self.since_prune += 1;
        if self.since_prune < 65_536 {
            return;
        }
        self.since_prune = 0;
        for (rule, state) in rules.rules().iter().zip(self.rules.iter_mut()) {
            if let Some(t) = &rule.threshold {
                state
                    .groups
                    .retain(|_, g| g.back().is_some_and(|e| now - e.at <= t.window));
            }
            if let Some(s) = &rule.suppress {
                state
                    .suppress
                    .retain(|_, q| q.pending > 0 || now - q.last_sent < s.window);
            }
        }
        // Values no entry holds any more.
        self.values.retain(|v| Arc::strong_count(v) > 1);
    }
}

fn make_alert(
    rules: &RuleSet,
    rule: &Rule,
    hit: &Hit,
    event_ids: Vec<String>,
    suppressed: u64,
    events: &dyn EventSource,
) -> Alert {
    let summary = rules.render_summary(rule, hit, event_ids.len(), events);
    Alert {
        rule_id: rule.id.clone(),
        severity: rule.severity,
        title: rule.title.clone(),
        summary,
        event_id: events.id(hit.event).to_owned(),
        event_ids,
        effective_at: hit.effective_at,
        suppressed,
    }
}

/// The number of distinct `distinct` values in a threshold group; small
/// groups (the usual case) are counted without allocating.
fn distinct_count(group: &VecDeque<Entry>) -> usize {
    let values = group.iter().filter_map(|e| e.distinct.as_deref());
    if group.len() > 32 {
        return values.collect::<FxHashSet<_>>().len();
    }
    let mut seen: [&str; 32] = [""; 32];
    let mut n = 0;
    for v in values {
        if !seen[..n].contains(&v) {
            seen[n] = v;
            n += 1;
        }
    }
    n
}
