//! Rules: loading rule files and compiling everything in them once (match
//! operators, scripts, templates, inline tests), so that evaluation
//! (`engine`) only runs what is compiled here.

mod case;
mod fingerprint;
mod hours;
mod lists;
mod load;
mod matcher;
mod native;
mod raw;
pub mod schema;
mod script;
mod summary;
mod text;
mod warnings;

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use case::TestCase;
pub use fingerprint::Fingerprint;
pub use hours::BusinessHours;
pub use lists::{Lists, NamedList};
pub use load::{LoadError, Problem};
pub(crate) use load::{yaml_message, yaml_options};
pub use summary::SummaryContext;

use crate::event::{Event, FieldPath};
use matcher::Matcher;
pub use matcher::Shared;
pub(crate) use script::ThreadScripts;
use script::{Script, ScriptEngine};
use summary::{RuleInfo, Summary, Templates};

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
    /// How alerts are grouped into incidents (none: they are not).
    pub incidents: Option<Arc<IncidentRules>>,
}

/// Alerts that share a value of one of `by` within `window` seconds of the
/// incident's last alert belong to one incident.
#[derive(Debug, Clone)]
pub struct IncidentRules {
    pub window: i64,
    pub by: Vec<FieldPath>,
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
    /// A digest of the rule's logic (match, condition or script,
    /// threshold, suppress): saved threshold and suppression state is kept
    /// across a reload only for a rule whose id and fingerprint are unchanged.
    pub fingerprint: Fingerprint,
    pub threshold: Option<Threshold>,
    pub sequence: Option<Sequence>,
    pub first_seen: Option<FirstSeen>,
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

/// Fire when events of the same key pass `steps` in order, each step
/// `count` times, all within `within` seconds; the event that completes
/// the last step fires it.
#[derive(Debug)]
pub struct Sequence {
    pub by: Vec<FieldPath>,
    /// Seconds from the first contributing event to the last.
    pub within: i64,
    pub steps: Vec<Step>,
}

/// Fire when the values of `of` are new for the values of `per`: not seen
/// for that key within `forget_after`, once the rule has learned for
/// `learn_for` from the first event it saw.
#[derive(Debug)]
pub struct FirstSeen {
    pub of: Vec<FieldPath>,
    pub per: Vec<FieldPath>,
    /// Seconds of learning (no alerts) from the first event the rule saw.
    pub learn_for: i64,
    /// Seconds after which a value not seen again is forgotten.
    pub forget_after: i64,
    /// Whether the first value of a key never seen before alerts (else it
    /// is learned).
    pub new_keys: bool,
    /// The most values kept per key; the least recently seen goes first.
    pub max_values: usize,
}

impl FirstSeen {
    pub const DEFAULT_FORGET_AFTER: i64 = 90 * 86_400;
    pub const DEFAULT_MAX_VALUES: usize = 1000;
}

/// One step of a [`Sequence`].
#[derive(Debug)]
pub struct Step {
    /// The step's name (`step N` when not given).
    pub name: String,
    pub count: u32,
    matcher: Matcher,
}

impl Sequence {
    /// The most steps a sequence may have.
    pub const MAX_STEPS: usize = 32;

    /// The steps that may match events of type `ty`, as bits (step 0 is
    /// bit 0).
    pub(crate) fn steps_for_type(&self, ty: &str) -> u32 {
        self.steps
            .iter()
            .enumerate()
            .filter(|(_, s)| s.matcher.may_match_type(ty))
            .fold(0, |bits, (i, _)| bits | 1 << i)
    }

    /// Every step, as bits.
    pub(crate) fn all_steps(&self) -> u32 {
        u32::MAX
            .checked_shr(32 - self.steps.len() as u32)
            .unwrap_or(0)
    }

    /// The steps among `steps` that `event` passes, as bits (step 0 is
    /// bit 0). With `type_checked`, `steps` are known to allow the event's
    /// type (see [`Sequence::steps_for_type`]), which is not tested again.
    pub(crate) fn steps_of(
        &self,
        event: &Event<'_>,
        steps: u32,
        type_checked: bool,
        shared: &mut Shared,
    ) -> u32 {
        self.steps
            .iter()
            .enumerate()
            .filter(|(i, s)| {
                steps & (1 << i) != 0 && s.matcher.matches(event, type_checked, shared)
            })
            .fold(0, |bits, (i, _)| bits | 1 << i)
    }
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
    /// Names the audit log schema does not know (see [`schema`]).
    warnings: Vec<Problem>,
    incidents: Option<Arc<IncidentRules>>,
    /// How many conditions more than one rule tests (see [`Shared`]).
    shared_conditions: usize,
    /// Tells this load apart from every other of the process (see
    /// [`RuleSet::generation`]).
    generation: u64,
}

impl RuleSet {
    /// Loads every rule file under `paths` (files, or folders read
    /// recursively for `*.yaml`/`*.yml`). All-or-nothing: any problem fails
    /// the load, with every problem listed.
    pub fn load(paths: &[PathBuf], env: &Environment) -> Result<RuleSet, LoadError> {
        load::load(paths, env)
    }

    /// Event types and field paths of the rules that the audit log schema
    /// does not know, as `FILE:LINE:COLUMN: warning: …`.
    pub fn warnings(&self) -> &[Problem] {
        &self.warnings
    }

