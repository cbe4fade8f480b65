//! The ordered half of evaluation: hits in event-time order go through the
//! [`RuleState`], and what fires becomes an [`Alert`] with its summary,
//! counted per rule.

use std::cell::RefCell;

use serde::Serialize;

use super::check::{Context, Hit, Key, Keys, Location};
use super::state::{KeyId, Match, Outcome, RuleState};
use super::{EvalError, EventNo};
use crate::alert::{Alert, Facts};
use crate::event::Event;
use crate::rules::{Rule, RuleSet, SummaryContext};

/// Where the events of a batch are found again by their number: their
/// ids, their hits' keys and, for summaries taken late, their text.
pub(crate) trait EventSource {
    /// The id of event `event`.
    fn id(&self, event: EventNo) -> &str;
    /// The key texts of the hits on event `event`.
    fn keys(&self, event: EventNo) -> &Keys;
    /// The numbers in `state` of the keys of the hits on event `event`
    /// (each key's number is taken once).
    fn key_ids(&self, event: EventNo) -> &RefCell<KeyIds>;
    /// The text of the event stored at `at`, read again.
    fn read(&self, at: &Location) -> Option<String>;

    /// The text of `key`, of a hit on event `event`.
    fn key(&self, event: EventNo, key: Key) -> &str {
        self.keys(event).text(key)
    }
}

/// The numbers in a [`RuleState`] of one batch's keys, each taken once
/// and remembered while the state's numbers hold.
#[derive(Debug, Default)]
pub(crate) struct KeyIds {
    epoch: u64,
    ids: Vec<KeyId>,
}

impl KeyIds {
    /// Numbers the keys of `keys` not numbered yet in `state`, for
    /// [`KeyIds::get`]. All at once: the lookups of a tight loop overlap
    /// their waits for memory, where lookups spread among the hits would
    /// each wait.
    fn ready(&mut self, keys: &Keys, state: &mut RuleState) {
        if self.epoch != state.key_epoch() {
            self.epoch = state.key_epoch();
            self.ids.clear();
        }
        for i in self.ids.len()..keys.len() {
            self.ids.push(state.key_id(keys.text(Key::new(i))));
        }
    }

    /// The number of `key` (of the `keys` this was readied for), while
    /// the state's numbers have not changed since.
    #[inline]
    fn get(&self, key: Key) -> KeyId {
        self.ids[key.index()]
    }
}

/// A hit as [`Tally::apply_all`] feeds it to the state: what the state
/// needs, with its keys numbered, small and read in order.
#[derive(Clone, Copy, Default)]
struct Pending {
    at: i64,
    event: EventNo,
    /// The hit's position in its slice.
    index: u32,
    group: KeyId,
    distinct: Option<KeyId>,
    suppress_key: KeyId,
    steps: u32,
}

/// Per-rule counts of an evaluation.
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

/// What an evaluation raised.
#[derive(Debug, Default)]
pub struct Evaluation {
    /// Alerts in the order they fired (event time).
    pub alerts: Vec<Alert>,
    /// One entry per rule of the set, in its order.
    pub stats: Vec<RuleStats>,
    pub errors: Vec<EvalError>,
}

/// The order in which hits reach the rule state: event time, then event id
/// (ties), then rule order.
pub(crate) fn hit_order(a: &Hit, b: &Hit, events: &dyn EventSource) -> std::cmp::Ordering {
    a.effective_at
        .cmp(&b.effective_at)
        .then_with(|| events.id(a.event).cmp(events.id(b.event)))
        .then(a.rule.cmp(&b.rule))
}

/// Alerts and per-rule counts of hits taken in order.
pub(crate) struct Tally<'r> {
    rules: &'r RuleSet,
    alerts: Vec<Alert>,
    stats: Vec<RuleStats>,
    /// Whether repeats that `suppress` quieted are kept (as alerts marked
    /// [`Facts::repeat`]), for destinations that thread them.
    repeats: bool,
    /// Whether alerts get the facts of their event.
    facts: bool,
    /// Summaries that failed, as evaluation errors.
    summary_errors: Vec<EvalError>,
    /// Room for [`Tally::apply_all`]: the hits by rule, and those that
    /// raise an alert.
    pending: Vec<Pending>,
    raised: Vec<(usize, Outcome)>,
}

