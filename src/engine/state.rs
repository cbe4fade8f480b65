//! Threshold and suppression state, on event time: the only part of rule
//! evaluation that depends on the order of events, kept in one object that
//! outlives batches and, saved and restored, processes.
//!
//! Every entry holds the event id it stands for, so the state resolves to
//! ids without the batch that produced it. Each rule's part is tagged with
//! the rule's id and fingerprint; bound to a changed rule set, the state
//! keeps the parts of rules whose id and logic are unchanged.
//!
//! Texts (keys, values, event ids) are stored once, in tables of the state,
//! and the rules' parts hold their numbers: a match looks its rule's tables
//! up by number, and the entries of a threshold stay small. The tables are
//! compacted as what refers to them is pruned; the saved form holds the
//! texts themselves.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};

use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

use super::prefetch;
use super::text::{StateText, text_hash};
use crate::rules::{Fingerprint, RuleSet};

/// The version of the saved form; [`RuleState::restore`] refuses others.
pub const STATE_VERSION: u32 = 1;

/// The number of a key or value text in a [`RuleState`]'s key table.
pub(crate) type KeyId = u32;

/// No key (an entry without a `distinct` value).
const NO_KEY: KeyId = KeyId::MAX;

/// Threshold groups and suppression keys of every rule of a rule set.
#[derive(Debug, Default)]
pub struct RuleState {
    /// One part per rule of the rule set the state is bound to, in its order.
    rules: Vec<PerRule>,
    /// The texts of the keys and values the parts hold by number.
    keys: KeyTable,
    /// The ids of the events threshold and sequence entries stand for.
    event_ids: EventIds,
    /// How long past its window a group or key is kept, for events that
    /// arrive late (the watcher's lookback).
    late: i64,
    since_prune: u32,
    /// The [`RuleSet::generation`] of the rule set the parts are bound to
    /// (0: none yet).
    bound: u64,
    /// The open incidents, across every rule.
    incidents: Incidents,
}

/// Open incidents and the entities (`incidents.by` values) tied to them.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
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

#[derive(Debug, Default)]
struct PerRule {
    id: String,
    fingerprint: Fingerprint,
    groups: FxHashMap<KeyId, VecDeque<Entry>>,
    suppress: FxHashMap<KeyId, Quiet>,
    /// `first_seen`: per key, each value with when it was last seen.
    seen: FxHashMap<KeyId, Values>,
    /// `first_seen`: the time of the first event the rule saw, which starts
    /// its learning period.
    learning_since: Option<i64>,
    /// When (event time) `groups`, `seen` and `suppress` were last pruned
    /// in passing (see [`RuleState::counted`]).
    pruned_at: [Option<i64>; 3],
}

/// One match counted by a threshold or a sequence.
#[derive(Debug, Clone, Copy)]
struct Entry {
    at: i64,
    /// The event's id, in [`RuleState::event_ids`].
    id: u32,
    /// The `distinct` value, or [`NO_KEY`].
    distinct: KeyId,
    /// For a sequence: the steps the event passes, as bits.
    steps: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Quiet {
    last_sent: i64,
    pending: u64,
}

/// The values of one `first_seen` key with when each was last seen: in
/// place while they are few (the usual case: a person's one or two
/// networks), in a map past that.
#[derive(Debug)]
enum Values {
    Few {
        len: u8,
        values: [KeyId; FEW_VALUES],
        lasts: [i64; FEW_VALUES],
    },
    Many(FxHashMap<KeyId, i64>),
}

/// How many values a key keeps in place before they go to a map.
const FEW_VALUES: usize = 3;

impl Default for Values {
    fn default() -> Values {
        Values::Few {
            len: 0,
            values: [NO_KEY; FEW_VALUES],
            lasts: [0; FEW_VALUES],
        }
    }
}

impl Values {
    fn get_mut(&mut self, value: KeyId) -> Option<&mut i64> {
        match self {
            Values::Few { len, values, lasts } => {
                let i = values[..*len as usize].iter().position(|&v| v == value)?;
                Some(&mut lasts[i])
            }
            Values::Many(map) => map.get_mut(&value),
        }
    }

