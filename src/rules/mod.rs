//! Rules: loading and compiling rule files, evaluating them on events, and the
//! event-time state of thresholds and suppression.
//!
//! Evaluation has two halves. [`RuleSet::check`] is stateless (match,
//! condition, script) and may run on many events at once, in any order;
//! [`RuleState::apply`] takes its matches in event-time order and decides
//! which alerts go out.

mod hours;
mod lists;
mod load;
mod matcher;
mod raw;
mod script;
mod state;
mod summary;
pub mod testcase;
mod text;

use std::path::PathBuf;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

pub use hours::BusinessHours;
pub use lists::{Lists, NamedList};
pub use load::{LoadError, Problem};
pub(crate) use load::{yaml_message, yaml_options};
pub use state::{Outcome, RuleState};
pub use summary::{Location, SummaryContext};

use crate::event::{Event, FieldPath, FieldValue};
use matcher::Matcher;
use script::{Script, ScriptEngine};
use summary::{RuleInfo, Summary, Templates};
use testcase::TestCase;

/// How bad an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Config values that rules may use.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    pub lists: Lists,
    pub business_hours: Option<Arc<BusinessHours>>,
}

/// One compiled rule.
#[derive(Debug)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub enabled: bool,
    /// Destination names; `None`: the config's routing.
    pub notify: Option<Vec<String>>,
    /// Where the rule is defined.
    pub file: PathBuf,
    pub line: u64,
    pub column: u64,
    pub threshold: Option<Threshold>,
    pub suppress: Option<Suppress>,
    pub tests: Vec<TestCase>,
    matcher: Option<Matcher>,
    script: Option<Script>,
    summary: Summary,
}

/// Fire only when `count` matches (or distinct values) fall within `window`.
#[derive(Debug)]
pub struct Threshold {
    pub count: u32,
    /// Seconds.
    pub window: i64,
    pub group_by: Vec<FieldPath>,
    pub distinct: Option<FieldPath>,
}

/// Quiet repeats of an alert with the same key for `window` seconds.
#[derive(Debug)]
pub struct Suppress {
    pub window: i64,
    pub key: Vec<FieldPath>,
}

/// A loaded, compiled set of rules.
pub struct RuleSet {
    rules: Vec<Rule>,
    /// What of the event the rules' scripts read.
    view_needs: script::ViewNeeds,
    engine: ScriptEngine,
    templates: Templates,
}

/// One event that matched one rule, with what its threshold, suppression
/// and summary need, so that the event itself can be dropped.
#[derive(Debug, Clone)]
pub struct Hit {
    /// Index of the rule in [`RuleSet::rules`].
    pub rule: usize,
    /// The event's number in its batch, in read order (see [`EventSource`]).
    pub event: u64,
    pub effective_at: i64,
    pub group: Option<Key>,
    pub distinct: Option<Key>,
    pub suppress_key: Option<Key>,
    pub context: SummaryContext,
}

/// A threshold group, distinct value or suppression key of a hit: where its
/// text is in the key text of the batch the hit came from (see
/// [`Scratch::take_keys`] and [`EventSource::key`]). A batch stores each
/// text once, however many hits share it; hits hold no shared pointers, so
/// the thread that orders them never touches memory a parser still writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    start: u32,
    end: u32,
}

impl Key {
    /// The key's text in its batch's key text.
    pub fn text(self, keys: &str) -> &str {
        &keys[self.start as usize..self.end as usize]
    }
}

/// Where the events of a batch can be found again by their number: their
/// ids, their hits' keys, and, for summaries taken later, their text.
pub trait EventSource {
    /// The id of event number `event`.
    fn id(&self, event: u64) -> &str;
    /// The text of `key`, of a hit on event number `event`.
    fn key(&self, event: u64, key: Key) -> &str;
    /// The text of the event stored at `at`, read again.
    fn read(&self, at: &Location) -> Option<String>;
}

