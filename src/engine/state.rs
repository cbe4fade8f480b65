//! Threshold and suppression state, on event time: the only part of rule
//! evaluation that depends on the order of events, kept in one object that
//! outlives batches and, saved and restored, processes.
//!
//! Every entry holds the event id it stands for, so the state resolves to
//! ids without the batch that produced it. Each rule's part is tagged with
//! the rule's id and fingerprint; bound to a changed rule set, the state
//! keeps the parts of rules whose id and logic are unchanged.

use std::collections::VecDeque;

use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

use super::text::StateText;
use crate::rules::RuleSet;

/// The version of the saved form; [`RuleState::restore`] refuses others.
pub const STATE_VERSION: u32 = 1;

/// Threshold groups and suppression keys of every rule of a rule set.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct RuleState {
    version: u32,
    /// One part per rule of the rule set the state is bound to, in its order.
    rules: Vec<PerRule>,
    /// How long past its window a group or key is kept, for events that
    /// arrive late (the watcher's lookback).
    #[serde(skip)]
    late: i64,
    #[serde(skip)]
    since_prune: u32,
    /// The [`RuleSet::generation`] of the rule set the parts are bound to
    /// (0: none yet).
    #[serde(skip)]
    bound: u64,
    /// The open incidents, across every rule.
    #[serde(default, skip_serializing_if = "Incidents::is_empty")]
    incidents: Incidents,
}

/// Open incidents and the entities (`incidents.by` values) tied to them.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Incidents {
    /// Entity (path number, `:`, value) → incident id.
    by_entity: FxHashMap<Box<str>, Box<str>>,
    /// Incident id → when its first and its last alert were.
    open: FxHashMap<Box<str>, (i64, i64)>,
}

impl Incidents {
    fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct PerRule {
    id: String,
    fingerprint: String,
    groups: FxHashMap<StateText, VecDeque<Entry>>,
    suppress: FxHashMap<StateText, Quiet>,
    /// `first_seen`: per key, each value with when it was last seen.
    #[serde(default, skip_serializing_if = "FxHashMap::is_empty")]
    seen: FxHashMap<StateText, FxHashMap<StateText, i64>>,
    /// `first_seen`: the time of the first event the rule saw, which starts
    /// its learning period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    learning_since: Option<i64>,
    /// When (event time) `groups`, `seen` and `suppress` were last pruned
    /// in passing (see [`RuleState::counted`]).
    #[serde(skip)]
    pruned_at: [Option<i64>; 3],
}

/// One match counted by a threshold.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    at: i64,
    id: StateText,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    distinct: Option<StateText>,
    /// For a sequence: the steps the event passes, as bits.
    #[serde(default, skip_serializing_if = "is_zero")]
    steps: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Debug, Serialize, Deserialize)]
struct Quiet {
    last_sent: i64,
    pending: u64,
}

/// One event that passed a rule, as the state sees it.
#[derive(Clone, Copy)]
pub(crate) struct Match<'a> {
    pub rule: usize,
    pub at: i64,
    /// The event's id, looked up only when the state keeps or reports it
    /// (most matches only count).
    pub event_id: &'a dyn Fn() -> &'a str,
    pub group: &'a str,
    pub distinct: Option<&'a str>,
    pub suppress_key: &'a str,
    /// The steps of a sequence the event passes, as bits.
    pub steps: u32,
}

/// What one match led to.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Counted towards a threshold that has not fired.
    Counted,
    /// Raised an alert that `suppress` quieted.
    Suppressed,
    /// Raised an alert that goes out.
    Fired {
        /// Every contributing event, oldest first.
        event_ids: Vec<String>,
        /// The time of the first of them.
        first_at: i64,
        /// Repeats quieted since the previous alert of this rule and key.
        suppressed: u64,
    },
}

