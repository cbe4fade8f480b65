//! Replaying events through rules: the ordered, de-duplicated evaluation that
//! `rulecheck`, inline tests and the watcher share, so that they all agree.
//!
//! A batch is evaluated in two steps. Matching is stateless and can run in
//! any order (in parallel over a file); its [`Hit`]s are then sorted by
//! `(effective_at, event id, rule)` and fed to [`RuleState`] in that order.

pub mod files;

use rustc_hash::FxHashSet;
use serde::Serialize;

use crate::alert::Alert;
use crate::event::Event;
use crate::rules::{EvalError, EventSource, Hit, Key, Location, Outcome, RuleSet, RuleState};

/// Per-rule counts of one replay.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct RuleStats {
    pub id: String,
    /// Events that passed the rule's match, condition and script.
    pub matched: u64,
    /// Alerts that went out.
    pub alerts: u64,
    /// Alerts quieted by `suppress`.
    pub suppressed: u64,
    /// Events on which the rule failed.
    pub errors: u64,
}

/// The stateless results of a batch of events, before ordering.
#[derive(Debug, Default)]
pub struct Batch {
    pub hits: Vec<Hit>,
    pub errors: Vec<EvalError>,
}

/// What a batch raised.
#[derive(Debug, Default)]
pub struct Replayed {
    pub alerts: Vec<Alert>,
    pub stats: Vec<RuleStats>,
    pub errors: Vec<EvalError>,
}

/// Sorts events by `(effective_at, id)` and drops every event whose id was
/// already read (the first one read wins).
pub fn order_and_dedupe(events: &mut Vec<Event<'_>>) {
    let mut seen = FxHashSet::default();
    let mut keep: Vec<bool> = events
        .iter()
        .map(|e| seen.insert(e.id().to_owned()))
        .collect();
    let mut i = 0;
    events.retain(|_| {
        i += 1;
        std::mem::take(&mut keep[i - 1])
    });
    events.sort_by(|a, b| (a.effective_at(), a.id()).cmp(&(b.effective_at(), b.id())));
}

/// Events in memory, numbered by their position, with the key text of
/// their hits (see [`crate::rules::Scratch::keys`]).
pub struct Events<'e, 'a> {
    pub events: &'e [Event<'a>],
    pub keys: &'e str,
}

impl EventSource for Events<'_, '_> {
    fn id(&self, event: u64) -> &str {
        self.events[event as usize].id()
    }

    fn key(&self, _: u64, key: Key) -> &str {
        key.text(self.keys)
    }

    fn read(&self, _: &Location) -> Option<String> {
        None
    }
}

impl Batch {
    /// Orders the hits by event time and applies threshold and suppression.
    pub fn finish(
        mut self,
        rules: &RuleSet,
        state: &mut RuleState,
        events: &dyn EventSource,
    ) -> Replayed {
        self.hits.sort_by(|a, b| hit_order(a, b, events));
        let mut tally = Tally::new(rules);
        for hit in &self.hits {
            tally.apply(rules, state, hit, events);
        }
        tally.finish(self.errors)
    }
}

/// The order in which hits reach the rule state: event time, then event id
/// (ties), then rule order.
pub fn hit_order(a: &Hit, b: &Hit, events: &dyn EventSource) -> std::cmp::Ordering {
    a.effective_at
        .cmp(&b.effective_at)
        .then_with(|| events.id(a.event).cmp(events.id(b.event)))
        .then(a.rule.cmp(&b.rule))
}

/// Alerts and per-rule counts of ordered hits.
pub struct Tally {
    alerts: Vec<Alert>,
    stats: Vec<RuleStats>,
}

impl Tally {
    pub fn new(rules: &RuleSet) -> Tally {
        let stats = rules
            .rules()
            .iter()
            .map(|r| RuleStats {
                id: r.id.clone(),
                ..RuleStats::default()
            })
            .collect();
        Tally {
            alerts: Vec::new(),
            stats,
        }
    }

    /// Feeds one hit, in order, to the rule state.
    pub fn apply(
        &mut self,
        rules: &RuleSet,
        state: &mut RuleState,
        hit: &Hit,
        events: &dyn EventSource,
    ) {
        let s = &mut self.stats[hit.rule];
        s.matched += 1;
        match state.apply(rules, hit, events) {
            Outcome::Counted => {}
            Outcome::Suppressed => s.suppressed += 1,
            Outcome::Alert(a) => {
                s.alerts += 1;
                self.alerts.push(a);
            }
        }
    }

    /// Adds the evaluation errors and closes the tally.
    pub fn finish(mut self, errors: Vec<EvalError>) -> Replayed {
        for e in &errors {
            self.stats[e.rule].errors += 1;
        }
        Replayed {
            alerts: self.alerts,
            stats: self.stats,
            errors,
        }
    }
}
