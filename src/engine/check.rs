//! The stateless half of evaluation: which rules an event passes (match,
//! condition, script), and the [`Hit`] each one leaves for the ordered half.
//!
//! A [`Checker`] belongs to one thread. It may see events in any order, so
//! `rulecheck` runs one per parser thread; everything a hit needs later
//! (threshold group, distinct value, suppression key, summary values) is
//! taken here, so that the event itself can be dropped.

use rustc_hash::FxHashMap;

use super::text::text_hash;
use super::{EvalError, EventNo};
use crate::alert::Facts;
use crate::event::{Event, FieldPath, FieldValue};
use crate::rules::{RuleSet, Shared, SummaryContext};

/// One event that passed one rule, with what its threshold, suppression
/// and summary need.
#[derive(Debug, Clone)]
pub(crate) struct Hit {
    /// Index of the rule in its [`RuleSet`].
    pub rule: usize,
    pub event: EventNo,
    pub effective_at: i64,
    pub group: Option<Key>,
    pub distinct: Option<Key>,
    pub suppress_key: Option<Key>,
    /// The steps of the rule's sequence the event passes, as bits.
    pub steps: u32,
    pub context: Context,
}

/// What a hit's summary will be rendered from.
#[derive(Debug, Clone)]
pub(crate) enum Context {
    /// Taken from the event at match time (boxed, so that the hits of
    /// `rulecheck`, which read their event again, stay small).
    Taken(Box<Taken>),
    /// Not taken: the event is read again from its input if an alert needs it.
    At(Location),
}

/// What an alert needs of its event, taken at match time.
#[derive(Debug, Clone)]
pub(crate) struct Taken {
    pub summary: SummaryContext,
    /// The event's facts, when wanted.
    pub facts: Option<Facts>,
    /// The values that tie its alert to an incident (one per
    /// `incidents.by` path, `None` where the event has none).
    pub entities: Vec<Option<Key>>,
}

/// Where an event's text lies in an input that can be read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Location {
    /// The input's index in its replay.
    pub input: u32,
    pub offset: u64,
    pub len: u32,
}

/// A threshold group, distinct value or suppression key of a hit: its
/// number in the [`Keys`] of the checker that made it (see
/// [`Checker::take`]). Each text is stored once per batch, however many
/// hits share it, and hits hold no shared pointers, so the thread that
/// applies them never touches memory that another parser thread still
/// writes.
///
/// It holds the number plus one, so that an `Option<Key>` takes no more
/// room than a `Key` (a hit holds three of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key(std::num::NonZeroU32);

impl Key {
    /// The key numbered `index` (from 0).
    pub(super) fn new(index: usize) -> Key {
        let n = u32::try_from(index + 1).expect("fewer than 2^32 keys in a batch");
        Key(std::num::NonZeroU32::new(n).expect("one more than a number is not zero"))
    }

    /// The key's number among its batch's keys (from 0).
    pub fn index(self) -> usize {
        self.0.get() as usize - 1
    }
}

/// The key texts of a batch's hits, each once, numbered in the order they
/// were made.
#[derive(Debug, Default)]
pub(crate) struct Keys {
    text: String,
    spans: Vec<(u32, u32)>,
}

impl Keys {
    /// The text of `key`.
    pub fn text(&self, key: Key) -> &str {
        let (start, end) = self.spans[key.index()];
        &self.text[start as usize..end as usize]
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.spans.len()
    }
}

/// What a checker found since it was last emptied.
#[derive(Debug, Default)]
pub(crate) struct Found {
    pub hits: Vec<Hit>,
    pub errors: Vec<(EventNo, EvalError)>,
    /// The texts of the hits' keys.
    pub keys: Keys,
}

/// Runs the stateless half of the rules on events, one thread's worth.
pub(crate) struct Checker<'r> {
    rules: &'r RuleSet,
    /// Only this rule (inline tests), else every enabled rule.
    only: Option<usize>,
    /// The rules that may match each event type, computed once per type:
    /// an index into `candidates`.
    by_type: FxHashMap<Box<str>, Candidates>,
    candidates: Vec<Box<[Candidate]>>,
    found: Found,
    /// Key text hash → the first key with that hash.
    spans: FxHashMap<u64, Key>,
    /// The numbers of the keys rules make (see [`KeyPlan`]).
    plan: KeyPlan,
    /// The keys made for an event, by their number in the plan, with the
    /// number of the event (`checked`) they were made for: rules of one
    /// event often share them (the account of a login, for several rules).
    made: Vec<(u64, Option<Key>)>,
    /// How many events were checked, which numbers the event being checked.
    checked: u64,
    /// Whether hits keep the facts of their event for the alert.
    facts: bool,
    /// The scripts compiled for this checker's thread, when it has its own.
    scripts: Option<crate::rules::ThreadScripts>,
    /// The answers of conditions several rules test, for the event being
    /// checked.
    shared: Shared,
}

