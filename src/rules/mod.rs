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
pub use summary::SummaryContext;

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
    engine: ScriptEngine,
    templates: Templates,
}

/// One event that matched one rule, with what its threshold, suppression
/// and summary need, so that the event itself can be dropped.
#[derive(Debug)]
pub struct Hit {
    /// Index of the rule in [`RuleSet::rules`].
    pub rule: usize,
    pub event_id: String,
    pub effective_at: i64,
    pub group: Option<String>,
    pub distinct: Option<String>,
    pub suppress_key: Option<String>,
    pub context: SummaryContext,
}

/// A rule that failed on one event (a script error or a hit limit).
#[derive(Debug, Clone)]
pub struct EvalError {
    pub rule: usize,
    pub event_id: String,
    pub message: String,
}

/// The rules that may match each event type, computed once per type.
#[derive(Default)]
pub struct TypeIndex {
    by_type: FxHashMap<Box<str>, Arc<[u32]>>,
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
    pub fn candidates(&self, ty: &str, index: &mut TypeIndex) -> Arc<[u32]> {
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

    /// Evaluates the stateless part of every enabled rule on `event`: each
    /// rule that matches adds a [`Hit`], each rule that fails an [`EvalError`].
    pub fn check(
        &self,
        event: &Event<'_>,
        index: &mut TypeIndex,
        hits: &mut Vec<Hit>,
        errors: &mut Vec<EvalError>,
    ) {
        let candidates = self.candidates(event.kind(), index);
        let mut view = None;
        for &i in candidates.iter() {
            self.check_rule(i as usize, event, &mut view, hits, errors);
        }
    }

    /// Evaluates one rule on `event`; `view` caches the event's script view
    /// across the rules of one event.
    pub fn check_rule(
        &self,
        i: usize,
        event: &Event<'_>,
        view: &mut Option<rhai::Dynamic>,
        hits: &mut Vec<Hit>,
        errors: &mut Vec<EvalError>,
    ) {
        let rule = &self.rules[i];
        if let Some(m) = &rule.matcher
            && !m.matches(event)
        {
            return;
        }
        if let Some(script) = &rule.script {
            let view = view.get_or_insert_with(|| script::view(event));
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
        hits.push(rule.hit(i, event));
    }

    /// Renders a rule's summary from the context of the event that fired it.
    pub fn render_summary(&self, rule: &Rule, ctx: &SummaryContext, count: usize) -> String {
        let info = RuleInfo {
            id: &rule.id,
            title: &rule.title,
            severity: rule.severity.as_str(),
        };
        self.templates.render(&rule.summary, ctx, &info, count)
    }
}

impl Rule {
    /// The event types the rule names in its top-level `type` entry (see
    /// [`Matcher::event_types`]).
    pub fn event_types(&self) -> Option<(bool, Vec<String>)> {
        self.matcher.as_ref().and_then(Matcher::event_types)
    }

    fn hit(&self, index: usize, event: &Event<'_>) -> Hit {
        let threshold = self.threshold.as_ref();
        Hit {
            rule: index,
            event_id: event.id().to_owned(),
            effective_at: event.effective_at(),
            group: threshold.map(|t| key_of(&t.group_by, event)),
            distinct: threshold
                .and_then(|t| t.distinct.as_ref())
                .and_then(|p| text_of(p, event)),
            suppress_key: self.suppress.as_ref().map(|s| key_of(&s.key, event)),
            context: self.summary.context(event),
        }
    }
}

/// The text of a path's value; arrays and objects as their JSON.
fn text_of(path: &FieldPath, event: &Event<'_>) -> Option<String> {
    match path.resolve(event) {
        FieldValue::Missing => None,
        FieldValue::Text(s) => Some(s.to_owned()),
        FieldValue::Owned(s) => Some(s),
        FieldValue::Int(i) => Some(i.to_string()),
        FieldValue::Json(serde_json::Value::String(s)) => Some(s.clone()),
        FieldValue::Json(v) => Some(v.to_string()),
    }
}

/// A group or suppression key: the values of `paths`, where a missing value
/// is a value of its own.
fn key_of(paths: &[FieldPath], event: &Event<'_>) -> String {
    let mut key = String::new();
    for (i, p) in paths.iter().enumerate() {
        if i > 0 {
            key.push('\u{1f}');
        }
        match text_of(p, event) {
            Some(t) => key.push_str(&t),
            None => key.push('\u{0}'),
        }
    }
    key
}