    /// How the set's alerts are grouped into incidents, if they are.
    pub fn incidents(&self) -> Option<&IncidentRules> {
        self.incidents.as_deref()
    }

    /// Room for the answers of the conditions several of the set's rules
    /// test, for one thread that checks events.
    pub fn shared_answers(&self) -> Shared {
        Shared::new(self.shared_conditions)
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// A number no other rule set loaded by this process has, so that a
    /// rule state knows cheaply whether it is bound to this one.
    pub fn generation(&self) -> u64 {
        self.generation
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

    /// The rules' scripts compiled for one thread, on an engine of its
    /// own; `None` when no rule has a script.
    pub(crate) fn thread_scripts(&self) -> Option<ThreadScripts> {
        if self.rules.iter().all(|r| r.script.is_none()) {
            return None;
        }
        let engine = self.engine.fresh();
        let scripts = self
            .rules
            .iter()
            .map(|r| r.script.as_ref().map(|s| engine.recompile(s)))
            .collect();
        Some(ThreadScripts { engine, scripts })
    }

    /// Whether rule `i` passes on `event`: its match, then its condition or
    /// script (from `own`, the thread's copy, when given). `type_checked`
    /// says the event's type was already checked against the rule's;
    /// `view` keeps the script view of the event from rule to rule, and
    /// `shared` the answers of conditions that several rules test. An
    /// error is a script that failed on the event.
    pub(crate) fn passes(
        &self,
        i: usize,
        event: &Event<'_>,
        type_checked: bool,
        view: &mut Option<rhai::Scope<'static>>,
        own: Option<&ThreadScripts>,
        shared: &mut Shared,
    ) -> Result<bool, String> {
        let rule = &self.rules[i];
        if let Some(m) = &rule.matcher
            && !m.matches(event, type_checked, shared)
        {
            return Ok(false);
        }
        match &rule.script {
            Some(script) => {
                if let Some(answer) = script.native_answer(event, self.engine.business_hours()) {
                    return Ok(answer);
                }
                let scope =
                    view.get_or_insert_with(|| script::event_scope_of(event, &self.view_needs));
                match own {
                    Some(t) => t
                        .engine
                        .eval(t.scripts[i].as_ref().unwrap_or(script), scope),
                    None => self.engine.eval(script, scope),
                }
            }
            None => Ok(true),
        }
    }

    /// Renders a rule's summary from the context taken from the event that
    /// fired it; `count` is the number of events behind the alert. A
    /// template that fails gives the title and the reason, and the error.
    pub fn render_summary(
        &self,
        rule: &Rule,
        ctx: &SummaryContext,
        count: usize,
    ) -> (String, Option<String>) {
        let info = RuleInfo {
            id: &rule.id,
            title: &rule.title,
            severity: rule.severity.as_str(),
        };
        self.templates.render(&rule.summary, ctx, &info, count)
    }
}

impl Rule {
    /// The paths whose values key the rule's state: its threshold's
    /// `group_by`, its sequence's `by` or its first-seen `per`.
    pub(crate) fn group_by(&self) -> Option<&[FieldPath]> {
        if let Some(t) = &self.threshold {
            return Some(&t.group_by);
        }
        if let Some(s) = &self.sequence {
            return Some(&s.by);
        }
        self.first_seen.as_ref().map(|f| f.per.as_slice())
    }

    /// True when every event that passes the rule raises an alert (unless
    /// `suppress` quiets it): it has no threshold, sequence or first-seen
    /// state to count it towards.
    pub(crate) fn alerts_on_every_match(&self) -> bool {
        self.threshold.is_none() && self.sequence.is_none() && self.first_seen.is_none()
    }

    /// The time window of its threshold or sequence, in seconds.
    pub(crate) fn window(&self) -> Option<i64> {
        self.threshold
            .as_ref()
            .map(|t| t.window)
            .or(self.sequence.as_ref().map(|s| s.within))
    }

    /// The event types the rule names in its top-level `type` entry (see
    /// [`Matcher::event_types`]).
    pub fn event_types(&self) -> Option<(bool, Vec<String>)> {
        if let Some(types) = self.matcher.as_ref().and_then(Matcher::event_types) {
            return Some(types);
        }
        // A sequence without a top-level type: the types of its steps.
        let seq = self.sequence.as_ref()?;
        let mut all = Vec::new();
        for step in &seq.steps {
            match step.matcher.event_types()? {
                (false, types) => all.extend(types),
                (true, _) => return None,
            }
        }
        all.sort();
        all.dedup();
        Some((false, all))
    }

    /// Whether the rule may match events of type `ty` (enabled or not).
    pub(crate) fn may_match_type(&self, ty: &str) -> bool {
        self.matcher.as_ref().is_none_or(|m| m.may_match_type(ty))
            && self
                .sequence
                .as_ref()
                .is_none_or(|s| s.steps.iter().any(|step| step.matcher.may_match_type(ty)))
    }

    /// What the rule's summary needs from `event`, taken now so that it can
    /// be rendered later without the event.
    pub fn summary_context(&self, event: &Event<'_>) -> SummaryContext {
        self.summary.context(event)
    }
}