impl<'r> Tally<'r> {
    pub fn new(rules: &'r RuleSet) -> Tally<'r> {
        let stats = rules
            .rules()
            .iter()
            .map(|r| RuleStats {
                id: r.id.clone(),
                ..RuleStats::default()
            })
            .collect();
        Tally {
            rules,
            alerts: Vec::new(),
            stats,
            repeats: false,
            facts: true,
            summary_errors: Vec::new(),
            pending: Vec::new(),
            raised: Vec::new(),
        }
    }

    /// Whether alerts get the facts of their event (on by default).
    pub fn with_facts(mut self, facts: bool) -> Tally<'r> {
        self.facts = facts;
        self
    }

    /// Keeps the repeats that `suppress` quiets, marked as such.
    pub fn with_repeats(mut self, repeats: bool) -> Tally<'r> {
        self.repeats = repeats;
        self
    }

    /// Feeds hits, in order, to the rule state. Each rule's hits go to its
    /// part of the state together, which then stays in cache; the alerts are
    /// raised afterwards in the hits' order (incidents span rules).
    pub fn apply_all(&mut self, state: &mut RuleState, hits: &[Hit], events: &dyn EventSource) {
        let Some(first) = hits.first() else { return };
        state.counted(self.rules, hits.len(), first.effective_at);
        // The hits, rule by rule, each rule's in order.
        let rules = self.rules.rules().len();
        let mut starts = vec![0u32; rules + 1];
        for h in hits {
            starts[h.rule + 1] += 1;
        }
        for r in 0..rules {
            starts[r + 1] += starts[r];
        }
        let mut pending = std::mem::take(&mut self.pending);
        pending.clear();
        pending.resize(hits.len(), Pending::default());
        let empty = state.key_id("");
        // Hits come chunk after chunk: each chunk's keys are looked up once.
        let mut chunk = first.event.chunk();
        let mut keys = events.keys(first.event);
        let mut ids = events.key_ids(first.event).borrow_mut();
        ids.ready(keys, state);
        for (i, h) in hits.iter().enumerate() {
            if h.event.chunk() != chunk {
                chunk = h.event.chunk();
                keys = events.keys(h.event);
                drop(ids);
                ids = events.key_ids(h.event).borrow_mut();
                ids.ready(keys, state);
            }
            let id = |k: Option<Key>| k.map_or(empty, |k| ids.get(k));
            let slot = &mut starts[h.rule];
            pending[*slot as usize] = Pending {
                at: h.effective_at,
                event: h.event,
                index: i as u32,
                group: id(h.group),
                distinct: h.distinct.map(|d| id(Some(d))),
                suppress_key: id(h.suppress_key),
                steps: h.steps,
            };
            *slot += 1;
        }
        drop(ids);
        let mut raised = std::mem::take(&mut self.raised);
        let mut start = 0;
        for (rule, &end) in starts[..rules].iter().enumerate() {
            let of_rule = &pending[start..end as usize];
            // The rule's part of the state is brought into cache first, by
            // lookups that overlap (see `RuleState::warm`).
            state.warm(self.rules, rule, of_rule.iter().map(|p| p.group));
            for p in of_rule {
                if let Some(outcome) = self.count(state, rule, p, events) {
                    raised.push((p.index as usize, outcome));
                }
            }
            start = end as usize;
        }
        raised.sort_unstable_by_key(|(i, _)| *i);
        for (i, outcome) in raised.drain(..) {
            self.raise(state, &hits[i], outcome, events);
        }
        self.raised = raised;
        self.pending = pending;
    }

    /// Feeds hit `p` of rule `rule` to the rule state and counts it; the
    /// outcome when it raises an alert (or a repeat that is kept).
    fn count(
        &mut self,
        state: &mut RuleState,
        rule: usize,
        p: &Pending,
        events: &dyn EventSource,
    ) -> Option<Outcome> {
        let event_id = || events.id(p.event);
        let outcome = state.apply(
            self.rules,
            Match {
                rule,
                at: p.at,
                event_id: &event_id,
                group: p.group,
                distinct: p.distinct,
                suppress_key: p.suppress_key,
                steps: p.steps,
            },
        );
        let s = &mut self.stats[rule];
        s.matched += 1;
        match outcome {
            Outcome::Counted => None,
            Outcome::Suppressed => {
                s.suppressed += 1;
                self.repeats.then_some(outcome)
            }
            Outcome::Fired { .. } => {
                s.alerts += 1;
                Some(outcome)
            }
        }
    }

    /// Raises the alert (or the kept repeat) of a counted hit.
    fn raise(
        &mut self,
        state: &mut RuleState,
        hit: &Hit,
        outcome: Outcome,
        events: &dyn EventSource,
    ) {
        let event_id = events.id(hit.event);
        let (event_ids, first_at, suppressed, repeat) = match outcome {
            Outcome::Counted => return,
            Outcome::Suppressed => (vec![event_id.to_owned()], hit.effective_at, 0, true),
            Outcome::Fired {
                event_ids,
                first_at,
                suppressed,
            } => (event_ids, first_at, suppressed, false),
        };
        let rule = &self.rules.rules()[hit.rule];
        let (summary, mut facts, failed, entities) =
            self.summary(rule, hit, event_ids.len(), events);
        if let Some(message) = failed {
            self.summary_errors.push(EvalError {
                rule: hit.rule,
                event_id: event_id.to_owned(),
                message,
            });
        }
        facts.description = rule.description.clone();
        facts.key = hit
            .suppress_key
            .or(hit.group)
            .map(|k| events.key(hit.event, k).to_owned());
        if let Some(window) = rule.window() {
            facts.first_at = Some(first_at);
            facts.window = Some(window);
        }
        facts.repeat = repeat;
        if !repeat && let Some(inc) = self.rules.incidents() {
            let entities: Vec<Option<&str>> = entities.iter().map(|e| e.as_deref()).collect();
            facts.incident =
                Some(state.incident(inc.window, &entities, hit.effective_at, event_id));
        }
        self.alerts.push(Alert {
            rule_id: rule.id.clone(),
            severity: rule.severity,
            title: rule.title.clone(),
            summary,
            event_id: event_id.to_owned(),
            event_ids,
            effective_at: hit.effective_at,
            suppressed,
            facts,
        });
    }

    /// The summary of an alert fired by `hit`, the facts of its event, and
    /// its `incidents.by` values (taken with the hit, or read from the
    /// event read again).
    fn summary(
        &self,
        rule: &Rule,
        hit: &Hit,
        count: usize,
        events: &dyn EventSource,
    ) -> (String, Facts, Option<String>, Vec<Option<String>>) {
        match &hit.context {
            Context::Taken(taken) => {
                let (text, failed) = self.rules.render_summary(rule, &taken.summary, count);
                let entities = taken
                    .entities
                    .iter()
                    .map(|k| k.map(|k| events.key(hit.event, k).to_owned()))
                    .collect();
                (
                    text,
                    taken.facts.clone().unwrap_or_default(),
                    failed,
                    entities,
                )
            }
            Context::At(at) => {
                let text = events.read(at);
                let (ctx, facts, entities) = match text.as_deref().map(Event::parse) {
                    Some(Ok(event)) => (
                        rule.summary_context(&event),
                        if self.facts {
                            Facts::of_event(&event)
                        } else {
                            Facts::default()
                        },
                        self.rules.incidents().map_or_else(Vec::new, |inc| {
                            inc.by
                                .iter()
                                .map(|p| {
                                    let mut out = String::new();
                                    super::check::write_text(p, &event, &mut out).then_some(out)
                                })
                                .collect()
                        }),
                    ),
                    _ => (
                        SummaryContext::Text(format!(
                            "{} (the event could not be read again)",
                            rule.title
                        )),
                        Facts::default(),
                        Vec::new(),
                    ),
                };
                let (text, failed) = self.rules.render_summary(rule, &ctx, count);
                (text, facts, failed, entities)
            }
        }
    }

    /// Adds the evaluation errors and closes the tally.
    pub fn finish(mut self, mut errors: Vec<EvalError>) -> Evaluation {
        errors.append(&mut self.summary_errors);
        for e in &errors {
            self.stats[e.rule].errors += 1;
        }
        Evaluation {
            alerts: self.alerts,
            stats: self.stats,
            errors,
        }
    }
}