/// Adds match `m` to a sequence group (in event order) and, when `m`
/// completes the last step, returns the contributing events (oldest first)
/// and the time of the first; those events and every one before them are
/// then consumed.
///
/// The steps are matched backwards from `m`, each to the latest events
/// that pass it before the events of the step after it: that choice gives
/// the latest possible start, so a sequence within `within` is found
/// whenever one exists.
fn sequence_step(
    group: &mut VecDeque<Entry>,
    seq: &crate::rules::Sequence,
    m: Match<'_>,
) -> Option<(Vec<String>, i64)> {
    let last = seq.steps.len() - 1;
    // An event that passes no first step can only follow one: with
    // nothing before it for this key, it is of no use (the common case of
    // a success with no failure before it).
    if m.steps & 1 == 0 && group.is_empty() {
        return None;
    }
    let event_id = (m.event_id)();
    let pos = group.partition_point(|e| (e.at, &*e.id) <= (m.at, event_id));
    group.insert(
        pos,
        Entry {
            at: m.at,
            id: event_id.into(),
            distinct: None,
            steps: m.steps,
        },
    );
    let newest = group.back().map_or(m.at, |e| e.at);
    let mut pos = pos;
    while group
        .front()
        .is_some_and(|e| newest.saturating_sub(e.at) > seq.within)
    {
        group.pop_front();
        pos = pos.checked_sub(1)?;
    }
    if m.steps & (1 << last) == 0 {
        return None;
    }
    let mut picked = Vec::new();
    // Events before `end` are still free for the steps before.
    let mut end = pos + 1;
    for (k, step) in seq.steps.iter().enumerate().rev() {
        let mut need = step.count as usize;
        let mut i = end;
        while need > 0 && i > 0 {
            i -= 1;
            // The firing event belongs to the last step.
            if group[i].steps & (1 << k) != 0 && (k == last || i != pos) {
                picked.push(i);
                need -= 1;
            }
        }
        if need > 0 {
            return None;
        }
        end = i;
    }
    let first = *picked.last()?;
    if m.at.saturating_sub(group[first].at) > seq.within {
        return None;
    }
    picked.sort_unstable();
    let ids = picked.iter().map(|&i| String::from(&group[i].id)).collect();
    let first_at = group[first].at;
    group.drain(..=pos);
    Some((ids, first_at))
}

/// Records the value of match `m` for its key; true when it is new and the
/// rule is past its learning (an alert).
fn first_seen(state: &mut PerRule, fs: &crate::rules::FirstSeen, m: Match<'_>) -> bool {
    let since = *state.learning_since.get_or_insert(m.at);
    let value = m.distinct.unwrap_or("");
    let values = match state.seen.get_mut(m.group) {
        Some(v) => v,
        None => state.seen.entry(m.group.into()).or_default(),
    };
    let fresh = |last: i64| m.at.saturating_sub(last) <= fs.forget_after;
    if let Some(last) = values.get_mut(value)
        && fresh(*last)
    {
        *last = (*last).max(m.at);
        return false;
    }
    // A new or forgotten value. The key is new when none of its values is
    // remembered: values past `forget_after` do not count, so the outcome
    // is the same whether a prune has dropped them yet or not.
    let new_key = !values.values().any(|&last| fresh(last));
    if let Some(last) = values.get_mut(value) {
        *last = (*last).max(m.at);
    } else {
        if values.len() >= fs.max_values {
            values.retain(|_, last| m.at.saturating_sub(*last) <= fs.forget_after);
        }
        if values.len() >= fs.max_values
            && let Some(oldest) = values
                .iter()
                .min_by(|a, b| (a.1, a.0).cmp(&(b.1, b.0)))
                .map(|(k, _)| k.clone())
        {
            values.remove(&oldest);
        }
        values.insert(value.into(), m.at);
    }
    let learning = m.at.saturating_sub(since) < fs.learn_for;
    !(learning || (new_key && !fs.new_keys))
}