    fn len(&self) -> usize {
        match self {
            Values::Few { len, .. } => *len as usize,
            Values::Many(map) => map.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn iter(&self) -> Box<dyn Iterator<Item = (KeyId, i64)> + '_> {
        match self {
            Values::Few { len, values, lasts } => Box::new(
                (values[..*len as usize].iter().copied())
                    .zip(lasts[..*len as usize].iter().copied()),
            ),
            Values::Many(map) => Box::new(map.iter().map(|(&v, &t)| (v, t))),
        }
    }

    fn any(&self, mut f: impl FnMut(i64) -> bool) -> bool {
        match self {
            Values::Few { len, lasts, .. } => lasts[..*len as usize].iter().any(|&t| f(t)),
            Values::Many(map) => map.values().any(|&t| f(t)),
        }
    }

    /// Adds a value not held yet.
    fn insert(&mut self, value: KeyId, at: i64) {
        match self {
            Values::Few { len, values, lasts } if (*len as usize) < FEW_VALUES => {
                values[*len as usize] = value;
                lasts[*len as usize] = at;
                *len += 1;
            }
            Values::Few { .. } => {
                let mut map: FxHashMap<KeyId, i64> = self.iter().collect();
                map.insert(value, at);
                *self = Values::Many(map);
            }
            Values::Many(map) => {
                map.insert(value, at);
            }
        }
    }

    fn remove(&mut self, value: KeyId) {
        self.retain(|v, _| v != value);
    }

    fn retain(&mut self, mut keep: impl FnMut(KeyId, i64) -> bool) {
        match self {
            Values::Few { len, values, lasts } => {
                let mut kept = 0;
                for i in 0..*len as usize {
                    if keep(values[i], lasts[i]) {
                        values[kept] = values[i];
                        lasts[kept] = lasts[i];
                        kept += 1;
                    }
                }
                *len = kept as u8;
            }
            Values::Many(map) => map.retain(|&v, &mut t| keep(v, t)),
        }
    }

    /// Renumbers the values (a compaction of the key table).
    fn renumber(&mut self, new: &[KeyId]) {
        match self {
            Values::Few { len, values, .. } => values[..*len as usize]
                .iter_mut()
                .for_each(|v| *v = new[*v as usize]),
            Values::Many(map) => {
                *map = map.drain().map(|(v, t)| (new[v as usize], t)).collect();
            }
        }
    }
}

/// Key and value texts, each stored once and numbered.
#[derive(Debug)]
struct KeyTable {
    /// The numbers, found by the hash of their text.
    numbers: hashbrown::HashTable<KeyId>,
    texts: Vec<StateText>,
    /// Differs for every table and every compaction, so that numbers
    /// remembered outside (see [`RuleState::key_epoch`]) are not taken for
    /// the numbers of another table.
    epoch: u64,
    /// How many texts the table held after its last compaction.
    compacted_at: usize,
}

/// Below this many texts, a key table is never compacted (tests compact
/// small tables, to compact often).
const COMPACT_FROM: usize = if cfg!(test) { 64 } else { 4096 };

/// Where table epochs come from.
static EPOCHS: AtomicU64 = AtomicU64::new(1);

impl Default for KeyTable {
    fn default() -> KeyTable {
        KeyTable {
            numbers: hashbrown::HashTable::new(),
            texts: Vec::new(),
            epoch: EPOCHS.fetch_add(1, Ordering::Relaxed),
            compacted_at: 0,
        }
    }
}

impl KeyTable {
    fn number(&mut self, text: &str) -> KeyId {
        let hash = text_hash(text);
        let texts = &self.texts;
        if let Some(&n) = self
            .numbers
            .find(hash, |&n| texts[n as usize].as_str() == text)
        {
            return n;
        }
        let n = self.texts.len() as KeyId;
        self.texts.push(StateText::from(text));
        let texts = &self.texts;
        self.numbers
            .insert_unique(hash, n, |&n| text_hash(&texts[n as usize]));
        n
    }

    fn text(&self, n: KeyId) -> &str {
        &self.texts[n as usize]
    }