/// The rules that may match the events of one type (see
/// [`Checker::candidates`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidates(u32);

/// A rule that may match an event type, with the steps of its sequence that
/// may (all bits when it has none).
#[derive(Debug, Clone, Copy)]
struct Candidate {
    rule: u32,
    steps: u32,
}

impl<'r> Checker<'r> {
    pub fn new(rules: &'r RuleSet) -> Checker<'r> {
        let plan = KeyPlan::new(rules);
        Checker {
            rules,
            only: None,
            by_type: FxHashMap::default(),
            candidates: Vec::new(),
            found: Found::default(),
            spans: FxHashMap::default(),
            made: vec![(0, None); plan.count],
            plan,
            checked: 0,
            facts: true,
            scripts: None,
            shared: rules.shared_answers(),
        }
    }

    /// Runs scripts on an engine and compiled copy of this checker's own,
    /// for a checker that runs beside others on other threads (rulecheck's
    /// parser threads); alone, the shared ones cost nothing to set up.
    pub fn with_own_scripts(mut self) -> Checker<'r> {
        self.scripts = self.rules.thread_scripts();
        self
    }

    /// Whether hits keep their event's facts (on by default).
    pub fn with_facts(mut self, facts: bool) -> Checker<'r> {
        self.facts = facts;
        self
    }

    /// A checker of rule `rule` alone, whatever its type filter and
    /// `enabled` say (inline tests).
    pub fn for_rule(rules: &'r RuleSet, rule: usize) -> Checker<'r> {
        Checker {
            only: Some(rule),
            ..Checker::new(rules)
        }
    }

    pub fn rules(&self) -> &'r RuleSet {
        self.rules
    }

    /// The enabled rules that may match events of type `ty`.
    pub fn candidates(&mut self, ty: &str) -> Candidates {
        if let Some(&c) = self.by_type.get(ty) {
            return c;
        }
        let rules = self.rules.rules();
        let candidate = |i: usize| Candidate {
            rule: i as u32,
            steps: rules[i]
                .sequence
                .as_ref()
                .map_or(u32::MAX, |s| match self.only {
                    // Inline tests do not index by type: every step is tried.
                    Some(_) => s.all_steps(),
                    None => s.steps_for_type(ty),
                }),
        };
        let list: Box<[Candidate]> = match self.only {
            Some(i) => Box::new([candidate(i)]),
            None => (rules.iter().enumerate())
                .filter(|(_, r)| r.enabled && r.may_match_type(ty))
                .map(|(i, _)| candidate(i))
                .collect(),
        };
        let c = Candidates(self.candidates.len() as u32);
        self.candidates.push(list);
        self.by_type.insert(ty.into(), c);
        c
    }

    /// True when some enabled rule may match events of type `ty`.
    pub fn any_candidate(&mut self, ty: &str) -> (Candidates, bool) {
        let c = self.candidates(ty);
        (c, !self.candidates[c.0 as usize].is_empty())
    }

    /// Checks `event`, number `no` of its batch, against the rules that may
    /// match it (`candidates`, when already looked up for its type). With
    /// `at`, summaries are taken later by reading the event again there.
    pub fn check(
        &mut self,
        event: &Event<'_>,
        no: EventNo,
        at: Option<Location>,
        candidates: Option<Candidates>,
    ) {
        let list = candidates
            .unwrap_or_else(|| self.candidates(event.kind()))
            .0 as usize;
        // A type index only exists for a whole rule set.
        let type_checked = self.only.is_none();
        let mut view = None;
        self.checked += 1;
        self.shared.for_event(self.checked);
        for k in 0..self.candidates[list].len() {
            let Candidate { rule: i, steps } = self.candidates[list][k];
            let i = i as usize;
            match self.rules.passes(
                i,
                event,
                type_checked,
                &mut view,
                self.scripts.as_ref(),
                &mut self.shared,
            ) {
                Ok(true) => {
                    if let Some(hit) = self.hit(i, steps, event, no, at) {
                        self.found.hits.push(hit);
                    }
                }
                Ok(false) => {}
                Err(message) => self.found.errors.push((
                    no,
                    EvalError {
                        rule: i,
                        event_id: event.id().to_owned(),
                        message,
                    },
                )),
            }
        }
    }

    /// Hands over what was found since the last call and starts afresh,
    /// with room for as much again (batches are alike: growing the hits of
    /// each from nothing would copy them several times).
    pub fn take(&mut self) -> Found {
        self.spans.clear();
        let room = |n: usize| n + n / 4;
        let next = Found {
            hits: Vec::with_capacity(room(self.found.hits.len())),
            errors: Vec::new(),
            keys: Keys {
                text: String::with_capacity(room(self.found.keys.text.len())),
                spans: Vec::with_capacity(room(self.found.keys.spans.len())),
            },
        };
        std::mem::replace(&mut self.found, next)
    }

    /// The hit of an event that passed rule `index`'s match, condition and
    /// script; `None` when the rule's own kind rules it out (no step of its
    /// sequence among `steps`, or a missing first-seen value, which is
    /// never new).
    fn hit(
        &mut self,
        index: usize,
        steps: u32,
        event: &Event<'_>,
        no: EventNo,
        at: Option<Location>,
    ) -> Option<Hit> {
        let rule = &self.rules.rules()[index];
        let steps = match &rule.sequence {
            Some(seq) => match seq.steps_of(event, steps, self.only.is_none(), &mut self.shared) {
                0 => return None,
                steps => steps,
            },
            None => 0,
        };
        let slots = self.plan.rules[index];
        let distinct = match &rule.first_seen {
            Some(fs) => Some(self.event_key(slots.distinct, &fs.of, false, event)?),
            None => rule
                .threshold
                .as_ref()
                .and_then(|t| t.distinct.as_ref())
                .and_then(|p| {
                    self.event_key(slots.distinct, std::slice::from_ref(p), false, event)
                }),
        };
        let group = rule
            .group_by()
            .map(|paths| self.key(slots.group, paths, event));
        let suppress_key =
            (rule.suppress.as_ref()).map(|s| self.key(slots.suppress, &s.key, event));
        // A rule whose every match alerts takes what its alert needs now,
        // rather than reading the event again for each alert later.
        let at = at.filter(|_| !rule.alerts_on_every_match());
        let context = match at {
            Some(at) => Context::At(at),
            None => {
                let entities = match self.rules.incidents() {
                    Some(inc) => (inc.by.iter().enumerate())
                        .map(|(i, p)| {
                            let slot = self.plan.entities[i];
                            self.event_key(slot, std::slice::from_ref(p), false, event)
                        })
                        .collect(),
                    None => Vec::new(),
                };
                Context::Taken(Box::new(Taken {
                    summary: rule.summary_context(event),
                    facts: self.facts.then(|| Facts::of_event(event)),
                    entities,
                }))
            }
        };
        Some(Hit {
            rule: index,
            event: no,
            effective_at: event.effective_at(),
            group,
            distinct,
            suppress_key,
            steps,
            context,
        })
    }

    /// The key made of the values of `paths` (number `slot` of the plan),
    /// where a missing value is a value of its own.
    fn key(&mut self, slot: u16, paths: &[FieldPath], event: &Event<'_>) -> Key {
        self.event_key(slot, paths, true, event)
            .expect("a key whose missing values count is always made")
    }

    /// The key of `paths` (number `slot` of the plan) for the event being
    /// checked: made once, then shared by every rule of the event that
    /// asks for it again.
    fn event_key(
        &mut self,
        slot: u16,
        paths: &[FieldPath],
        missing_is_value: bool,
        event: &Event<'_>,
    ) -> Option<Key> {
        let (checked, k) = self.made[slot as usize];
        if checked == self.checked {
            return k;
        }
        let k = self.write_key(paths, missing_is_value, event);
        self.made[slot as usize] = (self.checked, k);
        k
    }

    /// Writes the key of `paths` into the key text; a missing value is
    /// written as NUL when `missing_is_value`, else there is no key.
    fn write_key(
        &mut self,
        paths: &[FieldPath],
        missing_is_value: bool,
        event: &Event<'_>,
    ) -> Option<Key> {
        // The usual key, one text value, is looked up before it is copied.
        if let [path] = paths {
            let value = path.resolve(event);
            if let FieldValue::Text(s) = value {
                let hash = text_hash(s);
                return Some(match self.stored(hash, s) {
                    Some(k) => k,
                    None => {
                        let start = self.found.keys.text.len();
                        self.found.keys.text.push_str(s);
                        self.add_key(hash, start)
                    }
                });
            }
            let start = self.found.keys.text.len();
            if !write_value(value, &mut self.found.keys.text) {
                if !missing_is_value {
                    return None;
                }
                self.found.keys.text.push('\u{0}');
            }
            return Some(self.intern(start));
        }
        let text = &mut self.found.keys.text;
        let start = text.len();
        for (i, p) in paths.iter().enumerate() {
            if i > 0 {
                text.push('\u{1f}');
            }
            if !write_text(p, event, text) {
                if !missing_is_value {
                    text.truncate(start);
                    return None;
                }
                text.push('\u{0}');
            }
        }
        Some(self.intern(start))
    }

    /// Closes the key just written at `start`; a text already stored since
    /// the last [`Checker::take`] is shared instead.
    fn intern(&mut self, start: usize) -> Key {
        let hash = text_hash(&self.found.keys.text[start..]);
        if let Some(k) = self.stored(hash, &self.found.keys.text[start..]) {
            self.found.keys.text.truncate(start);
            return k;
        }
        self.add_key(hash, start)
    }

    /// The key stored since the last [`Checker::take`] whose text is `s`
    /// (of hash `hash`).
    #[inline]
    fn stored(&self, hash: u64, s: &str) -> Option<Key> {
        let k = *self.spans.get(&hash)?;
        (self.found.keys.text(k) == s).then_some(k)
    }

    /// Makes the text from `start` to the end of the key text a new key.
    #[inline]
    fn add_key(&mut self, hash: u64, start: usize) -> Key {
        let keys = &mut self.found.keys;
        let k = Key::new(keys.spans.len());
        keys.spans.push((start as u32, keys.text.len() as u32));
        self.spans.entry(hash).or_insert(k);
        k
    }
}