/// A rule that failed on one event (a script error or a hit limit).
#[derive(Debug, Clone)]
pub struct EvalError {
    pub rule: usize,
    pub event_id: String,
    pub message: String,
}

/// Per-thread evaluation scratch: the rules that may match each event type
/// (computed once per type) and the key text of the current batch.
#[derive(Default)]
pub struct Scratch {
    by_type: FxHashMap<Box<str>, Arc<[u32]>>,
    /// The texts of the current batch's keys, back to back.
    keys: String,
    /// Key text hash → the first key with that hash.
    spans: FxHashMap<u64, Key>,
}

impl Scratch {
    /// The key made of the values of `paths`, where a missing value is a value
    /// of its own.
    fn key(&mut self, paths: &[FieldPath], event: &Event<'_>) -> Key {
        let start = self.keys.len();
        for (i, p) in paths.iter().enumerate() {
            if i > 0 {
                self.keys.push('\u{1f}');
            }
            if !write_text(p, event, &mut self.keys) {
                self.keys.push('\u{0}');
            }
        }
        self.intern(start)
    }

    /// The text of one path's value, when it has one.
    fn value(&mut self, path: &FieldPath, event: &Event<'_>) -> Option<Key> {
        let start = self.keys.len();
        write_text(path, event, &mut self.keys).then(|| self.intern(start))
    }

    /// Closes the key just written at `start`; a text already stored for
    /// this batch is shared instead.
    fn intern(&mut self, start: usize) -> Key {
        use std::hash::BuildHasher;
        let hash = rustc_hash::FxBuildHasher.hash_one(&self.keys[start..]);
        if let Some(&k) = self.spans.get(&hash)
            && k.text(&self.keys) == &self.keys[start..]
        {
            self.keys.truncate(start);
            return k;
        }
        let k = Key {
            start: start as u32,
            end: self.keys.len() as u32,
        };
        self.spans.entry(hash).or_insert(k);
        k
    }

    /// The key text of the current batch.
    pub fn keys(&self) -> &str {
        &self.keys
    }

    /// Ends the current batch: hands over its key text (what the batch's
    /// hits' keys point into) and starts a new one.
    pub fn take_keys(&mut self) -> String {
        self.spans.clear();
        std::mem::take(&mut self.keys)
    }
}

impl RuleSet {
    /// Loads every rule file under `paths` (files, or folders read
    /// recursively for `*.yaml`/`*.yml`). All-or-nothing: any problem fails
    /// the load, with every problem listed.
    pub fn load(paths: &[PathBuf], env: &Environment) -> Result<RuleSet, LoadError> {
        load::load(paths, env)
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Keeps only the rules with these ids; returns the ids that matched no rule.
    pub fn retain_ids(&mut self, ids: &[String]) -> Vec<String> {
        let unknown = ids
            .iter()
            .filter(|id| !self.rules.iter().any(|r| &r.id == *id))
            .cloned()
            .collect();
        self.rules.retain(|r| ids.contains(&r.id));
        unknown
    }

    /// The enabled rules that may match events of type `ty`.
    pub fn candidates(&self, ty: &str, index: &mut Scratch) -> Arc<[u32]> {
        if let Some(c) = index.by_type.get(ty) {
            return c.clone();
        }
        let c: Arc<[u32]> = self
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.enabled && r.matcher.as_ref().is_none_or(|m| m.may_match_type(ty)))
            .map(|(i, _)| i as u32)
            .collect();
        index.by_type.insert(ty.into(), c.clone());
        c
    }

    /// Evaluates the stateless part of the enabled rules that may match
    /// `event` (`candidates`, from [`RuleSet::candidates`] for its type), as
    /// number `seq` of its batch: each rule that matches adds a [`Hit`], each
    /// rule that fails an [`EvalError`]. With `at`, summaries are taken later
    /// by reading the event again from there.
    #[allow(clippy::too_many_arguments)]
    pub fn check(
        &self,
        event: &Event<'_>,
        candidates: &[u32],
        seq: u64,
        at: Option<Location>,
        scratch: &mut Scratch,
        hits: &mut Vec<Hit>,
        errors: &mut Vec<EvalError>,
    ) {
        let mut view = None;
        for &i in candidates {
            let found = Found {
                type_checked: true,
                seq,
                at,
                view: &mut view,
                scratch: &mut *scratch,
            };
            self.check_rule(i as usize, event, found, hits, errors);
        }
    }