/// A saved state that cannot be restored.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("the saved rule state is not readable: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("the saved rule state has version {found}; this build reads version {STATE_VERSION}")]
    Version { found: u32 },
}

impl RuleState {
    pub fn new() -> RuleState {
        RuleState {
            version: STATE_VERSION,
            ..RuleState::default()
        }
    }

    /// Keeps groups and keys `secs` past their window, so that an event
    /// that arrives up to `secs` late still meets the matches it would have
    /// met in order.
    pub fn tolerate_late(&mut self, secs: i64) {
        self.late = secs.max(0);
    }

    /// The saved form of the state (JSON), for [`RuleState::restore`].
    pub fn save(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("rule state serializes")
    }

    /// Restores a saved state and binds it to `rules`; returns it with the
    /// ids of the rules whose saved part was dropped because the rule is
    /// gone or its logic changed.
    pub fn restore(saved: &[u8], rules: &RuleSet) -> Result<(RuleState, Vec<String>), StateError> {
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        let Version { version } = serde_json::from_slice(saved)?;
        if version != STATE_VERSION {
            return Err(StateError::Version { found: version });
        }
        let mut state: RuleState = serde_json::from_slice(saved)?;
        let dropped = state.bind(rules);
        Ok((state, dropped))
    }

    /// Binds the state to a reloaded rule set: keeps the part of every rule
    /// whose id and fingerprint are unchanged; returns the ids of the rules
    /// whose part was dropped (gone, or their logic changed).
    pub fn rebind(&mut self, rules: &RuleSet) -> Vec<String> {
        self.bind(rules)
    }

    /// Takes the `first_seen` values that `learned` (a state built over
    /// history, bound to the same rules) holds, keeping the later time of a
    /// value known to both and the earlier start of learning; returns how
    /// many values were added.
    pub fn learn_from(&mut self, learned: &RuleState, rules: &RuleSet) -> usize {
        if self.bound != rules.generation() {
            self.bind(rules);
        }
        let mut added = 0;
        for (mine, theirs) in self.rules.iter_mut().zip(&learned.rules) {
            if mine.id != theirs.id || mine.fingerprint != theirs.fingerprint {
                continue;
            }
            mine.learning_since = match (mine.learning_since, theirs.learning_since) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            for (key, values) in &theirs.seen {
                let into = mine.seen.entry(key.clone()).or_default();
                for (value, &at) in values {
                    match into.get_mut(value) {
                        Some(last) => *last = (*last).max(at),
                        None => {
                            into.insert(value.clone(), at);
                            added += 1;
                        }
                    }
                }
            }
        }
        added
    }