/// The keys rules make, numbered so that the same paths, with the same
/// treatment of a missing value, have one number whatever rule asks: an
/// event's keys are then found again by number.
#[derive(Debug, Default)]
struct KeyPlan {
    rules: Vec<RuleKeys>,
    /// The number of each `incidents.by` path.
    entities: Vec<u16>,
    count: usize,
}

/// The numbers of one rule's keys (0 where it has none).
#[derive(Debug, Clone, Copy, Default)]
struct RuleKeys {
    group: u16,
    suppress: u16,
    distinct: u16,
}

impl KeyPlan {
    fn new(rules: &RuleSet) -> KeyPlan {
        let mut numbers: FxHashMap<(Vec<String>, bool), u16> = FxHashMap::default();
        let mut number = |paths: &[FieldPath], missing_is_value: bool| {
            let names = paths.iter().map(|p| p.as_str().to_owned()).collect();
            let next = numbers.len() as u16;
            *numbers.entry((names, missing_is_value)).or_insert(next)
        };
        let rules_keys = (rules.rules().iter())
            .map(|r| RuleKeys {
                group: r.group_by().map_or(0, |p| number(p, true)),
                suppress: r.suppress.as_ref().map_or(0, |s| number(&s.key, true)),
                distinct: match (&r.first_seen, &r.threshold) {
                    (Some(fs), _) => number(&fs.of, false),
                    (None, Some(t)) => t
                        .distinct
                        .as_ref()
                        .map_or(0, |p| number(std::slice::from_ref(p), false)),
                    (None, None) => 0,
                },
            })
            .collect();
        let entities = rules.incidents().map_or_else(Vec::new, |inc| {
            (inc.by.iter())
                .map(|p| number(std::slice::from_ref(p), false))
                .collect()
        });
        KeyPlan {
            rules: rules_keys,
            entities,
            count: numbers.len().max(1),
        }
    }
}

/// Writes the text of a path's value (arrays and objects as their JSON);
/// false when the value is missing.
pub(crate) fn write_text(path: &FieldPath, event: &Event<'_>, out: &mut String) -> bool {
    write_value(path.resolve(event), out)
}

/// Writes the text of a value (see [`write_text`]); false when it is
/// missing.
fn write_value(value: FieldValue<'_>, out: &mut String) -> bool {
    use std::fmt::Write;
    match value {
        FieldValue::Missing => return false,
        FieldValue::Text(s) => out.push_str(s),
        FieldValue::Owned(s) => out.push_str(&s),
        FieldValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        FieldValue::Json(serde_json::Value::String(s)) => out.push_str(s),
        FieldValue::Json(v) => {
            let _ = write!(out, "{v}");
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hit_that_reads_its_event_again_stays_small() {
        // rulecheck keeps every hit of a chunk until it is ordered: on the
        // org benchmark that is over a million of them.
        assert!(
            std::mem::size_of::<Hit>() <= 64,
            "{} bytes",
            std::mem::size_of::<Hit>()
        );
    }
}