    /// Evaluates one rule on `event`.
    pub fn check_rule(
        &self,
        i: usize,
        event: &Event<'_>,
        found: Found<'_>,
        hits: &mut Vec<Hit>,
        errors: &mut Vec<EvalError>,
    ) {
        let rule = &self.rules[i];
        if let Some(m) = &rule.matcher
            && !m.matches(event, found.type_checked)
        {
            return;
        }
        if let Some(script) = &rule.script {
            let view = found
                .view
                .get_or_insert_with(|| script::view(event, &self.view_needs));
            match self.engine.eval(script, view) {
                Ok(true) => {}
                Ok(false) => return,
                Err(message) => {
                    errors.push(EvalError {
                        rule: i,
                        event_id: event.id().to_owned(),
                        message,
                    });
                    return;
                }
            }
        }
        hits.push(rule.hit(i, event, found));
    }

    /// Renders a rule's summary from the context of the event that fired it.
    pub fn render_summary(
        &self,
        rule: &Rule,
        hit: &Hit,
        count: usize,
        events: &dyn EventSource,
    ) -> String {
        let info = RuleInfo {
            id: &rule.id,
            title: &rule.title,
            severity: rule.severity.as_str(),
        };
        if let SummaryContext::At(at) = &hit.context {
            let text = events.read(at);
            let ctx = match text.as_deref().map(Event::parse) {
                Some(Ok(event)) => rule.summary.context(&event),
                _ => SummaryContext::Text(format!(
                    "{} (the event could not be read again)",
                    rule.title
                )),
            };
            return self.templates.render(&rule.summary, &ctx, &info, count);
        }
        self.templates
            .render(&rule.summary, &hit.context, &info, count)
    }
}

/// Where one evaluation stands: the event's number and location, its
/// script view once built, and the thread's scratch.
pub struct Found<'s> {
    pub seq: u64,
    /// The event's type was checked against the rule by the type index.
    pub type_checked: bool,
    pub at: Option<Location>,
    pub view: &'s mut Option<rhai::Dynamic>,
    pub scratch: &'s mut Scratch,
}

impl Rule {
    /// The event types the rule names in its top-level `type` entry (see
    /// [`Matcher::event_types`]).
    pub fn event_types(&self) -> Option<(bool, Vec<String>)> {
        self.matcher.as_ref().and_then(Matcher::event_types)
    }

    fn hit(&self, index: usize, event: &Event<'_>, found: Found<'_>) -> Hit {
        let threshold = self.threshold.as_ref();
        let scratch = found.scratch;
        let group = threshold.map(|t| scratch.key(&t.group_by, event));
        Hit {
            rule: index,
            event: found.seq,
            effective_at: event.effective_at(),
            group,
            distinct: threshold
                .and_then(|t| t.distinct.as_ref())
                .and_then(|p| scratch.value(p, event)),
            suppress_key: self
                .suppress
                .as_ref()
                .map(|s| match (&group, &self.threshold) {
                    // The same paths make the same key: share it.
                    (Some(g), Some(t)) if same_paths(&t.group_by, &s.key) => *g,
                    _ => scratch.key(&s.key, event),
                }),
            context: match found.at {
                Some(at) => SummaryContext::At(at),
                None => self.summary.context(event),
            },
        }
    }
}

fn same_paths(a: &[FieldPath], b: &[FieldPath]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.as_str() == y.as_str())
}

/// Writes the text of a path's value (arrays and objects as their JSON);
/// false when the value is missing.
fn write_text(path: &FieldPath, event: &Event<'_>, out: &mut String) -> bool {
    use std::fmt::Write;
    match path.resolve(event) {
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