    /// True when the table has grown enough since its last compaction for
    /// another to be worth it.
    fn grown(&self) -> bool {
        self.texts.len() >= 2 * self.compacted_at.max(COMPACT_FROM)
    }

    /// Keeps the texts marked in `live` and renumbers them; returns the new
    /// number of each old one ([`NO_KEY`] for those dropped).
    fn compact(&mut self, live: &[bool]) -> Vec<KeyId> {
        let mut new = vec![NO_KEY; self.texts.len()];
        let mut texts = Vec::with_capacity(live.iter().filter(|&&l| l).count());
        for (old, text) in std::mem::take(&mut self.texts).into_iter().enumerate() {
            if live[old] {
                new[old] = texts.len() as KeyId;
                texts.push(text);
            }
        }
        let mut numbers = hashbrown::HashTable::with_capacity(texts.len());
        for (n, text) in texts.iter().enumerate() {
            numbers.insert_unique(text_hash(text), n as KeyId, |&n| {
                text_hash(&texts[n as usize])
            });
        }
        self.numbers = numbers;
        self.texts = texts;
        self.compacted_at = self.texts.len();
        self.epoch = EPOCHS.fetch_add(1, Ordering::Relaxed);
        new
    }
}

/// The ids of the events that entries stand for, by number. A number is
/// given back when its entry leaves, and given again to a later entry.
#[derive(Debug, Default)]
struct EventIds {
    texts: Vec<StateText>,
    free: Vec<u32>,
}

impl EventIds {
    fn add(&mut self, id: &str) -> u32 {
        match self.free.pop() {
            Some(n) => {
                self.texts[n as usize] = StateText::from(id);
                n
            }
            None => {
                self.texts.push(StateText::from(id));
                (self.texts.len() - 1) as u32
            }
        }
    }

    fn get(&self, n: u32) -> &str {
        &self.texts[n as usize]
    }

    /// Gives back the number of an entry that leaves.
    fn release(&mut self, e: &Entry) {
        self.free.push(e.id);
    }