    /// The incident of an alert raised at `at` by `event_id` whose
    /// `incidents.by` values are `entities`: the open incident (its last
    /// alert at most `window` before) that shares one of them, the earliest
    /// if several do, else a new one.
    pub(crate) fn incident(
        &mut self,
        window: i64,
        entities: &[Option<&str>],
        at: i64,
        event_id: &str,
    ) -> String {
        let inc = &mut self.incidents;
        let keys: Vec<String> = entities
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.filter(|v| !v.is_empty()).map(|v| format!("{i}:{v}")))
            .collect();
        let joined = keys
            .iter()
            .filter_map(|k| inc.by_entity.get(k.as_str()))
            .filter_map(|id| inc.open.get(id).map(|t| (t.0, id.clone(), t.1)))
            .filter(|(_, _, last)| at.saturating_sub(*last) <= window)
            .min_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)))
            .map(|(_, id, _)| id);
        let id: Box<str> = match joined {
            Some(id) => {
                if let Some(t) = inc.open.get_mut(&id) {
                    t.1 = t.1.max(at);
                }
                id
            }
            None => {
                let id: Box<str> = format!("incident-{event_id}").into();
                inc.open.insert(id.clone(), (at, at));
                id
            }
        };
        for k in keys {
            inc.by_entity.insert(k.into(), id.clone());
        }
        id.into_string()
    }

    /// True when the state holds nothing.
    pub fn is_empty(&self) -> bool {
        self.rules
            .iter()
            .all(|r| r.groups.is_empty() && r.suppress.is_empty() && r.seen.is_empty())
    }

    /// Feeds one match to its rule's threshold and suppression. Matches must
    /// come in event-time order for exact results.
    ///
    /// Every part of the state belongs to one rule, so matches of different
    /// rules may be fed in any order among themselves (see
    /// [`Tally::apply_all`](super::tally::Tally::apply_all)); prune with
    /// [`RuleState::counted`] only before matches that are all later.
    pub(crate) fn apply(&mut self, rules: &RuleSet, m: Match<'_>) -> Outcome {
        if self.bound != rules.generation() {
            self.bind(rules);
        }
        let rule = &rules.rules()[m.rule];
        let state = &mut self.rules[m.rule];
        let mut first_at = m.at;
        let event_ids = match (&rule.threshold, &rule.sequence, &rule.first_seen) {
            (None, None, Some(fs)) => {
                if !first_seen(state, fs, m) {
                    return Outcome::Counted;
                }
                vec![(m.event_id)().to_owned()]
            }
            (None, Some(seq), _) => {
                let group = match state.groups.get_mut(m.group) {
                    Some(g) => g,
                    // Only a first step can begin a sequence.
                    None if m.steps & 1 == 0 => return Outcome::Counted,
                    None => state.groups.entry(m.group.into()).or_default(),
                };
                match sequence_step(group, seq, m) {
                    Some((ids, first)) => {
                        first_at = first;
                        ids
                    }
                    None => return Outcome::Counted,
                }
            }
            (None, None, None) => vec![(m.event_id)().to_owned()],
            (Some(t), _, _) => {
                let group = match state.groups.get_mut(m.group) {
                    Some(g) => g,
                    None => state.groups.entry(m.group.into()).or_default(),
                };
                let pos = group.partition_point(|e| e.at <= m.at);
                group.insert(
                    pos,
                    Entry {
                        at: m.at,
                        id: (m.event_id)().into(),
                        distinct: m.distinct.map(StateText::from),
                        steps: 0,
                    },
                );
                let newest = group.back().map_or(m.at, |e| e.at);
                while group
                    .front()
                    .is_some_and(|e| newest.saturating_sub(e.at) > t.window)
                {
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
                first_at = group.front().map_or(m.at, |e| e.at);
                group.drain(..).map(|e| String::from(&e.id)).collect()
            }
        };
        let mut suppressed = 0;
        if let Some(s) = &rule.suppress {
            match state.suppress.get_mut(m.suppress_key) {
                Some(q) if m.at.saturating_sub(q.last_sent) < s.window => {
                    q.pending += 1;
                    return Outcome::Suppressed;
                }
                Some(q) => {
                    suppressed = std::mem::take(&mut q.pending);
                    q.last_sent = m.at;
                }
                None => {
                    state.suppress.insert(
                        m.suppress_key.into(),
                        Quiet {
                            last_sent: m.at,
                            pending: 0,
                        },
                    );
                }
            }
        }
        Outcome::Fired {
            event_ids,
            first_at,
            suppressed,
        }
    }

    /// Aligns the state with the rules of `rules`, keeping the parts of
    /// rules whose id and fingerprint are unchanged; returns the ids of the
    /// parts dropped that held something.
    fn bind(&mut self, rules: &RuleSet) -> Vec<String> {
        self.bound = rules.generation();
        let mut old: FxHashMap<String, PerRule> =
            self.rules.drain(..).map(|r| (r.id.clone(), r)).collect();
        for rule in rules.rules() {
            let part = match old.remove(&rule.id) {
                Some(p) if p.fingerprint == rule.fingerprint => p,
                Some(p) => {
                    // Changed logic: its old groups and keys mean something else.
                    old.insert(p.id.clone(), p);
                    PerRule::for_rule(&rule.id, &rule.fingerprint)
                }
                None => PerRule::for_rule(&rule.id, &rule.fingerprint),
            };
            self.rules.push(part);
        }
        let mut dropped: Vec<String> = old
            .into_values()
            .filter(|p| !(p.groups.is_empty() && p.suppress.is_empty() && p.seen.is_empty()))
            .map(|p| p.id)
            .collect();
        dropped.sort();
        dropped
    }

    /// Drops threshold groups and suppression keys that can no longer
    /// affect an alert at event time `now` or later (less the late
    /// tolerance), so that long runs keep a bounded state.
    pub fn prune(&mut self, rules: &RuleSet, now: i64) {
        self.prune_parts(rules, now, |_, _| true);
    }

    /// Prunes the parts of rules' state for which `due(when last pruned,
    /// how long the part keeps things)` says so, and the incidents.
    fn prune_parts(
        &mut self,
        rules: &RuleSet,
        now: i64,
        mut due: impl FnMut(&mut Option<i64>, i64) -> bool,
    ) {
        let late = self.late;
        if let Some(inc) = rules.incidents() {
            let keep = inc.window.saturating_add(late);
            let incidents = &mut self.incidents;
            incidents
                .open
                .retain(|_, t| now.saturating_sub(t.1) <= keep);
            let open = &incidents.open;
            incidents.by_entity.retain(|_, id| open.contains_key(id));
        }
        for (rule, state) in rules.rules().iter().zip(self.rules.iter_mut()) {
            let [groups, seen, suppress] = &mut state.pruned_at;
            if let Some(window) = rule.window() {
                let keep = window.saturating_add(late);
                if due(groups, keep) {
                    state
                        .groups
                        .retain(|_, g| g.back().is_some_and(|e| now.saturating_sub(e.at) <= keep));
                }
            }
            if let Some(fs) = &rule.first_seen {
                let keep = fs.forget_after.saturating_add(late);
                if due(seen, keep) {
                    state.seen.retain(|_, values| {
                        values.retain(|_, last| now.saturating_sub(*last) <= keep);
                        !values.is_empty()
                    });
                }
            }
            if let Some(s) = &rule.suppress {
                let keep = s.window.saturating_add(late);
                if due(suppress, keep) {
                    state
                        .suppress
                        .retain(|_, q| q.pending > 0 || now.saturating_sub(q.last_sent) < keep);
                }
            }
        }
    }

    /// Notes that `matches` matches, none before event time `now`, are
    /// about to be applied, and prunes now and then: every 65,536 matches,
    /// each part of a rule's state that has not been pruned for half of how
    /// long it keeps things (in event time). Pruning never changes an alert,
    /// so this only bounds memory, without visiting a first-seen history of
    /// months every few seconds of events.
    pub(crate) fn counted(&mut self, rules: &RuleSet, matches: usize, now: i64) {
        if self.bound != rules.generation() {
            self.bind(rules);
        }
        self.since_prune = self.since_prune.saturating_add(matches as u32);
        if self.since_prune < 65_536 {
            return;
        }
        self.since_prune = 0;
        self.prune_parts(rules, now, |pruned_at, keep| {
            let due = pruned_at.is_none_or(|t| now.saturating_sub(t) >= keep / 2);
            if due {
                *pruned_at = Some(now);
            }
            due
        });
    }
}

impl PerRule {
    fn for_rule(id: &str, fingerprint: &str) -> PerRule {
        PerRule {
            id: id.to_owned(),
            fingerprint: fingerprint.to_owned(),
            ..PerRule::default()
        }
    }
}

/// The number of distinct `distinct` values in a threshold group; small
/// groups (the usual case) are counted without allocating.
fn distinct_count(group: &VecDeque<Entry>) -> usize {
    let values = group
        .iter()
        .filter_map(|e| e.distinct.as_ref().map(StateText::as_str));
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
