//! Alert summaries: Jinja-style templates compiled at load, rendered with the
//! values of only the event fields they name.

use minijinja::value::Value as JValue;
use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;

use crate::event::{Event, FieldPath, FieldValue};

/// The instructions one summary may take; a summary of ordinary size takes
/// a few hundred.
const SUMMARY_FUEL: u64 = 100_000;

/// Every rule's summary template, compiled.
pub struct Templates {
    env: Environment<'static>,
}

/// What one rule's summary needs from an event.
#[derive(Debug)]
pub struct Summary {
    /// `None`: the default summary built from type, actor and project.
    template: Option<String>,
    /// The event paths the template reads, with no path that another one covers.
    paths: Vec<FieldPath>,
}

/// The values a summary reads, taken from the matching event so that it can
/// be rendered later (when a threshold fires) without keeping the event.
#[derive(Debug, Clone)]
pub enum SummaryContext {
    /// The default summary, already written.
    Text(String),
    /// The value of each of the template's paths (`None`: missing).
    Values(Box<[Option<Value>]>),
}

impl Summary {
    /// The event paths the template reads.
    pub fn paths(&self) -> &[FieldPath] {
        &self.paths
    }
}

impl Templates {
    pub fn new() -> Templates {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        // A template that loops without end (nested loops over long lists)
        // runs out of fuel and fails instead of hanging the replay.
        env.set_fuel(Some(SUMMARY_FUEL));
        // Summaries are plain text; each destination escapes for its medium.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.set_formatter(|out, state, value| {
            if value.is_undefined() || value.is_none() {
                return Ok(());
            }
            if value.kind() == minijinja::value::ValueKind::Seq {
                for (i, item) in value.try_iter()?.enumerate() {
                    if i > 0 {
                        out.write_str(", ")?;
                    }
                    if !(item.is_none() || item.is_undefined()) {
                        minijinja::escape_formatter(out, state, &item)?;
                    }
                }
                return Ok(());
            }
            minijinja::escape_formatter(out, state, value)
        });
        Templates { env }
    }

    /// Compiles the template of rule `id`.
    pub fn add(&mut self, id: &str, source: Option<&str>) -> Result<Summary, String> {
        let Some(source) = source else {
            return Ok(Summary::default_summary());
        };
        self.env
            .add_template_owned(id.to_owned(), source.to_owned())
            .map_err(|e| {
                format!(
                    "bad summary template: {}",
                    e.detail().unwrap_or(&e.to_string())
                )
            })?;
        let tmpl = self.env.get_template(id).map_err(|e| e.to_string())?;
        // Filters, tests and functions are looked up when they run: run the
        // template once on nothing, so that a misspelt one fails the load.
        if let Err(e) = tmpl.render(minijinja::context! {}) {
            use minijinja::ErrorKind::{UnknownFilter, UnknownFunction, UnknownTest};
            if matches!(e.kind(), UnknownFilter | UnknownFunction | UnknownTest) {
                return Err(format!(
                    "bad summary template: {}",
                    e.detail().unwrap_or(&e.to_string())
                ));
            }
        }
        let mut vars: Vec<String> = tmpl
            .undeclared_variables(true)
            .into_iter()
            .filter(|v| !matches!(v.split('.').next(), Some("count" | "rule")))
            .collect();
        vars.sort();
        // Keep `details` and drop `details.id`: the shorter path covers it.
        let mut kept: Vec<String> = Vec::new();
        for v in vars {
            if !kept
                .iter()
                .any(|k| v.starts_with(k.as_str()) && v[k.len()..].starts_with('.'))
            {
                kept.push(v);
            }
        }
        let paths = kept.iter().filter_map(|p| FieldPath::parse(p)).collect();
        Ok(Summary {
            template: Some(id.to_owned()),
            paths,
        })
    }

    /// Renders a summary from the context taken at match time.
    pub fn render(
        &self,
        summary: &Summary,
        ctx: &SummaryContext,
        rule: &RuleInfo<'_>,
        count: usize,
    ) -> (String, Option<String>) {
        let (Some(name), SummaryContext::Values(values)) = (&summary.template, ctx) else {
            let text = match ctx {
                SummaryContext::Text(t) => t.clone(),
                SummaryContext::Values(_) => String::new(),
            };
            return (text, None);
        };
        let mut root = serde_json::Map::new();
        for (path, value) in summary.paths.iter().zip(values.iter()) {
            if let Some(v) = value {
                insert_nested(&mut root, path.as_str(), v.clone());
            }
        }
        let fields = JValue::from_serialize(&root);
        let full = minijinja::context! {
            count => count,
            rule => minijinja::context! { id => rule.id, title => rule.title, severity => rule.severity },
            ..fields
        };
        match self.env.get_template(name).and_then(|t| t.render(full)) {
            Ok(s) => (s.split_whitespace().collect::<Vec<_>>().join(" "), None),
            Err(e) => (
                format!("{} (summary failed: {e})", rule.title),
                Some(format!("the summary failed: {e}")),
            ),
        }
    }
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

/// What a summary may say about its rule.
pub struct RuleInfo<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub severity: &'a str,
}

impl Summary {
    fn default_summary() -> Summary {
        Summary {
            template: None,
            paths: Vec::new(),
        }
    }

    /// Takes what the summary needs from `event`.
    pub fn context(&self, event: &Event<'_>) -> SummaryContext {
        if self.template.is_none() {
            return SummaryContext::Text(default_text(event));
        }
        let values = self
            .paths
            .iter()
            .map(|path| match path.resolve(event) {
                FieldValue::Missing => None,
                FieldValue::Text(s) => Some(Value::String(s.to_owned())),
                FieldValue::Owned(s) => Some(Value::String(s)),
                FieldValue::Int(i) => Some(Value::from(i)),
                FieldValue::Json(v) => Some(v.clone()),
            })
            .collect();
        SummaryContext::Values(values)
    }
}

/// Places `value` at the dotted `path` inside nested maps, so that the
/// template's `api_key.created.id` finds it where Jinja looks.
fn insert_nested(root: &mut serde_json::Map<String, Value>, path: &str, value: Value) {
    let mut segs = path.split('.').peekable();
    let mut map = root;
    while let Some(seg) = segs.next() {
        if segs.peek().is_none() {
            map.insert(seg.to_owned(), value);
            return;
        }
        let slot = map
            .entry(seg.to_owned())
            .or_insert_with(|| Value::Object(Default::default()));
        if !slot.is_object() {
            *slot = Value::Object(Default::default());
        }
        map = slot.as_object_mut().expect("made an object above");
    }
}

/// `api_key.created by alice@example.com in Default project`.
fn default_text(event: &Event<'_>) -> String {
    let mut s = event.kind().to_owned();
    if let Some(actor) = event.actor() {
        if let Some(who) = actor.email.as_deref().or(actor.id.as_deref()) {
            s.push_str(" by ");
            s.push_str(who);
        }
        if let Some(ip) = actor.ip.as_deref() {
            s.push_str(" from ");
            s.push_str(ip);
        }
    }
    if let Some(Value::String(name)) = event.field("project").and_then(|p| p.get("name")) {
        s.push_str(" in ");
        s.push_str(name);
    }
    s
}