    /// Gives back the numbers of the entries of a group that leaves.
    fn release_all(&mut self, group: &VecDeque<Entry>) {
        self.free.extend(group.iter().map(|e| e.id));
    }
}

/// One event that passed a rule, as the state sees it.
#[derive(Clone, Copy)]
pub(crate) struct Match<'a> {
    pub rule: usize,
    pub at: i64,
    /// The event's id, looked up only when the state keeps or reports it
    /// (most matches only count).
    pub event_id: &'a dyn Fn() -> &'a str,
    /// The threshold group, sequence or first-seen key (see
    /// [`RuleState::key_id`]).
    pub group: KeyId,
    /// The `distinct` or first-seen value.
    pub distinct: Option<KeyId>,
    pub suppress_key: KeyId,
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
    ids: &mut EventIds,
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
    let pos = group.partition_point(|e| e.at < m.at || (e.at == m.at && ids.get(e.id) <= event_id));
    group.insert(
        pos,
        Entry {
            at: m.at,
            id: ids.add(event_id),
            distinct: NO_KEY,
            steps: m.steps,
        },
    );
    let newest = group.back().map_or(m.at, |e| e.at);
    let mut pos = pos;
    while let Some(e) = group.front()
        && newest.saturating_sub(e.at) > seq.within
    {
        ids.release(e);
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
    let out = picked
        .iter()
        .map(|&i| ids.get(group[i].id).to_owned())
        .collect();
    let first_at = group[first].at;
    for e in group.drain(..=pos) {
        ids.release(&e);
    }
    Some((out, first_at))
}

/// Records the value of match `m` for its key; true when it is new and the
/// rule is past its learning (an alert).
fn first_seen(
    state: &mut PerRule,
    keys: &mut KeyTable,
    fs: &crate::rules::FirstSeen,
    m: Match<'_>,
) -> bool {
    let since = *state.learning_since.get_or_insert(m.at);
    let value = match m.distinct {
        Some(v) => v,
        None => keys.number(""),
    };
    let values = state.seen.entry(m.group).or_default();
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
    let new_key = !values.any(fresh);
    if let Some(last) = values.get_mut(value) {
        *last = (*last).max(m.at);
    } else {
        if values.len() >= fs.max_values {
            values.retain(|_, last| m.at.saturating_sub(last) <= fs.forget_after);
        }
        if values.len() >= fs.max_values
            && let Some((oldest, _)) = values
                .iter()
                .min_by(|a, b| (a.1, keys.text(a.0)).cmp(&(b.1, keys.text(b.0))))
        {
            values.remove(oldest);
        }
        values.insert(value, m.at);
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
        RuleState::default()
    }

    /// Keeps groups and keys `secs` past their window, so that an event
    /// that arrives up to `secs` late still meets the matches it would have
    /// met in order.
    pub fn tolerate_late(&mut self, secs: i64) {
        self.late = secs.max(0);
    }

    /// The saved form of the state (JSON), for [`RuleState::restore`].
    pub fn save(&self) -> Vec<u8> {
        serde_json::to_vec(&self.to_saved()).expect("rule state serializes")
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
        let saved: Saved = serde_json::from_slice(saved)?;
        let mut state = RuleState::from_saved(saved);
        let dropped = state.bind(rules);
        Ok((state, dropped))
    }

    /// The number of key or value `text` in this state, for a [`Match`].
    pub(crate) fn key_id(&mut self, text: &str) -> KeyId {
        self.keys.number(text)
    }

    /// What numbers from [`RuleState::key_id`] are valid for: a number
    /// taken under another epoch must be taken again.
    pub(crate) fn key_epoch(&self) -> u64 {
        self.keys.epoch
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
        let keys = &mut self.keys;
        for (mine, theirs) in self.rules.iter_mut().zip(&learned.rules) {
            if mine.id != theirs.id || mine.fingerprint != theirs.fingerprint {
                continue;
            }
            mine.learning_since = match (mine.learning_since, theirs.learning_since) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            for (&key, values) in &theirs.seen {
                let into = mine
                    .seen
                    .entry(keys.number(learned.keys.text(key)))
                    .or_default();
                for (value, at) in values.iter() {
                    let value = keys.number(learned.keys.text(value));
                    match into.get_mut(value) {
                        Some(last) => *last = (*last).max(at),
                        None => {
                            into.insert(value, at);
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
        self.rules.iter().all(PerRule::is_empty)
    }

    /// Brings into cache what the coming matches of rule `rule` for keys
    /// `groups` will read. The matches of a batch meet keys all over the
    /// state: looked up in a row, apart from the work of each match, their
    /// waits for memory overlap instead of adding up. Changes nothing.
    pub(crate) fn warm(&self, rules: &RuleSet, rule: usize, groups: impl Iterator<Item = KeyId>) {
        let (Some(part), Some(rule)) = (self.rules.get(rule), rules.rules().get(rule)) else {
            return;
        };
        if rule.first_seen.is_some() {
            for group in groups {
                if let Some(values) = part.seen.get(&group) {
                    prefetch(values);
                }
            }
        } else if rule.threshold.is_some() || rule.sequence.is_some() {
            for group in groups {
                if let Some(entries) = part.groups.get(&group) {
                    prefetch(entries);
                    if let Some(first) = entries.front() {
                        prefetch(first);
                    }
                }
            }
        }
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
        let ids = &mut self.event_ids;
        let mut first_at = m.at;
        let event_ids = match (&rule.threshold, &rule.sequence, &rule.first_seen) {
            (None, None, Some(fs)) => {
                if !first_seen(state, &mut self.keys, fs, m) {
                    return Outcome::Counted;
                }
                vec![(m.event_id)().to_owned()]
            }
            (None, Some(seq), _) => {
                let group = match state.groups.get_mut(&m.group) {
                    Some(g) => g,
                    // Only a first step can begin a sequence.
                    None if m.steps & 1 == 0 => return Outcome::Counted,
                    None => state.groups.entry(m.group).or_default(),
                };
                match sequence_step(group, ids, seq, m) {
                    Some((out, first)) => {
                        first_at = first;
                        out
                    }
                    None => return Outcome::Counted,
                }
            }
            (None, None, None) => vec![(m.event_id)().to_owned()],
            (Some(t), _, _) => {
                let group = state.groups.entry(m.group).or_default();
                let pos = group.partition_point(|e| e.at <= m.at);
                group.insert(
                    pos,
                    Entry {
                        at: m.at,
                        id: ids.add((m.event_id)()),
                        distinct: m.distinct.unwrap_or(NO_KEY),
                        steps: 0,
                    },
                );
                let newest = group.back().map_or(m.at, |e| e.at);
                while let Some(e) = group.front()
                    && newest.saturating_sub(e.at) > t.window
                {
                    ids.release(e);
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
                let out = group.iter().map(|e| ids.get(e.id).to_owned()).collect();
                ids.release_all(group);
                group.clear();
                out
            }
        };
        let mut suppressed = 0;
        if let Some(s) = &rule.suppress {
            match state.suppress.get_mut(&m.suppress_key) {
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
                        m.suppress_key,
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
        for group in old.values().flat_map(|p| p.groups.values()) {
            self.event_ids.release_all(group);
        }
        let mut dropped: Vec<String> = old
            .into_values()
            .filter(|p| !p.is_empty())
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
        self.compact();
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
                    let ids = &mut self.event_ids;
                    state.groups.retain(|_, g| {
                        let keep = g.back().is_some_and(|e| now.saturating_sub(e.at) <= keep);
                        if !keep {
                            ids.release_all(g);
                        }
                        keep
                    });
                }
            }
            if let Some(fs) = &rule.first_seen {
                let keep = fs.forget_after.saturating_add(late);
                if due(seen, keep) {
                    state.seen.retain(|_, values| {
                        values.retain(|_, last| now.saturating_sub(last) <= keep);
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
    ///
    /// Key numbers taken before this call may be stale after it (see
    /// [`RuleState::key_epoch`]).
    pub(crate) fn counted(&mut self, rules: &RuleSet, matches: usize, now: i64) {
        if self.bound != rules.generation() {
            self.bind(rules);
        }
        self.since_prune = self.since_prune.saturating_add(matches as u32);
        if self.since_prune >= 65_536 {
            self.since_prune = 0;
            self.prune_parts(rules, now, |pruned_at, keep| {
                let due = pruned_at.is_none_or(|t| now.saturating_sub(t) >= keep / 2);
                if due {
                    *pruned_at = Some(now);
                }
                due
            });
        }
        self.compact();
    }

    /// Drops the key texts nothing refers to any more, once the table has
    /// grown to twice what it held after its last compaction (so that the
    /// cost is spread over the texts added).
    fn compact(&mut self) {
        if self.keys.grown() {
            let mut live = vec![false; self.keys.texts.len()];
            for part in &self.rules {
                for (&k, group) in &part.groups {
                    live[k as usize] = true;
                    for e in group.iter().filter(|e| e.distinct != NO_KEY) {
                        live[e.distinct as usize] = true;
                    }
                }
                for &k in part.suppress.keys() {
                    live[k as usize] = true;
                }
                for (&k, values) in &part.seen {
                    live[k as usize] = true;
                    for (v, _) in values.iter() {
                        live[v as usize] = true;
                    }
                }
            }
            let new = self.keys.compact(&live);
            let renumber = |k: &KeyId| new[*k as usize];
            for part in &mut self.rules {
                part.groups = (part.groups.drain())
                    .map(|(k, mut group)| {
                        for e in group.iter_mut().filter(|e| e.distinct != NO_KEY) {
                            e.distinct = new[e.distinct as usize];
                        }
                        (renumber(&k), group)
                    })
                    .collect();
                part.suppress = (part.suppress.drain())
                    .map(|(k, q)| (renumber(&k), q))
                    .collect();
                part.seen = (part.seen.drain())
                    .map(|(k, mut values)| {
                        values.renumber(&new);
                        (renumber(&k), values)
                    })
                    .collect();
            }
        }
    }

    /// The saved form, with texts in place of numbers.
    fn to_saved(&self) -> Saved {
        let key = |k: KeyId| self.keys.text(k).to_owned();
        let rules = (self.rules.iter())
            .map(|part| SavedRule {
                id: part.id.clone(),
                fingerprint: part.fingerprint.as_str().to_owned(),
                groups: (part.groups.iter())
                    .map(|(&k, group)| {
                        let entries = (group.iter())
                            .map(|e| SavedEntry {
                                at: e.at,
                                id: self.event_ids.get(e.id).to_owned(),
                                distinct: (e.distinct != NO_KEY).then(|| key(e.distinct)),
                                steps: e.steps,
                            })
                            .collect();
                        (key(k), entries)
                    })
                    .collect(),
                suppress: (part.suppress.iter())
                    .map(|(&k, q)| (key(k), q.clone()))
                    .collect(),
                seen: (part.seen.iter())
                    .map(|(&k, values)| (key(k), values.iter().map(|(v, t)| (key(v), t)).collect()))
                    .collect(),
                learning_since: part.learning_since,
            })
            .collect();
        Saved {
            version: STATE_VERSION,
            rules,
            incidents: self.incidents.clone(),
        }
    }

    /// The state of a saved form, not bound to rules yet.
    fn from_saved(saved: Saved) -> RuleState {
        let mut state = RuleState {
            incidents: saved.incidents,
            ..RuleState::default()
        };
        for rule in saved.rules {
            let mut part = PerRule::for_rule(&rule.id, &Fingerprint::known(rule.fingerprint));
            part.learning_since = rule.learning_since;
            for (k, entries) in rule.groups {
                let group = (entries.into_iter())
                    .map(|e| Entry {
                        at: e.at,
                        id: state.event_ids.add(&e.id),
                        distinct: e.distinct.map_or(NO_KEY, |d| state.keys.number(&d)),
                        steps: e.steps,
                    })
                    .collect();
                part.groups.insert(state.keys.number(&k), group);
            }
            for (k, q) in rule.suppress {
                part.suppress.insert(state.keys.number(&k), q);
            }
            for (k, values) in rule.seen {
                let mut into = Values::default();
                for (v, at) in values {
                    into.insert(state.keys.number(&v), at);
                }
                part.seen.insert(state.keys.number(&k), into);
            }
            state.rules.push(part);
        }
        state.keys.compacted_at = state.keys.texts.len();
        state
    }
}

impl PerRule {
    fn for_rule(id: &str, fingerprint: &Fingerprint) -> PerRule {
        PerRule {
            id: id.to_owned(),
            fingerprint: fingerprint.clone(),
            ..PerRule::default()
        }
    }

    fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.suppress.is_empty() && self.seen.is_empty()
    }
}

/// The number of distinct `distinct` values in a threshold group; small
/// groups (the usual case) are counted without allocating.
fn distinct_count(group: &VecDeque<Entry>) -> usize {
    let values = group.iter().map(|e| e.distinct).filter(|&d| d != NO_KEY);
    if group.len() > 32 {
        return values.collect::<FxHashSet<_>>().len();
    }
    let mut seen = [NO_KEY; 32];
    let mut n = 0;
    for v in values {
        if !seen[..n].contains(&v) {
            seen[n] = v;
            n += 1;
        }
    }
    n
}

/// The saved form of a [`RuleState`]: its texts in place of their numbers.
#[derive(Serialize, Deserialize)]
struct Saved {
    version: u32,
    rules: Vec<SavedRule>,
    #[serde(default, skip_serializing_if = "Incidents::is_empty")]
    incidents: Incidents,
}

#[derive(Serialize, Deserialize)]
struct SavedRule {
    id: String,
    fingerprint: String,
    groups: BTreeMap<String, Vec<SavedEntry>>,
    suppress: BTreeMap<String, Quiet>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    seen: BTreeMap<String, BTreeMap<String, i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    learning_since: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct SavedEntry {
    at: i64,
    id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    distinct: Option<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    steps: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Alert;
    use crate::engine::{Batch, Evaluator};
    use crate::event::Event;
    use crate::rules::Environment;

    const RULES: &str = "\
id: countries
title: Countries
severity: medium
match: {type: login.succeeded}
threshold: {count: 3, window: 1h, group_by: actor.email, distinct: actor.country}
suppress: {window: 1d, key: actor.email}
---
id: fail_then_success
title: Failures then success
severity: high
sequence:
  by: [actor.email]
  within: 2d
  steps:
    - match: {type: login.failed}
      count: 2
    - match: {type: login.succeeded}
---
id: new_network
title: New network
severity: low
match: {type: login.succeeded}
first_seen: {of: actor.asn, per: actor.email, learn_for: 1d, forget_after: 3d, max_values: 5}
---
id: burst
title: Burst
severity: low
match: {type: login.failed}
threshold: {count: 4, window: 10m}
";

    /// Logins of cohorts of people that come and go (each person logs in
    /// four times in a row, every 13 hours, for three days), from a few
    /// countries and networks each: keys enough for the key table to be
    /// compacted, and groups that fill and empty.
    fn lines() -> Vec<String> {
        (0..40_000u64)
            .map(|i| {
                let slot = i / 4;
                let person = slot % 200 + (slot / 1_000) * 200;
                let kind = if i % 3 == 0 { "failed" } else { "succeeded" };
                let country = ["US", "CA", "GB", "IN", "BR"][(i * 7 % 5) as usize];
                let asn = 64_500 + (i * 13 + person) % 9;
                format!(
                    r#"{{"id":"e{i:06}","type":"login.{kind}","effective_at":{at},"actor":{{"type":"session","session":{{"user":{{"id":"u{person}","email":"p{person}@example.com"}},"ip_address":"198.51.100.{ip}","ip_address_details":{{"country":"{country}","asn":"{asn}"}}}}}}}}"#,
                    at = 1_700_000_000 + i * 60,
                    ip = i % 200,
                )
            })
            .collect()
    }

    fn parse(lines: &[String]) -> Vec<Event<'_>> {
        lines.iter().map(|l| Event::parse(l).unwrap()).collect()
    }

    /// Pruning, the key table's compaction and the reuse of event id
    /// numbers never change an alert: small batches (pruned and compacted
    /// between them, some saved and restored) give the alerts of one.
    #[test]
    fn compacted_and_pruned_state_gives_the_alerts_of_one_batch() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("r.yaml"), RULES).unwrap();
        let rules = RuleSet::load(&[dir.path().to_owned()], &Environment::default()).unwrap();
        let lines = lines();

        let mut whole_state = RuleState::new();
        let whole = Evaluator::new(&rules).evaluate(&Batch::new(parse(&lines)), &mut whole_state);
        for id in ["countries", "fail_then_success", "new_network", "burst"] {
            assert!(
                whole.alerts.iter().any(|a| a.rule_id == id),
                "{id} fires on the test events"
            );
        }
        assert!(whole.alerts.iter().any(|a| a.suppressed > 0));

        let mut state = RuleState::new();
        let first_epoch = state.key_epoch();
        let mut alerts: Vec<Alert> = Vec::new();
        let mut most_ids = 0;
        for (n, slice) in lines.chunks(100).enumerate() {
            if n == 200 {
                state = RuleState::restore(&state.save(), &rules).unwrap().0;
            }
            let batch = Batch::new(parse(slice));
            alerts.extend(Evaluator::new(&rules).evaluate(&batch, &mut state).alerts);
            state.prune(&rules, batch.events().last().unwrap().effective_at());
            most_ids = most_ids.max(state.event_ids.texts.len());
        }
        assert_eq!(alerts.len(), whole.alerts.len());
        for (a, b) in alerts.iter().zip(&whole.alerts) {
            assert_eq!(a, b);
        }

        // The key table was compacted: it holds fewer texts than the 2,000
        // people that came and went.
        assert_ne!(state.key_epoch(), first_epoch);
        assert!(state.keys.texts.len() < 2_000, "{}", state.keys.texts.len());
        // Event id numbers were given back and taken again: far fewer were
        // ever held at once than threshold and sequence entries were made.
        assert!(most_ids < 4_000, "{most_ids}");
        // Some person's networks went past the few kept in place.
        let many = |s: &RuleState| {
            (s.rules.iter().flat_map(|p| p.seen.values())).any(|v| matches!(v, Values::Many(_)))
        };
        assert!(many(&whole_state));
    }
}
